"""The user's own trained teacher (sne_deploy.user_teacher): a plain nn.Module cut at a named
layer through the Python API, and an ONNX file cut at a node through the CLI; each distils,
exports and simulates with 0 spike mismatches (nn.Module -> Lava, ONNX -> Brian2), counts its
MACs, survives the checkpoint, and a bad cut gets one line naming what the network has."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from sne_deploy import checkpoint
from sne_deploy.simulators.errors import InputError
from sne_deploy.teacher import teacher_macs
from sne_deploy.user_teacher import OnnxTeacher, cut_teacher, fit_probe

from .test_own_data import synthetic, write_npz


class Block(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.conv2(torch.relu(self.conv1(x))))  # a skip connection


class ResNetLike(nn.Module):
    """A residual network as a paper's repository would write it: no features() or head()."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.stem, self.layer1 = nn.Conv2d(1, 8, 3, padding=1), Block(8)
        self.avgpool, self.fc = nn.AdaptiveAvgPool2d(2), nn.Linear(32, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(self.layer1(torch.relu(self.stem(x)))), 1))


def trained(net: nn.Module, steps: int = 80) -> nn.Module:
    """``net`` trained in plain torch on the synthetic images (as the user's own model would be)."""
    x, y = synthetic(300, 0)
    xt, yt = torch.from_numpy(x[:, None] / 255.0).float(), torch.from_numpy(y)
    torch.manual_seed(0)
    opt = torch.optim.Adam(net.parameters(), 1e-2)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    return net.eval()


def test_a_module_cut_at_a_named_layer_computes_the_network_and_reuses_its_linear_classifier():
    net = ResNetLike().eval()
    x = torch.rand(5, 1, 12, 12)
    t = cut_teacher(net, "avgpool", (1, 12, 12))
    assert t.features(x).shape == (5, 32) and not t.probe and t.classifier is net.fc
    assert torch.allclose(t(x), net(x), atol=1e-6) and torch.allclose(t.head(t.features(x)), net(x), atol=1e-6)
    block = cut_teacher(net, "layer1", (1, 12, 12))  # a block of the user's own is one layer
    assert block.probe and block.features(x).shape == (5, 8 * 12 * 12)
    assert fit_probe(block, np.random.default_rng(0).random((200, 1, 12, 12), np.float32)) > 0.9
    assert teacher_macs(t, (1, 12, 12)) == teacher_macs(net, (1, 12, 12))


@pytest.mark.parametrize(
    "layer,message",
    [
        ("layer9", "no layer 'layer9' (features_at); it has: stem, layer1, layer1.conv1, layer1.conv2, avgpool, fc"),
        ("layer1.conv1", "cannot cut at 'layer1.conv1': 'add' after it also uses 'relu' before it (a skip connection"),
    ],
)
def test_a_cut_that_cannot_be_made_is_one_line_naming_the_layers(layer, message):
    with pytest.raises(InputError) as e:
        cut_teacher(ResNetLike(), layer, (1, 12, 12))
    assert message in str(e.value) and "\n" not in str(e.value)


def _onnx(tmp: Path) -> tuple[Path, nn.Module]:
    net = trained(
        nn.Sequential(
            nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(3), nn.Flatten(),
            nn.Linear(54, 24), nn.ReLU(), nn.Linear(24, 3),
        )
    )  # fmt: skip
    path = tmp / "teacher.onnx"
    torch.onnx.export(
        net, torch.zeros(1, 1, 12, 12), str(path), input_names=["x"], output_names=["logits"],
        dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}}, dynamo=False,
    )  # fmt: skip
    return path, net


def test_an_onnx_teacher_equals_its_network_counts_its_macs_and_lists_its_nodes(tmp_path):
    path, net = _onnx(tmp_path)
    t = OnnxTeacher(path, "/5/Relu", (1, 12, 12))
    x = torch.rand(7, 1, 12, 12)
    with torch.no_grad():
        assert torch.allclose(t(x), net(x), atol=1e-5) and torch.allclose(t.head(t.features(x)), net(x), atol=1e-5)
        assert not t.probe and torch.allclose(t.classifier(t.features(x)), net(x), atol=1e-5)  # its own last Gemm
    assert t.macs == teacher_macs(net, (1, 12, 12)) == 6 * 9 * 144 + 54 * 24 + 24 * 3
    from sne_deploy.teacher import ann_work

    assert t.work == ann_work(net, (1, 12, 12))  # weights and activations too (the memory energy model)
    assert t.work.weights == 6 * 9 + 54 * 24 + 24 * 3 and t.work.activations == 144 + 6 * 144 + 24 + 3
    assert OnnxTeacher(path, "/3/Flatten", (1, 12, 12)).probe  # Gemm, Relu, Gemm after it: a probe
    with pytest.raises(InputError, match=r"no node or tensor 'fc' \(--features-at\); it has: /0/Conv, /1/Relu"):
        OnnxTeacher(path, "fc", (1, 12, 12))


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sne_deploy", *args], capture_output=True, text=True, cwd=cwd)


def test_onnx_options_that_do_not_fit_are_one_line(tmp_path):
    path, _ = _onnx(tmp_path)
    write_npz(tmp_path / "d.npz")
    p = _cli("train", "--data", "d.npz", "--teacher", str(path), "--out", "m.pt", cwd=tmp_path)
    assert p.returncode == 2 and p.stderr.strip() == (
        f"sne-deploy: error: --teacher {path}: an ONNX teacher needs --features-at (a node of its graph)"
    )
    p = _cli("train", "--data", "d.npz", "--features-at", "/5/Relu", "--out", "m.pt", cwd=tmp_path)
    assert p.returncode == 2 and "--features-at names the feature layer of an ONNX teacher" in p.stderr


@pytest.mark.slow
@pytest.mark.lava
def test_a_plain_module_teacher_distils_through_the_api_and_runs_on_lava_exactly(lava_ready, tmp_path):
    import sne_deploy as sd

    net = trained(ResNetLike())
    data = write_npz(tmp_path / "d.npz")
    model = sd.fit(str(data), sd.TrainConfig(members=3, epochs=2), teacher=net, features_at="avgpool", progress=False)
    s = model.summary
    assert model.teacher_kind == "module" and model.config.feat_dim == 32
    assert s is not None and s.teacher_accuracy > 0.9 and s.teacher_macs == teacher_macs(net, (1, 12, 12))
    checkpoint.save(model, tmp_path / "m.pt")
    again = checkpoint.load(tmp_path / "m.pt")  # the module comes back as TorchScript, no user code needed
    x = torch.rand(4, 1, 12, 12)
    assert torch.allclose(again.teacher.features(x), model.teacher.features(x), atol=1e-6)
    bundle = sd.export(model, "lava", tmp_path / "m.lava", data=str(data))
    raw, y = synthetic(90, 1)
    r = sd.simulate(bundle, raw[:40], y[:40], budget=0.5, backend="lava")
    assert r.agreement is not None and r.agreement.spike_mismatches == 0 and r.accuracy is not None


@pytest.mark.slow
@pytest.mark.brian2
def test_an_onnx_teacher_distils_from_the_cli_and_runs_on_brian2_exactly(brian2_ready, tmp_path):
    path, net = _onnx(tmp_path)
    write_npz(tmp_path / "d.npz")
    p = _cli("train", "--data", "d.npz", "--teacher", str(path), "--features-at", "/5/Relu", "--members", "3",
             "--epochs", "2", "--out", "m.pt", "--quiet", cwd=tmp_path)  # fmt: skip
    assert p.returncode == 0, p.stderr
    summary = json.loads((tmp_path / "m.summary.json").read_text())
    assert summary["teacher_macs"] == teacher_macs(net, (1, 12, 12)) and summary["teacher_accuracy"] > 0.9
    p = _cli("export", "m.pt", "--target", "brian2", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    raw, y = synthetic(90, 1)
    np.savez(tmp_path / "raw.npz", x=raw[:30], y=y[:30])
    p = _cli("simulate", "m.brian2", "--inputs", "raw.npz", "--backend", "brian2", "--json", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["agreement_with_torch"]["spike_mismatches"] == 0
    path.write_bytes(path.read_bytes() + b"\0")  # the teacher file changes after training
    p = _cli("export", "m.pt", "--target", "brian2", "--force", cwd=tmp_path)
    assert p.returncode == 2 and "changed since training (sha256 differs)" in p.stderr
