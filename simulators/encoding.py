"""Deterministic spike encoding shared by training and every backend.

Every backend must see the same input spikes, so the encoder is a pure function with no random
state: a *regular integrate-and-fire* (deterministic rate) code. A pixel of intensity x in [0, 1]
spikes at step t (0-based) exactly when floor((t + 1) * x) > floor(t * x), so over T steps it
emits floor(T * x) spikes, evenly spaced: the rate equals x up to 1/T.

The arithmetic is done in float64 whatever the input dtype, so a float32 tensor from training and
a float64 array from a loader give the same spikes.
"""
from __future__ import annotations

import numpy as np

from .errors import InputError

__all__ = ["encode_regular", "ENCODING_NAME"]

ENCODING_NAME = "regular-if"


def encode_regular(x: np.ndarray, steps: int) -> np.ndarray:
    """Encode intensities ``x`` of shape ``(N, n_in)`` in [0, 1] as spikes ``(N, steps, n_in)`` (bool).

    Values outside [0, 1] are an error rather than clipped silently: they mean the caller's
    normalisation is wrong.
    """
    if steps < 1:
        raise InputError(f"steps must be >= 1, got {steps}")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise InputError(f"expected intensities of shape (N, n_in), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InputError("intensities contain NaN or inf")
    if x.size and (x.min() < 0.0 or x.max() > 1.0):
        raise InputError(f"intensities must lie in [0, 1], got range [{x.min():.3g}, {x.max():.3g}]")
    t = np.arange(steps + 1, dtype=np.float64)[None, :, None]
    level = np.floor(t * x[:, None, :])  # (N, steps + 1, n_in)
    return level[:, 1:, :] > level[:, :-1, :]
