"""The trained model as a record, and the inference helpers that loading, export and evaluation
need. Nothing here trains, so loading or exporting a model does not load the training pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch import nn

from sne_deploy.simulators.encoding import ENCODING_NAME, encode_spikes, graded_levels
from sne_deploy.simulators.errors import GraphError, InputError, check_choice
from sne_deploy.simulators.linear_maps import ConvGeometry
from sne_deploy.simulators.network import Network

from .config import CONV_STUDENT, STUDENT_KINDS, TrainConfig
from .ensemble import Gate, HostHead
from .records import TrainSummary
from .snn import StudentSNN, StudentSpec, conv_layout, run_network_torch, weight_shapes

__all__ = ["TrainConfig", "TrainedModel", "student_layout", "student_spec", "resolve_device", "encode", "member_counts"]


@dataclass
class TrainedModel:
    config: TrainConfig
    teacher: nn.Module
    teacher_kind: str
    input_shape: tuple
    n_classes: int
    groups: list[np.ndarray]
    students: list[StudentSNN]
    networks: list[Network]
    head: HostHead
    gate: Gate
    summary: Optional[TrainSummary] = None  # filled in by training / the checkpoint


# What one student may hold: far beyond any student worth deploying on a neuromorphic core (the
# defaults have about a thousand neurons), far below what would exhaust memory in training
MAX_STUDENT_NEURONS = 2_000_000
MAX_STUDENT_WEIGHTS = 50_000_000


def student_spec(cfg: TrainConfig, input_shape: tuple) -> StudentSpec:
    """What every student of ``cfg`` shares, for inputs of ``input_shape`` (a resolved config);
    students too large to train are refused here, before the teacher trains."""
    hidden, convs = student_layout(cfg, input_shape)
    spec = StudentSpec(
        int(np.prod(input_shape)),
        tuple(hidden),
        tuple(convs),
        int(cfg.steps),
        cfg.du,
        cfg.dv,
        float(cfg.input_delta),
        graded_levels(cfg.encoding),
    )
    n_out = max(1, int(cfg.feat_dim) * int(cfg.population) // max(1, int(cfg.members)))  # about one group
    sizes = spec.sizes(n_out)
    neurons = sum(sizes[1:])
    weights = sum(o * i for o, i in weight_shapes(sizes, spec.convs))
    if neurons > MAX_STUDENT_NEURONS or weights > MAX_STUDENT_WEIGHTS:
        option = "--conv-layers" if convs else "--hidden"
        raise InputError(
            f"{option}: each student would have {neurons:,} neurons and {weights:,} weights (limits "
            f"{MAX_STUDENT_NEURONS:,} and {MAX_STUDENT_WEIGHTS:,}); choose smaller layers"
        )
    return spec


def student_layout(cfg: TrainConfig, input_shape: tuple) -> tuple[list[int], list[ConvGeometry]]:
    """(dense hidden widths, convolutions) of every student of ``cfg`` for inputs of ``input_shape``."""
    check_choice("--student", cfg.student, STUDENT_KINDS)
    if cfg.student == "mlp":
        return [int(cfg.hidden)], []
    else:
        shape = tuple(input_shape) if len(input_shape) == 3 else (1, *input_shape)
        layers = cfg.conv or CONV_STUDENT
        try:
            return [], conv_layout(shape, layers)
        except GraphError as e:
            spec = ";".join(",".join(str(v) for v in layer) for layer in layers)
            raise InputError(f"--conv-layers '{spec}' does not fit the {shape} input: {e}") from None


def resolve_device(device: str) -> torch.device:
    """``auto`` is CUDA when torch sees a GPU, else the CPU; ``cuda`` without one is a user error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda"):
        raise InputError(f"--device must be cpu, cuda or auto, got '{device}'")
    if device == "cuda" and not torch.cuda.is_available():
        raise InputError("--device cuda: torch sees no CUDA device here (use --device cpu)")
    return torch.device(device)


def encode(x_flat: np.ndarray, steps: int, encoding: str = ENCODING_NAME) -> torch.Tensor:
    """The shared deterministic encoder, as float32 tensor (N, T, n_in)."""
    return torch.from_numpy(encode_spikes(x_flat, steps, encoding).astype(np.float32))


@torch.no_grad()
def member_output_trains(
    networks: list[Network], x_flat: np.ndarray, steps: int, mode: str, encoding: str, batch: int = 1000
) -> list[np.ndarray]:
    """PyTorch-reference output spike trains per member, (N, T, n_out) each, every member awake
    (what the cascade in time reads step by step)."""
    outs: list[list[np.ndarray]] = [[] for _ in networks]
    for i in range(0, len(x_flat), batch):
        s = encode_spikes(x_flat[i : i + batch], steps, encoding)
        for o, net in zip(outs, networks):
            trains = run_network_torch(net, s, mode, record=True).trains
            assert trains is not None
            o.append(trains[-1].astype(np.uint8))
    return [np.concatenate(o) for o in outs]


def member_counts(
    networks: list[Network], x_flat: np.ndarray, steps: int, mode: str, encoding: str, batch: int = 1000
) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch-reference output counts, concatenated over members (N, sum g), and spikes per
    sample and member (N, K), with every member awake."""
    outs, spikes = [], []
    for i in range(0, len(x_flat), batch):
        s = encode_spikes(x_flat[i : i + batch], steps, encoding)
        o, sp = [], []
        for net in networks:
            res = run_network_torch(net, s, mode)
            o.append(res.output_counts)
            sp.append(res.layer_spikes.sum(axis=1))
        outs.append(np.concatenate(o, axis=1))
        spikes.append(np.stack(sp, axis=1))
    return np.concatenate(outs).astype(np.float32), np.concatenate(spikes)
