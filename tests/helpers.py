"""Helpers shared by several test modules (imported as ``tests.helpers``; fixtures stay in conftest)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable


def edit_manifest(bundle: Path, fn: Callable[[dict[str, Any]], Any], keep_sum: bool = True) -> None:
    """Apply ``fn`` to a bundle's manifest.json; with ``keep_sum`` also rewrite manifest.sha256, as a
    careful attacker (or a user who re-exported by hand) would, so only the schema can catch it."""
    from sne_deploy.exporters.bundle import MANIFEST_SUM
    from sne_deploy.simulators.files import sha256_file

    m = json.loads((bundle / "manifest.json").read_text())
    fn(m)
    (bundle / "manifest.json").write_text(json.dumps(m))
    if keep_sum:
        (bundle / MANIFEST_SUM).write_text(sha256_file(bundle / "manifest.json"))
