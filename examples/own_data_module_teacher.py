"""Your own images and your own trained PyTorch network -> a spiking ensemble on Lava.

    .venv/bin/python examples/own_data_module_teacher.py                    # small synthetic images
    .venv/bin/python examples/own_data_module_teacher.py --data my.npz      # x_train, y_train, x_test, y_test

The teacher is a plain ``nn.Module`` with no ``features()``/``head()`` methods: ``sne_deploy.fit``
cuts it at the layer you name (``features_at``) and distils that layer's output into the
students; the rest of the network is reused as the classifier. Here the teacher is trained in a
few lines of plain torch first, as yours would have been.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

import sne_deploy as sd


def synthetic_npz(path: Path, seed: int = 0) -> Path:
    """uint8 12x12 images of 3 classes, each lighting up its own band of rows."""
    rng = np.random.default_rng(seed)

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 3, n)
        x = rng.integers(0, 60, (n, 12, 12)).astype(np.uint8)
        for c in range(3):
            x[y == c, 4 * c : 4 * c + 4] += 150
        return x, y

    (xt, yt), (xs, ys) = make(600), make(200)
    np.savez(path, x_train=xt, y_train=yt, x_test=xs, y_test=ys)
    return path


class SmallCNN(nn.Module):
    def __init__(self, channels: int, classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 8, 3, padding=1)
        self.pool = nn.AdaptiveAvgPool2d(3)
        self.hidden = nn.Sequential(nn.Linear(72, 32), nn.ReLU())  # the features the students learn
        self.fc = nn.Linear(32, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.hidden(torch.flatten(self.pool(torch.relu(self.conv(x))), 1)))


def train_teacher(data: Path, epochs: int) -> nn.Module:
    z = np.load(data)
    x = torch.from_numpy(z["x_train"].astype(np.float32) / 255.0)
    x = x[:, None] if x.dim() == 3 else x
    y = torch.from_numpy(z["y_train"].astype(np.int64))
    net = SmallCNN(x.shape[1], int(y.max()) + 1)
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    for _ in range(epochs):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    return net.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="an .npz of uint8 images (default: synthetic)")
    ap.add_argument("--out", default=None, help="folder for the bundle (default: a temporary one)")
    ap.add_argument("--backend", default="lava", help="lava (default), brian2, reference or torch")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(a.out or tmp)
        out.mkdir(parents=True, exist_ok=True)
        data = Path(a.data) if a.data else synthetic_npz(out / "images.npz")
        teacher = train_teacher(data, epochs=80)
        model = sd.fit(str(data), sd.TrainConfig(members=3, epochs=3), teacher=teacher, features_at="hidden")
        print(f"teacher {model.summary.teacher_accuracy:.3f}, ensemble {model.summary.ensemble_accuracy['fixed']:.3f}")
        bundle = sd.export(model, "lava", out / "model.lava", data=str(data), force=True)
        z = np.load(data)
        report = sd.simulate(bundle, z["x_test"][:50], z["y_test"][:50], budget=0.5, backend=a.backend)
        print(
            f"{a.backend}: accuracy {report.accuracy:.3f} at {report.awake.mean():.0%} of the members awake, "
            f"{report.agreement.spike_mismatches if report.agreement else 0} spike mismatches against PyTorch"
        )


if __name__ == "__main__":
    main()
