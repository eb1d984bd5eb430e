"""The runtime: ask the gate, wake only the chosen members on a backend, impute the sleeping
ones (inside the bundle's head), classify, and count energy proxies.

Members really sleep: member k runs on the backend only over the samples that woke it, so a
sleeping member costs no synaptic events, neuron updates or spikes.

The yardstick is :data:`YARDSTICK`, the PyTorch reference (``sne_deploy.snn.run_network_torch``,
the shared simulation loop of ``simulators.loop`` on torch arrays): every run on another backend
can be checked against it in the same mode on the same choices, prediction by prediction and
spike by spike.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

import simulators
from exporters.bundle import Bundle
from simulators.encoding import encode_regular
from simulators.errors import GraphError, InputError
from simulators.network import Network
from simulators.result import Result

from .energy import Counts
from .records import Agreement, SimulationReport
from .scheduler import choose

BACKENDS = ("torch", "reference", "brian2", "lava")
YARDSTICK = "torch"


def run_member(network: Network, spikes: np.ndarray, backend: str, mode: str, record: bool,
               options: Optional[dict] = None) -> Result:
    """One member on one backend; ``options`` go to that backend only (e.g. a Brian2 target)."""
    if backend == "torch":
        from .snn import run_network_torch

        return run_network_torch(network, spikes, mode, record)
    if backend not in BACKENDS:
        raise GraphError(f"unknown backend '{backend}' (choose from {', '.join(BACKENDS)})")
    return simulators.run(network, spikes, backend=backend, mode=mode, record=record, **(options or {}))


def check_intensities(bundle: Bundle, x_flat: np.ndarray) -> np.ndarray:
    x = np.asarray(x_flat)
    if np.iscomplexobj(x) or not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise InputError(f"inputs must be real intensities in [0, 1], got an array of dtype {x.dtype}")
    if x.ndim >= 1 and len(x) == 0:
        raise InputError("inputs hold no samples (N = 0)")
    x = x.astype(np.float32)
    n_in = bundle.manifest.n_inputs
    if x.ndim != 2 or x.shape[1] != n_in:
        raise InputError(f"inputs must have shape (N, {n_in}) for this bundle, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InputError("inputs contain NaN or inf")
    return x


@dataclass
class MemberRuns:
    """What the awake members produced, sample by sample (sleeping members leave zeros)."""

    counts: np.ndarray  # (N, sum of group sizes) output spike counts
    synaptic_events: np.ndarray  # (N,)
    neuron_updates: np.ndarray  # (N,)
    spikes: np.ndarray  # (N,)
    results: dict[int, tuple[np.ndarray, Result]] = field(default_factory=dict)  # member -> (sample idx, result)
    backend_time: float = 0.0

    def mean_counts(self, gate_macs: float) -> Counts:
        return Counts(float(self.synaptic_events.mean()), float(self.neuron_updates.mean()), float(self.spikes.mean()),
                      gate_macs)


def run_members(bundle: Bundle, spikes: np.ndarray, awake: np.ndarray, backend: str, mode: str,
                record: bool = False, options: Optional[dict] = None, record_sample: Optional[int] = None) -> MemberRuns:
    """Run every member over the samples that woke it; ``record`` keeps every member's spike trains,
    ``record_sample`` those of the members awake for that sample."""
    n = len(spikes)
    offs = np.cumsum([0] + [net.n_out for net in bundle.networks])
    runs = MemberRuns(np.zeros((n, offs[-1]), np.float32), np.zeros(n), np.zeros(n), np.zeros(n))
    for j, net in enumerate(bundle.networks):
        idx = np.flatnonzero(awake[:, j])
        if idx.size == 0:
            continue
        res = run_member(net, spikes[idx], backend, mode, record or record_sample in idx, options)
        runs.backend_time += res.wall_time
        runs.results[j] = (idx, res)
        runs.counts[idx, offs[j]:offs[j + 1]] = res.output_counts
        runs.synaptic_events[idx] += res.synaptic_events.sum(1)
        runs.neuron_updates[idx] += res.neuron_updates.sum(1)
        runs.spikes[idx] += res.layer_spikes.sum(1)
    return runs


def compare_with_yardstick(bundle: Bundle, spikes: np.ndarray, awake: np.ndarray, runs: MemberRuns, mode: str,
                           pred: np.ndarray, y: Optional[np.ndarray]) -> Agreement:
    """Re-run the same members on the same samples on :data:`YARDSTICK`; count differing spikes
    (every layer, every step) and predictions. ``runs`` must hold recorded trains."""
    ref = run_members(bundle, spikes, awake, YARDSTICK, mode, record=True)
    mismatches = sum(int((a != b).sum()) for j, (_, res) in runs.results.items()
                     for a, b in zip(res.trains, ref.results[j][1].trains))
    ref_pred = bundle.head_logits(ref.counts, awake).argmax(1)
    return Agreement(float((ref_pred == pred).mean()), mismatches,
                     float((ref_pred == y).mean()) if y is not None else None)


def n_weights(networks: list[Network]) -> int:
    return sum(layer.weight.size for net in networks for layer in net.layers)


def connection_sparsity(networks: list[Network], mode: str) -> float:
    """Zero weights over all weights of the members, as NeuroBench's ConnectionSparsity counts them."""
    zeros = sum(int(np.count_nonzero((l.fixed.weight if mode == "fixed" else l.weight) == 0))
                for net in networks for l in net.layers)
    return zeros / max(n_weights(networks), 1)


def sample_raster(runs: MemberRuns, sample: int) -> Optional[dict[int, list[np.ndarray]]]:
    """Per awake member, the per-layer spike trains (T, n_l) of one sample, when recorded."""
    raster = {}
    for j, (idx, res) in runs.results.items():
        if res.trains is not None and sample in idx:
            pos = int(np.searchsorted(idx, sample))
            raster[j] = [t[pos] for t in res.trains]
    return raster or None


def simulate(bundle: Bundle, x_flat: np.ndarray, y: Optional[np.ndarray], budget: float, policy: str = "gate",
             backend: str = "torch", mode: str = "fixed", compare: bool = True, seed: int = 0,
             record_sample: Optional[int] = None, backend_options: Optional[dict] = None) -> SimulationReport:
    """Run the ensemble over ``x_flat`` (N, n_in) in [0, 1] under ``policy`` and ``budget``."""
    x = check_intensities(bundle, x_flat)
    m = bundle.manifest
    spikes = encode_regular(x, bundle.steps)
    t0 = time.perf_counter()
    awake = choose(policy, budget, len(x), bundle.n_members, bundle.gate_scores(x), m.budget_calibration,
                   m.fixed_subsets, seed)
    do_compare = compare and backend != YARDSTICK
    runs = run_members(bundle, spikes, awake, backend, mode, do_compare, backend_options, record_sample)
    pred = bundle.head_logits(runs.counts, awake).argmax(1)
    wall = time.perf_counter() - t0
    details = [{"member": j, **{k: v for k, v in res.details.items() if isinstance(v, (int, float, str))}}
               for j, (_, res) in runs.results.items()]
    return SimulationReport(
        bundle=str(bundle.path.resolve()), backend=backend, mode=mode, policy=policy, budget=budget, samples=len(x),
        accuracy=float((pred == y).mean()) if y is not None else None,
        counts=runs.mean_counts(float(m.gate_macs)), teacher_macs=float(m.teacher_macs or 0),
        wall_time_s=wall, backend_time_s=runs.backend_time, backend_details=details,
        connection_sparsity=connection_sparsity(bundle.networks, mode), footprint_bytes=4 * n_weights(bundle.networks),
        awake=awake, predictions=pred,
        agreement=compare_with_yardstick(bundle, spikes, awake, runs, mode, pred, y) if do_compare else None,
        raster=sample_raster(runs, record_sample) if record_sample is not None else None,
    )
