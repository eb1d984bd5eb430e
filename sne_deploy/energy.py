"""Energy estimates from the counted proxies: one table of per-operation constants, each with its source.

An SNN member is charged per synaptic event (presynaptic spike × non-zero fan-out) and per
neuron update (every neuron of an awake member at every step; on Loihi an update that spikes
costs more). ANNs (the teacher, the gate, the host head) are charged per multiply-accumulate.

What each policy pays (:class:`Counts`): the awake members' events and updates; the gate's MACs
only when the policy asks the gate (``gate``, ``cascade``); the head's MACs always, once per
evaluation (the cascade evaluates it after every round). :func:`energy_breakdown_pj` splits the
total into the input layer's synaptic events, the other layers' events, neuron updates, gate and
head, because on Loihi's constants the input layer is where the energy goes.
"""

from __future__ import annotations

from dataclasses import dataclass

# name: (value in pJ, what it is, source)
CONSTANTS: dict[str, dict[str, tuple[float, str, str]]] = {
    "loihi": {
        "synaptic_op": (23.6, "synaptic spike operation", "Davies et al. 2018, IEEE Micro 38(1), Table 1"),
        "neuron_update_inactive": (52.0, "neuron update, no spike", "Davies et al. 2018, IEEE Micro 38(1), Table 1"),
        "neuron_update_active": (81.0, "neuron update with spike", "Davies et al. 2018, IEEE Micro 38(1), Table 1"),
        "mac": (4.6, "32-bit float MAC on the host (45 nm)", "Horowitz 2014, ISSCC, 'Computing's energy problem'"),
    },
    "45nm": {
        "synaptic_op": (0.9, "32-bit float add (accumulate a weight)", "Horowitz 2014, ISSCC"),
        "neuron_update_inactive": (
            4.6,
            "one 32-bit float MAC per neuron update (our assumption)",
            "Horowitz 2014, ISSCC",
        ),
        "neuron_update_active": (
            4.6,
            "one 32-bit float MAC per neuron update (our assumption)",
            "Horowitz 2014, ISSCC",
        ),
        "mac": (4.6, "32-bit float MAC (3.7 pJ mult + 0.9 pJ add)", "Horowitz 2014, ISSCC"),
    },
}
CONSTANT_SETS = tuple(CONSTANTS)


@dataclass(frozen=True)
class Counts:
    """Per-sample mean counters of an ensemble run (all members, awake ones only)."""

    synaptic_events: float
    neuron_updates: float
    spikes: float
    gate_macs: float = 0.0
    head_macs: float = 0.0
    input_synaptic_events: float = 0.0  # the part of synaptic_events that the first layer receives


ENERGY_PARTS = ("input_layer_synops", "other_synops", "neuron_updates", "gate", "head")


def energy_breakdown_pj(c: Counts, constants: str) -> dict[str, float]:
    """Per-sample energy in pJ by where it is spent (keys: :data:`ENERGY_PARTS`)."""
    k = CONSTANTS[constants]
    inactive = max(c.neuron_updates - c.spikes, 0.0)
    return {
        "input_layer_synops": c.input_synaptic_events * k["synaptic_op"][0],
        "other_synops": (c.synaptic_events - c.input_synaptic_events) * k["synaptic_op"][0],
        "neuron_updates": c.spikes * k["neuron_update_active"][0] + inactive * k["neuron_update_inactive"][0],
        "gate": c.gate_macs * k["mac"][0],
        "head": c.head_macs * k["mac"][0],
    }


def snn_energy_pj(c: Counts, constants: str) -> float:
    return sum(energy_breakdown_pj(c, constants).values())


def ann_energy_pj(macs: float, constants: str) -> float:
    return macs * CONSTANTS[constants]["mac"][0]


def constants_table() -> str:
    rows = [f"{'set':6s} {'operation':24s} {'pJ':>6s}  source"]
    for name, table in CONSTANTS.items():
        for op, (v, what, src) in table.items():
            rows.append(f"{name:6s} {op:24s} {v:6.1f}  {what}; {src}")
    return "\n".join(rows)
