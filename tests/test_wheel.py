"""A pip user's path, end to end: the built wheel in a fresh venv outside the repository, one
setup command for Lava, then train -> export -> simulate on Lava and Brian2. Nothing may be
written inside site-packages; caches and the Lava environment go to the user's folders."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.slow, pytest.mark.lava, pytest.mark.brian2]


def _files(site: Path) -> set[str]:
    return {str(p.relative_to(site)) for p in site.rglob("*") if "__pycache__" not in p.parts and p.suffix != ".pyc"}


def test_wheel_in_a_fresh_venv_trains_exports_and_simulates_on_lava_and_brian2(tmp_path, lava_ready, brian2_ready):
    from sne_deploy.setup_lava import find_python310

    def run(*cmd: str, cwd: Path = tmp_path, env: dict | None = None) -> str:
        r = subprocess.run(list(cmd), cwd=cwd, env=env or os.environ, capture_output=True, text=True)
        assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
        return r.stdout + r.stderr

    dist = tmp_path / "dist"
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist), str(ROOT))
    (wheel,) = dist.glob("sne_deploy-*.whl")
    with zipfile.ZipFile(wheel) as zf:  # one installed name: sne_deploy and its dist-info, nothing else
        tops = {name.split("/")[0] for name in zf.namelist()}
    assert tops == {"sne_deploy", "sne_deploy-0.1.0.dist-info"}, tops
    assert {
        "sne_deploy/simulators/lava_worker.py",
        "sne_deploy/exporters/bundle.py",
        "sne_deploy/simulators/lava_procs/column_sparse.py",
    } <= set(zipfile.ZipFile(wheel).namelist())
    venv = tmp_path / "venv"
    run(sys._base_executable, "-m", "venv", str(venv))  # type: ignore[attr-defined]
    pip_cache = run(sys.executable, "-m", "pip", "cache", "dir").strip().splitlines()[-1]
    home = tmp_path / "home"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV", "SNE_LAVA_ENV", "SNE_BRIAN2_CACHE")
    }
    env.update(
        XDG_CACHE_HOME=str(home / "cache"),
        XDG_DATA_HOME=str(home / "data"),
        PIP_CACHE_DIR=pip_cache,
        PATH=f"{venv / 'bin'}:{os.environ['PATH']}",
    )
    run(str(venv / "bin" / "pip"), "install", "-q", "-c", str(ROOT / "constraints.txt"), str(wheel), env=env)
    site = next((venv / "lib").glob("python3.*/site-packages"))
    before = _files(site)

    work = tmp_path / "work"  # outside the repository
    work.mkdir()
    sne = str(venv / "bin" / "sne-deploy")
    assert "sne-deploy 0.1.0" in run(sne, "--version", cwd=work, env=env)
    out = run(sne, "setup", "lava", "--python", find_python310(), cwd=work, env=env)
    assert "Lava environment ready" in out and (home / "data" / "sne-deploy" / "lava-env" / "bin" / "python").exists()
    out = run(sne, "train", "--epochs", "2", "--teacher-epochs", "10", "--out", "m.pt", cwd=work, env=env)
    assert "next: sne-deploy export m.pt" in out
    run(sne, "export", "m.pt", "--target", "lava", cwd=work, env=env)
    out = run(
        sne, "simulate", "--backend", "lava", "--limit", "30", cwd=work, env=env
    )  # the last bundle of this folder
    assert f"bundle {work / 'm.lava'}" in out and "spike mismatches 0" in out, out
    out = run(sne, "simulate", "m.lava", "--backend", "brian2", "--limit", "30", cwd=work, env=env)
    assert "spike mismatches 0" in out and "compiling" in out and "happens once" in out, out
    assert any((home / "cache" / "sne-deploy" / "brian2").rglob("*")), "Brian2's cache is not in the user cache"

    # the user's own problem, from the wheel: the examples (an .npz and a plain nn.Module teacher
    # on Lava, an ONNX teacher on Brian2, a budget sweep with its plot), an ImageFolder, bad data
    py = str(venv / "bin" / "python")
    examples = work / "examples"
    shutil.copytree(ROOT / "examples", examples)
    out = run(py, str(examples / "own_data_module_teacher.py"), cwd=work, env=env)
    assert "lava: accuracy" in out and "0 spike mismatches" in out, out
    out = run(py, str(examples / "onnx_teacher_brian2.py"), cwd=work, env=env)
    assert "ONNX teacher" in out and "brian2: accuracy" in out and "0 spike mismatches" in out, out
    run(py, str(examples / "budget_sweep.py"), "--out", str(work / "sweep.png"), cwd=work, env=env)
    assert (work / "sweep.png").stat().st_size > 10_000
    from .test_own_data import _image_folder

    _image_folder(work / "images", per_class=12)
    out = run(sne, "train", "--data", "images", "--members", "2", "--epochs", "1", "--out", "img.pt", cwd=work, env=env)
    assert "the digits defaults for its image size" in out, out
    np.savez(work / "bad.npz", x_train=np.zeros((10, 4, 4)), y_train=np.arange(10), x_test=np.zeros((2, 4, 4)))
    bad = subprocess.run(
        [sne, "train", "--data", "bad.npz", "--out", "b.pt"], cwd=work, env=env, capture_output=True, text=True
    )
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        f"sne-deploy: error: {work / 'bad.npz'}: missing y_test (an .npz dataset holds x_train, y_train, x_test, y_test "
        "and optionally x_val, y_val)"
    ], bad.stderr
    assert _files(site) == before, f"written inside site-packages: {sorted(_files(site) - before)[:5]}"
