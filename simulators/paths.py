"""Where the toolkit keeps things on the user's machine, never inside the installed package.

* caches (Brian2's compiled code, the last-bundle pointers): ``platformdirs.user_cache_path``,
  e.g. ``~/.cache/sne-deploy``; ``$SNE_BRIAN2_CACHE`` overrides Brian2's;
* the Lava environment made by ``sne-deploy setup lava``: ``platformdirs.user_data_path``, e.g.
  ``~/.local/share/sne-deploy/lava-env``; ``$SNE_LAVA_ENV`` overrides it, and a source checkout's
  ``.venv-lava`` (made by ``make lava-env``) is used when present.

``pip uninstall sne-deploy`` leaves exactly these two folders, which the README names.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

APP = "sne-deploy"
PACKAGE_DIR = Path(__file__).resolve().parent  # the installed (or checked-out) simulators package


def user_cache() -> Path:
    import platformdirs

    return platformdirs.user_cache_path(APP)


def user_data() -> Path:
    import platformdirs

    return platformdirs.user_data_path(APP)


def source_checkout() -> Optional[Path]:
    """The repository root when running from a source checkout (not from an installed wheel)."""
    root = PACKAGE_DIR.parent
    return root if (root / "pyproject.toml").is_file() and (root / "sne_deploy").is_dir() else None


def lava_env_dir() -> Path:
    env = os.environ.get("SNE_LAVA_ENV")
    if env:
        return Path(env)
    checkout = source_checkout()
    if checkout is not None and (checkout / ".venv-lava" / "bin" / "python").exists():
        return checkout / ".venv-lava"
    return user_data() / "lava-env"


def brian2_cache_dir() -> Path:
    env = os.environ.get("SNE_BRIAN2_CACHE")
    return Path(env) if env else user_cache() / "brian2"


def worker_path(job_dir: Path) -> Path:
    """A folder holding only this ``simulators`` package, for a worker's PYTHONPATH: the worker then
    imports our code and nothing else of the host's environment (whose numpy or other packages would
    shadow the Lava environment's own). The package is ``sne_deploy.simulators``; its parent here is
    an empty ``sne_deploy`` package (never the real one, whose training side needs torch), with the
    simulators folder linked into it."""
    shim = job_dir / "py"
    parent = shim / "sne_deploy"
    parent.mkdir(parents=True, exist_ok=True)
    (parent / "__init__.py").write_text('"""The simulators of sne-deploy alone, for the Lava worker."""\n')
    link = parent / "simulators"
    if not link.exists():
        link.symlink_to(PACKAGE_DIR, target_is_directory=True)
    return shim
