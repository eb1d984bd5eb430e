"""NeuroBench, the community's harness, on our deployed members.

NeuroBench finds a model's synapses by looking for ``nn.Linear``/``nn.Conv`` modules and its neurons
by looking for registered activation modules; our ``StudentSNN`` keeps its weights in a
``ParameterList``, so NeuroBench sees nothing there and reports 0 synaptic operations. The adapter
:class:`DeployedMember` holds a *deployed* member (the exact weights the simulators run, float or
fixed point) as ``nn.Linear`` layers followed by a :class:`Spikes` activation module per layer,
and steps the same neuron contract. NeuroBench's own metrics then count what our counters count:
its ``Effective_ACs`` equal our synaptic events, its ``ActivationSparsity`` is 1 − spikes /
(neurons × steps) (tested in CI on the digits model).

Optional: ``pip install neurobench`` (it installs with the torch pin). Ensemble-level numbers
(sleeping members, the gate's MACs) are ours, see :attr:`SimulationReport.neurobench`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from sne_deploy.simulators.network import Network
from sne_deploy.simulators.neuron import LIFFixedParams, LIFParams, LIFState, lif_step_fixed, lif_step_float


class Spikes(nn.Module):
    """Identity on a layer's spikes; exists so NeuroBench can hook the neurons' output."""

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return s


class DeployedMember(nn.Module):
    """A deployed member as NeuroBench expects a spiking model: input (N, T, n_in) -> output counts."""

    def __init__(self, network: Network, mode: str = "fixed") -> None:
        super().__init__()
        self.fixed = mode == "fixed"
        self.linears = nn.ModuleList()
        self.spikes = nn.ModuleList()
        self.params = []
        for layer in network.layers:
            w = layer.fixed.weight if self.fixed else layer.weight
            lin = nn.Linear(layer.n_in, layer.n_out, bias=False)
            with torch.no_grad():  # integer and ternary weights are exact in float32
                lin.weight.copy_(torch.as_tensor(np.asarray(w, dtype=np.float32)))
            lin.weight.requires_grad_(False)
            self.linears.append(lin)
            self.spikes.append(Spikes())
            if self.fixed:
                f = layer.fixed.params
                self.params.append(LIFFixedParams(f.du_fx, f.dv_fx, torch.as_tensor(np.asarray(f.vth, dtype=np.int64)),
                                                  torch.as_tensor(np.asarray(f.bias_mant, dtype=np.int64)), f.bias_exp))
            else:
                p = layer.params
                self.params.append(LIFParams(p.du, p.dv, torch.as_tensor(p.vth), torch.as_tensor(p.bias)))

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, steps, _ = x.shape
        dtype = torch.int64 if self.fixed else torch.float64
        states = [LIFState(torch.zeros(n, lin.out_features, dtype=dtype), torch.zeros(n, lin.out_features, dtype=dtype))
                  for lin in self.linears]
        out = torch.zeros(n, self.linears[-1].out_features, dtype=torch.int64)
        for t in range(steps):
            s = x[:, t].to(torch.float32)
            for i, (lin, act, p) in enumerate(zip(self.linears, self.spikes, self.params)):
                a = lin(s).to(torch.float64)
                if self.fixed:
                    states[i], spk = lif_step_fixed(states[i], torch.round(a).to(torch.int64), p, torch)
                else:
                    states[i], spk = lif_step_float(states[i], a, p, torch)
                s = act(spk.to(torch.float32))
            out += s.to(torch.int64)
        return out


@dataclass(frozen=True)
class NeuroBenchMetrics:
    """NeuroBench's own numbers for one member over some inputs (per sample where it says so)."""

    effective_acs: float  # SynapticOperations.Effective_ACs, per sample
    effective_macs: float  # SynapticOperations.Effective_MACs, per sample (0 for a spiking member)
    activation_sparsity: float  # ActivationSparsity
    connection_sparsity: float  # ConnectionSparsity
    footprint_bytes: int  # Footprint (float32 weights of the adapter)


def member_metrics(network: Network, spikes: np.ndarray, mode: str = "fixed", batch: int = 512) -> NeuroBenchMetrics:
    """Run NeuroBench's Benchmark with its static and workload metrics on one deployed member."""
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.static import ConnectionSparsity, Footprint
    from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
    from neurobench.models import TorchModel
    from torch.utils.data import DataLoader, TensorDataset

    model = TorchModel(DeployedMember(network, mode))
    model.add_activation_module(Spikes)
    x = torch.as_tensor(np.asarray(spikes, dtype=np.float32))
    loader = DataLoader(TensorDataset(x, torch.zeros(len(x), dtype=torch.int64)), batch_size=batch, shuffle=False)
    bench = Benchmark(model, loader, [], [], [[Footprint, ConnectionSparsity], [SynapticOperations, ActivationSparsity]])
    r = bench.run(quiet=True)
    return NeuroBenchMetrics(float(r["SynapticOperations"]["Effective_ACs"]), float(r["SynapticOperations"]["Effective_MACs"]),
                             float(r["ActivationSparsity"]), float(r["ConnectionSparsity"]), int(r["Footprint"]))
