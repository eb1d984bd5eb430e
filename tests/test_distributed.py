"""Training under torchrun (DDP, gloo on the CPU): each rank's share of a minibatch, and a real
2-rank run of ``sne-deploy train`` against one process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sne_deploy import checkpoint
from sne_deploy.distributed import Ranks, ranks_from_env
from sne_deploy.simulators.errors import InputError

TORCHRUN = Path(sys.executable).with_name("torchrun")
# the digits defaults (TNA, the ensemble's classification term with member dropout, KD on logits)
# with the MLP teacher (no batch norm: it normalises per rank on the CPU) and few epochs
ARGS = ["--data", "digits", "--teacher", "mlp", "--teacher-epochs", "3", "--epochs", "3", "--members", "3"]
ARGS += ["--device", "cpu", "--quiet"]


@pytest.mark.parametrize("n", [1, 5, 63, 64, 65])
@pytest.mark.parametrize("world", [1, 2, 3])
def test_rank_shares_cover_the_minibatch_once_and_weigh_it_whole(n: int, world: int) -> None:
    shares = [Ranks(r, world, r).share(n) for r in range(world)]
    real = [s for s in shares if s.scale > 0]
    assert sorted(np.concatenate([s.positions for s in real]).tolist()) == list(range(n))
    x = np.random.default_rng(n).normal(size=n)  # a per-sample loss
    # DDP's mean over ranks of (scale x the rank's mean loss) = the whole minibatch's mean loss
    assert sum(s.scale * x[s.positions].mean() for s in shares) / world == pytest.approx(x.mean())
    assert all(s.positions.size == 1 for s in shares if s.scale == 0)  # an empty rank still runs a row, weighing 0


def test_ranks_come_from_torchruns_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    assert ranks_from_env() == Ranks()
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert ranks_from_env() == Ranks(3, 4, 1)
    assert Ranks(3, 4, 1).device(torch.device("cuda")) == torch.device("cuda", 1)
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(InputError, match="RANK 4 and \\$WORLD_SIZE 4"):
        ranks_from_env()
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(InputError, match="RANK must be a whole number"):
        ranks_from_env()


def _train(tmp: Path, name: str, ranks: int) -> Path:
    out = tmp / f"{name}.pt"
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env["OMP_NUM_THREADS"] = "1"
    if ranks == 1:
        cmd = [sys.executable, "-m", "sne_deploy", "train", *ARGS, "--out", str(out)]
    else:
        cmd = [str(TORCHRUN), "--nproc_per_node", str(ranks), "-m", "sne_deploy", "train", *ARGS, "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def _weights(path: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(exported ternary weights, latent float weights) of every member layer."""
    m = checkpoint.load(path)
    exported = [layer.weight for net in m.networks for layer in net.layers]
    latent = [w.detach().numpy().copy() for s in m.students for w in s.weights]
    return exported, latent


@pytest.mark.slow
def test_two_ranks_under_torchrun_export_the_weights_of_one_process_and_repeat_bitwise(tmp_path: Path) -> None:
    one = _weights(_train(tmp_path, "one", 1))
    two = _weights(_train(tmp_path, "two", 2))
    again = _weights(_train(tmp_path, "again", 2))
    for a, b in zip(one[0], two[0]):
        assert a.shape == b.shape and np.array_equal(a, b)  # the deployed ternary weights are the same
    gap = max(float(np.abs(a - b).max()) for a, b in zip(one[1], two[1]))
    assert 0 < gap < 1e-4  # the gradient mean over ranks sums in another order: close, not equal
    for a, b in zip(two[0] + two[1], again[0] + again[1]):
        assert np.array_equal(a, b)  # a fixed world size reproduces bitwise
    summary = checkpoint.load(tmp_path / "two.pt").summary
    assert summary is not None and summary.train_log["ranks"] == 2
