"""The one result type every backend returns, with the energy-proxy counters derived in one place."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional, Sequence

import numpy as np

from .errors import GraphError, check_choice
from .network import Network

MODES = ("float", "fixed")


@dataclass
class Result:
    """What one run of a network over N samples produced.

    ``layer_counts[l]`` is (N, n_l): spikes per neuron and sample of layer l. Everything else
    (output counts, synaptic events, neuron updates) is derived from it and the network, so no
    backend can count them differently.
    """

    backend: str
    mode: str
    steps: int
    layer_counts: list[np.ndarray]
    input_counts: np.ndarray  # (N, n_in)
    fan_out: list[np.ndarray]  # per layer, (n_in_l,) non-zero synapses per presynaptic neuron
    layer_sizes: list[int]
    wall_time: float
    trains: Optional[list[np.ndarray]] = None  # per layer (N, T, n_l) bool, when recorded
    # Per layer, the fixed-point neuron-steps (summed over samples) where u wrapped or v hit a rail:
    # there the chip computes something other than the float model. Every backend reports it in
    # fixed point (Lava through the reference, bit for bit the same arithmetic); None in float mode.
    overflow: Optional[tuple[int, ...]] = None
    build_time: float = 0.0  # seconds of wall_time spent before the simulation ran (build, compile, worker start)
    # backend-specific and informational only (a Brian2 target and version, a Lava step rate, the
    # batch size): nothing in the toolkit adds these up or decides on them
    details: dict = field(default_factory=dict)
    # (N, T, n_out) membrane v of a non-spiking (LI) last layer after each step: a classifier's
    # readout (float units, or Loihi's integer units in fixed point); None when the last layer spikes
    readout: Optional[np.ndarray] = None
    # per layer, (n_l,) non-zero recurrent synapses per neuron of the layer itself; None: feed-forward
    recurrent_fan_out: list = field(default_factory=list)
    # (N,) steps each sample ran when a run stopped some samples early (:func:`stopped_early`);
    # None: every sample ran all ``steps``
    steps_run: Optional[np.ndarray] = None
    # (N, n_in) graded spikes each input sent (steps with a non-zero payload), when the network's
    # inputs are graded (``Network.graded_input``): one synaptic event per message and synapse,
    # whatever the payload. None: an input's value is that many events (``input_counts``).
    input_messages: Optional[np.ndarray] = None

    @property
    def run_time(self) -> float:
        """Seconds of wall_time spent after the build."""
        return self.wall_time - self.build_time

    @property
    def n_samples(self) -> int:
        return int(self.input_counts.shape[0])

    @property
    def output_counts(self) -> np.ndarray:
        return self.layer_counts[-1]

    @property
    def layer_spikes(self) -> np.ndarray:
        """(N, L) spikes per sample and layer."""
        return np.stack([c.sum(axis=1) for c in self.layer_counts], axis=1)

    @property
    def synaptic_events(self) -> np.ndarray:
        """(N, L): presynaptic spikes × their non-zero fan-out, per layer (a recurrent layer's own
        spikes × its recurrent fan-out included; graded inputs: their messages × fan-out)."""
        first = self.input_counts if self.input_messages is None else self.input_messages
        pre = [first] + self.layer_counts[:-1]
        events = np.stack([p.astype(np.int64) @ f for p, f in zip(pre, self.fan_out)], axis=1)
        for i, f in enumerate(self.recurrent_fan_out):
            if f is not None:
                events[:, i] += self.layer_counts[i].astype(np.int64) @ f
        return events

    @property
    def graded_events(self) -> np.ndarray:
        """(N,): the synaptic events that carry a payload (a weight x payload multiply each): the
        first layer's, when its inputs are graded; else 0."""
        if self.input_messages is None:
            return np.zeros(self.n_samples, dtype=np.int64)
        return self.input_messages.astype(np.int64) @ self.fan_out[0]

    @property
    def neuron_updates(self) -> np.ndarray:
        """(N, L): every neuron of an awake network is updated at every step it runs."""
        sizes = np.asarray(self.layer_sizes, dtype=np.int64)
        if self.steps_run is not None:
            return np.outer(np.asarray(self.steps_run, dtype=np.int64), sizes)
        return np.tile(sizes * self.steps, (self.n_samples, 1))

    def summary(self) -> dict:
        """Counters and timing as plain JSON-able numbers."""
        n = max(self.n_samples, 1)
        return {
            "backend": self.backend,
            "mode": self.mode,
            "samples": self.n_samples,
            "steps": self.steps,
            "spikes_per_sample": float(self.layer_spikes.sum() / n),
            "layer_spikes_per_sample": (self.layer_spikes.sum(axis=0) / n).tolist(),
            "synaptic_events_per_sample": float(self.synaptic_events.sum() / n),
            "graded_events_per_sample": float(self.graded_events.sum() / n),
            "neuron_updates_per_sample": float(self.neuron_updates.sum() / n),
            "wall_time_s": self.wall_time,
            "build_time_s": self.build_time,
            "overflow_neuron_steps": list(self.overflow) if self.overflow is not None else None,
            "samples_per_s": self.n_samples / self.wall_time if self.wall_time > 0 else None,
            "details": self.details,
            **({"readout": self.readout_summary()} if self.readout is not None else {}),
        }

    def readout_summary(self) -> dict:
        """The LI readout as a classifier reads it: per sample, the neuron whose membrane peaks
        highest over time (and the one highest at the last step), plus the value range."""
        r = self.readout
        assert r is not None
        return {
            "neurons": int(r.shape[2]),
            "v_min": float(r.min()),
            "v_max": float(r.max()),
            "argmax_of_max_over_time": r.max(axis=1).argmax(axis=1).tolist(),
            "argmax_at_last_step": r[:, -1].argmax(axis=1).tolist(),
        }


# Coincident events one input may carry in one step: far above any event camera's bins, far
# below what would wrap the int64 counters (count x fan-out x steps x inputs)
MAX_EVENT_COUNT = 1 << 16


def check_inputs(network: Network, spikes: np.ndarray, mode: str) -> np.ndarray:
    """Validate a run's inputs once, for every backend: (N, T, n_in) of 0/1 values, a known mode.

    Event-camera frames (N-MNIST style) hold counts per bin: a count c is c coincident input
    events (c x weight into the current, c synaptic events per synapse). They come back as int64;
    0/1 inputs as bool."""
    check_choice("mode", mode, MODES, GraphError)
    a = np.asarray(spikes)
    if a.ndim != 3:
        raise GraphError(f"spikes must have shape (N, T, n_in), got {a.shape}")
    if a.shape[2] != network.n_in:
        raise GraphError(f"spikes have {a.shape[2]} input channels but the network expects {network.n_in}")
    if a.shape[0] < 1:
        raise GraphError("spikes hold no samples (N = 0)")
    if a.shape[1] < 1:
        raise GraphError("spikes need at least one time step")
    if np.iscomplexobj(a):
        raise GraphError("spikes must be real 0/1 values, got a complex array")
    if a.dtype != np.bool_:
        if (
            not np.issubdtype(a.dtype, np.number)
            or not np.all(np.isfinite(a))
            or a.min() < 0
            or np.any(a != np.round(a))
        ):
            raise GraphError(
                "spikes must be 0/1 or non-negative integer event counts per step; "
                "found other values (NaN, negatives or rates?)"
            )
        if a.max() > MAX_EVENT_COUNT:
            raise GraphError(
                f"spikes hold an event count of {a.max():.4g} at one input and step; counts above "
                f"{MAX_EVENT_COUNT} are refused (the energy counters and Loihi's 24-bit state would overflow)"
            )
        a = a.astype(bool) if a.max() <= 1 else a.astype(np.int64)
    if mode == "fixed":
        network.require_fixed()
    return a


def make_result(
    network: Network,
    backend: str,
    mode: str,
    spikes: np.ndarray,
    layer_counts: list[np.ndarray],
    wall_time: float,
    trains: Optional[list[np.ndarray]] = None,
    details: Optional[dict] = None,
    readout: Optional[np.ndarray] = None,
    overflow: Optional[Sequence[int]] = None,
    build_time: float = 0.0,
) -> Result:
    """The one constructor: counts, fan-outs and sizes from the network; ``overflow`` required in
    fixed point (so no backend can forget it) and dropped in float (the float model has none)."""
    if mode == "fixed" and overflow is None:
        raise ValueError(f"{backend}: a fixed-point run must report its overflow counter")
    return Result(
        backend=backend,
        mode=mode,
        steps=int(spikes.shape[1]),
        layer_counts=[np.asarray(c, dtype=np.int64) for c in layer_counts],
        input_counts=spikes.sum(axis=1, dtype=np.int64),
        fan_out=[layer.fan_out(mode) for layer in network.layers],
        layer_sizes=[layer.n_out for layer in network.layers],
        wall_time=wall_time,
        trains=trains,
        overflow=tuple(int(o) for o in overflow) if mode == "fixed" and overflow is not None else None,
        build_time=float(build_time),
        details=details or {},
        readout=readout,
        recurrent_fan_out=[layer.recurrent_fan_out(mode) for layer in network.layers],
        input_messages=graded_messages(spikes) if network.graded_input else None,
    )


def graded_messages(spikes: np.ndarray) -> np.ndarray:
    """(N, n_in): the graded spikes each input of ``spikes`` (N, T, n_in) sends, one per step with
    a non-zero payload."""
    return np.count_nonzero(np.asarray(spikes), axis=1).astype(np.int64)


def stopped_early(res: Result, spikes: np.ndarray, steps_run: np.ndarray) -> Result:
    """``res`` as if sample i had stopped after its first ``steps_run[i]`` steps (0..T; 0: it
    never ran, as for a member asleep for that sample).

    A network is causal, so its first t steps are the same whether it goes on or not: counting
    what those steps did (their spikes, so their synaptic events, and t neuron updates per
    neuron) is the run that stopped there, on any backend. This is how an early exit in time is
    charged. ``res`` must hold its trains and ``spikes`` be its (N, T, n_in) inputs; trains and
    the readout of the steps not run are zeroed. The fixed-point overflow counter stays the whole
    run's (an upper bound)."""
    if res.trains is None:
        raise ValueError("stopped_early needs a run with its spike trains recorded")
    n, steps = len(spikes), res.steps
    stop = np.asarray(steps_run, dtype=np.int64)
    if stop.shape != (n,) or n != res.n_samples or stop.min(initial=0) < 0 or stop.max(initial=0) > steps:
        raise ValueError(f"steps_run must hold one step count in 0..{steps} per sample ({n})")
    ran = np.arange(steps)[None, :] < stop[:, None]  # (N, T)
    trains = [t * ran[:, :, None].astype(t.dtype) for t in res.trains]
    readout = None if res.readout is None else res.readout * ran[:, :, None].astype(res.readout.dtype)
    sent = np.asarray(spikes) * ran[:, :, None]
    return replace(
        res,
        layer_counts=[t.sum(axis=1, dtype=np.int64) for t in trains],
        input_counts=sent.sum(axis=1, dtype=np.int64),
        input_messages=None if res.input_messages is None else graded_messages(sent),
        trains=trains,
        readout=readout,
        steps_run=stop,
        details={**res.details, "stopped_early": True},
    )


def concat_results(parts: Sequence[Result]) -> Result:
    """One result of the runs of one network over consecutive shards of its samples (a cluster's
    shards, in sample order): per-sample arrays are joined, overflow counters added, times summed
    (work, not wall-clock: the shards ran side by side). ``details`` are the first shard's, with
    the number of shards."""
    first = parts[0]
    if len(parts) == 1:
        return first

    def joined(arrays: Sequence[Optional[np.ndarray]]) -> Optional[np.ndarray]:
        return None if arrays[0] is None else np.concatenate(arrays, axis=0)  # type: ignore[arg-type]

    overflow = None
    if first.overflow is not None:
        overflow = tuple(int(sum(o)) for o in zip(*(p.overflow or () for p in parts)))
    trains = None
    if first.trains is not None:
        trains = [np.concatenate([p.trains[i] for p in parts], axis=0) for i in range(len(first.trains))]  # type: ignore[index]
    return Result(
        backend=first.backend,
        mode=first.mode,
        steps=first.steps,
        layer_counts=[np.concatenate([p.layer_counts[i] for p in parts]) for i in range(len(first.layer_counts))],
        input_counts=np.concatenate([p.input_counts for p in parts]),
        fan_out=first.fan_out,
        layer_sizes=first.layer_sizes,
        wall_time=sum(p.wall_time for p in parts),
        trains=trains,
        overflow=overflow,
        build_time=sum(p.build_time for p in parts),
        details={**first.details, "shards": len(parts)},
        readout=joined([p.readout for p in parts]),
        recurrent_fan_out=first.recurrent_fan_out,
        steps_run=None
        if all(p.steps_run is None for p in parts)
        else np.concatenate([p.steps_run if p.steps_run is not None else np.full(p.n_samples, p.steps) for p in parts]),
        input_messages=joined([p.input_messages for p in parts]),
    )
