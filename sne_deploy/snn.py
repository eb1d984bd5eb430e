"""Student SNNs in torch, on the neuron contract of ``simulators.neuron`` (the same step functions,
run with ``xp=torch``), and a torch runner for exported networks in float or fixed point.

Functional core, thin module: :func:`run_network_torch` is the PyTorch reference the simulators
are compared with; :class:`StudentSNN` is the trainable form (float32, surrogate gradient,
ternary weights through the STE) that :meth:`StudentSNN.to_network` turns into that reference.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from norse.torch.functional.superspike import super_fn
from torch import nn

from simulators.fixed_point import fold_ternary
from simulators.network import Network
from simulators.neuron import LIFFixedParams, LIFParams, LIFState, decays_to_fixed, lif_step_fixed, lif_step_float

from .quantization import ste_ternary, ternarize

SURROGATE_ALPHA = 100.0


def _surrogate(x: torch.Tensor) -> torch.Tensor:
    return super_fn(x, SURROGATE_ALPHA)


class StudentSNN(nn.Module):
    """A spiking MLP ``sizes[0] -> ... -> sizes[-1]`` whose output spike counts, through a per-dim
    affine readout (host side), regress one group of teacher features.

    ``ternary=False`` gives the full-precision twin of Twin Network Augmentation.
    """

    def __init__(self, sizes: Sequence[int], steps: int, du: float = 1.0, dv: float = 0.25,
                 ternary: bool = True, seed: int = 0) -> None:
        super().__init__()
        decays_to_fixed(du, dv)  # fail early when the decays cannot go to Loihi
        gen = torch.Generator().manual_seed(seed)
        self.sizes, self.steps, self.du, self.dv, self.ternary = list(sizes), steps, du, dv, ternary
        self.weights = nn.ParameterList(
            [nn.Parameter(torch.randn(o, i, generator=gen) * (2.0 / np.sqrt(i))) for i, o in zip(sizes[:-1], sizes[1:])]
        )
        self.biases = nn.ParameterList([nn.Parameter(torch.zeros(o)) for o in sizes[1:]])
        self.gamma = nn.Parameter(torch.full((sizes[-1],), 2.0))
        self.beta = nn.Parameter(torch.full((sizes[-1],), -1.0))

    def effective_weights(self) -> list[torch.Tensor]:
        return [ste_ternary(w) if self.ternary else w for w in self.weights]

    def forward(self, spikes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """spikes (N, T, n_in) float -> (output counts (N, n_out), spikes per sample (N,))."""
        ws = self.effective_weights()
        n = spikes.shape[0]
        states = [LIFState(spikes.new_zeros(n, w.shape[0]), spikes.new_zeros(n, w.shape[0])) for w in ws]
        out = spikes.new_zeros(n, ws[-1].shape[0])
        total = spikes.new_zeros(n)
        for t in range(spikes.shape[1]):
            s = spikes[:, t]
            for i, (w, b) in enumerate(zip(ws, self.biases)):
                states[i], s = lif_step_float(states[i], s @ w.T, LIFParams(self.du, self.dv, 1.0, b), torch, _surrogate)
                total = total + s.sum(dim=1)
            out = out + s
        return out, total

    def readout(self, counts: torch.Tensor) -> torch.Tensor:
        """Spike counts -> predicted (standardised) features; runs on the host."""
        return counts / self.steps * self.gamma + self.beta

    @torch.no_grad()
    def to_network(self, name: str = "student", scales: Optional[Sequence[int]] = None) -> Network:
        """The deployable form (:func:`simulators.fixed_point.fold_ternary`): ternary float weights
        with alpha folded into vth and bias, plus the exact fixed-point integers with one even scale
        per layer (chosen there unless ``scales`` gives them)."""
        if not self.ternary:
            raise ValueError("only ternary students are deployed")
        layers = []
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            wt, alpha = ternarize(w)
            a = float(alpha)
            # threshold and bias in units of one synapse (alpha folded in)
            layers.append(fold_ternary(f"{name}.layer{i}", wt.double().numpy(), 1.0 / a, b.double().numpy() / a,
                                       self.du, self.dv, self.steps, None if scales is None else scales[i]))
        return Network(tuple(layers), metadata={"steps": self.steps})


@torch.no_grad()
def run_network_torch(network: Network, spikes: torch.Tensor | np.ndarray, mode: str = "float",
                      record: bool = False) -> tuple[list[torch.Tensor], Optional[list[torch.Tensor]]]:
    """Run an exported network in torch (float64 or int64): per-layer spike counts (N, n_l), and
    the full trains (N, T, n_l) when ``record``. Same step functions as the numpy reference."""
    x = torch.as_tensor(np.asarray(spikes) if not isinstance(spikes, torch.Tensor) else spikes)
    fixed = mode == "fixed"
    dtype = torch.int64 if fixed else torch.float64
    x = x.to(dtype)
    n, steps, _ = x.shape
    ws = [torch.as_tensor(l.fixed.weight if fixed else l.weight).to(dtype).T.contiguous() for l in network.layers]
    if fixed:
        params = [LIFFixedParams(l.fixed.params.du_fx, l.fixed.params.dv_fx, torch.as_tensor(np.asarray(l.fixed.params.vth)),
                                 torch.as_tensor(np.asarray(l.fixed.params.bias_mant)), l.fixed.params.bias_exp) for l in network.layers]
        step = lif_step_fixed
    else:
        params = [LIFParams(l.params.du, l.params.dv, torch.as_tensor(l.params.vth), torch.as_tensor(l.params.bias)) for l in network.layers]
        step = lif_step_float
    states = [LIFState(torch.zeros(n, l.n_out, dtype=dtype), torch.zeros(n, l.n_out, dtype=dtype)) for l in network.layers]
    counts = [torch.zeros(n, l.n_out, dtype=torch.int64) for l in network.layers]
    trains = [torch.zeros(n, steps, l.n_out, dtype=torch.bool) for l in network.layers] if record else None
    # integer weights times 0/1 spikes: a float64 matmul is exact (|sum| << 2^53) and uses BLAS,
    # where an int64 matmul does not
    wf = [w.to(torch.float64) for w in ws]
    for t in range(steps):
        s = x[:, t]
        for i in range(len(network.layers)):
            a = s.to(torch.float64) @ wf[i]
            states[i], s = step(states[i], a.to(dtype) if fixed else a, params[i], torch)
            counts[i] += s
            if trains is not None:
                trains[i][:, t] = s
            s = s.to(dtype)
    return counts, trains
