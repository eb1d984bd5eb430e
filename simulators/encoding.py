"""Deterministic spike encoding shared by training and every backend.

Every backend must see the same input spikes, so the encoder is a pure function with no random
state: a *regular integrate-and-fire* (deterministic rate) code. A pixel of intensity x in [0, 1]
feeds an integrator that starts at ``phase`` and spikes each time it crosses an integer: at step
t (0-based) exactly when floor((t + 1) * x + phase) > floor(t * x + phase). Over T steps it emits
floor(T * x + phase) evenly spaced spikes.

Two codes are named, and a bundle records which one its students were trained on:

* ``regular-if`` (phase 0): floor(T x) spikes. At T = 4 every pixel below 0.25 is silent and the
  first step carries only pixels of exactly 1.
* ``regular-if-centred`` (phase 1/2): round(T x) spikes (halves up), so pixels from 0.125 on
  spike and the first step carries every pixel of 0.5 or more. At T = 4 on Fashion-MNIST it costs
  a quarter more input spikes (the Fashion-MNIST default; measured in benchmarks/fashion_mnist.py's
  input_code ablation).

The arithmetic is done in float64 whatever the input dtype, so a float32 tensor from training and
a float64 array from a loader give the same spikes.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError, check_choice

__all__ = ["encode_regular", "encode_spikes", "ENCODING_NAME", "ENCODINGS"]

ENCODING_NAME = "regular-if"  # the default, and what bundles without a name were trained on
ENCODINGS = {"regular-if": 0.0, "regular-if-centred": 0.5}  # name -> the integrator's initial phase


def encode_spikes(x: np.ndarray, steps: int, encoding: str = ENCODING_NAME) -> np.ndarray:
    """Encode intensities ``x`` (N, n_in) in [0, 1] with the named code as spikes (N, steps, n_in)."""
    check_choice("input encoding", encoding, tuple(ENCODINGS))
    return encode_regular(x, steps, ENCODINGS[encoding])


def encode_regular(x: np.ndarray, steps: int, phase: float = 0.0) -> np.ndarray:
    """Encode intensities ``x`` of shape ``(N, n_in)`` in [0, 1] as spikes ``(N, steps, n_in)`` (bool),
    the integrator starting at ``phase`` in [0, 1).

    Values outside [0, 1] are an error rather than clipped silently: they mean the caller's
    normalisation is wrong.
    """
    if steps < 1:
        raise InputError(f"steps must be >= 1, got {steps}")
    if not 0.0 <= phase < 1.0:
        raise InputError(f"encoder phase must lie in [0, 1), got {phase}")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise InputError(f"expected intensities of shape (N, n_in), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InputError("intensities contain NaN or inf")
    if x.size and (x.min() < 0.0 or x.max() > 1.0):
        raise InputError(f"intensities must lie in [0, 1], got range [{x.min():.3g}, {x.max():.3g}]")
    t = np.arange(steps + 1, dtype=np.float64)[None, :, None]
    level = np.floor(t * x[:, None, :] + phase)  # (N, steps + 1, n_in)
    return level[:, 1:, :] > level[:, :-1, :]
