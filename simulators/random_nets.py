"""Random ternary networks for tests and benchmarks, with consistent float and fixed-point forms.

Weights are ternary {-1, 0, +1}; thresholds and biases are drawn as integers on the fixed-point
grid and mapped by the deployment rule (:func:`simulators.fixed_point.fold_ternary`) with one even
scale ``s``, so the float and fixed-point forms compute the same spikes.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .fixed_point import ACT_UNIT, fold_ternary
from .network import Network
from .neuron import decays_to_fixed


def random_ternary_network(sizes: Sequence[int], seed: int = 0, du: float = 1.0, dv: float = 0.25,
                           with_bias: bool = False, scale: int = 2, density: float = 0.5) -> Network:
    rng = np.random.default_rng(seed)
    layers = []
    decays_to_fixed(du, dv)  # fail before drawing anything when the decays cannot go to Loihi
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = rng.choice([-1, 0, 1], size=(n_out, n_in), p=[density / 2, 1 - density, density / 2]).astype(np.int64)
        # threshold around the typical input a neuron receives, so layers spike but not always
        vth_int = max(1, int(round(scale * rng.uniform(1.0, 3.0))))
        bias_eff = (rng.integers(-20, 40, size=n_out) * scale) if with_bias else np.zeros(n_out, np.int64)
        layers.append(fold_ternary(f"layer{i}", w, vth_int / scale, bias_eff / (ACT_UNIT * scale), du, dv, 0,
                                   scale=scale))
    return Network(tuple(layers))


def random_spikes(n: int, steps: int, n_in: int, rate: float = 0.3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed + 1000).random((n, steps, n_in)) < rate
