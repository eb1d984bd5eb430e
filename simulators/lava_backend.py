"""Lava backend, host side: hands the network and the inputs to a worker process running in the
Lava environment, waits with a timeout, reads the results back.

Lava forces the 'fork' start method at import and hangs at exit without ``stop()``; it must never
be imported by the torch process. The worker runs in its own session (process group) and writes
its output to files in the job folder; the host watches the worker and every process of its group,
and on any death, timeout, error or signal kills the whole group (Lava's own child processes
included) and removes the job folder, so nothing hangs and nothing is orphaned.

The worker's interpreter is that of the Lava environment (:func:`sne_deploy.simulators.paths.lava_env_dir`;
made by ``sne-deploy setup lava``). It starts with a clean environment: no inherited PYTHONPATH,
only this ``simulators`` package on its path, and the job folder as its working directory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Optional

import numpy as np

from .batching import unbatch_steps
from .errors import BackendUnavailable, GraphError, InputError, WorkerError
from .network import Network
from .paths import lava_env_dir, worker_path
from .result import Result, check_inputs, make_result

DEFAULT_TIMEOUT = 1800.0  # seconds; $SNE_LAVA_TIMEOUT overrides it (lava_timeout)


def lava_python() -> Path:
    venv = lava_env_dir()
    py = venv / "bin" / "python"
    if not py.exists():
        raise BackendUnavailable(
            f"the Lava backend needs its environment (Python 3.10 + lava-nc 0.10.0), not found at {venv}: "
            "run 'sne-deploy setup lava' (add --python /path/to/python3.10 if none is on PATH) "
            "or set SNE_LAVA_ENV=/path/to/venv"
        )
    return py


def lava_inputs(network: Network, spikes: np.ndarray, mode: str) -> np.ndarray:
    """What a Lava run checks before starting the worker: the inputs are valid
    (:func:`check_inputs`). Every neuron runs: Loihi's LIF on Lava's own ``LIFReset``, any other
    (``>=`` firing, other resets, multi-spike, per-neuron parameters, a current bias, an LI
    readout) on the project's ``GeneralLIF`` process (``lava_worker.uses_lava_lif``). Event counts
    per step (an event camera's frames) and multi-spike counts reach the next synapses as graded
    spikes (``lava_worker.message_bits``), and Lava's Dense computes weight x count, as on Loihi 2,
    whose graded spikes carry up to 24 bits."""
    return check_inputs(network, spikes, mode)  # counts up to 2^16: well within 24 bits


@dataclass(frozen=True)
class WorkerInfo:
    """What one or more worker runs report (the worker's ``info.json``, plus the host's wall time).
    Seconds, and Lava time steps; ``runs`` > 1 when a recurrent network ran in several parts."""

    build_s: float  # the worker's network build
    run_s: float  # Lava's run itself
    wall_s: float  # the host's whole wait: worker start, build, run, read-back
    lava_steps: int
    batch: int
    sparse_layers: tuple[bool, ...] = ()
    general_layers: tuple[bool, ...] = ()  # which layers ran on GeneralLIF (else Lava's LIF)
    runs: int = 1

    @classmethod
    def from_worker(cls, d: dict) -> "WorkerInfo":
        """From :func:`run_job`'s dict (the worker's ``info.json`` plus the host's ``wall_s``)."""
        return cls(
            build_s=float(d["build_s"]),
            run_s=float(d["run_s"]),
            wall_s=float(d["wall_s"]),
            lava_steps=int(d.get("lava_steps", 0)),
            batch=int(d["batch"]),
            sparse_layers=tuple(bool(b) for b in d.get("sparse_layers", ())),
            general_layers=tuple(bool(b) for b in d.get("general_layers", ())),
        )

    def __add__(self, other: "WorkerInfo") -> "WorkerInfo":
        return replace(
            self,
            build_s=self.build_s + other.build_s,
            run_s=self.run_s + other.run_s,
            wall_s=self.wall_s + other.wall_s,
            lava_steps=self.lava_steps + other.lava_steps,
            runs=self.runs + other.runs,
        )

    @property
    def worker_overhead_s(self) -> float:
        return self.wall_s - self.build_s - self.run_s

    @property
    def steps_per_s(self) -> float:
        return self.lava_steps / self.run_s if self.run_s > 0 else float("nan")

    def details(self) -> dict:
        """The informational part of a :class:`Result` (JSON-able)."""
        return {
            "batch": self.batch,
            "sparse_layers": list(self.sparse_layers),
            "general_lif_layers": list(self.general_layers),
            "runs": self.runs,
            "worker_build_s": self.build_s,
            "lava_run_s": self.run_s,
            "lava_steps": self.lava_steps,
            "steps_per_s": self.steps_per_s,
            "worker_overhead_s": self.worker_overhead_s,
        }


def run_lava(
    network: Network,
    spikes: np.ndarray,
    mode: str = "fixed",
    record: bool = False,
    timeout: Optional[float] = None,
    batch: Optional[int] = None,
) -> Result:
    """Run on Lava's Loihi-2 simulator; ``batch`` copies side by side per time step (default: sized
    by the worker, see ``lava_worker.batch_size``)."""
    spikes = lava_inputs(network, spikes, mode)
    info, trains = _work_in_runs(network, spikes, mode, timeout, batch)
    readout = None
    if not network.layers[-1].spiking:  # an LI readout's recording is its membrane; it never spikes
        readout = trains[-1]
        trains[-1] = np.zeros(readout.shape, dtype=bool)
    counts = [t.sum(axis=1) for t in trains]
    details = info.details()
    overflow = None
    if mode == "fixed":
        overflow = _overflow(network, spikes)
        details["overflow_source"] = "reference (Lava's LIF has no overflow flag; same arithmetic bit for bit)"
    return make_result(
        network,
        "lava",
        mode,
        spikes,
        counts,
        info.wall_s,
        trains if record else None,
        details,
        readout=readout,
        overflow=overflow,
        build_time=info.wall_s - info.run_s,
    )


def _work_in_runs(
    network: Network, spikes: np.ndarray, mode: str, timeout: Optional[float], batch: Optional[int]
) -> tuple[WorkerInfo, list[np.ndarray]]:
    """One worker run, or for a recurrent network one run per :func:`lava_worker.recurrent_batch`
    samples (each runs them side by side in one batch; see there why)."""
    from .lava_worker import recurrent_batch

    size = recurrent_batch(network, len(spikes)) if network.is_recurrent else len(spikes)
    if size >= len(spikes):
        info, trains = run_job(network, spikes, mode, "recorded", timeout, batch)
        return WorkerInfo.from_worker(info), trains
    parts = [
        run_job(network, spikes[i : i + size], mode, "recorded", timeout, None) for i in range(0, len(spikes), size)
    ]
    infos = [WorkerInfo.from_worker(p[0]) for p in parts]
    return sum(infos[1:], start=infos[0]), [
        np.concatenate([p[1][li] for p in parts]) for li in range(len(network.layers))
    ]


def _overflow(network: Network, spikes: np.ndarray) -> tuple[int, ...]:
    """The overflow counter every fixed-point run reports. Lava's LIF models expose no flag for a
    wrapped u or a saturated v, so it comes from the reference, which computes Lava's bit-accurate
    arithmetic step for step (CI proves the two spike for spike); a few % of Lava's run time."""
    from .reference import run_reference

    overflow = run_reference(network, spikes, "fixed").overflow
    assert overflow is not None
    return overflow


def lava_timeout() -> float:
    """``$SNE_LAVA_TIMEOUT`` in seconds (default 1800), read when a run starts and checked."""
    raw = os.environ.get("SNE_LAVA_TIMEOUT", "")
    if not raw.strip():
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (value > 0 and value != float("inf")):
        raise InputError(f"SNE_LAVA_TIMEOUT={raw!r} is not a positive number of seconds")
    return value


def run_job(
    network: Network, spikes: np.ndarray, mode: str, variant: str, timeout: Optional[float], batch: Optional[int] = None
) -> tuple[dict, list[np.ndarray]]:
    """One worker run of checked inputs (:func:`lava_inputs`): the worker's ``info.json`` (plus
    the host's ``wall_s``) and, for the ``recorded`` variant, every layer's (N, T, n) trains.
    ``variant`` ``raw`` and ``naive`` are for benchmarks (Lava's plain LIFReset with nothing
    recorded; one build and run per sample)."""
    from .lava_worker import record_kind

    py = lava_python()
    timeout = timeout or lava_timeout()
    t0 = time.perf_counter()
    n, steps, _ = spikes.shape
    with tempfile.TemporaryDirectory(prefix="sne-lava-") as tmp:
        tmpd = Path(tmp)
        job: dict[str, Any] = {
            "spikes": spikes,
            "mode": np.array(mode),
            "variant": np.array(variant),
            **network.to_arrays(),
        }
        if batch:
            job["batch"] = np.array(int(batch))
        np.savez(tmpd / "job.npz", **job)
        code = _run_worker(py, tmpd, timeout)
        if code != 0:
            last = _last_line(tmpd / "stderr.txt")
            if code == 2 and last.startswith("error: "):
                raise GraphError(last[len("error: ") :])
            raise WorkerError(f"the Lava worker failed ({_status(code)}): {last}")
        if not (tmpd / "info.json").is_file():  # exit 0 without a result: never trust it
            why = ""
            if signal.getsignal(signal.SIGCHLD) == signal.SIG_IGN:  # the kernel reaped it: its status is lost
                why = " (this process ignores SIGCHLD, so how it ended is unknown)"
            raise WorkerError(f"the Lava worker exited without its result{why}: {_last_line(tmpd / 'stderr.txt')}")
        info = json.loads((tmpd / "info.json").read_text())
        trains: list[np.ndarray] = []
        if variant == "recorded":
            for li, layer in enumerate(network.layers):
                trains.append(
                    _layer_file(tmpd / f"layer{li}.npy", record_kind(network, li), n, steps, info["batch"], layer.n_out)
                )
    info["wall_s"] = time.perf_counter() - t0
    return info, trains


def _layer_file(path: Path, kind: str, n: int, steps: int, bsz: int, size: int) -> np.ndarray:
    """One layer's recording (``lava_worker.record_kind``) as (n, T, size) per sample: bool
    spikes, int64 counts, or an LI readout's membrane v."""
    raw = np.load(path)
    if kind == "bits":
        raw = np.unpackbits(raw, axis=1, count=bsz * size).astype(bool)
    elif kind == "counts":
        raw = raw.astype(np.int64)
    return unbatch_steps(raw, n, steps, bsz, size)


# How long the worker may keep running after one of its Lava processes vanished: Lava's own
# children exit during a normal stop() just before the worker does.
_CHILD_GRACE_S = 3.0
_POLL_S = 0.05


def _run_worker(py: Path, job_dir: Path, timeout: float) -> int:
    """Start the worker in its own session with its output in files (Lava's children inherit the
    worker's file descriptors, so pipes would stay open after the worker died) and watch it: the
    worker's exit, the death of any process of its group, and the timeout are each noticed within
    a fraction of a second. Whatever happens, even an exception such as a signal turned into
    ``SystemExit``, the whole group is killed before this returns."""
    # a clean environment: only our simulators package on the path, nothing of the host's
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(PYTHONNOUSERSITE="1", PYTHONPATH=str(worker_path(job_dir)))
    # Lava's multiprocessing makes its own temporary folders (and sockets, whose paths must stay
    # short); inside the job folder they go with it
    (job_dir / "t").mkdir()
    env["TMPDIR"] = str(job_dir / "t")
    with open(job_dir / "stdout.txt", "wb") as out, open(job_dir / "stderr.txt", "wb") as err:
        proc = subprocess.Popen(
            [str(py), "-m", "sne_deploy.simulators.lava_worker", str(job_dir / "job.npz"), str(job_dir)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=env,
            start_new_session=True,
            cwd=str(job_dir),
        )
    try:
        deadline = time.monotonic() + timeout
        seen: set[int] = set()
        vanished_at: Optional[float] = None
        while True:
            code = proc.poll()
            if code is not None:
                return code
            now = time.monotonic()
            if now > deadline:
                raise WorkerError(f"the Lava worker timed out after {timeout:.0f} s and was killed (pid {proc.pid})")
            alive, zombies = group_members(proc.pid)
            if (seen - alive or zombies) and vanished_at is None:  # gone, or dead and not reaped
                vanished_at = now
            seen |= alive
            if vanished_at is not None and now - vanished_at > _CHILD_GRACE_S:
                gone = sorted((seen - alive) | zombies) or sorted(seen - alive)
                raise WorkerError(
                    f"a Lava runtime process (pid {gone[0] if gone else '?'}) died during the run; "
                    f"the worker (pid {proc.pid}) and its group were killed"
                )
            time.sleep(_POLL_S)
    finally:
        _kill_group(proc)


def group_members(pgid: int) -> tuple[set[int], set[int]]:
    """(live, zombie) processes of process group ``pgid``, other than its leader."""
    alive: set[int] = set()
    zombies: set[int] = set()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == pgid:
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields: state, ppid, pgrp, ...
            (zombies if fields[0] == "Z" else alive).add(int(d.name))
    return alive, zombies


def _last_line(path: Path) -> str:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(no output)"


def _status(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit {code}"


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
