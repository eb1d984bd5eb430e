"""What every benchmark script shares: where the repository and its committed results are.

A script runs as ``.venv/bin/python benchmarks/NAME.py``; its folder is then first on sys.path, so
``from _common import ...`` finds this file. The toolkit itself is installed (``make setup``
installs it in editable mode), so no script puts the repository on sys.path for ``sne_deploy``.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PROGRESS = sys.stderr.isatty()  # tqdm bars only on a terminal


def with_test_nets() -> None:
    """Make the test suite's library networks (``tests.library_nets``) importable: the interop
    benchmark tabulates the very networks the CI's interop tests run."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
