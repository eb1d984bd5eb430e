"""The numpy reference backend: the neuron contract run directly, batched over samples.

It is delay-free (layer l at step t sees layer l-1's spikes of step t) and is the yardstick the
other backends are tested against.
"""
from __future__ import annotations

import time

import numpy as np

from .network import Network
from .neuron import LIFState, lif_step_fixed_checked, lif_step_float
from .result import Result, check_inputs, make_result


def run_reference(network: Network, spikes: np.ndarray, mode: str = "float", record: bool = False) -> Result:
    spikes = check_inputs(network, spikes, mode)
    t0 = time.perf_counter()
    n, steps, _ = spikes.shape
    fixed = mode == "fixed"
    dtype = np.int64 if fixed else np.float64
    states = [LIFState(np.zeros((n, l.n_out), dtype), np.zeros((n, l.n_out), dtype)) for l in network.layers]
    weights = [np.ascontiguousarray(l.fixed.weight.T if fixed else l.weight.T, dtype=np.float64) for l in network.layers]
    counts = [np.zeros((n, l.n_out), np.int64) for l in network.layers]
    trains = [np.zeros((n, steps, l.n_out), bool) for l in network.layers] if record else None
    saturated = np.zeros(len(network.layers), np.int64)
    for t in range(steps):
        s = spikes[:, t, :]
        for i, layer in enumerate(network.layers):
            a = s.astype(np.float64) @ weights[i]  # exact for integer weights and 0/1 spikes; BLAS-fast
            if fixed:
                a = a.astype(np.int64)
            if fixed:
                states[i], s, over = lif_step_fixed_checked(states[i], a, layer.fixed.params)
                saturated[i] += int(over.sum())
            else:
                states[i], s = lif_step_float(states[i], a, layer.params)
            counts[i] += s
            if record:
                trains[i][:, t, :] = s
    details = {}
    if fixed and saturated.any():
        details["overflow_neuron_steps"] = saturated.tolist()
    return make_result(network, "reference", mode, spikes, counts, time.perf_counter() - t0, trains, details)
