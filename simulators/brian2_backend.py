"""Brian2 backend: the neuron contract as Brian2 statements, spike-exact with the reference.

Exactness needs two things (DESIGN.md §5):

* **One slot, fixed order.** Brian2's default schedule would add a step per layer. Every object
  of layer l runs in the ``synapses`` slot with ``order`` 10*l + k: decay u (k=0), synaptic
  propagation from layer l-1's spikes of this very step (k=1), update v (k=2), threshold (k=3).
  The input generator fires in the earlier ``thresholds`` slot. Reset (v = 0) runs in ``resets``.
* **The same floating-point operations.** Each float statement does one operation, so no compiler
  can contract ``v*kv + u`` into an FMA; we also pass ``-ffp-contract=off``. Fixed point runs on
  float64 variables that hold integers (< 2^53, so every operation is exact), following Lava's
  bit-accurate model step by step.

Samples are batched: B copies of the network run side by side (block-diagonal synapses) and the
batches follow each other in time, with u and v zeroed every T steps. Code generation uses the
Cython target with a project-local cache (``$SNE_BRIAN2_CACHE`` or ``<repo>/.cache/brian2``);
when Cython cannot compile, the numpy target runs the same statements.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Optional

import numpy as np

from .network import Network
from .neuron import ACT_SHIFT, DECAY_UNITY, MAX_UV, V_LIMIT, VTH_SHIFT, effective_bias
from .result import Result, check_inputs, make_result

_SYNAPSE_BUDGET = 2_000_000  # synapses per batched network: bounds memory and build time


def cache_dir() -> Path:
    env = os.environ.get("SNE_BRIAN2_CACHE")
    return Path(env) if env else Path(__file__).resolve().parent.parent / ".cache" / "brian2"


def _configure(target: str) -> None:
    from brian2 import prefs

    prefs.codegen.target = target
    prefs.core.default_float_dtype = np.float64
    d = cache_dir()
    d.mkdir(parents=True, exist_ok=True)
    prefs.codegen.runtime.cython.cache_dir = str(d)
    prefs.codegen.runtime.cython.multiprocess_safe = True
    prefs.codegen.cpp.extra_compile_args_gcc = ["-w", "-O3", "-ffp-contract=off"]
    prefs.logging.console_log_level = "ERROR"


def _batch_size(network: Network, n: int) -> int:
    nnz = sum(int(np.count_nonzero(layer.weight)) for layer in network.layers)
    return int(max(1, min(n, _SYNAPSE_BUDGET // max(nnz, 1), 512)))


def run_brian2(network: Network, spikes: np.ndarray, mode: str = "float", record: bool = False,
               target: Optional[str] = None, batch: Optional[int] = None) -> Result:
    spikes = check_inputs(network, spikes, mode)
    target = target or os.environ.get("SNE_BRIAN2_TARGET", "cython")
    try:
        return _run(network, spikes, mode, record, target, batch)
    except Exception as e:
        if target != "cython" or "compil" not in f"{type(e).__name__} {e}".lower():
            raise
        res = _run(network, spikes, mode, record, "numpy", batch)
        res.details["fallback"] = f"cython failed ({type(e).__name__}); ran the numpy target"
        return res


def _run(network: Network, spikes: np.ndarray, mode: str, record: bool, target: str, batch: Optional[int]) -> Result:
    import brian2 as b2

    _configure(target)
    t0 = time.perf_counter()
    n, steps, n_in = spikes.shape
    bsz = batch or _batch_size(network, n)
    n_batches = -(-n // bsz)
    dt = b2.defaultclock.dt = 1 * b2.ms

    # input: sample s = b*bsz + c occupies copy c during batch b, steps b*T .. b*T + T-1
    s_idx, t_idx, k_idx = np.nonzero(spikes)
    indices = (s_idx % bsz) * n_in + k_idx
    times = ((s_idx // bsz) * steps + t_idx) * dt
    inp = b2.SpikeGeneratorGroup(bsz * n_in, indices, times)
    inp.when, inp.order = "thresholds", 0
    objects: list = [inp]
    monitors = []
    fixed = mode == "fixed"
    prev = inp
    for li, layer in enumerate(network.layers):
        size = layer.n_out
        g = b2.NeuronGroup(
            bsz * size,
            """u : 1
               v : 1
               vth : 1 (constant)
               bias : 1 (constant)
               mu : 1 (shared, constant)
               mv : 1 (shared, constant)""",
            threshold="v > vth",
            reset="v = 0",
        )
        if fixed:
            f = layer.fixed.params
            g.vth = np.tile(np.asarray(f.vth, dtype=np.float64) * (1 << VTH_SHIFT), bsz)
            g.bias = np.tile(np.broadcast_to(effective_bias(f), (size,)).astype(np.float64), bsz)
            g.mu = float(DECAY_UNITY - (f.du_fx + 1))
            g.mv = float(DECAY_UNITY - f.dv_fx)
            decay_u = f"u = sign(u) * floor(abs(u) * mu / {DECAY_UNITY})"
            update_v = (
                f"v = sign(v) * floor(abs(v) * mv / {DECAY_UNITY})\n"
                f"u = u - {2 * MAX_UV} * int(u > {MAX_UV})\n"  # 24-bit wrap of u (after its input)
                f"u = u + {2 * MAX_UV} * int(u <= -{MAX_UV})\n"
                "v = v + u\n"
                "v = v + bias\n"
                f"v = clip(v, -{V_LIMIT}, {V_LIMIT})"
            )
            wmat = layer.fixed.weight.astype(np.float64) * (1 << ACT_SHIFT)
        else:
            p = layer.params
            g.vth = np.tile(np.asarray(p.vth, dtype=np.float64), bsz)
            g.bias = np.tile(np.asarray(p.bias, dtype=np.float64), bsz)
            g.mu = 1.0 - p.du
            g.mv = 1.0 - p.dv
            decay_u = "u = u * mu"
            update_v = "v = v * mv\nv = v + u\nv = v + bias"
            wmat = layer.weight
        g.run_regularly(decay_u, when="synapses", order=10 * li + 0)
        g.run_regularly(update_v, when="synapses", order=10 * li + 2)
        g.run_regularly("u = 0\nv = 0", dt=steps * dt, when="start", order=li)
        g.thresholder["spike"].when, g.thresholder["spike"].order = "synapses", 10 * li + 3

        post, pre = np.nonzero(wmat)  # only non-zero synapses exist, as on chip
        syn = b2.Synapses(prev, g, "w : 1 (constant)", on_pre="u_post += w")
        prev_size = layer.n_in
        copies = np.repeat(np.arange(bsz), len(pre))
        syn.connect(i=np.tile(pre, bsz) + copies * prev_size, j=np.tile(post, bsz) + copies * size)
        syn.w = np.tile(wmat[post, pre], bsz)
        syn.pre.when, syn.pre.order = "synapses", 10 * li + 1
        mon = b2.SpikeMonitor(g)
        objects += [g, syn, mon]
        monitors.append((mon, size))
        prev = g

    net = b2.Network(*objects)
    t_build = time.perf_counter() - t0
    net.run(n_batches * steps * dt, namespace={})  # no implicit look-up of our locals
    counts = [np.zeros((n, size), np.int64) for _, size in monitors]
    trains = [np.zeros((n, steps, size), bool) for _, size in monitors] if record else None
    for li, (mon, size) in enumerate(monitors):
        idx = np.asarray(mon.i[:], dtype=np.int64)
        step = np.round(np.asarray(mon.t[:] / dt)).astype(np.int64)
        sample = (step // steps) * bsz + idx // size
        neuron = idx % size
        keep = sample < n  # padding copies of the last batch
        np.add.at(counts[li], (sample[keep], neuron[keep]), 1)
        if record:
            trains[li][sample[keep], (step % steps)[keep], neuron[keep]] = True
    wall = time.perf_counter() - t0
    details = {"target": target, "batch": bsz, "build_s": t_build, "run_s": wall - t_build, "brian2": b2.__version__}
    return make_result(network, "brian2", mode, spikes, counts, wall, trains, details)
