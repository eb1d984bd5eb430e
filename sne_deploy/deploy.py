"""From a trained model to the exporter's plain inputs: calibration on validation data, the best
static subsets for the ``fixed`` policy, imputation values and the manifest's fields."""

from __future__ import annotations

import numpy as np
import torch

from sne_deploy.exporters.bundle import BundleParts
from sne_deploy.exporters.manifest import ModelInfo
from sne_deploy.simulators.result import MODES

from .data import Dataset
from .energy import AnnWork
from .model import TrainedModel, member_counts, member_output_trains
from .scheduler import best_subsets, calibration_table, cascade_order, cascade_table, confidence, time_checkpoint_logits
from .teacher import ann_work


def host_work(model: TrainedModel) -> dict[str, dict[str, float]]:
    """One sample's pass through the teacher, the gate and the head (for the memory energy model)."""
    head = model.head
    readouts = float(sum(head.sizes))
    classifier = float(head.head.in_features * head.head.out_features)
    return {
        "teacher": ann_work(model.teacher, model.input_shape).to_dict(),
        "gate": ann_work(model.gate, (int(np.prod(model.input_shape)),)).to_dict(),
        # an affine readout per member output, then the classifier: counts in, features, logits
        "head": AnnWork(
            readouts + classifier, readouts * 2 + classifier, readouts + head.head.in_features + head.head.out_features
        ).to_dict(),
    }


@torch.no_grad()
def bundle_parts(model: TrainedModel, ds: Dataset) -> BundleParts:
    cfg = model.config
    k = cfg.members
    val_x = ds.val.flat()  # the gate's view (event data: their frames)
    scores_val = model.gate(torch.from_numpy(val_x)).numpy()
    trains_val = member_output_trains(model.networks, ds.val.inputs(), cfg.steps, "fixed", cfg.encoding)
    cv = torch.from_numpy(np.concatenate([t.sum(axis=1) for t in trains_val], axis=1).astype(np.float32))

    def head_logits(counts: np.ndarray, awake: np.ndarray) -> np.ndarray:
        return model.head(torch.from_numpy(counts), torch.from_numpy(awake.astype(np.float32))).numpy()

    def val_acc(mask: np.ndarray) -> float:
        awake = torch.from_numpy(np.tile(mask, (len(val_x), 1)).astype(np.float32))
        return float((model.head(cv, awake).argmax(1).numpy() == ds.val.y).mean())

    order = cascade_order(scores_val)
    conf_by_round = np.zeros((len(val_x), k))
    for r in range(k):
        awake = np.zeros((len(val_x), k), np.float32)
        np.put_along_axis(awake, order[:, : r + 1], 1.0, axis=1)
        conf_by_round[:, r] = confidence(model.head(cv, torch.from_numpy(awake)).numpy())
    conf_by_step = confidence(time_checkpoint_logits(trains_val, order, head_logits))  # (N, K*T)

    test_x = ds.test.flat()[:256]  # the gate's example input
    counts_test, _ = member_counts(model.networks, ds.test.inputs()[:256], cfg.steps, "fixed", cfg.encoding)
    awake_ex = (np.random.default_rng(0).random((len(test_x), k)) < 0.5).astype(np.float32)
    s = model.summary
    info = ModelInfo(
        dataset=ds.name,
        data_seed=cfg.seed,
        input_normalisation=ds.normalisation.to_dict(),
        input_shape=[int(d) for d in model.input_shape],
        n_classes=model.n_classes,
        encoding=cfg.encoding,
        steps=cfg.steps,
        dt=1.0,
        partition=cfg.partition,
        groups=[g.tolist() for g in model.groups],
        count_mean=model.head.count_mean.tolist(),
        budget_calibration=calibration_table(scores_val),
        cascade_calibration=cascade_table(conf_by_round),
        time_exit_calibration=cascade_table(conf_by_step),
        fixed_subsets=best_subsets(k, val_acc),
        gate_macs=model.gate.macs(),
        head_macs=model.head.macs(),
        teacher_macs=s.teacher_macs if s else None,
        teacher_accuracy=s.teacher_accuracy if s else None,
        trained_accuracy=dict(s.ensemble_accuracy) if s else {m: None for m in MODES},
        host_work=host_work(model),
    )
    return BundleParts(model.networks, model.gate, model.head, test_x, (counts_test, awake_ex), info)
