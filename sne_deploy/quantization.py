"""Ternary weights for training (the deployment scale lives in ``sne_deploy.simulators.fixed_point``).

Training (Ternary Weight Networks): ``w_t = sign(w) * [|w| > delta mean|w|]`` with one scale
``alpha`` per layer (the mean |w| of the kept weights); the straight-through estimator passes the
gradient to the latent float weights unchanged. TWN's delta is 0.7 (about half the weights kept);
a larger delta keeps fewer. On Loihi's constants a member's energy is almost all its input
layer's synaptic events (input spikes x non-zero fan-out), so the students may give their input
layer a larger delta of its own (``TrainConfig.input_delta``).

Deployment folds alpha into the threshold and bias (``vth / alpha``, ``bias / alpha``) and maps
the result onto Loihi's integers with :func:`sne_deploy.simulators.fixed_point.fold_ternary`.
"""

from __future__ import annotations

from typing import Optional

import torch

TWN_DELTA = 0.7


def layer_delta(layer: int, input_delta: float) -> float:
    """The ternary threshold of weight layer ``layer`` (0 = the input layer): the students' one rule."""
    return input_delta if layer == 0 else TWN_DELTA


def ternarize(
    w: torch.Tensor, valid: Optional[torch.Tensor] = None, delta: float = TWN_DELTA
) -> tuple[torch.Tensor, torch.Tensor]:
    """(w_t in {-1, 0, 1}, alpha > 0) for a weight matrix, without gradient.

    The threshold and alpha are taken over the last two dimensions, so a stack of matrices
    (members, out, in) is ternarised member by member exactly as each matrix alone would be;
    alpha then has shape (members, 1, 1) (a 0-d tensor for one matrix). ``valid`` (0/1,
    broadcastable to ``w``) leaves padding out of the statistics and zeroes it."""
    w = w.detach()
    a = w.abs() if valid is None else w.abs() * valid
    n = (
        a.new_tensor(a.shape[-2] * a.shape[-1])
        if valid is None
        else torch.broadcast_to(valid, a.shape).sum(dim=(-2, -1), keepdim=True)
    )
    mask = a > delta * a.sum(dim=(-2, -1), keepdim=True) / n
    alpha = (a * mask).sum(dim=(-2, -1), keepdim=True) / mask.sum(dim=(-2, -1), keepdim=True).clamp(min=1)
    if w.dim() == 2:
        alpha = alpha.reshape(())
    return torch.sign(w) * mask, alpha.clamp(min=1e-8)


def ste_nonzero(w: torch.Tensor, delta: float, softness: float = 0.5) -> torch.Tensor:
    """Which weights ternarise to non-zero (1.0 or 0.0, the mask of :func:`ternarize`) in the
    forward pass; in the backward pass the gradient of ``sigmoid((|w| - Delta) / (softness Delta))``,
    ``Delta = delta x mean|w|`` taken per matrix.

    The count of a pixel's non-zero synapses is what its every spike costs (its fan-out), but a
    hard mask has no gradient: this straight-through surrogate lets a penalty on the count move
    the weights near the threshold, where keeping or dropping a synapse is decided, while the
    value it reports is the exact count. The gradient also flows through Delta: TWN's threshold
    follows mean|w|, so shrinking the weights of busy pixels alone would lower it and keep as
    many synapses elsewhere; measured on digits (6 epochs), a penalty with Delta detached cut
    the input events by at most 21 % however large its weight, with Delta's gradient by 29 % at
    a tenth of that weight, moving the kept synapses from the busy pixels to the quiet ones."""
    a = w.abs()
    cut = (delta * a.mean(dim=(-2, -1), keepdim=True)).clamp(min=1e-12)
    soft = torch.sigmoid((a - cut) / (softness * cut.detach()))
    return soft + ((a > cut).to(w.dtype) - soft).detach()


def ste_ternary(w: torch.Tensor, valid: Optional[torch.Tensor] = None, delta: float = TWN_DELTA) -> torch.Tensor:
    """alpha * w_t in the forward pass, identity in the backward pass."""
    wt, alpha = ternarize(w, valid, delta)
    return w + (alpha * wt - w).detach()
