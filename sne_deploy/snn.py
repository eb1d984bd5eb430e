"""Student SNNs in torch, on the neuron contract of ``simulators.neuron`` (the same step functions,
run with ``xp=torch``), and the PyTorch reference for exported networks in float or fixed point.

:func:`run_network_torch` is the shared simulation loop of ``simulators.loop`` on torch arrays;
:class:`StudentSNN` is the trainable form (float32, surrogate gradient, ternary weights through
the STE; its loop keeps gradients, so it is its own) that :meth:`StudentSNN.to_network` turns
into a deployable network.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import torch
from norse.torch.functional.superspike import super_fn
from torch import nn

from simulators.fixed_point import fold_ternary
from simulators.loop import ArrayLib
from simulators.network import Network
from simulators.neuron import LIFParams, LIFState, decays_to_fixed, lif_step_float
from simulators.reference import run_reference
from simulators.result import Result

from .quantization import ste_ternary, ternarize

SURROGATE_ALPHA = 100.0


def _surrogate(x: torch.Tensor) -> torch.Tensor:
    return super_fn(x, SURROGATE_ALPHA)


def run_members_float(weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor], spikes: torch.Tensor,
                      du: float, dv: float, out_mask: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The differentiable time loop of K spiking MLPs at once (K = 1 for one student).

    ``weights[l]`` (K, out, in), ``biases[l]`` (K, 1, out), ``spikes`` (N, T, n_in), shared by
    every member. The first layer's currents for all steps and members come from one matrix
    product; then each step runs :func:`~simulators.neuron.lif_step_float` with the surrogate
    gradient. ``out_mask`` (K, 1, out) silences padded outputs. Returns output counts (K, N, out)
    and spikes per member and sample (K, N)."""
    n, t_steps, n_in = spikes.shape
    k = weights[0].shape[0]
    a0 = (spikes.reshape(n * t_steps, n_in) @ weights[0].reshape(-1, n_in).T).reshape(n, t_steps, k, -1).permute(1, 2, 0, 3)
    states = [LIFState(spikes.new_zeros(k, n, w.shape[1]), spikes.new_zeros(k, n, w.shape[1])) for w in weights]
    out = spikes.new_zeros(k, n, weights[-1].shape[1])
    total = spikes.new_zeros(k, n)
    last = len(weights) - 1
    for t in range(t_steps):
        s = a0[t]
        for i, (w, b) in enumerate(zip(weights, biases)):
            a = s if i == 0 else torch.bmm(s, w.transpose(1, 2))
            states[i], s = lif_step_float(states[i], a, LIFParams(du, dv, 1.0, b), torch, _surrogate)
            if i == last and out_mask is not None:
                s = s * out_mask
            total = total + s.sum(dim=2)
        out = out + s
    return out, total


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
        out, total = run_members_float([w[None] for w in self.effective_weights()], [b[None, None] for b in self.biases],
                                       spikes, self.du, self.dv)
        return out[0], total[0]

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


def _torch_asarray(a: Any, dtype: str) -> torch.Tensor:
    t = a if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))
    return t.to(getattr(torch, dtype))


TORCH = ArrayLib("torch", torch, _torch_asarray, lambda shape, d: torch.zeros(shape, dtype=getattr(torch, d)),
                 lambda t: t.numpy())


@torch.no_grad()
def run_network_torch(network: Network, spikes: torch.Tensor | np.ndarray, mode: str = "float",
                      record: bool = False) -> Result:
    """The PyTorch reference: the shared simulation loop (:func:`simulators.loop.run_loop`) on torch
    arrays (float64 or int64), as the numpy reference runs it on numpy arrays."""
    return run_reference(network, spikes, mode, record, lib=TORCH, backend="torch")
