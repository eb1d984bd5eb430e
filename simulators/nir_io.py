"""NIR graphs <-> :class:`sne_deploy.simulators.network.Network`: the public entry points.

Reading (:mod:`~sne_deploy.simulators.nir_read`: the mapping of NIR's continuous-time nodes onto
LIF layers, the lenient file reader), the graph's topology and our ``sne_`` metadata convention
(:mod:`~sne_deploy.simulators.nir_graph`) and writing (:mod:`~sne_deploy.simulators.nir_write`)
live in their own modules; import from here.
"""

from __future__ import annotations

from .nir_read import SUPPORTED, GraphWarning, from_nir, read_graph
from .nir_write import to_nir

__all__ = ["SUPPORTED", "GraphWarning", "from_nir", "read_graph", "to_nir"]
