"""Lava backend, host side: hands the network and the inputs to a worker process running in the
Lava environment, waits with a timeout, reads the results back.

Lava forces the 'fork' start method at import and hangs at exit without ``stop()``; it must never
be imported by the torch process. The worker runs in its own session (process group), so on a
timeout the whole group, Lava's own child processes included, is killed and none is orphaned.

The worker's interpreter is ``$SNE_LAVA_ENV/bin/python`` if set, else ``<repo>/.venv-lava/bin/python``
(made by ``make lava-env`` / ``scripts/setup-env.sh lava``).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional

import numpy as np

from .errors import BackendUnavailable, GraphError, WorkerError
from .network import Network
from .batching import unbatch_steps
from .result import Result, check_inputs, make_result

REPO = Path(__file__).resolve().parent.parent
DEFAULT_TIMEOUT = float(os.environ.get("SNE_LAVA_TIMEOUT", "1800"))


def lava_python() -> Path:
    env = os.environ.get("SNE_LAVA_ENV")
    venv = Path(env) if env else REPO / ".venv-lava"
    py = venv / "bin" / "python"
    if not py.exists():
        raise BackendUnavailable(
            f"the Lava backend needs the Lava environment (Python 3.10 + lava-nc 0.10.0) at {venv}: "
            "run 'make lava-env' (finds Python 3.10 via SNE_LAVA_PYTHON, python3.10 or pyenv) or set SNE_LAVA_ENV=/path/to/venv"
        )
    return py


def run_lava(network: Network, spikes: np.ndarray, mode: str = "fixed", record: bool = False,
             timeout: Optional[float] = None, batch: Optional[int] = None) -> Result:
    """Run on Lava's Loihi-2 simulator; ``batch`` copies side by side per time step (default: sized
    by the worker, see ``lava_worker.batch_size``)."""
    spikes = check_inputs(network, spikes, mode)
    info, trains = _work(network, spikes, mode, "recorded", timeout, batch)
    counts = [t.sum(axis=1) for t in trains]
    return make_result(network, "lava", mode, spikes, counts, info.pop("wall_s"), trains if record else None, info)


def time_lava_variant(network: Network, spikes: np.ndarray, mode: str, variant: str, timeout: Optional[float] = None,
                      batch: Optional[int] = None) -> dict:
    """Benchmark helpers: ``raw`` (the same batched run with Lava's plain LIFReset, nothing
    recorded: Lava's own step rate) or ``naive`` (rebuild and run the network once per sample).
    Returns timing only."""
    spikes = check_inputs(network, spikes, mode)
    return _work(network, spikes, mode, variant, timeout, batch)[0]


def _work(network: Network, spikes: np.ndarray, mode: str, variant: str, timeout: Optional[float],
          batch: Optional[int] = None) -> tuple[dict, list[np.ndarray]]:
    py = lava_python()
    t0 = time.perf_counter()
    n, steps, _ = spikes.shape
    with tempfile.TemporaryDirectory(prefix="sne-lava-") as tmp:
        tmpd = Path(tmp)
        extra = {"batch": np.array(int(batch))} if batch else {}
        np.savez(tmpd / "job.npz", spikes=spikes, mode=np.array(mode), variant=np.array(variant), **extra,
                 **network.to_arrays())
        env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONNOUSERSITE="1")
        proc = subprocess.Popen([str(py), "-m", "simulators.lava_worker", str(tmpd / "job.npz"), str(tmpd)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                start_new_session=True, cwd=str(REPO))
        try:
            out, err = proc.communicate(timeout=timeout or DEFAULT_TIMEOUT)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise WorkerError(f"the Lava worker timed out after {timeout or DEFAULT_TIMEOUT:.0f} s and was killed (pid {proc.pid})")
        finally:
            _kill_group(proc)  # Lava's runtime children, should any outlive the worker
        if proc.returncode != 0:
            last = (err.strip().splitlines() or ["(no output)"])[-1]
            if proc.returncode == 2 and last.startswith("error: "):
                raise GraphError(last[len("error: "):])
            raise WorkerError(f"the Lava worker failed (exit {proc.returncode}): {last}")
        info = json.loads((tmpd / "info.json").read_text())
        trains = []
        if variant == "recorded":
            for li, layer in enumerate(network.layers):
                bsz = info["batch"]
                packed = np.load(tmpd / f"layer{li}.npy")
                flat = np.unpackbits(packed, axis=1, count=bsz * layer.n_out).astype(bool)
                trains.append(unbatch_steps(flat, n, steps, bsz, layer.n_out))
    info["wall_s"] = time.perf_counter() - t0
    info["worker_overhead_s"] = info["wall_s"] - info["build_s"] - info["run_s"]
    return info, trains


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
