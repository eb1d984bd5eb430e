"""Fashion-MNIST: a cascade led by one spiking student, whose unsure inputs the SNE corrects.

    .venv/bin/python benchmarks/fashion_lead.py            # writes benchmarks/results/fashion_lead.json + PNG
    .venv/bin/python benchmarks/fashion_lead.py --markdown benchmarks/results/fashion_lead.json
    .venv/bin/python benchmarks/fashion_lead.py --checkpoint runs/fashion_regular-if-centred/model.pt \
        --students-dir runs/fashion_lead_regular-if-centred   # another input code's SNE and students: *_CODE.json

Why: one wide spiking student beats the SNE's cascade at equal energy (benchmarks/fashion_baselines.py).
The student pays its input layer once, where each awake member pays its own. The student is also
sure of most inputs early (benchmarks/fashion_time_exit.py). So this design lets the student lead.
It runs on every input, and an input goes on to the SNE only when the student is unsure. There
the SNE's members, in the gate's order, correct the student, round by round: the head's log-softmax
is added to the student's (a product of the two models' class probabilities), and the input stops
once that fused confidence reaches a threshold.

Policies, with every threshold calibrated on the validation split and applied to the test split:

* ``lead``: the student runs its T steps. It stops if its confidence reaches θ_L (set so that a
  share ``escalate`` of the validation inputs goes on). Otherwise the SNE cascade continues, with
  its thresholds calibrated on the escalated validation inputs at an inner budget.
* ``lead in time``: the student also stops within its T steps once it is sure (DT-SNN's exit), and
  an input that never reaches θ_L goes on.
* ``…, corrector alone``: as above, but an escalated input takes the corrector's own prediction (no fusion).

Correctors: the SNE as trained; the SNE *with a corrector head* (its head and gate retrained on
the fused prediction's loss, :class:`CorrectorLoss`); and, as the alternative a user would build,
a wider plain student (a big-little cascade). Beside them, in the same run: the plain SNE cascade
and plain students of several widths, whole and with their own time exit.

How it is charged: every network runs over every input on torch fixed point with its trains
recorded. A network stopped after t steps is charged its first t steps
(:func:`sne_deploy.simulators.result.stopped_early`). The student's head is charged per read. The
SNE's gate and head are charged only for the inputs that reach them. The two networks are priced
as two memories (the memory model's access prices depend on each network's size); the 10-class
fusion is not charged (20 adds). The choice is made on validation: the most accurate setting whose
validation Loihi energy is no more than the plain cascade's at 0.3, and the Pareto front of each
energy model. One run, one seed, on the shared 2-core machine.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from fashion_baselines import code_tag
from fashion_gate import with_gate
from fashion_time_exit import SplitRun, split_runs
from torch import nn

from sne_deploy import checkpoint
from sne_deploy.data import Dataset, load_dataset
from sne_deploy.energy import MODELS
from sne_deploy.head_gate import finetune_head, gate_targets
from sne_deploy.model import member_counts
from sne_deploy.report import subplots
from sne_deploy.scheduler import calibrate_cascade, cascade_rounds, confidence, time_exit_steps
from sne_deploy.train import train

from _common import RESULTS, ROOT, benchmark_parser, write_results

ESCALATE = (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0)  # share of validation inputs the lead passes on
LEAD_TIME_BUDGETS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # the lead's steps as a share of T (its time exit)
INNER = (0.125, 0.25, 0.5, 1.0)  # the SNE cascade's budget on the inputs it receives
CASCADE_BUDGETS = (0.125, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0)


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


class LeadRun:
    """One split: the lead student's and the SNE's recorded runs, and the fused readings."""

    def __init__(self, lead: SplitRun, sne: SplitRun) -> None:
        self.lead, self.sne, self.y = lead, sne, lead.y
        t = sne.steps
        self.sne_rounds = sne.logits[:, t - 1 :: t]  # (n, K, classes): the head after each round
        self.fused = log_softmax(lead.logits[:, -1])[:, None] + log_softmax(self.sne_rounds)
        self.fused_conf = confidence(self.fused)
        self.sne_conf = sne.checkpoints(False)

    def lead_stage(self, theta: float, in_time: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Steps the lead runs, its prediction, and which inputs go on (its confidence never reached ``theta``)."""
        n, steps = len(self.y), self.lead.steps
        if in_time:
            ran = cascade_rounds(self.lead.conf, theta)  # the first step whose confidence reaches theta, else T
        else:
            ran = np.full(n, steps)
        pred = self.lead.logits[np.arange(n), ran - 1].argmax(1)
        escalate = self.lead.conf[np.arange(n), ran - 1] < theta
        return ran, pred, escalate

    def sne_tables(self, fuse: bool) -> tuple[np.ndarray, np.ndarray]:
        return (self.fused_conf, self.fused) if fuse else (self.sne_conf, self.sne_rounds)

    def outcome(self, theta_l: float, in_time: bool, theta_s: float, fuse: bool) -> dict:
        ran, pred, esc = self.lead_stage(theta_l, in_time)
        conf, logits = self.sne_tables(fuse)
        rounds = np.where(esc, cascade_rounds(conf, theta_s), 0)
        idx = np.flatnonzero(esc)
        pred = pred.copy()
        pred[idx] = logits[idx, rounds[idx] - 1].argmax(1)
        lead_e = self.lead.charge(ran[:, None], ran if in_time else np.ones(len(ran)), np.zeros(len(ran)), MODELS)
        run = time_exit_steps(self.sne.order, rounds * self.sne.steps, self.sne.steps)
        sne_e = self.sne.charge(run, rounds.astype(np.float64), esc.astype(np.float64), MODELS)
        k = self.sne.bundle.n_members
        return {
            "accuracy": float((pred == self.y).mean()),
            "escalated": float(esc.mean()),
            "lead_steps": float(ran.mean() / self.lead.steps),
            "sne_awake_fraction": float(rounds.sum() / (k * len(rounds))),
            "energy_pj": {m: lead_e[m] + sne_e[m] for m in MODELS},
            "energy_lead_pj": lead_e,
        }


def lead_thresholds(val: LeadRun, in_time: bool) -> list[tuple[float, float]]:
    """(setting, θ_L): by escalated share (the lead runs all T steps) or by the lead's step budget."""
    if in_time:
        return [(b, calibrate_cascade(val.lead.conf, b)) for b in LEAD_TIME_BUDGETS]
    out = []
    for e in ESCALATE:  # θ_L at the e-quantile of the lead's final confidence: that share goes on
        c = np.sort(val.lead.conf[:, -1])
        i = int(round(e * len(c)))
        out.append((e, float("-inf") if i == 0 else float("inf") if i >= len(c) else float((c[i - 1] + c[i]) / 2)))
    return out


def sweep(label: str, val: LeadRun, test: LeadRun) -> list[dict]:
    rows = []
    inner_budgets = INNER if val.sne.bundle.n_members > 1 else (1.0,)  # one network has no inner cascade
    for in_time in (False, True):
        for setting, theta_l in lead_thresholds(val, in_time):
            _, _, esc = val.lead_stage(theta_l, in_time)
            for fuse in (True, False):
                conf, _ = val.sne_tables(fuse)
                for inner in inner_budgets if esc.any() else (INNER[0],):
                    theta_s = calibrate_cascade(conf[esc], inner) if esc.any() else float("inf")
                    row = {
                        "model": label,
                        "policy": ("lead in time" if in_time else "lead") + ("" if fuse else ", corrector alone"),
                        "lead_setting": setting,
                        "inner_budget": inner,
                        "theta_lead": theta_l,
                        "theta_sne": theta_s,
                        "val": val.outcome(theta_l, in_time, theta_s, fuse),
                        "test": test.outcome(theta_l, in_time, theta_s, fuse),
                    }
                    rows.append(row)
                if not esc.any():
                    break  # nothing goes on: fusion does not matter
    return rows


def policy_rows(
    label: str, policy: str, val: SplitRun, test: SplitRun, in_time: bool, budgets: tuple[Optional[float], ...]
) -> list[dict]:
    """One network's rows of a stopping rule calibrated on validation at each of ``budgets``
    (``in_time``: after any step, else after whole rounds); a budget of None never stops early
    (its plain run: T steps, the head read once per round)."""
    rows = []
    for b in budgets:
        thr = float("inf") if b is None else calibrate_cascade(val.checkpoints(in_time), b)
        rows.append(
            {
                "model": label,
                "policy": policy,
                "budget": b,
                "val": val.outcome(in_time, thr, MODELS),
                "test": test.outcome(in_time, thr, MODELS),
            }
        )
    return rows


def pareto(rows: list[dict], model: str, split: str = "val") -> list[dict]:
    """The rows no other row beats on ``split`` in both accuracy and energy under ``model``."""
    key = sorted(rows, key=lambda r: (r[split]["energy_pj"][model], -r[split]["accuracy"]))
    front, best = [], -1.0
    for r in key:
        if r[split]["accuracy"] > best:
            front.append(r)
            best = r[split]["accuracy"]
    return front


def choose(lead_rows: list[dict], cascade_at_03: dict, model: str) -> dict:
    """``model``'s most accurate setting on validation at no more validation Loihi energy than the
    plain cascade at 0.3."""
    cap = cascade_at_03["val"]["energy_pj"]["loihi"]
    ok = [r for r in lead_rows if r["model"] == model and r["val"]["energy_pj"]["loihi"] <= cap]
    return max(ok, key=lambda r: (r["val"]["accuracy"], -r["val"]["energy_pj"]["loihi"]))


def single_at(rows: list[dict], energy: float) -> Optional[float]:
    """A plain single student's test accuracy at ``energy`` (Loihi), interpolated on log energy
    between this run's widths; None outside their range."""
    pts = sorted((r["test"]["energy_pj"]["loihi"], r["test"]["accuracy"]) for r in pareto(rows, "loihi"))
    if not pts or energy < pts[0][0] or energy > pts[-1][0]:
        return None
    e, a = zip(*pts)
    return float(np.interp(np.log(energy), np.log(e), a))


class CorrectorLoss(nn.Module):
    """The SNE's head read as a correction of the lead student: log-softmax(lead) + log-softmax(head).

    Its input is the members' counts with the lead's log-probabilities appended as columns, so the
    library's own head fine-tuning (member dropout included) and gate targets train it unchanged:
    the loss is the fused prediction's, so the head learns what the lead gets wrong and the gate
    learns which members fix it."""

    def __init__(self, head: nn.Module, n_counts: int) -> None:
        super().__init__()
        self.head, self.n_counts = head, n_counts

    @property
    def n_members(self) -> int:
        return int(self.head.n_members)

    def forward(self, counts_and_lead: torch.Tensor, awake: torch.Tensor) -> torch.Tensor:
        counts, lead = counts_and_lead[:, : self.n_counts], counts_and_lead[:, self.n_counts :]
        return lead + F.log_softmax(self.head(counts, awake), dim=1)


def corrector(model: Any, lead: Any, ds: Dataset, gate: Optional[tuple[int, int]]) -> Any:
    """``model`` with its head fine-tuned, and its gate retrained, to correct ``lead`` (the loss
    of the fused prediction on the training split, float counts as in training)."""
    cfg, x = model.config, ds.train.inputs()
    counts, _ = member_counts(model.networks, x, cfg.steps, "float", cfg.encoding)
    lead_counts, _ = member_counts(lead.networks, x, lead.config.steps, "float", lead.config.encoding)
    with torch.no_grad():
        c = torch.from_numpy(lead_counts)
        lead_logp = F.log_softmax(lead.head(c, torch.ones(len(c), 1)), dim=1).numpy()
    both = np.hstack([counts, lead_logp]).astype(np.float32)
    head = copy.deepcopy(model.head)
    loss = CorrectorLoss(head, counts.shape[1])
    torch.manual_seed(cfg.seed)
    finetune_head(loss, both, ds.train.y, cfg, progress=False)
    fixed = replace(model, head=head)
    targets = gate_targets(loss, both, ds.train.y)
    return with_gate(fixed, ds, *(gate or (cfg.gate_pool, cfg.gate_hidden)), targets=targets)


def train_single(model: Any, ds: Dataset, hidden: int, path: Path) -> Any:
    """One spiking student (members = 1) of ``hidden`` neurons on the SNE's own teacher and
    settings (the baselines benchmark's recipe), cached at ``path``."""
    if path.is_file():
        return checkpoint.load(path)
    print(f"{path} not found: training one student of {hidden} hidden", flush=True)
    cfg = replace(model.config, members=1, hidden=hidden, seed=model.config.seed)
    single = train(cfg, progress=False, teacher=(model.teacher, model.teacher_kind), data=ds)
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.save(single, path)
    return single


def brief(r: dict) -> str:
    t = r["test"]
    what = (
        f"lead setting {r['lead_setting']}, inner budget {r['inner_budget']}"
        if "lead_setting" in r
        else f"budget {r['budget']}"
    )
    return (
        f"{r['model']}, {r['policy']} ({what}): test {t['accuracy']:.4f} "
        f"at {t['energy_pj']['loihi'] / 1e6:.3f} µJ Loihi, {t['energy_pj']['memory'] / 1e6:.3f} µJ memory"
    )


def _setting(r: dict) -> str:
    v = r.get("lead_setting", r.get("budget"))
    return "–" if v is None else f"{v}"


def _share(t: dict, key: str, fallback: Optional[str] = None) -> str:
    v = t.get(key, t.get(fallback) if fallback else None)
    return "–" if v is None else f"{v:.3f}"


def markdown(doc: dict) -> str:
    lines = [
        "| model | policy | lead setting | inner budget | val accuracy | test accuracy | escalated (test) | SNE awake (test) | µJ Loihi | µJ memory | µJ 45 nm |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict = {}
    for r in doc["lead_rows"]:
        groups.setdefault(r["model"], []).append(r)
    fronts = {id(r) for rows in groups.values() for m in ("loihi", "memory") for r in pareto(rows, m)}
    timed = doc.get("student_time_rows", [])
    time_front = {id(r) for m in ("loihi", "memory") for r in pareto(timed, m)}
    shown = [r for r in doc["lead_rows"] if id(r) in fronts] + doc["cascade_rows"] + doc["student_rows"]
    shown += [r for r in timed if id(r) in time_front]
    for r in shown:
        t, e = r["test"], r["test"]["energy_pj"]
        lines.append(
            f"| {r['model']} | {r['policy']} | {_setting(r)} | {r.get('inner_budget', '–')} | "
            f"{r['val']['accuracy']:.4f} | {t['accuracy']:.4f} | {_share(t, 'escalated')} | "
            f"{_share(t, 'sne_awake_fraction', 'awake_fraction' if 'SNE' in r['model'] else None)} | {e['loihi'] / 1e6:.3f} | "
            f"{e['memory'] / 1e6:.3f} | {e['45nm-ops'] / 1e6:.3f} |"
        )
    c = doc["chosen"]
    lines += [
        "",
        f"Chosen on validation (at most the plain cascade-at-0.3's validation Loihi energy): {brief(c['row'])}.",
    ]
    lines.append(
        f"Plain cascade at 0.3, same run: {brief(c['cascade_at_03'])}. A plain single student at the chosen "
        f"setting's energy (interpolated between this run's widths): "
        + (f"{c['single_at_energy']:.4f}" if c["single_at_energy"] is not None else "outside their range")
        + "."
    )
    pays = c["dynamic_activation_pays"]
    if pays["minus_single_pt"] is not None:
        verdict = "met" if pays["met"] else "missed"
        lines.append(f"Against that student: {pays['minus_single_pt']:+.2f} pt (the target is +1 pt): **{verdict}**.")
    if c.get("minus_time_exit_front_pt") is not None:
        lines.append(
            f"Against the plain students' own time exit (their validation front) at that energy: "
            f"{c['minus_time_exit_front_pt']:+.2f} pt."
        )
    for r in c["alternatives"]:
        lines.append(f"The same rule for {brief(r)}.")
    return "\n".join(lines)


def _curve(ax: Any, rows: list[dict], mod: str, fmt: str, **kw: Any) -> None:
    """``rows`` at their test accuracy (%) against their energy under ``mod`` (µJ)."""
    ax.plot([r["test"]["energy_pj"][mod] / 1e6 for r in rows], [100 * r["test"]["accuracy"] for r in rows], fmt, **kw)


def plot(doc: dict, out: Path) -> None:
    from matplotlib.ticker import FuncFormatter, NullFormatter

    fig, axes = subplots(1, 2, figsize=(12, 6))
    for ax, mod, name in zip(axes, ("loihi", "memory"), ("Loihi constants", "memory-aware model")):
        for model in sorted({r["model"] for r in doc["lead_rows"]}):  # each design's front over all its policies
            rows = pareto([r for r in doc["lead_rows"] if r["model"] == model], mod)
            _curve(ax, rows, mod, "o-" if "then the SNE" in model else "^:", ms=4, label=model)
        rows = sorted(doc["cascade_rows"], key=lambda r: r["test"]["energy_pj"][mod])
        _curve(ax, rows, mod, "s--", ms=4, color="0.4", label=f"{rows[0]['model']}: cascade alone (budgets 0.125-1)")
        timed = pareto(doc.get("student_time_rows", []), mod)
        if timed:
            label = "plain students with their own time exit (front over widths)"
            _curve(ax, timed, mod, "x--", ms=6, color="0.15", label=label)
        for r in doc["student_rows"]:
            _curve(ax, [r], mod, "D", ms=7, label=r["model"])
        ax.set_xscale("log")
        lo, hi = ax.get_xlim()
        ax.set_xticks([v for v in (0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5) if lo <= v <= hi])
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(f"energy per inference, µJ ({name}, log scale)")
        ax.set_ylabel(f"test accuracy, % ({doc['test_samples']} Fashion-MNIST test images)")
        ax.set_title(f"A student leads, the SNE corrects ({name})")
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8)
    fig.suptitle(
        "Each curve: the settings on the validation split's Pareto front, shown at their test figures; "
        f"torch fixed point; one run, one seed, 2 cores; {doc.get('encoding', 'regular-if-centred')} input code",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0.17, 1, 1))
    fig.savefig(out, dpi=120)


def gain_pt(chosen: dict, rows: list[dict]) -> Optional[float]:
    """Points ``chosen`` lies above the front of ``rows`` (validation front, test figures) at its
    Loihi energy; None outside the front's range."""
    single = single_at(rows, chosen["test"]["energy_pj"]["loihi"])
    return None if single is None else 100 * (chosen["test"]["accuracy"] - single)


def _pays(chosen: dict, students: list[dict]) -> dict:
    """Issue 24's first target, asked of this design: ≥ 1 pt above a plain single student of its
    Loihi energy (interpolated between this run's widths, one seed each)."""
    gain = gain_pt(chosen, students)
    return {"minus_single_pt": gain, "met": gain is not None and gain >= 1.0}


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def main() -> None:
    ap = benchmark_parser(__doc__, markdown)
    ap.add_argument("--checkpoint", default=str(ROOT / "runs" / "fashion" / "model.pt"), help="the SNE (K members)")
    ap.add_argument("--leads", default="160,256", help="hidden widths of the lead students (each tried)")
    ap.add_argument(
        "--widths", default="64,100,160,256,401", help="plain single students for the comparison (hidden widths)"
    )
    ap.add_argument(
        "--gate",
        default="7,16",
        metavar="POOL,HIDDEN",
        help="the SNE's gate, retrained (benchmarks/fashion_gate.py's choice)",
    )
    ap.add_argument(
        "--correctors",
        default="401",
        help="hidden widths of single students tried in the SNE's place (a plain big-little cascade)",
    )
    ap.add_argument(
        "--students-dir", default=str(ROOT / "runs" / "fashion_lead"), help="where the single students are cached"
    )
    ap.add_argument(
        "--no-corrector-head",
        dest="corrector_head",
        action="store_false",
        help="skip the SNE whose head and gate are retrained on the fused prediction's loss",
    )
    ap.add_argument("--plots", default=None, metavar="JSON", help="redraw the PNG from a results file and exit")
    ap.add_argument("--limit", type=int, default=None, help="first N samples of each split (a smoke test)")
    a = ap.parse_args()
    if a.plots:
        plot(json.loads(Path(a.plots).read_text()), Path(a.plots).with_suffix(".png"))
        return
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    model = checkpoint.load(Path(a.checkpoint))
    ds = load_dataset("fashion-mnist", None, model.config.seed)
    leads, correctors = _ints(a.leads), _ints(a.correctors)
    widths = sorted({*leads, *_ints(a.widths), *correctors})
    singles = {w: train_single(model, ds, w, Path(a.students_dir) / f"single_{w}.pt") for w in widths}
    t_train = time.perf_counter() - t0
    gate = tuple(int(v) for v in a.gate.split(",")) if a.gate else None
    fixers = {}
    if a.corrector_head:  # per lead: the SNE with its head and gate trained to correct that lead
        for lead in leads:
            fixers[lead] = split_runs(corrector(model, singles[lead], ds, gate), ds, a.limit)  # type: ignore[arg-type]
    if gate:
        model = with_gate(model, ds, *gate)
    sne_val, sne_test = split_runs(model, ds, a.limit)
    student = {w: split_runs(singles[w], ds, a.limit) for w in widths}
    lead_rows = []
    for lead in leads:
        lead_label = f"one student ({lead} hidden)"
        val, test = LeadRun(student[lead][0], sne_val), LeadRun(student[lead][1], sne_test)
        lead_rows += sweep(f"{lead_label}, then the SNE", val, test)
        if lead in fixers:
            fv, ft = fixers[lead]
            lead_rows += sweep(
                f"{lead_label}, then the SNE with a corrector head",
                LeadRun(student[lead][0], fv),
                LeadRun(student[lead][1], ft),
            )
        for w in correctors:  # the alternative: a wider student corrects instead
            if w > lead:
                val_w, test_w = LeadRun(student[lead][0], student[w][0]), LeadRun(student[lead][1], student[w][1])
                lead_rows += sweep(f"{lead_label}, then one student ({w} hidden)", val_w, test_w)
    pool, hidden = a.gate.split(",") if a.gate else ("", "")
    sne_label = f"SNE (K = {model.config.members})" + (f", {pool}x{pool} pool gate, {hidden} hidden" if a.gate else "")
    cascade = policy_rows(sne_label, "cascade", sne_val, sne_test, False, CASCADE_BUDGETS)
    students = [
        r
        for w in widths
        for r in policy_rows(f"one student ({w} hidden), all steps", "all steps", *student[w], False, (None,))
    ]
    time_rows = [  # the students alone with their own time exit (DT-SNN's rule), at the lead's step budgets
        r
        for w in widths
        for r in policy_rows(f"one student ({w} hidden)", "time exit", *student[w], True, LEAD_TIME_BUDGETS)
    ]
    at_03 = next(r for r in cascade if r["budget"] == 0.3)
    designs = sorted({r["model"] for r in lead_rows})
    sne_led = [choose(lead_rows, at_03, m) for m in designs if "then the SNE" in m]
    chosen = max(sne_led, key=lambda r: (r["val"]["accuracy"], -r["val"]["energy_pj"]["loihi"]))
    others = [m for m in designs if m != chosen["model"]]
    doc = {
        "command": f"benchmarks/fashion_lead.py --leads {a.leads} --widths {a.widths} --correctors {a.correctors} --gate {a.gate}"
        + (f" --checkpoint {a.checkpoint} --students-dir {a.students_dir}" if code_tag(model.config.encoding) else ""),
        "date": time.strftime("%Y-%m-%d"),
        "machine": "2 cores, no GPU (one run, shared)",
        "checkpoint": a.checkpoint,
        "encoding": model.config.encoding,
        "gate": a.gate,
        "test_samples": a.limit or 10000,
        "lead_rows": lead_rows,
        "cascade_rows": cascade,
        "student_rows": students,
        "student_time_rows": time_rows,
        "chosen": {
            "rule": "most accurate on validation at no more validation Loihi energy than the plain cascade at 0.3",
            "row": chosen,
            "cascade_at_03": at_03,
            "single_at_energy": single_at(students, chosen["test"]["energy_pj"]["loihi"]),
            "dynamic_activation_pays": _pays(chosen, students),
            "minus_time_exit_front_pt": gain_pt(chosen, time_rows),
            "alternatives": [choose(lead_rows, at_03, m) for m in others],  # the same rule, a student correcting
        },
        "timings": {"training_s": t_train, "total_s": time.perf_counter() - t0},
    }
    suffix = code_tag(model.config.encoding) + ("_quick" if a.limit else "")
    out = write_results(f"fashion_lead{suffix}.json", doc)
    plot(doc, RESULTS / f"fashion_lead{suffix}.png")
    print(markdown(doc))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
