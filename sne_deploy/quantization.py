"""Ternary weights for training, and the integer scale that maps them onto Loihi's fixed point.

Training (Ternary Weight Networks): ``w_t = sign(w) * [|w| > 0.7 mean|w|]`` with one scale
``alpha`` per layer (the mean |w| of the kept weights); the straight-through estimator passes the
gradient to the latent float weights unchanged.

Deployment folds alpha into the threshold and bias (``vth / alpha``, ``bias / alpha``) and maps
the result onto Loihi's integers with :func:`simulators.fixed_point.fold_ternary`.
"""
from __future__ import annotations

import torch

TWN_DELTA = 0.7


def ternarize(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(w_t in {-1, 0, 1}, alpha > 0) for a weight matrix, without gradient."""
    w = w.detach()
    a = w.abs()
    mask = a > TWN_DELTA * a.mean()
    alpha = (a * mask).sum() / mask.sum().clamp(min=1)
    return torch.sign(w) * mask, alpha.clamp(min=1e-8)


def ste_ternary(w: torch.Tensor) -> torch.Tensor:
    """alpha * w_t in the forward pass, identity in the backward pass."""
    wt, alpha = ternarize(w)
    return w + (alpha * wt - w).detach()
