"""Bad input and hostile files, one test per root cause: one line naming the user's path or option,
exit 2, nothing half-written, nothing of the user's touched (see the README's reliability table)."""

from __future__ import annotations

import errno
import os
import pickle
import shutil
import signal
import stat

import numpy as np
import pytest

from sne_deploy import checkpoint, cli
from sne_deploy.deploy import bundle_parts
from sne_deploy.exporters.bundle import BundleError, load_bundle, write_bundle
from sne_deploy.exporters.checks import ExportError
from sne_deploy.simulators import to_nir
from sne_deploy.simulators.errors import GraphError
from sne_deploy.simulators.random_nets import random_spikes, random_ternary_network
from tests.helpers import edit_manifest


def run_cli(capsys, *args: str, env: dict | None = None) -> tuple[int, list[str]]:
    """``sne-deploy ARGS`` in this process: exit code and stderr lines (signal handlers restored)."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    old_env = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        code = cli.main(list(args))
    finally:
        for s, h in saved.items():
            signal.signal(s, h)
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return code, capsys.readouterr().err.strip().splitlines()


def one_line(code: int, err: list[str], *words: str) -> None:
    assert code == 2, err
    assert len(err) == 1 and all(w in err[0] for w in words), err


@pytest.fixture
def bundle_copy(digits_bundle, tmp_path):
    out = tmp_path / "b"
    shutil.copytree(digits_bundle.path, out)
    return out


# 3 -----------------------------------------------------------------------------------------------
def test_export_force_replaces_only_a_bundle(capsys, tmp_path, digits_model):
    ckpt = tmp_path / "m.pt"
    checkpoint.save(digits_model, ckpt)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("precious")
    code, err = run_cli(capsys, "export", str(ckpt), "--out", str(mine), "--force")
    one_line(code, err, str(mine), "not an sne-deploy bundle")
    assert (mine / "thesis.tex").read_text() == "precious"
    afile = tmp_path / "notes.txt"
    afile.write_text("mine")
    code, err = run_cli(capsys, "export", str(ckpt), "--out", str(afile), "--force")
    one_line(code, err, "not an sne-deploy bundle")
    assert afile.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["m.pt", "mine", "notes.txt"]


# 4 -----------------------------------------------------------------------------------------------
def test_manifest_edits_are_detected(bundle_copy):
    edit_manifest(bundle_copy, lambda m: m.update(steps=1000), keep_sum=False)
    with pytest.raises(BundleError, match="manifest.json does not match manifest.sha256"):
        load_bundle(bundle_copy)
    pristine = bundle_copy.parent / "pristine.json"
    shutil.copy(bundle_copy / "manifest.json", pristine)
    for bad, msg in (
        ({"gate_macs": "NaN"}, "'gate_macs'"),
        ({"files": ["x"]}, "'files'"),
        ({"member_files": 3}, "'member_files'"),
        ({"steps": -1}, "'steps'"),
    ):
        shutil.copy(pristine, bundle_copy / "manifest.json")
        edit_manifest(bundle_copy, lambda m, bad=bad: m.update(bad))
        with pytest.raises(BundleError, match=msg):
            load_bundle(bundle_copy)


# 5 -----------------------------------------------------------------------------------------------
def test_swapped_member_graph_is_refused(bundle_copy):
    import nir

    from sne_deploy.simulators.files import sha256_file

    other = to_nir(random_ternary_network((64, 20, 8), seed=1))
    nir.write(str(bundle_copy / "members/member_1.nir"), other)
    edit_manifest(
        bundle_copy,
        lambda m: m["files"].update({"members/member_1.nir": sha256_file(bundle_copy / "members/member_1.nir")}),
    )
    with pytest.raises(BundleError, match=r"member 1 .* layer sizes \[64, 20, 8\]"):
        load_bundle(bundle_copy)


# 6 -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rel", ["../../../../etc/passwd", "/etc/passwd", "link.nir"])
def test_bundle_paths_must_stay_inside(bundle_copy, rel):
    (bundle_copy / "link.nir").symlink_to("/etc/passwd")

    def point(m):
        m["files"][rel] = "0" * 64

    edit_manifest(bundle_copy, point)
    with pytest.raises(BundleError, match="outside the bundle"):
        load_bundle(bundle_copy)


# 7 -----------------------------------------------------------------------------------------------
def test_report_folder_is_swapped_whole_and_bad_paths_refused_first(capsys, digits_bundle, tmp_path):
    rep = tmp_path / "rep"
    b = str(digits_bundle.path)
    assert run_cli(capsys, "simulate", b, "--limit", "20", "--sweep", "0.5,1.0", "--report", str(rep))[0] == 0
    assert (rep / "accuracy_vs_energy.png").is_file()
    assert run_cli(capsys, "simulate", b, "--limit", "20", "--report", str(rep))[0] == 0
    assert sorted(p.name for p in rep.iterdir()) == ["awake_fraction.png", "raster_sample0.png", "report.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]  # no temporary or lock left
    afile = tmp_path / "f"
    afile.write_text("x")
    for target in (afile, afile / "sub"):
        code, err = run_cli(
            capsys, "simulate", b, "--backend", "lava", "--report", str(target), env={"SNE_LAVA_ENV": "/nonexistent"}
        )  # refused before any backend is touched
        one_line(code, err, "--report", "is a file")
    other = tmp_path / "data"
    other.mkdir()
    (other / "x.csv").write_text("1")
    one_line(*run_cli(capsys, "simulate", b, "--limit", "5", "--report", str(other)), "holds other files")
    assert (other / "x.csv").read_text() == "1"


def test_a_second_concurrent_report_writer_is_refused(tmp_path):
    from sne_deploy.simulators.files import WriteError, exclusive

    with exclusive(tmp_path / "rep"):
        with pytest.raises(WriteError, match="being written by another"):
            with exclusive(tmp_path / "rep"):
                pass
    with exclusive(tmp_path / "rep"):  # released: the next run may write
        pass


# 8 -----------------------------------------------------------------------------------------------
def test_export_refuses_nan_in_gate_or_head(digits_model, digits_data, tmp_path):
    import copy

    import torch

    parts = bundle_parts(digits_model, digits_data)
    parts.gate = copy.deepcopy(parts.gate)
    with torch.no_grad():
        next(parts.gate.parameters())[0, 0] = float("nan")
    with pytest.raises(ExportError, match="gate's tensor .* NaN"):
        write_bundle(parts, tmp_path / "b", "lava")
    assert list(tmp_path.iterdir()) == []


# 9 -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [0.0, np.nan])
def test_run_nir_checks_standard_fields_against_exact_metadata(tmp_path, value):
    import nir

    from sne_deploy.simulators import from_nir

    g = to_nir(random_ternary_network((6, 5, 3), seed=0))
    g.nodes["fc0"].weight = np.full_like(g.nodes["fc0"].weight, value)  # the metadata keeps the old values
    nir.write(str(tmp_path / "g.nir"), g)
    with pytest.raises(GraphError, match="fc0|lif0"):
        from_nir(tmp_path / "g.nir")


# 10 ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, words",
    [
        (["train", "--members", "0"], ["--members", ">= 1"]),
        (["train", "--epochs", "-1"], ["--epochs"]),
        (["train", "--members", "40"], ["--members 40", "32 feature dimensions"]),
        (["train", "--spike-reg", "nan"], ["--spike-reg"]),
        (["train", "--input-delta", "-1"], ["--input-delta", ">= 0"]),
        (["train", "--logit-kd", "1"], ["--logit-kd", "digits defaults leave off"]),
        (["train", "--device", "tpu"], ["--device", "cpu, cuda or auto"]),
        (["train", "--student", "conv", "--conv-layers", "8,5"], ["--conv-layers '8,5'", "C,K,S,P"]),
        (["train", "--student", "conv", "--conv-layers", "8,5,0,1"], ["--conv-layers", "stride >= 1"]),
        (["train", "--conv-layers", "8,5,3,1"], ["--conv-layers", "--student conv"]),
        (["train", "--student", "conv", "--conv-layers", "8,40,1,0"], ["--conv-layers '8,40,1,0'", "does not fit"]),
    ],
)
def test_train_arguments_are_checked_before_any_work(capsys, tmp_path, args, words):
    code, err = run_cli(capsys, *args, "--out", str(tmp_path / "m.pt"))
    one_line(code, err, *words)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="asserts what a machine without CUDA says")
def test_train_device_cuda_without_a_gpu_is_one_line(capsys, tmp_path):
    code, err = run_cli(capsys, "train", "--device", "cuda", "--out", str(tmp_path / "m.pt"))
    one_line(code, err, "--device cuda", "no CUDA device", "--device cpu")
    assert list(tmp_path.iterdir()) == []


def test_simulate_limits_and_tiny_budgets(capsys, digits_bundle):
    b = str(digits_bundle.path)
    for limit in ("0", "-5"):
        one_line(*run_cli(capsys, "simulate", b, "--limit", limit), "--limit")
    one_line(*run_cli(capsys, "simulate", b, "--sweep", "0.3,abc"), "--sweep", "abc")
    code, err = run_cli(capsys, "simulate", b, "--budget", "0.05", "--limit", "10", "--policy", "random")
    k = digits_bundle.n_members
    assert code == 0 and len(err) == 1 and err[0].startswith(f"warning: budget 0.05 is below 1/K = {1 / k:.3g}"), err


# 11 ----------------------------------------------------------------------------------------------
def test_declared_sizes_are_checked_before_allocation(tmp_path):
    import h5py

    from sne_deploy.data import DataError, _read_cifar_batch
    from sne_deploy.simulators import from_nir

    with h5py.File(tmp_path / "huge.nir", "w") as f:  # 8 GiB declared, nothing written
        f.create_dataset("node/weight", shape=(1 << 15, 1 << 15), dtype="f8", chunks=(64, 64), compression="gzip")
    assert (tmp_path / "huge.nir").stat().st_size < 100_000
    with pytest.raises(GraphError, match="declares 8.0 GiB"):
        from_nir(tmp_path / "huge.nir")

    class Huge:  # what np.ndarray pickles to, with a 1 Ti-element shape
        def __reduce__(self):
            return (np.ndarray.__reduce__(np.zeros(1))[0], (np.ndarray, (1 << 40,), b"b"))

    (tmp_path / "batch").write_bytes(pickle.dumps({b"data": Huge(), b"labels": []}, protocol=4))
    with pytest.raises(DataError, match="larger than any CIFAR-10 batch"):
        _read_cifar_batch(tmp_path / "batch")


# 12 ----------------------------------------------------------------------------------------------
def test_damaged_files_give_one_line(capsys, tmp_path, digits_bundle, digits_model):
    b = str(digits_bundle.path)
    good = tmp_path / "x.npz"
    np.savez(good, x=np.zeros((3, 64)))
    (tmp_path / "trunc.npz").write_bytes(good.read_bytes()[:200])
    np.save(tmp_path / "x.npy", np.zeros((3, 64)))
    for f, words in (("trunc.npz", ["trunc.npz", "not an .npz"]), ("x.npy", ["x.npy", "not an .npz"])):
        code, err = run_cli(capsys, "simulate", b, "--inputs", str(tmp_path / f))
        one_line(code, err, *words)
        assert "allow_pickle" not in err[0]
    import torch

    ckpt = tmp_path / "m.pt"
    checkpoint.save(digits_model, ckpt)
    p = torch.load(ckpt, weights_only=True)

    def nan_student(q):
        q["students"][0] = {**q["students"][0], "weights.0": q["students"][0]["weights.0"] * float("nan")}

    for change, words in (
        (lambda q: q.update(config=[1, 2]), ["config"]),
        (lambda q: q.update(students=q["students"][:2]), [f"{digits_model.config.members} members", "2 students"]),
        (nan_student, ["student 0", "NaN"]),
    ):
        q = dict(p, students=list(p["students"]))
        change(q)
        torch.save(q, tmp_path / "bad.pt")
        with pytest.raises(checkpoint.CheckpointError) as e:
            checkpoint.load(tmp_path / "bad.pt")
        assert all(w in str(e.value) for w in words), str(e.value)


def test_zero_time_constant_names_the_node(tmp_path):
    from sne_deploy.simulators import from_nir

    g = to_nir(random_ternary_network((6, 5, 3), seed=0))
    g.nodes["lif1"].tau_mem = np.zeros_like(g.nodes["lif1"].tau_mem)
    with pytest.raises(GraphError, match="lif1.*tau_mem"):
        from_nir(g)


def test_disk_full_names_the_users_path(tmp_path, digits_model, monkeypatch):
    import torch

    from sne_deploy.simulators.files import WriteError

    def full(*_a, **_k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(WriteError, match=f"cannot write {tmp_path / 'm.pt'}: No space left"):
        checkpoint.save(digits_model, tmp_path / "m.pt")
    assert list(tmp_path.iterdir()) == []


# 13 ----------------------------------------------------------------------------------------------
def test_bad_environment_variable_is_named(capsys, digits_bundle):
    b = str(digits_bundle.path)
    env = {"SNE_LAVA_TIMEOUT": "abc"}
    assert run_cli(capsys, "simulate", b, "--limit", "5", env=env)[0] == 0  # torch never reads it
    one_line(*run_cli(capsys, "simulate", b, "--limit", "5", "--backend", "lava", env=env), "SNE_LAVA_TIMEOUT='abc'")


# 14 ----------------------------------------------------------------------------------------------
def test_empty_and_complex_inputs_are_refused(capsys, tmp_path, digits_bundle):
    from sne_deploy.simulators import run

    b = str(digits_bundle.path)
    np.savez(tmp_path / "empty.npz", x=np.zeros((0, 64)))
    np.savez(tmp_path / "cplx.npz", x=np.zeros((3, 64)) + 0.5j)
    one_line(*run_cli(capsys, "simulate", b, "--inputs", str(tmp_path / "empty.npz")), "no samples")
    one_line(*run_cli(capsys, "simulate", b, "--inputs", str(tmp_path / "cplx.npz")), "complex")
    net = random_ternary_network((6, 5, 3), seed=0)
    with pytest.raises(GraphError, match="no samples"):
        run(net, np.zeros((0, 4, 6), bool))
    with pytest.raises(GraphError, match="complex"):
        run(net, random_spikes(2, 4, 6).astype(complex))


# 15 ----------------------------------------------------------------------------------------------
def test_files_follow_the_users_umask(tmp_path, digits_model, digits_data):
    old = os.umask(0o022)
    try:
        checkpoint.save(digits_model, tmp_path / "m.pt")
        write_bundle(bundle_parts(digits_model, digits_data), tmp_path / "b", "nir")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m.pt").stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "b").stat().st_mode) == 0o755


def test_random_bytes_checkpoint_is_called_foreign_not_unsafe(tmp_path):
    (tmp_path / "r.pt").write_bytes(os.urandom(4096))
    with pytest.raises(checkpoint.CheckpointError, match="truncated or foreign") as e:
        checkpoint.load(tmp_path / "r.pt")
    assert "unsafe" not in str(e.value)
