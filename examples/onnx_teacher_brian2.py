"""An ONNX classifier as the teacher -> a spiking ensemble on Brian2.

    .venv/bin/python examples/onnx_teacher_brian2.py
    .venv/bin/python examples/onnx_teacher_brian2.py --teacher model.onnx --features-at NODE --data my.npz

Any framework that writes ONNX will do; here torch writes it first. The teacher runs in
onnxruntime, cut at the node ``--features-at`` (an unknown name lists the graph's nodes); the
command line does the same with ``sne-deploy train --teacher model.onnx --features-at NODE``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from own_data_module_teacher import synthetic_npz, train_teacher

import sne_deploy as sd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teacher", default=None, help="an ONNX classifier (default: one written here)")
    ap.add_argument("--features-at", default="/hidden/hidden.1/Relu", help="the node whose output the students learn")
    ap.add_argument("--data", default=None, help="an .npz of uint8 images (default: synthetic)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(a.data) if a.data else synthetic_npz(Path(tmp) / "images.npz")
        onnx_path = Path(a.teacher) if a.teacher else Path(tmp) / "teacher.onnx"
        if not a.teacher:
            shape = np.load(data)["x_train"].shape[1:]
            torch.onnx.export(
                train_teacher(data, epochs=80),
                torch.zeros((1, 1, *shape) if len(shape) == 2 else (1, *shape)),
                str(onnx_path),
                input_names=["x"],
                output_names=["logits"],
                dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}},
                dynamo=False,
            )
        model = sd.fit(str(data), sd.TrainConfig(members=3, epochs=3), teacher=onnx_path, features_at=a.features_at)
        print(f"ONNX teacher {model.summary.teacher_accuracy:.3f} ({model.summary.teacher_macs} MACs), "
              f"ensemble {model.summary.ensemble_accuracy['fixed']:.3f}")  # fmt: skip
        bundle = sd.export(model, "brian2", Path(tmp) / "model.brian2", data=str(data))
        z = np.load(data)
        report = sd.simulate(bundle, z["x_test"][:40], z["y_test"][:40], budget=0.5, backend="brian2")
        print(
            f"brian2: accuracy {report.accuracy:.3f}, "
            f"{report.agreement.spike_mismatches if report.agreement else 0} spike mismatches against PyTorch"
        )


if __name__ == "__main__":
    main()
