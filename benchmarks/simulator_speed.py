"""Simulator benchmark: a 64-128-10 ternary network, T = 16, N = 2000 random inputs, every backend
and mode, plus Lava's raw step rate (no recorders) and a naive Lava loop that rebuilds the
network for every sample (N = 20). Each case runs in its own process so peak memory is its own.

    .venv/bin/python benchmarks/simulator_speed.py       # writes benchmarks/results/simulators.json

(Named so that it does not shadow the ``simulators`` package when run as a script.)

Brian2's first run compiles (build time, reported on its own line); the timed run reuses the build.
Lava's timing varies a lot on this VM (slow spells after heavy compiles), so each Lava case runs three
times and reports the median, and ``lava:fixed`` alternates the backend with the raw run (the same
batched network with Lava's plain LIFReset and nothing recorded) so both see the same conditions.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import write_results

ROOT = Path(__file__).resolve().parent.parent

SIZES, T, N, N_NAIVE = (64, 128, 10), 16, 2000, 20
REPEATS = 3  # Lava runs per case; the median is reported
CASES = [
    "reference:float",
    "reference:fixed",
    "torch:float",
    "torch:fixed",
    "lava:float",
    "lava:fixed",
    "lava-naive:fixed",
    "brian2:float",
    "brian2:fixed",
    "brian2-standalone:float",
    "brian2-standalone:fixed",
]


def _peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024


def run_case(case: str) -> list[dict]:
    from sne_deploy.simulators import run
    from sne_deploy.simulators.random_nets import random_spikes, random_ternary_network

    backend, mode = case.split(":")
    net = random_ternary_network(SIZES, seed=0, du=1.0, dv=0.25, with_bias=True)
    x = random_spikes(N, T, SIZES[0], rate=0.2, seed=0)
    out: dict = {"case": case, "backend": backend, "mode": mode, "samples": N, "steps": T}
    if backend in ("reference", "torch"):  # the two references: no build step, the wall time is the run
        import torch

        from sne_deploy.runtime import run_member

        torch.set_num_threads(2)
        out["run_s"] = run_member(net, x, backend, mode, False).wall_time
    elif backend == "brian2":
        t0 = time.perf_counter()
        run(net, x[:8], "brian2", mode, target="cython")  # compiles (or loads the cache) once
        out["build_s"] = time.perf_counter() - t0
        res = run(net, x, "brian2", mode, target="cython")
        out.update(run_s=res.run_time, setup_s=res.build_time, target=res.details["target"], batch=res.details["batch"])
    elif backend == "brian2-standalone":
        first = run(net, x, "brian2", mode, target="cpp_standalone")  # builds the C++ program
        res = run(net, x, "brian2", mode, target="cpp_standalone")  # same shape: reuses it
        out.update(
            build_s=first.build_time,
            setup_s=res.build_time,
            run_s=res.run_time,
            binary_s=res.details["binary_s"],
            target="cpp_standalone",
            batch=res.details["batch"],
        )
    elif backend == "lava":
        runs, raws = [], []
        for _ in range(REPEATS):
            res = run(net, x, "lava", mode)
            runs.append(
                {
                    "run_s": res.details["lava_run_s"],
                    "build_s": res.details["worker_build_s"],
                    "steps_per_s": res.details["steps_per_s"],
                    "batch": res.details["batch"],
                }
            )
            if mode == "fixed":  # the raw step rate, measured between the backend's runs
                raws.append(time_lava_variant(net, x, mode, "raw"))
        rows = [_lava_row(out, runs)]
        if raws:
            rows.append(_lava_row({**out, "case": "lava-raw:fixed", "backend": "lava-raw"}, raws))
        return rows
    elif backend == "lava-naive":
        out["samples"] = N_NAIVE
        info = time_lava_variant(net, x[:N_NAIVE], mode, "naive")
        out.update(run_s=info["run_s"])
    return [_finish(out)]


def time_lava_variant(net: Any, x: Any, mode: str, variant: str) -> dict:
    """``raw``: the same batched run with Lava's plain LIFReset, nothing recorded (Lava's own step
    rate); ``naive``: rebuild and run the network once per sample. The worker's timing only."""
    from sne_deploy.simulators.lava_backend import lava_inputs, run_job

    return run_job(net, lava_inputs(net, x, mode), mode, variant, None)[0]


def _finish(out: dict) -> dict:
    out["samples_per_s"] = out["samples"] / out["run_s"]
    out["steps_per_s"] = out["samples"] * T / out["run_s"]
    out["peak_mem_mb"] = _peak_mb()
    return out


def _lava_row(out: dict, infos: list[dict]) -> dict:
    """The median of repeated Lava runs (all run times kept)."""
    ordered = sorted(infos, key=lambda i: i["run_s"])
    med = ordered[len(ordered) // 2]
    return _finish(
        {
            **out,
            "run_s": med["run_s"],
            "build_s": med["build_s"],
            "lava_steps_per_s": med["steps_per_s"],
            "batch": med["batch"],
            "repeats_run_s": [i["run_s"] for i in infos],
        }
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--case", default=None, help="run one case and print its JSON")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/simulators.json"))
    a = ap.parse_args()
    if a.case:
        print(json.dumps(run_case(a.case)))
        return
    from tqdm import tqdm

    rows = []
    for case in tqdm(CASES, desc="cases", disable=not sys.stderr.isatty()):
        r = subprocess.run([sys.executable, __file__, "--case", case], capture_output=True, text=True, cwd=ROOT)
        if r.returncode != 0:
            raise SystemExit(
                f"case {case} failed: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.returncode}"
            )
        rows += json.loads(r.stdout.strip().splitlines()[-1])
    by = {r["case"]: r for r in rows}
    lava, naive, raw = by["lava:fixed"], by["lava-naive:fixed"], by["lava-raw:fixed"]
    targets = {
        "lava_vs_naive_speedup": lava["samples_per_s"] / naive["samples_per_s"],
        "lava_vs_raw_step_rate": lava["lava_steps_per_s"] / raw["lava_steps_per_s"],
        "brian2_samples_per_s": max(by[c]["samples_per_s"] for c in by if c.startswith("brian2")),
    }
    doc = {
        "network": list(SIZES),
        "T": T,
        "N": N,
        "N_naive": N_NAIVE,
        "machine": f"{platform.machine()}, 2 cores",
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
        "cases": rows,
        "targets": targets,
    }
    write_results(Path(a.out), doc)
    print("| case | samples/s | steps/s | run s | build s | batch | peak MB |\n|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['case']} | {r['samples_per_s']:.0f} | {r['steps_per_s']:.0f} | {r['run_s']:.2f} | "
            f"{r.get('build_s', 0):.2f} | {r.get('batch', '')} | {r['peak_mem_mb']:.0f} |"
        )
    print(json.dumps(targets, indent=2))


if __name__ == "__main__":
    main()
