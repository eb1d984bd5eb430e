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
from sne_deploy.simulators import from_nir, to_nir
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
        (["train", "--student", "conv", "--conv-layers", "100000,3,1,1"], ["--conv-layers", "neurons", "limits"]),
        (["train", "--hidden", "100000000"], ["--hidden", "weights", "limits"]),
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
    with pytest.raises(WriteError, match=f"no space left on the device to write {tmp_path / 'm.pt'}"):
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


# third pass, cause 2 ------------------------------------------------------------------------------
@pytest.fixture
def full_disk(tmp_path, monkeypatch):
    """A folder on a full disk: a 200 KiB tmpfs filled to the last byte where root may mount one,
    else a folder where torch.save, nir.write and np.savez fail as they do on a full disk."""
    import contextlib
    import errno
    import subprocess

    where = tmp_path / "full"
    where.mkdir()
    mounted = (
        os.geteuid() == 0
        and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(where)], capture_output=True
        ).returncode
        == 0
    )
    if mounted:
        with open(where / ".filler", "wb", buffering=0) as f, contextlib.suppress(OSError):
            while True:  # to the last byte
                f.write(b"\0" * 4096)
    else:

        def enospc(*args, **kwargs):  # type: ignore[no-untyped-def]
            raise OSError(errno.ENOSPC, "No space left on device")

        def torch_full(*args, **kwargs):  # type: ignore[no-untyped-def]
            raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")

        monkeypatch.setattr("torch.save", torch_full)
        monkeypatch.setattr("nir.write", enospc)
        monkeypatch.setattr("numpy.savez", enospc)
    yield where
    if mounted:
        subprocess.run(["umount", str(where)], capture_output=True)


def test_a_full_disk_is_one_line_and_leaves_nothing_half_written(
    full_disk, capsys, digits_model, digits_bundle, tmp_path
):
    """The checkpoint (torch.save), a bundle's members (h5py), run-nir's --out (np.savez): each
    says "no space left" naming the user's path, exits 2 and leaves no file behind."""
    from sne_deploy import checkpoint
    from sne_deploy.simulators.errors import SneError

    before = set(full_disk.iterdir())
    with pytest.raises(SneError, match="no space left on the device to write .*m.pt"):
        checkpoint.save(digits_model, full_disk / "m.pt")
    assert set(full_disk.iterdir()) == before
    checkpoint.save(digits_model, tmp_path / "m.pt")
    code, err = run_cli(capsys, "export", str(tmp_path / "m.pt"), "--out", str(full_disk / "b"))
    one_line(code, err, "no space left", str(full_disk / "b"))
    assert set(full_disk.iterdir()) == before
    np.savez(tmp_path / "x.npz", spikes=np.ones((50, 16, digits_bundle.networks[0].n_in), bool))
    member = digits_bundle.path / digits_bundle.manifest.member_files[0]
    code, err = run_cli(
        capsys, "run-nir", str(member), "--inputs", str(tmp_path / "x.npz"), "--out", str(full_disk / "o.npz")
    )
    one_line(code, err, "no space left", str(full_disk / "o.npz"))
    assert set(full_disk.iterdir()) == before


# third pass, cause 3 ------------------------------------------------------------------------------
def test_setup_lava_never_touches_a_users_folder_and_refuses_a_concurrent_setup(capsys, tmp_path):
    """--env naming a folder of the user's: refused with or without --force, the files stay; a
    second setup of the same environment while one runs says so instead of failing inside pip."""
    from sne_deploy.simulators.files import exclusive

    mine = tmp_path / "my-project"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    for force in ((), ("--force",)):
        code, err = run_cli(capsys, "setup", "lava", "--env", str(mine), *force)
        one_line(code, err, str(mine), "not a Lava environment made by 'sne-deploy setup lava'")
        assert (mine / "thesis.tex").read_text() == "years of work" and len(list(mine.iterdir())) == 1
    (tmp_path / "afile").write_text("x")
    code, err = run_cli(capsys, "setup", "lava", "--env", str(tmp_path / "afile"))
    one_line(code, err, "is a file")
    busy = tmp_path / "env"
    with exclusive(busy):
        code, err = run_cli(capsys, "setup", "lava", "--env", str(busy))
    one_line(code, err, "another 'sne-deploy setup lava' is making")


# third pass, cause 4 ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "labels, words",
    [
        (np.zeros(5, np.int64), "shape (20,)"),
        (np.array(["a"] * 20), "integer classes"),
        (np.full(20, 0.5), "whole numbers"),
        (np.full(20, -1), "0..9"),
        (np.full(20, 10), "0..9"),
        (np.zeros((20, 1), np.int64), "shape (20,)"),
    ],
)
def test_simulate_checks_the_labels_of_the_users_inputs(capsys, digits_bundle, tmp_path, labels, words):
    path = tmp_path / "in.npz"
    np.savez(path, x=np.random.default_rng(0).random((20, 64)), y=labels)
    code, err = run_cli(capsys, "simulate", str(digits_bundle.path), "--inputs", str(path), "--backend", "reference")
    one_line(code, err, str(path), words)


# third pass, cause 5 ------------------------------------------------------------------------------
def test_manifest_and_member_graphs_must_agree_even_with_recomputed_checksums(bundle_copy):
    """steps edited to 1000, or two member files swapped, with every sha256 recomputed as a
    careful attacker would: the graphs' own metadata (steps, member, encoding) contradicts it."""
    from sne_deploy.simulators.files import sha256_file

    edit_manifest(bundle_copy, lambda m: m.update(steps=1000))
    with pytest.raises(BundleError, match="says steps = 16, the manifest says 1000"):
        load_bundle(bundle_copy)
    edit_manifest(bundle_copy, lambda m: m.update(steps=16))
    edit_manifest(bundle_copy, lambda m: m.update(encoding="regular-if-centred"))
    with pytest.raises(BundleError, match="encoding = regular-if, the manifest says regular-if-centred"):
        load_bundle(bundle_copy)
    edit_manifest(bundle_copy, lambda m: m.update(encoding="regular-if"))
    load_bundle(bundle_copy)  # restored: loads again
    m1, m2 = bundle_copy / "members" / "member_1.nir", bundle_copy / "members" / "member_2.nir"
    m1.rename(bundle_copy / "swap")
    m2.rename(m1)
    (bundle_copy / "swap").rename(m2)

    def fix_sums(m: dict) -> None:
        for rel in ("members/member_1.nir", "members/member_2.nir"):
            m["files"][rel] = sha256_file(bundle_copy / rel)
        m["member_sizes"][1], m["member_sizes"][2] = m["member_sizes"][2], m["member_sizes"][1]

    edit_manifest(bundle_copy, fix_sums)
    with pytest.raises(BundleError, match="member 1 .* says member = 2"):
        load_bundle(bundle_copy)


# third pass, cause 6 ------------------------------------------------------------------------------
def test_unbounded_event_counts_and_a_nonsense_dt_are_one_line(capsys, tmp_path):
    import nir

    g = to_nir(random_ternary_network((6, 5, 3), seed=0))
    nir.write(str(tmp_path / "g.nir"), g)
    huge = np.zeros((2, 4, 6), np.int64)
    huge[0, 0, 0] = 2**63 - 1
    np.savez(tmp_path / "x.npz", spikes=huge)
    code, err = run_cli(capsys, "run-nir", str(tmp_path / "g.nir"), "--inputs", str(tmp_path / "x.npz"))
    one_line(code, err, "event count", "65536")
    g.metadata["dt"] = "fast"
    nir.write(str(tmp_path / "fast.nir"), g)
    np.savez(tmp_path / "ok.npz", spikes=np.ones((2, 4, 6), bool))
    code, err = run_cli(capsys, "run-nir", str(tmp_path / "fast.nir"), "--inputs", str(tmp_path / "ok.npz"))
    one_line(code, err, "'fast'", "the graph's metadata", "--dt")


# third pass, cause 8 ------------------------------------------------------------------------------
def test_out_files_replace_only_the_projects_own_kind(capsys, tmp_path, digits_bundle):
    """train --out and run-nir --out never replace a user's other file (an earlier result of
    their own kind they do); the refusal comes before any work."""
    notes = tmp_path / "notes.pt"
    notes.write_text("my notes")
    code, err = run_cli(capsys, "train", "--out", str(notes))
    one_line(code, err, str(notes), "not an sne-deploy model checkpoint")
    (tmp_path / "m.summary.json").write_text('{"my": "data"}')
    code, err = run_cli(capsys, "train", "--out", str(tmp_path / "m.pt"))
    one_line(code, err, "m.summary.json", "not a training summary")
    member = digits_bundle.path / digits_bundle.manifest.member_files[0]
    np.savez(tmp_path / "x.npz", spikes=np.ones((2, 16, digits_bundle.networks[0].n_in), bool))
    mine = tmp_path / "mine.npz"
    np.savez(mine, data=np.arange(3))
    code, err = run_cli(capsys, "run-nir", str(member), "--inputs", str(tmp_path / "x.npz"), "--out", str(mine))
    one_line(code, err, str(mine), "not an earlier 'run-nir --out' result")
    assert notes.read_text() == "my notes" and np.load(mine)["data"].tolist() == [0, 1, 2]
    ours = tmp_path / "ours.npz"
    for _ in range(2):  # an earlier result of run-nir is replaced
        code, err = run_cli(capsys, "run-nir", str(member), "--inputs", str(tmp_path / "x.npz"), "--out", str(ours))
        assert code == 0, err


def test_unclear_messages_now_say_what_happened(capsys, tmp_path):
    """A folder given as inputs, an .npz of Python objects, a self-loop that is no neuron's own
    loop: each message says what it is."""
    import nir

    (tmp_path / "d").mkdir()
    g = to_nir(random_ternary_network((6, 5, 3), seed=0))
    nir.write(str(tmp_path / "g.nir"), g)
    code, err = run_cli(capsys, "run-nir", str(tmp_path / "g.nir"), "--inputs", str(tmp_path / "d"))
    one_line(code, err, str(tmp_path / "d"), "is a folder")
    np.savez(tmp_path / "obj.npz", spikes=np.array([{"a": 1}], dtype=object))
    code, err = run_cli(capsys, "run-nir", str(tmp_path / "g.nir"), "--inputs", str(tmp_path / "obj.npz"))
    one_line(code, err, "Python objects", "never loaded")
    g.edges.append(("lif1", "fc1"))  # a cycle through two layers: no neuron's own loop
    with pytest.raises(GraphError, match="own loop through one weight node .* is supported; other cycles are not"):
        from_nir(g)


def test_a_checkpoint_names_itself_in_its_errors(tmp_path, digits_model):
    from sne_deploy import checkpoint
    from sne_deploy.checkpoint import CheckpointError

    checkpoint.save(digits_model, tmp_path / "m.pt")
    p = torch_load(tmp_path / "m.pt")
    for bad in ({"data": "nonsense"}, {"steps": 0}, {"encoding": "poisson"}):
        q = {**p, "config": {**p["config"], **bad}}
        torch_save(q, tmp_path / "bad.pt")
        with pytest.raises(CheckpointError, match=f"{tmp_path / 'bad.pt'}: its config is not usable"):
            checkpoint.load(tmp_path / "bad.pt")
    q = {
        **p,
        "students": [dict(p["students"][0], **{"weights.0": p["students"][0]["weights.0"][:, :5]})] + p["students"][1:],
    }
    torch_save(q, tmp_path / "shape.pt")
    with pytest.raises(CheckpointError, match="size mismatch for weights.0"):
        checkpoint.load(tmp_path / "shape.pt")


def torch_load(path):  # type: ignore[no-untyped-def]
    import torch

    return torch.load(path, weights_only=True)


def torch_save(obj, path) -> None:  # type: ignore[no-untyped-def]
    import torch

    torch.save(obj, path)


def test_a_closed_pipe_ends_quietly(tmp_path):
    """`sne-deploy run-nir --json | true`: the reader is gone before anything is written; no traceback."""
    import subprocess
    import sys

    import nir

    nir.write(str(tmp_path / "g.nir"), to_nir(random_ternary_network((6, 5, 3), seed=0)))
    np.savez(tmp_path / "x.npz", spikes=np.ones((2, 4, 6), bool))
    cmd = f"{sys.executable} -m sne_deploy run-nir {tmp_path / 'g.nir'} --inputs {tmp_path / 'x.npz'} --json 2>{tmp_path / 'err'} | true"
    subprocess.run(["bash", "-c", cmd], check=True, timeout=120)
    assert (tmp_path / "err").read_text() == ""


def test_a_report_folder_that_is_a_mount_point_says_so(capsys, tmp_path, digits_bundle):
    """--report naming a mount point (a read-only one in the report) cannot be swapped in whole:
    one line that says why, not 'Device or resource busy'."""
    import subprocess

    rep = tmp_path / "rep"
    rep.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(rep)]).returncode:
        pytest.skip("mounting a tmpfs needs root here")  # the message is only reachable through a mount point
    try:
        code, err = run_cli(
            capsys, "simulate", str(digits_bundle.path), "--backend", "torch", "--limit", "10", "--report", str(rep)
        )
        one_line(code, err, f"cannot replace {rep}", "mount point")
        assert list(rep.iterdir()) == []
    finally:
        subprocess.run(["umount", str(rep)])
