"""Student variants on Fashion-MNIST, with one teacher, at the ablations' reduced scale, 3 seeds
each: the student kind (MLP or convolutional, ``--student conv``) and the training objective
(feature KD with the teacher's frozen classifier, end to end with the classifier trained too, KD on
the teacher's logits, plain labels).

    .venv/bin/python benchmarks/fashion_students.py     # ~30 min on 2 cores; writes benchmarks/results/fashion_students.json
    .venv/bin/python benchmarks/fashion_students.py --kinds mlp,e2e_kd --out benchmarks/results/fashion_objectives.json

The teacher is the Fashion-MNIST default (seed 0, trained once here, or taken from a checkpoint
with ``--teacher-from``). Each student run trains K = 8
members on the first ``--train`` samples for ``--epochs`` epochs (head and gate shortened as in the
ablations) and is exported to a bundle; the whole 10k test split then runs in fixed point on the
torch backend with all members awake and with the cascade at budget 0.3, energy on Loihi's
constants. The reduced scale makes the figures relative: compare the kinds, not these
accuracies with the main benchmark's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from sne_deploy.data import load_dataset
from sne_deploy.deploy import bundle_parts
from sne_deploy.exporters.bundle import load_bundle, write_bundle
from sne_deploy.runtime import simulate
from sne_deploy.train import TrainConfig, get_teacher, train

from _common import (
    PROGRESS,
    RESULTS,
    ROOT,
    add_cluster_options,
    add_teacher_from,
    benchmark_parser,
    executor,
    job_threads,
    saved_teacher,
)

# variant -> changes to the reduced-scale base (the Fashion-MNIST defaults without TNA: 128 hidden
# units, a sparse input layer, the teacher's classifier trained end to end with KD on its logits,
# the centred input code)
PREVIOUS = {
    "hidden": 64,
    "input_delta": 0.7,
    "train_head": False,
    "logit_kd": 0.0,  # the defaults until 2026-11-26
    "encoding": "regular-if",
}
VARIANTS = {
    "mlp": {},
    "conv": {"student": "conv"},
    "previous": PREVIOUS,
    "previous_conv": {**PREVIOUS, "student": "conv"},
    "frozen_head": {"train_head": False, "logit_kd": 0.0},
    "no_logit_kd": {"logit_kd": 0.0},
    "dense_input": {"input_delta": 0.7},
    "floor_code": {"encoding": "regular-if"},
    "h64": {"hidden": 64},
    "labels": {"objective": "labels", "member_ce": 0.0},
    # the graded input code: one graded spike per pixel, held by the input layer's current
    "graded": {"encoding": "graded"},
    "graded_T8": {"encoding": "graded", "steps": 8},
    "graded_dense_input": {"encoding": "graded", "input_delta": 0.7},
    "graded_h64": {"encoding": "graded", "hidden": 64},
}


def one_run(cfg: TrainConfig, variant: str, teacher, ds) -> dict:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    model = train(cfg, progress=False, teacher=teacher)
    train_s = time.perf_counter() - t0
    x, y = ds.test.flat(), ds.test.y
    with tempfile.TemporaryDirectory() as tmp:
        write_bundle(bundle_parts(model, ds), Path(tmp) / "b", "nir", force=True)
        bundle = load_bundle(Path(tmp) / "b")
        runs = {
            name: simulate(bundle, x, y, budget, policy, "torch", "fixed", compare=False).to_dict()
            for name, budget, policy in (("all", 1.0, "all"), ("cascade_0.3", 0.3, "cascade"))
        }
    net = model.networks[0]
    return {
        "seed": cfg.seed,
        "variant": variant,
        "student": cfg.student,
        "train_s": train_s,
        "student_epoch_s": statistics.median(model.summary.train_log["epoch_s"]),
        "neurons_per_member": sum(l.n_out for l in net.layers),
        "synapses_per_member": int(sum((l.fixed.weight != 0).sum() for l in net.layers)),
        "full_fixed_accuracy": model.summary.ensemble_accuracy["fixed"],
        **{f"{n}_accuracy": r["accuracy"] for n, r in runs.items()},
        **{f"{n}_energy_uj": r["energy_pj"]["loihi"] / 1e6 for n, r in runs.items()},
        **{
            f"{n}_breakdown_uj": {k: v / 1e6 for k, v in r["energy_breakdown_pj"]["loihi"].items()}
            for n, r in runs.items()
        },
        "cascade_0.3_rounds": runs["cascade_0.3"]["mean_rounds"],
        "teacher_energy_uj": runs["all"]["teacher_energy_pj"]["loihi"] / 1e6,
        "teacher_accuracy": model.summary.teacher_accuracy,
    }


def student_run(job) -> dict:  # type: ignore[no-untyped-def]
    """One job, here or as a Ray task (``--workers``): (config, variant, teacher, dataset) -> its row."""
    return one_run(*job)


def command_line(a: argparse.Namespace) -> str:
    """The command that wrote the results file, for its ``command`` field."""
    cmd = "benchmarks/fashion_students.py" + "".join(
        f" --{k} {v}" for k, v in (("train", a.train), ("epochs", a.epochs), ("seeds", a.seeds), ("kinds", a.kinds))
    )
    if a.teacher_epochs:
        cmd += f" --teacher-epochs {a.teacher_epochs}"
    if a.conv:
        cmd += f" --conv '{a.conv}'"
    if a.teacher_from:
        cmd += f" --teacher-from {a.teacher_from}"
    out = Path(a.out).resolve()
    if out != (RESULTS / "fashion_students.json").resolve():
        cmd += f" --out {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}"
    return cmd


def main() -> None:
    ap = benchmark_parser(__doc__, markdown)
    ap.add_argument("--train", type=int, default=20000, help="training samples per student run")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--seeds", default="0,1,2")
    add_cluster_options(ap)
    ap.add_argument("--teacher-epochs", type=int, default=None, help="default: the dataset's (smoke tests: 1)")
    ap.add_argument(
        "--conv",
        default=None,
        metavar="C,K,S,P[;C,K,S,P...]",
        help="the conv students' layers (default: sne_deploy.model.CONV_STUDENT)",
    )
    ap.add_argument("--kinds", default="mlp,conv", help=f"variants, from: {', '.join(VARIANTS)}")
    add_teacher_from(ap)
    ap.add_argument("--out", default=str(RESULTS / "fashion_students.json"))
    a = ap.parse_args()
    torch.set_num_threads(2)
    t_start = time.perf_counter()
    ds = load_dataset("fashion-mnist")
    conv = tuple(tuple(int(v) for v in layer.split(",")) for layer in a.conv.split(";")) if a.conv else None
    base = TrainConfig(
        data="fashion-mnist", epochs=a.epochs, limit_train=a.train, gate_epochs=1, head_epochs=5, conv=conv
    )
    kinds = a.kinds.split(",")
    unknown = [k for k in kinds if k not in VARIANTS]
    if unknown:
        ap.error(f"--kinds: unknown variant(s) {', '.join(unknown)} (choose from {', '.join(VARIANTS)})")
    t0 = time.perf_counter()
    teacher = saved_teacher(a.teacher_from) or get_teacher(
        replace(base, limit_train=None, teacher_epochs=a.teacher_epochs).resolved(), ds, PROGRESS
    )
    teacher_s = time.perf_counter() - t0
    jobs = [(kind, int(s)) for s in a.seeds.split(",") for kind in kinds]
    runs = [(replace(base, seed=seed, **VARIANTS[kind]), kind, teacher, ds) for kind, seed in jobs]
    rows = executor(a).map(student_run, runs, threads=job_threads(a), desc="runs", progress=PROGRESS)
    for r in rows:
        print(json.dumps({k: v for k, v in r.items() if not k.endswith("breakdown_uj")}), file=sys.stderr)
    summary = {}
    for kind in kinds:
        rs = [r for r in rows if r.get("variant", r["student"]) == kind]
        summary[kind] = {
            k: {"mean": statistics.fmean(r[k] for r in rs), "min": min(r[k] for r in rs), "max": max(r[k] for r in rs)}
            for k in (
                "full_fixed_accuracy",
                "all_accuracy",
                "cascade_0.3_accuracy",
                "all_energy_uj",
                "cascade_0.3_energy_uj",
                "cascade_0.3_rounds",
                "student_epoch_s",
            )
        }
        summary[kind]["neurons_per_member"] = rs[0]["neurons_per_member"]
        summary[kind]["synapses_per_member"] = rs[0]["synapses_per_member"]
    doc = {
        "command": command_line(a),
        "conv_layers": conv,
        "variants": {k: VARIANTS[k] for k in kinds},
        "date": time.strftime("%Y-%m-%d"),
        "machine": "2 cores, no GPU (shared; timings indicative)",
        "scale": {"train_samples": a.train, "epochs": a.epochs, "test_samples": len(ds.test.y)},
        "teacher_s": teacher_s,
        "total_s": time.perf_counter() - t_start,
        "rows": rows,
        "summary": summary,
    }
    Path(a.out).write_text(json.dumps(doc, indent=2))
    print(markdown(doc))


def markdown(doc: dict) -> str:
    s = doc["summary"]
    out = [
        "| variant | neurons / member | synapses / member | all members (fixed) | cascade 0.3 | cascade rounds | "
        "µJ all awake | µJ cascade 0.3 | s / epoch |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for kind in s:
        k = s[kind]

        def mm(key: str, f: str = ".4f", k: dict = k) -> str:
            return f"{k[key]['mean']:{f}} ({k[key]['min']:{f}}–{k[key]['max']:{f}})"

        out.append(
            f"| {kind} | {k['neurons_per_member']:,} | {k['synapses_per_member']:,} | {mm('all_accuracy')} | "
            f"{mm('cascade_0.3_accuracy')} | {k['cascade_0.3_rounds']['mean']:.2f} | {mm('all_energy_uj', '.2f')} | "
            f"{mm('cascade_0.3_energy_uj', '.3f')} | {k['student_epoch_s']['mean']:.1f} |"
        )
    return "\n".join(out)


if __name__ == "__main__":
    main()
