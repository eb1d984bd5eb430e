"""Ternary weights for training, and the integer scale that maps them onto Loihi's fixed point.

Training (Ternary Weight Networks): ``w_t = sign(w) * [|w| > 0.7 mean|w|]`` with one scale
``alpha`` per layer (the mean |w| of the kept weights); the straight-through estimator passes the
gradient to the latent float weights unchanged.

Deployment: the float form keeps ``w_t`` and folds alpha into the threshold and bias
(``vth / alpha``, ``bias / alpha``). The fixed-point form multiplies by one even integer ``s``
per layer: ``W_int = s * w_t`` (Lava keeps even 8-bit weights), ``vth_int = round(s / alpha)``,
``bias_eff = round(64 * s * bias / alpha)``. Larger ``s`` means finer thresholds but a larger
membrane range; :func:`choose_scale` takes the largest even ``s`` whose worst-case u and v stay
inside 24 bits.
"""
from __future__ import annotations

import numpy as np
import torch

from simulators.network import FixedLayer, Layer, worst_case_uv
from simulators.neuron import MAX_UV, WEIGHT_MAX, LIFFixedParams, LIFParams, decays_to_fixed

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


def choose_scale(w_tern: np.ndarray, du: float, dv: float, steps: int, bias_syn: np.ndarray | None = None) -> int:
    """The largest even integer scale in [2, 254] whose worst case (``worst_case_uv``) fits 24 bits."""
    n_out = w_tern.shape[0]
    bias = np.zeros(n_out) if bias_syn is None else np.asarray(bias_syn, dtype=np.float64)
    du_fx, dv_fx = decays_to_fixed(du, dv)
    # the bound is linear in s: evaluate it at s = 1 (bias in exact units, unrounded)
    unit = FixedLayer(np.asarray(w_tern, dtype=np.float64), LIFFixedParams(du_fx, dv_fx, 1, np.abs(bias) * 64, 0))
    umax, vmax = worst_case_uv(Layer("probe", np.asarray(w_tern, dtype=np.float64), LIFParams(du, dv, 1.0, 0.0), fixed=unit), steps)
    s = int(MAX_UV // max(umax, vmax, 64.0))
    s = min(WEIGHT_MAX, s) // 2 * 2
    return max(s, 2)
