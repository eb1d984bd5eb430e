"""Shared test helpers. Under CI=true a missing Brian2 or Lava environment is a failure, never a skip."""
from __future__ import annotations

import os

import pytest

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
    from sne_deploy.exporters.bundle import load_bundle, write_bundle
    from sne_deploy.deploy import bundle_parts

    out = tmp_path_factory.mktemp("bundle") / "model.lava"
    write_bundle(bundle_parts(digits_model, digits_data), out, "lava")
    return load_bundle(out)
