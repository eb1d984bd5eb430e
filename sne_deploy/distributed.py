"""Training on several processes: torch.distributed's DDP, launched by torchrun.

Under ``torchrun --nproc_per_node W -m sne_deploy train …`` every rank loads the same data,
draws the same seeded minibatch stream and trains the same teacher and students; rank r takes the
rows ``r::W`` of each minibatch (:meth:`Ranks.share`) and scales its loss by its share of the
batch, so DDP's gradient *mean* over ranks is the gradient of the whole minibatch's loss, as one
process computes it. Everything random that does not belong to a sample (augmentation, member
dropout) is drawn for the whole minibatch on every rank and then sliced the same way.

What is deterministic: a fixed world size reproduces bitwise (gloo and NCCL reduce in a fixed
order). One process and W ranks differ only by the order of floating-point sums (the gradient
mean over ranks); ``tests/test_distributed.py`` measures that the exported ternary weights agree.
Batch norm (the CNN teacher) normalises per rank on the CPU (gloo has no SyncBatchNorm); on CUDA
it is synchronised (``SyncBatchNorm``), as one process would compute it.

Rank 0 alone trains the head and the gate, evaluates and writes the checkpoint: they are small,
and the other ranks would only repeat it.
"""

from __future__ import annotations

import contextlib
import copy
import os
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
from torch import nn

from sne_deploy.simulators.errors import InputError


@dataclass(frozen=True)
class Share:
    """One rank's part of a minibatch: positions into it, and the factor that makes the rank's
    mean loss over those positions a share of the whole minibatch's mean."""

    positions: np.ndarray
    scale: float


@dataclass(frozen=True)
class Ranks:
    """Where this process stands among the training processes (one process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def share(self, n: int) -> Share:
        """This rank's rows of a minibatch of ``n``. A rank left without rows (the last minibatch
        of an epoch may be shorter than the world) still runs one row with scale 0, so that every
        rank takes part in the gradient reduction and adds nothing to it."""
        pos = np.arange(n)[self.rank :: self.world]
        if pos.size == 0:
            return Share(np.zeros(1, np.int64), 0.0)
        return Share(pos, pos.size * self.world / n)

    def device(self, device: torch.device) -> torch.device:
        """A CUDA device becomes this rank's own GPU (torchrun's LOCAL_RANK)."""
        if device.type == "cuda" and self.active:
            return torch.device("cuda", self.local_rank)
        return device

    def wrap(self, module: nn.Module, device: torch.device) -> nn.Module:
        """``module`` in DDP when there are several ranks (gradients averaged over them), else itself."""
        if not self.active:
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    def sum(self, values: list[float]) -> list[float]:
        """``values`` summed over ranks (a loss log made of each rank's share)."""
        if not self.active:
            return values
        t = torch.tensor(values, dtype=torch.float64)
        torch.distributed.all_reduce(t)
        return t.tolist()


SINGLE = Ranks()


def _env_int(name: str) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw)
    except ValueError:
        raise InputError(f"${name} must be a whole number (torchrun sets it), got '{raw}'") from None


def ranks_from_env() -> Ranks:
    """The ranks torchrun describes in ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; one process
    when ``WORLD_SIZE`` is unset."""
    if "WORLD_SIZE" not in os.environ:
        return SINGLE
    world = _env_int("WORLD_SIZE")
    rank = _env_int("RANK") if "RANK" in os.environ else 0
    local = _env_int("LOCAL_RANK") if "LOCAL_RANK" in os.environ else rank
    if world < 1 or not 0 <= rank < world:
        raise InputError(f"$RANK {rank} and $WORLD_SIZE {world} do not describe a rank (launch with torchrun)")
    return Ranks(rank, world, local)


@contextlib.contextmanager
def session(ranks: Ranks, device: torch.device) -> Iterator[Ranks]:
    """The process group for the ranks (gloo on the CPU, NCCL on CUDA), torn down afterwards."""
    if not ranks.active:
        yield ranks
        return
    import torch.distributed as dist

    if device.type == "cuda":
        torch.cuda.set_device(ranks.local_rank)
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    try:
        yield ranks
    finally:
        dist.destroy_process_group()


def sync_batch_norm(module: nn.Module, ranks: Ranks, device: torch.device) -> nn.Module:
    """The teacher with its batch norms synchronised over ranks where torch can (CUDA): a copy,
    since torch converts the children in place."""
    if ranks.active and device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(copy.deepcopy(module))
    return module
