"""Brian2 backend: the neuron contract as Brian2 statements, spike-exact with the reference.

Exactness needs two things (both measured: without either, spikes drift from the reference):

* **One slot, fixed order.** Brian2's default schedule would add a step per layer. Every object
  of layer l runs in the ``synapses`` slot with ``order`` 10*l + k: decay u (k=0), synaptic
  propagation from layer l-1's spikes of this very step (k=1), update v (k=2), threshold (k=3).
  The input group fires in the earlier ``thresholds`` slot. Reset (v = 0) runs in ``resets``.
  A layer that sends its spikes late (``Layer.delay``, Spyx's timing) sends them through a relay
  group at orders 10*l + 5..7, zeroed with each sample (see :func:`_delay_relay`).
* **The same floating-point operations.** Each float statement does one operation, so no compiler
  can contract ``v*kv + u`` into an FMA; we also pass ``-ffp-contract=off``. Fixed point runs on
  float64 variables that hold integers (< 2^53, so every operation is exact), following Lava's
  bit-accurate model step by step.

Samples are batched: B copies of the network run side by side (block-diagonal synapses) and the
batches follow each other in time, with u, v and the spike counters zeroed every T steps. Inputs
come from a boolean ``TimedArray`` (one row per step, one column per input of every copy), so a
built C++ program can take new inputs without being rebuilt. Spike counts per neuron and batch are
read at each batch boundary by a ``StateMonitor``: far less data than a ``SpikeMonitor`` of every
spike, which is only added when full spike trains are asked for.

Targets:

* ``cython`` (default): runtime code generation, cached in ``$SNE_BRIAN2_CACHE`` or the user's
  cache folder (``~/.cache/sne-deploy/brian2``); the first compile takes minutes and says so once;
  when Cython cannot compile, the numpy target runs the same statements.
* ``cpp_standalone``: one C++ program per network shape in ``<cache>/standalone/<key>``; the first
  build of a shape compiles (~20 s here), later builds reuse the objects (~3-6 s), and inputs go
  in through ``run_args``. About 4x faster than Cython once built, so it pays off for large N.
  Standalone runs one network at a time per process; a lock serialises processes sharing a project.
* ``numpy``: no compiler needed; slowest.
"""

from __future__ import annotations

import gc
import hashlib
import os
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple, Optional

import numpy as np

from .batching import batch_inputs, n_batches, unbatch_counts, unbatch_steps
from .brian2_code import LayerCode, layer_code
from .errors import Brian2Error, GraphError, check_choice
from .network import Network
from .paths import brian2_cache_dir
from .result import Result, check_inputs, make_result

BRIAN2_TARGETS = ("cython", "cpp_standalone", "numpy")
# Synapses per batched network. Runtime targets pay Python overhead per step, so they want many
# copies; compiled C++ pays per synaptic event, and small batches keep the synapse arrays in cache
# (measured on 64-128-10: 8 copies ran 2.5x faster than 256).
_SYNAPSE_BUDGET = {"cython": 2_000_000, "numpy": 2_000_000, "cpp_standalone": 50_000}
_MAX_BATCH = {"cython": 512, "numpy": 512, "cpp_standalone": 64}


def cache_dir() -> Path:
    return brian2_cache_dir()


def _configure(target: str) -> None:
    from brian2 import prefs

    prefs.codegen.target = "numpy" if target == "numpy" else "cython"
    prefs.core.default_float_dtype = np.float64
    d = cache_dir()
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise Brian2Error(
            f"cannot create Brian2's cache folder {d} ({e.strerror or e}); set SNE_BRIAN2_CACHE"
        ) from None
    if target != "numpy" and not any(d.rglob("*.so")):
        _say_once(
            f"Brian2: compiling the network code with a C++ compiler; this happens once (a few minutes) "
            f"and is cached in {d}"
        )
    prefs.codegen.runtime.cython.cache_dir = str(d)
    prefs.codegen.runtime.cython.multiprocess_safe = True
    prefs.codegen.cpp.extra_compile_args_gcc = ["-w", "-O3", "-ffp-contract=off"]
    # Brian2's default is an unbounded 'make -j', which starts ~100 compilers at once
    prefs.devices.cpp_standalone.extra_make_args_unix = [f"-j{os.cpu_count() or 1}"]
    prefs.logging.console_log_level = "ERROR"


_said: set[str] = set()


def _say_once(msg: str) -> None:
    if msg not in _said:
        _said.add(msg)
        print(msg, file=sys.stderr, flush=True)


def batch_size(network: Network, n: int, target: str = "cython") -> int:
    nnz = sum(int(np.count_nonzero(layer.weight)) for layer in network.layers)
    return int(max(1, min(n, _SYNAPSE_BUDGET[target] // max(nnz, 1), _MAX_BATCH[target])))


def run_brian2(
    network: Network,
    spikes: np.ndarray,
    mode: str = "float",
    record: bool = False,
    target: Optional[str] = None,
    batch: Optional[int] = None,
) -> Result:
    """Run ``spikes`` (N, T, n_in) through ``network`` on Brian2 (target: see the module docstring)."""
    spikes = check_inputs(network, spikes, mode)
    if network.dynamics.spikes == "multi" and any(np.any(np.asarray(l.params.vth) <= 0) for l in network.layers):
        raise GraphError("multi-spike neurons with a threshold <= 0 run on the reference backend only")
    target = target or os.environ.get("SNE_BRIAN2_TARGET", "cython")
    check_choice("Brian2 target", target, BRIAN2_TARGETS, Brian2Error)
    if target == "cpp_standalone":
        return _run_standalone(network, spikes, mode, record, batch)
    try:
        return _run_runtime(network, spikes, mode, record, target, batch)
    except Exception as e:
        if target != "cython" or "compil" not in f"{type(e).__name__} {e}".lower():
            raise
        res = _run_runtime(network, spikes, mode, record, "numpy", batch)
        res.details["fallback"] = f"cython failed ({type(e).__name__}); ran the numpy target"
        return res


def _run_steps(n: int, steps: int, bsz: int) -> int:
    """The batches plus one silent extra step, at which the counters of the last batch are read."""
    return n_batches(n, bsz) * steps + 1


def _rounded_up(x: int) -> int:
    """The least of 16, 24, 32, 48, 64, ... (2^k and 3*2^(k-1)) that is >= x: at most 1.5x the
    size, and a new shape only every time a size grows by half."""
    x = max(x, 16)
    p = 1 << (x - 1).bit_length()
    return 3 * p // 4 if 3 * p // 4 >= x else p


def _input_table(spikes: np.ndarray, bsz: int) -> np.ndarray:
    """The batched inputs for :func:`_run_steps` steps, in a table whose rows and copies are
    rounded up (the extra ones silent). Brian2 writes a TimedArray's shape into its compiled code,
    so every new number of samples would otherwise compile two modules anew (~4 s here): a cascade,
    whose rounds each run a different number of samples, compiled for minutes even on a warm cache."""
    n, steps, _ = spikes.shape
    table = batch_inputs(spikes, bsz, _rounded_up(_run_steps(n, steps, bsz)), copies=_rounded_up(bsz))
    return table if table.dtype == np.bool_ else table.astype(np.float64)  # event counts, exact in float64


def _build(b2: Any, network: Network, mode: str, table: np.ndarray, bsz: int, steps: int, record: bool):
    """Create the Brian2 objects for ``bsz`` copies of ``network`` fed by ``table``; named, so a
    standalone project gets identical code for identical shapes."""
    # Brian2 suffixes a name that a live object still holds ('sne_layer0_1'), which would change the
    # generated code and force a recompile (Cython cache and standalone project alike); objects of an
    # earlier run die only at a GC pass.
    gc.collect()
    dt = b2.defaultclock.dt = 1 * b2.ms
    n_in = network.layers[0].n_in
    stim = b2.TimedArray(table, dt=dt, name="sne_input_table")
    inp = b2.NeuronGroup(
        bsz * n_in,
        "",
        threshold="sne_input_table(t, i) > 0",
        reset="",
        name="sne_input",
        namespace={"sne_input_table": stim},
    )
    inp.thresholder["spike"].when, inp.thresholder["spike"].order = "thresholds", 0
    objects: list = [inp]
    counters, trains = [], []
    prev = inp
    for li, layer in enumerate(network.layers):
        size = layer.n_out
        code = layer_code(layer, mode, network.layer_dynamics(li))
        g = _neuron_group(b2, code, size, li, bsz, steps, dt)
        counts = li == 0 and table.dtype != np.bool_
        syn = _synapses(b2, prev, g, code.weight, bsz, li, stim if counts else None, multi=code.multi and li > 0)
        counter = b2.StateMonitor(
            g, ["count", "over"], record=True, dt=steps * dt, when="start", order=li, name=f"sne_count{li}"
        )
        objects += [g, syn, counter]
        if code.recurrent is not None:  # its own loop sees the spikes undelayed, as in the reference
            objects.append(_recurrent_synapses(b2, g, code.recurrent, bsz, li, code.multi))
        sender, sent = g, counter
        if layer.delay and layer.spiking:  # what the layer sends, counts and records: its spikes d steps late
            sender, relay_objects = _delay_relay(b2, g, layer.delay, size, li, bsz, steps, dt, code.multi)
            sent = b2.StateMonitor(
                sender, ["count"], record=True, dt=steps * dt, when="start", order=li, name=f"sne_sent{li}"
            )
            objects += [*relay_objects, sent]
        counters.append(Counter(counter, sent, size))
        if record:
            mon = b2.SpikeMonitor(sender, variables=["nspk"] if code.multi else [], name=f"sne_spikes{li}")
            objects.append(mon)
            trains.append(mon)
        prev = sender
    readout = None
    if not network.layers[-1].spiking:  # an LI readout: its membrane after every step
        readout = b2.StateMonitor(prev, "v", record=True, when="end", name="sne_readout")
        objects.append(readout)
    return Built(b2.Network(*objects), stim, counters, trains, readout)


def _neuron_group(b2: Any, code: LayerCode, size: int, li: int, bsz: int, steps: int, dt: Any) -> Any:
    """Layer ``li``'s ``bsz`` copies with their statements in the synapses slot (order 10*l + k)
    and the zeroing of every state at each batch boundary."""
    g = b2.NeuronGroup(
        bsz * size,
        """u : 1
           v : 1
           count : 1
           over : 1
           wrapped : 1
           sprev : 1
           fresh : 1
           nspk : 1
           vth : 1 (constant)
           bias : 1 (constant)
           ibias : 1 (constant)
           mu : 1 (constant)
           mv : 1 (constant)""",
        threshold=code.threshold,
        reset=code.reset + ("\ncount = count + nspk" if code.multi else "\ncount = count + 1"),
        name=f"sne_layer{li}",
    )
    g.vth, g.bias = np.tile(code.vth, bsz), np.tile(code.bias, bsz)
    if code.ibias is not None:
        g.ibias = np.tile(code.ibias, bsz)
    g.mu, g.mv = np.tile(code.mu, bsz), np.tile(code.mv, bsz)
    g.run_regularly(code.decay_u, when="synapses", order=10 * li + 0, name=f"sne_layer{li}_decay")
    g.run_regularly(
        code.update_v + ("\nfresh = 0" if code.recurrent is not None else ""),
        when="synapses",
        order=10 * li + 3,
        name=f"sne_layer{li}_update",
    )
    # counters are read at "start" (order li) before this zeroing (order 100 + li)
    g.run_regularly(
        "u = 0\nv = 0\nsprev = 0\ncount = 0\nover = 0\nfresh = 1\nnspk = 0",
        dt=steps * dt,
        when="start",
        order=100 + li,
        name=f"sne_layer{li}_zero",
    )
    g.thresholder["spike"].when, g.thresholder["spike"].order = "synapses", 10 * li + 4
    return g


def _delay_relay(
    b2: Any, g: Any, delay: int, size: int, li: int, bsz: int, steps: int, dt: Any, multi: bool
) -> tuple[Any, list]:
    """A group that re-emits layer ``li``'s spikes ``delay`` steps late (Spyx's timing, see
    :class:`~sne_deploy.simulators.network.Layer`), through a shift register ``h1..hd`` per neuron.
    In the synapses slot, after the layer's threshold (order 10*l + 4): the register shifts and its
    oldest entry becomes this step's ``nspk`` (order 10*l + 5), the layer's spikes of this step enter
    ``h1`` (10*l + 6), and the relay fires where ``nspk > 0`` (10*l + 7), before the next layer's
    synapses (10*l + 11) read it. Zeroed with the layer at each batch boundary, so the spikes of a
    sample's last ``delay`` steps are never sent, as in the reference. Brian2's own synaptic delays
    would carry them into the next sample of the copy."""
    regs = [f"h{k}" for k in range(1, delay + 1)]
    relay = b2.NeuronGroup(
        bsz * size,
        "\n".join(f"{v} : 1" for v in [*regs, "nspk", "count"]),
        threshold="nspk > 0",
        reset="count = count + nspk",
        name=f"sne_delay{li}",
    )
    shift = [f"nspk = {regs[-1]}"] + [f"{regs[k]} = {regs[k - 1]}" for k in range(delay - 1, 0, -1)] + ["h1 = 0"]
    relay.run_regularly("\n".join(shift), when="synapses", order=10 * li + 5, name=f"sne_delay{li}_shift")
    relay.run_regularly(
        "\n".join(f"{v} = 0" for v in [*regs, "nspk", "count"]),
        dt=steps * dt,
        when="start",
        order=100 + li,
        name=f"sne_delay{li}_zero",
    )
    relay.thresholder["spike"].when, relay.thresholder["spike"].order = "synapses", 10 * li + 7
    into = b2.Synapses(g, relay, on_pre="h1_post = nspk_pre" if multi else "h1_post = 1", name=f"sne_into_delay{li}")
    into.connect(j="i")
    into.pre.when, into.pre.order = "synapses", 10 * li + 6
    return relay, [relay, into]


class Counter(NamedTuple):
    """Where a layer's counters are read: ``over`` on the layer, ``count`` on what it sends (the
    layer itself, or its delay relay)."""

    over: Any  # StateMonitor of the layer's count and over
    sent: Any  # StateMonitor whose count is the layer's (delayed) spikes
    size: int


class Built(NamedTuple):
    net: Any
    stim: Any  # the input TimedArray (a run_arg for standalone)
    counters: list  # a Counter per layer
    trains: list  # SpikeMonitor per layer, when recorded
    readout: Any  # StateMonitor of the LI readout's v, or None


def _readout(built: Built, n: int, bsz: int, steps: int) -> Optional[np.ndarray]:
    if built.readout is None:
        return None
    v = np.asarray(built.readout.v[:]).T  # (rows, bsz*size); the last row is the extra silent step
    return unbatch_steps(v[:-1], n, steps, bsz, v.shape[1] // bsz)


def _synapses(
    b2: Any, prev: Any, g: Any, wmat: np.ndarray, bsz: int, li: int, counts: Any = None, multi: bool = False
) -> Any:
    """Only the non-zero synapses exist, as on chip; copy c connects only to copy c. They deliver
    into u in the synapses slot, after u's decay (order 10*l + 1). With event-count inputs
    (``counts``: the input table) the first layer's synapses deliver w times this step's count."""
    size, n_in = wmat.shape
    post, pre = np.nonzero(wmat)
    on_pre = "u_post += w" if counts is None else "u_post += w * sne_input_table(t, i_pre)"
    if multi:  # a spike event of a multi-spike layer stands for nspk spikes
        on_pre = "u_post += w * nspk_pre"
    syn = b2.Synapses(
        prev,
        g,
        "w : 1 (constant)",
        on_pre=on_pre,
        name=f"sne_syn{li}",
        namespace={} if counts is None else {"sne_input_table": counts},
    )
    copies = np.repeat(np.arange(bsz), len(pre))
    syn.connect(i=np.tile(pre, bsz) + copies * n_in, j=np.tile(post, bsz) + copies * size)
    syn.w = np.tile(wmat[post, pre], bsz)
    syn.pre.when, syn.pre.order = "synapses", 10 * li + 1
    return syn


def _recurrent_synapses(b2: Any, g: Any, wmat: np.ndarray, bsz: int, li: int, multi: bool = False) -> Any:
    """A layer's synapses onto itself, after its input synapses and before its update (order
    10*l + 2): they see the spikes of the layer's last threshold, the previous step. At a
    sample's first step those belong to the previous sample of the copy, so ``fresh`` (1 from the
    batch's zeroing until the update) holds them back; w * 1 and w * 0 are exact."""
    size = wmat.shape[0]
    post, pre = np.nonzero(wmat)
    on_pre = "u_post += w * (1 - fresh_post)" + (" * nspk_pre" if multi else "")
    syn = b2.Synapses(g, g, "w : 1 (constant)", on_pre=on_pre, name=f"sne_rec{li}")
    copies = np.repeat(np.arange(bsz), len(pre))
    syn.connect(i=np.tile(pre, bsz) + copies * size, j=np.tile(post, bsz) + copies * size)
    syn.w = np.tile(wmat[post, pre], bsz)
    syn.pre.when, syn.pre.order = "synapses", 10 * li + 2
    return syn


class Monitored(NamedTuple):
    counts: list  # per layer, (N, n_out) spike counts
    rasters: Optional[list]  # per layer, (N, T, n_out) spike trains, when recorded
    overflow: list  # per layer, fixed-point neuron-steps where u wrapped or v hit a rail
    readout: Optional[np.ndarray]  # (N, T, n_out) membrane of an LI readout


def _read_monitors(built: "Built", n: int, bsz: int, steps: int, dt: Any) -> Monitored:
    """What the monitors of a finished run hold, per sample (padding copies excluded)."""
    counters, trains = built.counters, built.trains
    counts: list[np.ndarray] = []
    rasters: list[np.ndarray] = []
    overflow: list[int] = []
    for li, (counter, sent, size) in enumerate(counters):
        c = np.asarray(sent.count[:]).T  # (n_batches + 1, bsz*size); row b+1 closes batch b
        counts.append(unbatch_counts(np.rint(c[1:]).astype(np.int64), n, size))
        o = np.asarray(counter.over[:]).T
        overflow.append(int(unbatch_counts(np.rint(o[1:]).astype(np.int64), n, size).sum()))
        if trains:
            idx = np.asarray(trains[li].i[:], dtype=np.int64)
            step = np.round(np.asarray(trains[li].t[:] / dt)).astype(np.int64)
            multi = "nspk" in getattr(trains[li], "record_variables", ())  # an event is nspk spikes
            raster = np.zeros((_run_steps(n, steps, bsz), bsz * size), np.int64 if multi else bool)
            raster[step, idx] = np.rint(np.asarray(trains[li].nspk[:])).astype(np.int64) if multi else True
            rasters.append(unbatch_steps(raster[:-1], n, steps, bsz, size))
    return Monitored(counts, rasters if trains else None, overflow, _readout(built, n, bsz, steps))


def _run_runtime(
    network: Network, spikes: np.ndarray, mode: str, record: bool, target: str, batch: Optional[int]
) -> Result:
    import brian2 as b2

    _configure(target)
    t0 = time.perf_counter()
    n, steps, _ = spikes.shape
    bsz = batch or batch_size(network, n, target)
    table = _input_table(spikes, bsz)
    built = _build(b2, network, mode, table, bsz, steps, record)
    t_build = time.perf_counter() - t0
    built.net.run(_run_steps(n, steps, bsz) * b2.defaultclock.dt, namespace={})  # no implicit look-up of our locals
    out = _read_monitors(built, n, bsz, steps, b2.defaultclock.dt)
    return _result(network, mode, spikes, out, t0, t_build, target=target, batch=bsz)


def _result(
    network: Network, mode: str, spikes: np.ndarray, out: Monitored, t0: float, t_build: float, **details: Any
) -> Result:
    """The run's Result; ``details`` are the target's extras (Brian2's version is always one)."""
    import brian2 as b2

    wall = time.perf_counter() - t0
    return make_result(
        network,
        "brian2",
        mode,
        spikes,
        out.counts,
        wall,
        out.rasters,
        {**details, "brian2": b2.__version__},
        out.readout,
        out.overflow,
        t_build,
    )


def _project_dir(network: Network, mode: str, bsz: int, steps: int, record: bool) -> Path:
    """One C++ project per network shape. Weights and inputs are data files; a new synapse count
    changes a few generated files, which make recompiles alone."""
    shape = [(l.n_in, l.n_out, l.recurrent is not None, l.delay) for l in network.layers]
    key = hashlib.sha256(repr((shape, mode, bsz, steps, record)).encode()).hexdigest()[:16]
    return cache_dir() / "standalone" / key


def _run_standalone(network: Network, spikes: np.ndarray, mode: str, record: bool, batch: Optional[int]) -> Result:
    import brian2 as b2
    from brian2.utils.filelock import FileLock

    _configure("cpp_standalone")
    t0 = time.perf_counter()
    n, steps, _ = spikes.shape
    bsz = batch or batch_size(network, n, "cpp_standalone")
    table = _input_table(spikes, bsz)
    project = _project_dir(network, mode, bsz, steps, record)
    project.mkdir(parents=True, exist_ok=True)
    with FileLock(str(project) + ".lock"):
        b2.set_device("cpp_standalone", directory=str(project), build_on_run=False)
        device = b2.get_device()
        try:
            # the program is built with an all-silent table of the right shape; the real one is a run_arg
            built = _build(b2, network, mode, np.zeros_like(table), bsz, steps, record)
            built.net.run(_run_steps(n, steps, bsz) * b2.defaultclock.dt, namespace={})
            try:
                device.build(directory=str(project), compile=True, run=False, with_output=False)
            except Exception as e:
                raise Brian2Error(
                    f"Brian2 cpp_standalone could not build in {project}: "
                    f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
                ) from e
            t_build = time.perf_counter() - t0
            device.run(run_args={built.stim: table}, with_output=False)
            t_binary = device.timers.get("run_binary", float("nan"))
            out = _read_monitors(built, n, bsz, steps, b2.defaultclock.dt)
            device.delete(code=False, data=False, run_args=True, directory=False)
        finally:
            device.reinit()
            b2.set_device("runtime")
    return _result(
        network,
        mode,
        spikes,
        out,
        t0,
        t_build,
        target="cpp_standalone",
        batch=bsz,
        binary_s=t_binary,
        project=str(project),
    )
