"""Convolution and sum pooling as the dense matrices they are on flattened (C, H, W) inputs.

A Loihi core (and Lava's Dense, and a Brian2 ``Synapses`` object) holds one weight per synapse, so a
``Conv2d`` or ``SumPool2d`` node runs here as the matrix that maps the C-order flattened input to
the C-order flattened output: every synapse the convolution implies, no others. Consecutive linear
nodes (e.g. ``SumPool2d`` then ``Conv2d``) compose into one matrix, since no neuron sits between
them. Conventions follow PyTorch (and hence nirtorch): weight (C_out, C_in/groups, kH, kW), zero
padding, ``padding="same"`` only with stride 1.
"""
from __future__ import annotations

from typing import Sequence, Union

import numpy as np

from .errors import GraphError

Pair = Union[int, Sequence[int], np.ndarray]


def _pair(x: Pair, what: str) -> tuple[int, int]:
    a = np.asarray(x).ravel()
    if a.size == 1:
        a = np.repeat(a, 2)
    if a.size != 2 or np.any(a != np.round(a)):
        raise GraphError(f"{what} must be an int or a pair of ints, got {x!r}")
    return int(a[0]), int(a[1])


def conv2d_matrix(weight: np.ndarray, in_shape: Sequence[int], stride: Pair = 1, padding: Union[Pair, str] = 0,
                  dilation: Pair = 1, groups: int = 1) -> tuple[np.ndarray, tuple[int, int, int]]:
    """(matrix (C_out*OH*OW, C_in*H*W), output shape (C_out, OH, OW)) of a 2-D convolution."""
    weight = np.asarray(weight, dtype=np.float64)
    if weight.ndim != 4:
        raise GraphError(f"Conv2d weight must be (C_out, C_in/groups, kH, kW), got shape {weight.shape}")
    if len(in_shape) != 3:
        raise GraphError(f"Conv2d needs a (C, H, W) input, got shape {tuple(in_shape)}")
    c_out, c_in_g, kh, kw = weight.shape
    c_in, h, w = (int(s) for s in in_shape)
    if groups < 1 or c_in % groups or c_out % groups or c_in // groups != c_in_g:
        raise GraphError(f"Conv2d: {c_in} input channels, {c_out} output channels and groups={groups} "
                         f"do not fit a weight of shape {weight.shape}")
    sh, sw = _pair(stride, "stride")
    dh, dw = _pair(dilation, "dilation")
    if isinstance(padding, str):
        if padding == "valid":
            ph = pw = 0
        elif padding == "same" and (sh, sw) == (1, 1):
            ph, pw = dh * (kh - 1) // 2, dw * (kw - 1) // 2
            if dh * (kh - 1) % 2 or dw * (kw - 1) % 2:
                raise GraphError("Conv2d padding='same' with an even kernel pads unevenly: not supported")
        else:
            raise GraphError(f"Conv2d padding '{padding}' is not supported (use an int pair, 'valid', or 'same' with stride 1)")
    else:
        ph, pw = _pair(padding, "padding")
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if oh < 1 or ow < 1:
        raise GraphError(f"Conv2d: a {kh}x{kw} kernel does not fit a {h}x{w} input")
    matrix = np.zeros((c_out * oh * ow, c_in * h * w))
    oy, ox = np.meshgrid(np.arange(oh), np.arange(ow), indexing="ij")
    per_group = c_out // groups
    for ky in range(kh):
        for kx in range(kw):
            iy, ix = oy * sh + ky * dh - ph, ox * sw + kx * dw - pw
            ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
            out_pos, in_pos = (oy * ow + ox)[ok], (iy * w + ix)[ok]
            for co in range(c_out):
                for cig in range(c_in_g):
                    ci = (co // per_group) * c_in_g + cig
                    matrix[co * oh * ow + out_pos, ci * h * w + in_pos] += weight[co, cig, ky, kx]
    return matrix, (c_out, oh, ow)


def sumpool2d_matrix(in_shape: Sequence[int], kernel_size: Pair, stride: Pair, padding: Pair = 0
                     ) -> tuple[np.ndarray, tuple[int, int, int]]:
    """Sum pooling = a grouped convolution with one all-ones kernel per channel."""
    if len(in_shape) != 3:
        raise GraphError(f"SumPool2d needs a (C, H, W) input, got shape {tuple(in_shape)}")
    c = int(in_shape[0])
    kh, kw = _pair(kernel_size, "kernel_size")
    return conv2d_matrix(np.ones((c, 1, kh, kw)), in_shape, stride, padding, 1, groups=c)
