"""The typed records passed between modules: what training measured (:class:`TrainSummary`) and
what one simulation run measured (:class:`SimulationReport`).

Each is a small frozen dataclass; ``to_dict``/``from_dict`` are the one place its JSON form
(``model.summary.json``, the checkpoint, ``simulate --json``, ``report.json``) is written and
read, so a renamed field fails where it is used, not in a plot. The JSON keys are those of the
files users already have.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Optional

import numpy as np

from sne_deploy.simulators.files import to_plain as plain
from sne_deploy.simulators.result import MODES

from .energy import MODELS, AnnWork, Counts, HostWork, SnnSizes, ann_energy_pj, energy_breakdown_pj


@dataclass(frozen=True)
class MemberSummary:
    dims: int
    feature_r2: float
    spikes_per_sample: float
    float_fixed_count_agreement: float
    fixed_scales: list[int]


@dataclass(frozen=True)
class TrainSummary:
    """Test-split measurements of a trained model (teacher, ensemble in both modes, members)."""

    dataset: str
    test_samples: int
    encoding: str
    steps: int
    teacher_accuracy: float
    teacher_macs: int
    gate_macs: int
    ensemble_accuracy: dict[str, float]  # mode -> accuracy, all members awake
    spikes_per_sample: dict[str, float]  # mode -> spikes per sample, all members awake
    members: tuple[MemberSummary, ...]
    train_log: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d: dict[str, Any] = {
            k: getattr(self, k)
            for k in ("dataset", "test_samples", "encoding", "steps", "teacher_accuracy", "teacher_macs", "gate_macs")
        }
        for mode in MODES:
            d[f"ensemble_{mode}_accuracy"] = self.ensemble_accuracy[mode]
            d[f"spikes_per_sample_{mode}"] = self.spikes_per_sample[mode]
        d["members"] = [vars(m).copy() for m in self.members]
        d.update(train_log=self.train_log, timings=self.timings, config=self.config)
        return plain(d)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainSummary":
        return cls(
            dataset=d["dataset"],
            test_samples=int(d["test_samples"]),
            encoding=d["encoding"],
            steps=int(d["steps"]),
            teacher_accuracy=float(d["teacher_accuracy"]),
            teacher_macs=int(d["teacher_macs"]),
            gate_macs=int(d["gate_macs"]),
            ensemble_accuracy={m: float(d[f"ensemble_{m}_accuracy"]) for m in MODES},
            spikes_per_sample={m: float(d[f"spikes_per_sample_{m}"]) for m in MODES},
            members=tuple(MemberSummary(**{f.name: m[f.name] for f in fields(MemberSummary)}) for m in d["members"]),
            train_log=dict(d.get("train_log") or {}),
            timings=dict(d.get("timings") or {}),
            config=dict(d.get("config") or {}),
        )


@dataclass(frozen=True)
class Agreement:
    """A backend run compared with the PyTorch reference on the same members and inputs."""

    prediction_agreement: float
    spike_mismatches: int
    torch_accuracy: Optional[float]


@dataclass(frozen=True)
class BackendCall:
    """One backend run of one member over the samples that woke it (a cascade makes one per round
    and member). ``overflow`` is per layer, summed over those samples; None in float mode."""

    member: int
    samples: int
    wall_time_s: float
    build_time_s: float
    overflow: Optional[tuple[int, ...]]
    details: dict = field(default_factory=dict)  # the backend's informational extras, JSON-able scalars

    def to_dict(self) -> dict:
        return plain(
            {
                "member": self.member,
                "samples": self.samples,
                "wall_time_s": self.wall_time_s,
                "build_time_s": self.build_time_s,
                "overflow_neuron_steps": list(self.overflow) if self.overflow is not None else None,
                **self.details,
            }
        )


def overflow_by_member(calls: tuple[BackendCall, ...]) -> dict[int, tuple[int, ...]]:
    """member -> per layer fixed-point overflow (neuron-steps) over all its calls; members that
    never woke are absent, and so is every member of a float run."""
    out: dict[int, tuple[int, ...]] = {}
    for c in calls:
        if c.overflow is not None:
            prev = out.get(c.member, (0,) * len(c.overflow))
            out[c.member] = tuple(a + b for a, b in zip(prev, c.overflow))
    return dict(sorted(out.items()))


@dataclass(frozen=True)
class SimulationReport:
    """One ensemble run: policy, budget, accuracy, the awake members and the energy proxies.

    ``awake`` (N, K), ``predictions`` (N,) and ``raster`` (member -> per-layer trains of one sample)
    are for plots; they are not part of the JSON form."""

    bundle: str  # absolute path of the bundle that ran
    backend: str
    mode: str
    policy: str
    budget: float
    samples: int
    accuracy: Optional[float]
    counts: Counts  # per-sample means over the whole ensemble
    teacher_macs: float
    wall_time_s: float
    backend_time_s: float
    backend_details: tuple[BackendCall, ...]
    connection_sparsity: float  # zero weights / all weights of the members (static)
    footprint_bytes: int  # the members' weights as NeuroBench's adapter holds them (float32)
    awake: np.ndarray = field(repr=False)
    predictions: np.ndarray = field(repr=False)  # (N,) predicted class
    agreement: Optional[Agreement] = None
    raster: Optional[dict[int, list[np.ndarray]]] = field(default=None, repr=False)
    mean_rounds: Optional[float] = (
        None  # the cascade's mean number of sequential rounds (cascade-time: member-steps / T)
    )
    sizes: Optional[SnnSizes] = None  # one member's synapses and neurons (the memory model)
    host: Optional[HostWork] = None  # the gate's and head's work and runs per sample (the memory model)
    teacher_work: Optional[AnnWork] = None  # the teacher's pass (the memory model)
    energy_models: tuple[str, ...] = MODELS  # which models the text and the JSON report

    @property
    def _models(self) -> tuple[str, ...]:
        """The chosen models this run can price (the memory model needs the sizes and host work)."""
        return tuple(m for m in self.energy_models if m != "memory" or (self.sizes and self.host))

    @property
    def energy_breakdown_pj(self) -> dict[str, dict[str, float]]:
        """energy model -> where the energy goes (input layer, other layers, updates, gate, head)."""
        return {m: energy_breakdown_pj(self.counts, m, self.sizes, self.host) for m in self._models}

    @property
    def overflow(self) -> dict[int, tuple[int, ...]]:
        """member -> per-layer fixed-point overflow neuron-steps (see :func:`overflow_by_member`)."""
        return overflow_by_member(self.backend_details)

    @property
    def overflow_total(self) -> int:
        return sum(sum(v) for v in self.overflow.values())

    @property
    def awake_fraction(self) -> float:
        return float(self.awake.mean())

    @property
    def member_wakes(self) -> list[int]:
        return self.awake.sum(axis=0).astype(int).tolist()

    @property
    def energy_pj(self) -> dict[str, float]:
        """energy model -> the ensemble's energy per sample, gate and head included."""
        return {m: sum(parts.values()) for m, parts in self.energy_breakdown_pj.items()}

    def teacher_pj(self, precision: str = "fp32") -> dict[str, Optional[float]]:
        """energy model -> the teacher's energy per sample at ``precision`` (None: not known)."""
        work = self.teacher_work if self.teacher_work is not None else self.teacher_macs
        return {m: ann_energy_pj(work, m, precision) for m in self._models}

    @property
    def teacher_energy_pj(self) -> dict[str, Optional[float]]:
        return self.teacher_pj("fp32")

    @property
    def teacher_to_sne_energy_ratio(self) -> dict[str, Optional[float]]:
        e, t = self.energy_pj, self.teacher_energy_pj
        return {m: None if (tm := t[m]) is None else tm / max(e[m], 1e-12) for m in e}

    @property
    def neurobench(self) -> dict:
        """Our counters under NeuroBench's metric names (its own implementation gives the same
        numbers per member, tested in CI). Ensemble-level: only awake members count, and the
        host-side gate's and head's multiply-accumulates are the ensemble's MACs, as are graded
        inputs' synaptic events (a weight times a payload: NeuroBench counts a non-binary input's
        synaptic operations as MACs)."""
        c = self.counts
        return {
            "SynapticOperations": {
                "Effective_ACs": c.synaptic_events - c.graded_events,
                "Effective_MACs": c.gate_macs + c.head_macs + c.graded_events,
            },
            "ActivationSparsity": 1.0 - c.spikes / c.neuron_updates if c.neuron_updates else 0.0,
            "ConnectionSparsity": self.connection_sparsity,
            "Footprint": self.footprint_bytes,
        }

    def to_dict(self) -> dict:
        d = {
            "bundle": self.bundle,
            "backend": self.backend,
            "mode": self.mode,
            "policy": self.policy,
            "budget": self.budget,
            "samples": self.samples,
            "accuracy": self.accuracy,
            "awake_fraction": self.awake_fraction,
            "member_wakes": self.member_wakes,
            "spikes_per_sample": self.counts.spikes,
            "synaptic_events_per_sample": self.counts.synaptic_events,
            "input_synaptic_events_per_sample": self.counts.input_synaptic_events,
            "graded_events_per_sample": self.counts.graded_events,
            "neuron_updates_per_sample": self.counts.neuron_updates,
            "gate_macs": self.counts.gate_macs,
            "head_macs": self.counts.head_macs,
            "mean_rounds": self.mean_rounds,
            "teacher_macs": self.teacher_macs,
            "energy_pj": self.energy_pj,
            "teacher_energy_pj": self.teacher_energy_pj,
            "teacher_energy_int8_pj": self.teacher_pj("int8"),
            "energy_breakdown_pj": self.energy_breakdown_pj,
            "wall_time_s": self.wall_time_s,
            "backend_time_s": self.backend_time_s,
            "backend_details": [c.to_dict() for c in self.backend_details],
            "overflow_neuron_steps": (
                {str(k): list(v) for k, v in self.overflow.items()} if self.mode == "fixed" else None
            ),
            "overflow_neuron_steps_total": self.overflow_total if self.mode == "fixed" else None,
            "teacher_to_sne_energy_ratio": self.teacher_to_sne_energy_ratio,
            "neurobench": self.neurobench,
        }
        if self.agreement is not None:
            d["agreement_with_torch"] = vars(self.agreement).copy()
        return plain(d)
