"""Energy estimates from the counted proxies, under named models whose every constant has a source.

Three models (:data:`MODELS`), chosen with ``simulate --energy-model`` and reported side by side:

``loihi``
    Loihi's measured per-operation energies (Davies et al. 2018): a synaptic event, a neuron
    update (an update that spikes costs more). Host ANNs (teacher, gate, head) at 45 nm MACs.
``45nm-ops``
    Arithmetic only, at 45 nm (Horowitz 2014): a synaptic event is one 32-bit float add, a neuron
    update one float MAC, an ANN layer its MACs. No memory access is charged, for SNNs and ANNs
    alike, which flatters whichever model moves more data.
``memory``
    Arithmetic *and* memory, in the style of Lemaire et al. 2022 ("An analytical estimation of
    spiking neural networks energy efficiency", ICONIP): every network pays for reading its weights
    at their precision and for reading and writing its state (membrane potentials, activations),
    each access priced by the size of the memory it hits (Horowitz 2014's SRAM figures, see
    :func:`sram_pj`). What is charged (:func:`memory_breakdown_pj`, :func:`ann_memory_pj`):

    * a synaptic event: its weight read (``SnnSizes.weight_bits``, ternary: 2 bits) from the
      member's synapse memory, a read and a write of the target's 24-bit current accumulator in
      the member's state memory, one 32-bit integer add; a graded one (its spike carries a
      payload: the ``graded`` input code) one 8-bit integer multiply more;
    * a neuron update (every neuron of an awake member, every step): u and v (2 x 24 bits) read
      and written, two 32-bit integer multiplies (the decays) and three adds;
    * a spike: a 16-bit address event written to the next layer's queue;
    * an ANN (teacher, gate, head; :class:`AnnWork`) at fp32 or int8: per MAC its multiply and add
      and its weight read (exact for dense layers, where each weight serves one MAC per sample; an
      upper bound for convolutions on hardware that keeps kernels stationary); each activation
      written once and read once (inputs reused across a layer's outputs: a lower bound).

    The SNN's neurons are charged every step whether they spike or not, as Loihi's time-stepped
    cores update them; event-driven cores that skip silent neurons would pay less.

What each policy pays (:class:`Counts`): the awake members' events and updates; the gate only
when the policy asks it (``gate``, ``cascade``); the head once per evaluation (the cascade
evaluates it after every round). :func:`energy_breakdown_pj` splits the total into the input
layer's synaptic events, the other layers' events, neuron updates, spikes, gate and head.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from sne_deploy.simulators.errors import InputError, check_choice


@dataclass(frozen=True)
class Constant:
    pj: float  # energy in picojoules
    what: str
    source: str


DAVIES = "Davies et al. 2018, IEEE Micro 38(1), Table 1"
HOROWITZ = "Horowitz 2014, ISSCC, 'Computing's energy problem' (45 nm, 0.9 V)"

# Horowitz 2014's arithmetic at 45 nm (pJ per operation)
OPS_45NM: dict[str, Constant] = {
    "int8_add": Constant(0.03, "8-bit integer add", HOROWITZ),
    "int8_mult": Constant(0.2, "8-bit integer multiply", HOROWITZ),
    "int32_add": Constant(0.1, "32-bit integer add", HOROWITZ),
    "int32_mult": Constant(3.1, "32-bit integer multiply", HOROWITZ),
    "fp32_add": Constant(0.9, "32-bit float add", HOROWITZ),
    "fp32_mult": Constant(3.7, "32-bit float multiply", HOROWITZ),
}
# Horowitz 2014: one 64-bit read of an SRAM of this many bytes (pJ); between the points the energy
# is interpolated on log-log axes, past the last it grows with the square root of the capacity
# (the wire a bit line crosses), which his 8 KiB and 32 KiB points follow exactly
SRAM_64BIT: tuple[tuple[int, float], ...] = ((8 << 10, 10.0), (32 << 10, 20.0), (1 << 20, 100.0))
DRAM_64BIT = Constant(2000.0, "64-bit DRAM read (1.3-2.6 nJ, midpoint)", HOROWITZ)
SRAM_MAX_BYTES = 16 << 20  # beyond this a model's memory is off chip: DRAM

# name: (value in pJ, what it is, source): the per-op models, as before
CONSTANTS: dict[str, dict[str, Constant]] = {
    "loihi": {
        "synaptic_op": Constant(23.6, "synaptic spike operation", DAVIES),
        "neuron_update_inactive": Constant(52.0, "neuron update, no spike", DAVIES),
        "neuron_update_active": Constant(81.0, "neuron update with spike", DAVIES),
        "mac": Constant(4.6, "32-bit float MAC on the host (45 nm)", HOROWITZ),
        "mac_int8": Constant(0.23, "8-bit integer MAC on the host (0.2 mult + 0.03 add)", HOROWITZ),
        # Loihi 2's graded spikes have no published per-event energy: a graded synaptic event is
        # charged the synaptic op above plus the multiply of its 8-bit weight by the payload
        "graded_multiply": Constant(
            0.2, "8-bit integer multiply, added to a graded spike's synaptic op (our assumption)", HOROWITZ
        ),
    },
    "45nm-ops": {
        "synaptic_op": Constant(0.9, "32-bit float add (accumulate a weight)", HOROWITZ),
        "neuron_update_inactive": Constant(4.6, "one 32-bit float MAC per neuron update (our assumption)", HOROWITZ),
        "neuron_update_active": Constant(4.6, "one 32-bit float MAC per neuron update (our assumption)", HOROWITZ),
        "mac": Constant(4.6, "32-bit float MAC (3.7 pJ mult + 0.9 pJ add)", HOROWITZ),
        "mac_int8": Constant(0.23, "8-bit integer MAC (0.2 mult + 0.03 add)", HOROWITZ),
        "graded_multiply": Constant(3.7, "32-bit float multiply, added to a graded spike's synaptic op", HOROWITZ),
    },
}
MODELS = ("loihi", "45nm-ops", "memory")
CONSTANT_SETS = MODELS  # the name earlier code used
PRECISIONS = {"fp32": 32, "int8": 8}


@dataclass(frozen=True)
class Counts:
    """Per-sample mean counters of an ensemble run (all members, awake ones only)."""

    synaptic_events: float
    neuron_updates: float
    spikes: float
    gate_macs: float = 0.0
    head_macs: float = 0.0
    input_synaptic_events: float = 0.0  # the part of synaptic_events that the first layer receives
    graded_events: float = 0.0  # the part whose spike carries a payload: a weight x payload multiply each


@dataclass(frozen=True)
class AnnWork:
    """One ANN forward pass of one sample: multiply-accumulates, weights stored (Linear and Conv
    layers) and activations (the input and every such layer's outputs)."""

    macs: float
    weights: float
    activations: float

    def times(self, k: float) -> "AnnWork":
        """``k`` passes (the cascade's head runs once per round): the work scales, the memories do not."""
        return AnnWork(self.macs * k, self.weights, self.activations * k)

    def to_dict(self) -> dict[str, float]:
        return {"macs": self.macs, "weights": self.weights, "activations": self.activations}

    @classmethod
    def from_dict(cls, d: dict) -> "AnnWork":
        return cls(float(d["macs"]), float(d["weights"]), float(d["activations"]))


@dataclass(frozen=True)
class SnnSizes:
    """What one member keeps on chip, for the memory model: its stored synapses (a conv layer's
    kernel once, not its unrolled matrix) and its neurons."""

    weights: float
    neurons: float
    weight_bits: int = 2  # ternary
    state_bits: int = 48  # u and v, 24 bits each

    @property
    def weight_bytes(self) -> float:
        return self.weights * self.weight_bits / 8

    @property
    def state_bytes(self) -> float:
        return self.neurons * self.state_bits / 8


@dataclass(frozen=True)
class HostWork:
    """The host-side ANNs of a run, per evaluation, and how often each ran per sample."""

    gate: Optional[AnnWork] = None
    head: Optional[AnnWork] = None
    gate_runs: float = 0.0
    head_runs: float = 1.0


def check_models(text: str) -> tuple[str, ...]:
    """``--energy-model loihi,memory`` -> the models, each one of :data:`MODELS`."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise InputError(f"--energy-model: give one or more of {', '.join(MODELS)}")
    for n in names:
        check_choice("--energy-model", n, MODELS)
    return names


def sram_pj(bits: float, size_bytes: float) -> float:
    """Reading or writing ``bits`` in a memory of ``size_bytes``: Horowitz 2014's 64-bit access
    energy for that size (10 pJ at 8 KiB and below, log-log between his points, the square-root
    law past 1 MiB, DRAM beyond :data:`SRAM_MAX_BYTES`), per bit."""
    if size_bytes > SRAM_MAX_BYTES:
        return bits * DRAM_64BIT.pj / 64
    (s0, p0), last = SRAM_64BIT[0], SRAM_64BIT[-1]
    if size_bytes <= s0:
        per_word = p0
    elif size_bytes >= last[0]:
        per_word = last[1] * math.sqrt(size_bytes / last[0])
    else:
        (sa, pa), (sb, pb) = next((a, b) for a, b in zip(SRAM_64BIT, SRAM_64BIT[1:]) if size_bytes <= b[0])
        per_word = pa * (size_bytes / sa) ** (math.log(pb / pa) / math.log(sb / sa))
    return bits * per_word / 64


def memory_breakdown_pj(c: Counts, sizes: SnnSizes, host: HostWork) -> dict[str, float]:
    """The ``memory`` model's per-sample energy by part (keys :data:`ENERGY_PARTS`)."""
    ops = {k: v.pj for k, v in OPS_45NM.items()}
    weight_read = sram_pj(sizes.weight_bits, sizes.weight_bytes)
    accumulate = 2 * sram_pj(24, sizes.state_bytes) + ops["int32_add"]
    per_event = weight_read + accumulate
    per_update = 2 * sram_pj(sizes.state_bits, sizes.state_bytes) + 2 * ops["int32_mult"] + 3 * ops["int32_add"]
    per_spike = sram_pj(16, sizes.state_bytes)
    return {
        "input_layer_synops": c.input_synaptic_events * per_event + c.graded_events * ops["int8_mult"],
        "other_synops": (c.synaptic_events - c.input_synaptic_events) * per_event,
        "neuron_updates": c.neuron_updates * per_update + c.spikes * per_spike,
        "gate": ann_memory_pj(host.gate.times(host.gate_runs), "fp32") if host.gate and host.gate_runs else 0.0,
        "head": ann_memory_pj(host.head.times(host.head_runs), "fp32") if host.head and host.head_runs else 0.0,
    }


def ann_memory_pj(work: AnnWork, precision: str = "fp32") -> float:
    """The ``memory`` model's energy of an ANN pass at ``precision`` (fp32 or int8)."""
    check_choice("precision", precision, tuple(PRECISIONS))
    bits = PRECISIONS[precision]
    ops = OPS_45NM
    mac = ops["fp32_mult"].pj + ops["fp32_add"].pj if precision == "fp32" else ops["int8_mult"].pj + ops["int8_add"].pj
    weight_read = sram_pj(bits, work.weights * bits / 8)
    activation = 2 * sram_pj(bits, work.activations * bits / 8)  # written once, read once
    return work.macs * (mac + weight_read) + work.activations * activation


ENERGY_PARTS = ("input_layer_synops", "other_synops", "neuron_updates", "gate", "head")


def energy_breakdown_pj(
    c: Counts, model: str, sizes: Optional[SnnSizes] = None, host: Optional[HostWork] = None
) -> dict[str, float]:
    """Per-sample energy in pJ by where it is spent (keys: :data:`ENERGY_PARTS`); the ``memory``
    model needs the members' ``sizes`` and the host's ``host`` work."""
    check_choice("energy model", model, MODELS)
    if model == "memory":
        if sizes is None or host is None:
            raise InputError("the memory energy model needs the members' sizes and the host networks' work")
        return memory_breakdown_pj(c, sizes, host)
    k = CONSTANTS[model]
    inactive = max(c.neuron_updates - c.spikes, 0.0)
    return {
        "input_layer_synops": c.input_synaptic_events * k["synaptic_op"].pj + c.graded_events * k["graded_multiply"].pj,
        "other_synops": (c.synaptic_events - c.input_synaptic_events) * k["synaptic_op"].pj,
        "neuron_updates": c.spikes * k["neuron_update_active"].pj + inactive * k["neuron_update_inactive"].pj,
        "gate": c.gate_macs * k["mac"].pj,
        "head": c.head_macs * k["mac"].pj,
    }


def snn_energy_pj(c: Counts, model: str, sizes: Optional[SnnSizes] = None, host: Optional[HostWork] = None) -> float:
    return sum(energy_breakdown_pj(c, model, sizes, host).values())


def ann_energy_pj(work: "AnnWork | float", model: str, precision: str = "fp32") -> Optional[float]:
    """An ANN pass under ``model`` at ``precision``; ``work`` may be a bare MAC count for the
    per-op models (the memory model then has nothing to price: None)."""
    check_choice("energy model", model, MODELS)
    check_choice("precision", precision, tuple(PRECISIONS))
    if model == "memory":
        return ann_memory_pj(work, precision) if isinstance(work, AnnWork) else None
    macs = work.macs if isinstance(work, AnnWork) else float(work)
    return macs * CONSTANTS[model]["mac" if precision == "fp32" else "mac_int8"].pj


def constants_json() -> dict[str, dict[str, list]]:
    """Every model's constants as [pJ, what, source], for report files."""
    table = {m: {op: [k.pj, k.what, k.source] for op, k in t.items()} for m, t in CONSTANTS.items()}
    memory = {op: [k.pj, k.what, k.source] for op, k in OPS_45NM.items()}
    memory.update({f"sram_64bit_{size >> 10}KiB": [pj, "64-bit SRAM read", HOROWITZ] for size, pj in SRAM_64BIT})
    memory["dram_64bit"] = [DRAM_64BIT.pj, DRAM_64BIT.what, DRAM_64BIT.source]
    return {**table, "memory": memory}


def constants_table() -> str:
    """Every constant of every model, with its source (``simulate --energy-table``)."""
    rows = [f"{'model':9s} {'operation':24s} {'pJ':>7s}  source"]
    for name, table in CONSTANTS.items():
        for op, k in table.items():
            rows.append(f"{name:9s} {op:24s} {k.pj:7.2f}  {k.what}; {k.source}")
    for op, k in OPS_45NM.items():
        rows.append(f"{'memory':9s} {op:24s} {k.pj:7.2f}  {k.what}; {k.source}")
    for size, pj in SRAM_64BIT:
        rows.append(f"{'memory':9s} {f'sram_64bit_{size >> 10}KiB':24s} {pj:7.2f}  64-bit SRAM read; {HOROWITZ}")
    rows.append(f"{'memory':9s} {'dram_64bit':24s} {DRAM_64BIT.pj:7.1f}  {DRAM_64BIT.what}; {DRAM_64BIT.source}")
    return "\n".join(rows)
