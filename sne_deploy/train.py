"""The training pipeline, phase by phase: teacher -> partition -> students (ternary, KD, TNA,
activity regularisation) -> fixed-point mapping -> head with member dropout -> gate.

Each phase is a small function; :func:`train` strings them together with tqdm progress and
returns a :class:`TrainedModel` plus a summary of measured numbers.
"""
from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from simulators.encoding import ENCODING_NAME, encode_regular
from simulators.errors import InputError
from simulators.network import Network

from .data import Dataset, Split, load_dataset
from .ensemble import Gate, HostHead
from .partition import partition_features
from .snn import StudentSNN, run_network_torch
from .teacher import load_torchscript_teacher, make_teacher, teacher_macs

DEFAULTS = {  # per dataset: teacher kind, feature dim, steps T, hidden width, teacher epochs, batch
    "digits": dict(teacher="mlp", feat_dim=32, steps=16, hidden=48, teacher_epochs=60, batch_size=64),
    "fashion-mnist": dict(teacher="cnn", feat_dim=64, steps=8, hidden=128, teacher_epochs=4, batch_size=128),
    "cifar10": dict(teacher="cnn", feat_dim=64, steps=8, hidden=256, teacher_epochs=10, batch_size=128),
}


@dataclass
class TrainConfig:
    data: str = "digits"
    data_dir: Optional[str] = None
    members: int = 4
    partition: str = "informed"
    tna: float = 0.0  # lambda of Twin Network Augmentation; 0 = off
    objective: str = "kd"  # "kd": regress teacher features; "labels": no teacher signal (ablation baseline)
    spike_reg: float = 0.0
    logit_reg: float = 0.0
    epochs: int = 30  # student epochs
    seed: int = 0
    teacher: Optional[str] = None  # "mlp", "cnn" or a TorchScript file
    teacher_epochs: Optional[int] = None
    feat_dim: Optional[int] = None
    steps: Optional[int] = None
    hidden: Optional[int] = None
    batch_size: Optional[int] = None
    du: float = 1.0
    dv: float = 0.25
    lr: float = 3e-3
    member_dropout: float = 0.5
    head_epochs: int = 20
    gate_epochs: int = 60
    gate_hidden: int = 16
    limit_train: Optional[int] = None  # subsample the training split (quick runs)

    def resolved(self) -> "TrainConfig":
        d = DEFAULTS.get(self.data, DEFAULTS["digits"])
        out = copy.copy(self)
        for k, v in d.items():
            if getattr(out, k) is None:
                setattr(out, k, v)
        return out


@dataclass
class TrainedModel:
    config: TrainConfig
    teacher: nn.Module
    teacher_kind: str
    input_shape: tuple
    n_classes: int
    groups: list[np.ndarray]
    students: list[StudentSNN]
    networks: list[Network]
    head: HostHead
    gate: Gate
    summary: dict = field(default_factory=dict)


def _batches(n: int, size: int, rng: np.random.Generator, shuffle: bool = True):
    idx = rng.permutation(n) if shuffle else np.arange(n)
    for i in range(0, n, size):
        yield idx[i : i + size]


def encode(x_flat: np.ndarray, steps: int) -> torch.Tensor:
    """The shared deterministic encoder, as float32 tensor (N, T, n_in)."""
    return torch.from_numpy(encode_regular(x_flat, steps).astype(np.float32))


def train_teacher(teacher: nn.Module, ds: Dataset, epochs: int, batch: int, seed: int, progress: bool) -> None:
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(teacher.parameters(), lr=1e-3)
    x, y = torch.from_numpy(ds.train.x), torch.from_numpy(ds.train.y)
    teacher.train()
    for _ in tqdm(range(epochs), desc="teacher", disable=not progress, leave=False):
        for b in _batches(len(y), batch, rng):
            opt.zero_grad()
            F.cross_entropy(teacher(x[b]), y[b]).backward()
            opt.step()
    teacher.eval()


@torch.no_grad()
def accuracy(logits: torch.Tensor, y: np.ndarray) -> float:
    return float((logits.argmax(1).numpy() == y).mean())


@torch.no_grad()
def teacher_features(teacher: nn.Module, x: np.ndarray, batch: int = 2000) -> np.ndarray:
    return torch.cat([teacher.features(torch.from_numpy(x[i : i + batch])) for i in range(0, len(x), batch)]).numpy()


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
        for b in _batches(len(xf), cfg.batch_size, rng):
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


@torch.no_grad()
def member_counts(networks: list[Network], x_flat: np.ndarray, steps: int, mode: str, batch: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """PyTorch-reference output counts, concatenated over members (N, sum g), and spikes per
    sample and member (N, K), with every member awake."""
    outs, spikes = [], []
    for i in range(0, len(x_flat), batch):
        s = encode_regular(x_flat[i : i + batch], steps)
        o, sp = [], []
        for net in networks:
            res = run_network_torch(net, s, mode)
            o.append(res.output_counts)
            sp.append(res.layer_spikes.sum(axis=1))
        outs.append(np.concatenate(o, axis=1))
        spikes.append(np.stack(sp, axis=1))
    return np.concatenate(outs).astype(np.float32), np.concatenate(spikes)


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
        for b in _batches(len(y), cfg.batch_size, rng):
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
        for b in _batches(len(x), cfg.batch_size, rng):
            opt.zero_grad()
            F.mse_loss(gate(xt[b]), tt[b]).backward()
            opt.step()
    gate.eval()


def train(cfg: TrainConfig, progress: bool = True) -> TrainedModel:
    cfg = cfg.resolved()
    torch.manual_seed(cfg.seed)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    ds = load_dataset(cfg.data, cfg.data_dir, cfg.seed)
    train_split = ds.train
    if cfg.limit_train:
        train_split = Split(ds.train.x[: cfg.limit_train], ds.train.y[: cfg.limit_train])

    if cfg.teacher in ("mlp", "cnn"):
        teacher = make_teacher(cfg.teacher, ds.input_shape, cfg.feat_dim, ds.n_classes)
        train_teacher(teacher, Dataset(ds.name, train_split, ds.val, ds.test, ds.n_classes), cfg.teacher_epochs, cfg.batch_size, cfg.seed, progress)
        kind = cfg.teacher
    else:
        teacher = load_torchscript_teacher(cfg.teacher)
        kind = "torchscript"
    teacher.eval()
    timings["teacher_s"] = time.perf_counter() - t

    t = time.perf_counter()
    f_train = teacher_features(teacher, train_split.x)
    feat_mean = f_train.mean(0)
    feat_std = np.maximum(f_train.std(0), 1e-2 * max(float(f_train.std(0).max()), 1e-6))
    z = (f_train - feat_mean) / feat_std
    groups = partition_features(f_train, cfg.members, cfg.partition, cfg.seed)
    students, log, plain = train_students(cfg, train_split, z, groups, progress, ds.n_classes)
    timings["students_s"] = time.perf_counter() - t

    t = time.perf_counter()
    networks = [s.to_network(f"member{k}") for k, s in enumerate(students)]
    counts_train, _ = member_counts(networks, train_split.flat(), cfg.steps, "float")
    if plain is not None:  # labels objective: the head starts from the classifier trained with the students
        head_lin = _head_from_plain(plain, groups, feat_mean, feat_std)
    else:
        if not isinstance(getattr(teacher, "classifier", None), nn.Linear):
            raise InputError("the teacher's head must be an nn.Linear exposed as 'classifier' to be fine-tuned")
        head_lin = copy.deepcopy(teacher.classifier)
    head = HostHead(groups, feat_mean, feat_std, head_lin, cfg.steps)
    with torch.no_grad():
        head.gamma.copy_(torch.cat([s.gamma for s in students]))
        head.beta.copy_(torch.cat([s.beta for s in students]))
        head.count_mean.copy_(torch.from_numpy(counts_train.mean(0)))
    finetune_head(head, counts_train, train_split.y, cfg, progress)
    head.eval()
    timings["head_s"] = time.perf_counter() - t

    t = time.perf_counter()
    gate = Gate(int(np.prod(ds.input_shape)), cfg.members, cfg.gate_hidden)
    train_gate(gate, train_split.flat(), gate_targets(head, counts_train, train_split.y), cfg, progress)
    timings["gate_s"] = time.perf_counter() - t

    model = TrainedModel(cfg, teacher, kind, tuple(ds.input_shape), ds.n_classes, groups, students, networks, head, gate)
    t = time.perf_counter()
    model.summary = evaluate(model, ds)
    model.summary["train_log"] = log
    timings["evaluate_s"] = time.perf_counter() - t
    model.summary["timings"] = timings
    model.summary["config"] = asdict(cfg)
    return model


@torch.no_grad()
def _head_from_plain(plain: nn.Linear, groups: list[np.ndarray], mean: np.ndarray, std: np.ndarray) -> nn.Linear:
    """The classifier on member-ordered readouts z, re-expressed on HostHead's input
    f = z[teacher order] * std + mean, so that head(f) == plain(z)."""
    order = torch.as_tensor(np.concatenate(groups))
    m, sd = torch.as_tensor(mean, dtype=torch.float32), torch.as_tensor(std, dtype=torch.float32)
    head = nn.Linear(len(order), plain.out_features)
    head.weight.zero_()
    head.weight[:, order] = plain.weight / sd[order]
    head.bias.copy_(plain.bias - (plain.weight * (m[order] / sd[order])).sum(1))
    return head


@torch.no_grad()
def evaluate(model: TrainedModel, ds: Dataset) -> dict:
    """Test accuracy of the teacher and of the full ensemble in float and fixed point, per-member
    feature fit and spikes, and the float/fixed agreement of the quantised members."""
    cfg = model.config
    test = ds.test
    f_test = teacher_features(model.teacher, test.x)  # one pass of the teacher serves both
    t_acc = accuracy(model.teacher.head(torch.from_numpy(f_test)), test.y)
    out: dict = {"dataset": ds.name, "test_samples": len(test), "encoding": ENCODING_NAME, "steps": cfg.steps,
                 "teacher_accuracy": t_acc, "teacher_macs": teacher_macs(model.teacher, model.input_shape),
                 "gate_macs": model.gate.macs()}
    awake = torch.ones(len(test), cfg.members)
    res = {}
    for mode in ("float", "fixed"):
        counts, spikes = member_counts(model.networks, test.flat(), cfg.steps, mode)
        res[mode] = (counts, spikes)
        out[f"ensemble_{mode}_accuracy"] = accuracy(model.head(torch.from_numpy(counts), awake), test.y)
        out[f"spikes_per_sample_{mode}"] = float(spikes.sum(1).mean())
    z_pred = model.head.features(torch.from_numpy(res["float"][0]), awake).numpy()
    members = []
    off = 0
    for k, g in enumerate(model.groups):
        fc, xc = res["float"][0][:, off : off + len(g)], res["fixed"][0][:, off : off + len(g)]
        off += len(g)
        resid = ((z_pred[:, g] - f_test[:, g]) ** 2).sum()
        tot = ((f_test[:, g] - f_test[:, g].mean(0)) ** 2).sum()
        members.append({"dims": len(g), "feature_r2": float(1 - resid / max(tot, 1e-12)),
                        "spikes_per_sample": float(res["float"][1][:, k].mean()),
                        "float_fixed_count_agreement": float((fc == xc).mean()),
                        "fixed_scales": [int(l.fixed.weight.max() or 0) for l in model.networks[k].layers]})
    out["members"] = members
    return out
