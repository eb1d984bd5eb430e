"""Teachers: ANNs exposing ``features(x)`` (the penultimate vector the students learn) and
``head(f)`` (the classifier the ensemble reuses). Trained from scratch; nothing is downloaded.
A user's own teacher can be any TorchScript module with those two methods."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from sne_deploy.simulators.errors import InputError

from .data import Dataset, minibatches
from .distributed import SINGLE, Ranks, sync_batch_norm
from .energy import AnnWork


class MLPTeacher(nn.Module):
    """For small flat inputs (digits): in -> hidden -> features (ReLU) -> classes."""

    def __init__(self, in_dim: int, hidden: int = 128, feat_dim: int = 32, n_classes: int = 10) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(), nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, feat_dim), nn.ReLU()
        )
        self.classifier = nn.Linear(feat_dim, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def head(self, f: torch.Tensor) -> torch.Tensor:
        return self.classifier(f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class CNNTeacher(nn.Module):
    """For images (Fashion-MNIST, CIFAR-10): two conv blocks with batch norm -> features (ReLU)
    -> classes. Batch norm makes the short CPU training reach ≥ 0.92 on Fashion-MNIST; the teacher
    never goes to the chip, so it is not folded (``teacher_macs`` counts the convs and linears)."""

    def __init__(
        self, in_shape: tuple[int, int, int], feat_dim: int = 64, n_classes: int = 10, width: int = 32
    ) -> None:
        super().__init__()
        c, h, w = in_shape
        self.conv = nn.Sequential(
            nn.Conv2d(c, width, 3, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1, bias=False),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.fc = nn.Sequential(nn.Dropout(0.25), nn.Linear(2 * width * (h // 4) * (w // 4), feat_dim), nn.ReLU())
        self.classifier = nn.Linear(feat_dim, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x))

    def head(self, f: torch.Tensor) -> torch.Tensor:
        return self.classifier(f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def make_teacher(kind: str, in_shape: tuple[int, ...], feat_dim: int, n_classes: int) -> nn.Module:
    if kind == "mlp":
        n = 1
        for d in in_shape:
            n *= d
        return MLPTeacher(n, hidden=4 * feat_dim, feat_dim=feat_dim, n_classes=n_classes)
    if kind == "cnn":
        return CNNTeacher(tuple(in_shape), feat_dim=feat_dim, n_classes=n_classes)  # type: ignore[arg-type]
    raise InputError(f"unknown teacher kind '{kind}' (mlp, cnn)")


def load_torchscript_teacher(path: Path) -> torch.jit.ScriptModule:
    """A user's teacher: TorchScript with ``features`` and ``head`` methods, loaded on the CPU."""
    try:
        m = torch.jit.load(str(path), map_location="cpu")
    except Exception as e:
        raise InputError(f"cannot load TorchScript teacher {path}: {type(e).__name__}") from None
    for name in ("features", "head"):
        if not hasattr(m, name):
            raise InputError(f"TorchScript teacher {path} has no '{name}' method (needs features(x) and head(f))")
    return m


def teacher_macs(teacher: nn.Module, in_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass (Linear and Conv2d layers), for the energy estimate;
    an ONNX teacher counts its graph's (``macs``)."""
    if isinstance(getattr(teacher, "macs", None), int):
        return int(teacher.macs)  # type: ignore[arg-type]
    return int(ann_work(teacher, in_shape).macs)


def ann_work(net: nn.Module, in_shape: tuple[int, ...]) -> AnnWork:
    """One sample's pass through ``net``'s Linear and Conv2d layers: MACs, weights stored and
    activations (the input and those layers' outputs), for the energy models; an ONNX teacher
    brings its graph's (``work``)."""
    if isinstance(getattr(net, "work", None), AnnWork):
        return net.work  # type: ignore[return-value]
    macs, weights, activations = 0, 0, int(np.prod(in_shape))
    hooks = []

    def lin(m: nn.Linear, inp, out) -> None:
        nonlocal macs, weights, activations
        macs += m.in_features * m.out_features
        weights += m.in_features * m.out_features
        activations += int(out[0].numel())

    def conv(m: nn.Conv2d, inp, out) -> None:
        nonlocal macs, weights, activations
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        macs += int(out[0].numel()) * k
        weights += m.out_channels * k
        activations += int(out[0].numel())

    for m in net.modules():
        if isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(lin))
        elif isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv))
    with torch.no_grad():
        net(torch.zeros((1, *in_shape)))
    for h in hooks:
        h.remove()
    return AnnWork(float(macs), float(weights), float(activations))


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Images (N, C, H, W): one random shift of up to 2 pixels per batch (zero fill) and a
    horizontal flip of each image with probability 1/2, the usual cheap augmentation for
    Fashion-MNIST-sized images."""
    n, _, h, w = x.shape
    pad = torch.nn.functional.pad(x, (2, 2, 2, 2))
    dy, dx = (int(v) for v in torch.randint(0, 5, (2,), generator=gen))
    out = pad[:, :, dy : dy + h, dx : dx + w]
    flip = torch.rand(n, generator=gen) < 0.5
    return torch.where(flip[:, None, None, None], out.flip(3), out)


def train_teacher(
    teacher: nn.Module,
    ds: Dataset,
    epochs: int,
    batch: int,
    seed: int,
    progress: bool,
    device: Optional[torch.device] = None,
    ranks: Ranks = SINGLE,
) -> None:
    """Adam with a cosine learning-rate schedule; image teachers see :func:`augment`ed batches.
    Batches are drawn and augmented on the CPU (the same draws on every device and every rank) and
    trained on ``device``; under torchrun each rank trains on its share of every batch in DDP
    (:mod:`~sne_deploy.distributed`). The teacher comes back on the CPU, where features, export
    and checkpoints want it."""
    device = device or torch.device("cpu")
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.from_numpy(ds.train.x), torch.from_numpy(ds.train.y)
    images = x.dim() == 4 and x.shape[-1] > 8  # digits' 8x8 images are too small to shift
    module = sync_batch_norm(teacher, ranks, device).to(device)
    trainer = ranks.wrap(module, device)
    opt = torch.optim.Adam(module.parameters(), lr=2e-3 if images else 1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))
    trainer.train()
    for _ in tqdm(range(epochs), desc="teacher", disable=not progress, leave=False):
        for b in minibatches(len(y), batch, rng):
            xb = augment(x[b], gen) if images else x[b]
            share = ranks.share(len(b))
            pos = torch.from_numpy(share.positions)
            opt.zero_grad()
            loss = F.cross_entropy(trainer(xb[pos].to(device)), y[b][pos].to(device))
            (loss * share.scale).backward()
            opt.step()
        sched.step()
    if module is not teacher:  # SyncBatchNorm copies: the trained values go back into the plain teacher
        teacher.load_state_dict(module.state_dict())
    teacher.cpu().eval()


@torch.no_grad()
def teacher_features(teacher: nn.Module, x: np.ndarray, batch: int = 2000) -> np.ndarray:
    """The teacher's features of ``x``, in batches. A teacher is any module with ``features()``
    and ``head()`` (the built-ins, a user's TorchScript); torch types such attributes as
    ``Tensor | Module``, hence the ignores here and in :func:`teacher_head`."""
    parts = [teacher.features(torch.from_numpy(x[i : i + batch])) for i in range(0, len(x), batch)]  # type: ignore[operator]
    return torch.cat(parts).numpy()


@torch.no_grad()
def teacher_head(teacher: nn.Module, features: torch.Tensor) -> torch.Tensor:
    """The teacher's logits from its features."""
    return teacher.head(features)  # type: ignore[operator]
