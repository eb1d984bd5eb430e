"""NeuroBench, the community's harness, on our deployed members.

NeuroBench finds a model's synapses by looking for ``nn.Linear``/``nn.Conv`` modules and its neurons
by looking for registered activation modules; our ``StudentSNN`` keeps its weights in a
``ParameterList``, so NeuroBench sees nothing there and reports 0 synaptic operations. The adapter
:class:`DeployedMember` holds a *deployed* member (the exact weights the simulators run, float or
fixed point) as ``nn.Linear`` layers followed by a :class:`Spikes` activation module per layer,
and runs them through the one simulation loop. NeuroBench's own metrics then count what our counters count:
its ``Effective_ACs`` equal our synaptic events, its ``ActivationSparsity`` is 1 − spikes /
(neurons × steps) (tested in CI on the digits model). One difference, on recurrent layers: we
count the recurrent events of every spike (the chip routes each one), NeuroBench only those
delivered within the sample, so the last step's recurrent spikes are missing from its count.

Optional: ``pip install neurobench`` (it installs with the torch pin). Ensemble-level numbers
(sleeping members, the gate's MACs) are ours, see :attr:`SimulationReport.neurobench`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from sne_deploy.simulators.loop import run_loop
from sne_deploy.simulators.network import Network

from .snn import TORCH


class Spikes(nn.Module):
    """Identity on a layer's spikes; exists so NeuroBench can hook the neurons' output."""

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return s


class DeployedMember(nn.Module):
    """A deployed member as NeuroBench expects a spiking model: input (N, T, n_in) -> output counts.

    It runs the one simulation loop (:func:`~sne_deploy.simulators.loop.run_loop`, on torch
    arrays, so recurrence, current biases and every :class:`~sne_deploy.simulators.neuron.Dynamics`
    count as they run everywhere else); only the synapses go through ``nn.Linear`` modules
    (NeuroBench counts their operations) and each layer's spikes through a :class:`Spikes`
    module (NeuroBench measures their sparsity)."""

    def __init__(self, network: Network, mode: str = "fixed") -> None:
        super().__init__()
        self.network, self.mode = network, mode
        self.linears = nn.ModuleList()
        self.spikes = nn.ModuleList([Spikes() for _ in network.layers])
        self._by_weight: dict[int, nn.Linear] = {}  # the loop asks for a weight matrix's synapses by the matrix
        for layer in network.layers:
            for w in (layer.fixed.weight if mode == "fixed" else layer.weight, layer.recurrent_weight(mode)):
                if w is not None:
                    self._by_weight[id(w)] = self._linear(w)
        self.lib = TORCH._replace(name="neurobench", synapses=self._synapses)

    def _linear(self, w: np.ndarray) -> nn.Linear:
        lin = nn.Linear(w.shape[1], w.shape[0], bias=False)
        with torch.no_grad():  # integer and ternary weights are exact in float32
            lin.weight.copy_(torch.as_tensor(np.asarray(w, dtype=np.float32)))
        lin.weight.requires_grad_(False)
        self.linears.append(lin)
        return lin

    def _synapses(self, _layer: object, weight: np.ndarray):
        lin = self._by_weight[id(weight)]
        return lambda s: lin(s.to(torch.float32)).to(torch.float64)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = run_loop(
            self.network, x, self.mode, lib=self.lib, on_spikes=lambda i, s: self.spikes[i](s.to(torch.float32))
        )
        return torch.as_tensor(out.counts[-1])


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
    return _benchmark(DeployedMember(network, mode), Spikes, spikes, batch)


def ann_metrics(net: nn.Module, x: np.ndarray, batch: int = 1000) -> NeuroBenchMetrics:
    """NeuroBench's static and workload metrics on an ANN (a baseline, a teacher) over inputs ``x``:
    its Effective_MACs count only the multiplications by non-zero inputs, its ActivationSparsity
    is that of the ReLU outputs."""
    return _benchmark(net.eval(), nn.ReLU, x, batch)


def _benchmark(net: nn.Module, activation: type, x: np.ndarray, batch: int) -> NeuroBenchMetrics:
    """NeuroBench's Footprint, ConnectionSparsity, SynapticOperations and ActivationSparsity of
    ``net`` over ``x``, its neurons found as ``activation`` modules."""
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.static import ConnectionSparsity, Footprint
    from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
    from neurobench.models import TorchModel
    from torch.utils.data import DataLoader, TensorDataset

    model = TorchModel(net)
    model.add_activation_module(activation)
    xt = torch.as_tensor(np.asarray(x, dtype=np.float32))
    loader = DataLoader(TensorDataset(xt, torch.zeros(len(xt), dtype=torch.int64)), batch_size=batch, shuffle=False)
    bench = Benchmark(
        model, loader, [], [], [[Footprint, ConnectionSparsity], [SynapticOperations, ActivationSparsity]]
    )
    r = bench.run(quiet=True)
    return NeuroBenchMetrics(
        float(r["SynapticOperations"]["Effective_ACs"]),
        float(r["SynapticOperations"]["Effective_MACs"]),
        float(r["ActivationSparsity"]),
        float(r["ConnectionSparsity"]),
        int(r["Footprint"]),
    )
