"""The trained model as a record, and the inference helpers that loading, export and evaluation
need. Nothing here trains, so loading or exporting a model does not load the training pipeline.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
from torch import nn

from sne_deploy.simulators.encoding import ENCODING_NAME, encode_spikes
from sne_deploy.simulators.errors import GraphError, InputError
from sne_deploy.simulators.network import Network

from sne_deploy.simulators.linear_maps import ConvGeometry

from .ensemble import Gate, HostHead
from .quantization import TWN_DELTA
from .records import TrainSummary
from .snn import StudentSNN, conv_layout, run_network_torch

STUDENT_KINDS = ("mlp", "conv")
# --student conv: (channels out, kernel, stride, padding) per layer, then the dense output layer.
# Strided and narrow on purpose: every neuron of an awake member is updated at every step (52 pJ
# on Loihi), so the maps must stay small; 28x28 -> 8x9x9 -> 16x5x5 (1,048 neurons) on Fashion-MNIST.
# Measured (benchmarks/fashion_students.py): fewer input-layer events, but more energy overall.
CONV_STUDENT = ((8, 5, 3, 1), (16, 3, 2, 1))
# digits' 8x8 images: 8x8x8 -> 16x4x4 (768 neurons)
CONV_STUDENT_SMALL = ((8, 3, 1, 1), (16, 3, 2, 1))


# Per dataset: teacher kind, feature dim, steps T, hidden width, output neurons per feature, the
# ensemble classification term's weight, teacher epochs, batch, the input layer's ternary
# threshold, whether the teacher's classifier trains with the students, KD on its logits, and the
# input code (sne_deploy.simulators.encoding).
# Fashion-MNIST's choices come from benchmarks/fashion_students.py (results/fashion_objectives.json):
# on Loihi's constants the input layer's events (input spikes x non-zero fan-out) are the energy,
# so a sparse input layer (input_delta 1.5) pays for twice the hidden width, and end-to-end
# training with KD on the teacher's logits lifts the full ensemble and the cascade alike; the
# centred code lets the pixels below 1/T spike (benchmarks/fashion_mnist.py, input_code ablation).
DEFAULTS = {
    "digits": dict(teacher="mlp", feat_dim=32, steps=16, hidden=48, population=1, ensemble_ce=0.0, teacher_epochs=60,
                   batch_size=64, conv=CONV_STUDENT_SMALL, input_delta=TWN_DELTA, train_head=False, logit_kd=0.0,
                   encoding=ENCODING_NAME),
    "fashion-mnist": dict(teacher="cnn", feat_dim=64, steps=4, hidden=128, population=4, ensemble_ce=1.0, teacher_epochs=20,
                          batch_size=128, input_delta=1.5, train_head=True, logit_kd=1.0,
                          encoding="regular-if-centred"),
    "cifar10": dict(teacher="cnn", feat_dim=64, steps=8, hidden=256, population=1, ensemble_ce=0.0, teacher_epochs=10,
                    batch_size=128, input_delta=TWN_DELTA, train_head=False, logit_kd=0.0, encoding=ENCODING_NAME),
}


@dataclass
class TrainConfig:
    data: str = "digits"
    data_dir: Optional[str] = None
    members: int = 8
    partition: str = "informed"
    tna: float = 0.0  # lambda of Twin Network Augmentation; 0 = off
    objective: str = "kd"  # "kd": regress teacher features; "labels": no teacher signal (ablation baseline)
    spike_reg: float = 0.0
    logit_reg: float = 0.0
    epochs: int = 30  # student epochs
    seed: int = 0
    teacher: Optional[str] = None  # "mlp", "cnn" or a TorchScript file
    teacher_epochs: Optional[int] = None
    feat_dim: Optional[int] = None
    steps: Optional[int] = None
    hidden: Optional[int] = None
    batch_size: Optional[int] = None
    du: float = 1.0
    dv: float = 0.25
    lr: float = 3e-3
    member_dropout: float = 0.5
    head_epochs: int = 20
    gate_epochs: int = 60
    gate_hidden: int = 64
    limit_train: Optional[int] = None  # subsample the training split (quick runs)
    population: Optional[int] = None  # output neurons per teacher feature (the head averages them)
    ensemble_ce: Optional[float] = None  # weight of the ensemble's classification term during student training
    member_ce: float = 1.0  # weight of each member's own classification term (teacher head, others at their mean)
    feature_weight: float = 1.0  # weight of the feature-regression (KD) term
    train_head: Optional[bool] = None  # train the teacher's classifier with the students (end to end) instead of freezing it
    logit_kd: Optional[float] = None  # weight of KD on the teacher's logits in the ensemble's classification term
    kd_temperature: float = 4.0
    student: str = "mlp"  # "mlp": n_in -> hidden -> outputs; "conv": the ``conv`` layers -> outputs
    conv: Optional[tuple] = None  # (channels, kernel, stride, padding) per conv layer (default: per dataset)
    input_delta: Optional[float] = None  # the input layer's ternary threshold in mean |w| (larger: sparser, less energy)
    encoding: Optional[str] = None  # the input spike code, a name in sne_deploy.simulators.encoding.ENCODINGS
    device: str = "auto"  # where the teacher and students train: "cpu", "cuda", or "auto" (CUDA when present)

    def resolved(self) -> "TrainConfig":
        d = dict(DEFAULTS.get(self.data, DEFAULTS["digits"]))
        if self.objective == "labels":  # no teacher classifier to train, no teacher logits to match
            d.update(train_head=False, logit_kd=0.0)
        out = copy.copy(self)
        for k, v in d.items():
            if getattr(out, k) is None:
                setattr(out, k, v)
        return out


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


def student_layout(cfg: TrainConfig, input_shape: tuple) -> tuple[list[int], list[ConvGeometry]]:
    """(dense hidden widths, convolutions) of every student of ``cfg`` for inputs of ``input_shape``."""
    if cfg.student == "mlp":
        return [int(cfg.hidden)], []  # type: ignore[arg-type]
    if cfg.student == "conv":
        shape = tuple(input_shape) if len(input_shape) == 3 else (1, *input_shape)
        layers = cfg.conv or CONV_STUDENT
        try:
            return [], conv_layout(shape, layers)
        except GraphError as e:
            spec = ";".join(",".join(str(v) for v in layer) for layer in layers)
            raise InputError(f"--conv-layers '{spec}' does not fit the {shape} input: {e}") from None
    raise InputError(f"--student must be one of {', '.join(STUDENT_KINDS)}, got '{cfg.student}'")


def parse_conv_layers(text: str) -> tuple[tuple[int, int, int, int], ...]:
    """``--conv-layers "C,K,S,P;C,K,S,P"``: per layer output channels, kernel, stride and padding."""
    layers = []
    for part in text.split(";"):
        try:
            values = tuple(int(v) for v in part.split(","))
        except ValueError:
            values = ()
        if len(values) != 4 or min(values[:3]) < 1 or values[3] < 0:
            raise InputError(f"--conv-layers '{text}': each layer is C,K,S,P (channels, kernel, stride >= 1; "
                             "padding >= 0), layers separated by ';'")
        layers.append(values)
    return tuple(layers)


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
def member_counts(networks: list[Network], x_flat: np.ndarray, steps: int, mode: str, encoding: str,
                  batch: int = 1000) -> tuple[np.ndarray, np.ndarray]:
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
