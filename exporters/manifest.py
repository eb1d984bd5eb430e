"""``manifest.json``, the bundle's table of contents, as a typed record.

:class:`ModelInfo` is what the exporter is told about the model (``sne_deploy.deploy`` fills it);
:class:`Manifest` adds what writing the bundle produced (files and their sha256, sizes, checks).
``Manifest.to_dict``/``from_dict`` are the one place the JSON form is written and read:
``from_dict`` checks every field's type and range and the fields' consistency, so a damaged or
hand-edited manifest is refused with one line naming the field, before anything runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Callable, Optional

from sne_deploy.simulators.encoding import EVENTS, INPUT_CODES, input_width
from sne_deploy.simulators.errors import SneError

BUNDLE_FORMAT = "sne-deploy-bundle"
# 2: cascade_calibration and head_macs; 3: members' exact values under generic sne_ keys; 4: input_normalisation;
# 5: host_work (the teacher's, gate's and head's MACs, weights and activations, for the memory energy model);
# 6: time_exit_calibration (the cascade-time policy's thresholds, in member-steps)
BUNDLE_VERSION = 6
HOST_NETWORKS = ("gate", "head")  # always in host_work; "teacher" when the model knew it
IMPUTATION_RULE = "a sleeping member's output spike counts are its training-set mean counts"


class BundleError(SneError, ValueError):
    """A bundle that is missing, foreign, incomplete or tampered with."""


@dataclass(frozen=True)
class CalibrationRow:
    """A threshold that wakes ``budget`` of the members on validation data: the gate's score
    threshold (``budget_calibration``), the cascade's confidence threshold (``cascade_calibration``)
    or that of the cascade in time (``time_exit_calibration``, the budget in member-steps)."""

    budget: float
    threshold: float  # may be +inf (only the best member) or -inf (all members)
    val_awake_fraction: float


@dataclass(frozen=True)
class ModelInfo:
    dataset: str  # a built-in dataset's name, or the user's .npz file or image folder
    data_seed: int
    # raw input values to [0, 1]: clip((x - low) / (high - low), 0, 1) for data of dtype (a user's
    # dataset; identity, 0 and 1, for the built-in ones): simulate --inputs applies it
    input_normalisation: dict[str, Any]
    input_shape: list[int]
    n_classes: int
    encoding: str
    steps: int
    dt: float
    partition: str
    groups: list[list[int]]
    count_mean: list[float]  # imputation values, concatenated over members
    budget_calibration: list[CalibrationRow]
    cascade_calibration: list[CalibrationRow]  # head-confidence thresholds of the cascade policy
    time_exit_calibration: list[CalibrationRow]  # those of cascade-time (read after every step; member-steps)
    fixed_subsets: dict[int, list[int]]  # size m -> best static subset of m members
    gate_macs: int
    head_macs: int  # one evaluation of the host head (readouts + classifier)
    teacher_macs: Optional[int]
    teacher_accuracy: Optional[float]
    trained_accuracy: dict[str, Optional[float]]  # mode -> test accuracy at training time
    # network -> one sample's pass: {"macs", "weights", "activations"} (sne_deploy.energy.AnnWork)
    host_work: dict[str, dict[str, float]]


@dataclass(frozen=True)
class Manifest(ModelInfo):
    target: str
    members: int
    member_files: list[str]
    member_sizes: list[list[int]]
    onnx_max_abs_diff: dict[str, float]
    check_warnings: list[str]
    files: dict[str, str]  # relative path -> sha256
    toolkit_version: str

    @property
    def n_inputs(self) -> int:
        """Inputs per time step (a student's input layer; the gate's input)."""
        return math.prod(self.input_shape)

    @property
    def input_width(self) -> int:
        """Numbers per sample fed to ``simulate``: ``n_inputs`` intensities, or for event data
        its counts in each of the ``steps`` bins."""
        return input_width(self.n_inputs, self.steps, self.encoding)

    def to_dict(self) -> dict:
        d: dict[str, Any] = {"format": BUNDLE_FORMAT, "format_version": BUNDLE_VERSION}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "count_mean":
                d["imputation"] = {"rule": IMPUTATION_RULE, "count_mean": v}
            elif f.name in ("budget_calibration", "cascade_calibration", "time_exit_calibration"):
                d[f.name] = [
                    {
                        "budget": r.budget,
                        "threshold": _json_float(r.threshold),
                        "val_awake_fraction": r.val_awake_fraction,
                    }
                    for r in v
                ]
            elif f.name == "fixed_subsets":
                d[f.name] = {str(k): s for k, s in v.items()}
            else:
                d[f.name] = v
        return d

    @classmethod
    def from_dict(cls, d: Any, where: str) -> "Manifest":
        """Read and check the JSON form; ``where`` names the bundle in error messages."""
        if not isinstance(d, dict) or d.get("format") != BUNDLE_FORMAT:
            raise BundleError(f"{where} is not an sne-deploy bundle")
        if d.get("format_version") != BUNDLE_VERSION:
            raise BundleError(
                f"{where} has bundle format {d.get('format_version')}; this sne-deploy reads {BUNDLE_VERSION}"
            )
        r = _Reader(d, where)
        members = r.get("members", _int(1))
        m = cls(
            dataset=r.get("dataset", str),
            data_seed=r.get("data_seed", _int(0)),
            input_normalisation=r.get("input_normalisation", _normalisation),
            input_shape=r.get("input_shape", _list(_int(1))),
            n_classes=r.get("n_classes", _int(2)),
            encoding=r.get("encoding", str),
            steps=r.get("steps", _int(1)),
            dt=r.get("dt", _float(positive=True)),
            partition=r.get("partition", str),
            groups=r.get("groups", _list(_list(_int(0)))),
            count_mean=r.get("imputation", _imputation),
            budget_calibration=r.get("budget_calibration", _list(_calibration_row)),
            cascade_calibration=r.get("cascade_calibration", _list(_calibration_row)),
            time_exit_calibration=r.get("time_exit_calibration", _list(_calibration_row)),
            fixed_subsets={int(k): v for k, v in r.get("fixed_subsets", _dict(_list(_int(0)))).items()},
            gate_macs=r.get("gate_macs", _int(0)),
            head_macs=r.get("head_macs", _int(0)),
            teacher_macs=r.get("teacher_macs", _optional(_int(0))),
            teacher_accuracy=r.get("teacher_accuracy", _optional(_float())),
            trained_accuracy=r.get("trained_accuracy", _dict(_optional(_float()))),
            host_work=r.get("host_work", _host_work),
            target=r.get("target", str),
            members=members,
            member_files=r.get("member_files", _list(str)),
            member_sizes=r.get("member_sizes", _list(_list(_int(1)))),
            onnx_max_abs_diff=r.get("onnx_max_abs_diff", _dict(_float())),
            check_warnings=r.get("check_warnings", _list(str)),
            files=r.get("files", _dict(str)),
            toolkit_version=r.get("toolkit_version", str),
        )
        m._check_consistency(where)
        return m

    def _check_consistency(self, where: str) -> None:
        k = self.members
        problems = []
        if len(self.member_files) != k or len(self.member_sizes) != k or len(self.groups) != k:
            problems.append(
                f"members = {k} but member_files, member_sizes and groups list "
                f"{len(self.member_files)}, {len(self.member_sizes)}, {len(self.groups)}"
            )
        elif any(len(g) != s[-1] for g, s in zip(self.groups, self.member_sizes)):
            problems.append("a group's size differs from its member's output size")
        elif len(self.count_mean) != sum(s[-1] for s in self.member_sizes):
            problems.append("imputation.count_mean does not have one value per member output")
        elif any(s[0] != self.n_inputs for s in self.member_sizes):
            problems.append(f"a member's input size differs from input_shape {self.input_shape}")
        if self.encoding not in INPUT_CODES:
            problems.append(f"encoding '{self.encoding}' is none of {', '.join(INPUT_CODES)}")
        elif self.encoding == EVENTS and not float(self.input_normalisation.get("high", 0)) > 0:
            problems.append("event inputs need input_normalisation.high, the scale of their frames, > 0")
        if sorted(self.fixed_subsets) != list(range(1, k + 1)) or any(
            len(s) != m or any(not 0 <= j < k for j in s) for m, s in self.fixed_subsets.items()
        ):
            problems.append(f"fixed_subsets must give a subset of each size 1..{k} of members 0..{k - 1}")
        if problems:
            raise BundleError(f"{where}: manifest.json is inconsistent: {problems[0]}")


# --- a small schema reader: each check returns the value or raises ValueError with the reason ---


class _Reader:
    def __init__(self, d: dict, where: str) -> None:
        self.d, self.where = d, where

    def get(self, key: str, check: Callable[[Any], Any]) -> Any:
        if key not in self.d:
            raise BundleError(f"{self.where}: manifest.json has no '{key}'")
        try:
            return check(self.d[key])
        except (ValueError, TypeError) as e:
            raise BundleError(f"{self.where}: manifest.json field '{key}' is invalid: {e}") from None


def _int(minimum: int) -> Callable[[Any], int]:
    def check(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise ValueError(f"expected an integer >= {minimum}, got {v!r}")
        return v

    return check


def _float(positive: bool = False) -> Callable[[Any], float]:
    def check(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or (positive and v <= 0):
            raise ValueError(f"expected a finite{' positive' if positive else ''} number, got {v!r}")
        return float(v)

    return check


def _optional(inner: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda v: None if v is None else inner(v)


def _list(inner: Callable[[Any], Any]) -> Callable[[Any], list]:
    def check(v: Any) -> list:
        if not isinstance(v, list):
            raise ValueError(f"expected a list, got {type(v).__name__}")
        return [inner(x) for x in v]

    return check


def _dict(inner: Callable[[Any], Any]) -> Callable[[Any], dict]:
    def check(v: Any) -> dict:
        if not isinstance(v, dict):
            raise ValueError(f"expected an object, got {type(v).__name__}")
        return {str(k): inner(x) for k, x in v.items()}

    return check


def _threshold(v: Any) -> float:
    """JSON has no infinity: thresholds of +-inf are written as the strings "inf" / "-inf"."""
    if v in ("inf", "-inf"):
        return float(v)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v):
        raise ValueError(f"expected a number, 'inf' or '-inf', got {v!r}")
    return float(v)


def _json_float(x: float) -> Any:
    return str(x) if math.isinf(x) else x


def _calibration_row(v: Any) -> CalibrationRow:
    if not isinstance(v, dict):
        raise ValueError("expected objects with budget, threshold and val_awake_fraction")
    return CalibrationRow(
        _float(positive=True)(v.get("budget")), _threshold(v.get("threshold")), _float()(v.get("val_awake_fraction"))
    )


def _host_work(v: Any) -> dict[str, dict[str, float]]:
    work = _dict(_dict(_float()))(v)
    for name in HOST_NETWORKS:
        if name not in work:
            raise ValueError(f"expected the work of the {name}")
    for name, w in work.items():
        if sorted(w) != ["activations", "macs", "weights"] or min(w.values()) < 0:
            raise ValueError(f"{name}: expected macs, weights and activations >= 0")
    return work


def _normalisation(v: Any) -> dict[str, Any]:
    if not isinstance(v, dict) or not isinstance(v.get("dtype"), str):
        raise ValueError("expected an object with 'dtype', 'low' and 'high'")
    low, high = _float()(v.get("low")), _float()(v.get("high"))
    if high <= low:
        raise ValueError(f"expected low < high, got {low} and {high}")
    return {"dtype": v["dtype"], "low": low, "high": high}


def _imputation(v: Any) -> list[float]:
    if not isinstance(v, dict):
        raise ValueError("expected an object with 'count_mean'")
    return _list(_float())(v.get("count_mean"))
