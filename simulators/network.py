"""The network the backends run: a chain of LIF layers, as plain frozen data. A layer may also
feed its own spikes back to itself (``recurrent``: step t's input includes W_rec @ s[t-1]).

Every backend consumes a :class:`Network`; :func:`sne_deploy.simulators.nir_io.from_nir` builds one from a NIR graph.
A layer always carries its float-form parameters (:class:`sne_deploy.simulators.neuron.LIFParams`) and, when
the graph carries them (our exporter does) or when :mod:`sne_deploy.simulators.fixed_point` derives them, its
exact fixed-point form (:class:`FixedLayer`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Optional

import numpy as np

from . import plain
from .errors import GraphError
from .linear_maps import ConvGeometry
from .neuron import (
    BIAS_EXP_MAX,
    BIAS_MANT_MAX,
    BIAS_MANT_MIN,
    DECAY_UNITY,
    LOIHI,
    VTH_MAX,
    WEIGHT_MAX,
    WEIGHT_MIN,
    Dynamics,
    LIFFixedParams,
    LIFParams,
)


@dataclass(frozen=True)
class FixedLayer:
    """Integer weights (even, 8-bit) and Lava's fixed-point neuron fields for one layer."""

    weight: np.ndarray  # (n_out, n_in) int64
    params: LIFFixedParams
    recurrent: Optional[np.ndarray] = None  # (n_out, n_out) int64, same scale as ``weight``

    def to_dict(self) -> dict[str, Any]:
        return plain.to_dict(self)

    @classmethod
    def from_dict(cls, d: Any) -> "FixedLayer":
        return plain.record(cls, d, weight=plain.INTS, params=LIFFixedParams.from_dict, recurrent=plain.INTS)


@dataclass(frozen=True)
class Layer:
    """Synapses ``weight`` (n_out, n_in) feeding one population of neurons."""

    name: str
    weight: np.ndarray  # float64
    params: LIFParams  # vth and bias as float64 arrays of shape (n_out,)
    spiking: bool = True  # False: LI readout, never spikes
    fixed: Optional[FixedLayer] = None
    conv: Optional[ConvGeometry] = None  # made from one Conv2d: simulators may compute ``weight`` as a convolution
    # (n_out, n_out) float64: the layer's own spikes of the previous step feed back through these synapses
    recurrent: Optional[np.ndarray] = None
    # the layer's own reset where it differs from the network's: "none" for a reset-free neuron
    # written as NIR's LI -> Threshold (Spyx's PSU_LIF)
    reset: Optional[str] = None
    # steps between this step's update and the spike the next layer sees: 1 where a library reads
    # a step's spike from the previous step's membrane (Spyx); see simulators.result.delayed
    delay: int = 0

    def to_dict(self) -> dict[str, Any]:
        return plain.to_dict(self)

    @classmethod
    def from_dict(cls, d: Any) -> "Layer":
        return plain.record(
            cls,
            d,
            name=plain.text,
            weight=plain.FLOATS,
            params=LIFParams.from_dict,
            spiking=bool,
            fixed=FixedLayer.from_dict,
            conv=ConvGeometry.from_dict,
            recurrent=plain.FLOATS,
            reset=plain.text,
            delay=int,
        )

    @property
    def n_in(self) -> int:
        return int(self.weight.shape[1])

    @property
    def n_out(self) -> int:
        return int(self.weight.shape[0])

    def mode_weight(self, mode: str) -> np.ndarray:
        """The input synapses in ``mode``'s form: the integer weights in fixed point (when the
        layer has them), else the float ones."""
        return self.fixed.weight if (mode == "fixed" and self.fixed is not None) else self.weight

    def fan_out(self, mode: str) -> np.ndarray:
        """Non-zero synapses leaving each input neuron: one synaptic event per spike and synapse."""
        return np.count_nonzero(self.mode_weight(mode), axis=0).astype(np.int64)

    def recurrent_weight(self, mode: str) -> Optional[np.ndarray]:
        """The recurrent synapses in ``mode``'s form (None for a feed-forward layer)."""
        if self.recurrent is None:
            return None
        return self.fixed.recurrent if (mode == "fixed" and self.fixed is not None) else self.recurrent

    def incoming(self, mode: str) -> np.ndarray:
        """Every synapse into the layer in ``mode``'s form, (n_out, n_in [+ n_out]): its input
        weights and, for a recurrent layer, its own (both share one fixed-point scale)."""
        w = self.mode_weight(mode)
        rec = self.recurrent_weight(mode)
        return w if rec is None else np.concatenate([w, rec], axis=1)

    def recurrent_fan_out(self, mode: str) -> Optional[np.ndarray]:
        """Non-zero recurrent synapses leaving each neuron of this layer (None: feed-forward)."""
        w = self.recurrent_weight(mode)
        return None if w is None else np.count_nonzero(w, axis=0).astype(np.int64)


@dataclass(frozen=True)
class Network:
    layers: tuple[Layer, ...]
    dt: float = 1.0
    metadata: dict = field(default_factory=dict)
    dynamics: Dynamics = LOIHI  # firing comparison and reset of every layer (Loihi's by default)
    # How an input's value at a step reaches the first layer. 0: as that many binary events (spikes,
    # or an event camera's counts), each one synaptic event per synapse. G > 0: as one graded spike
    # whose payload (at most G) multiplies the weight, one synaptic event per non-zero payload and
    # synapse (Loihi 2); sne-deploy's ``graded`` code sends it once per sample (encoding.py).
    graded_input: int = 0

    @property
    def n_in(self) -> int:
        return self.layers[0].n_in

    @property
    def n_out(self) -> int:
        return self.layers[-1].n_out

    def layer_dynamics(self, i: int) -> Dynamics:
        """How layer ``i``'s neurons fire and reset: the network's dynamics, with the layer's own
        reset where it has one."""
        own = self.layers[i].reset
        return self.dynamics if own is None or own == self.dynamics.reset else replace(self.dynamics, reset=own)

    @property
    def is_recurrent(self) -> bool:
        return any(layer.recurrent is not None for layer in self.layers)

    @property
    def sizes(self) -> list[int]:
        return [self.n_in] + [layer.n_out for layer in self.layers]

    def require_fixed(self) -> None:
        """Fixed-point runs need integer parameters in Lava's ranges; say which layer breaks them."""
        for layer in self.layers:
            if layer.fixed is None:
                raise GraphError(
                    f"layer '{layer.name}' has no fixed-point parameters: pass --quantize to choose them "
                    "(sne_deploy.simulators.fixed_point.quantize_network in Python)"
                )
            check_fixed_layer(layer)

    def to_dict(self) -> dict[str, Any]:
        """Layers, dt, dynamics and the input's kind as plain data (``metadata`` is the graph's free-form dict; it
        travels in the NIR graph, not here)."""
        return {
            "layers": [layer.to_dict() for layer in self.layers],
            "dt": self.dt,
            "dynamics": self.dynamics.to_dict(),
            "graded_input": self.graded_input,
        }

    @classmethod
    def from_dict(cls, d: Any) -> "Network":
        return plain.record(cls, d, layers=_layers, dt=float, dynamics=Dynamics.from_dict, graded_input=int)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The flat name -> array form handed to the Lava worker (``np.savez``, no pickle)."""
        return {k: np.asarray(v) for k, v in plain.flatten(self.to_dict()).items()}

    @classmethod
    def from_arrays(cls, a: Any) -> "Network":
        return cls.from_dict(plain.unflatten({k: a[k] for k in a.keys()}))


def _layers(xs: Any) -> tuple[Layer, ...]:
    return tuple(Layer.from_dict(x) for x in xs)


def make_layer(
    name: str,
    weight: np.ndarray,
    du: Any,
    dv: Any,
    vth: Any,
    bias: Any = 0.0,
    spiking: bool = True,
    fixed: Optional[FixedLayer] = None,
    ibias: Any = None,
    conv: Optional[ConvGeometry] = None,
    recurrent: Any = None,
) -> Layer:
    """Build a layer, broadcasting scalar vth/bias to one value per neuron."""
    weight = np.asarray(weight, dtype=np.float64)
    if weight.ndim != 2:
        raise GraphError(f"layer '{name}': weight must be 2-D (n_out, n_in), got shape {weight.shape}")
    n = weight.shape[0]
    vth_a = np.broadcast_to(np.asarray(vth, dtype=np.float64), (n,)).copy()
    bias_a = np.broadcast_to(np.asarray(bias, dtype=np.float64), (n,)).copy()
    du, dv = _per_neuron(du, n, name, "du"), _per_neuron(dv, n, name, "dv")
    if not (np.all((0.0 < du) & (du <= 1.0)) and np.all((0.0 <= dv) & (dv <= 1.0))):
        raise GraphError(f"layer '{name}': decays must satisfy 0 < du <= 1 and 0 <= dv <= 1, got du={du}, dv={dv}")
    if not np.all(np.isfinite(weight)):
        raise GraphError(f"layer '{name}': weights contain NaN or inf")
    ibias_a = None if ibias is None else np.broadcast_to(np.asarray(ibias, dtype=np.float64), (n,)).copy()
    rec = None
    if recurrent is not None:
        rec = np.asarray(recurrent, dtype=np.float64)
        if rec.shape != (n, n):
            raise GraphError(f"layer '{name}': recurrent weight must be ({n}, {n}), got shape {rec.shape}")
        if not np.all(np.isfinite(rec)):
            raise GraphError(f"layer '{name}': recurrent weights contain NaN or inf")
    return Layer(name, weight, LIFParams(du, dv, vth_a, bias_a, ibias_a), spiking, fixed, conv, rec)


def _per_neuron(x: Any, n: int, name: str, what: str) -> Any:
    """A decay as a float when the population shares it (the common case, and Lava's), else one
    float per neuron."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim == 0 or a.size == 1:
        return float(a.ravel()[0])
    if a.shape != (n,):
        raise GraphError(f"layer '{name}': {what} has shape {a.shape}, expected one value or {n}")
    return float(a[0]) if np.all(a == a[0]) else a.copy()


def check_fixed_layer(layer: Layer) -> None:
    """Raise :class:`GraphError` when a fixed-point layer leaves Loihi's fields (8-bit even weights,
    17-bit threshold, 12-bit decays, 13-bit bias mantissa)."""
    f = layer.fixed
    assert f is not None
    if (f.recurrent is None) != (layer.recurrent is None):
        raise GraphError(f"layer '{layer.name}': recurrent synapses in one form only (float or fixed point)")
    w = layer.incoming("fixed")
    if w.size and (w.min() < WEIGHT_MIN or w.max() > WEIGHT_MAX):
        raise GraphError(
            f"layer '{layer.name}': integer weights span [{w.min()}, {w.max()}], outside Loihi's 8-bit range [{WEIGHT_MIN}, {WEIGHT_MAX}]"
        )
    if np.any(w % 2):
        raise GraphError(
            f"layer '{layer.name}': odd integer weights; Lava's 8-bit mixed-sign Dense drops the lowest bit, use even weights"
        )
    vth = np.asarray(f.params.vth)
    if vth.min() < 0 or vth.max() > VTH_MAX:
        raise GraphError(f"layer '{layer.name}': integer threshold outside [0, {VTH_MAX}]")
    du_fx, dv_fx = np.asarray(f.params.du_fx), np.asarray(f.params.dv_fx)
    if not (np.all((0 <= du_fx) & (du_fx < DECAY_UNITY)) and np.all((0 <= dv_fx) & (dv_fx < DECAY_UNITY))):
        raise GraphError(f"layer '{layer.name}': decays du_fx={f.params.du_fx}, dv_fx={f.params.dv_fx} outside 12 bits")
    bm = np.asarray(f.params.bias_mant)
    if (
        bm.min(initial=0) < BIAS_MANT_MIN
        or bm.max(initial=0) > BIAS_MANT_MAX
        or not 0 <= f.params.bias_exp <= BIAS_EXP_MAX
    ):
        raise GraphError(f"layer '{layer.name}': bias mantissa/exponent outside Loihi's 13/3-bit fields")
