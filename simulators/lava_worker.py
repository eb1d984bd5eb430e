"""The Lava worker: runs inside the Lava environment (Python 3.10, lava-nc 0.10.0, no torch).

    python -m sne_deploy.simulators.lava_worker JOB.npz OUT_DIR

JOB.npz holds the network (``Network.to_arrays``), ``spikes`` (N, T, n_in), ``mode`` and
optionally ``batch``. All N samples run in one long Lava run:

* **Batches of copies.** B copies of the network sit side by side (block-diagonal weights, one
  LIF population of B*n neurons), so one Lava time step advances B samples; sample s = b*B + c is
  copy c during batch b. Lava's cost is mostly per step and per process, so this multiplies
  throughput; the copies never interact, so every copy is still exact.
* **Dense or Sparse.** A layer whose matrix is mostly zeros (a convolution unrolled, say) runs on
  Lava's ``Sparse`` process (the same bit-accurate arithmetic and one-step delay as ``Dense``), with
  its models' column look-up done on a column-compressed copy
  (:mod:`sne_deploy.simulators.lava_procs.column_sparse`): a step costs its synaptic events, not the
  n_out x n_in entries, and B copies cost B times one copy instead of B^2.
* **One input, one reset schedule.** The input is one RingBuffer of n_batches*T steps; each layer is
  Dense -> LIFReset with ``reset_interval = T``. Dense delays its output by one step, so layer l
  (0-based) sees input step k at Lava time step k + 2 + l; its ``reset_offset`` is (2 + l) mod T,
  which zeroes u and v exactly when a new batch reaches it.
* **Recording without extra processes.** Each layer is a RecordingLIFReset (Lava's LIFReset models
  plus a buffer) that writes ``layer<l>.npy`` itself at the last step.
* **Neurons that are not Loihi's LIF** (``>=`` firing, other resets, multi-spike, per-neuron
  parameters, a current bias, an LI readout, a recurrent layer that fires without input) are a
  :class:`~sne_deploy.simulators.lava_procs.general_lif.GeneralLIF` layer instead
  (:func:`uses_lava_lif`), with the same schedule and its own recording; a multi-spike layer's
  counts reach the next synapses as graded spikes.

``stop()`` always runs, or Lava hangs at interpreter exit.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sys
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple, Optional

import numpy as np

from sne_deploy.simulators.batching import batch_inputs, n_batches
from sne_deploy.simulators.errors import GraphError
from sne_deploy.simulators.lava_backend import group_members
from sne_deploy.simulators.linear_maps import is_sparse
from sne_deploy.simulators.network import Layer, Network

# Dense keeps a full (B*n_out, B*n_in) matrix per layer and does B^2 times the work per step;
# this bounds B*B*(weights of the largest dense layer). Measured on 64-128-10: B = 8 runs 5-6x more
# samples/s than B = 1. Sparse layers hold B*(their synapses).
_DENSE_BUDGET = 4_000_000
_SPARSE_BUDGET = 16_000_000
_MAX_BATCH = 16


def batch_size(network: Network, n: int) -> int:
    if network.is_recurrent:
        return recurrent_batch(network, n)
    dense = [l.n_in * l.n_out for l in network.layers if not is_sparse(l.weight)]
    synapses = sum(int(np.count_nonzero(l.weight)) for l in network.layers if is_sparse(l.weight))
    bound = min(
        int(np.sqrt(_DENSE_BUDGET / max(dense))) if dense else _MAX_BATCH,
        _SPARSE_BUDGET // synapses if synapses else _MAX_BATCH,
    )
    return int(max(1, min(n, _MAX_BATCH, bound)))


_RECURRENT_MAX_BATCH = 256


def recurrent_batch(network: Network, n: int) -> int:
    """A recurrent network runs all its samples side by side in one batch (a layer's last spikes of
    one sample would otherwise reach the next sample of its copy through the one-step-late
    recurrent synapses); :func:`sne_deploy.simulators.lava_backend.run_lava` splits larger N into runs of this size."""
    synapses = sum(int(np.count_nonzero(l.incoming("float"))) for l in network.layers)
    return int(max(1, min(n, _RECURRENT_MAX_BATCH, _SPARSE_BUDGET // max(synapses, 1))))


def restless_layers(network: Network, mode: str) -> frozenset[int]:
    """The recurrent layers that fire without input (a bias reaching threshold). Layer l starts
    its first sample at Lava step 2 + l and runs with no input before that; Lava's LIF would feed
    the spikes of those steps through its recurrent synapses into its first real step. Such a
    layer runs on GeneralLIF, which stays silent until its first sample arrives."""
    from sne_deploy.simulators.loop import run_loop

    if not network.is_recurrent:
        return frozenset()
    quiet = np.zeros((1, len(network.layers) + 1, network.n_in), dtype=bool)
    counts = run_loop(network, quiet, mode).counts
    return frozenset(i for i, (l, c) in enumerate(zip(network.layers, counts)) if l.recurrent is not None and c.any())


def lava_weight(layer: Layer, mode: str) -> np.ndarray:
    """A layer's input synapses as Lava's Dense/Sparse take them: int32 in fixed point, float64 in float."""
    return layer.fixed.weight.astype(np.int32) if mode == "fixed" else layer.weight.astype(np.float64)


def lava_lif_params(layer: Layer, mode: str) -> tuple[np.ndarray, dict]:
    """(weights, LIF keyword arguments) of one layer in Lava's terms for ``mode``."""
    weight = lava_weight(layer, mode)
    if mode == "fixed":
        f = layer.fixed.params
        vth = np.unique(np.asarray(f.vth))
        kw = {
            "du": int(f.du_fx),
            "dv": int(f.dv_fx),
            "bias_exp": int(f.bias_exp),
            "bias_mant": np.broadcast_to(np.asarray(f.bias_mant), (layer.n_out,)).astype(np.int32),
        }
    else:
        p = layer.params
        vth = np.unique(np.asarray(p.vth))
        kw = {
            "du": float(p.du),
            "dv": float(p.dv),
            "bias_exp": 0,
            "bias_mant": np.broadcast_to(np.asarray(p.bias, dtype=np.float64), (layer.n_out,)),
        }
    if vth.size != 1:
        raise GraphError(f"layer '{layer.name}': Lava's LIF takes one threshold per population, got {vth.size}")
    kw["vth"] = int(vth[0]) if mode == "fixed" else float(vth[0])
    return weight, kw


def uses_lava_lif(network: Network, li: int) -> bool:
    """Whether layer ``li`` is a neuron Lava's own LIF computes (fires at v > vth, resets v to 0,
    one spike a step, one du, dv and vth per population, a bias on v only, spiking): then it runs
    on Lava's ``LIFReset``, else on the project's :class:`~sne_deploy.simulators.lava_procs.general_lif.GeneralLIF`."""
    layer = network.layers[li]
    p = layer.params
    return (
        layer.spiking
        and layer.delay == 0
        and network.layer_dynamics(li).is_loihi
        and p.ibias is None
        and np.ndim(p.du) == 0
        and np.ndim(p.dv) == 0
        and np.unique(np.asarray(p.vth)).size == 1
    )


def record_kind(network: Network, li: int) -> str:
    """What layer ``li``'s recording file holds: ``bits`` (0/1 spikes, packed), ``counts`` (int32
    spikes per step of multi-spike neurons) or ``v`` (an LI readout's membrane, which never spikes)."""
    if not network.layers[li].spiking:
        return "v"
    return "counts" if network.dynamics.spikes == "multi" else "bits"


GRADED_BITS = 24  # Loihi 2's graded spikes carry up to 24 bits: what a multi-spike count is sent as


class _Procs(NamedTuple):
    """The Lava processes a run is wired from (imported only inside the Lava environment)."""

    Dense: Any
    Sparse: Any
    neuron: Any  # LIFReset, or partial(RecordingLIFReset, ...) keeping the spikes
    general: Any  # GeneralLIF
    record: Any  # the recording settings (None: nothing recorded)
    scipy_sparse: Any


def build_and_run(
    network: Network, spikes: np.ndarray, mode: str, out_dir: Path, record: bool = True, batch: Optional[int] = None
) -> dict:
    """Wire ``network`` as Lava processes for ``bsz`` copies fed by a ring buffer, run every
    batch back to back and return the timings (the recorded spikes are files in ``out_dir``)."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.source import RingBuffer

    from sne_deploy.simulators.lava_procs.column_sparse import ColumnSparseBitAcc, ColumnSparseFloat

    t0 = time.perf_counter()
    n, steps, _ = spikes.shape
    bsz = batch or batch_size(network, n)
    if network.is_recurrent:
        if bsz < n:
            raise GraphError(f"a recurrent network runs all {n} samples in one batch here, got batch {bsz}")
    length = n_batches(n, bsz) * steps
    total = length + len(network.layers) + 1
    source = RingBuffer(data=batch_inputs(spikes, bsz, total).T.astype(np.int32))
    prev_port, sparse_layers, general_layers = source.s_out, [], []
    restless = restless_layers(network, mode)
    for li in range(len(network.layers)):
        procs = _procs(record, first=2 + li, length=length, last=total, path=out_dir / f"layer{li}.npy")
        if li == 0:
            bits = message_bits(spikes)
        else:  # a multi-spike layer sends its counts as graded spikes
            bits = GRADED_BITS if record_kind(network, li - 1) == "counts" else 0
        general = li in restless or not uses_lava_lif(network, li)
        prev_port, used_sparse = _add_layer(procs, prev_port, network, li, mode, bsz, steps, bits, general)
        sparse_layers.append(used_sparse)
        general_layers.append(general)
    t_build = time.perf_counter() - t0
    cfg = Loihi2SimCfg(
        select_tag="fixed_pt" if mode == "fixed" else "floating_pt",
        exception_proc_model_map={procs.Sparse: ColumnSparseBitAcc if mode == "fixed" else ColumnSparseFloat},
    )
    t1 = time.perf_counter()
    try:
        source.run(condition=RunSteps(num_steps=total), run_cfg=cfg)
    finally:
        source.stop()
    t_run = time.perf_counter() - t1
    return {
        "build_s": t_build,
        "run_s": t_run,
        "lava_steps": total,
        "steps_per_s": total / t_run,
        "batch": bsz,
        "sparse_layers": sparse_layers,
        "general_layers": general_layers,
    }


def _procs(record: bool, **recording: Any) -> _Procs:
    from lava.proc.dense.process import Dense
    from lava.proc.lif.process import LIFReset
    from lava.proc.sparse.process import Sparse
    from scipy import sparse

    from sne_deploy.simulators.lava_procs.general_lif import GeneralLIF
    from sne_deploy.simulators.lava_procs.recording_lif import RecordingLIFReset

    recording = {**recording, "path": str(recording["path"])}
    # with recording: the same Lava neuron model, keeping its spikes (none for the raw benchmark)
    neuron = partial(RecordingLIFReset, **recording) if record else LIFReset
    return _Procs(Dense, Sparse, neuron, GeneralLIF, recording if record else None, sparse)


def message_bits(spikes: np.ndarray) -> int:
    """Bits per message the first layer's synapses take: 0 (binary spikes, Lava's default) for
    0/1 inputs; for event counts, graded spikes wide enough for the largest count and a sign
    (Lava's Dense and Sparse then compute weight x count, as Loihi 2 does with graded spikes)."""
    return 0 if spikes.dtype == np.bool_ else int(spikes.max()).bit_length() + 1


def _neurons(procs: _Procs, network: Network, li: int, mode: str, bsz: int, steps: int, general: bool) -> Any:
    """Layer ``li``'s neurons for ``bsz`` copies: Lava's LIFReset, or (``general``) a GeneralLIF
    with the reference's own step parameters (per-neuron ones tiled per copy), silent until its
    first sample arrives at step 2 + li."""
    from sne_deploy.simulators.loop import step_params

    layer = network.layers[li]
    schedule = {"reset_interval": steps, "reset_offset": (2 + li) % steps}
    if not general:
        weight, kw = lava_lif_params(layer, mode)
        kw["bias_mant"] = np.tile(kw["bias_mant"], bsz)
        return weight, procs.neuron(shape=(bsz * layer.n_out,), **schedule, **kw)
    params = step_params(layer, mode == "fixed")
    tiled = params._replace(**{k: np.tile(v, bsz) for k, v in params._asdict().items() if np.ndim(v) > 0})
    record = None if procs.record is None else {**procs.record, "what": record_kind(network, li)}
    weight = lava_weight(layer, mode)
    neurons = procs.general(
        shape=(bsz * layer.n_out,),
        params=tiled,
        dynamics=network.layer_dynamics(li),
        start=2 + li,
        delay=layer.delay,
        record=record,
        **schedule,
    )
    return weight, neurons


def _add_layer(
    procs: _Procs,
    prev_port: Any,
    network: Network,
    li: int,
    mode: str,
    bsz: int,
    steps: int,
    bits: int = 0,
    general: bool = False,
) -> tuple[Any, bool]:
    """Layer ``li``'s synapses (taking ``bits``-bit graded messages, 0 = binary spikes) and neurons
    (``general``: GeneralLIF, else Lava's LIF) after ``prev_port``; returns its spike port and
    whether its synapses are a Sparse process."""
    layer = network.layers[li]
    weight, lif = _neurons(procs, network, li, mode, bsz, steps, general)
    # a recurrent network's many copies: block-diagonal matrices are mostly zeros
    use_sparse = is_sparse(weight) or (network.is_recurrent and bsz > 1)
    conn = _connection(procs, weight, bsz, use_sparse, bits)
    prev_port.connect(conn.s_in)
    conn.a_out.connect(lif.a_in)
    rec = layer.recurrent_weight(mode)
    if rec is not None:  # the layer's spikes, one step late (Lava's synapses always are), into itself
        own_bits = GRADED_BITS if record_kind(network, li) == "counts" else 0
        rec_conn = _connection(procs, rec.astype(weight.dtype), bsz, bsz > 1 or is_sparse(rec), own_bits)
        (lif.s_now if general else lif.s_out).connect(rec_conn.s_in)  # undelayed: the loop's own timing
        rec_conn.a_out.connect(lif.a_in)
    return lif.s_out, use_sparse


def _connection(procs: _Procs, weight: np.ndarray, bsz: int, use_sparse: bool, bits: int = 0) -> Any:
    """Lava's Sparse or Dense process holding ``bsz`` block-diagonal copies of ``weight``."""
    if use_sparse:
        sp = procs.scipy_sparse
        return procs.Sparse(weights=sp.block_diag([sp.csr_matrix(weight)] * bsz, format="csr"), num_message_bits=bits)
    return procs.Dense(weights=np.kron(np.eye(bsz, dtype=weight.dtype), weight), num_message_bits=bits)


PARENT_POLL_S = 0.2


def watch_parent(job_dir: Path) -> threading.Thread:
    """Die with the host. The host kills this worker's group and removes the job folder in its
    ``finally``, which a SIGKILL (the OOM killer, a scheduler's preemption) never runs; the worker
    runs in its own session, so nothing else would. When the parent changes (this process was
    reparented), kill every other process of the group (Lava's runtime), remove the job folder
    and exit."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        group = os.getpgrp()  # this process leads it (the host starts it in a session of its own)
        # Lava's runtime may be forking while we look: kill until the group stays empty
        quiet, deadline = 0, time.monotonic() + 5.0
        while quiet < 3 and time.monotonic() < deadline:
            members, _zombies = group_members(group)  # the live ones other than this process
            for pid in members:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            quiet = 0 if members else quiet + 1
            time.sleep(0.05)
        shutil.rmtree(job_dir, ignore_errors=True)
        os.killpg(group, signal.SIGKILL)  # whatever is left, this process included, at once

    thread = threading.Thread(target=watch, name="sne-watch-parent", daemon=True)
    thread.start()
    return thread


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m sne_deploy.simulators.lava_worker JOB.npz OUT_DIR", file=sys.stderr)
        return 2
    job, out_dir = Path(argv[0]), Path(argv[1])
    # a host that ignores SIGCHLD passes the setting on; Lava's multiprocessing needs to reap its children
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    watch_parent(out_dir)
    try:
        with np.load(job, allow_pickle=False) as a:
            network = Network.from_arrays(a)
            spikes = np.asarray(a["spikes"])  # 0/1 as bool, event counts as integers
            spikes = spikes if spikes.dtype == np.bool_ else spikes.astype(np.int64)
            mode = str(a["mode"])
            variant = str(a["variant"]) if "variant" in a else "recorded"
            batch = int(a["batch"]) if "batch" in a else None
        if variant == "naive":  # the baseline: a new network and a new run for every sample
            t0 = time.perf_counter()
            for i in range(len(spikes)):
                build_and_run(network, spikes[i : i + 1], mode, out_dir)
            info = {"build_s": 0.0, "run_s": time.perf_counter() - t0, "variant": variant, "batch": 1}
        else:
            info = build_and_run(network, spikes, mode, out_dir, record=variant == "recorded", batch=batch)
    except GraphError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    (out_dir / "info.json.part").write_text(json.dumps(info))
    os.replace(out_dir / "info.json.part", out_dir / "info.json")  # the host reads a whole file or none
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
