"""Shared test helpers. Under CI=true a missing Brian2 or Lava environment is a failure, never a skip."""
from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need(what: str, available: bool, how: str) -> None:
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is missing in CI: {how}")
    pytest.skip(f"{what} not available: {how}")


@pytest.fixture(scope="session")
def lava_ready() -> None:
    from simulators.lava_backend import BackendUnavailable, lava_python

    try:
        lava_python()
        ok = True
    except BackendUnavailable:
        ok = False
    need("the Lava environment", ok, "run 'make lava-env'")


@pytest.fixture(scope="session")
def brian2_ready() -> None:
    try:
        import brian2  # noqa: F401

        ok = True
    except ImportError:
        ok = False
    need("Brian2", ok, "pip install brian2 (part of the main environment)")
