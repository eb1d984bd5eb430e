"""A runtime for NIR graphs of Loihi-style LIF networks: numpy reference, Brian2 and Lava backends
that agree spike for spike. Imports numpy only (nir lazily, brian2 and lava only when their
backend runs), so it also works inside the Lava environment, which has no torch.

    from sne_deploy.simulators import run, from_nir
    result = run(from_nir("net.nir"), spikes, backend="lava", mode="fixed")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Union

import numpy as np

from .encoding import ENCODING_NAME, ENCODINGS, encode_regular, encode_spikes
from .errors import GraphError, SneError, check_choice
from .fixed_point import fold_ternary, quantize_layer, quantize_network
from .network import Layer, Network, make_layer
from .neuron import Dynamics
from .nir_io import from_nir, to_nir
from .result import Result

BACKENDS = ("reference", "brian2", "lava")

__all__ = [
    "run",
    "from_nir",
    "Dynamics",
    "to_nir",
    "Network",
    "Layer",
    "make_layer",
    "quantize_layer",
    "quantize_network",
    "fold_ternary",
    "Result",
    "GraphError",
    "SneError",
    "encode_regular",
    "encode_spikes",
    "ENCODING_NAME",
    "ENCODINGS",
    "BACKENDS",
]


def run(
    graph: Union[Network, Any, str, Path],
    spikes: np.ndarray,
    backend: str = "reference",
    mode: str = "float",
    record: bool = False,
    **options: Any,
) -> Result:
    """Run a network (a :class:`Network`, a ``nir.NIRGraph`` or a NIR file) on ``spikes`` (N, T, n_in)."""
    network = graph if isinstance(graph, Network) else from_nir(graph)
    if backend == "reference":
        from .reference import run_reference

        return run_reference(network, spikes, mode, record)
    if backend == "brian2":
        from .brian2_backend import run_brian2

        return run_brian2(network, spikes, mode, record, **options)
    if backend == "lava":
        from .lava_backend import run_lava

        return run_lava(network, spikes, mode, record, **options)
    check_choice("backend", backend, BACKENDS, GraphError)
    raise AssertionError(backend)  # every backend is handled above
