"""Test-split evaluation of a trained model: teacher, the full ensemble in float and fixed point,
and each member's feature fit, spikes and float/fixed agreement, as a :class:`TrainSummary`."""

from __future__ import annotations

import numpy as np
import torch

from sne_deploy.simulators.result import MODES

from .data import Dataset
from .model import TrainedModel, member_counts
from .records import MemberSummary, TrainSummary
from .teacher import teacher_features, teacher_head, teacher_macs


@torch.no_grad()
def accuracy(logits: torch.Tensor, y: np.ndarray) -> float:
    return float((logits.argmax(1).numpy() == y).mean())


@torch.no_grad()
def all_awake_accuracy(model: TrainedModel, counts: np.ndarray, y: np.ndarray) -> float:
    """Accuracy of the head on member output counts (N, sum g) with every member awake."""
    return accuracy(model.head(torch.from_numpy(counts), torch.ones(len(counts), model.config.members)), y)


def ensemble_accuracy(model: TrainedModel, x_flat: np.ndarray, y: np.ndarray, mode: str = "fixed") -> float:
    """The full ensemble's accuracy on intensities ``x_flat`` (N, n_in), PyTorch reference in ``mode``."""
    counts, _ = member_counts(model.networks, x_flat, model.config.steps, mode, model.config.encoding)
    return all_awake_accuracy(model, counts, y)


@torch.no_grad()
def evaluate(model: TrainedModel, ds: Dataset) -> TrainSummary:
    cfg = model.config
    test = ds.test
    f_test = teacher_features(model.teacher, test.x)  # one pass of the teacher serves both
    counts, spikes = {}, {}
    for mode in MODES:
        counts[mode], spikes[mode] = member_counts(model.networks, test.inputs(), cfg.steps, mode, cfg.encoding)
    return TrainSummary(
        dataset=ds.name,
        test_samples=len(test),
        encoding=cfg.encoding,
        steps=cfg.steps,
        teacher_accuracy=accuracy(teacher_head(model.teacher, torch.from_numpy(f_test)), test.y),
        teacher_macs=teacher_macs(model.teacher, model.input_shape),
        gate_macs=model.gate.macs(),
        ensemble_accuracy={m: all_awake_accuracy(model, counts[m], test.y) for m in MODES},
        spikes_per_sample={m: float(spikes[m].sum(1).mean()) for m in MODES},
        members=member_summaries(model, f_test, counts, spikes["float"]),
    )


def member_summaries(
    model: TrainedModel, f_test: np.ndarray, counts: dict[str, np.ndarray], spikes_float: np.ndarray
) -> tuple[MemberSummary, ...]:
    """Per member: R² of its group of teacher features (float counts through the head's readout),
    its spikes per sample and how often its float and fixed-point output counts agree."""
    awake = torch.ones(len(f_test), model.config.members)
    z_pred = model.head.features(torch.from_numpy(counts["float"]), awake).numpy()
    out, off = [], 0
    for k, g in enumerate(model.groups):
        fc, xc = counts["float"][:, off : off + len(g)], counts["fixed"][:, off : off + len(g)]
        off += len(g)
        g = np.unique(g)  # a population lists its dimension several times
        resid = ((z_pred[:, g] - f_test[:, g]) ** 2).sum()
        tot = ((f_test[:, g] - f_test[:, g].mean(0)) ** 2).sum()
        out.append(
            MemberSummary(
                dims=len(g),
                feature_r2=float(1 - resid / max(tot, 1e-12)),
                spikes_per_sample=float(spikes_float[:, k].mean()),
                float_fixed_count_agreement=float((fc == xc).mean()),
                fixed_scales=[int(l.fixed.weight.max() or 0) for l in model.networks[k].layers],
            )
        )
    return tuple(out)
