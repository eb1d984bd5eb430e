"""Student training: each member regresses its group of standardised teacher features from its
output spike counts (knowledge distillation), optionally co-trained with a full-precision twin
(Twin Network Augmentation) and with activity penalties. ``objective="labels"`` is the ablation's
plain baseline without any teacher signal.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from simulators.errors import InputError

from .data import Split, minibatches
from .model import TrainConfig, encode
from .snn import StudentSNN


def train_students(cfg: TrainConfig, split: Split, z: np.ndarray, groups: list[np.ndarray], progress: bool,
                   n_classes: int = 10) -> tuple[list[StudentSNN], dict, Optional[nn.Linear]]:
    """KD regression of each group of standardised teacher features from output spike counts,
    with TNA twins and activity penalties as configured. Returns the students and loss logs.

    ``objective="labels"`` is the ablation's *plain* baseline: no teacher signal; the students'
    concatenated readouts feed a linear classifier trained with them on the labels; it is returned
    so the ensemble's head can start from it."""
    n_in = int(np.prod(split.x.shape[1:]))
    students = [StudentSNN([n_in, cfg.hidden, len(g)], cfg.steps, cfg.du, cfg.dv, True, cfg.seed * 100 + k)
                for k, g in enumerate(groups)]
    twins = [StudentSNN([n_in, cfg.hidden, len(g)], cfg.steps, cfg.du, cfg.dv, False, cfg.seed * 100 + 50 + k)
             for k, g in enumerate(groups)] if cfg.tna > 0 else []
    params = [p for m in students + twins for p in m.parameters()]
    plain = nn.Linear(sum(len(g) for g in groups), n_classes) if cfg.objective == "labels" else None
    if cfg.objective not in ("kd", "labels"):
        raise InputError(f"unknown objective '{cfg.objective}' (kd, labels)")
    if plain is not None:
        params += list(plain.parameters())
    yt = torch.from_numpy(split.y)
    opt = torch.optim.Adam(params, lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1))
    rng = np.random.default_rng(cfg.seed)
    xf = split.flat()
    zt = torch.from_numpy(z.astype(np.float32))
    log = {"loss": [], "spikes_per_sample": []}
    bar = tqdm(range(cfg.epochs), desc="students", disable=not progress, leave=False)
    for _ in bar:
        tot, spk, nb = 0.0, 0.0, 0
        for b in minibatches(len(xf), cfg.batch_size, rng):
            s = encode(xf[b], cfg.steps)
            opt.zero_grad()
            loss = torch.zeros(())
            readouts = []
            for k, (st, g) in enumerate(zip(students, groups)):
                target = None if plain is not None else zt[b][:, g]  # labels: the task loss comes below
                loss_k, out, total = member_loss(st, s, target, cfg)
                readouts.append(st.readout(out))
                if twins:
                    loss_t, out_t, _ = member_loss(twins[k], s, target, cfg)
                    loss_k = loss_k + loss_t + cfg.tna * F.mse_loss(st.readout(out), twins[k].readout(out_t))
                loss = loss + loss_k
                spk += float(total.detach().mean())
            if plain is not None:
                loss = loss + F.cross_entropy(plain(torch.cat(readouts, 1)), yt[b])
            loss.backward()
            opt.step()
            tot, nb = tot + float(loss.detach()), nb + 1
        sched.step()
        log["loss"].append(tot / nb)
        log["spikes_per_sample"].append(spk / nb)
        bar.set_postfix(loss=f"{tot / nb:.3f}", spikes=f"{spk / nb:.0f}")
    return students, log, plain


def member_loss(st: StudentSNN, spikes: torch.Tensor, target: Optional[torch.Tensor], cfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Task loss (MSE on the feature group; none when ``target`` is None) + spike-count penalty +
    output-magnitude penalty.

    The spike penalty is the mean firing probability per neuron and step; the logit penalty the
    mean squared output rate. Both are 0 unless configured, so ``--spike-reg``/``--logit-reg``
    change the loss only when asked to."""
    out, total = st(spikes)
    loss = F.mse_loss(st.readout(out), target) if target is not None else out.new_zeros(())
    if cfg.spike_reg:
        loss = loss + cfg.spike_reg * (total / (sum(st.sizes[1:]) * st.steps)).mean()
    if cfg.logit_reg:
        loss = loss + cfg.logit_reg * ((out / st.steps) ** 2).mean()
    return loss, out, total


