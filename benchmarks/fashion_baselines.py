"""Fashion-MNIST: is the SNE worth deploying? It against what a user would deploy instead, same teacher, same splits, under every energy model.

    .venv/bin/python benchmarks/fashion_baselines.py     # writes benchmarks/results/fashion_baselines.json + one PNG per energy model
    .venv/bin/python benchmarks/fashion_baselines.py --quick    # smoke test (minutes), *_quick.json
    .venv/bin/python benchmarks/fashion_baselines.py --encoding regular-if-centred --gate-pool 1 --gate-hidden 64
        # the same comparison on the defaults until 2026-12-07, the centred rate code and the full gate
        # (fashion_baselines_regular-if-centred.json and PNGs; its own main model, runs/fashion_regular-if-centred/)

The SNE is the main model of ``benchmarks/fashion_mnist.py`` (its checkpoint
``runs/fashion/model.pt``, trained here with the same settings when it is missing): every policy
across the budget sweep, torch fixed point on the 10k test split. Beside it, with the SNE's
teacher, splits and KD signal (labels + KD on the teacher's logits at temperature 4):

* **one spiking student** (``members=1`` through the same ``train`` pipeline, exported and
  simulated like the SNE), as wide as makes its Loihi energy that of the cascade at budget 0.3,
  and that of the full ensemble (a member's energy scales with its hidden width: the input
  layer's events do);
* **ANN MLPs** 784-64-10, 784-128-10, 784-256-10 and 784-256-128-64-10, at fp32 and int8
  (per-channel weights, per-tensor activations, calibrated on training images);
* **the teacher shrunk** (its CNN at the width whose MACs cost the cascade's Loihi energy);
* **the teacher** itself.

Small models run ``--seeds`` (3 by default; the single student as wide as all 8 members, the
slowest row, ``--full-seeds``, 1 by default); rows give the mean and the spread (min, max). Every
row reports accuracy, NeuroBench's counts (Effective_ACs, Effective_MACs, membrane updates,
Footprint) and the energy under each model of ``sne_deploy.energy`` (ANNs at fp32 and int8). The
targets of issue 24 are written to the results file as met or missed.
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from sne_deploy import checkpoint
from sne_deploy.config import DATASET_DEFAULTS
from sne_deploy.data import Dataset, load_dataset, minibatches
from sne_deploy.deploy import bundle_parts
from sne_deploy.energy import MODELS, AnnWork, ann_energy_pj
from sne_deploy.exporters.bundle import load_bundle, write_bundle
from sne_deploy.neurobench_metrics import ann_metrics
from sne_deploy.report import MODEL_LABELS, subplots
from sne_deploy.runtime import simulate
from sne_deploy.teacher import CNNTeacher, ann_work
from sne_deploy.train import TrainConfig, train

from _common import PROGRESS, RESULTS, ROOT, add_teacher_from, benchmark_parser, saved_teacher

POLICIES = ("cascade", "gate", "fixed", "random")
BUDGETS = (0.125, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0)
MLPS = {"mlp_64": (64,), "mlp_128": (128,), "mlp_256": (256,), "mlp_256_128_64": (256, 128, 64)}
KD_T = 4.0


def main_config(a: argparse.Namespace) -> TrainConfig:
    """The settings of benchmarks/fashion_mnist.py's main model (its defaults)."""
    return TrainConfig(
        data="fashion-mnist",
        members=8,
        partition="informed",
        tna=0.5,
        member_ce=1.0,
        epochs=a.epochs,
        seed=0,
        teacher_epochs=a.teacher_epochs,
        limit_train=a.limit_train,
        encoding=a.encoding,
        gate_pool=a.gate_pool,
        gate_hidden=a.gate_hidden,
    )


def main_model(a: argparse.Namespace) -> Any:
    """The SNE of the comparison: ``a.checkpoint``, trained here with the main model's settings
    (and ``a.encoding``) when missing; with ``a.teacher_from`` its teacher is that checkpoint's
    (the rate-coded main model's), so that both codes' runs share one teacher."""
    path = Path(a.checkpoint)
    if path.is_file():
        model = checkpoint.load(path)
        if a.encoding and model.config.encoding != a.encoding:
            raise SystemExit(f"{path} was trained on the {model.config.encoding} code, not --encoding {a.encoding}")
        return model
    print(f"{path} not found: training the main model (benchmarks/fashion_mnist.py's settings)", flush=True)
    model = train(main_config(a), progress=PROGRESS, teacher=saved_teacher(a.teacher_from))
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.save(model, path)
    return model


# --- the SNE and its single-student baseline: through the toolkit's own export and simulate ---


def sne_rows(model: Any, ds: Dataset, x: np.ndarray, y: np.ndarray, policies=POLICIES, budgets=BUDGETS) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        path, _ = write_bundle(bundle_parts(model, ds), Path(tmp) / "m.nir", "nir")
        bundle = load_bundle(path)
        runs = [("all", 1.0)] + [
            (p, b) for p in policies for b in budgets if not (p in ("gate", "random") and b == 1.0)
        ]
        rows = []
        for p, b in tqdm(runs, desc="simulate", disable=not PROGRESS, leave=False):
            r = simulate(bundle, x, y, b, p, "torch", "fixed", compare=False)
            rows.append(snn_row(r))
        return rows


def snn_row(r: Any) -> dict:
    nb = r.neurobench
    return {
        "policy": r.policy,
        "budget": r.budget,
        "accuracy": r.accuracy,
        "awake_fraction": r.awake_fraction,
        "mean_rounds": r.mean_rounds,
        "energy_pj": r.energy_pj,
        "energy_breakdown_pj": r.energy_breakdown_pj,
        "neurobench": {
            "Effective_ACs": nb["SynapticOperations"]["Effective_ACs"],
            "Effective_MACs": nb["SynapticOperations"]["Effective_MACs"],
            "membrane_updates": r.counts.neuron_updates,
            "Footprint": nb["Footprint"],
        },
    }


def single_student(model: Any, ds: Dataset, hidden: int, seed: int, x, y) -> dict:
    cfg = replace(model.config, members=1, hidden=hidden, seed=seed)
    single = train(cfg, progress=False, teacher=(model.teacher, model.teacher_kind), data=ds)
    (row,) = sne_rows(single, ds, x, y, policies=(), budgets=())
    return {**row, "hidden": hidden, "seed": seed}


# --- ANN baselines: plain torch, the same KD signal ---


class MLP(nn.Module):
    def __init__(self, hidden: tuple[int, ...], n_in: int = 784, n_out: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        for h in hidden:
            layers += [nn.Linear(n_in, h), nn.ReLU()]
            n_in = h
        self.net = nn.Sequential(*layers, nn.Linear(n_in, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def distil(net: nn.Module, ds: Dataset, teacher_logits: torch.Tensor, epochs: int, seed: int) -> nn.Module:
    """Labels + KD on the teacher's logits of the training images (temperature 4, weight 1), Adam
    with a cosine schedule, batches of 128; no augmentation (the KD targets are of the clean
    images, computed once)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x, y = torch.from_numpy(ds.train.x), torch.from_numpy(ds.train.y)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs, 1))
    net.train()
    for _ in range(epochs):
        for b in minibatches(len(y), 128, rng):
            out = net(x[b])
            kd = F.kl_div(F.log_softmax(out / KD_T, 1), F.softmax(teacher_logits[b] / KD_T, 1), reduction="batchmean")
            loss = F.cross_entropy(out, y[b]) + KD_T**2 * kd
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    return net.eval()


@torch.no_grad()
def accuracy(net: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    xs = torch.from_numpy(x)
    pred = torch.cat([net(xs[i : i + 2000]).argmax(1) for i in range(0, len(xs), 2000)])
    return float((pred.numpy() == y).mean())


@torch.no_grad()
def int8_copy(net: nn.Module, calib: np.ndarray) -> nn.Module:
    """``net`` as int8 inference computes it: each Linear/Conv2d weight rounded to 8 bits per output
    channel, each such layer's input to 8 bits per tensor (scale from its largest value on
    ``calib``; unsigned after a ReLU or on images, signed otherwise). Batch norm stays float."""
    q = copy.deepcopy(net).eval()
    layers = [m for m in q.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    for m in layers:
        w = m.weight
        s = w.abs().flatten(1).amax(1).clamp_min(1e-12) / 127
        m.weight.copy_(torch.round(w / s.view(-1, *([1] * (w.dim() - 1)))) * s.view(-1, *([1] * (w.dim() - 1))))
    ranges: dict[nn.Module, list] = {m: [0.0, True] for m in layers}  # largest |input|, and whether every input is >= 0

    def observe(m: nn.Module, inp: tuple) -> None:
        r = ranges[m]
        r[0], r[1] = max(r[0], float(inp[0].abs().max())), r[1] and bool((inp[0] >= 0).all())

    hooks = [m.register_forward_pre_hook(observe) for m in layers]
    q(torch.from_numpy(calib))
    for h in hooks:
        h.remove()

    def quantise(m: nn.Module, inp: tuple) -> tuple:
        top, unsigned = ranges[m]
        s = max(top, 1e-12) / (255 if unsigned else 127)
        lo, hi = (0, 255) if unsigned else (-127, 127)
        return (torch.clamp(torch.round(inp[0] / s), lo, hi) * s,)

    for m in layers:
        m.register_forward_pre_hook(quantise)
    return q


def ann_row(name: str, net: nn.Module, work: AnnWork, ds: Dataset, x: np.ndarray, y: np.ndarray, seed: int) -> dict:
    nb = ann_metrics(net, x[:2000])
    return {
        "name": name,
        "seed": seed,
        "accuracy": accuracy(net, x, y),
        "accuracy_int8": accuracy(int8_copy(net, ds.train.x[:2000]), x, y),
        "work": work.to_dict(),
        "energy_pj": {m: ann_energy_pj(work, m, "fp32") for m in MODELS},
        "energy_int8_pj": {m: ann_energy_pj(work, m, "int8") for m in MODELS},
        "neurobench": {
            "Effective_ACs": nb.effective_acs,
            "Effective_MACs": nb.effective_macs,
            "membrane_updates": 0.0,
            "Footprint": nb.footprint_bytes,
        },
    }


def distilled_row(
    name: str, make: Callable[[], nn.Module], ds: Dataset, logits: torch.Tensor, epochs: int, seed: int, x, y
) -> dict:
    """A net from ``make`` (initialised under ``seed``) distilled from the teacher's ``logits`` and
    measured: one ANN baseline row."""
    torch.manual_seed(seed)
    net = distil(make(), ds, logits, epochs, seed)
    return ann_row(name, net, ann_work(net, (1, 28, 28)), ds, x, y, seed)


def cnn_width_for(macs: float) -> int:
    """The CNN teacher's width whose MACs come closest to ``macs``."""
    return min(range(1, 33), key=lambda w: abs(ann_work(CNNTeacher((1, 28, 28), 64, 10, w), (1, 28, 28)).macs - macs))


class RowCache:
    """Finished rows on disk (``runs/``, ignored), so a run stopped part way resumes where it was:
    the full run takes most of an hour on 2 cores. Keyed by the settings that change a row."""

    def __init__(self, path: Path, settings: dict) -> None:
        self.path, self.settings = path, settings
        old = json.loads(path.read_text()) if path.is_file() else {}
        self.rows: dict[str, dict] = old.get("rows", {}) if old.get("settings") == settings else {}

    def get(self, key: str, make: Callable[..., dict], *args: Any) -> dict:
        if key not in self.rows:
            self.rows[key] = make(*args)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"settings": self.settings, "rows": self.rows}))
            tmp.replace(self.path)
        return self.rows[key]


# --- summary, targets, plots ---


def spread(rows: list[dict], key: Callable[[dict], float]) -> dict:
    v = [key(r) for r in rows]
    return {"mean": float(np.mean(v)), "min": float(np.min(v)), "max": float(np.max(v)), "n": len(v)}


def summarise(rows: list[dict], energy_key: str = "energy_pj") -> dict:
    out = {"accuracy": spread(rows, lambda r: r["accuracy"])}
    if "accuracy_int8" in rows[0]:
        out["accuracy_int8"] = spread(rows, lambda r: r["accuracy_int8"])
    for key in ("energy_pj", "energy_int8_pj"):
        if key in rows[0]:
            out[key] = {m: float(np.mean([r[key][m] for r in rows])) for m in rows[0][key]}
    return out


def targets(doc: dict) -> dict:
    """Issue 24's targets, measured on this run."""
    sne = {(r["policy"], r["budget"]): r for r in doc["sne"]}
    cascade = sne[("cascade", 0.3)]
    single = doc["baselines"]["single_at_cascade"]
    s_acc = single["summary"]["accuracy"]
    beats_single = 100 * (cascade["accuracy"] - s_acc["max"])
    t = doc["teacher"]
    # under the memory model: every ANN baseline has an SNE policy at least as accurate for no more energy
    every = doc["sne"] + doc.get("sne_cheaper_gate", [])  # every SNE policy measured, the validation-chosen gate's too
    frontier = [(r["energy_pj"]["memory"], r["accuracy"]) for r in every]
    anns = {}
    for name, group in doc["baselines"].items():
        if not group.get("ann"):
            continue
        for prec in ("fp32", "int8"):
            s = group["summary"]
            acc = s["accuracy"]["mean"] if prec == "fp32" else s["accuracy_int8"]["mean"]
            e = s["energy_pj"]["memory"] if prec == "fp32" else s["energy_int8_pj"]["memory"]
            anns[f"{name}_{prec}"] = any(ea <= e and aa >= acc for ea, aa in frontier)
    # the paper's headline: >= 20x below the teacher's energy (Loihi constants) at >= teacher - 3 pt
    good = [r for r in every if r["accuracy"] >= t["accuracy"] - 0.03]
    best_ratio = max((t["energy_pj"]["loihi"] / r["energy_pj"]["loihi"] for r in good), default=0.0)
    good2 = [r for r in every if r["accuracy"] >= t["accuracy"] - 0.02]
    best_ratio2 = max((t["energy_pj"]["loihi"] / r["energy_pj"]["loihi"] for r in good2), default=0.0)
    return {
        "dynamic_activation_pays": {
            "cascade_0.3_accuracy": cascade["accuracy"],
            "single_student_accuracy": s_acc,
            "cascade_minus_best_single_pt": beats_single,
            "met": beats_single >= 1.0,
        },
        "sne_beats_each_ann_under_memory_model": {"per_baseline": anns, "met": all(anns.values())},
        "twenty_x_at_minus_3pt": {"best_ratio_loihi": best_ratio, "met": best_ratio >= 20.0},
        "stretch_twenty_x_at_minus_2pt": {"best_ratio_loihi": best_ratio2, "met": best_ratio2 >= 20.0},
    }


def plot(doc: dict, model: str, out_png: Path) -> None:
    """Accuracy against energy under ``model``: the SNE's policies across the budgets, every
    baseline (filled fp32, hollow int8; bars: the seeds' min and max) and the teacher."""
    import matplotlib

    fig, ax = subplots(figsize=(11.0, 5.6))
    gate = f", gate {doc['gate']}" if doc.get("gate") else ""
    for i, p in enumerate(POLICIES):
        pts = sorted((r["energy_pj"][model] / 1e6, r["accuracy"]) for r in doc["sne"] if r["policy"] == p)
        label = f"SNE {p}, budgets {BUDGETS[0]:g}-1" + (gate if p in ("gate", "cascade") else "")
        ax.plot(*zip(*pts), "o-", ms=4, lw=1.2, color=f"C{i}", label=label)
    full = next(r for r in doc["sne"] if r["policy"] == "all")
    ax.plot(
        [full["energy_pj"][model] / 1e6],
        [full["accuracy"]],
        "s",
        color="k",
        mfc="none",
        ms=9,
        label="SNE, all 8 members",
    )
    for r in doc.get("sne_cheaper_gate", []):
        ax.plot(
            [r["energy_pj"][model] / 1e6],
            [r["accuracy"]],
            "P",
            color=f"C{POLICIES.index(r['policy'])}",
            ms=10,
            mec="k",
            label=f"SNE {r['policy']} 0.3, gate {r['gate']} (chosen on validation)",
        )
    kinds = {"single": "D", "mlp": "^", "shrunk": "v"}
    colours = matplotlib.colormaps["viridis"](np.linspace(0.0, 0.9, len(doc["baselines"])))
    for (name, group), c in zip(doc["baselines"].items(), colours):
        s = group["summary"]
        m = kinds["single" if name.startswith("single") else "mlp" if name.startswith("mlp") else "shrunk"]
        for key, acc_key, filled in (("energy_pj", "accuracy", True), ("energy_int8_pj", "accuracy_int8", False)):
            if key not in s:
                continue
            acc = s[acc_key]
            ax.errorbar(
                [s[key][model] / 1e6], [acc["mean"]], yerr=[[acc["mean"] - acc["min"]], [acc["max"] - acc["mean"]]],
                fmt=m, color=c, mfc=c if filled else "white", ms=8, capsize=2, label=group["label"] if filled else None,
            )  # fmt: skip
    t = doc["teacher"]
    ax.plot([t["energy_pj"][model] / 1e6], [t["accuracy"]], "*", color="k", ms=14, label="teacher CNN")
    ax.plot([t["energy_int8_pj"][model] / 1e6], [t["accuracy_int8"]], "*", color="k", mfc="white", ms=14)
    ax.set_xscale("log")
    ax.set_xlabel(f"energy per sample [µJ], {MODEL_LABELS[model]} model (SNE: awake members + gate + head)")
    ax.set_ylabel(f"test accuracy (Fashion-MNIST, {doc['test_samples']:,} test images)")
    code = doc.get("encoding", "regular-if-centred")
    ax.set_title(
        f"The SNE against what a user would deploy instead: {MODEL_LABELS[model]} energy model\n"
        f"(spiking rows on the {code} input code; ANNs: filled fp32, hollow int8; baselines: mean over seeds, "
        "bars min to max)",
        fontsize=10,
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7.5, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.savefig(out_png, dpi=120, bbox_inches="tight")  # the legend sits outside the axes


def markdown(doc: dict) -> str:
    """The results table: every row under every energy model (µJ per sample)."""
    head = (
        "| model | accuracy | "
        + " | ".join(f"{MODEL_LABELS[m]} µJ" for m in MODELS)
        + " | Effective ACs | Effective MACs | membrane updates | footprint kB |"
    )
    lines = [head, "|---" * (6 + len(MODELS)) + "|"]

    def uj(e: dict) -> str:
        return " | ".join("–" if e.get(m) is None else f"{e[m] / 1e6:.3f}" for m in MODELS)

    def nb(d: dict) -> str:
        return f"{d['Effective_ACs']:.0f} | {d['Effective_MACs']:.0f} | {d['membrane_updates']:.0f} | {d['Footprint'] / 1e3:.0f}"

    t = doc["teacher"]
    lines.append(f"| teacher CNN, fp32 | {t['accuracy']:.4f} | {uj(t['energy_pj'])} | {nb(t['neurobench'])} |")
    lines.append(f"| teacher CNN, int8 | {t['accuracy_int8']:.4f} | {uj(t['energy_int8_pj'])} | – | – | – | – |")
    for r in doc["sne"]:
        if r["policy"] == "all" or r["budget"] == 0.3:
            name = "SNE, all 8 members" if r["policy"] == "all" else f"SNE {r['policy']}, budget 0.3"
            lines.append(f"| {name} | {r['accuracy']:.4f} | {uj(r['energy_pj'])} | {nb(r['neurobench'])} |")
    for r in doc.get("sne_cheaper_gate", []):
        lines.append(
            f"| SNE {r['policy']}, budget 0.3, gate {r['gate']} | {r['accuracy']:.4f} | {uj(r['energy_pj'])} | – | – | – | – |"
        )
    for group in doc["baselines"].values():
        s, first = group["summary"], group["rows"][0]
        acc = s["accuracy"]
        a = f"{acc['mean']:.4f} ({acc['min']:.4f}-{acc['max']:.4f}, {acc['n']} seed{'s' if acc['n'] > 1 else ''})"
        lines.append(
            f"| {group['label']}{', fp32' if group.get('ann') else ''} | {a} | {uj(s['energy_pj'])} | {nb(first['neurobench'])} |"
        )
        if group.get("ann"):
            a8 = s["accuracy_int8"]
            lines.append(
                f"| {group['label']}, int8 | {a8['mean']:.4f} ({a8['min']:.4f}-{a8['max']:.4f}) | {uj(s['energy_int8_pj'])} | – | – | – | – |"
            )
    tg = doc["targets"]
    ok = lambda b: "met" if b else "**missed**"  # noqa: E731
    d = tg["dynamic_activation_pays"]
    lines += [
        "",
        f"* Dynamic activation pays (cascade at 0.3 ≥ 1 pt above the single student of its Loihi energy, beyond the seeds' spread): "
        f"{d['cascade_minus_best_single_pt']:+.2f} pt against the best seed: {ok(d['met'])}.",
        f"* The SNE beats each ANN under the memory model (some policy at least as accurate for no more energy): "
        f"{sum(tg['sne_beats_each_ann_under_memory_model']['per_baseline'].values())} of "
        f"{len(tg['sne_beats_each_ann_under_memory_model']['per_baseline'])}: {ok(tg['sne_beats_each_ann_under_memory_model']['met'])}.",
        f"* ≥ 20x below the teacher (Loihi constants) at ≥ teacher − 3 pt: best {tg['twenty_x_at_minus_3pt']['best_ratio_loihi']:.1f}x: "
        f"{ok(tg['twenty_x_at_minus_3pt']['met'])}; stretch, at − 2 pt: {tg['stretch_twenty_x_at_minus_2pt']['best_ratio_loihi']:.1f}x: "
        f"{ok(tg['stretch_twenty_x_at_minus_2pt']['met'])}.",
    ]
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    ap = benchmark_parser(__doc__, markdown)
    ap.add_argument("--checkpoint", default=str(ROOT / "runs" / "fashion" / "model.pt"))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument(
        "--full-seeds",
        default="0",
        help="seeds of the single student as wide as all 8 members (the slowest row: about 20 min each on 2 cores)",
    )
    ap.add_argument("--epochs", type=int, default=12, help="student epochs (the main model's)")
    ap.add_argument("--teacher-epochs", type=int, default=None)
    ap.add_argument("--ann-epochs", type=int, default=20)
    ap.add_argument("--limit-train", type=int, default=None)
    ap.add_argument("--test-limit", type=int, default=None)
    ap.add_argument("--plots", default=None, metavar="JSON", help="redraw the PNGs from a results file and exit")
    ap.add_argument(
        "--with-gate",
        default=None,
        metavar="GATE_JSON",
        help="add the gate benchmark's validation-chosen gate (benchmarks/fashion_gate.py, same checkpoint) as SNE "
        "rows of the results file, recompute the targets and plots, and exit",
    )
    ap.add_argument(
        "--encoding",
        default=None,
        help="the input code of the SNE and the spiking students (default: Fashion-MNIST's, graded); another "
        "code writes fashion_baselines_CODE.json and has its own checkpoint, runs/fashion_CODE/model.pt",
    )
    ap.add_argument(
        "--gate-pool",
        type=int,
        default=None,
        help="when the main model must be trained: its gate's pooling (default: Fashion-MNIST's, 7)",
    )
    ap.add_argument("--gate-hidden", type=int, default=None, help="... and its gate's hidden width (default: 16)")
    add_teacher_from(ap, "when the main model must be trained: ")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    a.tag = code_tag(a.encoding)
    if a.checkpoint == str(ROOT / "runs" / "fashion" / "model.pt"):
        a.checkpoint = str(ROOT / "runs" / f"fashion{a.tag}" / "model.pt")
    if a.quick:
        a.epochs, a.teacher_epochs, a.ann_epochs, a.limit_train, a.test_limit, a.seeds = 1, 1, 1, 3000, 500, "0"
        a.full_seeds = "0"
        a.checkpoint = str(ROOT / "runs" / f"fashion_quick{a.tag}" / "model.pt")
    return a


def gate_label(pool: int, hidden: int) -> str:
    """How the SNE's gate sees the input, for labels: '7x7 pool, 16 hidden' or 'every pixel, 64 hidden'."""
    return f"{pool}x{pool} pool, {hidden} hidden" if pool > 1 else f"every pixel, {hidden} hidden"


def code_tag(encoding: Optional[str]) -> str:
    """'' for Fashion-MNIST's default input code, '_CODE' for another: the suffix of the results
    files and checkpoint of a run on that code."""
    default = DATASET_DEFAULTS["fashion-mnist"].encoding
    return "" if encoding in (None, default) else f"_{encoding}"


def add_gate_study(path: Path, gate_json: Path, suffix: str) -> None:
    """The gate benchmark's chosen gate (its test rows at budget 0.3) as further SNE rows."""
    doc, gates = json.loads(path.read_text()), json.loads(gate_json.read_text())
    if gates["checkpoint"] != doc["checkpoint"]:
        raise SystemExit(f"{gate_json} measured {gates['checkpoint']}, {path} {doc['checkpoint']}: not the same model")
    c = gates["chosen"]
    (row,) = [r for r in gates["variants"] if (r["pool"], r["hidden"]) == (c["pool"], c["hidden"])]
    gate = f"{c['pool']}x{c['pool']} pool, {c['hidden']} hidden ({row['gate_macs']} MACs)"
    doc["sne_cheaper_gate"] = [
        {"policy": p, "budget": 0.3, "gate": gate, **row["test"][p]} for p in ("cascade", "gate")
    ]
    doc["gate_study"] = {"file": "benchmarks/results/" + gate_json.name, "chosen": c}
    doc["targets"] = targets(doc)
    path.write_text(json.dumps(doc, indent=2))
    for p in plots(doc, suffix):
        print(f"wrote {p}")
    print(markdown(doc))


def plots(doc: dict, suffix: str) -> list[Path]:
    outs = [RESULTS / f"fashion_baselines_{m}{suffix}.png" for m in MODELS]
    for m, out in zip(MODELS, outs):
        plot(doc, m, out)
    return outs


def main() -> None:
    a = parse_args()
    suffix = a.tag + ("_quick" if a.quick else "")
    if a.plots:
        print("\n".join(str(p) for p in plots(json.loads(Path(a.plots).read_text()), suffix)))
        return
    if a.with_gate:
        add_gate_study(RESULTS / f"fashion_baselines{suffix}.json", Path(a.with_gate), suffix)
        return
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    ds = load_dataset("fashion-mnist")
    if a.limit_train:
        ds = Dataset(ds.name, ds.train.take(slice(a.limit_train)), ds.val, ds.test, ds.n_classes)
    x, y = ds.test.x[: a.test_limit], ds.test.y[: a.test_limit]
    model = main_model(a)
    timings = {"main_model_s": time.perf_counter() - t0}
    seeds = [int(s) for s in a.seeds.split(",")]
    ckpt = Path(a.checkpoint)
    settings = {
        k: getattr(a, k) for k in ("epochs", "ann_epochs", "limit_train", "test_limit", "checkpoint", "encoding")
    }
    cache = RowCache(
        ROOT / "runs" / f"fashion_baselines_cache{suffix}.json", {**settings, "mtime": ckpt.stat().st_mtime}
    )

    t = time.perf_counter()
    sne = cache.get("sne", lambda: {"rows": sne_rows(model, ds, x.reshape(len(x), -1), y)})["rows"]
    timings["sne_s"] = time.perf_counter() - t
    by = {(r["policy"], r["budget"]): r for r in sne}
    full, cascade = by[("all", 1.0)], by[("cascade", 0.3)]
    h = int(model.config.hidden)
    head_uj = full["energy_breakdown_pj"]["loihi"]["head"]  # what a single student pays besides its member
    member_uj = (full["energy_pj"]["loihi"] - head_uj) / model.config.members
    widths = {  # a member's energy grows with its hidden width (its input layer's events do)
        name: max(8, round(h * (row["energy_pj"]["loihi"] - head_uj) / member_uj))
        for name, row in (("single_at_cascade", cascade), ("single_at_full", full))
    }

    baselines: dict[str, dict] = {}
    t = time.perf_counter()
    full_seeds = [int(v) for v in a.full_seeds.split(",")]
    for name, width in widths.items():
        rows = [
            cache.get(f"{name}/{width}/{s}", single_student, model, ds, width, s, x.reshape(len(x), -1), y)
            for s in tqdm(seeds if name == "single_at_cascade" else full_seeds, desc=name, disable=not PROGRESS)
        ]
        where = "the cascade at 0.3" if name == "single_at_cascade" else "all 8 members"
        baselines[name] = {
            "label": f"one spiking student, {width} hidden (sized for the Loihi energy of {where})",
            "rows": rows,
        }
    timings["single_students_s"] = time.perf_counter() - t

    with torch.no_grad():
        xt = torch.from_numpy(ds.train.x)
        logits = torch.cat([model.teacher(xt[i : i + 2000]) for i in range(0, len(xt), 2000)])
    t = time.perf_counter()
    for name, hidden in MLPS.items():
        rows = []
        for s in tqdm(seeds, desc=name, disable=not PROGRESS):
            rows.append(
                cache.get(f"{name}/{s}", distilled_row, name, partial(MLP, hidden), ds, logits, a.ann_epochs, s, x, y)
            )
        label = "ANN MLP 784-" + "-".join(map(str, hidden)) + f"-10 ({rows[0]['work']['macs'] / 1e3:.0f}k MACs)"
        baselines[name] = {"label": label, "rows": rows, "ann": True}
    target_macs = cascade["energy_pj"]["loihi"] / ann_energy_pj(1.0, "loihi")
    width = cnn_width_for(target_macs)
    rows = []
    for s in tqdm(seeds, desc="shrunk teacher", disable=not PROGRESS):
        net = partial(CNNTeacher, (1, 28, 28), 64, 10, width)
        rows.append(
            cache.get(
                f"shrunk_teacher/{width}/{s}", distilled_row, "shrunk_teacher", net, ds, logits, a.ann_epochs, s, x, y
            )
        )
    baselines["shrunk_teacher"] = {
        "label": f"teacher CNN, width {width} ({rows[0]['work']['macs'] / 1e3:.0f}k MACs = cascade's Loihi energy)",
        "rows": rows,
        "ann": True,
    }
    timings["ann_baselines_s"] = time.perf_counter() - t
    for g in baselines.values():
        g["summary"] = summarise(g["rows"])

    tw = ann_work(model.teacher, (1, 28, 28))
    teacher = ann_row("teacher", model.teacher, tw, ds, x, y, 0)
    doc = {
        "command": "benchmarks/fashion_baselines.py"
        + (f" --encoding {a.encoding}" if a.encoding else "")
        + (f" --teacher-from {a.teacher_from}" if a.teacher_from else "")
        + (f" --gate-pool {a.gate_pool}" if a.gate_pool is not None else "")
        + (f" --gate-hidden {a.gate_hidden}" if a.gate_hidden is not None else "")
        + (" --quick" if a.quick else ""),
        "encoding": model.config.encoding,
        "gate": gate_label(model.config.gate_pool, model.config.gate_hidden),
        "date": time.strftime("%Y-%m-%d"),
        "machine": "2 cores, no GPU (one run; times are this run's)",
        "checkpoint": str(Path(a.checkpoint).relative_to(ROOT))
        if Path(a.checkpoint).is_relative_to(ROOT)
        else a.checkpoint,
        "test_samples": len(y),
        "seeds": seeds,
        "teacher": teacher,
        "sne": sne,
        "baselines": baselines,
    }
    doc["targets"] = targets(doc)
    doc["timings"] = {**timings, "total_s": time.perf_counter() - t0}
    out = RESULTS / f"fashion_baselines{suffix}.json"
    out.write_text(json.dumps(doc, indent=2))
    for p in plots(doc, suffix):
        print(f"wrote {p}")
    print(markdown(doc))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
