"""The host side's training: the head learns to classify from member spike counts with member
dropout (so it tolerates sleeping members), and the gate learns which members help on which input.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .data import minibatches
from .ensemble import Gate, HostHead
from .model import TrainConfig


def dropout_awake(n: int, k: int, p_sleep: float, gen: torch.Generator) -> torch.Tensor:
    """Member dropout: each member sleeps with probability p_sleep; at least one stays awake."""
    awake = (torch.rand(n, k, generator=gen) >= p_sleep).float()
    none = awake.sum(1) == 0
    awake[none, torch.randint(0, k, (int(none.sum()),), generator=gen)] = 1.0
    return awake


def finetune_head(head: HostHead, counts: np.ndarray, y: np.ndarray, cfg: TrainConfig, progress: bool) -> None:
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    c, yt = torch.from_numpy(counts), torch.from_numpy(y)
    for _ in tqdm(range(cfg.head_epochs), desc="head", disable=not progress, leave=False):
        for b in minibatches(len(y), cfg.batch_size, rng):
            awake = dropout_awake(len(b), head.n_members, cfg.member_dropout, gen)
            awake[: len(b) // 4] = 1.0  # a quarter of each batch sees the full ensemble
            opt.zero_grad()
            F.cross_entropy(head(c[b], awake), yt[b]).backward()
            opt.step()


@torch.no_grad()
def gate_targets(head: HostHead, counts: np.ndarray, y: np.ndarray, orders: int = 8, seed: int = 0) -> np.ndarray:
    """Each member's benefit on each input: how much the head's loss falls when the member joins
    the members woken before it, averaged over ``orders`` random wake orders per input (a
    Monte-Carlo Shapley value). Coalitions of every size count alike, as budgets from 1/K to 1
    wake them, and the cascade wakes members in exactly such an order.

    The targets are *not* standardised per member: a member that helps on most inputs must score
    high on most inputs, or one shared threshold wakes every member about equally often."""
    c, yt = torch.from_numpy(counts), torch.from_numpy(y)
    n, k = len(y), head.n_members
    gen = torch.Generator().manual_seed(seed)
    rows = torch.arange(n)
    out = torch.zeros(n, k)
    for _ in range(orders):
        order = torch.argsort(torch.rand(n, k, generator=gen), dim=1)
        awake = torch.zeros(n, k)
        before = F.cross_entropy(head(c, awake), yt, reduction="none")
        for r in range(k):
            j = order[:, r]
            awake[rows, j] = 1.0
            after = F.cross_entropy(head(c, awake), yt, reduction="none")
            out[rows, j] += before - after
            before = after
    return (out / orders).numpy()


def train_gate(gate: Gate, x: np.ndarray, targets: np.ndarray, cfg: TrainConfig, progress: bool) -> None:
    """Regress the (unstandardised) targets with MSE; the gate's ranking is what the policies use."""
    opt = torch.optim.Adam(gate.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.gate_epochs, 1))
    rng = np.random.default_rng(cfg.seed)
    xt, tt = torch.from_numpy(x), torch.from_numpy(targets)
    for _ in tqdm(range(cfg.gate_epochs), desc="gate", disable=not progress, leave=False):
        for b in minibatches(len(x), cfg.batch_size, rng):
            opt.zero_grad()
            F.mse_loss(gate(xt[b]), tt[b]).backward()
            opt.step()
        sched.step()
    gate.eval()


@torch.no_grad()
def head_from_plain(plain: nn.Linear, groups: list[np.ndarray], mean: np.ndarray, std: np.ndarray) -> nn.Linear:
    """The classifier on member-ordered readouts z, re-expressed on HostHead's input
    f = z[teacher order] * std + mean, so that head(f) == plain(z)."""
    order = torch.as_tensor(np.concatenate(groups))
    m, sd = torch.as_tensor(mean, dtype=torch.float32), torch.as_tensor(std, dtype=torch.float32)
    head = nn.Linear(len(m), plain.out_features)  # every teacher dimension; the dead ones get weight 0
    head.weight.zero_()
    head.weight[:, order] = plain.weight / sd[order]
    head.bias.copy_(plain.bias - (plain.weight * (m[order] / sd[order])).sum(1))
    return head
