"""The Python API for the whole chain, the layer the CLI's commands also stand on:

    import sne_deploy as sd
    model = sd.fit("my_data.npz", teacher=my_resnet, features_at="avgpool")   # distil
    bundle = sd.export(model, "lava", "model.lava", data="my_data.npz")        # NIR members + gate + head
    report = sd.simulate(bundle, x_test, y_test, budget=0.3, backend="lava")  # gated ensemble on Lava
    result = sd.run("graph.nir", spikes, backend="brian2")                     # anyone's NIR graph

``import sne_deploy`` stays light (these names load on first use), so ``sne_deploy.simulators``
keeps running without torch inside the Lava environment.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
from torch import nn

from sne_deploy.exporters.bundle import Bundle, load_bundle, write_bundle
from sne_deploy.simulators import run
from sne_deploy.simulators.errors import InputError

from .config import TrainConfig
from .data import Dataset, load_dataset
from .deploy import bundle_parts
from .distributed import SINGLE, Ranks
from .model import TrainedModel
from .own_data import from_torch_dataset
from .records import SimulationReport
from .runtime import simulate as _simulate
from .train import train_on_ranks
from .user_teacher import cut_teacher

__all__ = [
    "fit",
    "export",
    "simulate",
    "run",
    "TrainConfig",
    "TrainedModel",
    "Bundle",
    "SimulationReport",
    "ExportWarning",
]

DataLike = Union[str, Path, Dataset, tuple]


def _dataset(data: DataLike, seed: int, data_dir: Optional[str] = None) -> Dataset:
    """A built-in name (read from ``data_dir`` if given) or a path (``train --data``), a loaded
    :class:`Dataset`, or a pair (or triple) of torch Datasets of (image, label): (train, test[, val])."""
    if isinstance(data, Dataset):
        return data
    if isinstance(data, tuple):
        if len(data) not in (2, 3):
            raise InputError("data as torch Datasets is a pair (train, test) or a triple (train, test, val)")
        return from_torch_dataset(data[0], data[1], data[2] if len(data) == 3 else None, seed=seed)
    return load_dataset(str(data), data_dir, seed)


def fit(
    data: DataLike,
    config: Optional[TrainConfig] = None,
    teacher: Union[None, str, Path, nn.Module] = None,
    features_at: Optional[str] = None,
    progress: Optional[bool] = None,
) -> TrainedModel:
    """Distil ``teacher`` into a gated spiking ensemble on ``data``.

    ``teacher``: None (``config.teacher``: a built-in one trained here), a TorchScript or ONNX
    file, or any trained ``nn.Module`` cut at the layer ``features_at`` (a module path such as
    ``"layer4"`` or ``"avgpool"``; the rest of the network is the classifier). ``config`` holds
    every other setting (:class:`TrainConfig`; its ``data`` and ``teacher`` are replaced by these
    arguments). The model's ``summary`` holds the test accuracies and energy proxies. Progress
    bars show on a terminal (``progress=None``), or as ``progress`` says."""
    model = fit_on_ranks(data, config, teacher, features_at, progress, SINGLE)
    assert model is not None  # rank 0 of 1
    return model


def fit_on_ranks(
    data: DataLike,
    config: Optional[TrainConfig] = None,
    teacher: Union[None, str, Path, nn.Module] = None,
    features_at: Optional[str] = None,
    progress: Optional[bool] = None,
    ranks: Ranks = SINGLE,
) -> Optional[TrainedModel]:
    """:func:`fit` on one of the DDP ranks of a torchrun job (the process group is up, see
    :mod:`~sne_deploy.distributed`): rank 0 returns the model, the other ranks None."""
    import sys

    progress = sys.stderr.isatty() if progress is None else progress
    cfg = config or TrainConfig()
    ds = _dataset(data, cfg.seed, cfg.data_dir)
    if isinstance(teacher, nn.Module):
        if not features_at:
            raise InputError("fit(teacher=module) needs features_at: the layer whose output the students learn")
        cut = cut_teacher(teacher, features_at, ds.input_shape, f"teacher {type(teacher).__name__}")
        # not trained: the cut module is the teacher
        return train_on_ranks(replace(cfg, teacher="mlp", features_at=None), ranks, progress, (cut, "module"), ds)
    if teacher is not None:
        cfg = replace(cfg, teacher=str(teacher), features_at=features_at)
    return train_on_ranks(cfg, ranks, progress, data=ds)


class ExportWarning(UserWarning):
    """Something a target will do differently from the model, found while exporting (e.g. Lava's
    weight range); ``strict=True`` makes each an error instead."""


def check_export(target: str, out: Union[str, Path], force: bool = False) -> None:
    """A known target, and a destination that is free (or a bundle ``force`` may replace)."""
    from sne_deploy.exporters.bundle import check_destination
    from sne_deploy.exporters.checks import check_target

    check_target(target)
    check_destination(Path(out), force)


def export(
    model: TrainedModel,
    target: str,
    out: Union[str, Path],
    data: Optional[DataLike] = None,
    force: bool = False,
    strict: bool = False,
    data_dir: Optional[Union[str, Path]] = None,
) -> Bundle:
    """Write ``model`` as a bundle for ``target`` (lava, brian2 or nir) to ``out`` and load it.
    The validation split calibrates the gate and the cascade: ``data`` is the dataset the model
    was trained on (default: reloaded from ``model.config.data``, built-in datasets from
    ``data_dir`` if given). The checks' findings are :class:`ExportWarning` warnings."""
    import warnings

    check_export(target, out, force)  # before minutes of loading and calibration
    cfg = model.config
    if data is None:
        ds = load_dataset(cfg.data, str(data_dir) if data_dir else cfg.data_dir, cfg.seed)
    else:
        ds = _dataset(data, cfg.seed)
    path, found = write_bundle(bundle_parts(model, ds), Path(out), target, force=force, strict=strict)
    for w in found:
        warnings.warn(w, ExportWarning, stacklevel=2)
    return load_bundle(path)


def simulate(
    bundle: Union[Bundle, str, Path],
    inputs: np.ndarray,
    labels: Optional[np.ndarray] = None,
    budget: float = 0.3,
    policy: str = "cascade",
    backend: str = "torch",
    mode: str = "fixed",
    normalised: bool = False,
    **options: Any,
) -> SimulationReport:
    """Run the bundle's gated ensemble over ``inputs``: as the training data was stored (images of
    the bundle's shape or flat rows, in their own dtype and range; event data's counts), brought to
    the model's inputs by the rule the bundle recorded, or with ``normalised=True`` already those
    (a :class:`Dataset` split's ``inputs()``: intensities in [0, 1], event data's bins).
    ``options`` are :func:`sne_deploy.runtime.simulate`'s (``compare``, ``seed``, ``executor``
    for a Ray cluster, ``backend_options``, ``record_sample``)."""
    from .runtime import raw_inputs

    b = bundle if isinstance(bundle, Bundle) else load_bundle(Path(bundle))
    return _simulate(
        b, inputs if normalised else raw_inputs(b, inputs), labels, budget, policy, backend, mode, **options
    )
