"""Writing a :class:`sne_deploy.simulators.network.Network` as a NIR graph.

Each layer becomes an ``Affine`` (or, for a layer made from one convolution, a ``Conv2d`` with its
kernel) and a ``CubaLIF`` whose continuous parameters follow :mod:`~sne_deploy.simulators.nir_read`'s
table with dt = ``network.dt``, so a reader that ignores our metadata (norse, snnTorch, nirtorch)
gets the same dynamics in float; the exact values ride along in ``sne_`` metadata
(:func:`~sne_deploy.simulators.nir_graph.exact_metadata`), so our own reader restores them bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import GraphError
from .linear_maps import conv_kernel
from .network import Layer, Network
from .nir_graph import EXACT, GRADED_KEY, exact_metadata, nir_module


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
    return nir.Conv2d(
        input_shape=np.array(g.in_shape[1:]),
        weight=kernel,
        stride=np.array(g.stride),
        padding=np.array(g.padding),
        dilation=np.array(g.dilation),
        groups=g.groups,
        bias=np.zeros(g.kernel[0]),
        metadata=meta,
    )


def to_nir(network: Network) -> Any:
    """Write a :class:`Network` as a NIR graph (Affine + CubaLIF per layer, exact values in metadata).

    The continuous parameters follow the table above with dt = ``network.dt``, so a reader that
    ignores our metadata (norse, snnTorch, nirtorch) still gets the same dynamics in float.
    """
    nir = nir_module()
    dt = network.dt
    nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.array([network.n_in])})}
    edges, prev = [], "input"
    for i, layer in enumerate(network.layers):
        p, n = layer.params, layer.n_out
        if p.ibias is not None:
            raise GraphError(f"layer '{layer.name}': writing a current bias (ibias) is not supported")
        if layer.delay or layer.reset is not None:  # NIR has no field for either: they would be lost
            raise GraphError(
                f"layer '{layer.name}': writing a spike delay (Spyx's timing) or a layer's own reset is not supported"
            )
        if np.any(np.asarray(p.dv) <= 0):
            raise GraphError(f"layer '{layer.name}': dv = 0 cannot be written as CubaLIF (tau_mem would be infinite)")
        tau_syn, tau_mem = np.full(n, dt / p.du), np.full(n, dt / p.dv)
        exact = exact_metadata(layer)
        nodes[f"fc{i}"] = _conv_node(layer, nir) or nir.Affine(
            weight=layer.weight, bias=np.zeros(n), metadata=exact["weight"]
        )
        if layer.spiking:
            nodes[f"lif{i}"] = nir.CubaLIF(
                tau_syn=tau_syn,
                tau_mem=tau_mem,
                r=tau_mem / dt,
                v_leak=np.asarray(p.bias) * tau_mem / dt,
                v_threshold=np.asarray(p.vth, dtype=np.float64),
                v_reset=np.zeros(n),
                w_in=tau_syn / dt,
                metadata=exact["neuron"],
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
    if network.graded_input:  # NIR has no field for how inputs arrive
        meta[GRADED_KEY] = network.graded_input
    # a Conv2d node reads the flat activity through its input_shape, which NIR's type check rejects
    convs = any(isinstance(v, nir.Conv2d) for v in nodes.values())
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=not convs)
