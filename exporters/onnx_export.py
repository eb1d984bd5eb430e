"""Host-side parts (gate, head) to ONNX, checked by ``onnx.checker`` and by running the file with
onnxruntime against the torch module (max abs difference <= 1e-5)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from .checks import ExportError

TOLERANCE = 1e-5
OPSET = 17


def export_onnx(module: torch.nn.Module, inputs: Sequence[np.ndarray], names: Sequence[str], path: Path) -> float:
    """Write ``module`` to ``path``; return the max abs difference to torch on ``inputs``."""
    import onnx

    module.eval()
    args = tuple(torch.from_numpy(np.asarray(a, dtype=np.float32)) for a in inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter announces its own deprecation
        torch.onnx.export(
            module,
            args,
            str(path),
            dynamo=False,
            input_names=list(names),
            output_names=["output"],
            dynamic_axes={n: {0: "batch"} for n in list(names) + ["output"]},
            opset_version=OPSET,
        )
    onnx.checker.check_model(str(path), full_check=True)
    with torch.no_grad():
        expected = module(*args).numpy()
    got = run_onnx(path, dict(zip(names, inputs)))
    diff = float(np.abs(got - expected).max(initial=0.0))
    if diff > TOLERANCE:
        raise ExportError(f"{path.name}: ONNX output differs from torch by {diff:.2e} (> {TOLERANCE})")
    return diff


def run_onnx(path: Path, feeds: dict[str, np.ndarray]) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {k: np.asarray(v, dtype=np.float32) for k, v in feeds.items()})[0]
