"""Conv-net simulator speed, before and after a change: a typical published event-camera SNN
(:func:`sne_deploy.simulators.random_nets.random_conv_graph`: 2x34x34 input, three strided convolutions and two
dense layers, about 1 M synapses), T = 300, inputs at 5 % event rate, on every backend.

    .venv/bin/python benchmarks/conv_speed.py --before 0094f00    # ~10 min; writes benchmarks/results/conv_speed.json

"before" is the simulators package of that commit (checked out into a temporary git worktree),
"after" the working tree; both read the same NIR file, and every case runs in its own process.
Each timing is the wall time of ``sne_deploy.simulators.run`` (Lava: the worker's start and the network's
build included; Brian2: after a warm-up run that compiles or loads the cached code), the median
of ``--repeats`` runs with before and after alternating (Lava: one run each, its "before" takes
minutes). The machine is shared and noisy: compare the ratios of one run. Every run's spike
counts (every layer, the first 16 samples) must equal the "after" reference's, before and after
alike (spike-exact across versions and backends).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import write_results

ROOT = Path(__file__).resolve().parent.parent
T, RATE = 300, 0.05
CASES = {  # case -> samples
    "reference:float": 32,
    "reference:fixed": 32,
    "brian2:float": 32,
    "brian2:fixed": 32,
    "lava:fixed": 32,
    "lava:float": 32,
}


def run_case(case: str, graph: str) -> dict:
    """One case with whichever ``simulators`` package is first on the path."""
    import numpy as np

    from sne_deploy import simulators
    from sne_deploy.simulators import from_nir, run
    from sne_deploy.simulators.fixed_point import quantize_network
    from sne_deploy.simulators.random_nets import random_spikes

    backend, mode = case.split(":")
    net = from_nir(graph)
    if mode == "fixed":
        net = quantize_network(net)[0]
    x = random_spikes(CASES[case], T, net.n_in, rate=RATE, seed=0)
    if backend == "brian2":
        run(net, x[:2], backend, mode, target="cython")  # compiles, or loads the cache
    t0 = time.perf_counter()
    res = run(net, x, backend, mode, **({"target": "cython"} if backend == "brian2" else {}))
    wall = time.perf_counter() - t0
    counts = np.concatenate([np.asarray(c[:16], dtype=np.int64).ravel() for c in res.layer_counts])  # every layer's
    return {
        "case": case,
        "samples": len(x),
        "wall_s": wall,
        "samples_per_s": len(x) / wall,
        "batch": res.details.get("batch"),
        "sparse_layers": res.details.get("sparse_layers"),
        "counts_sha": hashlib.sha256(counts.tobytes()).hexdigest()[:16],
        "spikes_per_sample": float(sum(int(c.sum()) for c in res.layer_counts) / len(x)),
        "package": str(Path(simulators.__file__).parent),
    }


def _shim(root: Path, where: Path) -> Path:
    """A folder whose ``sne_deploy.simulators`` is ``root``'s simulators folder (and, for commits
    from before the one namespace, whose top-level ``simulators`` is too), for PYTHONPATH."""
    pkg = where / "sne_deploy"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("")
    for link in (pkg / "simulators", where / "simulators"):
        if not link.exists():
            link.symlink_to(root / "simulators", target_is_directory=True)
    return where


def _run_in(root: Path, case: str, graph: str) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": str(_shim(root, Path(graph).parent / f"py-{abs(hash(str(root)))}")),
        "SNE_LAVA_ENV": os.environ.get("SNE_LAVA_ENV", str(ROOT / ".venv-lava")),
    }
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/conv_speed.py"), "--case", case, "--graph", graph],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
    )
    if r.returncode != 0:
        raise SystemExit(f"case {case} in {root} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", default=None, help="commit whose simulators are the baseline")
    ap.add_argument("--case", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--graph", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--only", default=None, help="comma-separated cases (default: all)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per case and version (Lava: 1)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/conv_speed.json"))
    a = ap.parse_args()
    if a.case:
        print(json.dumps(run_case(a.case, a.graph)))
        return
    import nir
    from tqdm import tqdm

    from sne_deploy.simulators import from_nir
    from sne_deploy.simulators.random_nets import random_conv_graph

    cases = a.only.split(",") if a.only else list(CASES)
    with tempfile.TemporaryDirectory() as tmp:
        graph = str(Path(tmp) / "conv.nir")
        nir.write(graph, random_conv_graph())
        net = from_nir(graph)
        shape = {
            "layers": [[l.n_in, l.n_out] for l in net.layers],
            "synapses": int(sum(int((l.weight != 0).sum()) for l in net.layers)),
            "dense_entries": int(sum(l.weight.size for l in net.layers)),
        }
        roots = {"after": ROOT}
        if a.before:
            roots["before"] = Path(tmp) / "before"
            subprocess.run(
                ["git", "worktree", "add", "--detach", "-q", str(roots["before"]), a.before], cwd=ROOT, check=True
            )
        try:
            rows = []
            for case in tqdm(cases, desc="cases", disable=not sys.stderr.isatty()):
                runs: dict = {label: [] for label in roots}
                for _ in range(1 if case.startswith("lava") else a.repeats):
                    for label, root in roots.items():
                        runs[label].append(_run_in(root, case, graph))
                        print(json.dumps({"version": label, **runs[label][-1]}), file=sys.stderr, flush=True)
                for label, rs in runs.items():
                    med = sorted(rs, key=lambda r: r["wall_s"])[len(rs) // 2]
                    rows.append({"version": label, **med, "repeats_wall_s": [r["wall_s"] for r in rs]})
        finally:
            if a.before:
                subprocess.run(["git", "worktree", "remove", "--force", str(roots["before"])], cwd=ROOT, check=False)
    ref = {
        r["case"].split(":")[1]: r["counts_sha"]
        for r in rows
        if r["version"] == "after" and r["case"].startswith("reference")
    }
    exact = all(r["counts_sha"] == ref[r["case"].split(":")[1]] for r in rows)
    by = {(r["version"], r["case"]): r for r in rows}
    speedups = {
        c: by[("after", c)]["samples_per_s"] / by[("before", c)]["samples_per_s"] for c in cases if ("before", c) in by
    }
    doc = {
        "command": "benchmarks/conv_speed.py" + (f" --before {a.before}" if a.before else ""),
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "network": shape,
        "T": T,
        "input_rate": RATE,
        "rows": rows,
        "speedup": speedups,
        "all_counts_identical_to_the_reference": exact,
    }
    write_results(Path(a.out), doc)
    print("| case | samples | before samples/s | after samples/s | speed-up |\n|---|---|---|---|---|")
    for c in cases:
        b, f = by.get(("before", c)), by[("after", c)]
        print(
            f"| {c} | {f['samples']} | {b['samples_per_s']:.2f} | {f['samples_per_s']:.2f} | {speedups[c]:.1f}x |"
            if b
            else f"| {c} | {f['samples']} | - | {f['samples_per_s']:.2f} | - |"
        )
    print(f"spike counts identical everywhere: {exact}")
    if not exact:
        raise SystemExit("a run's spike counts differ from the reference's")


if __name__ == "__main__":
    main()
