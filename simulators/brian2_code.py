"""One layer of the neuron contract as Brian2 statements and values: pure numpy, no Brian2.

:func:`layer_code` is what the Brian2 backend compiles; it lives apart so that its statements can
be checked against :mod:`sne_deploy.simulators.neuron` without Brian2 installed (the tests run
them through a few lines of numpy). Each float statement does one operation, so no compiler can
contract ``v*kv + u`` into an FMA; fixed point runs on float64 variables that hold integers
(< 2^53, so every operation is exact), following Lava's bit-accurate model step by step.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import numpy as np

from .network import Layer
from .neuron import ACT_SHIFT, DECAY_UNITY, LOIHI, MAX_UV, V_LIMIT, VTH_SHIFT, Dynamics, effective_bias


class LayerCode(NamedTuple):
    """One layer's values and statements in Brian2's terms, for ``mode``."""

    vth: np.ndarray  # (n_out,) threshold on v
    bias: np.ndarray  # (n_out,) added to v every step
    mu: np.ndarray  # (n_out,) u's decay multiplier
    mv: np.ndarray  # (n_out,) v's decay multiplier
    decay_u: str  # statement run before synaptic input arrives
    update_v: str  # statements run after it
    weight: np.ndarray  # (n_out, n_in) added to u per presynaptic spike
    threshold: str = "v > vth"  # Brian2's threshold condition
    reset: str = "v = 0"  # Brian2's reset statements
    ibias: Optional[np.ndarray] = None  # (n_out,) constant current into u, after the synaptic input
    recurrent: Optional[np.ndarray] = None  # (n_out, n_out) added to u per spike of the layer's last step
    # multi-spike neurons: ``nspk`` spikes in a step (computed with v, before the threshold, so the
    # next layer's synapses read it in the same step); a spike event then stands for nspk spikes
    multi: bool = False


def layer_code(layer: Layer, mode: str, dyn: Dynamics = LOIHI) -> LayerCode:
    """The neuron contract as Brian2 statements: one operation per statement (no FMA contraction);
    fixed point follows Lava's bit-accurate model on float64 variables that hold integers.
    ``dyn`` adds the firing comparison and reset of :class:`sne_deploy.simulators.neuron.Dynamics`:
    ``subtract-next`` marks a spike in ``sprev`` and takes vth off after the next decay. A current
    bias (``ibias``) enters u right after the synaptic input, as in the neuron step."""
    size = layer.n_out
    fixed = layer.fixed
    if mode == "fixed" and fixed is None:
        raise ValueError(f"layer '{layer.name}' has no fixed-point form (the backend checks this first)")
    ib = layer.params.ibias if fixed is None or mode == "float" else fixed.params.ibias
    add_ibias = "u = u + ibias\n" if ib is not None else ""
    pending = "v = v - sprev * vth\nsprev = 0\n" if dyn.reset == "subtract-next" else ""  # sprev: a spike count, exact
    multi = dyn.spikes == "multi"
    fires = "v >= vth" if dyn.firing == "ge" else "v > vth"
    n = "nspk" if multi else "1"
    common: dict[str, Any] = dict(
        threshold="nspk > 0" if multi else fires,
        reset={
            "zero": "v = 0",
            "subtract": f"v = v - {n} * vth" if multi else "v = v - vth",
            "subtract-next": f"sprev = {n}",
            "none": "",
        }[dyn.reset],
        ibias=None if ib is None else np.asarray(ib, dtype=np.float64),
        multi=multi,
    )
    # floor(v / vth) of integers held in float64 is exact here: |v| < 2^24, vth < 2^24 (fixed point)
    count_spikes = f"\nnspk = int({fires}) * floor(v / vth)" if multi else ""
    if fixed is not None and mode == "fixed":
        f = fixed.params
        vth = np.asarray(f.vth, dtype=np.float64) * (1 << VTH_SHIFT) * np.ones(size)
        return LayerCode(
            vth=vth if layer.spiking else np.full(size, np.inf),  # an LI readout never fires
            bias=np.broadcast_to(effective_bias(f), (size,)).astype(np.float64),
            mu=np.broadcast_to(DECAY_UNITY - (np.asarray(f.du_fx) + 1), (size,)).astype(np.float64),
            mv=np.broadcast_to(DECAY_UNITY - np.asarray(f.dv_fx), (size,)).astype(np.float64),
            decay_u=f"u = sign(u) * floor(abs(u) * mu / {DECAY_UNITY})",
            update_v=(
                add_ibias + f"v = sign(v) * floor(abs(v) * mv / {DECAY_UNITY})\n"
                f"wrapped = int(u > {MAX_UV}) + int(u <= -{MAX_UV})\n"  # the overflow counter, as the reference's
                f"u = u - {2 * MAX_UV} * int(u > {MAX_UV})\n"  # 24-bit wrap of u (after its input)
                f"u = u + {2 * MAX_UV} * int(u <= -{MAX_UV})\n"
                "v = v + u\n"
                "v = v + bias\n"
                + pending  # before saturation, as in the neuron step
                + f"over = over + int(wrapped + int(abs(v) > {V_LIMIT}) > 0)\n"
                f"v = clip(v, -{V_LIMIT}, {V_LIMIT})" + count_spikes
            ),
            weight=fixed.weight.astype(np.float64) * (1 << ACT_SHIFT),
            recurrent=None if fixed.recurrent is None else fixed.recurrent.astype(np.float64) * (1 << ACT_SHIFT),
            **common,
        )
    p = layer.params
    return LayerCode(
        vth=np.broadcast_to(np.asarray(p.vth, dtype=np.float64), (size,)) if layer.spiking else np.full(size, np.inf),
        bias=np.broadcast_to(np.asarray(p.bias, dtype=np.float64), (size,)),
        mu=np.broadcast_to(1.0 - np.asarray(p.du, dtype=np.float64), (size,)).copy(),
        mv=np.broadcast_to(1.0 - np.asarray(p.dv, dtype=np.float64), (size,)).copy(),
        decay_u="u = u * mu",
        update_v=(add_ibias + "v = v * mv\nv = v + u\nv = v + bias\n" + pending).rstrip("\n") + count_spikes,
        weight=layer.weight,
        recurrent=layer.recurrent,
        **common,
    )
