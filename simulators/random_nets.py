"""Random ternary networks for tests and benchmarks, with consistent float and fixed-point forms.

Weights are ternary {-1, 0, +1}; the fixed-point form uses one even integer scale ``s`` per layer
(Lava keeps even 8-bit weights) and folds it into the threshold: W_int = s*W, vth_int = s*vth,
bias_eff = 64*s*bias, so one fixed-point unit is 1/(64 s) of the float form.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .network import FixedLayer, Network, make_layer
from .neuron import LIFFixedParams, bias_to_mant_exp, decays_to_fixed


def random_ternary_network(sizes: Sequence[int], seed: int = 0, du: float = 1.0, dv: float = 0.25,
                           with_bias: bool = False, scale: int = 2, density: float = 0.5) -> Network:
    rng = np.random.default_rng(seed)
    layers = []
    du_fx, dv_fx = decays_to_fixed(du, dv)
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = rng.choice([-1, 0, 1], size=(n_out, n_in), p=[density / 2, 1 - density, density / 2]).astype(np.int64)
        # threshold around the typical input a neuron receives, so layers spike but not always
        vth_int = max(1, int(round(scale * rng.uniform(1.0, 3.0))))
        bias_eff = (rng.integers(-20, 40, size=n_out) * scale) if with_bias else np.zeros(n_out, np.int64)
        mant, exp = bias_to_mant_exp(bias_eff)
        fixed = FixedLayer(w * scale, LIFFixedParams(du_fx, dv_fx, np.full(n_out, vth_int), mant, exp))
        layers.append(make_layer(f"layer{i}", w.astype(np.float64), du, dv, vth_int / scale,
                                 (mant << exp) / (64.0 * scale), fixed=fixed))
    return Network(tuple(layers))


def random_spikes(n: int, steps: int, n_in: int, rate: float = 0.3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed + 1000).random((n, steps, n_in)) < rate
