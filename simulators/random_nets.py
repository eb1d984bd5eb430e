"""Random ternary networks for tests and benchmarks, with consistent float and fixed-point forms.

Weights are ternary {-1, 0, +1}; thresholds and biases are drawn as integers on the fixed-point
grid and mapped by the deployment rule (:func:`sne_deploy.simulators.fixed_point.fold_ternary`) with one even
scale ``s``, so the float and fixed-point forms compute the same spikes.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .fixed_point import ACT_UNIT, fold_ternary
from .network import Network
from .neuron import decays_to_fixed


def random_ternary_network(
    sizes: Sequence[int],
    seed: int = 0,
    du: float = 1.0,
    dv: float = 0.25,
    with_bias: bool = False,
    scale: int = 2,
    density: float = 0.5,
) -> Network:
    rng = np.random.default_rng(seed)
    layers = []
    decays_to_fixed(du, dv)  # fail before drawing anything when the decays cannot go to Loihi
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = rng.choice([-1, 0, 1], size=(n_out, n_in), p=[density / 2, 1 - density, density / 2]).astype(np.int64)
        # threshold around the typical input a neuron receives, so layers spike but not always
        vth_int = max(1, int(round(scale * rng.uniform(1.0, 3.0))))
        bias_eff = (rng.integers(-20, 40, size=n_out) * scale) if with_bias else np.zeros(n_out, np.int64)
        layers.append(
            fold_ternary(f"layer{i}", w, vth_int / scale, bias_eff / (ACT_UNIT * scale), du, dv, 0, scale=scale)
        )
    return Network(tuple(layers))


def random_spikes(n: int, steps: int, n_in: int, rate: float = 0.3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed + 1000).random((n, steps, n_in)) < rate


# (C_out, kernel, stride, padding) of the three convolutions of :func:`random_conv_graph`
CONV_LAYERS = ((16, 5, 2, 2), (32, 3, 2, 1), (64, 3, 2, 1))


def random_conv_graph(
    seed: int = 0,
    in_shape: Sequence[int] = (2, 34, 34),
    dense: Sequence[int] = (128, 10),
    vth: Sequence[float] = (3, 5, 6, 8, 6),
) -> "nir.NIRGraph":  # type: ignore[name-defined]  # noqa: F821
    """A NIR graph of a typical published event-camera SNN: three strided ternary convolutions and
    two dense layers of LIF neurons (N-MNIST's 2x34x34 input: about 1 M synapses, 3 % of the dense
    unrolled matrices' entries). dt = 1, dv = 0.5, gains 1; integer thresholds, so ``--quantize``
    finds exact integer scales. Used by the simulator benchmark and the conv speed tests."""
    import nir

    rng = np.random.default_rng(seed)
    nodes: dict = {"input": nir.Input(input_type={"input": np.array(in_shape)})}
    edges, prev, shape = [], "input", tuple(int(s) for s in in_shape)

    thresholds = iter(vth)

    def lif(name: str, shp: tuple) -> None:
        nonlocal prev
        tau = np.full(shp, 2.0)
        nodes[name] = nir.LIF(
            tau=tau, r=tau.copy(), v_leak=np.zeros(shp), v_threshold=np.full(shp, float(next(thresholds)))
        )
        edges.append((prev, name))
        prev = name

    for i, (c_out, k, stride, pad) in enumerate(CONV_LAYERS):
        w = rng.choice([-1.0, 0.0, 1.0], size=(c_out, shape[0], k, k), p=[0.45, 0.1, 0.45])
        oh, ow = ((s + 2 * pad - k) // stride + 1 for s in shape[1:])
        nodes[f"conv{i}"] = nir.Conv2d(
            input_shape=shape[1:], weight=w, stride=stride, padding=pad, dilation=1, groups=1, bias=np.zeros(c_out)
        )
        edges.append((prev, f"conv{i}"))
        prev, shape = f"conv{i}", (c_out, oh, ow)
        lif(f"lif{i}", shape)
    nodes["flat"] = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0)
    edges.append((prev, "flat"))
    prev, n = "flat", int(np.prod(shape))
    for i, m in enumerate(dense):
        nodes[f"fc{i}"] = nir.Affine(
            weight=rng.choice([-1.0, 0.0, 1.0], size=(m, n), p=[0.45, 0.1, 0.45]), bias=np.zeros(m)
        )
        edges.append((prev, f"fc{i}"))
        prev, n = f"fc{i}", m
        lif(f"lifd{i}", (m,))
    nodes["output"] = nir.Output(output_type={"output": np.array([n])})
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
