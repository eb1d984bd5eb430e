"""The host side of the ensemble: turn member spike counts into class scores.

:class:`HostHead` is the one place the *sleeping-member rule* lives: a sleeping member's spike
counts are replaced by that member's mean counts on the training set, then every member's
readout maps counts to standardised features, the features are put back in the teacher's
order (teacher dimensions no member predicts, the constant ones, stay at their training value),
de-standardised, and the teacher's (fine-tuned) head classifies them. The same module is
exported to ONNX (inputs: concatenated counts and the awake mask) and used by the runtime, so
training, export and simulation cannot impute differently.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from torch import nn


def placement(order: np.ndarray, dims: int) -> torch.Tensor:
    """(len(order), dims) matrix taking outputs to teacher dimensions: output i predicts dimension
    order[i]; a dimension predicted by several outputs (a population) gets their mean; a
    dimension nobody predicts gets 0."""
    order = np.asarray(order, dtype=np.int64)
    mult = np.bincount(order, minlength=dims)
    p = torch.zeros(len(order), dims)
    p[torch.arange(len(order)), torch.as_tensor(order)] = torch.as_tensor(1.0 / mult[order], dtype=torch.float32)
    return p


class HostHead(nn.Module):
    # buffers (register_buffer), declared for the type checker
    place: torch.Tensor
    member_of: torch.Tensor
    count_mean: torch.Tensor
    feat_mean: torch.Tensor
    feat_std: torch.Tensor

    def __init__(
        self, groups: Sequence[np.ndarray], feat_mean: np.ndarray, feat_std: np.ndarray, head: nn.Linear, steps: int
    ) -> None:
        super().__init__()
        sizes = [len(g) for g in groups]
        self.sizes = sizes
        self.steps = steps
        order = np.concatenate(groups)
        # member-concatenated position -> teacher dimension (:func:`placement`): dimensions no
        # member predicts (constant, dead teacher features) get 0 and so their training mean
        self.register_buffer("place", placement(order, len(feat_mean)))
        self.register_buffer("member_of", torch.as_tensor(np.repeat(np.arange(len(sizes)), sizes), dtype=torch.int64))
        self.register_buffer("count_mean", torch.zeros(sum(sizes)))
        self.register_buffer("feat_mean", torch.as_tensor(feat_mean, dtype=torch.float32))
        self.register_buffer("feat_std", torch.as_tensor(feat_std, dtype=torch.float32))
        self.gamma = nn.Parameter(torch.ones(sum(sizes)))
        self.beta = nn.Parameter(torch.zeros(sum(sizes)))
        self.head = head

    @property
    def n_members(self) -> int:
        return len(self.sizes)

    def impute(self, counts: torch.Tensor, awake: torch.Tensor) -> torch.Tensor:
        """Sleeping members' counts become their training means (the one imputation rule)."""
        mask = awake.to(counts.dtype)[:, self.member_of]
        return counts * mask + self.count_mean * (1 - mask)

    def features(self, counts: torch.Tensor, awake: torch.Tensor) -> torch.Tensor:
        z = self.impute(counts, awake) / self.steps * self.gamma + self.beta
        return (z @ self.place) * self.feat_std + self.feat_mean

    def forward(self, counts: torch.Tensor, awake: torch.Tensor) -> torch.Tensor:
        """counts (N, sum of group sizes) float, awake (N, K) float 0/1 -> logits (N, classes)."""
        return self.head(self.features(counts, awake))

    def macs(self) -> int:
        """One evaluation: an affine readout per member output, then the linear classifier."""
        return int(sum(self.sizes)) + self.head.in_features * self.head.out_features


class Gate(nn.Module):
    """A tiny host-side ANN scoring each member's expected benefit for one input.

    With ``pool`` > 1 it sees the image (``image_shape``, C x H x W) average-pooled in ``pool`` x
    ``pool`` windows first: its first layer, most of its cost, shrinks by ``pool``²
    (``benchmarks/fashion_gate.py`` measures what that costs the policies)."""

    def __init__(
        self, in_dim: int, n_members: int, hidden: int = 16, image_shape: Optional[tuple] = None, pool: int = 1
    ) -> None:
        super().__init__()
        self.pool, self.in_dim = pool, in_dim
        front: list[nn.Module] = [nn.Flatten()]
        if pool > 1:
            if image_shape is None or len(image_shape) != 3:
                raise ValueError("a pooled gate needs the image shape (C, H, W)")
            c, h, w = (int(d) for d in image_shape)
            front = [nn.Unflatten(1, (c, h, w)), nn.AvgPool2d(pool), nn.Flatten()]
            in_dim = c * (h // pool) * (w // pool)
        self.net = nn.Sequential(*front, nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, n_members))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def macs(self) -> int:
        """One evaluation: the linear layers' MACs (and, pooled, one add per input pixel)."""
        linear = sum(m.in_features * m.out_features for m in self.net if isinstance(m, nn.Linear))
        return linear + (self.in_dim if self.pool > 1 else 0)
