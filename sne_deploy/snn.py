"""Student SNNs in torch, on the neuron contract of ``sne_deploy.simulators.neuron`` (the same step functions,
run with ``xp=torch``), and the PyTorch reference for exported networks in float or fixed point.

:func:`run_network_torch` is the shared simulation loop of ``sne_deploy.simulators.loop`` on torch arrays;
:class:`StudentSNN` is the trainable form (float32, surrogate gradient, ternary weights through
the STE; its loop keeps gradients, so it is its own) that :meth:`StudentSNN.to_network` turns
into a deployable network.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from norse.torch.functional.superspike import super_fn
from torch import nn

from sne_deploy.simulators.fixed_point import fold_ternary
from sne_deploy.simulators.linear_maps import ConvGeometry, conv2d_geometry, geometry_matrix
from sne_deploy.simulators.loop import ArrayLib
from sne_deploy.simulators.network import Network
from sne_deploy.simulators.neuron import HOLD_DU, LIFParams, LIFState, decays_to_fixed, lif_step_float
from sne_deploy.simulators.reference import run_reference
from sne_deploy.simulators.result import Result

from .quantization import TWN_DELTA, layer_delta, ste_ternary, ternarize


def _surrogate(x: torch.Tensor) -> torch.Tensor:
    """norse's SuperSpike: the strict Heaviside forward, 1 / (1 + |x|)^2 backward. norse 1.x
    ignores its ``alpha`` argument, so this is the slope-1 fast sigmoid whatever alpha says
    (tests/test_training.py pins it); sharper slopes (5, 25) trained worse students on
    Fashion-MNIST in exploration runs."""
    return super_fn(x)


def conv_layout(in_shape: Sequence[int], specs: Sequence[Sequence[int]]) -> list[ConvGeometry]:
    """The geometry of a student's convolutional layers, each (channels out, kernel, stride,
    padding), applied in turn to an input of ``in_shape`` (C, H, W)."""
    geoms, shape = [], tuple(int(s) for s in in_shape)
    for c_out, k, stride, pad in specs:
        g = conv2d_geometry((c_out, shape[0], k, k), shape, stride, pad)
        geoms.append(g)
        shape = g.out_shape
    return geoms


def _conv_op(w: torch.Tensor, g: ConvGeometry) -> Callable[[torch.Tensor], torch.Tensor]:
    """s (K, N, C_in*H*W) -> the convolution of every member's map with its own kernel, as
    (K, N, C_out*OH*OW): one grouped conv2d over the K members. ``w``: (K, C_out, C_in*kH*kW)."""
    k = w.shape[0]
    kernel = w.reshape(k * g.kernel[0], *g.kernel[1:])

    def op(s: torch.Tensor) -> torch.Tensor:
        n = s.shape[1]
        x = s.permute(1, 0, 2).reshape(n, k * g.in_shape[0], *g.in_shape[1:])
        y = F.conv2d(x, kernel, stride=g.stride, padding=g.padding, dilation=g.dilation, groups=k)
        return y.reshape(n, k, -1).permute(1, 0, 2)

    return op


def run_members_float(
    weights: Sequence[torch.Tensor],
    biases: Sequence[torch.Tensor],
    spikes: torch.Tensor,
    du: float | Sequence[float],
    dv: float,
    out_mask: Optional[torch.Tensor] = None,
    convs: Sequence[ConvGeometry] = (),
    input_unit: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The differentiable time loop of K spiking networks at once (K = 1 for one student).

    ``weights[l]`` (K, out, in), ``biases[l]`` (K, 1, out), ``spikes`` (N, T, n_in), shared by
    every member. The first ``len(convs)`` layers are convolutions (``weights[l]`` then holds
    each output channel's kernel flattened, (K, C_out, C_in*kH*kW), and ``biases[l]`` one value
    per neuron), the rest dense. The first layer's currents for all steps and members come from
    one product; then each step runs :func:`~sne_deploy.simulators.neuron.lif_step_float` with the surrogate
    gradient. ``du`` is one current decay, or one per layer; ``input_unit`` scales the inputs (a
    graded payload's intensity, :meth:`StudentSpec.input_unit`). ``out_mask`` (K, 1, out)
    silences padded outputs. Returns output counts (K, N, out) and spikes per member and sample
    (K, N)."""
    n, t_steps, n_in = spikes.shape
    k = weights[0].shape[0]
    # layers after the first: their input is each member's own activity
    ops: list[Optional[Callable[[torch.Tensor], torch.Tensor]]] = [None]
    ops += [(_conv_op(w, convs[i]) if i < len(convs) else _dense_op(w)) for i, w in enumerate(weights) if i > 0]
    # the first layer for all steps and members at once (its input is shared): (N*T, K*n1)
    x = spikes.reshape(n * t_steps, n_in)
    if convs:
        g = convs[0]
        kernel = weights[0].reshape(k * g.kernel[0], *g.kernel[1:])
        a0 = F.conv2d(
            x.reshape(n * t_steps, *g.in_shape), kernel, stride=g.stride, padding=g.padding, dilation=g.dilation
        ).reshape(n * t_steps, -1)
    else:
        a0 = x @ weights[0].reshape(-1, n_in).T
    a0 = a0.reshape(n, t_steps, k, -1).permute(1, 2, 0, 3)  # (T, K, N, n1)
    if input_unit != 1.0:
        a0 = a0 * input_unit
    dus = [float(du)] * len(biases) if isinstance(du, (int, float)) else [float(d) for d in du]
    sizes = [b.shape[-1] for b in biases]
    states = [LIFState(spikes.new_zeros(k, n, m), spikes.new_zeros(k, n, m)) for m in sizes]
    out = spikes.new_zeros(k, n, sizes[-1])
    total = spikes.new_zeros(k, n)
    last = len(weights) - 1
    for t in range(t_steps):
        s = a0[t]
        for i, b in enumerate(biases):
            op = ops[i]
            a = s if op is None else op(s)
            states[i], s = lif_step_float(states[i], a, LIFParams(dus[i], dv, 1.0, b), torch, _surrogate)
            if i == last and out_mask is not None:
                s = s * out_mask
            total = total + s.sum(dim=2)
        out = out + s
    return out, total


def _dense_op(w: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """Each member's dense layer on its own activity: (K, N, in) -> (K, N, out)."""
    return lambda s: torch.bmm(s, w.transpose(1, 2))


def layer_sizes(n_in: int, convs: Sequence[ConvGeometry], hidden: Sequence[int], n_out: int) -> list[int]:
    """Neurons per layer of a student, input first: each convolution's map, the dense hidden
    layers, the outputs."""
    return [n_in, *(int(np.prod(c.out_shape)) for c in convs), *hidden, n_out]


@dataclass(frozen=True)
class StudentSpec:
    """What every student of an ensemble shares: input size, the convolutions and dense hidden
    widths between input and outputs, time steps, decays, the input layer's ternary threshold and
    how inputs arrive. A student is a spec plus its number of outputs (the size of its feature
    group).

    ``graded_input`` G > 0: the inputs are the ``graded`` code's (one payload of at most G per
    pixel at the first step): the first layer holds it in its current (``HOLD_DU``) and sees
    intensities, payload / G, which the exported network folds into that layer's threshold and
    bias (its synapses take the integer payloads)."""

    n_in: int
    hidden: tuple[int, ...] = ()
    convs: tuple[ConvGeometry, ...] = ()
    steps: int = 16
    du: float = 1.0
    dv: float = 0.25
    input_delta: float = TWN_DELTA
    graded_input: int = 0

    def __post_init__(self) -> None:
        decays_to_fixed(self.du, self.dv)  # fail early when the decays cannot go to Loihi

    def sizes(self, n_out: int) -> list[int]:
        """Neurons per layer, input first, of a student with ``n_out`` outputs."""
        return layer_sizes(self.n_in, self.convs, self.hidden, n_out)

    def layer_dus(self, n_layers: int) -> list[float]:
        """Each layer's current decay: ``du``, but the first layer's ``HOLD_DU`` for graded inputs."""
        return [HOLD_DU if (i == 0 and self.graded_input) else self.du for i in range(n_layers)]

    @property
    def input_unit(self) -> float:
        """The intensity one unit of input stands for: 1 for spikes, 1 / G for graded payloads."""
        return 1.0 / self.graded_input if self.graded_input else 1.0


def weight_shapes(sizes: Sequence[int], convs: Sequence[ConvGeometry] = ()) -> list[tuple[int, int]]:
    """(rows, columns) of each layer's trainable weights: a convolution's kernel per output
    channel, flattened (C_out, C_in*kH*kW); a dense layer's matrix (out, in)."""
    return [(g.kernel[0], int(np.prod(g.kernel[1:]))) for g in convs] + [
        (o, i) for i, o in zip(sizes[len(convs) : -1], sizes[len(convs) + 1 :])
    ]


class StudentSNN(nn.Module):
    """A spiking network ``sizes[0] -> ... -> sizes[-1]`` (neurons per layer) whose output spike
    counts, through a per-dim affine readout (host side), regress one group of teacher features.
    With ``convs`` its first layers are those convolutions (Conv2d -> LIF; one bias per neuron),
    the rest dense: a convolution's fan-out is C_out*k^2/stride^2 per input spike instead of a
    dense layer's width, and the input layer's events are where the energy goes.

    ``ternary=False`` gives the full-precision twin of Twin Network Augmentation.
    """

    def __init__(self, spec: StudentSpec, n_out: int, ternary: bool = True, seed: int = 0) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.spec, self.ternary = spec, ternary
        sizes = self.sizes = spec.sizes(n_out)
        self.steps, self.du, self.dv, self.input_delta = spec.steps, spec.du, spec.dv, spec.input_delta
        self.convs = list(spec.convs)
        convs = self.convs
        self.weights = nn.ParameterList(
            [
                nn.Parameter(torch.randn(o, i, generator=gen) * (2.0 / np.sqrt(i)))
                for o, i in weight_shapes(sizes, convs)
            ]
        )
        self.biases = nn.ParameterList([nn.Parameter(torch.zeros(o)) for o in sizes[1:]])
        self.gamma = nn.Parameter(torch.full((sizes[-1],), 2.0))
        self.beta = nn.Parameter(torch.full((sizes[-1],), -1.0))

    def delta(self, layer: int) -> float:
        """The ternary threshold (in mean |w|) of ``layer``: the input layer's may be its own."""
        return layer_delta(layer, self.input_delta)

    def effective_weights(self) -> list[torch.Tensor]:
        return [ste_ternary(w, delta=self.delta(i)) if self.ternary else w for i, w in enumerate(self.weights)]

    def forward(self, spikes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """spikes (N, T, n_in) float -> (output counts (N, n_out), spikes per sample (N,))."""
        out, total = run_members_float(
            [w[None] for w in self.effective_weights()],
            [b[None, None] for b in self.biases],
            spikes,
            self.spec.layer_dus(len(self.weights)),
            self.dv,
            convs=self.convs,
            input_unit=self.spec.input_unit,
        )
        return out[0], total[0]

    def readout(self, counts: torch.Tensor) -> torch.Tensor:
        """Spike counts -> predicted (standardised) features; runs on the host."""
        return counts / self.steps * self.gamma + self.beta

    @torch.no_grad()
    def to_network(self, name: str = "student", scales: Optional[Sequence[int]] = None) -> Network:
        """The deployable form (:func:`sne_deploy.simulators.fixed_point.fold_ternary`): ternary float weights
        with alpha folded into vth and bias, plus the exact fixed-point integers with one even scale
        per layer (chosen there unless ``scales`` gives them)."""
        if not self.ternary:
            raise ValueError("only ternary students are deployed")
        layers = []
        dus, graded = self.spec.layer_dus(len(self.weights)), self.spec.graded_input
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            wt, alpha = ternarize(w, delta=self.delta(i))
            # threshold and bias in units of one synapse (alpha folded in) and, for the first
            # layer, of one unit of input (a graded payload is 1/G of an intensity)
            unit = float(alpha) * (self.spec.input_unit if i == 0 else 1.0)
            geom = self.convs[i] if i < len(self.convs) else None
            # a convolution as the matrix it applies (every synapse it implies), its geometry kept
            matrix = (
                wt.double().numpy() if geom is None else geometry_matrix(wt.double().numpy().reshape(geom.kernel), geom)
            )
            layer = fold_ternary(
                f"{name}.layer{i}",
                matrix,
                1.0 / unit,
                b.double().numpy() / unit,
                dus[i],
                self.dv,
                self.steps,
                None if scales is None else scales[i],
                graded if i == 0 else 0,
            )
            layers.append(layer if geom is None else replace(layer, conv=geom))
        return Network(tuple(layers), metadata={"steps": self.steps}, graded_input=graded)


def _torch_asarray(a: Any, dtype: str) -> torch.Tensor:
    t = a if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))
    return t.to(getattr(torch, dtype))


TORCH = ArrayLib(
    "torch", torch, _torch_asarray, lambda shape, d: torch.zeros(shape, dtype=getattr(torch, d)), lambda t: t.numpy()
)


@torch.no_grad()
def run_network_torch(
    network: Network, spikes: torch.Tensor | np.ndarray, mode: str = "float", record: bool = False
) -> Result:
    """The PyTorch reference: the shared simulation loop (:func:`sne_deploy.simulators.loop.run_loop`) on torch
    arrays (float64 or int64), as the numpy reference runs it on numpy arrays."""
    return run_reference(network, spikes, mode, record, lib=TORCH, backend="torch")
