"""Interop benchmark: graphs exported by snnTorch, norse, SpikingJelly and sinabs, run through
``sne-deploy run-nir --preset LIB`` on every backend that can run them, compared spike train by
spike train with the library's own simulation.

    .venv/bin/python benchmarks/interop.py                      # writes benchmarks/results/interop.json
    .venv/bin/python benchmarks/interop.py --markdown benchmarks/results/interop.json   # the README table

The networks are those of the CI proof (``tests/library_nets.py``, and ``tests/sinabs_nets.py`` run
in ``.venv-sinabs``: N = 32 samples, T = 50 steps).
Per library network, backend and mode: the fraction of (sample, neuron) spike trains identical to
the library's over all spiking layers, and run-nir's wall time (Brian2's and Lava's include
building the network; Brian2's first run of a new network shape may include Cython compilation).
Fixed point uses ``--quantize``; its agreement is the quantisation's cost. Lava runs only graphs
with Loihi's firing and reset (the others are refused in one line, as listed). One run on a
shared 2-core machine: times are indicative.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sne_deploy.cli import main as cli

from _common import ROOT, benchmark_parser, with_test_nets, write_results

with_test_nets()
from tests import library_nets  # noqa: E402

CASES = [
    ("snntorch_leaky", True, "subtract"),
    ("snntorch_leaky", False, "subtract"),
    ("snntorch_leaky", True, "zero"),
    ("snntorch_leaky", True, "subtract", 2, True),
    ("snntorch_synaptic",),
    ("snntorch_synaptic", 3, True),
    ("snntorch_recurrent", True, "RLeaky"),
    ("snntorch_recurrent", False, "RLeaky"),
    ("snntorch_recurrent", True, "RSynaptic"),
    ("norse_lifbox", True),
    ("norse_lifbox", False),
    ("norse_lifcell", True),
    ("norse_lifcell", False),
    ("norse_iaf",),
    ("norse_li_readout",),
    ("spikingjelly_mlp", True, "LIF"),
    ("spikingjelly_mlp", False, "LIF"),
    ("spikingjelly_mlp", True, "IF"),
    ("spikingjelly_conv",),
]
RUNS = [("reference", "float"), ("brian2", "float"), ("brian2", "fixed"), ("lava", "float"), ("lava", "fixed")]


def run_nir(ex, folder: Path, backend: str, mode: str) -> dict:  # type: ignore[no-untyped-def]
    """One run-nir call, in process, as a user would type it; its JSON and spike trains."""
    np.savez(folder / "in.npz", spikes=ex.inputs)
    out = folder / f"out_{backend}_{mode}.npz"
    args = library_nets.run_nir_args(ex.path, folder / "in.npz", ex.preset, backend, mode, out, *ex.options, "--json")
    if mode == "fixed":
        args.append("--quantize")
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        rc = cli(args)
    if rc != 0:
        return {"refused": stderr.getvalue().strip().splitlines()[-1]}
    summary = json.loads(stdout.getvalue())
    with np.load(out) as f:
        ours = [f[k] for k in sorted(k for k in f.files if k.startswith("train_layer"))][: len(ex.trains)]
    same = [np.all(a == b, axis=1) for a, b in zip(ex.trains, ours)]  # (N, n) per layer
    row = {
        "identical_trains": float(np.concatenate([s.ravel() for s in same]).mean()),
        "spike_mismatches": int(sum((a != b).sum() for a, b in zip(ex.trains, ours))),
        "library_spikes": int(sum(a.sum() for a in ex.trains)),
        "wall_s": summary["wall_time_s"],
    }
    if "quantization" in summary:
        row["quantization_exact"] = all(q["exact"] for q in summary["quantization"]["layers"])
    return row


def _folder(tmp: str, name: str) -> Path:
    (Path(tmp) / name).mkdir()
    return Path(tmp) / name


def sinabs_exports(folder: Path) -> list:
    """sinabs' networks (tests/sinabs_nets.py), made in the sinabs environment (.venv-sinabs:
    sinabs pins nir<=1.0.4); none when that environment is missing (make sinabs-env)."""
    py = ROOT / ".venv-sinabs" / "bin" / "python"
    if not py.exists():
        print("no .venv-sinabs: sinabs rows left out (make sinabs-env)", file=sys.stderr)
        return []
    subprocess.run([str(py), str(ROOT / "tests" / "sinabs_nets.py"), str(folder)], check=True, capture_output=True)
    out = []
    for f in sorted(folder.glob("*.npz")):
        kind, weights = f.stem.split("_")
        with np.load(f) as d:
            out.append(
                library_nets.Export(
                    "sinabs",
                    f"{kind} MLP (SingleSpike), {'integer' if weights == 'int' else 'float'} weights",
                    f.with_suffix(".nir"),
                    d["spikes"],
                    [d["layer0"], d["layer1"]],
                    "sinabs",
                    loihi=False,
                )
            )
    return out


def main() -> None:
    benchmark_parser(__doc__, markdown).parse_args()
    rows = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        exports = [getattr(library_nets, case[0])(_folder(tmp, "_".join(map(str, case))), *case[1:]) for case in CASES]
        for ex in exports + sinabs_exports(_folder(tmp, "sinabs")):
            folder = ex.path.parent
            for backend, mode in RUNS:
                r = {
                    "library": ex.library,
                    "network": ex.network,
                    "preset": ex.preset,
                    "options": " ".join(ex.options),
                    "backend": backend,
                    "mode": mode,
                    **run_nir(ex, folder, backend, mode),
                }
                rows.append(r)
                print(json.dumps(r), flush=True)
    doc = {
        "command": "benchmarks/interop.py",
        "date": time.strftime("%Y-%m-%d"),
        "machine": "2 cores, no GPU",
        "samples": library_nets.N,
        "steps": library_nets.T,
        "rows": rows,
        "total_s": time.perf_counter() - t0,
    }
    print(f"wrote {write_results('interop.json', doc)}")


def _cell(r: dict) -> str:
    if "refused" in r:
        why = r["refused"]
        for key, short in (
            ("non-spiking", "LI readout"),
            ("Loihi's LIF", "firing/reset"),
            ("per-neuron", "per-neuron τ"),
            ("synaptic current", "current bias"),
        ):
            if key in why:
                return f"refused ({short})"
        return "refused"
    q = "" if "quantization_exact" not in r else (" exact" if r["quantization_exact"] else " approx.")
    return f"{100 * r['identical_trains']:.1f} %{q} · {r['wall_s']:.2f} s"


def markdown(doc: dict) -> str:
    """One row per network: identical spike trains (share of (sample, neuron) trains equal to the
    library's) and wall time per backend and mode; fixed point is --quantize's (exact or
    approximate scale)."""
    cols = [f"{b} {m}" for b, m in RUNS]
    lines = ["| library | network | run-nir options | " + " | ".join(cols) + " |", "|---|---|---|" + "---|" * len(cols)]
    by: dict = {}
    for r in doc["rows"]:
        by.setdefault((r["library"], r["network"], f"--preset {r['preset']} {r['options']}".strip()), {})[
            f"{r['backend']} {r['mode']}"
        ] = r
    for (lib, net, opts), cells in by.items():
        lines.append(
            f"| {lib} | {net} | `{opts}` | " + " | ".join(_cell(cells[c]) if c in cells else "–" for c in cols) + " |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
