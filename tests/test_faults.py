"""Faults during a Lava run: the worker or one of Lava's runtime processes dies, or the user's
process gets SIGTERM/SIGHUP. Each must end within seconds with one line, leave no process of the
worker's group alive and no job folder behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from sne_deploy.simulators import to_nir
from sne_deploy.simulators.random_nets import random_spikes, random_ternary_network

pytestmark = pytest.mark.lava


def _proc_stat(pid: int) -> list[str]:
    return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()


def _group(pgid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                st = _proc_stat(int(d.name))
            except OSError:
                continue
            if int(st[2]) == pgid and st[0] != "Z":
                out.append(int(d.name))
    return out


def _find_worker(proc: subprocess.Popen, tmpdir: Path, timeout: float = 60.0) -> int:
    """The pid of the Lava worker whose job folder lies in ``tmpdir``, once Lava's runtime started."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"run-nir ended before the fault (exit {proc.returncode}): {proc.stderr.read()}")
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                cmd = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"sne_deploy.simulators.lava_worker" in cmd and any(str(tmpdir).encode() in c for c in cmd):
                pid = int(d.name)
                if len(_group(pid)) > 1:  # Lava's runtime processes are up: the run is under way
                    return pid
        time.sleep(0.2)
    raise AssertionError("no Lava worker with runtime processes appeared")


# `run-nir` from a parent that ignores SIGCHLD, as Ray's workers do: children are reaped by the
# kernel, so Popen.wait() sees no exit status (Python reports 0) and Lava's own multiprocessing breaks
IGNORING_SIGCHLD = (
    "import signal, sys; signal.signal(signal.SIGCHLD, signal.SIG_IGN); "
    "from sne_deploy.cli import main; sys.exit(main(sys.argv[1:]))"
)


def _start_run_nir(tmp_path: Path, n: int, ignore_sigchld: bool = False) -> tuple[subprocess.Popen, Path]:
    """`run-nir` on Lava over ``n`` samples in a process of its own; (process, its TMPDIR)."""
    net = random_ternary_network((64, 128, 10), seed=0, with_bias=True)
    import nir

    nir.write(str(tmp_path / "g.nir"), to_nir(net))
    np.savez(tmp_path / "x.npz", spikes=random_spikes(n, 16, 64, rate=0.2))
    # a short folder of our own (Lava's sockets live below it; Unix socket paths are short)
    tmpdir = Path(tempfile.mkdtemp(prefix="sne-fault-", dir="/tmp"))
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    head = [sys.executable, "-c", IGNORING_SIGCHLD] if ignore_sigchld else [sys.executable, "-m", "sne_deploy"]
    args = ["run-nir", str(tmp_path / "g.nir"), "--inputs", str(tmp_path / "x.npz"), "--backend", "lava"]
    args += ["--mode", "fixed", "--out", str(tmp_path / "out.npz")]
    proc = subprocess.Popen(head + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    return proc, tmpdir


@pytest.fixture
def long_lava_run(request, lava_ready, tmp_path):
    """Start `run-nir` on Lava with enough samples to run for a minute (from a parent that ignores
    SIGCHLD when the test asks with an indirect parameter True); yield (process, tmpdir)."""
    proc, tmpdir = _start_run_nir(tmp_path, 30000, getattr(request, "param", False))
    yield proc, tmpdir
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    shutil.rmtree(tmpdir, ignore_errors=True)


def test_a_parent_ignoring_sigchld_still_gets_lavas_exact_result(lava_ready, tmp_path):
    from sne_deploy.simulators import run

    proc, tmpdir = _start_run_nir(tmp_path, 200, ignore_sigchld=True)
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    assert proc.returncode == 0, err
    z = np.load(tmp_path / "out.npz")
    net = random_ternary_network((64, 128, 10), seed=0, with_bias=True)
    ref = run(net, random_spikes(200, 16, 64, rate=0.2), backend="reference", mode="fixed", record=True)
    assert np.array_equal(z["output_counts"], ref.output_counts)
    assert np.array_equal(z["train_layer0"], ref.trains[0])


def _ends_cleanly(proc: subprocess.Popen, tmpdir: Path, worker: int, t_fault: float, code: int, *msgs: str) -> None:
    out, err = proc.communicate(timeout=30)
    assert time.monotonic() - t_fault <= 10.0, "took more than 10 s after the fault"
    assert proc.returncode == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and any(m in lines[0] for m in msgs), err
    assert _group(worker) == [], "processes of the worker's group are still alive"
    assert list(tmpdir.iterdir()) == [], "a job folder was left behind"


@pytest.mark.parametrize("long_lava_run", [False, True], indirect=True, ids=["parent", "parent-ignoring-SIGCHLD"])
def test_worker_killed_mid_run(long_lava_run):
    proc, tmpdir = long_lava_run
    worker = _find_worker(proc, tmpdir)
    os.kill(worker, signal.SIGKILL)
    # a parent ignoring SIGCHLD never learns the exit status: the missing result is the failure
    _ends_cleanly(
        proc, tmpdir, worker, time.monotonic(), 2, "Lava worker failed (killed by SIGKILL)", "exited without its result"
    )


@pytest.mark.parametrize("long_lava_run", [False, True], indirect=True, ids=["parent", "parent-ignoring-SIGCHLD"])
def test_one_lava_runtime_process_killed_mid_run(long_lava_run):
    proc, tmpdir = long_lava_run
    worker = _find_worker(proc, tmpdir)
    time.sleep(1.0)  # mid-run, as a real fault would be (not in the instant the process starts)
    child = max(p for p in _group(worker) if p != worker)  # the newest: one of the process models
    os.kill(child, signal.SIGKILL)
    # either the worker notices and fails (its last error line is shown) or it hangs and the host
    # notices the dead process
    _ends_cleanly(proc, tmpdir, worker, time.monotonic(), 2, "died during the run", "Lava worker failed")


def test_host_killed_by_sigkill_takes_the_worker_and_its_job_folder_with_it(long_lava_run):
    """kill -9 of the host (the OOM killer, a preemption) runs no finally: the worker notices it
    was orphaned, kills its group and removes the job folder itself."""
    proc, tmpdir = long_lava_run
    worker = _find_worker(proc, tmpdir)
    proc.kill()
    proc.wait()
    end = time.monotonic() + 10.0
    while time.monotonic() < end and (_group(worker) or list(tmpdir.iterdir())):
        time.sleep(0.2)
    assert _group(worker) == [], "processes of the worker's group outlived the host"
    assert list(tmpdir.iterdir()) == [], "the job folder outlived the host"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_stop_the_run_cleanly(long_lava_run, sig):
    proc, tmpdir = long_lava_run
    worker = _find_worker(proc, tmpdir)
    proc.send_signal(sig)
    _ends_cleanly(proc, tmpdir, worker, time.monotonic(), 128 + sig, f"terminated by {sig.name}")
