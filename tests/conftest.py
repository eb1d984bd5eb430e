"""Shared fixtures (the helpers are in tests/helpers.py). Under CI=true a missing Brian2 or Lava
environment is a failure, never a skip."""

from __future__ import annotations

import pytest

from .helpers import need


@pytest.fixture(scope="session")
def lava_ready() -> None:
    from sne_deploy.simulators.lava_backend import BackendUnavailable, lava_python

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


@pytest.fixture(scope="session")
def digits_model():
    """One digits ensemble with the CLI's defaults, trained once for the whole session (~1 min)."""
    import torch

    from sne_deploy.train import TrainConfig, train

    torch.set_num_threads(2)
    return train(TrainConfig(data="digits", seed=0), progress=False)


@pytest.fixture(scope="session")
def digits_data():
    from sne_deploy.data import load_digits

    return load_digits(0)


@pytest.fixture(scope="session")
def digits_bundle(digits_model, digits_data, tmp_path_factory):
    from sne_deploy.deploy import bundle_parts
    from sne_deploy.exporters.bundle import load_bundle, write_bundle

    out = tmp_path_factory.mktemp("bundle") / "model.lava"
    write_bundle(bundle_parts(digits_model, digits_data), out, "lava")
    return load_bundle(out)
