"""The runtime: ask the gate, wake only the chosen members on a backend, impute the sleeping
ones (inside the bundle's head), classify, and count energy proxies.

Members really sleep: member k runs on the backend only over the samples that woke it, so a
sleeping member costs no synaptic events, neuron updates or spikes. Every run can be checked
against the PyTorch reference in the same mode on the same choices (predictions and spikes).
"""
from __future__ import annotations

import time
from typing import Optional

import numpy as np

import simulators
from exporters.bundle import Bundle, restore_floats
from simulators.encoding import encode_regular
from simulators.errors import GraphError, InputError
from simulators.network import Network
from simulators.result import Result, make_result

from .energy import Counts, ann_energy_pj, snn_energy_pj
from .scheduler import choose

BACKENDS = ("torch", "reference", "brian2", "lava")


def run_member(network: Network, spikes: np.ndarray, backend: str, mode: str, record: bool,
               options: Optional[dict] = None) -> Result:
    if backend == "torch":
        from .snn import run_network_torch

        return run_network_torch(network, spikes, mode, record)
    if backend not in BACKENDS:
        raise GraphError(f"unknown backend '{backend}' (choose from {', '.join(BACKENDS)})")
    return simulators.run(network, spikes, backend=backend, mode=mode, record=record, **(options or {}))


def check_intensities(bundle: Bundle, x_flat: np.ndarray) -> np.ndarray:
    x = np.asarray(x_flat, dtype=np.float32)
    n_in = int(np.prod(bundle.manifest["input_shape"]))
    if x.ndim != 2 or x.shape[1] != n_in:
        raise InputError(f"inputs must have shape (N, {n_in}) for this bundle, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InputError("inputs contain NaN or inf")
    return x


def simulate(bundle: Bundle, x_flat: np.ndarray, y: Optional[np.ndarray], budget: float, policy: str = "gate",
             backend: str = "torch", mode: str = "fixed", compare: bool = True, seed: int = 0,
             record_sample: Optional[int] = None, backend_options: Optional[dict] = None) -> dict:
    """Run the ensemble over ``x_flat`` (N, n_in) in [0, 1]; return a JSON-able report.
    ``backend_options`` go to the backend (e.g. ``{"target": "cpp_standalone"}`` for Brian2)."""
    x = check_intensities(bundle, x_flat)
    m = bundle.manifest
    n, k, steps = len(x), bundle.n_members, bundle.steps
    spikes = encode_regular(x, steps)
    t0 = time.perf_counter()
    scores = bundle.gate_scores(x)
    awake = choose(policy, budget, n, k, scores, restore_floats(m["budget_calibration"]), m["fixed_subsets"], seed)
    sizes = [net.n_out for net in bundle.networks]
    offs = np.cumsum([0] + sizes)
    counts = np.zeros((n, offs[-1]), np.float32)
    ref_counts = np.zeros_like(counts)
    syn = np.zeros(n)
    upd = np.zeros(n)
    spk = np.zeros(n)
    mismatches, backend_time, raster = 0, 0.0, None
    details = []
    do_compare = compare and backend != "torch"
    for j, net in enumerate(bundle.networks):
        idx = np.flatnonzero(awake[:, j])
        if idx.size == 0:
            continue
        record = do_compare or (record_sample is not None and record_sample in idx)
        res = run_member(net, spikes[idx], backend, mode, record, backend_options)
        backend_time += res.wall_time
        details.append({"member": j, **{kk: v for kk, v in res.details.items() if isinstance(v, (int, float, str))}})
        counts[idx, offs[j]:offs[j + 1]] = res.output_counts
        syn[idx] += res.synaptic_events.sum(1)
        upd[idx] += res.neuron_updates.sum(1)
        spk[idx] += res.layer_spikes.sum(1)
        if do_compare:
            ref = run_member(net, spikes[idx], "torch", mode, True)
            ref_counts[idx, offs[j]:offs[j + 1]] = ref.output_counts
            mismatches += int(sum((a != b).sum() for a, b in zip(res.trains, ref.trains)))
        if record_sample is not None and record_sample in idx and res.trains is not None:
            pos = int(np.searchsorted(idx, record_sample))
            raster = raster or {}
            raster[j] = [t[pos] for t in res.trains]
    logits = bundle.head_logits(counts, awake)
    pred = logits.argmax(1)
    wall = time.perf_counter() - t0
    gate_macs = float(m["gate_macs"])
    c = Counts(float(syn.mean()), float(upd.mean()), float(spk.mean()), gate_macs)
    teacher_macs = float(m.get("teacher_macs") or 0)
    report = {
        "backend": backend, "mode": mode, "policy": policy, "budget": budget, "samples": n,
        "accuracy": float((pred == y).mean()) if y is not None else None,
        "awake_fraction": float(awake.mean()),
        "member_wakes": awake.sum(0).tolist(),
        "spikes_per_sample": c.spikes, "synaptic_events_per_sample": c.synaptic_events,
        "neuron_updates_per_sample": c.neuron_updates, "gate_macs": gate_macs, "teacher_macs": teacher_macs,
        "energy_pj": {s: snn_energy_pj(c, s) for s in ("loihi", "45nm")},
        "teacher_energy_pj": {s: ann_energy_pj(teacher_macs, s) for s in ("loihi", "45nm")},
        "wall_time_s": wall, "backend_time_s": backend_time, "backend_details": details,
    }
    report["teacher_to_sne_energy_ratio"] = {s: report["teacher_energy_pj"][s] / max(report["energy_pj"][s], 1e-12)
                                             for s in ("loihi", "45nm")}
    if do_compare:
        ref_pred = bundle.head_logits(ref_counts, awake).argmax(1)
        report["agreement_with_torch"] = {"prediction_agreement": float((ref_pred == pred).mean()),
                                          "spike_mismatches": mismatches,
                                          "torch_accuracy": float((ref_pred == y).mean()) if y is not None else None}
    if raster is not None:
        report["_raster"] = raster
    report["_awake"] = awake
    return report
