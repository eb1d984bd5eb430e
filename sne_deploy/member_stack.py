"""All K students of an ensemble as one module, so training runs every member in the same tensor
operations instead of a Python loop over members per batch.

Every weight has a leading member dimension: layer l holds ``(K, out_l, in_l)``. The members share
one architecture; groups of different sizes are padded to the largest one and the padded output
neurons are masked out of every loss and count (they are dropped on export). The time loop is
:func:`~sne_deploy.snn.run_members_float`, the one a single :class:`~sne_deploy.snn.StudentSNN`
runs too (K = 1), over ``sne_deploy.simulators.neuron.lif_step_float``. :meth:`MemberStack.members`
slices the stack into ordinary ``StudentSNN`` objects for export and checkpoints, so nothing
downstream knows the students were trained together.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from .quantization import layer_delta, ste_ternary
from .snn import StudentSNN, StudentSpec, run_members_float, weight_shapes


class MemberStack(nn.Module):
    """K spiking networks ``spec.sizes(out_sizes[k])`` trained as one.

    ``ternary=False`` gives the full-precision twins of Twin Network Augmentation."""

    out_mask: torch.Tensor  # a buffer (register_buffer), declared for the type checker

    def __init__(self, spec: StudentSpec, out_sizes: Sequence[int], ternary: bool = True, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        k, g = len(out_sizes), max(out_sizes)
        self.spec, self.ternary = spec, ternary
        self.out_sizes = [int(s) for s in out_sizes]
        self.convs = list(spec.convs)
        self.sizes = spec.sizes(g)
        self.steps, self.du, self.dv = spec.steps, spec.du, spec.dv
        self.input_delta = spec.input_delta  # the input layer's ternary threshold (the others: TWN's)
        self.weights = nn.ParameterList(
            [
                nn.Parameter(torch.randn(k, o, i, generator=gen) * (2.0 / np.sqrt(i)))
                for o, i in weight_shapes(self.sizes, self.convs)
            ]
        )
        self.biases = nn.ParameterList([nn.Parameter(torch.zeros(k, 1, o)) for o in self.sizes[1:]])
        self.gamma = nn.Parameter(torch.full((k, 1, g), 2.0))
        self.beta = nn.Parameter(torch.full((k, 1, g), -1.0))
        mask = torch.zeros(k, 1, g)
        for j, s in enumerate(self.out_sizes):
            mask[j, 0, :s] = 1.0
        self.register_buffer("out_mask", mask)  # (K, 1, G): 1 where member k has that output

    @property
    def n_members(self) -> int:
        return len(self.out_sizes)

    def forward(self, spikes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """spikes (N, T, n_in) -> (output counts (K, N, G), spikes per member and sample (K, N));
        padded outputs count 0."""
        last = len(self.weights) - 1
        row_mask = self.out_mask.transpose(1, 2)  # (K, G, 1): the last layer's real rows
        ws = [
            (ste_ternary(w, row_mask if i == last else None, layer_delta(i, self.input_delta)) if self.ternary else w)
            for i, w in enumerate(self.weights)
        ]
        return run_members_float(
            ws,
            list(self.biases),
            spikes,
            self.spec.layer_dus(len(ws)),
            self.dv,
            self.out_mask,
            self.convs,
            self.spec.input_unit,
        )

    def readout(self, counts: torch.Tensor) -> torch.Tensor:
        """Counts (K, N, G) -> predicted standardised features (K, N, G), host side."""
        return counts / self.steps * self.gamma + self.beta

    @torch.no_grad()
    def members(self) -> list[StudentSNN]:
        """The stack as K ordinary students (padding dropped), for export and checkpoints."""
        out = []
        for j, g in enumerate(self.out_sizes):
            st = StudentSNN(self.spec, g, self.ternary, seed=0)
            for i, (w, b) in enumerate(zip(self.weights, self.biases)):
                last = i == len(self.weights) - 1
                st.weights[i].copy_(w[j, : g if last else w.shape[1]].cpu())
                st.biases[i].copy_(b[j, 0, : g if last else b.shape[2]].cpu())  # a conv layer: one bias per neuron
            st.gamma.copy_(self.gamma[j, 0, :g].cpu())
            st.beta.copy_(self.beta[j, 0, :g].cpu())
            out.append(st)
        return out
