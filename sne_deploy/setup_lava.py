"""``sne-deploy setup lava``: make the Lava environment from the installed package alone.

lava-nc 0.10.0 installs only on Python 3.10 and needs numpy < 2, and Lava must never share a
process with torch, so the Lava backend runs a worker in its own virtual environment. This
command builds that environment (by default in the user's data folder, see
:mod:`sne_deploy.simulators.paths`) with ``pip``: lava-nc, nir and numpy < 2 — no torch and no copy of this
package; the worker imports the installed ``simulators`` package through a path of its own. It
is idempotent: an environment whose requirements and interpreter are unchanged is reused.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Optional

from sne_deploy.simulators.errors import SneError
from sne_deploy.simulators.paths import lava_env_dir, worker_path

REQUIREMENTS = ("lava-nc==0.10.0", "numpy<2", "nir>=1.0.8")
STAMP = ".sne-stamp"  # the requirements and interpreter it was made for, written once it works
MARKER = ".sne-deploy-env"  # written as soon as the folder is made: this command's folder, whole or not


class SetupError(SneError, RuntimeError):
    """The Lava environment could not be made; the message says what to provide."""


def _version(py: str) -> Optional[tuple[int, int]]:
    try:
        out = subprocess.run(
            [py, "-c", "import sys; print(*sys.version_info[:2])"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    parts = out.stdout.split()
    return (int(parts[0]), int(parts[1])) if out.returncode == 0 and len(parts) == 2 else None


def find_python310(explicit: Optional[str] = None) -> str:
    """``--python``, then ``$SNE_LAVA_PYTHON``, then ``python3.10`` on PATH, then pyenv's 3.10.x."""
    for source, py in (("--python", explicit), ("SNE_LAVA_PYTHON", os.environ.get("SNE_LAVA_PYTHON"))):
        if py:
            if _version(py) != (3, 10):
                raise SetupError(
                    f"{source}={py} is not a Python 3.10 interpreter (lava-nc 0.10.0 installs on 3.10 only)"
                )
            return py
    found = shutil.which("python3.10")
    if found and _version(found) == (3, 10):
        return found
    pyenv = shutil.which("pyenv")
    if pyenv:
        versions = subprocess.run([pyenv, "versions", "--bare"], capture_output=True, text=True).stdout.split()
        for v in sorted((v for v in versions if v.startswith("3.10.")), reverse=True):
            prefix = subprocess.run([pyenv, "prefix", v], capture_output=True, text=True).stdout.strip()
            cand = Path(prefix) / "bin" / "python3.10"
            if cand.exists() and _version(str(cand)) == (3, 10):
                return str(cand)
    raise SetupError(
        "the Lava backend needs Python 3.10 (lava-nc 0.10.0 installs on 3.10 only): pass "
        "--python /path/to/python3.10, set SNE_LAVA_PYTHON, put python3.10 on PATH or 'pyenv install 3.10.13'"
    )


def _stamp(py: str) -> str:
    return hashlib.sha256(repr((REQUIREMENTS, os.path.realpath(py))).encode()).hexdigest()[:16]


def _check(venv: Path) -> Optional[str]:
    """None when the environment imports Lava, nir and our simulators without torch; else why not."""
    with tempfile.TemporaryDirectory(prefix="sne-setup-") as tmp:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        env.update(PYTHONNOUSERSITE="1", PYTHONPATH=str(worker_path(Path(tmp))))
        r = subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-c",
                "import sys, lava.magma.core, nir, sne_deploy.simulators.lava_worker; assert 'torch' not in sys.modules",
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp,
        )
    if r.returncode == 0:
        return None
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    return lines[-1] if lines else f"exit {r.returncode}"


def _ours(venv: Path) -> bool:
    """A folder this command made (the stamp: environments made before the marker existed)."""
    return (venv / MARKER).is_file() or (venv / STAMP).is_file()


def _check_destination(venv: Path) -> None:
    """The environment goes into a new or empty folder, or one this command made: never among a
    user's files, and ``--force`` never deletes anything else."""
    if venv.exists() and not venv.is_dir():
        raise SetupError(f"--env {venv} is a file, not a folder")
    if venv.is_dir() and any(venv.iterdir()) and not _ours(venv):
        raise SetupError(
            f"--env {venv} holds other files and is not a Lava environment made by 'sne-deploy setup lava'; "
            "name a new or empty folder (nothing there was changed)"
        )


def setup_lava(
    python: Optional[str] = None,
    env_dir: Optional[Path] = None,
    force: bool = False,
    say: Callable[[str], object] = print,
) -> Path:
    from sne_deploy.simulators.files import WriteError, exclusive

    venv = Path(env_dir) if env_dir else lava_env_dir()
    _check_destination(venv)
    py = find_python310(python)
    try:
        with exclusive(venv):
            return _make(venv, py, force, say)
    except WriteError as e:
        if "another sne-deploy run" in str(e):
            raise SetupError(
                f"another 'sne-deploy setup lava' is making {venv}; run this again when it has finished"
            ) from None
        raise


def _make(venv: Path, py: str, force: bool, say: Callable[[str], object]) -> Path:
    stamp = _stamp(py)
    if not force and (venv / STAMP).is_file() and (venv / STAMP).read_text().strip() == stamp:  # checked when written
        say(f"Lava environment up to date: {venv}")
        return venv
    say(f"making the Lava environment in {venv} with {py} ({', '.join(REQUIREMENTS)}; no torch)")
    if force and venv.exists() and _ours(venv):
        shutil.rmtree(venv)
    try:
        if not (venv / "bin" / "python").exists():
            venv.mkdir(parents=True, exist_ok=True)
            (venv / MARKER).write_text("made by 'sne-deploy setup lava'; --force may replace this folder\n")
            subprocess.run([py, "-m", "venv", str(venv)], check=True, capture_output=True, text=True)
        say("installing with pip (a minute or two the first time) ...")
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", *REQUIREMENTS],
            check=True,
            capture_output=True,
            text=True,
        )
    except subprocess.CalledProcessError as e:
        last = [ln for ln in (e.stderr or "").splitlines() if ln.strip() and not ln.startswith("WARNING")]
        raise SetupError(f"making the Lava environment in {venv} failed: {last[-1] if last else e}") from None
    problem = _check(venv)
    if problem:
        raise SetupError(f"the Lava environment in {venv} fails its import check: {problem}")
    (venv / STAMP).write_text(stamp + "\n")
    say(f"Lava environment ready: {venv}" + ("" if venv == lava_env_dir() else f" (use it with SNE_LAVA_ENV={venv})"))
    return venv
