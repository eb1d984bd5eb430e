"""Reading NIR graphs into a :class:`sne_deploy.simulators.network.Network`.

Time-step convention: NIR's parameters are continuous-time; a graph is discretised with forward
Euler at step ``dt``, taken from (in order) the ``dt`` argument, ``graph.metadata["dt"]``, or 1.
With ``Dynamics(decay="exp")`` every dt / tau below becomes 1 - exp(-dt / tau) (the exact decay
over one step, as sinabs and Rockpool simulate). For a neuron fed by ``Affine(W, b)`` / ``Linear(W)``:

=========  ==========================  ==========================  ===============================
node       du                          dv                          W_eff (row gain g), bias
=========  ==========================  ==========================  ===============================
CubaLIF    dt / tau_syn                dt / tau_mem                g = (dt w_in / tau_syn)(dt r / tau_mem)
LIF        1 (no synaptic memory)      dt / tau                    g = dt r / tau
IF         1                           0                           g = dt r
LI         1                           dt / tau                    g = dt r / tau, never spikes
=========  ==========================  ==========================  ===============================

``bias = dt * v_leak / tau_mem`` (+ ``g * b`` for an Affine bias when du = 1). An Affine bias
feeding a CubaLIF with du < 1 is a constant input into the current, ``ibias = g * b`` added to u
every step: exact on the reference and Brian2; Lava refuses it (Loihi's bias acts on v only). ``v_reset`` must be 0 under the reset to zero
(Loihi resets v to 0); the subtracting resets ignore it, with a warning.

Files are read leniently: ``nir.read``'s type check rejects real exports (norse writes shapes with
a batch dimension, sinabs 0-d time constants and empty shapes), so a file that fails it is read
without it, and the shapes are inferred along the chain here and checked against every weight.
This is the mapping snnTorch and norse use when they export (e.g. snnTorch's ``tau = dt/(1-beta)``,
``r = tau/dt``, so W_eff = W and dv = 1 - beta).

Graphs written by sne-deploy also carry the exact contract values in node metadata: the layer's
:meth:`~sne_deploy.simulators.network.Layer.to_dict`, flattened (:mod:`~sne_deploy.simulators.plain`)
under keys starting with ``sne_`` (``sne_params.du``, ``sne_fixed.weight``, ...), split over the
weight, loop and neuron nodes that carry them; when present they win over the continuous
parameters (which they may refine, never contradict), so float and fixed-point values survive
the round trip bit for bit.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple, Optional, Union

import numpy as np

from .errors import GraphError
from .linear_maps import (
    ConvGeometry,
    conv2d_geometry,
    geometry_matrix,
    sumpool2d_matrix,
)
from .network import FixedLayer, Layer, Network, make_layer
from .neuron import DECAY_UNITY, LOIHI, Dynamics, LIFParams, snap_decay
from .nir_graph import EXACT, GRADED_KEY, linear_chain, nir_module, read_exact
from .presets import PRESETS


class GraphWarning(UserWarning):
    """Something about a graph the user should know but that does not stop the run."""


SUPPORTED = (
    "Input, Affine, Linear, Conv2d, SumPool2d, AvgPool2d, CubaLIF, LIF, IF, LI, Threshold (after LI or a "
    "weight node), Flatten, Output and nested NIRGraph subgraphs"
)


# Tolerance for float noise in decays and unit gains. Exporters store tau in float32 (relative
# error up to 6e-8: snnTorch's dv becomes 0.50000001, its gains 1.00000003, which flips every
# exact tie at threshold); Loihi's decay grid step is 1/4096 = 2.4e-4, so 1e-6 removes storage
# noise and nothing a graph means.
_SNAP = 1e-6


MAX_GRAPH_BYTES = 1 << 30  # what the arrays of one graph may declare before anything is read


def _check_declared_size(path: Path) -> None:
    """Sum the sizes the file's HDF5 datasets declare and refuse absurd ones before ``nir.read``
    allocates them (a small compressed file can declare gigabytes)."""
    import h5py

    total = 0

    def add(_name: str, obj: Any) -> None:
        nonlocal total
        if isinstance(obj, h5py.Dataset):
            total += int(np.prod(obj.shape, dtype=np.float64)) * obj.dtype.itemsize

    try:
        with h5py.File(path, "r") as f:
            f.visititems(add)
    except Exception as e:  # h5py raises OSError and others on a foreign or truncated file
        raise GraphError(f"cannot read NIR graph {path}: {type(e).__name__}: {e}") from None
    if total > MAX_GRAPH_BYTES:
        raise GraphError(
            f"NIR graph {path} declares {total / 2**30:.1f} GiB of arrays in a "
            f"{path.stat().st_size / 2**10:.0f} KiB file (limit {MAX_GRAPH_BYTES / 2**30:.0f} GiB); refusing to load it"
        )


def _positive(name: str, what: str, x: Any) -> Any:
    """A time constant: one number for the population, or one per neuron (reference and Brian2
    take per-neuron decays; Lava's LIF takes one, and refuses the others)."""
    a = np.asarray(x, dtype=np.float64).ravel()
    if a.size == 0 or not np.all(np.isfinite(a) & (a > 0)):
        raise GraphError(f"node '{name}': {what} must be a positive finite time constant, got {a[:4]}")
    return float(a[0]) if np.all(a == a[0]) else a


def _finite(name: str, what: str, x: Any) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise GraphError(f"node '{name}': {what} holds NaN or inf")
    return a


def _snap_gain(x: np.ndarray) -> np.ndarray:
    """Remove float noise from input gains: (1/dv) * dv = 0.9999999999999999, or norse's
    dt * r / (dt / tau_inv) = 0.24999999 for a gain of 1/4. A gain within the storage tolerance
    of a multiple of 1/4096 (Loihi's decay grid, which holds 1 and every gain that equals a
    decay) becomes that multiple, so integer weights stay integer multiples of their gain."""
    x = np.asarray(x, dtype=np.float64)
    grid = np.round(x * DECAY_UNITY) / DECAY_UNITY
    return np.where(np.abs(grid - x) <= _SNAP * np.maximum(1.0, np.abs(x)), grid, x)


def read_graph(path: Path) -> Any:
    """``nir.read``, strict first, then without NIR's type check (see the module docstring)."""
    nir = nir_module()
    if not path.is_file():
        raise GraphError(f"NIR file not found: {path}")
    _check_declared_size(path)
    try:
        return nir.read(str(path))
    except Exception as strict:  # h5py/KeyError/... on a foreign or truncated file, or a type mismatch
        try:
            return nir.read(str(path), type_check=False)
        except Exception:
            raise GraphError(f"cannot read NIR graph {path}: {type(strict).__name__}: {strict}") from None


def from_nir(
    graph_or_path: Union[str, Path, Any],
    dt: Optional[float] = None,
    dynamics: Optional[Dynamics] = None,
    default_dt: float = 1.0,
) -> Network:
    """Read a NIR graph (a ``nir.NIRGraph`` or a file for ``nir.read``) into a :class:`Network`.

    ``dynamics`` (default Loihi's) says how the neurons fire, reset and decay; ``default_dt`` is
    the step used when neither ``dt`` nor the graph states one (a preset's)."""
    nir = nir_module()
    graph = read_graph(Path(graph_or_path)) if isinstance(graph_or_path, (str, Path)) else graph_or_path
    dyn = dynamics or LOIHI
    meta = dict(getattr(graph, "metadata", None) or {})
    dt_from = "--dt"
    if dt is None:
        dt_from = (
            "the graph's metadata"
            if "dt" in meta
            else ("the preset" if default_dt != 1.0 else "the default (the graph states no dt)")
        )
        raw = meta.get("dt", default_dt)
        try:
            dt = float(np.asarray(raw.decode() if isinstance(raw, bytes) else raw))
        except (TypeError, ValueError):
            raise GraphError(f"dt = {raw!r} from {dt_from} is not a number of seconds; pass --dt") from None
    if not (dt > 0 and np.isfinite(dt)):
        raise GraphError(f"dt = {dt:g} from {dt_from} must be a positive number of seconds")

    layers: list[Layer] = []
    pending: Optional[_Linear] = None  # the linear map waiting for its neurons
    shape: Optional[tuple[int, ...]] = None  # of the activity flowing along the chain
    chain, loops = linear_chain(graph, input_through_loop=dyn.gain == "spyx")
    chain = _thresholds(chain, nir)
    channels_last: Optional[tuple[int, ...]] = None  # a (C, H, W) shape Spyx flattened channels-last
    for name, node in chain:
        if isinstance(node, nir.Input):
            shape = tuple(int(s) for s in np.asarray(node.input_type["input"]).ravel())
            continue
        if isinstance(node, nir.Output):
            continue
        if isinstance(node, nir.Flatten):  # our activity is always the C-order flat vector
            assert shape is not None  # the chain starts at the Input node, which sets it
            if dyn.gain == "spyx" and len(shape) == 3:  # Spyx flattens its (H, W, C) arrays
                channels_last = shape
            shape = (int(np.prod(shape)),)
            continue
        if isinstance(node, (nir.Affine, nir.Linear, nir.Conv2d, nir.SumPool2d, nir.AvgPool2d)):
            step = _linear(name, node, shape, nir)
            if channels_last is not None:
                step = replace(step, weight=step.weight[:, _hwc_columns(channels_last)])
                channels_last = None
            pending = step if pending is None else pending.then(step)
            shape = step.out_shape
            continue
        if isinstance(node, (nir.CubaLIF, nir.LIF, nir.IF, nir.LI, _ResetFree)):
            if pending is None:
                raise GraphError(f"neuron node '{name}' has no Affine/Linear/Conv2d node before it")
            rec = None
            if name in loops:  # its own spikes of the last step, through this weight node
                rec = _linear(loops[name][0], loops[name][1], pending.out_shape, nir)
                if rec.weight.shape != (pending.weight.shape[0],) * 2:
                    raise GraphError(
                        f"recurrent node '{rec.name}' has weight {rec.weight.shape}, but '{name}' has "
                        f"{pending.weight.shape[0]} neurons"
                    )
            layers.append(_layer(name, pending, node, dt, nir, dt_from, dyn, rec))
            pending = None
            continue
        raise GraphError(f"node '{name}' of type {type(node).__name__} is not supported (supported: {SUPPORTED})")
    if pending is not None:
        raise GraphError(f"weight node '{pending.name}' is not followed by neurons")
    if not layers:
        raise GraphError("graph has no layers")
    for a, b in zip(layers, layers[1:]):
        if a.n_out != b.n_in:
            raise GraphError(f"layer '{b.name}' expects {b.n_in} inputs but '{a.name}' has {a.n_out} neurons")
    meta.pop("dt", None)
    return Network(
        tuple(layers), dt=dt, metadata=meta, dynamics=dyn, graded_input=_graded_input(meta.pop(GRADED_KEY, 0))
    )


def _graded_input(raw: Any) -> int:
    """The graph's ``sne_graded_input`` metadata (our exporter's; NIR has no field for how inputs
    arrive) as :attr:`Network.graded_input`: a whole number >= 0."""
    try:
        g = float(np.asarray(raw.decode() if isinstance(raw, bytes) else raw))
    except (TypeError, ValueError):
        g = -1.0
    if not (g >= 0 and g == int(g)):
        raise GraphError(f"the graph's {GRADED_KEY} metadata is {raw!r}, not a payload size (a whole number >= 0)")
    return int(g)


@dataclass(frozen=True)
class _ResetFree:
    """A spiking neuron that NIR spells as a ``Threshold`` node: after an ``LI`` a leaky,
    reset-free integrator that spikes where v crosses the threshold (Spyx's PSU_LIF); after a
    weight node a memoryless one (v is this step's input). ``li`` is the LI node, or None."""

    li: Any
    threshold: Any
    metadata: dict


def _thresholds(chain: list[tuple[str, Any]], nir: Any) -> list[tuple[str, Any]]:
    """The chain with each ``Threshold`` folded into the neuron it makes: LI -> Threshold becomes
    one reset-free spiking layer (named by the LI node), a Threshold after a weight node a
    memoryless one."""
    out: list[tuple[str, Any]] = []
    for name, node in chain:
        if not isinstance(node, nir.Threshold):
            out.append((name, node))
            continue
        prev_name, prev = out[-1] if out else ("", None)
        if isinstance(prev, nir.LI):
            out[-1] = (prev_name, _ResetFree(prev, node.threshold, dict(getattr(node, "metadata", None) or {})))
        elif isinstance(prev, (nir.Affine, nir.Linear, nir.Conv2d, nir.SumPool2d, nir.AvgPool2d)):
            out.append((name, _ResetFree(None, node.threshold, dict(getattr(node, "metadata", None) or {}))))
        else:
            raise GraphError(
                f"Threshold node '{name}' follows '{prev_name}' ({type(prev).__name__}); a Threshold spikes from an LI "
                "node's membrane or from a weight node's output"
            )
    return out


@dataclass
class _Linear:
    """A linear map on the flat activity: one NIR weight node, or several composed (no neurons
    between them). ``metadata`` is the node's own, kept only for a single node."""

    name: str
    weight: np.ndarray  # (n_out, n_in)
    bias: np.ndarray  # (n_out,)
    out_shape: tuple[int, ...]
    metadata: dict = field(default_factory=dict)
    conv: Optional[ConvGeometry] = None  # a single Conv2d node's geometry (composed maps have none)

    def then(self, nxt: "_Linear") -> "_Linear":
        return _Linear(
            f"{self.name}+{nxt.name}", nxt.weight @ self.weight, nxt.weight @ self.bias + nxt.bias, nxt.out_shape
        )


def _linear(name: str, node: Any, shape: Optional[tuple[int, ...]], nir: Any) -> _Linear:
    """The dense matrix of an Affine/Linear/Conv2d/SumPool2d/AvgPool2d node fed with activity of
    ``shape``. AvgPool2d (snnTorch and SpikingJelly export it) is SumPool2d / (kh kw), as
    PyTorch's average pooling counts padded zeros."""
    n_in = int(np.prod(shape)) if shape else None
    if isinstance(node, (nir.Affine, nir.Linear)):
        weight = np.asarray(node.weight, dtype=np.float64)
        if weight.ndim != 2:
            raise GraphError(f"node '{name}': weight must be 2-D, got shape {weight.shape}")
        if n_in is not None and weight.shape[1] != n_in and not (shape and shape[-1] == weight.shape[1]):
            # (a shape whose last axis fits has leading batch or time axes: sinabs writes (T, n), norse (1, n))
            raise GraphError(f"node '{name}': weight takes {weight.shape[1]} inputs, gets {n_in} (shape {shape})")
        bias = np.broadcast_to(np.asarray(getattr(node, "bias", 0.0), dtype=np.float64).ravel(), (weight.shape[0],))
        return _Linear(name, weight, bias.copy(), (weight.shape[0],), dict(node.metadata or {}))
    if shape is None:
        raise GraphError(f"node '{name}': the input shape is unknown (give the Input node a shape)")
    if len(shape) > 3:  # (batch or time, C, H, W) as some exporters write it: the frame is the last three
        shape = shape[-3:]
    try:
        if isinstance(node, nir.Conv2d):
            c_in = np.asarray(node.weight).shape[1] * int(node.groups)
            if len(shape) == 1 and node.input_shape is not None:  # a flat vector: take the node's own shape
                shape = (c_in, *(int(s) for s in node.input_shape))
                if int(np.prod(shape)) != n_in:
                    raise GraphError(f"input of {n_in} values does not fit input_shape {shape}")
            kernel = np.asarray(node.weight, dtype=np.float64)
            geom = conv2d_geometry(kernel.shape, shape, node.stride, node.padding, node.dilation, int(node.groups))
            matrix, out = geometry_matrix(kernel, geom), geom.out_shape
            bias = np.repeat(
                np.broadcast_to(np.asarray(node.bias, dtype=np.float64).ravel(), (out[0],)), out[1] * out[2]
            )
            # sne-deploy's exact kernels (float and fixed point) become the exact matrices
            meta = {
                k.replace("kernel", "weight"): geometry_matrix(np.asarray(v), geom)
                for k, v in dict(node.metadata or {}).items()
                if k in (EXACT + "kernel", EXACT + "fixed.kernel")
            }
            return _Linear(name, matrix, bias, out, meta, conv=geom)
        else:
            matrix, out = sumpool2d_matrix(shape, node.kernel_size, node.stride, node.padding)
            if isinstance(node, nir.AvgPool2d):
                matrix = matrix / float(np.prod(np.broadcast_to(np.asarray(node.kernel_size), (2,))))
            bias = np.zeros(matrix.shape[0])
    except GraphError as e:
        raise GraphError(f"node '{name}': {e}") from None
    return _Linear(name, matrix, bias, out)


def _hwc_columns(chw: tuple[int, ...]) -> np.ndarray:
    """For each element of a C-order (C, H, W) flat vector, its index in the (H, W, C) flat
    vector: the columns of a weight written for a channels-last flatten, in our order."""
    c, h, w = chw
    return np.arange(c * h * w).reshape(h, w, c).transpose(2, 0, 1).ravel()


def _fmt(x: Any) -> str:
    a = np.asarray(x, dtype=np.float64)
    return f"{float(a):.8g}" if a.ndim == 0 else f"{a.min():.8g}..{a.max():.8g} (per neuron)"


def _rate(dt: float, tau: Any, dyn: Dynamics) -> Any:
    """The per-step factor that stands for dt / tau: itself (forward Euler) or 1 - exp(-dt / tau)."""
    return dt / tau if dyn.decay == "euler" else -np.expm1(-dt / tau)


def _gain(dt: float, tau: Any, x: np.ndarray, dyn: Dynamics) -> np.ndarray:
    """x * dt / tau, evaluated as (dt * x) / tau under Euler (as it always was), else x * rate."""
    return dt * x / tau if dyn.decay == "euler" else x * _rate(dt, tau, dyn)


class _Continuous(NamedTuple):
    """A neuron node's continuous parameters as per-step values (the module docstring's table)."""

    du: Any
    dv: Any
    gain: Any  # the row gain on the incoming weights
    bias: Any  # on v


def _continuous(name: str, node: Any, dt: float, dyn: Dynamics, n: int, nir: Any) -> _Continuous:
    """du, dv, input gain and v bias of a CubaLIF, LIF, LI or IF node at step ``dt``."""
    if isinstance(node, nir.CubaLIF):
        tau_syn = _positive(name, "tau_syn", node.tau_syn)
        tau_mem = _positive(name, "tau_mem", node.tau_mem)
        if dyn.gain == "spyx":  # I = alpha I + x, V = beta V + I
            gain = np.ones(n)
        elif dyn.gain == "rockpool":  # isyn = (isyn + input) * e^(-dt/tau_syn), v gets isyn undecayed
            gain = np.exp(-dt / np.asarray(tau_syn, dtype=np.float64))
        elif dyn.gain == "norse":  # i = i + w_in input, v += dt/tau_mem (r i - v): no dt/tau_syn on the input
            gain = _finite(name, "w_in", node.w_in) * _gain(dt, tau_mem, _finite(name, "r", node.r), dyn)
        else:
            gain = _gain(dt, tau_syn, _finite(name, "w_in", node.w_in), dyn) * _gain(
                dt, tau_mem, _finite(name, "r", node.r), dyn
            )
        return _Continuous(
            _rate(dt, tau_syn, dyn),
            _rate(dt, tau_mem, dyn),
            gain,
            _gain(dt, tau_mem, _finite(name, "v_leak", node.v_leak), dyn),
        )
    if isinstance(node, _ResetFree):
        if node.li is None:  # memoryless: v is this step's input
            return _Continuous(1.0, 1.0, np.ones(n), np.zeros(n))
        node = node.li
    if isinstance(node, (nir.LIF, nir.LI)):
        tau = _positive(name, "tau", node.tau)
        gain = np.ones(n) if dyn.gain in ("rockpool", "spyx") else _gain(dt, tau, _finite(name, "r", node.r), dyn)
        return _Continuous(1.0, _rate(dt, tau, dyn), gain, _gain(dt, tau, _finite(name, "v_leak", node.v_leak), dyn))
    r = _finite(name, "r", node.r)  # IF; norse's IAFCell adds its input whatever dt is
    return _Continuous(1.0, 0.0, r if dyn.gain in ("norse", "spyx") else dt * r, np.zeros(n))


def _check_v_reset(name: str, node: Any, dyn: Dynamics) -> None:
    v_reset = getattr(node, "v_reset", None)
    if v_reset is not None and np.any(np.asarray(v_reset) != 0):
        if dyn.reset == "zero":
            raise GraphError(f"node '{name}': v_reset must be 0 (Loihi resets v to 0), got {np.unique(v_reset)[:4]}")
        warnings.warn(
            f"node '{name}': v_reset = {np.unique(v_reset)[:4]} is ignored by the '{dyn.reset}' reset",
            GraphWarning,
            stacklevel=2,
        )


def _layer(
    name: str,
    pending: _Linear,
    node: Any,
    dt: float,
    nir: Any,
    dt_from: str = "--dt",
    dyn: Dynamics = LOIHI,
    rec: Optional[_Linear] = None,
) -> Layer:
    """The layer of neuron node ``node`` fed by ``pending`` (and by ``rec``, its recurrent loop:
    the same gain, and its bias is one more constant input)."""
    weight, aff_bias = pending.weight, pending.bias if rec is None else pending.bias + rec.bias
    n = weight.shape[0]
    spiking = not isinstance(node, nir.LI)
    reset_free = isinstance(node, _ResetFree)
    if not reset_free:
        _check_v_reset(name, node, dyn)
    du, dv, gain, bias = _continuous(name, node, dt, dyn, n, nir)
    if not (np.all((0.0 < du) & (du <= 1.0 + _SNAP)) and np.all((0.0 <= dv) & (dv <= 1.0 + _SNAP))):
        raise GraphError(
            f"node '{name}': dt / tau gives du = {_fmt(du)}, dv = {_fmt(dv)} with dt = {dt:g} from {dt_from}, but decays must "
            f"lie in (0, 1]; NIR files rarely state their time step: pass the one the graph was made for with --dt "
            f"or name the library that wrote it with --preset {'|'.join(PRESETS)}"
        )
    if not np.all(np.isfinite(weight)) or not np.all(np.isfinite(aff_bias)):
        raise GraphError(f"node '{pending.name}': weights or bias hold NaN or inf")
    gain = np.broadcast_to(_snap_gain(gain).ravel(), (n,))
    bias = np.asarray(bias).ravel()
    ibias = None
    if np.any(aff_bias != 0):
        if np.all(np.asarray(snap_decay(du, _SNAP)) == 1.0):
            bias = bias + gain * aff_bias  # no synaptic memory: the current is the input, so a bias on v
        else:  # a constant input into a CubaLIF's current (reference and Brian2; Lava refuses it)
            ibias = gain * aff_bias
    if reset_free:
        vth = np.broadcast_to(_finite(name, "threshold", node.threshold).ravel(), (n,))
    else:
        vth = _finite(name, "v_threshold", node.v_threshold).ravel() if spiking else np.full(n, np.inf)
    du, dv = snap_decay(du, _SNAP), snap_decay(dv, _SNAP)
    weight_eff = weight * gain[:, None]
    rec_eff = None if rec is None else rec.weight * gain[:, None]

    # exact contract values written by sne-deploy's exporter win over the continuous ones
    exact = read_exact(node.metadata, pending.metadata, {} if rec is None else rec.metadata)
    if "params" in exact:
        p = LIFParams.from_dict(exact["params"])
        w = np.asarray(exact.get("weight", weight_eff), dtype=np.float64)
        _check_metadata_agrees(name, (du, dv, vth, bias, weight_eff), (p.du, p.dv, p.vth, p.bias, w))
        du, dv, vth, bias, weight_eff = p.du, p.dv, p.vth, p.bias, w
        if rec is not None and "recurrent" in exact:
            rec_eff = np.asarray(exact["recurrent"], dtype=np.float64)
    f = exact.get("fixed", {})
    fixed = FixedLayer.from_dict(f) if {"params", "weight"} <= f.keys() and (rec is None or "recurrent" in f) else None
    try:
        layer = make_layer(
            name,
            weight_eff,
            du,
            dv,
            vth,
            bias,
            spiking=spiking,
            fixed=fixed,
            ibias=ibias,
            conv=pending.conv,
            recurrent=rec_eff,
        )
    except GraphError as e:
        raise GraphError(f"node '{name}': {e}") from None
    if reset_free:
        return replace(layer, reset="none") if dyn.reset != "none" else layer
    return _spyx_timing(layer, node, dyn, nir) if dyn.gain == "spyx" else layer


def _spyx_timing(layer: Layer, node: Any, dyn: Dynamics, nir: Any) -> Layer:
    """How Spyx steps its LIF, IF and CuBaLIF (``spikes = H(V - thr)`` before ``V`` takes this
    step's input): the spike of a step is the delay-free neuron's of the step before (delay 1),
    and a CuBaLIF takes the threshold off before its membrane decays (``subtract``). Spyx's LI
    (a readout) and LI -> Threshold (``PSU_LIF``) have no such delay."""
    if not layer.spiking:
        return layer
    reset = "subtract" if isinstance(node, nir.CubaLIF) and dyn.reset == "subtract-next" else layer.reset
    return replace(layer, delay=1, reset=reset)


def _check_metadata_agrees(name: str, standard: tuple, exact: tuple) -> None:
    """The exact ``sne_*`` values may only refine the standard NIR fields, never contradict them:
    a graph whose weights, thresholds, biases or time constants were edited (or zeroed, or made
    NaN) after export is refused instead of silently running the metadata."""
    for what, a, b in zip(("du", "dv", "v_threshold", "bias", "weight"), standard, exact):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if a.shape != b.shape and a.size != 1 and b.size != 1:
            raise GraphError(f"node '{name}': its sne_* metadata gives {what} of shape {b.shape}, the graph {a.shape}")
        if not np.allclose(a, b, rtol=1e-9, atol=1e-12):
            raise GraphError(
                f"node '{name}': its exact sne_* metadata disagrees with the graph's standard {what} "
                "(edited after export?)"
            )
