"""Student training: each member regresses its group of standardised teacher features from its
output spike counts (knowledge distillation), optionally co-trained with a full-precision twin
(Twin Network Augmentation), with activity penalties, with a per-member classification term and
with an ensemble classification term (all members through the teacher's head, member dropout).
``objective="labels"`` is the ablation's plain baseline without any teacher signal.

All members (and all twins) train as one :class:`~sne_deploy.member_stack.MemberStack`: one
batch of tensor operations per step for the whole ensemble, on the CPU or a CUDA device.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm


from .data import Split, minibatches
from .ensemble import placement
from .head_gate import dropout_awake
from .member_stack import MemberStack
from .config import check_objective
from .model import TrainConfig, encode, resolve_device, student_layout
from .snn import StudentSNN


@dataclass(frozen=True)
class MemberClassifier:
    """What the classification terms need: the teacher's classifier, the standardisation of its
    features (a member's prediction, with every other feature at its mean, is classified by the
    teacher's own head) and the teacher's logits on the training split (for KD on logits)."""

    classifier: nn.Linear
    mean: np.ndarray
    std: np.ndarray
    teacher_logits: np.ndarray  # (N, classes)


@dataclass(frozen=True)
class TrainedStudents:
    """What student training hands on: the students, the loss log, and the classifier trained
    with them, if any: ``plain`` on member readouts (``objective="labels"``) or ``classifier`` on
    teacher features (``train_head``: the teacher's classifier, fine-tuned end to end)."""

    students: list[StudentSNN]
    log: dict
    plain: Optional[nn.Linear] = None
    classifier: Optional[nn.Linear] = None


def _placement(groups: list[np.ndarray], width: int, dims: int) -> torch.Tensor:
    """(K, G, D): member k's outputs to teacher dimensions, as the host head places them
    (:func:`~sne_deploy.ensemble.placement`; padding rows are 0)."""
    p = torch.zeros(len(groups), width, dims)
    for k, g in enumerate(groups):
        p[k, : len(g)] = placement(g, dims)
    return p


def _per_member_mean(x: torch.Tensor, mask: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` (K, N, G) over each member's own outputs and the batch -> (K,)."""
    return (x * mask).sum(dim=(1, 2)) / (x.shape[1] * sizes)


def stack_loss(stack: MemberStack, spikes: torch.Tensor, target: Optional[torch.Tensor],
               cfg: TrainConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per member: task loss (``cfg.feature_weight`` x MSE on its feature group; none when
    ``target`` is None) + spike-count penalty + output-magnitude penalty, summed over members. Returns (loss, readout (K, N, G),
    spikes per member and sample (K, N)).

    The spike penalty is the mean firing probability per neuron and step; the logit penalty the
    mean squared output rate. Both are 0 unless configured."""
    out, total = stack(spikes)
    z = stack.readout(out)
    mask, sizes = stack.out_mask, torch.as_tensor(stack.out_sizes, dtype=z.dtype, device=z.device)
    loss = z.new_zeros(())
    if target is not None:
        loss = loss + cfg.feature_weight * _per_member_mean((z - target) ** 2, mask, sizes).sum()
    if cfg.spike_reg:
        neurons = sum(stack.sizes[1:-1]) + sizes
        loss = loss + cfg.spike_reg * (total.mean(dim=1) / (neurons * stack.steps)).sum()
    if cfg.logit_reg:
        loss = loss + cfg.logit_reg * _per_member_mean((out / stack.steps) ** 2, mask, sizes).sum()
    return loss, z, total


def train_students(cfg: TrainConfig, split: Split, z: np.ndarray, groups: list[np.ndarray], progress: bool,
                   n_classes: int = 10, member_classifier: Optional[MemberClassifier] = None
                   ) -> TrainedStudents:
    """Train all students (and their twins) together; returns them as separate students, the
    loss log (loss, spikes per sample, seconds per epoch) and the classifier trained with them,
    if any (the ensemble's head starts from it).

    With ``cfg.train_head`` the teacher's classifier is trained with the students (end to end:
    the students' features need only be good for *classifying*, not equal to the teacher's),
    and ``cfg.logit_kd`` adds KD on the teacher's logits (Hinton's soft targets at temperature
    ``cfg.kd_temperature``) to the ensemble's classification term."""
    check_objective(cfg)
    device = resolve_device(cfg.device)
    n_in = int(np.prod(split.x.shape[1:]))
    sizes = [len(g) for g in groups]
    width = max(sizes)
    hidden, convs = student_layout(cfg, split.x.shape[1:])
    stack = MemberStack(n_in, hidden, sizes, cfg.steps, cfg.du, cfg.dv, True, cfg.seed * 100, convs,
                        cfg.input_delta).to(device)
    twin = (MemberStack(n_in, hidden, sizes, cfg.steps, cfg.du, cfg.dv, False, cfg.seed * 100 + 50, convs).to(device)
            if cfg.tna > 0 else None)
    params = list(stack.parameters()) + (list(twin.parameters()) if twin is not None else [])
    plain = nn.Linear(sum(sizes), n_classes).to(device) if cfg.objective == "labels" else None
    if plain is not None:
        params += list(plain.parameters())
    use_ce = member_classifier is not None and plain is None  # train() passes it when a CE term is on
    if use_ce:
        place = _placement(groups, width, len(member_classifier.mean)).to(device)
        f_mean = torch.as_tensor(member_classifier.mean, dtype=torch.float32, device=device)
        f_std = torch.as_tensor(member_classifier.std, dtype=torch.float32, device=device)
        classifier = copy.deepcopy(member_classifier.classifier).to(device).requires_grad_(cfg.train_head)
        if cfg.train_head:
            params += list(classifier.parameters())
        t_logits = torch.as_tensor(member_classifier.teacher_logits, dtype=torch.float32, device=device)
    valid = stack.out_mask.reshape(-1).bool()  # (K*G,) the real outputs, in member order
    # targets padded to (N, K, G) once, on the device
    zt = torch.zeros(len(split.y), len(groups), width)
    for k, g in enumerate(groups):
        zt[:, k, : len(g)] = torch.from_numpy(z[:, g].astype(np.float32))
    zt = zt.to(device)
    yt = torch.from_numpy(split.y).to(device)
    opt = torch.optim.Adam(params, lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1))
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    xf = split.flat()
    log: dict = {"loss": [], "spikes_per_sample": [], "epoch_s": [], "device": str(device)}
    bar = tqdm(range(cfg.epochs), desc="students", disable=not progress, leave=False)
    for _ in bar:
        t0 = time.perf_counter()
        tot, spk, nb = 0.0, 0.0, 0
        for b in minibatches(len(xf), cfg.batch_size, rng):
            s = encode(xf[b], cfg.steps, cfg.encoding).to(device)
            target = None if plain is not None else zt[b].permute(1, 0, 2)  # labels: the task loss comes below
            opt.zero_grad()
            loss, zs, total = stack_loss(stack, s, target, cfg)
            if twin is not None:
                loss_t, zt_twin, _ = stack_loss(twin, s, target, cfg)
                mse = _per_member_mean((zs - zt_twin) ** 2, stack.out_mask,
                                       torch.as_tensor(sizes, dtype=zs.dtype, device=device)).sum()
                loss = loss + loss_t + cfg.tna * mse
            if use_ce:
                z_feat = torch.bmm(zs * stack.out_mask, place)  # (K, N, D) each member's features, the rest 0 (= mean)
                if cfg.member_ce > 0:
                    logits = classifier(z_feat * f_std + f_mean)
                    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), yt[b].repeat(len(groups)))
                    loss = loss + cfg.member_ce * len(groups) * ce  # a sum over members, like the other terms
                if cfg.ensemble_ce > 0:  # the ensemble with member dropout, as the head will see it
                    awake = dropout_awake(len(b), len(groups), cfg.member_dropout, gen).to(device)
                    awake[: len(b) // 4] = 1.0
                    ens = (z_feat * awake.T[:, :, None]).sum(0) * f_std + f_mean
                    logits = classifier(ens)
                    loss = loss + cfg.ensemble_ce * F.cross_entropy(logits, yt[b])
                    if cfg.logit_kd > 0:
                        tau = cfg.kd_temperature
                        kl = F.kl_div(F.log_softmax(logits / tau, dim=1), F.log_softmax(t_logits[b] / tau, dim=1),
                                      reduction="batchmean", log_target=True)
                        loss = loss + cfg.logit_kd * tau * tau * kl
            if plain is not None:
                readouts = zs.permute(1, 0, 2).reshape(len(b), -1)[:, valid]
                loss = loss + F.cross_entropy(plain(readouts), yt[b])
            loss.backward()
            opt.step()
            tot, nb = tot + float(loss.detach()), nb + 1
            spk += float(total.detach().sum(0).mean())
        sched.step()
        log["loss"].append(tot / nb)
        log["spikes_per_sample"].append(spk / nb)
        log["epoch_s"].append(time.perf_counter() - t0)
        bar.set_postfix(loss=f"{tot / nb:.3f}", spikes=f"{spk / nb:.0f}")
    return TrainedStudents(stack.cpu().members(), log, plain.cpu() if plain is not None else None,
                           classifier.cpu().requires_grad_(False) if use_ce and cfg.train_head else None)
