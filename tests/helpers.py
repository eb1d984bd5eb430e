"""Helpers shared by several test modules (imported as ``tests.helpers``; fixtures stay in conftest)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable

import pytest


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


IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def float64_stack(n_in: int, hidden: list, out_sizes: list, steps: int, **kw):  # type: ignore[no-untyped-def]
    """A float64 MemberStack with random biases in [-0.3, 0.3] (a different summation order
    cannot flip a threshold tie in float64), for tests that compare it with other forms."""
    import torch

    from sne_deploy.member_stack import MemberStack
    from sne_deploy.snn import StudentSpec

    stack_kw = {k: kw.pop(k) for k in ("ternary", "seed") if k in kw}
    stack = MemberStack(StudentSpec(n_in, tuple(hidden), steps=steps, **kw), out_sizes, **stack_kw).double()
    with torch.no_grad():
        for b in stack.biases:
            b.uniform_(-0.3, 0.3)
    return stack


def need(what: str, available: bool, how: str) -> None:
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is missing in CI: {how}")
    pytest.skip(f"{what} not available: {how}")
