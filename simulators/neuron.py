"""The neuron contract: Loihi's current-based LIF, in float and in bit-accurate fixed point.

This module is the *one* place the dynamics are written. The numpy reference backend runs these
functions with ``xp=numpy``; the torch model in ``sne_deploy`` runs the very same functions with
``xp=torch`` (they use only operators and ``xp.where``/``xp.clip``, which both libraries share), and
the Brian2 and Lava backends are tested spike for spike against them.

Float form, per layer and step (what ``lava.proc.lif.models.AbstractPyLifModelFloat`` computes)::

    u[t] = u[t-1] * (1 - du) + a[t]            a = W @ s_in (synaptic input)
    v[t] = (v[t-1] * (1 - dv) + u[t]) + bias   evaluated left to right, as Lava does
    s[t] = v[t] > vth                          strictly greater
    v[t] = 0 where s[t]                        u is not reset

Fixed-point form (``lava.proc.lif.models.AbstractPyLifModelFixed`` / ``PyLifModelBitAcc``):
12-bit decays ``du_fx = 4096*du - 1`` (Lava adds ``ds_offset = 1`` back) and ``dv_fx = 4096*dv``;
decay is ``sign(x) * ((|x| * (4096 - d)) >> 12)`` (truncation toward zero); synaptic input enters
as ``a << 6``; bias is ``bias_mant << bias_exp`` (not shifted by 6); u wraps at 24 bits
(x > 2^23 -> x - 2^24, x <= -2^23 -> x + 2^24); v saturates at ±(2^23 - 1); spike if
``v > vth << 6``. Integer weights are what Lava's 8-bit Dense keeps: even values in [-256, 254].

Both forms are delay-free: layer l at step t sees layer l-1's spikes of the same step.

Graphs from other libraries may need conventions Loihi does not have; they are options of the same
step functions, off by default: :class:`Dynamics` (``>=`` firing, subtracting resets), per-neuron
``du``/``dv``, and a constant current ``ibias`` on u. The reference and Brian2 run them; Lava's LIF
cannot, so the Lava backend runs such layers on its ``GeneralLIF`` process
(:mod:`sne_deploy.simulators.lava_procs.general_lif`), whose models call these functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import numpy as np

from . import plain
from .errors import GraphError, check_choice

# --- Loihi's fixed-point constants (lava.proc.lif.models.AbstractPyLifModelFixed) ---
DECAY_SHIFT = 12
DECAY_UNITY = 1 << DECAY_SHIFT  # 4096
# the slowest current decay Loihi has (du_fx = 0): u keeps 4095/4096 of itself per step, so an input
# layer fed one graded spike per pixel at a sample's first step integrates it as a constant drive
HOLD_DU = 1.0 / DECAY_UNITY
ACT_SHIFT = 6  # synaptic input is MSB-aligned by 6 bits
VTH_SHIFT = 6  # so is the threshold
UV_BITS = 24
MAX_UV = 1 << (UV_BITS - 1)  # 2**23
V_LIMIT = MAX_UV - 1  # v saturates at ±(2**23 - 1)
WEIGHT_MIN, WEIGHT_MAX = -256, 254  # 8-bit weights after Lava drops the lowest bit (even grid)
VTH_MAX = (1 << 17) - 1  # vth is an unsigned 17-bit field
BIAS_MANT_MIN, BIAS_MANT_MAX = -(1 << 12), (1 << 12) - 1  # 13-bit signed mantissa
BIAS_EXP_MAX = 7  # 3-bit exponent


class LIFParams(NamedTuple):
    """Float parameters of one layer (scalars or per-neuron arrays)."""

    du: Any  # a number, or one per neuron (per-neuron time constants)
    dv: Any
    vth: Any
    bias: Any
    # a constant input current added to u every step (a bias feeding a CubaLIF's synaptic
    # current, e.g. snnTorch's Linear before Synaptic); Loihi has no such field, Lava refuses it
    ibias: Any = None

    def to_dict(self) -> dict[str, Any]:
        return plain.to_dict(self)

    @classmethod
    def from_dict(cls, d: Any) -> "LIFParams":
        return plain.record(
            cls, d, du=plain.NUMBER, dv=plain.NUMBER, vth=plain.FLOATS, bias=plain.FLOATS, ibias=plain.FLOATS
        )


class LIFFixedParams(NamedTuple):
    """Fixed-point parameters of one layer, in Lava's own fields."""

    du_fx: Any  # 0..4095, = 4096*du - 1 (a number, or one per neuron)
    dv_fx: Any  # 0..4095, = 4096*dv
    vth: Any  # unsigned 17-bit mantissa; spike if v > vth << 6
    bias_mant: Any  # signed 13-bit
    bias_exp: int  # 0..7
    ibias: Any = None  # integer current bias in the units of a << 6 (reference and Brian2 only)

    def to_dict(self) -> dict[str, Any]:
        return plain.to_dict(self)

    @classmethod
    def from_dict(cls, d: Any) -> "LIFFixedParams":
        return plain.record(
            cls,
            d,
            du_fx=plain.INTEGER,
            dv_fx=plain.INTEGER,
            vth=plain.INTS,
            bias_mant=plain.INTS,
            bias_exp=int,
            ibias=plain.INTS,
        )


FIRINGS = ("gt", "ge")
RESETS = ("zero", "subtract", "subtract-next", "none")
DECAYS = ("euler", "exp")
SPIKES = ("single", "multi")
GAINS = ("nir", "rockpool", "norse", "spyx")


@dataclass(frozen=True)
class Dynamics:
    """The conventions a NIR graph does not record, which libraries choose differently.

    * ``firing``: ``gt`` spikes when v > vth (Loihi, snnTorch, norse); ``ge`` when v >= vth
      (SpikingJelly, sinabs).
    * ``reset``: ``zero`` sets v = 0 after a spike (Loihi, norse, SpikingJelly's default);
      ``subtract`` subtracts vth right after the spike, so the remainder decays with v (sinabs,
      SpikingJelly with ``v_reset=None``); ``subtract-next`` subtracts vth at the next step after
      the decay, undecayed (snnTorch's default ``reset_mechanism="subtract"``:
      ``mem = beta*mem + input - reset*threshold`` with ``reset`` from the previous step); ``none``
      leaves v as it is (a reset-free neuron: snnTorch's ``reset_mechanism="none"``).
    * ``decay``: how NIR's continuous time constants become per-step factors (used when a graph is
      read): ``euler`` replaces every dt/tau by itself (forward Euler: ours, snnTorch, norse);
      ``exp`` by 1 - exp(-dt/tau), the exact decay over one step (sinabs, Rockpool).
    * ``spikes``: ``single``, at most one spike per neuron and step (Loihi's LIF); ``multi``,
      floor(v / vth) spikes in a step where the firing comparison holds (sinabs' ``MultiSpike``,
      its default; Rockpool's ``max_spikes_per_dt``): the subtracting resets take off that many
      thresholds, and the next layer receives the count (n x weight, n synaptic events).
    * ``gain`` (import only): ``nir`` reads a neuron's input gain from NIR's ``r`` and ``w_in``
      (the module docstring of :mod:`~sne_deploy.simulators.nir_read`); ``rockpool`` as Rockpool
      simulates, whatever its exporter wrote there (``r = tau e^(-dt/tau) / dt``, no ``w_in``):
      e^(-dt / tau_syn) into a CubaLIF's current (its input is decayed with it), 1 into a LIF's v;
      ``norse`` as norse's LIFCell simulates (``i = i + input``, then ``v += dt tau_mem_inv (v_leak
      - v + i)``): ``w_in`` undivided by tau_syn into a CubaLIF's current, ``r dt / tau_mem`` on to
      v (NIR's ``w_in dt / tau_syn`` factor would scale its input by ``dt tau_syn_inv`` too), and
      ``r`` into an IF's v whatever dt is (norse's IAFCell: ``v = v + input``).
      ``spyx`` as Spyx 1.0 simulates (it writes ``r = beta`` and no ``w_in``): every neuron adds
      its input with gain 1 (``V = beta V + x``; a CuBaLIF's ``I = alpha I + x``, ``V = beta V + I``);
      and, being how Spyx steps rather than a gain, its LIF, IF and CuBaLIF read a step's spike
      from the previous step's membrane (a one-step ``Layer.delay``; its LI -> Threshold
      ``PSU_LIF`` spikes from this step's), and a CuBaLIF subtracts the threshold before its
      membrane decays (``subtract``; its LIF and IF subtract after: ``subtract-next``).

    The default is Loihi's own neuron, the only one Lava's LIF runs (the others run on Lava as
    ``GeneralLIF`` layers).
    """

    firing: str = "gt"
    reset: str = "zero"
    decay: str = "euler"
    spikes: str = "single"
    gain: str = "nir"

    def __post_init__(self) -> None:
        for what, value, allowed in (
            ("firing", self.firing, FIRINGS),
            ("reset", self.reset, RESETS),
            ("decay", self.decay, DECAYS),
            ("spikes", self.spikes, SPIKES),
            ("gain", self.gain, GAINS),
        ):
            check_choice(what, value, allowed, GraphError)

    def to_dict(self) -> dict[str, Any]:
        return plain.to_dict(self)

    @classmethod
    def from_dict(cls, d: Any) -> "Dynamics":
        return plain.record(
            cls, d, firing=plain.text, reset=plain.text, decay=plain.text, spikes=plain.text, gain=plain.text
        )

    @property
    def is_loihi(self) -> bool:
        """Whether the step is Loihi's (``decay`` only shapes the import, not the step)."""
        return self.firing == "gt" and self.reset == "zero" and self.spikes == "single"


LOIHI = Dynamics()


class LIFState(NamedTuple):
    u: Any
    v: Any
    s: Any = None  # the previous step's spikes; only ``subtract-next`` reads them


def _strict_heaviside(x: Any) -> Any:
    return x > 0


def _fires(x: Any, dyn: Dynamics, spike_fn: Callable[[Any], Any] = _strict_heaviside) -> Any:
    """Spikes from x = v - vth: ``spike_fn`` for the strict comparison (training passes a
    surrogate-gradient Heaviside with the same forward values), x >= 0 for ``ge``. In IEEE
    arithmetic v - vth == 0 exactly when v == vth, so this is the comparison on v itself."""
    return spike_fn(x) if dyn.firing == "gt" else x >= 0


def _count(v: Any, vth: Any, fired: Any, dyn: Dynamics, xp: Any, integer: bool) -> Any:
    """``multi``: floor(v / vth) spikes where the neuron fired (one where vth is 0); ``single``:
    the 0/1 spikes as they are. Fixed point divides its integers exactly (``//``)."""
    if dyn.spikes == "single":
        return fired
    positive = vth > 0
    safe = xp.where(positive, vth, xp.ones_like(vth))
    n = v // safe if integer else xp.floor(v / safe)
    return xp.where(fired > 0, xp.where(positive, n, xp.ones_like(n)), xp.zeros_like(n))


def _subtract_pending(v: Any, state: LIFState, vth: Any, dyn: Dynamics, xp: Any) -> Any:
    """``subtract-next``: the threshold of last step's spikes comes off after this step's decay."""
    if dyn.reset != "subtract-next" or state.s is None:
        return v
    if dyn.spikes == "multi":
        return v - state.s * vth
    return v - xp.where(state.s > 0, vth, xp.zeros_like(v))


def _reset(v: Any, s: Any, vth: Any, dyn: Dynamics, xp: Any) -> Any:
    if dyn.reset == "zero":
        return xp.where(s > 0, xp.zeros_like(v), v)
    if dyn.reset == "subtract":
        return v - s * vth if dyn.spikes == "multi" else xp.where(s > 0, v - vth, v)
    return v  # none: v keeps integrating; subtract-next: see _subtract_pending


def lif_step_float(
    state: LIFState,
    a: Any,
    p: LIFParams,
    xp: Any = np,
    spike_fn: Callable[[Any], Any] = _strict_heaviside,
    dyn: Dynamics = LOIHI,
) -> tuple[LIFState, Any]:
    """One float step. ``spike_fn(v - vth)`` decides spikes; training passes a surrogate-gradient
    Heaviside (same forward values), inference the plain strict comparison."""
    u = state.u * (1.0 - p.du) + a
    if p.ibias is not None:
        u = u + p.ibias
    v = state.v * (1.0 - p.dv) + u + p.bias
    v = _subtract_pending(v, state, p.vth, dyn, xp)
    s = _count(v, p.vth, _fires(v - p.vth, dyn, spike_fn), dyn, xp, integer=False)
    v = _reset(v, s, p.vth, dyn, xp)
    return LIFState(u, v, s if dyn.reset == "subtract-next" else None), s


def decay_fixed(x: Any, d: int, xp: Any = np) -> Any:
    """Loihi's 12-bit multiplicative decay with truncation toward zero (x is int64)."""
    q = (abs(x) * (DECAY_UNITY - d)) >> DECAY_SHIFT
    return xp.where(x < 0, -q, q)


def wrap_u(u: Any, xp: Any = np) -> Any:
    """u wraps around at 24 bits, exactly as Lava writes it."""
    w = xp.where(u > MAX_UV, u - 2 * MAX_UV, u)
    return xp.where(u <= -MAX_UV, u + 2 * MAX_UV, w)


def effective_bias(p: LIFFixedParams) -> Any:
    return p.bias_mant * (1 << int(p.bias_exp))


def lif_step_fixed(
    state: LIFState, a: Any, p: LIFFixedParams, xp: Any = np, dyn: Dynamics = LOIHI
) -> tuple[LIFState, Any]:
    """One bit-accurate step on int64 state; ``a`` is the integer synaptic input ``W_int @ s_in``."""
    state, s, _ = lif_step_fixed_checked(state, a, p, xp, dyn)
    return state, s


def lif_step_fixed_checked(
    state: LIFState, a: Any, p: LIFFixedParams, xp: Any = np, dyn: Dynamics = LOIHI
) -> tuple[LIFState, Any, Any]:
    """:func:`lif_step_fixed` that also returns where u wrapped or v hit a saturation rail: there
    the chip computes something other than the float model, and callers report it. Other
    ``dyn`` than Loihi's apply the same comparison and reset to the integer v and ``vth << 6``
    (the pending subtraction of ``subtract-next`` comes before the saturation)."""
    vth = p.vth * (1 << VTH_SHIFT)
    drive = a * (1 << ACT_SHIFT)
    # du = 1 (du_fx + 1 = 4096) keeps nothing of u: decay_fixed would return zeros, so skip it
    u_raw = (
        drive if np.ndim(p.du_fx) == 0 and p.du_fx + 1 == DECAY_UNITY else decay_fixed(state.u, p.du_fx + 1, xp) + drive
    )
    if p.ibias is not None:
        u_raw = u_raw + p.ibias
    u = wrap_u(u_raw, xp)
    v_raw = _subtract_pending(decay_fixed(state.v, p.dv_fx, xp) + u + effective_bias(p), state, vth, dyn, xp)
    v_sat = xp.clip(v_raw, -V_LIMIT, V_LIMIT)
    s = _count(v_sat, vth, _fires(v_sat - vth, dyn), dyn, xp, integer=True)
    v = _reset(v_sat, s, vth, dyn, xp)
    return LIFState(u, v, s if dyn.reset == "subtract-next" else None), s, (u != u_raw) | (v_raw != v_sat)


def _scalar_or_array(x: np.ndarray) -> Any:
    """A uniform population's value as a plain number (as it always was), else the array."""
    x = np.asarray(x)
    return x.item() if x.ndim == 0 else x


def snap_decay(d: Any, tol: float = float("inf")) -> Any:
    """The nearest decay on Loihi's 1/4096 grid if it lies within ``tol`` of ``d``, else ``d``
    (per neuron for an array). With the default tol it always snaps (quantising a float graph);
    NIR import uses a tiny tol to remove only float noise such as dt/tau = 0.25000000000000006."""
    d = np.asarray(d, dtype=np.float64)
    grid = np.round(d * DECAY_UNITY) / DECAY_UNITY
    return _scalar_or_array(np.where(np.abs(grid - d) <= tol, grid, d))


def decays_to_fixed(du: Any, dv: Any) -> tuple[Any, Any]:
    """Map float decays (numbers, or per-neuron arrays) onto Lava's 12-bit fields; they must lie
    on the 1/4096 grid."""
    du_fx = np.round(np.asarray(du, dtype=np.float64) * DECAY_UNITY).astype(np.int64) - 1
    dv_fx = np.round(np.asarray(dv, dtype=np.float64) * DECAY_UNITY).astype(np.int64)
    if not (np.all((0 <= du_fx) & (du_fx <= DECAY_UNITY - 1)) and np.all((0 <= dv_fx) & (dv_fx <= DECAY_UNITY - 1))):
        raise GraphError(f"decays du={du}, dv={dv} do not fit Loihi's 12-bit fields (du in (0, 1], dv in [0, 1))")
    return _scalar_or_array(du_fx), _scalar_or_array(dv_fx)


def bias_to_mant_exp(bias_int: np.ndarray) -> tuple[np.ndarray, int]:
    """Split integer biases into one shared exponent and 13-bit mantissas (exact when possible)."""
    bias_int = np.asarray(bias_int, dtype=np.int64)
    for exp in range(BIAS_EXP_MAX + 1):
        mant = bias_int >> exp
        if (
            np.all(mant << exp == bias_int)
            and mant.min(initial=0) >= BIAS_MANT_MIN
            and mant.max(initial=0) <= BIAS_MANT_MAX
        ):
            return mant, exp
    # not exactly representable: use the smallest exponent that fits and round
    for exp in range(BIAS_EXP_MAX + 1):
        mant = np.round(bias_int / (1 << exp)).astype(np.int64)
        if mant.min(initial=0) >= BIAS_MANT_MIN and mant.max(initial=0) <= BIAS_MANT_MAX:
            return mant, exp
    raise GraphError(f"bias range [{bias_int.min()}, {bias_int.max()}] exceeds Loihi's 13-bit mantissa << 7")
