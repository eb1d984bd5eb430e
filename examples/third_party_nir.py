"""Run a NIR graph written the way snnTorch writes its Leaky neurons on every backend.

    .venv/bin/python examples/third_party_nir.py          # reference and Brian2
    .venv/bin/python examples/third_party_nir.py --lava   # Lava too (needs .venv-lava)

snnTorch exports ``Leaky(beta)`` as ``nir.LIF(tau = dt/(1-beta), r = tau/dt, v_leak = 0)`` with
dt = 1e-4 and no dt in the graph; pass the same dt to ``from_nir`` (or ``run-nir --dt``). This
graph is run with Loihi's reset to zero, so Lava can run it too; a real snnTorch export of
Leaky layers with the default reset by subtraction runs as snnTorch does with
``run-nir --preset snntorch`` (``tests/library_nets.py`` builds such exports with snnTorch itself).
``fixed_point.quantize_network`` picks the fixed-point scales (``run-nir --quantize``).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import nir
import numpy as np

from sne_deploy import simulators
from sne_deploy.simulators.fixed_point import quantize_network

DT, BETA = 1e-4, 0.875


def snntorch_like_graph(rng: np.random.Generator) -> nir.NIRGraph:
    tau1, tau2 = np.full(32, DT / (1 - BETA)), np.full(10, DT / (1 - BETA))
    return nir.NIRGraph.from_list(
        nir.Affine(weight=rng.normal(0, 0.5, (32, 20)), bias=np.zeros(32)),
        nir.LIF(tau=tau1, r=tau1 / DT, v_leak=np.zeros(32), v_threshold=np.ones(32)),
        nir.Affine(weight=rng.normal(0, 0.5, (10, 32)), bias=np.zeros(10)),
        nir.LIF(tau=tau2, r=tau2 / DT, v_leak=np.zeros(10), v_threshold=np.ones(10)),
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lava", action="store_true")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "snntorch_like.nir"
        nir.write(str(path), snntorch_like_graph(rng))
        net = simulators.from_nir(path, dt=DT)
    spikes = rng.random((100, 25, 20)) < 0.3
    backends = ["reference", "brian2"] + (["lava"] if a.lava else [])
    fixed_net = quantize_network(net)[0]
    for mode, network in (("float", net), ("fixed", fixed_net)):
        ref = simulators.run(network, spikes, "reference", mode, record=True)
        for backend in backends:
            res = simulators.run(network, spikes, backend, mode, record=True)
            mism = sum(int((x != y).sum()) for x, y in zip(ref.trains, res.trains))
            s = res.summary()
            print(
                f"{mode:5s} {backend:9s} spikes/sample {s['spikes_per_sample']:7.1f}  synaptic events/sample "
                f"{s['synaptic_events_per_sample']:8.1f}  mismatches vs reference {mism}  ({res.wall_time:.2f} s)"
            )


if __name__ == "__main__":
    main()
