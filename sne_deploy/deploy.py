"""From a trained model to the exporter's plain inputs: calibration on validation data, the best
static subsets for the ``fixed`` policy, imputation values and the manifest's fields."""
from __future__ import annotations

import numpy as np
import torch

from exporters.bundle import BundleParts
from simulators.encoding import ENCODING_NAME

from .data import Dataset
from .scheduler import best_subsets, calibration_table
from .train import TrainedModel, member_counts


@torch.no_grad()
def bundle_parts(model: TrainedModel, ds: Dataset) -> BundleParts:
    cfg = model.config
    k = cfg.members
    val_x = ds.val.flat()
    scores_val = model.gate(torch.from_numpy(val_x)).numpy()
    counts_val, _ = member_counts(model.networks, val_x, cfg.steps, "fixed")
    cv = torch.from_numpy(counts_val)

    def val_acc(mask: np.ndarray) -> float:
        awake = torch.from_numpy(np.tile(mask, (len(val_x), 1)).astype(np.float32))
        return float((model.head(cv, awake).argmax(1).numpy() == ds.val.y).mean())

    test_x = ds.test.flat()[:256]
    counts_test, _ = member_counts(model.networks, test_x, cfg.steps, "fixed")
    awake_ex = (np.random.default_rng(0).random((len(test_x), k)) < 0.5).astype(np.float32)
    s = model.summary
    info = {
        "dataset": ds.name,
        "data_seed": cfg.seed,
        "input_shape": list(model.input_shape),
        "n_classes": model.n_classes,
        "encoding": ENCODING_NAME,
        "steps": cfg.steps,
        "dt": 1.0,
        "partition": cfg.partition,
        "groups": [g.tolist() for g in model.groups],
        "imputation": {"rule": "a sleeping member's output spike counts are its training-set mean counts",
                       "count_mean": model.head.count_mean.numpy()},
        "budget_calibration": calibration_table(scores_val),
        "fixed_subsets": best_subsets(k, val_acc),
        "gate_macs": model.gate.macs(),
        "teacher_macs": s.get("teacher_macs"),
        "teacher_accuracy": s.get("teacher_accuracy"),
        "trained_accuracy": {m: s.get(f"ensemble_{m}_accuracy") for m in ("float", "fixed")},
    }
    return BundleParts(model.networks, model.gate, model.head, test_x, (counts_test, awake_ex), info)
