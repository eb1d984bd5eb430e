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
def gate_targets(head: HostHead, counts: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each member's benefit on each input, from the data: the mean of its *solo* benefit (loss
    with nobody awake minus loss with only it awake) and its *marginal* benefit (loss with all but
    it minus loss with all). The first matters at small budgets, the second at large ones."""
    c, yt = torch.from_numpy(counts), torch.from_numpy(y)
    n, k = len(y), head.n_members
    ce = lambda awake: F.cross_entropy(head(c, awake), yt, reduction="none")  # noqa: E731
    l_none, l_all = ce(torch.zeros(n, k)), ce(torch.ones(n, k))
    out = np.zeros((n, k), np.float32)
    for j in range(k):
        only = torch.zeros(n, k)
        only[:, j] = 1
        but = torch.ones(n, k)
        but[:, j] = 0
        out[:, j] = (0.5 * ((l_none - ce(only)) + (ce(but) - l_all))).numpy()
    return out


def train_gate(gate: Gate, x: np.ndarray, targets: np.ndarray, cfg: TrainConfig, progress: bool) -> None:
    opt = torch.optim.Adam(gate.parameters(), lr=3e-3, weight_decay=1e-4)
    rng = np.random.default_rng(cfg.seed)
    xt, tt = torch.from_numpy(x), torch.from_numpy(targets)
    tt = (tt - tt.mean(0)) / tt.std(0).clamp(min=1e-6)
    for _ in tqdm(range(cfg.gate_epochs), desc="gate", disable=not progress, leave=False):
        for b in minibatches(len(x), cfg.batch_size, rng):
            opt.zero_grad()
            F.mse_loss(gate(xt[b]), tt[b]).backward()
            opt.step()
    gate.eval()


@torch.no_grad()
def head_from_plain(plain: nn.Linear, groups: list[np.ndarray], mean: np.ndarray, std: np.ndarray) -> nn.Linear:
    """The classifier on member-ordered readouts z, re-expressed on HostHead's input
    f = z[teacher order] * std + mean, so that head(f) == plain(z)."""
    order = torch.as_tensor(np.concatenate(groups))
    m, sd = torch.as_tensor(mean, dtype=torch.float32), torch.as_tensor(std, dtype=torch.float32)
    head = nn.Linear(len(order), plain.out_features)
    head.weight.zero_()
    head.weight[:, order] = plain.weight / sd[order]
    head.bias.copy_(plain.bias - (plain.weight * (m[order] / sd[order])).sum(1))
    return head
