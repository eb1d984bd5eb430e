"""The reference backend: :func:`sne_deploy.simulators.loop.run_loop` on numpy, as a :class:`Result`.

The same function with torch arrays (``sne_deploy.snn.run_network_torch``) is the PyTorch
reference. Both are delay-free and are the yardstick the Brian2 and Lava backends are tested
against; in fixed point they also count the neuron-steps where the chip would wrap u or saturate
v (``Result.overflow``, per layer, every fixed-point run, as on Brian2 and Lava),
since there the chip computes something other than the float model.
"""

from __future__ import annotations

import time

import numpy as np

from .loop import NUMPY, ArrayLib, run_loop
from .network import Network
from .result import Result, check_inputs, make_result


def run_reference(
    network: Network,
    spikes: np.ndarray,
    mode: str = "float",
    record: bool = False,
    lib: ArrayLib = NUMPY,
    backend: str = "reference",
) -> Result:
    spikes = check_inputs(network, spikes, mode)
    t0 = time.perf_counter()
    out = run_loop(network, spikes, mode, record, lib)
    return make_result(
        network,
        backend,
        mode,
        spikes,
        out.counts,
        time.perf_counter() - t0,
        out.trains,
        readout=out.readout,
        overflow=out.saturated.tolist(),
    )
