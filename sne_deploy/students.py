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

from .config import check_objective
from .data import Split, minibatches
from .distributed import SINGLE, Ranks, Share
from .ensemble import placement
from .head_gate import dropout_awake
from .member_stack import MemberStack
from .model import TrainConfig, encode, resolve_device, student_spec
from .quantization import layer_delta, ste_nonzero
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


def stack_loss(
    stack: MemberStack, spikes: torch.Tensor, target: Optional[torch.Tensor], cfg: TrainConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
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
    if cfg.input_event_cost and stack.ternary:
        events = input_events(stack, spikes)  # (K, N)
        n_in, fan_out = stack.weights[0].shape[2], stack.weights[0].shape[1]
        loss = loss + cfg.input_event_cost * (events.mean(dim=1) / (n_in * fan_out * stack.steps)).sum()
    return loss, z, total


def input_events(stack: MemberStack, spikes: torch.Tensor) -> torch.Tensor:
    """Each member's input-layer synaptic events per sample (K, N): every input spike (graded
    inputs: every message) times its pixel's non-zero fan-out after ternarisation (Sorbaro et al.
    2020, Frontiers in Neuroscience: a pixel's cost is its rate x its fan-out). Exact in value;
    its gradient reaches the input weights through :func:`~sne_deploy.quantization.ste_nonzero`,
    so a penalty on it drops the synapses of the busy pixels first instead of one uniform
    threshold for all (dense input layers: ``TrainConfig.checked`` refuses it for conv students)."""
    fan_out = ste_nonzero(stack.weights[0], layer_delta(0, stack.input_delta)).sum(dim=1)  # (K, n_in)
    sent = (spikes != 0).sum(dim=1).to(spikes.dtype) if stack.spec.graded_input else spikes.sum(dim=1)
    return torch.einsum("np,kp->kn", sent, fan_out)


@dataclass
class _ClassTerms:
    """What the classification terms need on the device: the classifier (the teacher's, frozen or
    trained), the member-to-feature placement, the feature standardisation, the teacher's logits."""

    classifier: nn.Linear
    place: torch.Tensor  # (K, G, D)
    f_mean: torch.Tensor
    f_std: torch.Tensor
    teacher_logits: torch.Tensor  # (N, classes)

    @classmethod
    def on(
        cls, mc: MemberClassifier, groups: list[np.ndarray], width: int, train_head: bool, device: torch.device
    ) -> "_ClassTerms":
        def t(x: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(x, dtype=torch.float32, device=device)

        return cls(
            copy.deepcopy(mc.classifier).to(device).requires_grad_(train_head),
            _placement(groups, width, len(mc.mean)).to(device),
            t(mc.mean),
            t(mc.std),
            t(mc.teacher_logits),
        )


class _Objective(nn.Module):
    """One minibatch's loss: every member's task and activity terms, the twins' (TNA), the
    classification terms (each member's own, the ensemble's with member dropout, KD on the
    teacher's logits) or the labels baseline's plain classifier.

    A module, so that DDP (:mod:`~sne_deploy.distributed`) can wrap everything that trains in
    one piece: the students, their twins and the classifier trained with them."""

    def __init__(
        self,
        cfg: TrainConfig,
        stack: MemberStack,
        twin: Optional[MemberStack],
        targets: torch.Tensor,  # (N, K, G) standardised teacher features, padded
        labels: torch.Tensor,  # (N,)
        plain: Optional[nn.Linear],  # the labels objective's classifier on member readouts
        ce: Optional[_ClassTerms],
        gen: torch.Generator,  # member dropout of the ensemble term
    ) -> None:
        super().__init__()
        self.cfg, self.stack, self.twin, self.plain, self.ce, self.gen = cfg, stack, twin, plain, ce, gen
        self.targets, self.labels = targets, labels
        # the teacher's classifier trains end to end with cfg.train_head: a submodule, so DDP syncs it
        self.head = ce.classifier if ce is not None and cfg.train_head else None

    def forward(self, batch: np.ndarray, share: Share, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, spikes per member and sample (K, n)) of this rank's ``share`` of the minibatch
        ``batch`` (every sample, one process), whose input spikes are ``s``. Member dropout is
        drawn for the whole minibatch, so every rank sees the draws one process would."""
        cfg, stack, k = self.cfg, self.stack, self.stack.n_members
        b = batch[share.positions]
        target = None if self.plain is not None else self.targets[b].permute(1, 0, 2)  # labels: the task loss below
        loss, zs, total = stack_loss(stack, s, target, cfg)
        if self.twin is not None:
            loss_t, zt_twin, _ = stack_loss(self.twin, s, target, cfg)
            mse = _per_member_mean(
                (zs - zt_twin) ** 2, stack.out_mask, torch.as_tensor(stack.out_sizes, dtype=zs.dtype, device=zs.device)
            ).sum()
            loss = loss + loss_t + cfg.tna * mse
        y = self.labels[b]
        if self.ce is not None:
            c = self.ce
            z_feat = torch.bmm(zs * stack.out_mask, c.place)  # (K, N, D) each member's features, the rest 0 (= mean)
            if cfg.member_ce > 0:
                logits = c.classifier(z_feat * c.f_std + c.f_mean)
                ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.repeat(k))
                loss = loss + cfg.member_ce * k * ce  # a sum over members, like the other terms
            if cfg.ensemble_ce > 0:  # the ensemble with member dropout, as the head will see it
                awake = dropout_awake(len(batch), k, cfg.member_dropout, self.gen)
                awake[: len(batch) // 4] = 1.0
                awake = awake[torch.from_numpy(share.positions)].to(zs.device)
                logits = c.classifier((z_feat * awake.T[:, :, None]).sum(0) * c.f_std + c.f_mean)
                loss = loss + cfg.ensemble_ce * F.cross_entropy(logits, y)
                if cfg.logit_kd > 0:
                    tau = cfg.kd_temperature
                    kl = F.kl_div(
                        F.log_softmax(logits / tau, dim=1),
                        F.log_softmax(c.teacher_logits[b] / tau, dim=1),
                        reduction="batchmean",
                        log_target=True,
                    )
                    loss = loss + cfg.logit_kd * tau * tau * kl
        if self.plain is not None:
            valid = stack.out_mask.reshape(-1).bool()  # (K*G,) the real outputs, in member order
            readouts = zs.permute(1, 0, 2).reshape(len(b), -1)[:, valid]
            loss = loss + F.cross_entropy(self.plain(readouts), y)
        return loss * share.scale, total


def _padded_targets(z: np.ndarray, groups: list[np.ndarray], width: int) -> torch.Tensor:
    """The teacher's standardised features as (N, K, G): member k's group, padded with zeros."""
    zt = torch.zeros(len(z), len(groups), width)
    for k, g in enumerate(groups):
        zt[:, k, : len(g)] = torch.from_numpy(z[:, g].astype(np.float32))
    return zt


def train_students(
    cfg: TrainConfig,
    split: Split,
    z: np.ndarray,
    groups: list[np.ndarray],
    progress: bool,
    n_classes: int = 10,
    member_classifier: Optional[MemberClassifier] = None,
    ranks: Ranks = SINGLE,
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
    sizes = [len(g) for g in groups]
    width = max(sizes)
    spec = student_spec(cfg, split.x.shape[1:])
    stack = MemberStack(spec, sizes, True, cfg.seed * 100).to(device)
    twin = MemberStack(spec, sizes, False, cfg.seed * 100 + 50).to(device) if cfg.tna > 0 else None  # full precision
    plain = nn.Linear(sum(sizes), n_classes).to(device) if cfg.objective == "labels" else None
    use_ce = member_classifier is not None and plain is None  # train() passes it when a CE term is on
    ce = _ClassTerms.on(member_classifier, groups, width, bool(cfg.train_head), device) if use_ce else None  # type: ignore[arg-type]
    objective = _Objective(
        cfg,
        stack,
        twin,
        _padded_targets(z, groups, width).to(device),
        torch.from_numpy(split.y).to(device),
        plain,
        ce,
        torch.Generator().manual_seed(cfg.seed),
    )
    trainer = ranks.wrap(objective, device)  # DDP over the ranks under torchrun, else the objective itself
    opt = torch.optim.Adam(objective.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1))
    rng = np.random.default_rng(cfg.seed)
    xf = split.inputs()  # intensities for the encoder, or event data's bins
    log: dict = {"loss": [], "spikes_per_sample": [], "epoch_s": [], "device": str(device), "ranks": ranks.world}
    bar = tqdm(range(cfg.epochs), desc="students", disable=not progress, leave=False)
    for _ in bar:
        t0 = time.perf_counter()
        tot, spk, nb = 0.0, 0.0, 0
        for batch in minibatches(len(xf), cfg.batch_size, rng):
            share = ranks.share(len(batch))
            opt.zero_grad()
            loss, total = trainer(batch, share, encode(xf[batch[share.positions]], cfg.steps, cfg.encoding).to(device))
            loss.backward()
            opt.step()
            tot, nb = tot + float(loss.detach()) / ranks.world, nb + 1
            spk += float(total.detach().sum(0).mean()) * share.scale / ranks.world
        tot, spk = ranks.sum([tot, spk])  # each rank holds its share of the minibatches' means
        sched.step()
        log["loss"].append(tot / nb)
        log["spikes_per_sample"].append(spk / nb)
        log["epoch_s"].append(time.perf_counter() - t0)
        bar.set_postfix(loss=f"{tot / nb:.3f}", spikes=f"{spk / nb:.0f}")
    return TrainedStudents(
        stack.cpu().members(),
        log,
        plain.cpu() if plain is not None else None,
        ce.classifier.cpu().requires_grad_(False) if ce is not None and cfg.train_head else None,
    )
