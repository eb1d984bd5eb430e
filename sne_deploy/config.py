"""What ``train`` can be told, declared once.

Every setting is one field of :class:`TrainConfig`; its metadata (:func:`option`) carries the help
text, the smallest value it may take, its choices and whether ``sne-deploy train`` offers it. The
CLI builds its parser from these fields (``cli._add_config_options``) and :meth:`TrainConfig.checked`
applies every rule (ranges, choices, combinations) for the CLI and the Python API alike. A field
whose default is ``None`` takes its value per dataset from :data:`DATASET_DEFAULTS`, one frozen
:class:`DatasetDefaults` record per dataset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Optional, Sequence

from sne_deploy.simulators.encoding import ENCODING_NAME, EVENTS, GRADED, INPUT_CODES
from sne_deploy.simulators.errors import InputError, check_choice

from .data import DATASETS, Dataset
from .partition import MODES as PARTITION_MODES
from .quantization import TWN_DELTA

STUDENT_KINDS = ("mlp", "conv")
BUILTIN_TEACHERS = ("mlp", "cnn")
ConvSpec = tuple[tuple[int, int, int, int], ...]
# --student conv: (channels out, kernel, stride, padding) per layer, then the dense output layer.
# Strided and narrow on purpose: every neuron of an awake member is updated at every step (52 pJ
# on Loihi), so the maps must stay small; 28x28 -> 8x9x9 -> 16x5x5 (1,048 neurons) on Fashion-MNIST.
# Measured (benchmarks/fashion_students.py): fewer input-layer events, but more energy overall.
CONV_STUDENT: ConvSpec = ((8, 5, 3, 1), (16, 3, 2, 1))
# digits' 8x8 images: 8x8x8 -> 16x4x4 (768 neurons)
CONV_STUDENT_SMALL: ConvSpec = ((8, 3, 1, 1), (16, 3, 2, 1))


@dataclass(frozen=True)
class DatasetDefaults:
    """The settings that depend on the dataset (each a :class:`TrainConfig` field defaulting to None).

    Fashion-MNIST's choices come from benchmarks/fashion_students.py (results/fashion_objectives.json):
    on Loihi's constants the input layer's events (input spikes x non-zero fan-out) are the energy,
    so a sparse input layer (input_delta 1.5) pays for twice the hidden width, and end-to-end
    training with KD on the teacher's logits lifts the full ensemble and the cascade alike. The
    graded code sends each pixel once instead of round(T x) times: half the energy for +0.4 pt at
    the ablations' scale (results/fashion_students_graded.json) and the same accuracy at full scale
    (results/fashion_baselines_graded.json); the gate sees the image pooled 7 x 7 through 16 hidden
    units, the cheapest gate that kept the cascade's validation accuracy (results/fashion_gate.json).
    """

    teacher: str
    feat_dim: int
    steps: int
    hidden: int
    population: int
    ensemble_ce: float
    teacher_epochs: int
    batch_size: int
    conv: ConvSpec
    input_delta: float
    train_head: bool
    logit_kd: float
    encoding: str
    gate_pool: int
    gate_hidden: int


DATASET_DEFAULTS: dict[str, DatasetDefaults] = {
    "digits": DatasetDefaults(
        "mlp", 32, 16, 48, 1, 0.0, 60, 64, CONV_STUDENT_SMALL, TWN_DELTA, False, 0.0, ENCODING_NAME, 1, 64
    ),
    "fashion-mnist": DatasetDefaults("cnn", 64, 4, 128, 4, 1.0, 20, 128, CONV_STUDENT, 1.5, True, 1.0, GRADED, 7, 16),
    "cifar10": DatasetDefaults(
        "cnn", 64, 8, 256, 1, 0.0, 10, 128, CONV_STUDENT, TWN_DELTA, False, 0.0, ENCODING_NAME, 1, 64
    ),
}


def option(
    default: Any,
    help: str,
    *,
    minimum: Optional[float] = None,
    choices: Optional[Sequence[str]] = None,
    metavar: Optional[str] = None,
    flag: Optional[str] = None,
    cli: bool = True,
) -> Any:
    """A :class:`TrainConfig` field with what the parser and the checks need to know about it."""
    return field(
        default=default,
        metadata={"help": help, "minimum": minimum, "choices": choices, "metavar": metavar, "flag": flag, "cli": cli},
    )


def flag(name: str) -> str:
    """The command-line option of a field (``members`` -> ``--members``)."""
    f = next(f for f in fields(TrainConfig) if f.name == name)
    return f.metadata.get("flag") or "--" + name.replace("_", "-")


def per_dataset_help(name: str) -> str:
    """'digits 16, fashion-mnist 4, cifar10 8' for a per-dataset field."""

    def show(v: Any) -> str:
        if isinstance(v, tuple):
            return ";".join(",".join(str(x) for x in layer) for layer in v)
        return (
            {True: "on", False: "off"}.get(v, str(v))
            if isinstance(v, bool)
            else f"{v:g}"
            if isinstance(v, float)
            else str(v)
        )

    return ", ".join(f"{ds} {show(getattr(d, name))}" for ds, d in DATASET_DEFAULTS.items())


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of one training run.

    The fields of :class:`DatasetDefaults` default to ``None``, "the dataset's default", which
    :meth:`resolved` (and :meth:`checked`) fill in from :data:`DATASET_DEFAULTS`; they are typed
    as what they hold once resolved, and every function past :func:`~sne_deploy.train.train`'s
    first line sees a resolved config."""

    data: str = option(
        "digits",
        "dataset: digits, fashion-mnist, cifar10 (offline), or your own: an .npz with x_train, y_train, x_test, "
        "y_test (x_val, y_val optional) or a folder of class folders of images",
        metavar="{digits,fashion-mnist,cifar10,PATH}",
    )
    data_dir: Optional[str] = option(None, "folder with the dataset files (fashion-mnist: Debian's by default)")
    members: int = option(8, "K, the number of student SNNs", minimum=1)
    partition: str = option(
        "informed",
        "how teacher features are split among members (informed = correlated groups)",
        choices=PARTITION_MODES,
    )
    tna: float = option(
        0.0,
        "Twin Network Augmentation: weight of the MSE between each student and its full-precision twin (0 = off)",
        minimum=0,
        metavar="LAMBDA",
    )
    objective: str = option(
        "kd",
        "kd: regress the teacher's features; labels: no teacher signal (ablation baseline)",
        choices=("kd", "labels"),
        cli=False,
    )
    spike_reg: float = option(
        0.0, "weight of the penalty on the mean firing probability per neuron and step", minimum=0
    )
    logit_reg: float = option(0.0, "weight of the penalty on the mean squared output rate (spikes per step)", minimum=0)
    epochs: int = option(30, "student epochs", minimum=1)
    seed: int = option(0, "seed of data split, initialisation and shuffling")
    teacher: str = option(
        None,
        "mlp or cnn (trained here), or your trained one: a TorchScript file with features() and head(), or an "
        "ONNX classifier cut at --features-at",
    )
    features_at: Optional[str] = option(
        None, "an ONNX teacher's feature layer: a node or tensor name of its graph (an unknown one lists them)"
    )
    teacher_epochs: int = option(None, "teacher epochs", minimum=1)
    feat_dim: int = option(None, "the built-in teacher's feature dimensions", minimum=1, cli=False)
    steps: int = option(None, "time steps T per sample", minimum=1)
    hidden: int = option(None, "hidden neurons per student", minimum=1)
    batch_size: int = option(None, "training batch size", minimum=1, cli=False)
    du: float = option(1.0, "students' current decay", cli=False)
    dv: float = option(0.25, "students' voltage decay", cli=False)
    lr: float = option(3e-3, "students' learning rate", cli=False)
    member_dropout: float = option(0.5, "probability that the head trains with a member asleep", cli=False)
    head_epochs: int = option(20, "head fine-tuning epochs", minimum=0, cli=False)
    gate_epochs: int = option(60, "gate epochs", minimum=0, cli=False)
    gate_hidden: int = option(None, "gate hidden width", minimum=1, cli=False)
    gate_pool: int = option(None, "the gate sees the image average-pooled in N x N windows (1: every pixel)", minimum=1)
    limit_train: Optional[int] = option(None, "use only the first N training samples", minimum=1)
    population: int = option(None, "output neurons per teacher feature, averaged by the head", minimum=1)
    ensemble_ce: float = option(
        None, "weight of the ensemble's classification term during student training", minimum=0, cli=False
    )
    member_ce: float = option(
        1.0,
        "each member's own classification term (teacher head, other features at their mean); 0 = off",
        minimum=0,
        metavar="WEIGHT",
    )
    feature_weight: float = option(
        1.0,
        "weight of the feature-regression term (each member's part of the teacher's features)",
        minimum=0,
        metavar="WEIGHT",
    )
    train_head: bool = option(None, "train the teacher's classifier with the students, end to end")
    logit_kd: float = option(
        None,
        "KD on the teacher's logits (temperature 4) in the ensemble's classification term",
        minimum=0,
        metavar="WEIGHT",
    )
    kd_temperature: float = option(4.0, "temperature of KD on the teacher's logits", minimum=0, cli=False)
    student: str = option(
        "mlp",
        "student kind: mlp (input -> hidden -> outputs) or conv (strided Conv2d -> LIF layers -> outputs)",
        choices=STUDENT_KINDS,
    )
    conv: ConvSpec = option(
        None,
        "conv students' layers: channels, kernel, stride, padding each",
        metavar="C,K,S,P[;C,K,S,P]",
        flag="--conv-layers",
    )
    input_delta: float = option(
        None,
        "the input layer's ternary threshold in mean |w| (TWN: 0.7; larger = "
        "sparser input layer, fewer synaptic events)",
        minimum=0,
        metavar="DELTA",
    )
    input_event_cost: float = option(
        0.0,
        "weight of the penalty on the input layer's synaptic events (each input spike x its pixel's "
        "non-zero fan-out, as a fraction of the most there could be): drops busy pixels' synapses first",
        minimum=0,
        metavar="WEIGHT",
    )
    encoding: str = option(
        None,
        "input code: regular-if, floor(T x) spikes per pixel, or regular-if-centred, round(T x); graded, one "
        "graded spike of round(15 x) per pixel at the first step, held by the input layer's current (one "
        "synaptic event per pixel and synapse); events (event data's own counts per bin, no encoder) is what "
        "event data always take",
        choices=INPUT_CODES,
    )
    device: str = option(
        "auto", "where the teacher and the students train (auto: CUDA when torch sees a GPU)", metavar="{auto,cpu,cuda}"
    )

    @property
    def defaults_from(self) -> str:
        """Whose defaults this run takes: the built-in dataset's own, or for the user's data those
        of the built-in dataset of its image size (:func:`~sne_deploy.own_data.defaults_key`)."""
        if self.data in DATASET_DEFAULTS:
            return self.data
        from .own_data import defaults_key, peek_image_shape

        return defaults_key(peek_image_shape(self.data))

    def resolved(self) -> "TrainConfig":
        """The per-dataset defaults filled in (the labels objective trains no teacher classifier);
        event data's own T and code (:func:`fit_to_data`); a path to the user's data made
        absolute, so that export and simulate find it from anywhere."""
        if not self.data.startswith("memory:"):  # a dataset in memory was fitted when it was handed over
            self = fit_to_data(self, _event_bins(self.data))
        d = DATASET_DEFAULTS[self.defaults_from]
        fill = {f.name: getattr(d, f.name) for f in fields(d)}
        if self.objective == "labels":  # no teacher classifier to train, no teacher logits to match
            fill.update(train_head=False, logit_kd=0.0)
        if self.student != "conv":  # only conv students have conv layers (and checked() stays idempotent)
            del fill["conv"]
        data = self.data if self.data in DATASETS else str(Path(self.data).resolve())
        teacher = self.teacher
        if teacher is not None and teacher not in BUILTIN_TEACHERS:  # the user's file, found from anywhere
            teacher = str(Path(teacher).resolve())
        fill = {k: v for k, v in fill.items() if getattr(self, k) is None}
        return replace(self, **{**fill, "data": data, **({"teacher": teacher} if teacher is not None else {})})

    def check_fields(self) -> None:
        """Each field on its own: its range and its choices (what a stored config must also meet)."""
        check_data_name(self.data)
        for f in fields(self):
            value, m = getattr(self, f.name), f.metadata
            if value is None:
                continue
            if m["choices"] is not None:
                check_choice(flag(f.name), value, m["choices"])
            if m["minimum"] is not None and not (
                isinstance(value, (int, float)) and math.isfinite(value) and value >= m["minimum"]
            ):
                raise InputError(f"{flag(f.name)} must be a number >= {m['minimum']:g}, got {value}")

    def checked(self) -> "TrainConfig":
        """Every rule on the settings, before any training: ranges and choices of each field, then
        the combinations; returns :meth:`resolved`. Messages name the command-line option."""
        from .model import resolve_device

        self.check_fields()
        check_data(self.data)
        if self.features_at and not str(self.teacher or "").endswith(".onnx"):
            raise InputError("--features-at names the feature layer of an ONNX teacher: give --teacher MODEL.onnx")
        resolve_device(self.device)
        if self.conv is not None and self.student != "conv":
            raise InputError("--conv-layers shapes convolutional students: add --student conv")
        if self.input_event_cost and self.student == "conv":
            raise InputError(
                "--input-event-cost prices a dense input layer's fan-out: it takes --student mlp, not conv"
            )
        cfg = self.resolved()
        check_objective(cfg)
        if cfg.teacher in BUILTIN_TEACHERS and cfg.members > int(cfg.feat_dim):
            raise InputError(
                f"--members {cfg.members} exceeds the {cfg.feat_dim} feature dimensions "
                f"of the {cfg.data} teacher; each member needs at least one"
            )
        return cfg


def _event_bins(data: str) -> Optional[int]:
    """T of a user's event dataset; None for images and the built-in datasets."""
    if data in DATASETS:
        return None
    from .own_data import peek_data_shape

    shape = peek_data_shape(data)
    return shape.event_bins if shape else None


def fit_to_data(cfg: TrainConfig, event_bins: Optional[int]) -> TrainConfig:
    """Event data (``event_bins`` = their T) decide the time steps and the code: filled in where
    unset, a one-line refusal where a setting contradicts them (and for ``--encoding events`` on
    images)."""
    if event_bins is None:
        if cfg.encoding == EVENTS:
            raise InputError(
                f"--encoding events takes event data (x arrays of shape (N, T, C, H, W)); {cfg.data} holds images"
            )
        return cfg
    if cfg.steps is not None and cfg.steps != event_bins:
        raise InputError(
            f"--steps {cfg.steps}: the event data in {cfg.data} have {event_bins} time bins per sample "
            f"(leave --steps out, or give {event_bins})"
        )
    if cfg.encoding is not None and cfg.encoding != EVENTS:
        raise InputError(
            f"--encoding {cfg.encoding}: {cfg.data} holds event counts per bin, which the students take as "
            "they are (encoding events, no encoder)"
        )
    return replace(cfg, steps=event_bins, encoding=EVENTS)


def checked_for(cfg: TrainConfig, data: Dataset) -> TrainConfig:
    """:meth:`TrainConfig.checked` for a dataset in memory (the Python API), which no file can
    tell about: the defaults of the built-in dataset of its image size (a built-in dataset its
    own), event data's T and code, and its own name on the record (a path made absolute)."""
    from .own_data import IN_MEMORY, defaults_key

    name = data.name if data.name in DATASETS or data.name.startswith(IN_MEMORY) else str(Path(data.name).resolve())
    fitted = fit_to_data(replace(cfg, data=name), data.event_bins)
    as_builtin = replace(fitted, data=data.name if data.name in DATASETS else defaults_key(data.input_shape))
    if data.event_bins:  # a built-in dataset holds images: its checks run on an image code
        as_builtin = replace(as_builtin, encoding=ENCODING_NAME)
    done = as_builtin.checked()
    return replace(done, data=name, encoding=fitted.encoding if data.event_bins else done.encoding)


def check_data_name(data: str) -> None:
    """A built-in dataset's name, a path to the user's data, or a dataset given in memory."""
    from .own_data import IN_MEMORY, is_own_data

    if data in DATASETS or is_own_data(data) or data.startswith(IN_MEMORY):
        return
    raise InputError(
        f"--data: unknown dataset '{data}' (choose from {', '.join(DATASETS)}, or give an .npz file "
        "or a folder of class folders)"
    )


def check_data(data: str) -> None:
    """A built-in dataset's name, or an existing .npz file or folder (read and checked when loaded)."""
    check_data_name(data)
    if data in DATASETS:
        return
    p = Path(data)
    if not (p.is_dir() or p.is_file()):
        raise InputError(f"--data {data}: no such file or folder")
    if p.is_file() and p.suffix != ".npz":
        raise InputError(f"--data {data}: a dataset file must be an .npz (x_train, y_train, x_test, y_test)")


def check_objective(cfg: TrainConfig) -> None:
    """Refuse loss settings that cannot work together (a resolved config)."""
    check_choice("objective", cfg.objective, ("kd", "labels"))
    if (cfg.train_head or cfg.logit_kd) and not (
        cfg.objective == "kd" and (cfg.member_ce > 0 or (cfg.ensemble_ce or 0) > 0)
    ):
        raise InputError(
            "--train-head and --logit-kd need the KD objective with a classification term "
            "(--member-ce or the ensemble term > 0)"
        )
    if cfg.logit_kd and not cfg.ensemble_ce:
        raise InputError(
            f"--logit-kd applies to the ensemble's classification term, which the {cfg.data} defaults leave off"
        )


def parse_conv_layers(text: str) -> ConvSpec:
    """``--conv-layers "C,K,S,P;C,K,S,P"``: per layer output channels, kernel, stride and padding."""
    layers = []
    for part in text.split(";"):
        try:
            values = tuple(int(v) for v in part.split(","))
        except ValueError:
            values = ()
        if len(values) != 4 or min(values[:3]) < 1 or values[3] < 0:
            raise InputError(
                f"--conv-layers '{text}': each layer is C,K,S,P (channels, kernel, stride >= 1; "
                "padding >= 0), layers separated by ';'"
            )
        layers.append(values)
    return tuple(layers)
