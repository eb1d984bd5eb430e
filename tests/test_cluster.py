"""Backend calls sharded across a local Ray cluster (sne_deploy.cluster): the same results as one
process on every backend and policy, user errors in one line and not retried, a killed Ray
worker retried with an exact result and no Lava process or job folder left behind, and no Ray
import on the serial path. Under CI=true a missing Ray is a failure, like a missing Lava."""

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

from sne_deploy.cluster import Call, RayExecutor, Serial, executor_for, plan_shards, shard_bounds
from sne_deploy.runtime import run_cascade, run_members, simulate
from sne_deploy.scheduler import cascade_order, choose, threshold_for
from sne_deploy.simulators import run, to_nir
from sne_deploy.simulators.errors import BackendUnavailable, GraphError
from sne_deploy.simulators.random_nets import random_spikes, random_ternary_network
from sne_deploy.simulators.result import Result, concat_results

from .helpers import need


@pytest.fixture(scope="session")
def ray_cluster():
    """A local Ray cluster of 2 CPUs for the session (as a user's `--workers 2` makes one)."""
    try:
        import ray
    except ImportError:
        need("Ray", False, "pip install -c constraints.txt '.[cluster]' (make setup installs it)")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _same(a: Result, b: Result) -> None:
    """Every simulated value equal (timings and details may differ)."""
    assert a.n_samples == b.n_samples
    for x, y in zip(a.layer_counts, b.layer_counts):
        assert np.array_equal(x, y)
    assert np.array_equal(a.input_counts, b.input_counts)
    assert a.overflow == b.overflow
    assert (a.trains is None) == (b.trains is None)
    for x, y in zip(a.trains or [], b.trains or []):
        assert np.array_equal(x, y)
    assert (a.readout is None) == (b.readout is None)
    if a.readout is not None:
        assert np.array_equal(a.readout, b.readout)
    assert np.array_equal(a.synaptic_events, b.synaptic_events)


@pytest.mark.parametrize("n,shards", [(10, 4), (10, 1), (7, 2), (3, 5), (1000, 16)])
def test_shards_are_consecutive_cover_every_sample_and_differ_by_one_at_most(n, shards):
    bounds = shard_bounds(n, shards)
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] and a[0] < a[1] for a, b in zip(bounds, bounds[1:]))
    sizes = [b - a for a, b in bounds]
    assert len(sizes) == min(n, shards) and max(sizes) - min(sizes) <= 1


def test_the_plan_balances_work_over_workers_without_tiny_shards():
    count = lambda plan: [len(b) for b in plan]  # noqa: E731
    assert count(plan_shards([6000], 2, "lava")) == [2]  # one call: one shard per worker
    assert count(plan_shards([1500], 2, "lava")) == [1]  # halves would be under Lava's 1000 samples
    assert count(plan_shards([300] * 8, 2, "lava")) == [1] * 8  # 8 calls already fill 2 workers
    assert count(plan_shards([4000, 200, 200], 4, "reference")) == [4, 1, 1]  # the big call is cut into shares
    assert count(plan_shards([100, 45], 2, "reference", shard_samples=20)) == [5, 3]  # asked-for size


@pytest.mark.parametrize("mode", ["float", "fixed"])
def test_results_of_consecutive_shards_join_into_the_unsharded_result(mode):
    net = random_ternary_network((20, 24, 6), seed=3, with_bias=True)
    spikes = random_spikes(23, 9, 20, rate=0.3, seed=1)
    whole = run(net, spikes, mode=mode, record=True)
    parts = [run(net, spikes[a:b], mode=mode, record=True) for a, b in shard_bounds(23, 3)]
    joined = concat_results(parts)
    _same(joined, whole)
    assert joined.details["shards"] == 3


def test_ray_missing_is_one_line_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(BackendUnavailable, match=r"--workers/--cluster need Ray.*sne-deploy\[cluster\]"):
        executor_for(workers=2)
    assert isinstance(executor_for(), Serial)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--cluster", "127.0.0.1:1"], "--cluster 127.0.0.1:1: no Ray cluster answers there (Connection refused)"),
        (["--cluster", "headnode"], "--cluster headnode: give HOST:PORT of the Ray head"),
        (["--workers", "0"], "--workers must be at least 1, got 0"),
        (["--workers", "2", "--shard-samples", "0"], "--shard-samples must be at least 1, got 0"),
    ],
)
def test_bad_cluster_options_are_one_line_at_once(tmp_path, args, message):
    net = random_ternary_network((8, 6, 3), seed=0)
    import nir

    nir.write(str(tmp_path / "g.nir"), to_nir(net))
    np.savez(tmp_path / "x.npz", spikes=random_spikes(5, 4, 8, rate=0.3))
    cmd = [sys.executable, "-m", "sne_deploy", "run-nir", str(tmp_path / "g.nir"), "--inputs", str(tmp_path / "x.npz")]
    proc = subprocess.run(cmd + args, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"sne-deploy: error: {message}")


def test_the_serial_path_imports_no_ray(tmp_path):
    net = random_ternary_network((8, 6, 3), seed=0)
    import nir

    nir.write(str(tmp_path / "g.nir"), to_nir(net))
    np.savez(tmp_path / "x.npz", spikes=random_spikes(5, 4, 8, rate=0.3))
    code = (
        "import sys; from sne_deploy.cli import main; "
        f"rc = main(['run-nir', {str(tmp_path / 'g.nir')!r}, '--inputs', {str(tmp_path / 'x.npz')!r}, '--json']); "
        "assert rc == 0 and 'ray' not in sys.modules, sorted(m for m in sys.modules if m.startswith('ray'))"
    )
    env = {k: v for k, v in os.environ.items() if k != "SNE_RAY_ADDRESS"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr


def _runs_equal(a, b) -> None:
    assert [(j, idx.tolist()) for j, idx, _ in a.results] == [(j, idx.tolist()) for j, idx, _ in b.results]
    for (_, _, x), (_, _, y) in zip(a.results, b.results):
        _same(x, y)
    assert np.array_equal(a.counts, b.counts)


@pytest.mark.parametrize("backend", ["torch", "reference", "brian2"])
def test_sharded_members_and_cascade_rounds_equal_one_process(
    request, ray_cluster, digits_bundle, digits_data, backend
):
    """Every backend through the same shard-and-join path; Brian2 (each shard builds its own
    network) on the members of one round only, the cascade's rounds on torch and the reference."""
    if backend == "brian2":
        request.getfixturevalue("brian2_ready")
    bundle = digits_bundle
    x = digits_data.test.flat()[: 90 if backend != "brian2" else 40]
    spikes = bundle.spikes(x)
    ray_ex = RayExecutor(shard_samples=20)
    for mode in ("float", "fixed") if backend != "brian2" else ("fixed",):
        scores = bundle.gate_scores(x)
        awake = choose("gate", 0.4, len(x), bundle.n_members, scores, bundle.manifest.budget_calibration, None, 0)
        if backend == "brian2":
            awake[:, 2:] = False  # two members' calls, each cut in two shards
            awake[:, :2] = True
        serial = run_members(bundle, spikes, awake, backend, mode, record=True)
        sharded = run_members(bundle, spikes, awake, backend, mode, record=True, executor=ray_ex)
        _runs_equal(serial, sharded)
        assert any(res.details.get("shards", 1) > 1 for _, _, res in sharded.results)  # it really sharded
        if backend == "brian2":
            continue
        order, thr = cascade_order(scores), threshold_for(bundle.manifest.cascade_calibration, 0.3)
        s_runs, s_awake, s_rounds = run_cascade(bundle, spikes, order, thr, backend, mode, True)
        r_runs, r_awake, r_rounds = run_cascade(bundle, spikes, order, thr, backend, mode, True, executor=ray_ex)
        _runs_equal(s_runs, r_runs)
        assert np.array_equal(s_awake, r_awake) and np.array_equal(s_rounds, r_rounds)


@pytest.mark.parametrize("policy", ["gate", "cascade", "random", "fixed", "all"])
def test_simulate_sharded_reports_what_one_process_reports(ray_cluster, digits_bundle, digits_data, policy):
    x, y = digits_data.test.flat()[:120], digits_data.test.y[:120]
    kw = dict(budget=0.3, policy=policy, backend="reference", mode="fixed", seed=3)
    one = simulate(digits_bundle, x, y, **kw)
    many = simulate(digits_bundle, x, y, **kw, executor=RayExecutor(shard_samples=30))
    assert np.array_equal(one.awake, many.awake) and np.array_equal(one.predictions, many.predictions)
    assert one.counts == many.counts and one.accuracy == many.accuracy and one.mean_rounds == many.mean_rounds
    assert one.agreement == many.agreement and one.agreement is not None and one.agreement.spike_mismatches == 0
    assert [c.overflow for c in one.backend_details] == [c.overflow for c in many.backend_details]


@pytest.mark.lava
def test_sharded_lava_equals_the_reference_bit_for_bit(ray_cluster, lava_ready, digits_bundle, digits_data):
    """Each Lava shard runs in its own worker inside a Ray worker; joined, the gate policy's runs
    equal the serial reference's (which equals serial Lava: test_simulators, test_runtime)."""
    bundle = digits_bundle
    x = digits_data.test.flat()[:80]
    spikes = bundle.spikes(x)
    awake = np.zeros((len(x), bundle.n_members), bool)
    awake[:, :2] = True  # two members over every sample: 2 calls x 2 shards = 4 Lava runs
    serial = run_members(bundle, spikes, awake, "reference", "fixed", record=True)
    sharded = run_members(bundle, spikes, awake, "lava", "fixed", record=True, executor=RayExecutor(shard_samples=40))
    _runs_equal(serial, sharded)
    assert all(res.details["shards"] == 2 for _, _, res in sharded.results)


def test_a_users_error_in_a_task_comes_back_as_its_one_line_and_is_not_retried(ray_cluster):
    net = random_ternary_network((8, 6, 3), seed=0)
    bad = random_spikes(40, 4, 9, rate=0.3)  # 9 input channels for an 8-input network
    with pytest.raises(GraphError) as serial:
        Serial().run([Call(net, bad)], "reference", "float")
    t = time.monotonic()
    with pytest.raises(GraphError) as sharded:
        RayExecutor(shard_samples=10).run([Call(net, bad)], "reference", "float")
    assert str(sharded.value) == str(serial.value)
    assert time.monotonic() - t < 30


@pytest.mark.lava
def test_a_ray_worker_killed_mid_lava_run_is_retried_exactly_and_leaves_nothing(lava_ready, tmp_path):
    """SIGKILL the Ray worker that runs a Lava shard: Ray retries the shard, the result equals the
    serial reference's, the orphaned Lava worker's group is gone within 10 s and no job folder
    is left."""
    from .test_faults import _find_worker, _group

    net = random_ternary_network((64, 128, 10), seed=0, with_bias=True)
    import nir

    nir.write(str(tmp_path / "g.nir"), to_nir(net))
    spikes = random_spikes(6000, 16, 64, rate=0.2)
    np.savez(tmp_path / "x.npz", spikes=spikes)
    tmpdir = Path(tempfile.mkdtemp(prefix="sne-ray-", dir="/tmp"))
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    env.pop("SNE_RAY_ADDRESS", None)
    cmd = [sys.executable, "-m", "sne_deploy", "run-nir", str(tmp_path / "g.nir"), "--inputs", str(tmp_path / "x.npz")]
    cmd += ["--backend", "lava", "--mode", "fixed", "--workers", "2", "--shard-samples", "3000"]
    cmd += ["--out", str(tmp_path / "out.npz")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        worker = _find_worker(proc, tmpdir, timeout=120.0)
        ray_worker = int((Path("/proc") / str(worker) / "stat").read_text().rsplit(")", 1)[1].split()[1])
        os.kill(ray_worker, signal.SIGKILL)
        end = time.monotonic() + 10.0
        while time.monotonic() < end and _group(worker):
            time.sleep(0.2)
        assert _group(worker) == [], "the orphaned Lava worker's processes outlived its Ray worker"
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        assert list(tmpdir.glob("sne-lava-*")) == [], "a Lava job folder outlived the run"  # (ray/: Ray's own)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(tmpdir, ignore_errors=True)
    ref = run(net, spikes, backend="reference", mode="fixed", record=True)
    got = np.load(tmp_path / "out.npz")
    assert np.array_equal(got["output_counts"], ref.output_counts)
    for i, t in enumerate(ref.trains or []):
        assert np.array_equal(got[f"train_layer{i}"], t)
