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
