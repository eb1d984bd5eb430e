"""NIR graphs <-> :class:`sne_deploy.simulators.network.Network`.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from .linear_maps import ConvGeometry, conv2d_geometry, conv_kernel, geometry_matrix, sumpool2d_matrix
from . import plain
from .errors import GraphError
from .network import FixedLayer, Layer, Network, make_layer
from .neuron import DECAY_UNITY, LOIHI, Dynamics, LIFParams, snap_decay


class GraphWarning(UserWarning):
    """Something about a graph the user should know but that does not stop the run."""

SUPPORTED = ("Input, Affine, Linear, Conv2d, SumPool2d, AvgPool2d, CubaLIF, LIF, IF, LI, Flatten, Output "
             "and nested NIRGraph subgraphs")
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
        raise GraphError(f"NIR graph {path} declares {total / 2**30:.1f} GiB of arrays in a "
                         f"{path.stat().st_size / 2**10:.0f} KiB file (limit {MAX_GRAPH_BYTES / 2**30:.0f} GiB); refusing to load it")


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


def _nir() -> Any:
    import nir  # imported lazily: numpy-only users of the reference backend need not have h5py

    return nir


def _snap_gain(x: np.ndarray) -> np.ndarray:
    """Remove float noise from input gains: (1/dv) * dv = 0.9999999999999999, or norse's
    dt * r / (dt / tau_inv) = 0.24999999 for a gain of 1/4. A gain within the storage tolerance
    of a multiple of 1/4096 (Loihi's decay grid, which holds 1 and every gain that equals a
    decay) becomes that multiple, so integer weights stay integer multiples of their gain."""
    x = np.asarray(x, dtype=np.float64)
    grid = np.round(x * DECAY_UNITY) / DECAY_UNITY
    return np.where(np.abs(grid - x) <= _SNAP * np.maximum(1.0, np.abs(x)), grid, x)


def _flatten(graph: Any, prefix: str = "") -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Inline nested subgraphs; a subgraph's own Input/Output become pass-through nodes."""
    nir = _nir()
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    entry: dict[str, str] = {}
    exit_: dict[str, str] = {}
    for name, node in graph.nodes.items():
        full = prefix + name
        if isinstance(node, nir.NIRGraph):
            sub_nodes, sub_edges = _flatten(node, full + ".")
            nodes.update(sub_nodes)
            edges += sub_edges
            ins = [n for n, v in node.nodes.items() if isinstance(v, nir.Input)]
            outs = [n for n, v in node.nodes.items() if isinstance(v, nir.Output)]
            if len(ins) != 1 or len(outs) != 1:
                raise GraphError(f"subgraph '{full}': needs exactly one Input and one Output node")
            entry[full], exit_[full] = f"{full}.{ins[0]}", f"{full}.{outs[0]}"
        else:
            nodes[full] = node
    for src, dst in graph.edges:
        s, d = prefix + src, prefix + dst
        edges.append((exit_.get(s, s), entry.get(d, d)))
    return nodes, edges


def _reject_cycles(succ: dict[str, list[str]]) -> None:
    """Name the first back edge found. A neuron's own loop through one weight node (lif -> w -> lif)
    was already folded into its layer's recurrent synapses; any other cycle cannot run here."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(n: str) -> None:
        state[n] = 1
        for m in succ.get(n, []):
            if state.get(m) == 1:
                raise GraphError(f"recurrent edge ({n} -> {m}): a neuron's own loop through one weight node "
                                 "(lif -> weight -> the same lif) is supported; other cycles are not")
            if m not in state:
                visit(m)
        state[n] = 2

    for n in list(succ):
        if n not in state:
            visit(n)


def _self_loops(nodes: dict[str, Any], edges: list[tuple[str, str]]) -> dict[str, str]:
    """{neuron: weight node} for every recurrent loop neuron -> Affine/Linear -> the same neuron
    whose weight node has no other edge (snnTorch's RLeaky and RSynaptic, NIR's recurrent CubaLIF).
    Other cycles stay cycles (and are refused)."""
    nir = _nir()
    ins: dict[str, list[str]] = {}
    outs: dict[str, list[str]] = {}
    for s, d in edges:
        outs.setdefault(s, []).append(d)
        ins.setdefault(d, []).append(s)
    loops: dict[str, str] = {}
    for w, node in nodes.items():
        src = ins.get(w, [])
        if (isinstance(node, (nir.Affine, nir.Linear)) and len(src) == 1 and outs.get(w, []) == src
                and isinstance(nodes[src[0]], (nir.CubaLIF, nir.LIF, nir.IF, nir.LI))):
            if src[0] in loops:
                raise GraphError(f"node '{src[0]}' has two recurrent loops ('{loops[src[0]]}', '{w}'): not supported")
            loops[src[0]] = w
    return loops


def _chain(graph: Any) -> tuple[list[tuple[str, Any]], dict[str, tuple[str, Any]]]:
    """The nodes of the chain, in order from the top-level Input, and the recurrent loops
    ({neuron: (weight node name, weight node)}) taken out of it."""
    nir = _nir()
    nodes, edges = _flatten(graph)
    for s, d in edges:
        for n in (s, d):
            if n not in nodes:
                raise GraphError(f"edge ({s} -> {d}) names an unknown node '{n}'")
    loops = _self_loops(nodes, edges)
    loop_nodes = set(loops.values())
    succ: dict[str, list[str]] = {}
    for s, d in edges:
        if s not in loop_nodes and d not in loop_nodes:
            succ.setdefault(s, []).append(d)
    _reject_cycles(succ)
    inputs = [n for n, v in graph.nodes.items() if isinstance(v, nir.Input)]
    if len(inputs) != 1:
        raise GraphError(f"graph needs exactly one top-level Input node, found {len(inputs)}")
    order, seen, cur = [], set(), inputs[0]
    while True:
        if cur in seen:
            raise GraphError(f"recurrent edge into node '{cur}': only feed-forward graphs are supported")
        seen.add(cur)
        order.append((cur, nodes[cur]))
        nxt = succ.get(cur, [])
        if len(nxt) > 1:
            raise GraphError(f"node '{cur}' branches to {nxt}: only feed-forward chains are supported")
        if not nxt:
            break
        cur = nxt[0]
    if not isinstance(order[-1][1], nir.Output) or (len(order) > 1 and order[-1][0].count(".") > 0):
        raise GraphError(f"the chain from '{inputs[0]}' ends at '{order[-1][0]}', not at the graph's Output")
    unreached = set(n for n in nodes if not isinstance(nodes[n], (nir.Input, nir.Output))) - seen - loop_nodes
    if unreached:
        raise GraphError(f"nodes {sorted(unreached)} are not on the chain from Input to Output (branches are not supported)")
    return order, {n: (w, nodes[w]) for n, w in loops.items()}


def read_graph(path: Path) -> Any:
    """``nir.read``, strict first, then without NIR's type check (see the module docstring)."""
    nir = _nir()
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


def from_nir(graph_or_path: Union[str, Path, Any], dt: Optional[float] = None, dynamics: Optional[Dynamics] = None,
             default_dt: float = 1.0) -> Network:
    """Read a NIR graph (a ``nir.NIRGraph`` or a file for ``nir.read``) into a :class:`Network`.

    ``dynamics`` (default Loihi's) says how the neurons fire, reset and decay; ``default_dt`` is
    the step used when neither ``dt`` nor the graph states one (a preset's)."""
    nir = _nir()
    graph = read_graph(Path(graph_or_path)) if isinstance(graph_or_path, (str, Path)) else graph_or_path
    dyn = dynamics or LOIHI
    meta = dict(getattr(graph, "metadata", None) or {})
    dt_from = "--dt"
    if dt is None:
        dt_from = "the graph's metadata" if "dt" in meta else (
            "the preset" if default_dt != 1.0 else "the default (the graph states no dt)")
        dt = float(np.asarray(meta.get("dt", default_dt)))
    if not dt > 0:
        raise GraphError(f"dt must be positive, got {dt}")

    layers: list[Layer] = []
    pending: Optional[_Linear] = None  # the linear map waiting for its neurons
    shape: Optional[tuple[int, ...]] = None  # of the activity flowing along the chain
    chain, loops = _chain(graph)
    for name, node in chain:
        if isinstance(node, nir.Input):
            shape = tuple(int(s) for s in np.asarray(node.input_type["input"]).ravel())
            continue
        if isinstance(node, nir.Output):
            continue
        if isinstance(node, nir.Flatten):  # our activity is always the C-order flat vector
            shape = (int(np.prod(shape)),)
            continue
        if isinstance(node, (nir.Affine, nir.Linear, nir.Conv2d, nir.SumPool2d, nir.AvgPool2d)):
            step = _linear(name, node, shape, nir)
            pending = step if pending is None else pending.then(step)
            shape = step.out_shape
            continue
        if isinstance(node, (nir.CubaLIF, nir.LIF, nir.IF, nir.LI)):
            if pending is None:
                raise GraphError(f"neuron node '{name}' has no Affine/Linear/Conv2d node before it")
            rec = None
            if name in loops:  # its own spikes of the last step, through this weight node
                rec = _linear(loops[name][0], loops[name][1], pending.out_shape, nir)
                if rec.weight.shape != (pending.weight.shape[0],) * 2:
                    raise GraphError(f"recurrent node '{rec.name}' has weight {rec.weight.shape}, but '{name}' has "
                                     f"{pending.weight.shape[0]} neurons")
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
    return Network(tuple(layers), dt=dt, metadata=meta, dynamics=dyn)


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
        return _Linear(f"{self.name}+{nxt.name}", nxt.weight @ self.weight, nxt.weight @ self.bias + nxt.bias,
                       nxt.out_shape)


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
            bias = np.repeat(np.broadcast_to(np.asarray(node.bias, dtype=np.float64).ravel(), (out[0],)), out[1] * out[2])
            # sne-deploy's exact kernels (float and fixed point) become the exact matrices
            meta = {k.replace("kernel", "weight"): geometry_matrix(np.asarray(v), geom)
                    for k, v in dict(node.metadata or {}).items() if k in (EXACT + "kernel", EXACT + "fixed.kernel")}
            return _Linear(name, matrix, bias, out, meta, conv=geom)
        else:
            matrix, out = sumpool2d_matrix(shape, node.kernel_size, node.stride, node.padding)
            if isinstance(node, nir.AvgPool2d):
                matrix = matrix / float(np.prod(np.broadcast_to(np.asarray(node.kernel_size), (2,))))
            bias = np.zeros(matrix.shape[0])
    except GraphError as e:
        raise GraphError(f"node '{name}': {e}") from None
    return _Linear(name, matrix, bias, out)


def _fmt(x: Any) -> str:
    a = np.asarray(x, dtype=np.float64)
    return f"{float(a):.8g}" if a.ndim == 0 else f"{a.min():.8g}..{a.max():.8g} (per neuron)"


def _rate(dt: float, tau: Any, dyn: Dynamics) -> Any:
    """The per-step factor that stands for dt / tau: itself (forward Euler) or 1 - exp(-dt / tau)."""
    return dt / tau if dyn.decay == "euler" else -np.expm1(-dt / tau)


def _gain(dt: float, tau: Any, x: np.ndarray, dyn: Dynamics) -> np.ndarray:
    """x * dt / tau, evaluated as (dt * x) / tau under Euler (as it always was), else x * rate."""
    return dt * x / tau if dyn.decay == "euler" else x * _rate(dt, tau, dyn)


def _layer(name: str, pending: _Linear, node: Any, dt: float, nir: Any, dt_from: str = "--dt",
           dyn: Dynamics = LOIHI, rec: Optional[_Linear] = None) -> Layer:
    """The layer of neuron node ``node`` fed by ``pending`` (and by ``rec``, its recurrent loop:
    the same gain, and its bias is one more constant input)."""
    wname, weight, aff_bias = pending.name, pending.weight, pending.bias
    if rec is not None:
        aff_bias = aff_bias + rec.bias
    n = weight.shape[0]
    spiking = not isinstance(node, nir.LI)

    v_reset = getattr(node, "v_reset", None)
    if v_reset is not None and np.any(np.asarray(v_reset) != 0):
        if dyn.reset == "zero":
            raise GraphError(f"node '{name}': v_reset must be 0 (Loihi resets v to 0), got {np.unique(v_reset)[:4]}")
        warnings.warn(f"node '{name}': v_reset = {np.unique(v_reset)[:4]} is ignored by the '{dyn.reset}' reset", GraphWarning)

    if isinstance(node, nir.CubaLIF):
        tau_syn = _positive(name, "tau_syn", node.tau_syn)
        tau_mem = _positive(name, "tau_mem", node.tau_mem)
        du, dv = _rate(dt, tau_syn, dyn), _rate(dt, tau_mem, dyn)
        gain = _gain(dt, tau_syn, _finite(name, "w_in", node.w_in), dyn) * _gain(dt, tau_mem, _finite(name, "r", node.r), dyn)
        bias = _gain(dt, tau_mem, _finite(name, "v_leak", node.v_leak), dyn)
    elif isinstance(node, (nir.LIF, nir.LI)):
        tau = _positive(name, "tau", node.tau)
        du, dv = 1.0, _rate(dt, tau, dyn)
        gain = _gain(dt, tau, _finite(name, "r", node.r), dyn)
        bias = _gain(dt, tau, _finite(name, "v_leak", node.v_leak), dyn)
    else:  # IF
        du, dv = 1.0, 0.0
        gain = dt * _finite(name, "r", node.r)
        bias = np.zeros(n)
    if not (np.all((0.0 < du) & (du <= 1.0 + _SNAP)) and np.all((0.0 <= dv) & (dv <= 1.0 + _SNAP))):
        raise GraphError(
            f"node '{name}': dt / tau gives du = {_fmt(du)}, dv = {_fmt(dv)} with dt = {dt:g} from {dt_from}, but decays must "
            f"lie in (0, 1]; NIR files rarely state their time step: pass the one the graph was made for with --dt "
            f"or name the library that wrote it with --preset snntorch|norse|sinabs|spikingjelly")
    if not np.all(np.isfinite(weight)) or not np.all(np.isfinite(aff_bias)):
        raise GraphError(f"node '{wname}': weights or bias hold NaN or inf")
    gain = np.broadcast_to(_snap_gain(gain).ravel(), (n,))
    bias = np.asarray(bias).ravel()
    ibias = None
    if np.any(aff_bias != 0):
        if np.all(np.asarray(snap_decay(du, _SNAP)) == 1.0):
            bias = bias + gain * aff_bias  # no synaptic memory: the current is the input, so a bias on v
        else:  # a constant input into a CubaLIF's current (reference and Brian2; Lava refuses it)
            ibias = gain * aff_bias
    vth = _finite(name, "v_threshold", node.v_threshold).ravel() if spiking else np.full(n, np.inf)
    du, dv = snap_decay(du, _SNAP), snap_decay(dv, _SNAP)
    weight_eff = weight * gain[:, None]
    rec_eff = None if rec is None else rec.weight * gain[:, None]

    # exact contract values written by sne-deploy's exporter win over the continuous ones
    exact = _read_exact(node.metadata, pending.metadata, {} if rec is None else rec.metadata)
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
        return make_layer(name, weight_eff, du, dv, vth, bias, spiking=spiking, fixed=fixed, ibias=ibias,
                          conv=pending.conv, recurrent=rec_eff)
    except GraphError as e:
        raise GraphError(f"node '{name}': {e}") from None


EXACT = "sne_"  # the prefix of the exact values' metadata keys
_SYNAPSE_KEYS = {"weight": "weight", "fixed.weight": "weight", "recurrent": "recurrent", "fixed.recurrent": "recurrent"}


def _exact_metadata(layer: Layer) -> dict[str, dict[str, Any]]:
    """A layer's exact values (:meth:`Layer.to_dict`, flattened, keys prefixed ``sne_``) split by
    the node that carries them: ``weight`` (its input synapses, float and fixed point),
    ``recurrent`` (the loop's weight node) and ``neuron`` (the parameters). Name, spiking and
    convolution geometry are the graph's own structure, not metadata."""
    out: dict[str, dict[str, Any]] = {"weight": {}, "recurrent": {}, "neuron": {}}
    for key, value in plain.flatten(layer.to_dict()).items():
        if key.startswith(("params.", "fixed.params.")):
            out["neuron"][EXACT + key] = value
        elif key in _SYNAPSE_KEYS:
            out[_SYNAPSE_KEYS[key]][EXACT + key] = value
    return out


def _read_exact(*metadata: Optional[dict]) -> dict[str, Any]:
    """The nodes' ``sne_`` keys merged back into the (partial) plain form of one layer."""
    return plain.unflatten({k[len(EXACT):]: v for m in metadata for k, v in (m or {}).items() if k.startswith(EXACT)})


def _check_metadata_agrees(name: str, standard: tuple, exact: tuple) -> None:
    """The exact ``sne_*`` values may only refine the standard NIR fields, never contradict them:
    a graph whose weights, thresholds, biases or time constants were edited (or zeroed, or made
    NaN) after export is refused instead of silently running the metadata."""
    for what, a, b in zip(("du", "dv", "v_threshold", "bias", "weight"), standard, exact):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if a.shape != b.shape and a.size != 1 and b.size != 1:
            raise GraphError(f"node '{name}': its sne_* metadata gives {what} of shape {b.shape}, the graph {a.shape}")
        if not np.allclose(a, b, rtol=1e-9, atol=1e-12):
            raise GraphError(f"node '{name}': its exact sne_* metadata disagrees with the graph's standard {what} "
                             "(edited after export?)")


def _conv_node(layer: Layer, nir: Any) -> Any:
    """A layer made from one convolution, written as NIR ``Conv2d`` (its kernel, exact values in
    ``sne_kernel`` / ``sne_fixed.kernel`` metadata) instead of the unrolled matrix; None when the layer is no convolution
    (or its matrices no longer are)."""
    g = layer.conv
    if g is None:
        return None
    kernel = conv_kernel(layer.weight, g)
    kernel_int = None if layer.fixed is None else conv_kernel(layer.fixed.weight.astype(np.float64), g)
    if kernel is None or (layer.fixed is not None and kernel_int is None):
        return None
    meta: dict[str, Any] = {EXACT + "kernel": kernel}
    if kernel_int is not None:
        meta[EXACT + "fixed.kernel"] = kernel_int.astype(np.int64)
    return nir.Conv2d(input_shape=np.array(g.in_shape[1:]), weight=kernel, stride=np.array(g.stride),
                      padding=np.array(g.padding), dilation=np.array(g.dilation), groups=g.groups,
                      bias=np.zeros(g.kernel[0]), metadata=meta)


def to_nir(network: Network) -> Any:
    """Write a :class:`Network` as a NIR graph (Affine + CubaLIF per layer, exact values in metadata).

    The continuous parameters follow the table above with dt = ``network.dt``, so a reader that
    ignores our metadata (norse, snnTorch, nirtorch) still gets the same dynamics in float.
    """
    nir = _nir()
    dt = network.dt
    nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.array([network.n_in])})}
    edges, prev = [], "input"
    for i, layer in enumerate(network.layers):
        p, n = layer.params, layer.n_out
        if p.ibias is not None:
            raise GraphError(f"layer '{layer.name}': writing a current bias (ibias) is not supported")
        if np.any(np.asarray(p.dv) <= 0):
            raise GraphError(f"layer '{layer.name}': dv = 0 cannot be written as CubaLIF (tau_mem would be infinite)")
        tau_syn, tau_mem = np.full(n, dt / p.du), np.full(n, dt / p.dv)
        exact = _exact_metadata(layer)
        nodes[f"fc{i}"] = _conv_node(layer, nir) or nir.Affine(weight=layer.weight, bias=np.zeros(n), metadata=exact["weight"])
        if layer.spiking:
            nodes[f"lif{i}"] = nir.CubaLIF(
                tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / dt, v_leak=np.asarray(p.bias) * tau_mem / dt,
                v_threshold=np.asarray(p.vth, dtype=np.float64), v_reset=np.zeros(n), w_in=tau_syn / dt, metadata=exact["neuron"],
            )
        else:
            raise GraphError(f"layer '{layer.name}': writing non-spiking layers is not supported")
        edges += [(prev, f"fc{i}"), (f"fc{i}", f"lif{i}")]
        if layer.recurrent is not None:  # the loop lif -> rec -> lif; exact values in its metadata too
            nodes[f"rec{i}"] = nir.Affine(weight=layer.recurrent, bias=np.zeros(n), metadata=exact["recurrent"])
            edges += [(f"lif{i}", f"rec{i}"), (f"rec{i}", f"lif{i}")]
        prev = f"lif{i}"
    nodes["output"] = nir.Output(output_type={"output": np.array([network.n_out])})
    edges.append((prev, "output"))
    meta = {k: v for k, v in network.metadata.items()}
    meta["dt"] = dt
    # a Conv2d node reads the flat activity through its input_shape, which NIR's type check rejects
    convs = any(isinstance(v, nir.Conv2d) for v in nodes.values())
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=not convs)
