"""``model.pt``: tensors and plain JSON-able values only, so ``torch.load(weights_only=True)``
can read it and a file that tries to run code is refused. Modules are rebuilt from the config."""

from __future__ import annotations

import pickle
import zipfile
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import torch

from sne_deploy.simulators.encoding import ENCODING_NAME
from sne_deploy.simulators.errors import InputError, SneError
from sne_deploy.simulators.files import atomic_file, sha256_file

from .ensemble import Gate, HostHead
from .model import TrainConfig, TrainedModel, student_spec
from .quantization import TWN_DELTA
from .records import TrainSummary
from .snn import StudentSNN
from .teacher import load_torchscript_teacher, make_teacher
from .user_teacher import OnnxTeacher, from_torchscript, to_torchscript

FORMAT = "sne-deploy-model"
VERSION = 2  # 2: the head places features with a matrix (live features only); batched students


class CheckpointError(SneError, ValueError):
    """A missing, truncated, foreign or unsafe checkpoint."""


def save(model: TrainedModel, path: Path) -> None:
    """Write atomically: a temporary file in the same folder, renamed into place."""
    cfg = model.config
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "config": asdict(cfg),
        "teacher_kind": model.teacher_kind,
        "input_shape": list(model.input_shape),
        "n_classes": model.n_classes,
        "groups": [g.tolist() for g in model.groups],
        "teacher": _teacher_state(model),
        "teacher_sha256": _sha256(Path(cfg.teacher)) if model.teacher_kind in FILE_TEACHERS else "",
        # a user's nn.Module from the Python API, as traced TorchScript (features, head, classifier)
        # (as a uint8 tensor: plain bytes do not always pass torch.load(weights_only=True))
        "teacher_script": _script_tensor(model)
        if model.teacher_kind == "module"
        else torch.zeros(0, dtype=torch.uint8),
        "students": [s.state_dict() for s in model.students],
        "head": model.head.state_dict(),
        "gate": model.gate.state_dict(),
        "summary": model.summary.to_dict() if model.summary is not None else {},
    }
    with atomic_file(Path(path), suffix=".pt") as tmp:
        torch.save(payload, tmp)


FILE_TEACHERS = ("torchscript", "onnx")  # teachers that stay the user's file, checked by sha256


def _script_tensor(model: TrainedModel) -> torch.Tensor:
    return torch.frombuffer(bytearray(to_torchscript(model.teacher, model.input_shape)), dtype=torch.uint8).clone()


def _teacher_state(model: TrainedModel) -> dict:
    """The built-in teachers' weights; an ONNX teacher's classifier (its own Gemm or the probe);
    nothing for a TorchScript file or a traced module (stored whole)."""
    if model.teacher_kind in ("mlp", "cnn"):
        return model.teacher.state_dict()
    if model.teacher_kind == "onnx":
        return model.teacher.classifier.state_dict()  # type: ignore[union-attr]
    return {}


def is_checkpoint(path: Path) -> bool:
    """Whether ``path`` is a model written by :func:`save` (what ``train --out`` may replace)."""
    if not path.is_file() or not zipfile.is_zipfile(path):
        return False
    try:
        p = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # foreign, truncated, or holding objects: not ours
        return False
    return isinstance(p, dict) and p.get("format") == FORMAT


def load(path: Path) -> TrainedModel:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; anything else is foreign
        raise CheckpointError(
            f"{path} is not a readable sne-deploy checkpoint (truncated or foreign file: not a complete torch.save archive)"
        )
    try:
        p = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"refusing to load {path}: it holds Python objects other than tensors and plain values, "
            "which could run code (not a plain-tensor checkpoint)"
        ) from None
    except Exception as e:  # torch.load raises almost anything on a foreign or truncated file
        raise CheckpointError(
            f"{path} is not a readable sne-deploy checkpoint (truncated or foreign file: {type(e).__name__})"
        ) from None
    if not isinstance(p, dict) or p.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an sne-deploy model checkpoint")
    if p.get("version") != VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {p.get('version')}; this sne-deploy reads version {VERSION}"
        )
    try:
        return _rebuild(p, path)
    except (KeyError, RuntimeError, TypeError, AttributeError, ValueError, IndexError) as e:
        detail = " ".join(str(e).split())  # torch's load_state_dict explains itself over several lines
        raise CheckpointError(f"{path} is damaged or incomplete ({type(e).__name__}: {detail[:240]})") from None


def _check_tensors(path: Path, p: dict) -> None:
    """Every stored tensor is finite, and there is one student per member and group."""
    parts = {
        "teacher": p["teacher"],
        "head": p["head"],
        "gate": p["gate"],
        **{f"student {k}": sd for k, sd in enumerate(p["students"])},
    }
    for part, sd in parts.items():
        for name, t in sd.items():
            if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise CheckpointError(f"{path}: {part} tensor '{name}' holds NaN or inf")
    k = int(p["config"]["members"])
    if len(p["students"]) != k or len(p["groups"]) != k:
        raise CheckpointError(
            f"{path}: config says {k} members but it holds {len(p['students'])} students and {len(p['groups'])} groups"
        )


# Settings that checkpoints written before they existed were trained with (their per-dataset
# defaults have changed since, so resolving them now would rebuild a different student).
LEGACY_SETTINGS = {"input_delta": TWN_DELTA, "train_head": False, "logit_kd": 0.0, "encoding": ENCODING_NAME}


def _rebuild(p: dict, path: Path) -> TrainedModel:
    if not isinstance(p["config"], dict):
        raise CheckpointError(f"{path}: its config is not a table of settings")
    _check_tensors(path, p)
    known = {f.name for f in fields(TrainConfig)}
    cfg = TrainConfig(**{**LEGACY_SETTINGS, **{k: v for k, v in p["config"].items() if k in known}})
    try:  # a stored config obeys the rules a new one does (the device is where it was trained: not checked)
        cfg.check_fields()
    except InputError as e:
        raise CheckpointError(f"{path}: its config is not usable: {e}") from None
    shape = tuple(p["input_shape"])
    teacher: torch.nn.Module
    if p["teacher_kind"] in FILE_TEACHERS:
        if _sha256(Path(cfg.teacher)) != p["teacher_sha256"]:
            raise CheckpointError(f"the teacher {cfg.teacher} changed since training (sha256 differs)")
        if p["teacher_kind"] == "onnx":
            teacher = OnnxTeacher(Path(cfg.teacher), str(cfg.features_at), shape)
            teacher.classifier.load_state_dict(p["teacher"])
        else:
            teacher = load_torchscript_teacher(Path(cfg.teacher))
    elif p["teacher_kind"] == "module":
        teacher = from_torchscript(p["teacher_script"].numpy().tobytes())
    else:
        teacher = make_teacher(p["teacher_kind"], shape, cfg.feat_dim, p["n_classes"])
        teacher.load_state_dict(p["teacher"])
    teacher.eval()
    groups = [np.asarray(g, dtype=np.int64) for g in p["groups"]]
    n_in = int(np.prod(shape))
    spec = student_spec(cfg, shape)
    students = []
    for g, sd in zip(groups, p["students"]):
        st = StudentSNN(spec, len(g))
        st.load_state_dict(sd)
        students.append(st)
    head_lin = torch.nn.Linear(cfg.feat_dim, p["n_classes"])
    head = HostHead(groups, np.zeros(cfg.feat_dim), np.ones(cfg.feat_dim), head_lin, cfg.steps)
    head.load_state_dict(p["head"])
    head.eval()
    gate = Gate(n_in, cfg.members, cfg.gate_hidden, shape, cfg.gate_pool)
    gate.load_state_dict(p["gate"])
    gate.eval()
    networks = [s.to_network(f"member{k}") for k, s in enumerate(students)]
    summary = TrainSummary.from_dict(p["summary"]) if p["summary"] else None
    return TrainedModel(
        cfg, teacher, p["teacher_kind"], shape, p["n_classes"], groups, students, networks, head, gate, summary
    )


def _sha256(path: Path) -> str:
    if not path.is_file():
        raise CheckpointError(f"the teacher file {path} is not found (the checkpoint keeps only its sha256)")
    return sha256_file(path)
