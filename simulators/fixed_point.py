"""The one rule that maps a float layer onto Loihi's fixed point, and the 24-bit range check.

A float layer (weights ``w``, threshold ``vth``, bias ``bias``, decays ``du``/``dv``) becomes
fixed point through one integer weight scale ``q`` per layer: ``W_int = q * w``,
``vth_int = round(q * vth)`` and ``bias_eff = round(64 * q * bias)`` (synaptic input enters v
shifted left by 6 bits, the bias does not), split into Loihi's mantissa and exponent.
One fixed-point unit is then 1/(64 q) of the float form, so both forms compute the same spikes
whenever the float values sit on that grid.

* :func:`fold_ternary` — the deployed student and the random test networks: ternary weights
  ``{-1, 0, +1}`` (any per-layer magnitude alpha already folded into ``vth`` and ``bias``), one
  **even** scale (Lava's mixed-sign 8-bit Dense drops the lowest weight bit), chosen by
  :func:`choose_scale` as the largest whose worst-case membrane fits 24 bits.
* :func:`quantize_layer` — a foreign float graph: the largest even scale that makes every weight,
  threshold and 64 x bias an integer within the 8-bit range (:func:`exact_scale`: then fixed point
  computes what float does, up to Loihi's truncating decay), else the largest |w| maps onto the
  8-bit range and the error is what ``run-nir --quantize`` reports.

Both call :func:`scaled_fixed`, the rule itself.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from math import lcm
from typing import Any, Optional

import numpy as np

from .network import FixedLayer, Layer, Network, make_layer
from .neuron import (
    ACT_SHIFT,
    DECAY_UNITY,
    MAX_UV,
    VTH_MAX,
    WEIGHT_MAX,
    LIFFixedParams,
    bias_to_mant_exp,
    decays_to_fixed,
    snap_decay,
)

ACT_UNIT = 1 << ACT_SHIFT  # one synaptic weight unit on the membrane (64)


def scaled_fixed(
    weight_int: np.ndarray, q: float, du: Any, dv: Any, vth: Any, bias: Any, ibias: Any = None
) -> FixedLayer:
    """Fixed-point fields of a float layer whose weights times ``q`` are ``weight_int``; a current
    bias ``ibias`` enters u like the synaptic input, as ``round(64 q ibias)``."""
    du_fx, dv_fx = decays_to_fixed(du, dv)
    vth = np.asarray(vth, dtype=np.float64)
    # an LI readout's vth is inf: its field holds the largest value and is never compared
    vth_int = np.where(np.isfinite(vth), np.round(q * np.where(np.isfinite(vth), vth, 0.0)), VTH_MAX).astype(np.int64)
    mant, exp = bias_to_mant_exp(np.round(ACT_UNIT * q * np.asarray(bias, dtype=np.float64)).astype(np.int64))
    ibias_int = None if ibias is None else np.round(ACT_UNIT * q * np.asarray(ibias, dtype=np.float64)).astype(np.int64)
    return FixedLayer(
        np.asarray(weight_int, dtype=np.int64), LIFFixedParams(du_fx, dv_fx, vth_int, mant, exp, ibias_int)
    )


def worst_case_uv_of(
    weight_int: np.ndarray, du_fx: int, dv_fx: int, bias_eff: Any, steps: int, graded: int = 0
) -> tuple[float, float]:
    """Worst-case |u| and |v| in Loihi's units over ``steps`` steps: every input spikes every step,
    so |a| <= 64 * max row L1 norm of W_int; u <= |a| / du; v <= (u + |bias|) * min(steps, 1/dv).
    With ``graded`` = G > 0 the inputs are the ``graded`` code's: one graded spike per input and
    sample, payload at most G, so u <= G |a| (it only decays after). Compare with 2^23 (u wraps,
    v saturates beyond)."""
    amax = float(np.abs(weight_int).sum(axis=1).max(initial=0)) * ACT_UNIT
    du = float(np.min((np.asarray(du_fx) + 1) / DECAY_UNITY))  # the slowest decays bound the range
    dv = float(np.min(np.asarray(dv_fx) / DECAY_UNITY))
    umax = amax * graded if graded else amax / du
    bmax = float(np.abs(np.asarray(bias_eff, dtype=np.float64)).max(initial=0))
    vmax = (umax + bmax) * (min(steps, 1.0 / dv) if dv > 0 else steps)
    return umax, vmax


def worst_case_uv(layer: Layer, steps: int, graded: int = 0) -> tuple[float, float]:
    """:func:`worst_case_uv_of` for a layer's fixed-point form."""
    f = layer.fixed
    assert f is not None
    bias_eff = np.asarray(f.params.bias_mant) * (1 << int(f.params.bias_exp))
    return worst_case_uv_of(f.weight, f.params.du_fx, f.params.dv_fx, bias_eff, steps, graded)


def choose_scale(
    w_tern: np.ndarray, du: float, dv: float, steps: int, bias: Optional[np.ndarray] = None, graded: int = 0
) -> int:
    """The largest even integer scale in [2, 254] whose worst case (:func:`worst_case_uv_of`, for
    the ``graded`` code's inputs when G > 0) fits 24 bits. ``bias`` is in units of one synapse, as
    in the float layer."""
    bias = np.zeros(w_tern.shape[0]) if bias is None else np.asarray(bias, dtype=np.float64)
    du_fx, dv_fx = decays_to_fixed(du, dv)
    # the bound is linear in the scale: evaluate it at 1 (bias unrounded)
    umax, vmax = worst_case_uv_of(
        np.asarray(w_tern, dtype=np.float64), du_fx, dv_fx, np.abs(bias) * ACT_UNIT, steps, graded
    )
    s = int(MAX_UV // max(umax, vmax, float(ACT_UNIT)))
    s = min(WEIGHT_MAX, s) // 2 * 2
    return max(s, 2)


def fold_ternary(
    name: str,
    w_tern: np.ndarray,
    vth: float,
    bias: Any,
    du: float,
    dv: float,
    steps: int,
    scale: Optional[int] = None,
    graded: int = 0,
) -> Layer:
    """A deployable layer from ternary weights: the float form keeps ``w_tern`` (threshold and bias in
    units of one synapse), the fixed-point form multiplies by one even ``scale`` (default:
    :func:`choose_scale`, for the ``graded`` code's inputs when G > 0). The integer threshold is at
    least 1, so a neuron never fires on v = 0."""
    w_tern = np.asarray(w_tern, dtype=np.float64)
    bias = np.broadcast_to(np.asarray(bias, dtype=np.float64), (w_tern.shape[0],))
    s = scale if scale is not None else choose_scale(w_tern, du, dv, steps, bias, graded)
    fixed = scaled_fixed((w_tern * s).astype(np.int64), s, du, dv, np.full(w_tern.shape[0], vth), bias)
    fixed = replace(fixed, params=fixed.params._replace(vth=np.maximum(fixed.params.vth, 1)))
    return make_layer(name, w_tern, du, dv, vth, bias, fixed=fixed)


# A float value counts as a ratio p/q when it lies this close (relative) to it: exporters store
# float32, whose 0.1 is 0.10000000149 (see nir_io._SNAP).
_RATIO_TOL = 1e-6
_MAX_DENOMINATOR = 1 << 12


def _denominator(values: np.ndarray) -> Optional[int]:
    """The least common denominator of ``values`` as small fractions, or None when one of them is
    no ratio with a denominator up to 4096 (an arbitrary float weight)."""
    d = 1
    for x in np.unique(np.asarray(values, dtype=np.float64)):
        f = Fraction(float(x)).limit_denominator(_MAX_DENOMINATOR)
        if abs(float(f) - x) > _RATIO_TOL * max(1.0, abs(x)):
            return None
        d = lcm(d, f.denominator)
    return d


def exact_scale(layer: Layer, weight_max: int = WEIGHT_MAX) -> Optional[int]:
    """The largest integer scale q with ``q * w`` even integers, ``q * vth`` and ``64 * q * bias``
    integers and ``q * max|w| <= weight_max``, or None when there is none."""
    w = layer.incoming("float")
    wmax = float(np.abs(w).max(initial=0.0))
    vth = np.asarray(layer.params.vth, dtype=np.float64)
    # w / 2: Lava's weights must be even, so q * w must be too
    parts = [w.ravel() / 2, vth[np.isfinite(vth)], ACT_UNIT * np.asarray(layer.params.bias, dtype=np.float64)]
    if layer.params.ibias is not None:
        parts.append(ACT_UNIT * np.asarray(layer.params.ibias, dtype=np.float64))
    dens = [_denominator(p) for p in parts]
    if any(d is None for d in dens):
        return None
    q0 = lcm(*dens)  # type: ignore[arg-type]
    qmax = int(weight_max // wmax) if wmax > 0 else weight_max
    return q0 * (qmax // q0) if qmax >= q0 else None


@dataclass(frozen=True)
class Quantization:
    """How one layer was quantised: its weight scale, and whether the scale is exact."""

    layer: str
    scale: float
    exact: bool


def quantize_layer(layer: Layer, weight_max: int = WEIGHT_MAX) -> Layer:
    """Derive fixed-point parameters from float ones when a graph carries none (see
    :func:`quantize_layer_report`)."""
    return quantize_layer_report(layer, weight_max)[0]


def quantize_layer_report(layer: Layer, weight_max: int = WEIGHT_MAX) -> tuple[Layer, Quantization]:
    """The layer with fixed-point parameters, and how they were chosen.

    The scale is :func:`exact_scale` when one exists (integer weights 1, 2, 3 become 84, 168, 252,
    ratios kept); otherwise q maps the largest |w| onto ``weight_max`` and weights round to the
    even grid (an approximation; graphs exported by sne-deploy carry exact integers instead).
    vth and bias follow :func:`scaled_fixed`.
    """
    q_exact = exact_scale(layer, weight_max)
    if q_exact is not None:
        q: float = float(q_exact)

        def to_int(w: np.ndarray) -> np.ndarray:
            return np.round(w * q).astype(np.int64)
    else:
        wmax = float(np.abs(layer.incoming("float")).max(initial=0.0))
        q = (weight_max / wmax) if wmax > 0 else 1.0

        def to_int(w: np.ndarray) -> np.ndarray:
            return (2 * np.round(w * q / 2)).astype(np.int64)

    fixed = scaled_fixed(
        to_int(layer.weight),
        q,
        snap_decay(layer.params.du),
        snap_decay(layer.params.dv),
        layer.params.vth,
        layer.params.bias,
        layer.params.ibias,
    )
    if layer.recurrent is not None:  # the same scale: both kinds of synapse add into the same u
        fixed = replace(fixed, recurrent=to_int(layer.recurrent))
    return replace(layer, fixed=fixed), Quantization(layer.name, q, q_exact is not None)


def quantize_network(network: Network) -> tuple[Network, list[Quantization]]:
    """Fixed-point parameters for every layer that has none (a foreign float graph); layers that
    carry exact integers (sne-deploy's exports) keep them."""
    layers, report = [], []
    for layer in network.layers:
        if layer.fixed is None:
            layer, q = quantize_layer_report(layer)
            report.append(q)
        layers.append(layer)
    return replace(network, layers=tuple(layers)), report


def quantization_agreement(net: Network, spikes: np.ndarray, report: list[Quantization]) -> dict:
    """What ``--quantize`` chose per layer, and what it costs: the fraction of (sample, neuron)
    spike trains identical between the float and the fixed-point reference run."""
    from .reference import run_reference

    f = run_reference(net, spikes, "float", record=True)
    q = run_reference(net, spikes, "fixed", record=True)
    assert f.trains is not None and q.trains is not None  # recorded
    return {
        "layers": [{"layer": r.layer, "scale": r.scale, "exact": r.exact} for r in report],
        "float_vs_fixed_identical_trains": [float(np.mean(np.all(a == b, axis=1))) for a, b in zip(f.trains, q.trains)],
    }
