"""The training pipeline, phase by phase: teacher -> partition -> students (ternary, KD, TNA,
activity regularisation) -> fixed-point mapping -> head with member dropout -> gate -> evaluation.

Each phase lives in its own module (``teacher``, ``partition``, ``students``, ``head_gate``,
``evaluate``); :func:`train` strings them together, times them and returns a
:class:`~sne_deploy.model.TrainedModel` with its :class:`~sne_deploy.records.TrainSummary`.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from sne_deploy.simulators.errors import InputError

from .config import checked_for
from .data import Dataset, Split, load_dataset
from .distributed import SINGLE, Ranks
from .ensemble import Gate, HostHead
from .evaluate import evaluate
from .head_gate import finetune_head, gate_targets, head_from_plain, train_gate
from .model import TrainConfig, TrainedModel, member_counts, resolve_device, student_spec
from .partition import partition_features
from .snn import StudentSNN
from .students import MemberClassifier, TrainedStudents, train_students
from .teacher import load_torchscript_teacher, make_teacher, teacher_features, train_teacher
from .user_teacher import OnnxTeacher, SplitTeacher, fit_probe

__all__ = ["TrainConfig", "TrainedModel", "train", "train_on_ranks"]


@dataclass(frozen=True)
class FeatureTargets:
    """The teacher's training features, standardised, and their partition into member groups."""

    mean: np.ndarray
    std: np.ndarray
    z: np.ndarray  # (N, D) standardised features: the students' regression targets
    groups: list[np.ndarray]


def train(
    cfg: TrainConfig,
    progress: bool = True,
    teacher: Optional[tuple[nn.Module, str]] = None,
    data: Optional[Dataset] = None,
) -> TrainedModel:
    """The whole pipeline in this process. ``teacher`` = (module, kind) reuses a trained teacher
    instead of training one (the benchmark's ablations share the main model's teacher; the
    Python API passes a user's cut module); ``data`` is a dataset already in memory (else
    ``cfg.data`` is loaded)."""
    model = train_on_ranks(cfg, SINGLE, progress, teacher, data)
    assert model is not None  # rank 0 of 1
    return model


def train_on_ranks(
    cfg: TrainConfig,
    ranks: Ranks,
    progress: bool = True,
    teacher: Optional[tuple[nn.Module, str]] = None,
    data: Optional[Dataset] = None,
) -> Optional[TrainedModel]:
    """The pipeline on one of several DDP ranks (:mod:`~sne_deploy.distributed`; the process group
    is up): every rank trains the teacher and the students on its share of each minibatch, rank 0
    goes on alone with the head, the gate and the evaluation and returns the model; the other
    ranks return None."""
    progress = progress and ranks.main
    if data is not None:  # in memory: the per-size defaults of its images, its name on the record
        cfg = checked_for(cfg, data)
    else:
        cfg = cfg.checked()  # every rule on the settings, before the teacher trains
    torch.manual_seed(cfg.seed)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    ds = data if data is not None else load_dataset(cfg.data, cfg.data_dir, cfg.seed)
    student_spec(cfg, ds.input_shape)  # a student that cannot fit the input, or memory, fails before the teacher trains
    check_gate_pool(cfg.gate_pool, ds.input_shape)
    train_split = ds.train
    if cfg.limit_train:
        train_split = ds.train.take(slice(cfg.limit_train))
    teacher_net, kind = teacher or get_teacher(
        cfg, Dataset(ds.name, train_split, ds.val, ds.test, ds.n_classes), progress, ranks
    )
    probe_agreement = with_classifier(teacher_net, train_split)
    timings["teacher_s"] = time.perf_counter() - t

    t = time.perf_counter()
    targets = feature_targets(teacher_net, train_split, cfg)
    if kind not in ("mlp", "cnn"):  # the user's teacher: its own feature width, as its features show
        cfg = replace(cfg, feat_dim=len(targets.mean))
    trained = train_students(
        cfg,
        train_split,
        targets.z,
        targets.groups,
        progress,
        ds.n_classes,
        member_classifier(teacher_net, targets) if cfg.member_ce > 0 or cfg.ensemble_ce > 0 else None,
        ranks,
    )
    students, log = trained.students, trained.log
    timings["students_s"] = time.perf_counter() - t
    if not ranks.main:
        return None

    t = time.perf_counter()
    networks = [s.to_network(f"member{k}") for k, s in enumerate(students)]
    counts_train, _ = member_counts(networks, train_split.inputs(), cfg.steps, "float", cfg.encoding)
    head = build_head(cfg, teacher_net, students, targets, trained, counts_train)
    finetune_head(head, counts_train, train_split.y, cfg, progress)
    head.eval()
    timings["head_s"] = time.perf_counter() - t

    t = time.perf_counter()
    gate = Gate(int(np.prod(ds.input_shape)), cfg.members, cfg.gate_hidden, ds.input_shape, cfg.gate_pool)
    train_gate(gate, train_split.flat(), gate_targets(head, counts_train, train_split.y), cfg, progress)
    timings["gate_s"] = time.perf_counter() - t

    model = TrainedModel(
        cfg, teacher_net, kind, tuple(ds.input_shape), ds.n_classes, targets.groups, students, networks, head, gate
    )
    t = time.perf_counter()
    summary = evaluate(model, ds)
    timings["evaluate_s"] = time.perf_counter() - t
    if probe_agreement is not None:
        log = {**log, "teacher_probe_agreement": probe_agreement}
    model.summary = replace(summary, train_log=log, timings=timings, config=asdict(cfg))
    return model


def get_teacher(cfg: TrainConfig, ds: Dataset, progress: bool, ranks: Ranks = SINGLE) -> tuple[nn.Module, str]:
    """A built-in teacher trained from scratch on ``ds``, or the user's trained one: TorchScript,
    or ONNX cut at ``cfg.features_at`` (:mod:`~sne_deploy.user_teacher`)."""
    teacher: nn.Module
    if cfg.teacher in ("mlp", "cnn"):
        teacher = make_teacher(cfg.teacher, ds.input_shape, cfg.feat_dim, ds.n_classes)
        device = ranks.device(resolve_device(cfg.device))
        train_teacher(teacher, ds, cfg.teacher_epochs, cfg.batch_size, cfg.seed, progress, device, ranks)
        kind = cfg.teacher
    elif cfg.teacher.endswith(".onnx"):
        if not cfg.features_at:
            raise InputError(f"--teacher {cfg.teacher}: an ONNX teacher needs --features-at (a node of its graph)")
        teacher, kind = OnnxTeacher(Path(cfg.teacher), cfg.features_at, ds.input_shape), "onnx"
    else:
        teacher = load_torchscript_teacher(Path(cfg.teacher))
        kind = "torchscript"
    teacher.eval()
    return teacher, kind


def check_gate_pool(pool: int, input_shape: tuple[int, ...]) -> None:
    """A pooled gate needs images at least ``pool`` pixels high and wide."""
    if pool > 1 and (len(input_shape) != 3 or min(input_shape[1:]) < pool):
        raise InputError(
            f"--gate-pool {pool}: the inputs are {'x'.join(map(str, input_shape))}, smaller than one window"
        )


def with_classifier(teacher: nn.Module, split: Split) -> Optional[float]:
    """A cut teacher whose rest is not one Linear gets a linear probe on ``split`` (the ensemble
    reuses the classifier); returns how often the probe agrees with the teacher, else None."""
    if getattr(teacher, "probe", False) and isinstance(teacher, (SplitTeacher, OnnxTeacher)):
        return fit_probe(teacher, split.x)
    return None


def feature_targets(teacher: nn.Module, split: Split, cfg: TrainConfig) -> FeatureTargets:
    """Standardise the teacher's features (std floored at 1 % of the largest, so near-constant
    dimensions do not explode) and partition them into ``cfg.members`` groups. With
    ``cfg.population`` P > 1 each dimension is predicted by P output neurons of its member
    (a group lists it P times) and the head averages them: at T = 4 one neuron's count has only
    5 levels, and output neurons are cheap next to the input layer."""
    f = teacher_features(teacher, split.x)
    mean = f.mean(0)
    std = np.maximum(f.std(0), 1e-2 * max(float(f.std(0).max()), 1e-6))
    groups = partition_features(f, cfg.members, cfg.partition, cfg.seed)
    pop = cfg.population if cfg.objective == "kd" else 1  # the labels baseline's head needs one output per dimension
    return FeatureTargets(mean, std, (f - mean) / std, [np.repeat(g, pop) for g in groups])


@torch.no_grad()
def member_classifier(teacher: nn.Module, targets: FeatureTargets) -> MemberClassifier:
    """The teacher's classifier, feature standardisation and training logits, for the
    classification terms."""
    classifier = getattr(teacher, "classifier", None)
    if not isinstance(classifier, nn.Linear):
        raise InputError("--member-ce needs the teacher's head as an nn.Linear exposed as 'classifier'")
    features = torch.from_numpy((targets.z * targets.std + targets.mean).astype(np.float32))
    return MemberClassifier(classifier, targets.mean, targets.std, classifier(features).numpy())


def build_head(
    cfg: TrainConfig,
    teacher: nn.Module,
    students: list[StudentSNN],
    targets: FeatureTargets,
    trained: TrainedStudents,
    counts_train: np.ndarray,
) -> HostHead:
    """The host head before fine-tuning: the students' readouts, imputation by training-set mean
    counts, and the teacher's classifier (or the classifier trained with the students: end to
    end, or for the labels objective on their readouts)."""
    if trained.plain is not None:
        head_lin = head_from_plain(trained.plain, targets.groups, targets.mean, targets.std)
    elif trained.classifier is not None:
        head_lin = trained.classifier  # already the students' own copy
    else:
        classifier = getattr(teacher, "classifier", None)
        if not isinstance(classifier, nn.Linear):
            raise InputError("the teacher's head must be an nn.Linear exposed as 'classifier' to be fine-tuned")
        head_lin = copy.deepcopy(classifier)
    head = HostHead(targets.groups, targets.mean, targets.std, head_lin, cfg.steps)
    with torch.no_grad():
        head.gamma.copy_(torch.cat([s.gamma for s in students]))
        head.beta.copy_(torch.cat([s.beta for s in students]))
        head.count_mean.copy_(torch.from_numpy(counts_train.mean(0)))
    return head
