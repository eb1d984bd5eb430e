"""The ``--device cuda`` training path. These tests run where torch sees a CUDA device (the lent GPU
machine); everywhere else they are skipped, since CUDA is no backend CI promises (CI has no GPU).
What a machine without CUDA does with ``--device cuda`` is asserted in test_bad_input.py."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from sne_deploy import checkpoint, cli
from sne_deploy.model import TrainConfig, encode
from sne_deploy.simulators import run
from sne_deploy.snn import run_network_torch
from sne_deploy.train import train

from .helpers import float64_stack

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (CUDA is not a CI backend)")

TINY = TrainConfig(data="digits", epochs=4, teacher_epochs=8, limit_train=600, head_epochs=3, gate_epochs=3)


def test_member_stack_forward_on_cuda_equals_cpu():
    """float64 on both devices: the same spike counts and totals, member by member."""
    stack = float64_stack(20, [16], [4, 3, 4], 8, dv=0.125, seed=2)
    x = encode(np.random.default_rng(1).random((64, 20)), 8).double()
    with torch.no_grad():
        out_cpu, tot_cpu = stack(x)
        out_gpu, tot_gpu = stack.to("cuda")(x.to("cuda"))
    assert torch.equal(out_cpu, out_gpu.cpu())
    assert torch.allclose(tot_cpu, tot_gpu.cpu())


def test_training_on_cuda_gives_a_cpu_model_as_good_as_cpu_training(tmp_path):
    gpu = train(replace(TINY, device="cuda"), progress=False)
    cpu = train(replace(TINY, device="cpu"), progress=False)
    assert gpu.summary.train_log["device"].startswith("cuda")
    assert cpu.summary.train_log["device"] == "cpu"
    # everything that export, evaluation and checkpoints touch comes back on the CPU
    for module in (gpu.teacher, gpu.head, gpu.gate, *gpu.students):
        assert all(p.device.type == "cpu" for p in module.parameters())
    # same seeds, same batches: the two devices differ only by float rounding
    for a, b in zip(gpu.summary.train_log["loss"], cpu.summary.train_log["loss"]):
        assert abs(a - b) <= 0.05 * abs(b), (gpu.summary.train_log["loss"], cpu.summary.train_log["loss"])
    for mode in ("float", "fixed"):
        assert abs(gpu.summary.ensemble_accuracy[mode] - cpu.summary.ensemble_accuracy[mode]) <= 0.05
    assert abs(gpu.summary.teacher_accuracy - cpu.summary.teacher_accuracy) <= 0.05
    # the exported members of the GPU-trained model stay spike-exact against the reference
    x = encode(np.random.default_rng(0).random((30, gpu.networks[0].n_in)), TINY.resolved().steps).numpy()
    for net in gpu.networks[:2]:
        assert np.array_equal(
            run_network_torch(net, x, "fixed").output_counts, run(net, x, "reference", "fixed").output_counts
        )
    p = tmp_path / "gpu.pt"
    checkpoint.save(gpu, p)
    assert checkpoint.load(p).summary.ensemble_accuracy == gpu.summary.ensemble_accuracy


def test_cli_train_device_cuda(tmp_path):
    out = tmp_path / "m.pt"
    code = cli.main(
        [
            "train",
            "--data",
            "digits",
            "--device",
            "cuda",
            "--epochs",
            "2",
            "--teacher-epochs",
            "3",
            "--limit-train",
            "300",
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0 and out.exists()
    assert checkpoint.load(out).summary.train_log["device"].startswith("cuda")
