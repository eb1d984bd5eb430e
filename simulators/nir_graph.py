"""NIR graphs as chains: the topology rules every reader of a graph shares, and the ``sne_``
metadata convention of sne-deploy's own graphs.

:func:`linear_chain` inlines nested subgraphs, folds each neuron's own loop through one weight node
(snnTorch's RLeaky, NIR's recurrent CubaLIF) into that neuron's layer and refuses every other
cycle or branch, so a graph becomes the ordered list of nodes from Input to Output that
:mod:`~sne_deploy.simulators.nir_read` maps onto layers.

Graphs written by sne-deploy carry each layer's exact values in node metadata: the layer's
:meth:`~sne_deploy.simulators.network.Layer.to_dict`, flattened (:mod:`~sne_deploy.simulators.plain`)
under keys starting with ``sne_`` (``sne_params.du``, ``sne_fixed.weight``, ...), split over the
weight, loop and neuron nodes that carry them (:func:`exact_metadata`, :func:`read_exact`).
"""

from __future__ import annotations

from typing import Any, Optional

from . import plain
from .errors import GraphError
from .network import Layer


def nir_module() -> Any:
    import nir  # imported lazily: numpy-only users of the reference backend need not have h5py

    return nir


def _flatten(graph: Any, prefix: str = "") -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Inline nested subgraphs; a subgraph's own Input/Output become pass-through nodes."""
    nir = nir_module()
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
                raise GraphError(
                    f"recurrent edge ({n} -> {m}): a neuron's own loop through one weight node "
                    "(lif -> weight -> the same lif) is supported; other cycles are not"
                )
            if m not in state:
                visit(m)
        state[n] = 2

    for n in list(succ):
        if n not in state:
            visit(n)


def _adjacency(edges: list[tuple[str, str]]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(sources into each node, destinations out of each node) of ``edges``."""
    ins: dict[str, list[str]] = {}
    outs: dict[str, list[str]] = {}
    for s, d in edges:
        outs.setdefault(s, []).append(d)
        ins.setdefault(d, []).append(s)
    return ins, outs


def _self_loops(nodes: dict[str, Any], edges: list[tuple[str, str]]) -> dict[str, str]:
    """{neuron: weight node} for every recurrent loop neuron -> Affine/Linear -> the same neuron
    whose weight node has no other edge (snnTorch's RLeaky and RSynaptic, NIR's recurrent CubaLIF).
    Other cycles stay cycles (and are refused)."""
    nir = nir_module()
    ins, outs = _adjacency(edges)
    loops: dict[str, str] = {}
    for w, node in nodes.items():
        src = ins.get(w, [])
        if (
            isinstance(node, (nir.Affine, nir.Linear))
            and len(src) == 1
            and outs.get(w, []) == src
            and isinstance(nodes[src[0]], (nir.CubaLIF, nir.LIF, nir.IF, nir.LI))
        ):
            if src[0] in loops:
                raise GraphError(f"node '{src[0]}' has two recurrent loops ('{loops[src[0]]}', '{w}'): not supported")
            loops[src[0]] = w
    return loops


def _input_beside_loop(nodes: dict[str, Any], edges: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Edges with every ``x -> w -> lif``, where ``w`` (Affine/Linear) feeds only ``lif`` and also
    takes ``lif -> w``, turned into ``x -> lif`` (the loop ``lif -> w -> lif`` stays)."""
    nir = nir_module()
    ins, outs = _adjacency(edges)
    moved: dict[tuple[str, str], tuple[str, str]] = {}
    for w, node in nodes.items():
        targets = outs.get(w, [])
        if not (isinstance(node, (nir.Affine, nir.Linear)) and len(targets) == 1):
            continue
        lif = targets[0]
        if not isinstance(nodes[lif], (nir.CubaLIF, nir.LIF, nir.IF)) or lif not in ins.get(w, []):
            continue
        for x in ins.get(w, []):
            if x != lif:
                moved[(x, w)] = (x, lif)
    return [moved.get(e, e) for e in edges]


def linear_chain(
    graph: Any, input_through_loop: bool = False
) -> tuple[list[tuple[str, Any]], dict[str, tuple[str, Any]]]:
    """The nodes of the chain, in order from the top-level Input, and the recurrent loops
    ({neuron: (weight node name, weight node)}) taken out of it. ``input_through_loop``: a loop
    written as ``x -> w_rec -> lif <-> w_rec`` is read as ``x -> lif`` with the loop ``lif -> w_rec
    -> lif`` (how Spyx exports RIF, RLIF and RCuBaLIF, which compute ``V + x + W_rec s``)."""
    nir = nir_module()
    nodes, edges = _flatten(graph)
    for s, d in edges:
        for n in (s, d):
            if n not in nodes:
                raise GraphError(f"edge ({s} -> {d}) names an unknown node '{n}'")
    if input_through_loop:
        edges = _input_beside_loop(nodes, edges)
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
            raise GraphError(
                f"recurrent edge into node '{cur}': a neuron's own loop through one weight node (lif -> weight -> "
                "the same lif) is supported; other cycles are not"
            )
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
        raise GraphError(
            f"nodes {sorted(unreached)} are not on the chain from Input to Output (branches are not supported)"
        )
    return order, {n: (w, nodes[w]) for n, w in loops.items()}


EXACT = "sne_"  # the prefix of the exact values' metadata keys
GRADED_KEY = EXACT + "graded_input"  # the graph's metadata: Network.graded_input, when not 0


_SYNAPSE_KEYS = {"weight": "weight", "fixed.weight": "weight", "recurrent": "recurrent", "fixed.recurrent": "recurrent"}


def exact_metadata(layer: Layer) -> dict[str, dict[str, Any]]:
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


def read_exact(*metadata: Optional[dict]) -> dict[str, Any]:
    """The nodes' ``sne_`` keys merged back into the (partial) plain form of one layer."""
    return plain.unflatten({k[len(EXACT) :]: v for m in metadata for k, v in (m or {}).items() if k.startswith(EXACT)})
