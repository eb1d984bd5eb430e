"""Deterministic input codes shared by training and every backend.

Every backend must see the same inputs, so an encoder is a pure function with no random state.
Three codes are named, and a bundle records which one its students were trained on:

* ``regular-if`` (phase 0) and ``regular-if-centred`` (phase 1/2) are *regular
  integrate-and-fire* (deterministic rate) codes. A pixel of intensity x in [0, 1] feeds an
  integrator that starts at ``phase`` and spikes each time it crosses an integer: at step t
  (0-based) exactly when floor((t + 1) * x + phase) > floor(t * x + phase). Over T steps it emits
  floor(T * x + phase) evenly spaced spikes. With phase 0, at T = 4 every pixel below 0.25 is
  silent and the first step carries only pixels of exactly 1; the centred code's round(T x)
  spikes (halves up) let pixels from 0.125 on spike and put every pixel of 0.5 or more in the
  first step. At T = 4 on Fashion-MNIST it costs a quarter more input spikes (measured in
  benchmarks/fashion_mnist.py's input_code ablation).
* ``graded`` sends each pixel once, as one *graded spike* (Loihi 2's spikes may carry an integer
  payload) of round(15 x) at a sample's first step, and nothing after. A network trained on it
  holds that input in its first layer's synaptic current for the sample (the slowest current
  decay Loihi has, ``neuron.HOLD_DU``), so its first layer integrates a constant drive, as a
  network fed the intensities directly ("direct encoding") would. An input layer's synaptic
  events are then one per non-zero pixel and synapse (each a weight x payload multiply) instead
  of one per input spike: on Fashion-MNIST 367 messages a sample against the centred code's 894
  spikes at T = 4 (1,789 at T = 8, where ``graded`` still sends 367). The payload's 4 bits
  (:data:`GRADED_LEVELS`) give the intensity to 1/15.

The arithmetic is done in float64 whatever the input dtype, so a float32 tensor from training and
a float64 array from a loader give the same inputs.

A fourth name, ``events``, is no code at all: the data are spike counts per time bin already (an
event camera's frames, as tonic's ``ToFrame`` makes them). A sample's inputs are then its T bins
flattened time-major, (N, T * n_in), and the "encoder" only reshapes them; what the teacher and
the gate see of it is :func:`events_frame`.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError, check_choice

__all__ = [
    "encode_graded",
    "graded_levels",
    "encode_regular",
    "encode_spikes",
    "events_frame",
    "input_width",
    "ENCODING_NAME",
    "ENCODINGS",
    "EVENTS",
    "GRADED",
    "GRADED_LEVELS",
    "INPUT_CODES",
]

ENCODING_NAME = "regular-if"  # the default, and what bundles without a name were trained on
ENCODINGS = {"regular-if": 0.0, "regular-if-centred": 0.5}  # name -> the integrator's initial phase
GRADED = "graded"  # one graded spike per pixel at the first step, held by the first layer's current
GRADED_LEVELS = 15  # a graded input's largest payload: 4 bits, the intensity to 1/15
EVENTS = "events"  # inputs that are event counts per bin already: no encoder
INPUT_CODES = (*ENCODINGS, GRADED, EVENTS)


def encode_spikes(x: np.ndarray, steps: int, encoding: str = ENCODING_NAME) -> np.ndarray:
    """Encode intensities ``x`` (N, n_in) in [0, 1] with the named code as spikes (N, steps, n_in);
    ``graded`` gives each input's payload (int64); for ``events``, ``x`` (N, steps * n_in) holds
    the counts and comes back as (N, steps, n_in) (bool when every count is 0 or 1, else int64)."""
    check_choice("input encoding", encoding, INPUT_CODES)
    if encoding == EVENTS:
        return _event_bins(x, steps)
    if encoding == GRADED:
        return encode_graded(x, steps)
    return encode_regular(x, steps, ENCODINGS[encoding])


def graded_levels(encoding: str) -> int:
    """The largest payload of the code's graded inputs (:data:`GRADED_LEVELS`), or 0 for codes
    whose inputs are binary spikes or counted events."""
    return GRADED_LEVELS if encoding == GRADED else 0


def input_width(n_in: int, steps: int, encoding: str) -> int:
    """How many numbers a sample's inputs hold: one intensity per input, or for ``events`` its
    count in each of the ``steps`` bins."""
    return n_in * steps if encoding == EVENTS else n_in


def events_frame(x: np.ndarray, steps: int, scale: float) -> np.ndarray:
    """What a frame-based network (the teacher, the gate) sees of event inputs ``x`` (N, steps *
    n_in): each input's events summed over the bins, over ``scale`` (the training set's 99th
    percentile of those sums, recorded with the data), clipped to [0, 1]: (N, n_in) float32."""
    total = _event_bins(x, steps).sum(axis=1, dtype=np.float64)
    return np.clip(total / scale, 0.0, 1.0).astype(np.float32)


def _event_bins(x: np.ndarray, steps: int) -> np.ndarray:
    a = np.asarray(x)
    if a.ndim != 2 or steps < 1 or a.shape[1] % steps:
        raise InputError(f"event inputs must have shape (N, {steps} x n_in), {steps} bins per sample, got {a.shape}")
    if a.dtype != np.bool_:
        if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a) or not np.all(np.isfinite(a)):
            raise InputError("event inputs must be non-negative whole counts; found NaN, inf or non-numbers")
        if a.size and (a.min() < 0 or np.any(a != np.round(a))):
            raise InputError("event inputs must be non-negative whole counts per bin; found negatives or fractions")
        a = a.astype(bool) if a.size == 0 or a.max() <= 1 else a.astype(np.int64)
    return a.reshape(len(a), steps, -1)


def encode_graded(x: np.ndarray, steps: int, levels: int = GRADED_LEVELS) -> np.ndarray:
    """Intensities ``x`` (N, n_in) in [0, 1] as graded spikes (N, steps, n_in) int64: the payload
    round(levels x) (halves to even, numpy's rounding) at the first step, 0 at every later one."""
    q = np.round(_intensities(x, steps) * levels).astype(np.int64)
    out = np.zeros((q.shape[0], steps, q.shape[1]), dtype=np.int64)
    out[:, 0] = q
    return out


def _intensities(x: np.ndarray, steps: int) -> np.ndarray:
    """``x`` as float64 (N, n_in) intensities in [0, 1]; anything else is the caller's error."""
    if steps < 1:
        raise InputError(f"steps must be >= 1, got {steps}")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise InputError(f"expected intensities of shape (N, n_in), got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InputError("intensities contain NaN or inf")
    if x.size and (x.min() < 0.0 or x.max() > 1.0):
        raise InputError(f"intensities must lie in [0, 1], got range [{x.min():.3g}, {x.max():.3g}]")
    return x


def encode_regular(x: np.ndarray, steps: int, phase: float = 0.0) -> np.ndarray:
    """Encode intensities ``x`` of shape ``(N, n_in)`` in [0, 1] as spikes ``(N, steps, n_in)`` (bool),
    the integrator starting at ``phase`` in [0, 1).

    Values outside [0, 1] are an error rather than clipped silently: they mean the caller's
    normalisation is wrong.
    """
    if not 0.0 <= phase < 1.0:
        raise InputError(f"encoder phase must lie in [0, 1), got {phase}")
    x = _intensities(x, steps)
    t = np.arange(steps + 1, dtype=np.float64)[None, :, None]
    level = np.floor(t * x[:, None, :] + phase)  # (N, steps + 1, n_in)
    return level[:, 1:, :] > level[:, :-1, :]
