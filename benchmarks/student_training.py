"""Student training speed: the batched MemberStack against the loop over members it replaced.

    .venv/bin/python benchmarks/student_training.py     # ~3 min; writes benchmarks/results/student_training_T8_h128_K8.json
    .venv/bin/python benchmarks/student_training.py --steps 4 --hidden 128 --group 20  # the Fashion-MNIST defaults
    .venv/bin/python benchmarks/student_training.py --steps 4 --hidden 64 --group 20   # the defaults until 2026-11-26
    python benchmarks/student_training.py --steps 4 --hidden 128 --group 20 --device cuda  # on a GPU: ..._cuda.json

Both train the same K members (and TNA twins) on the same Fashion-MNIST-sized batches (784 inputs,
128 samples) with the same loss terms (feature MSE, TNA, spike and logit penalties); "loop" is the
first wave's algorithm (one StudentSNN per member, one forward and loss per member per batch).
Each timing is the median of ``--repeats`` runs of ``--batches`` optimiser steps, alternating the
two, and is extrapolated to one epoch of 50k samples. The machine is shared: compare the ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from sne_deploy.member_stack import MemberStack
from sne_deploy.model import TrainConfig, encode
from sne_deploy.snn import StudentSNN, StudentSpec
from sne_deploy.students import stack_loss

RESULTS = Path(__file__).resolve().parent / "results"
EPOCH_SAMPLES = 50_000


def loop_step(students, twins, opt, s, targets, cfg) -> None:  # type: ignore[no-untyped-def]
    """The replaced algorithm: a Python loop over members, each with its own forward pass."""
    opt.zero_grad()
    loss = s.new_zeros(())
    for st, tw, tg in zip(students, twins, targets):
        parts = []
        for m in (st, tw):
            out, total = m(s)
            z = m.readout(out)
            parts.append(z)
            loss = (
                loss
                + F.mse_loss(z, tg)
                + cfg.spike_reg * (total / (sum(m.sizes[1:]) * m.steps)).mean()
                + cfg.logit_reg * ((out / m.steps) ** 2).mean()
            )
        loss = loss + cfg.tna * F.mse_loss(parts[0], parts[1])
    loss.backward()
    opt.step()


def stack_step(stack, twin, opt, s, target, cfg) -> None:  # type: ignore[no-untyped-def]
    opt.zero_grad()
    loss, z, _ = stack_loss(stack, s, target, cfg)
    loss_t, z_t, _ = stack_loss(twin, s, target, cfg)
    (loss + loss_t + cfg.tna * ((z - z_t) ** 2).mean(dim=(1, 2)).sum()).backward()
    opt.step()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=8)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--group", type=int, default=8, help="outputs per member")
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where both algorithms train")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    cfg = TrainConfig(tna=0.5, spike_reg=0.5, logit_reg=0.1)
    rng = np.random.default_rng(0)
    batches = [
        encode((rng.random((128, 784)) * rng.random((128, 1))).astype(np.float32), a.steps).to(dev)
        for _ in range(a.batches)
    ]
    target = torch.from_numpy(rng.standard_normal((a.members, 128, a.group)).astype(np.float32)).to(dev)
    k, g = a.members, a.group
    spec = StudentSpec(784, (a.hidden,), steps=a.steps)
    students = [StudentSNN(spec, g, seed=j).to(dev) for j in range(k)]
    twins = [StudentSNN(spec, g, ternary=False, seed=50 + j).to(dev) for j in range(k)]
    opt_loop = torch.optim.Adam([p for m in students + twins for p in m.parameters()])
    stack = MemberStack(spec, [g] * k, seed=0).to(dev)
    twin = MemberStack(spec, [g] * k, ternary=False, seed=50).to(dev)
    opt_stack = torch.optim.Adam(list(stack.parameters()) + list(twin.parameters()))

    def timed(step) -> float:  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        for s in batches:
            step(s)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - t) / len(batches)

    runs = {"loop": [], "stack": []}
    loop_fn = lambda s: loop_step(students, twins, opt_loop, s, list(target), cfg)  # noqa: E731
    stack_fn = lambda s: stack_step(stack, twin, opt_stack, s, target, cfg)  # noqa: E731
    loop_fn(batches[0]), stack_fn(batches[0])  # warm-up
    for _ in range(a.repeats):
        runs["loop"].append(timed(loop_fn))
        runs["stack"].append(timed(stack_fn))
    per_batch = {m: statistics.median(v) for m, v in runs.items()}
    epoch = {m: v * EPOCH_SAMPLES / 128 for m, v in per_batch.items()}
    doc = {
        "command": " ".join(["benchmarks/student_training.py", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d"),
        "machine": torch.cuda.get_device_name() if dev.type == "cuda" else "2 cores, no GPU",
        "config": vars(a),
        "seconds_per_batch": runs,
        "median_seconds_per_batch": per_batch,
        "seconds_per_epoch_50k": epoch,
        "speedup": per_batch["loop"] / per_batch["stack"],
    }
    RESULTS.mkdir(exist_ok=True)
    (
        RESULTS / f"student_training_T{a.steps}_h{a.hidden}_K{a.members}{'_cuda' if dev.type == 'cuda' else ''}.json"
    ).write_text(json.dumps(doc, indent=2))
    print(json.dumps({"seconds_per_epoch_50k": epoch, "speedup": doc["speedup"]}, indent=2))


if __name__ == "__main__":
    main()
