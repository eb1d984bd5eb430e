"""Fashion-MNIST: an early exit in time for the cascade (and for one spiking student), chosen on the validation split.

    .venv/bin/python benchmarks/fashion_time_exit.py                 # writes benchmarks/results/fashion_time_exit.json + PNG
    .venv/bin/python benchmarks/fashion_time_exit.py --single runs/fashion_single/model.pt   # with the one-student rows

The plain cascade stops between rounds: after member r's T steps the head reads the counts of
the members awake so far and the input stops once its confidence reaches a threshold. The cascade
in time also stops *within* a round (DT-SNN, arXiv 2305.17346, did this for one network: static
T = 4 accuracy with 1.46 steps on average): the head reads after every step, the running
member's counts so far scaled to T steps (:func:`sne_deploy.scheduler.time_checkpoint_logits`).
Its budget is in member-steps (0.3 = 30 % of K x T), so both policies at the same budget run the
same share of the members' steps. Both thresholds are calibrated on the validation split
(:func:`sne_deploy.scheduler.calibrate_cascade`, the runtime's own rule) and applied to the test
split. One network with K = 1 gets the same rule in time alone.

How it is charged: every member runs all T steps over every input on torch fixed point with its
trains recorded, and a member stopped after t steps is charged what its first t steps did
(:func:`sne_deploy.simulators.result.stopped_early`: a network is causal, so this is the run that
stopped there); the head is charged once per step it read (up to K x T times), the gate once.
Energies under every model of :mod:`sne_deploy.energy`. One run on the shared 2-core machine.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from fashion_gate import with_gate

from sne_deploy import checkpoint
from sne_deploy.data import Dataset, load_dataset
from sne_deploy.deploy import bundle_parts
from sne_deploy.energy import MODELS, Counts, HostWork, snn_energy_pj
from sne_deploy.exporters.bundle import Bundle, load_bundle, write_bundle
from sne_deploy.runtime import host_ann_work, member_sizes, run_member
from sne_deploy.scheduler import (
    calibrate_cascade,
    cascade_order,
    cascade_rounds,
    confidence,
    time_checkpoint_logits,
    time_exit_steps,
)
from sne_deploy.simulators.result import stopped_early

from _common import RESULTS, ROOT, benchmark_parser, write_results

BUDGETS = (0.05, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.7, 1.0)


class SplitRun:
    """Every member over one split, recorded, and the head's logits at every checkpoint."""

    def __init__(self, bundle: Bundle, x: np.ndarray, y: np.ndarray) -> None:
        self.bundle, self.y = bundle, y
        self.spikes = bundle.spikes(x)
        self.steps = int(self.spikes.shape[1])
        k = bundle.n_members
        self.has_gate = k > 1
        self.order = cascade_order(bundle.gate_scores(x)) if self.has_gate else np.zeros((len(x), 1), np.int64)
        self.results = [run_member(net, self.spikes, "torch", "fixed", True) for net in bundle.networks]
        self.logits = time_checkpoint_logits([r.trains[-1] for r in self.results], self.order, bundle.head_logits)
        n, c, classes = self.logits.shape
        self.conf = confidence(self.logits.reshape(n * c, classes)).reshape(n, c)
        self._per_t: Optional[list[np.ndarray]] = None

    def checkpoints(self, in_time: bool) -> np.ndarray:
        """The confidence table a policy stops on: every step, or each round's last step."""
        return self.conf if in_time else self.conf[:, self.steps - 1 :: self.steps]

    def outcome(self, in_time: bool, threshold: float, models: tuple[str, ...]) -> dict:
        """Accuracy, member-steps and energy of stopping at ``threshold``."""
        used = cascade_rounds(self.checkpoints(in_time), threshold)  # checkpoints (or rounds), 1-based
        used_steps = used if in_time else used * self.steps
        pred = self.logits[np.arange(len(used)), used_steps - 1].argmax(1)
        run = time_exit_steps(self.order, used_steps, self.steps)
        counts_energy = self.charge(run, used.astype(np.float64), np.ones(len(used)), models)
        k = self.bundle.n_members
        return {
            "accuracy": float((pred == self.y).mean()),
            "member_steps": float(run.sum(1).mean() / (k * self.steps)),
            "awake_fraction": float((run > 0).mean()),
            "mean_steps_last_member": float(((used_steps - 1) % self.steps + 1).mean()),
            "head_reads": float(used.mean()),
            "energy_pj": counts_energy,
        }

    def per_step_counts(self) -> list[np.ndarray]:
        """Member j's counters had every input stopped after t = 0..T steps: (T + 1, N, 4) of
        synaptic events, the input layer's share, neuron updates, spikes and graded events, each through
        :func:`stopped_early` (computed once, so that charging a policy is a lookup)."""
        if self._per_t is None:
            n = len(self.y)
            self._per_t = []
            for res in self.results:
                table = np.zeros((self.steps + 1, n, 5))
                for t in range(1, self.steps + 1):
                    r = stopped_early(res, self.spikes, np.full(n, t))
                    table[t] = np.stack(
                        [
                            r.synaptic_events.sum(1),
                            r.synaptic_events[:, 0],
                            r.neuron_updates.sum(1),
                            r.layer_spikes.sum(1),
                            r.graded_events,
                        ],
                        axis=1,
                    )
                self._per_t.append(table)
        return self._per_t

    def charge(self, run: np.ndarray, head_reads: np.ndarray, gate_ran: np.ndarray, models: tuple[str, ...]) -> dict:
        """Mean energy per input of member j running ``run[i, j]`` steps on input i (0: asleep),
        the head read ``head_reads[i]`` times and the gate run where ``gate_ran[i]`` (under each
        of ``models``). An input with no steps, reads or gate costs nothing, so a caller can
        charge a subset of the split (a cascade stage that only some inputs reach)."""
        per_t = self.per_step_counts()
        rows = np.arange(len(run))
        total = sum(per_t[j][run[:, j], rows] for j in range(len(self.results)))  # (N, 5) of one network each
        syn, syn_in, updates, spikes, graded = (float(v) for v in total.mean(axis=0))
        m = self.bundle.manifest
        head_runs = float(np.mean(head_reads))  # the head reads at every checkpoint it reached
        gate_runs = float(np.mean(gate_ran)) if self.has_gate else 0.0
        gate_macs = gate_runs * float(m.gate_macs) if self.has_gate else 0.0
        counts = Counts(syn, updates, spikes, gate_macs, head_runs * m.head_macs, syn_in, graded)
        host = HostWork(
            host_ann_work(m.host_work, "gate") if self.has_gate else None,
            host_ann_work(m.host_work, "head"),
            gate_runs,
            head_runs,
        )
        sizes = member_sizes(self.bundle.networks)
        return {mod: snn_energy_pj(counts, mod, sizes, host) for mod in models}


def sweep(label: str, val: SplitRun, test: SplitRun, budgets: tuple[float, ...]) -> list[dict]:
    rows = []
    policies = (("cascade", False), ("cascade in time", True)) if val.has_gate else (("time exit", True),)
    for policy, in_time in policies:
        for b in budgets if in_time or val.has_gate else (1.0,):
            thr = calibrate_cascade(val.checkpoints(in_time), b)
            row = {
                "model": label,
                "policy": policy,
                "budget": b,
                "threshold": thr,
                "val": val.outcome(in_time, thr, MODELS),
                "test": test.outcome(in_time, thr, MODELS),
            }
            rows.append(row)
            print(
                json.dumps(
                    {k: row[k] for k in ("model", "policy", "budget")}
                    | {s: {k: row[s][k] for k in ("accuracy", "member_steps")} for s in ("val", "test")}
                    | {"test_loihi_uj": row["test"]["energy_pj"]["loihi"] / 1e6}
                ),
                flush=True,
            )
    if not val.has_gate:  # one network: all T steps as well (its plain run)
        rows.append(
            {
                "model": label,
                "policy": "all steps",
                "budget": 1.0,
                "threshold": float("inf"),
                "val": val.outcome(True, float("inf"), MODELS),
                "test": test.outcome(True, float("inf"), MODELS),
            }
        )
    return rows


def model_rows(
    label: str, path: Path, budgets: tuple[float, ...], limit: Optional[int], gate: Optional[tuple[int, int]] = None
) -> list[dict]:
    model = checkpoint.load(path)
    ds = load_dataset("fashion-mnist", None, model.config.seed)
    if gate is not None:  # the gate study's chosen gate (benchmarks/fashion_gate.py), retrained here
        model = with_gate(model, ds, *gate)
    return sweep(label, *split_runs(model, ds, limit), budgets)


def split_runs(model: Any, ds: Dataset, limit: Optional[int]) -> tuple[SplitRun, SplitRun]:
    """``model`` exported as NIR and recorded over the validation and test splits (their first
    ``limit`` samples, if given)."""
    with tempfile.TemporaryDirectory() as tmp:
        out, _ = write_bundle(bundle_parts(model, ds), Path(tmp) / "m.nir", "nir")
        bundle = load_bundle(out)
        runs = []
        for split in ("val", "test"):
            s = ds.split(split)
            x, y = s.inputs()[:limit], s.y[:limit]  # [:None] is the whole split
            runs.append(SplitRun(bundle, x, y))
        return runs[0], runs[1]


def markdown(doc: dict) -> str:
    lines = [
        "| model | policy | budget (member-steps) | val accuracy | test accuracy | test member-steps | steps of the last member | µJ Loihi | µJ memory | µJ 45 nm |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["rows"]:
        t, e = r["test"], r["test"]["energy_pj"]
        lines.append(
            f"| {r['model']} | {r['policy']} | {r['budget']:g} | {r['val']['accuracy']:.4f} | {t['accuracy']:.4f} | "
            f"{t['member_steps']:.3f} | {t['mean_steps_last_member']:.2f} | {e['loihi'] / 1e6:.3f} | "
            f"{e['memory'] / 1e6:.3f} | {e['45nm-ops'] / 1e6:.3f} |"
        )
    return "\n".join(lines)


def plot(doc: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for ax, mod, name in zip(axes, ("loihi", "memory"), ("Loihi constants", "memory-aware model")):
        groups: dict = {}
        for r in doc["rows"]:
            groups.setdefault((r["model"], r["policy"]), []).append(r)
        for (model, policy), rows in groups.items():
            rows = sorted(rows, key=lambda r: r["test"]["energy_pj"][mod])
            e = [r["test"]["energy_pj"][mod] / 1e6 for r in rows]
            a = [100 * r["test"]["accuracy"] for r in rows]
            ax.plot(e, a, "o-" if len(rows) > 1 else "s", label=f"{model}: {policy}", ms=4)
        for n, (key, r) in enumerate(_int8_mlps().items()):
            xy = (r["energy"][mod] / 1e6, 100 * r["accuracy"])
            ax.plot(*xy, "x", color="0.35", ms=7)
            ax.annotate(key, xy, fontsize=7, xytext=(4, -10 if n % 2 == 0 else 4), textcoords="offset points")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(f"energy per inference, µJ ({name}, log scale)")
        ax.set_ylabel(f"test accuracy, % ({doc['test_samples']} Fashion-MNIST test images)")
        ax.set_title(f"Early exit in time vs between rounds ({name})")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(
        "Budgets calibrated on the validation split; torch fixed point; one run, 2 cores. "
        "x: int8 ANN MLPs (mean of 3 seeds, benchmarks/results/fashion_baselines.json, same teacher recipe)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def _int8_mlps() -> dict:
    """The int8 ANN MLPs of the baselines benchmark (mean over its seeds), for the plot's context."""
    path = RESULTS / "fashion_baselines.json"
    if not path.exists():
        return {}
    out = {}
    for key, b in json.loads(path.read_text())["baselines"].items():
        if key.startswith("mlp_"):
            rows = b["rows"]
            out[b["label"].split(" (")[0].replace("ANN ", "") + " int8"] = {
                "accuracy": float(np.mean([r["accuracy_int8"] for r in rows])),
                "energy": {m: float(np.mean([r["energy_int8_pj"][m] for r in rows])) for m in MODELS},
            }
    return out


def main() -> None:
    ap = benchmark_parser(__doc__, markdown)
    ap.add_argument("--checkpoint", default=str(ROOT / "runs" / "fashion" / "model.pt"), help="the SNE (K members)")
    ap.add_argument("--single", default=None, help="a K = 1 checkpoint (same teacher) for the one-student rows")
    ap.add_argument(
        "--gate", default=None, metavar="POOL,HIDDEN", help="also the SNE with this gate retrained (e.g. 7,16)"
    )
    ap.add_argument("--plots", default=None, metavar="JSON", help="redraw the PNG from a results file and exit")
    ap.add_argument("--limit", type=int, default=None, help="first N samples of each split (a smoke test)")
    a = ap.parse_args()
    if a.plots:
        doc = json.loads(Path(a.plots).read_text())
        plot(doc, Path(a.plots).with_suffix(".png"))
        return
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    rows = model_rows("SNE (K = 8)", Path(a.checkpoint), BUDGETS, a.limit)
    if a.gate:
        pool, hidden = (int(v) for v in a.gate.split(","))
        rows += model_rows(
            f"SNE, {pool}x{pool} pool gate, {hidden} hidden", Path(a.checkpoint), BUDGETS, a.limit, (pool, hidden)
        )
    if a.single:
        rows += model_rows("one student", Path(a.single), BUDGETS, a.limit)
    doc = {
        "command": "benchmarks/fashion_time_exit.py"
        + (f" --gate {a.gate}" if a.gate else "")
        + (f" --single {a.single}" if a.single else ""),
        "date": time.strftime("%Y-%m-%d"),
        "machine": "2 cores, no GPU (one run)",
        "checkpoint": a.checkpoint,
        "single": a.single,
        "test_samples": a.limit or 10000,
        "rows": rows,
        "timings": {"total_s": time.perf_counter() - t0},
    }
    suffix = "_quick" if a.limit else ""
    out = write_results(f"fashion_time_exit{suffix}.json", doc)
    plot(doc, RESULTS / f"fashion_time_exit{suffix}.png")
    print(markdown(doc))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
