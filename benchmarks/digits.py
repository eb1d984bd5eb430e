"""Digits (the demo's model): the README's digits table from one run with the CLI's defaults.

.venv/bin/python benchmarks/digits.py      # ~2 min; writes benchmarks/results/digits.json, prints the table
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

from sne_deploy.data import load_digits
from sne_deploy.deploy import bundle_parts
from sne_deploy.exporters.bundle import load_bundle, write_bundle
from sne_deploy.train import TrainConfig, train

from _common import benchmark_parser, table_head, write_results

SWEEP_POLICIES = ("gate", "cascade", "fixed", "random")


def main() -> None:

    from sne_deploy.runtime import simulate

    benchmark_parser(__doc__, markdown).parse_args()

    torch.set_num_threads(2)
    t0 = time.perf_counter()
    model = train(TrainConfig(data="digits", seed=0), progress=False)
    train_s = time.perf_counter() - t0
    ds = load_digits(0)
    with tempfile.TemporaryDirectory() as tmp:
        write_bundle(bundle_parts(model, ds), Path(tmp) / "b", "lava")
        bundle = load_bundle(Path(tmp) / "b")
        x, y = ds.test.flat(), ds.test.y
        runs = {
            f"{p}_{m}": simulate(bundle, x, y, b, p, "torch", m, compare=False).to_dict()
            for p, b, m in (
                ("all", 1.0, "float"),
                ("all", 1.0, "fixed"),
                ("gate", 0.3, "fixed"),
                ("cascade", 0.3, "fixed"),
                ("random", 0.3, "fixed"),
                ("fixed", 0.3, "fixed"),
            )
        }
        sweep = [
            {
                k: v
                for k, v in simulate(bundle, x, y, b / 10, p, "torch", "fixed", compare=False).to_dict().items()
                if k in ("policy", "budget", "accuracy", "awake_fraction", "energy_pj", "mean_rounds")
            }
            for b in range(1, 11)
            for p in SWEEP_POLICIES
        ]
    s = model.summary
    doc = {
        "command": "benchmarks/digits.py",
        "date": time.strftime("%Y-%m-%d"),
        "machine": "2 cores, no GPU",
        "train_s": train_s,
        "teacher": {"accuracy": s.teacher_accuracy, "macs": s.teacher_macs},
        "runs": runs,
        "sweep": sweep,
    }
    write_results("digits.json", doc)
    print(markdown(doc))


def markdown(doc: dict) -> str:
    r = doc["runs"]
    rows = [
        ("ensemble, all awake, float", r["all_float"]),
        ("ensemble, all awake, fixed point", r["all_fixed"]),
        ("gate", r["gate_fixed"]),
        ("cascade", r["cascade_fixed"]),
        ("random", r["random_fixed"]),
        ("fixed (best static subset)", r["fixed_fixed"]),
    ]
    lines = [
        "| model / policy at budget 0.3 | test accuracy | awake fraction | synaptic events / sample "
        "(NeuroBench Effective_ACs) | NeuroBench ActivationSparsity | energy Loihi µJ |",
        "|---|---|---|---|---|---|",
        f"| teacher MLP ({doc['teacher']['macs'] / 1e3:.1f} k MACs) | {doc['teacher']['accuracy']:.4f} | – | – | – | "
        f"{r['gate_fixed']['teacher_energy_pj']['loihi'] / 1e6:.3f} |",
    ]
    lines += [
        f"| {name} | {v['accuracy']:.4f} | {v['awake_fraction']:.3f} | {v['synaptic_events_per_sample']:,.0f} | "
        f"{v['neurobench']['ActivationSparsity']:.3f} | {v['energy_pj']['loihi'] / 1e6:.3f} |"
        for name, v in rows
    ]
    nb = r["all_fixed"]["neurobench"]
    lines += [
        "",
        f"NeuroBench static metrics of the members: ConnectionSparsity {nb['ConnectionSparsity']:.3f}, "
        f"Footprint {nb['Footprint'] / 1024:.0f} KiB (float32 weights as NeuroBench's adapter holds them).",
    ]
    by = {(v["budget"], v["policy"]): v for v in doc["sweep"]}
    budgets = sorted({b for b, _ in by})
    lines += table_head(
        "Budget sweep (torch, fixed point; test accuracy, best of each row in bold):", "budget", SWEEP_POLICIES
    )
    for b in budgets:
        best = max(by[(b, p)]["accuracy"] for p in SWEEP_POLICIES)
        lines.append(
            f"| {b:g} | "
            + " | ".join(
                (
                    f"**{by[(b, p)]['accuracy']:.4f}**"
                    if by[(b, p)]["accuracy"] == best
                    else f"{by[(b, p)]['accuracy']:.4f}"
                )
                for p in SWEEP_POLICIES
            )
            + " |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
