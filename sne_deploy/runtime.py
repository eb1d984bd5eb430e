"""The runtime: ask the gate, wake only the chosen members on a backend, impute the sleeping
ones (inside the bundle's head), classify, and count energy proxies.

Members really sleep: member k runs on the backend only over the samples that woke it, so a
sleeping member costs no synaptic events, neuron updates or spikes. The cascade runs round by
round (:func:`run_cascade`), each round on the backend, because who wakes next depends on what
the members awake so far produced.

The yardstick is :data:`YARDSTICK`, the PyTorch reference (``sne_deploy.snn.run_network_torch``,
the shared simulation loop of ``sne_deploy.simulators.loop`` on torch arrays): every run on another backend
can be checked against it in the same mode on the same choices, prediction by prediction and
spike by spike.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from sne_deploy.exporters.bundle import Bundle
from sne_deploy.simulators.encoding import EVENTS
from sne_deploy.simulators.errors import GraphError, InputError, check_choice
from sne_deploy.simulators.network import Network
from sne_deploy.simulators.result import MODES, Result, stopped_early

from .cluster import Call, Executor, Serial, run_call
from .energy import MODELS, AnnWork, Counts, HostWork, SnnSizes
from .records import Agreement, BackendCall, SimulationReport
from .scheduler import (
    CASCADES,
    POLICIES,
    cascade_order,
    cascade_stops,
    check_budget,
    choose,
    confidence,
    first_confident_step,
    round_step_logits,
    scale_to_steps,
    threshold_for,
)

BACKENDS = ("torch", "reference", "brian2", "lava")
YARDSTICK = "torch"
SERIAL = Serial()


def run_member(
    network: Network, spikes: np.ndarray, backend: str, mode: str, record: bool, options: Optional[dict] = None
) -> Result:
    """One member on one backend here; ``options`` go to that backend only (e.g. a Brian2 target)."""
    check_choice("backend", backend, BACKENDS, GraphError)
    return run_call(network, spikes, backend, mode, record, options or {})


def check_intensities(bundle: Bundle, x_flat: np.ndarray) -> np.ndarray:
    """The inputs of a run, checked: (N, n_in) intensities in [0, 1] (float32), or for a bundle of
    event data (N, T * n_in) whole counts per bin."""
    x = np.asarray(x_flat)
    m = bundle.manifest
    what = "event counts" if m.encoding == EVENTS else "intensities in [0, 1]"
    if np.iscomplexobj(x) or not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise InputError(f"inputs must be real {what}, got an array of dtype {x.dtype}")
    if x.ndim >= 1 and len(x) == 0:
        raise InputError("inputs hold no samples (N = 0)")
    width = m.input_width
    if x.ndim != 2 or x.shape[1] != width:
        shape = f"(N, {m.steps} x {m.n_inputs}), {m.steps} bins of counts" if m.encoding == EVENTS else f"(N, {width})"
        raise InputError(f"inputs must have shape {shape} for this bundle, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InputError("inputs contain NaN or inf")
    if m.encoding == EVENTS:
        bundle.spikes(x)  # whole counts >= 0, or one line saying what is not
        return x
    return x.astype(np.float32)


def raw_inputs(bundle: Bundle, x: np.ndarray) -> np.ndarray:
    """Inputs as the training data was stored (images (N, C, H, W) or (N, H, W), or flat (N, n_in);
    event data as (N, T, ...) counts, flattened to (N, T * n_in);
    for a user's dataset in its own dtype and range) -> flat (N, n_in) intensities in [0, 1], by
    the normalisation the bundle recorded (the identity for the built-in datasets). Floats given
    to a bundle of uint8 (or bool) data are intensities already and stay as they are."""
    from .data import Normalisation

    a = np.asarray(x)
    n_in = bundle.manifest.input_width
    if a.ndim > 2 and int(np.prod(a.shape[1:])) == n_in:
        a = a.reshape(len(a), n_in)
    if bundle.manifest.encoding == EVENTS:
        return check_intensities(bundle, a)  # counts per bin, taken as they are once checked
    norm = Normalisation.from_dict(bundle.manifest.input_normalisation)
    if norm.identity or not (np.issubdtype(a.dtype, np.number) and not np.iscomplexobj(a)):
        return a  # check_intensities names what is wrong
    if norm.dtype in ("uint8", "bool") and np.issubdtype(a.dtype, np.floating):
        return a
    if not np.all(np.isfinite(a)):
        raise InputError("inputs contain NaN or inf")
    return norm.apply(a)


def check_labels(bundle: Bundle, y: Optional[np.ndarray], n: int) -> Optional[np.ndarray]:
    """Labels, when given: one integer class in [0, n_classes) per sample (as int64)."""
    if y is None:
        return None
    a = np.asarray(y)
    k = bundle.manifest.n_classes
    if a.dtype == np.bool_ or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise InputError(f"labels 'y' must be integer classes 0..{k - 1}, got an array of dtype {a.dtype}")
    if a.ndim != 1 or len(a) != n:
        raise InputError(f"labels 'y' must have shape ({n},), one per sample, got {a.shape}")
    if np.issubdtype(a.dtype, np.floating) and not np.all(np.isfinite(a) & (a == np.round(a))):
        raise InputError("labels 'y' must be whole numbers (classes), got fractions, NaN or inf")
    if a.size and (a.min() < 0 or a.max() >= k):
        raise InputError(f"labels 'y' must lie in 0..{k - 1} (this bundle's {k} classes), got {a.min():g}..{a.max():g}")
    return a.astype(np.int64)


@dataclass
class MemberRuns:
    """What the awake members produced, sample by sample (sleeping members leave zeros)."""

    counts: np.ndarray  # (N, sum of group sizes) output spike counts
    synaptic_events: np.ndarray  # (N,)
    input_synaptic_events: np.ndarray  # (N,) the first layer's share of synaptic_events
    graded_events: np.ndarray  # (N,) the share that carries a payload (graded inputs)
    neuron_updates: np.ndarray  # (N,)
    spikes: np.ndarray  # (N,)
    offsets: np.ndarray  # member k's outputs are counts[:, offsets[k]:offsets[k+1]]
    results: list[tuple[int, np.ndarray, Result]] = field(default_factory=list)  # (member, sample idx, result) per call
    backend_time: float = 0.0

    @classmethod
    def empty(cls, bundle: Bundle, n: int) -> "MemberRuns":
        offs = np.cumsum([0] + [net.n_out for net in bundle.networks])
        return cls(
            np.zeros((n, offs[-1]), np.float32),
            synaptic_events=np.zeros(n),
            input_synaptic_events=np.zeros(n),
            graded_events=np.zeros(n),
            neuron_updates=np.zeros(n),
            spikes=np.zeros(n),
            offsets=offs,
        )

    def add(self, j: int, idx: np.ndarray, res: Result) -> None:
        """Book one backend call: member ``j`` ran over samples ``idx``."""
        self.backend_time += res.wall_time
        self.results.append((j, idx, res))
        counts = res.output_counts
        if res.steps_run is not None:  # stopped early (the cascade in time): read as T steps' counts
            counts = scale_to_steps(counts, res.steps_run, res.steps)
        self.counts[idx, self.offsets[j] : self.offsets[j + 1]] = counts
        self.synaptic_events[idx] += res.synaptic_events.sum(1)
        self.input_synaptic_events[idx] += res.synaptic_events[:, 0]
        self.graded_events[idx] += res.graded_events
        self.neuron_updates[idx] += res.neuron_updates.sum(1)
        self.spikes[idx] += res.layer_spikes.sum(1)

    def mean_counts(self, gate_macs: float, head_macs: float) -> Counts:
        return Counts(
            float(self.synaptic_events.mean()),
            float(self.neuron_updates.mean()),
            float(self.spikes.mean()),
            gate_macs,
            head_macs,
            float(self.input_synaptic_events.mean()),
            float(self.graded_events.mean()),
        )


def run_members(
    bundle: Bundle,
    spikes: np.ndarray,
    awake: np.ndarray,
    backend: str,
    mode: str,
    record: bool = False,
    options: Optional[dict] = None,
    record_sample: Optional[int] = None,
    executor: Optional[Executor] = None,
) -> MemberRuns:
    """Run every member over the samples that woke it (all members' calls at once on a cluster's
    ``executor``); ``record`` keeps every member's spike trains, ``record_sample`` those of the
    members awake for that sample."""
    runs = MemberRuns.empty(bundle, len(spikes))
    woken = [(j, np.flatnonzero(awake[:, j])) for j in range(bundle.n_members)]
    woken = [(j, idx) for j, idx in woken if idx.size]
    calls = [Call(bundle.networks[j], spikes[idx], record or record_sample in idx) for j, idx in woken]
    for (j, idx), res in zip(woken, (executor or SERIAL).run(calls, backend, mode, options)):
        runs.add(j, idx, res)
    return runs


def run_cascade(
    bundle: Bundle,
    spikes: np.ndarray,
    order: np.ndarray,
    threshold: float,
    backend: str,
    mode: str,
    record: bool = False,
    options: Optional[dict] = None,
    record_sample: Optional[int] = None,
    executor: Optional[Executor] = None,
    in_time: bool = False,
) -> tuple[MemberRuns, np.ndarray, np.ndarray]:
    """The cascade, round by round as a chip would run it: in round r every input still going
    wakes the r-th member of its ``order``; the head then classifies it with the members awake
    so far, and inputs whose confidence reaches ``threshold`` stop. Each round runs each member
    once over the inputs that woke it (a round's calls at once on a cluster's ``executor``).

    ``in_time`` (the ``cascade-time`` policy) lets an input stop within a round too: the head
    reads after every step (:func:`~sne_deploy.scheduler.round_step_logits`), and a member that
    stops after t steps is charged its first t steps (:func:`stopped_early`: the network is
    causal, so that is the run that stopped there) and read as its counts scaled to T. Its
    members run with their trains recorded, as the head must see every step.
    Returns the runs, the awake mask and each input's rounds (member-steps / T with ``in_time``)."""
    n, k = order.shape
    runs = MemberRuns.empty(bundle, n)
    awake = np.zeros((n, k), bool)
    rounds = np.zeros(n, np.float64)
    going = np.arange(n)
    for r in range(k):
        if going.size == 0:
            break
        woken = [(int(j), going[order[going, r] == j]) for j in np.unique(order[going, r])]
        calls = [Call(bundle.networks[j], spikes[idx], in_time or record or record_sample in idx) for j, idx in woken]
        results = list(zip(woken, (executor or SERIAL).run(calls, backend, mode, options)))
        awake[going, order[going, r]] = True
        if not in_time:
            for (j, idx), res in results:
                runs.add(j, idx, res)
            rounds[going] += 1
            conf = confidence(bundle.head_logits(runs.counts[going], awake[going]))
            going = going[~cascade_stops(conf, threshold)]
            continue
        local = {int(i): p for p, i in enumerate(going)}  # sample -> row among the inputs going
        running = [(j, np.array([local[int(i)] for i in idx]), res.trains[-1]) for (j, idx), res in results]
        step_conf = confidence(
            round_step_logits(runs.counts[going], awake[going], running, runs.offsets, bundle.head_logits)
        )  # (inputs going, T)
        stop = first_confident_step(step_conf, threshold)  # 0: not confident within this round
        steps_run = np.where(stop > 0, stop, bundle.steps)
        for (j, idx), res in results:
            rows = np.array([local[int(i)] for i in idx])
            runs.add(j, idx, stopped_early(res, spikes[idx], steps_run[rows]))
        rounds[going] += steps_run / bundle.steps
        going = going[stop == 0]
    return runs, awake, rounds


def compare_with_yardstick(
    bundle: Bundle,
    spikes: np.ndarray,
    awake: np.ndarray,
    runs: MemberRuns,
    mode: str,
    pred: np.ndarray,
    y: Optional[np.ndarray],
) -> Agreement:
    """Re-run every call of ``runs`` (same member, same samples) on :data:`YARDSTICK`; count
    differing spikes (every layer, every step) and predictions. ``runs`` must hold recorded trains."""
    ref = MemberRuns.empty(bundle, len(spikes))
    mismatches = 0
    for j, idx, res in runs.results:
        ref_res = run_member(bundle.networks[j], spikes[idx], YARDSTICK, mode, True)
        if res.steps_run is not None:  # the cascade in time stopped it: compare the steps it ran
            ref_res = stopped_early(ref_res, spikes[idx], res.steps_run)
        ref.add(j, idx, ref_res)
        mismatches += sum(int((a != b).sum()) for a, b in zip(res.trains, ref_res.trains))
    ref_pred = bundle.head_logits(ref.counts, awake).argmax(1)
    return Agreement(
        float((ref_pred == pred).mean()), mismatches, float((ref_pred == y).mean()) if y is not None else None
    )


def n_weights(networks: list[Network]) -> int:
    return sum(layer.weight.size for net in networks for layer in net.layers)


def connection_sparsity(networks: list[Network], mode: str) -> float:
    """Zero weights over all weights of the members, as NeuroBench's ConnectionSparsity counts them."""
    zeros = sum(
        int(np.count_nonzero((l.fixed.weight if mode == "fixed" else l.weight) == 0))
        for net in networks
        for l in net.layers
    )
    return zeros / max(n_weights(networks), 1)


def sample_raster(runs: MemberRuns, sample: int) -> Optional[dict[int, list[np.ndarray]]]:
    """Per awake member, the per-layer spike trains (T, n_l) of one sample, when recorded."""
    raster = {}
    for j, idx, res in runs.results:
        if res.trains is not None and sample in idx:
            pos = int(np.searchsorted(idx, sample))
            raster[j] = [t[pos] for t in res.trains]
    return raster or None


def time_exit_table(bundle: Bundle) -> list:
    """The bundle's ``cascade-time`` thresholds; a bundle exported before the policy has none."""
    table = bundle.manifest.time_exit_calibration
    if not table:
        raise InputError(
            f"{bundle.path}: this bundle has no time-exit calibration (--policy cascade-time): export it again"
        )
    return table


def check_run(budget: float, policy: str, backend: str, mode: str) -> float:
    """The options of one ensemble run (:func:`simulate` checks them; the CLI calls this before
    it loads a dataset); returns the budget as a float."""
    check_choice("backend", backend, BACKENDS)
    check_choice("policy", policy, POLICIES)
    check_choice("mode", mode, MODES)
    return check_budget(budget)


def simulate(
    bundle: Bundle,
    x_flat: np.ndarray,
    y: Optional[np.ndarray],
    budget: float,
    policy: str = "gate",
    backend: str = "torch",
    mode: str = "fixed",
    compare: bool = True,
    seed: int = 0,
    record_sample: Optional[int] = None,
    backend_options: Optional[dict] = None,
    executor: Optional[Executor] = None,
    energy_models: tuple[str, ...] = MODELS,
) -> SimulationReport:
    """Run the ensemble over ``x_flat`` (N, n_in) in [0, 1] under ``policy`` and ``budget``; the
    backend calls run here, or sharded on a Ray cluster's ``executor``
    (:mod:`~sne_deploy.cluster`) with the same results. Choices (the gate's, the random policy's
    draw, the cascade's stops) are made here, on the driver."""
    budget = check_run(budget, policy, backend, mode)
    x = check_intensities(bundle, x_flat)
    y = check_labels(bundle, y, len(x))
    m = bundle.manifest
    spikes = bundle.spikes(x)
    t0 = time.perf_counter()
    do_compare = compare and backend != YARDSTICK
    uses_gate = policy in ("gate", *CASCADES)
    scores = bundle.gate_scores(x) if uses_gate else None
    rounds = None
    in_time = policy == "cascade-time"
    if policy in CASCADES:
        assert scores is not None
        runs, awake, rounds = run_cascade(
            bundle,
            spikes,
            cascade_order(scores),
            threshold_for(time_exit_table(bundle) if in_time else m.cascade_calibration, budget),
            backend,
            mode,
            do_compare,
            backend_options,
            record_sample,
            executor,
            in_time,
        )
    else:
        awake = choose(policy, budget, len(x), bundle.n_members, scores, m.budget_calibration, m.fixed_subsets, seed)
        runs = run_members(bundle, spikes, awake, backend, mode, do_compare, backend_options, record_sample, executor)
    pred = bundle.head_logits(runs.counts, awake).argmax(1)
    wall = time.perf_counter() - t0
    mean_rounds = float(rounds.mean()) if rounds is not None else None
    head_runs = (mean_rounds or 1.0) * (bundle.steps if in_time else 1)  # in time the head reads every step
    calls = tuple(
        BackendCall(
            j,
            int(idx.size),
            res.wall_time,
            res.build_time,
            res.overflow,
            {k: v for k, v in res.details.items() if isinstance(v, (int, float, str))},
        )
        for j, idx, res in runs.results
    )
    return SimulationReport(
        bundle=str(bundle.path.resolve()),
        backend=backend,
        mode=mode,
        policy=policy,
        budget=budget,
        samples=len(x),
        accuracy=float((pred == y).mean()) if y is not None else None,
        counts=runs.mean_counts(float(m.gate_macs) if uses_gate else 0.0, head_runs * m.head_macs),
        teacher_macs=float(m.teacher_macs or 0),
        mean_rounds=mean_rounds,
        wall_time_s=wall,
        backend_time_s=runs.backend_time,
        backend_details=calls,
        connection_sparsity=connection_sparsity(bundle.networks, mode),
        footprint_bytes=4 * n_weights(bundle.networks),
        awake=awake,
        predictions=pred,
        agreement=compare_with_yardstick(bundle, spikes, awake, runs, mode, pred, y) if do_compare else None,
        raster=sample_raster(runs, record_sample) if record_sample is not None else None,
        sizes=member_sizes(bundle.networks),
        host=HostWork(
            host_ann_work(m.host_work, "gate"),
            host_ann_work(m.host_work, "head"),
            1.0 if uses_gate else 0.0,
            head_runs,
        ),
        teacher_work=host_ann_work(m.host_work, "teacher"),
        energy_models=energy_models,
    )


def host_ann_work(host_work: dict, name: str) -> Optional[AnnWork]:
    """A bundle's recorded host network (``teacher``, ``gate``, ``head``) as AnnWork, if it has one."""
    return AnnWork.from_dict(host_work[name]) if name in host_work else None


def member_sizes(networks: list[Network]) -> SnnSizes:
    """What the largest member stores (the memory energy model sizes its memories by it): its
    synapses (a convolution's kernel once, a recurrent layer's loop too) and its neurons."""

    def stored(layer) -> int:
        own = int(np.prod(layer.conv.kernel)) if layer.conv is not None else layer.weight.size
        rec = layer.recurrent_weight("float")
        return own + (rec.size if rec is not None else 0)

    return max(
        (
            SnnSizes(float(sum(stored(l) for l in net.layers)), float(sum(l.n_out for l in net.layers)))
            for net in networks
        ),
        key=lambda s: (s.weights, s.neurons),
    )
