"""sne-deploy: distil a teacher ANN into a gated Spiking Neural Ensemble and deploy it through NIR.

The one installed name: ``sne_deploy.simulators`` (the NIR runtime, no torch) and
``sne_deploy.exporters`` (torch ensemble -> bundle) live in the top-level folders ``simulators/``
and ``exporters/`` of a checkout and install as sub-packages. This file imports nothing heavy, so
``import sne_deploy.simulators`` stays torch-free (the Lava environment has no torch).
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

try:  # the version lives in pyproject.toml alone
    __version__ = _version("sne-deploy")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "unknown (not installed)"

# The Python API (sne_deploy.api), loaded on first use: ``import sne_deploy`` imports no torch.
_API = (
    "fit",
    "export",
    "simulate",
    "run",
    "TrainConfig",
    "TrainedModel",
    "Bundle",
    "SimulationReport",
    "ExportWarning",
)


def __getattr__(name: str) -> object:
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'sne_deploy' has no attribute '{name}'")
