"""Interop benchmark: graphs exported by snnTorch, norse, SpikingJelly, Rockpool, sinabs and Spyx,
run through ``sne-deploy run-nir --preset LIB`` on every backend, compared spike train by spike
train with the library's own simulation, and the reference's speed against the library's own.

    .venv/bin/python benchmarks/interop.py                      # writes benchmarks/results/interop.json
    .venv/bin/python benchmarks/interop.py --markdown benchmarks/results/interop.json   # the README tables

The networks are those of the CI proof (``tests/library_nets.py``; ``tests/sinabs_nets.py`` run in
``.venv-sinabs`` and ``tests/spyx_nets.py`` in ``.venv-spyx``: N = 32 samples, T = 50 steps, Spyx's
T = 30). Per library network, backend and mode: the fraction of (sample, neuron) spike trains
identical to the library's over all spiking layers, and run-nir's wall time (Brian2's and Lava's
include building the network; Brian2's first run of a new network shape may include Cython
compilation). Fixed point uses ``--quantize``; its agreement is the quantisation's cost (Lava's
fixed point equals the reference's bit for bit: the CI asserts it).

Speed (``speed`` rows): one network per library built again with N = 1,000 samples, its library's
own simulation (the builder's step loop in torch, Rockpool's module call, Spyx's jitted
``spyx.nn.run`` after its compilation, the first call reported beside it) against the reference's
simulation of the same inputs (run-nir's ``wall_time_s``), the median of 3. One run on a shared
2-core machine: times are indicative, ratios within one run.
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
from typing import Optional

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
    ("snntorch_leaky", True, "none"),
    ("rockpool_mlp", True, "LIFNeuronTorch"),
    ("rockpool_mlp", False, "LIFNeuronTorch"),
    ("rockpool_mlp", True, "LIFTorch"),
    ("rockpool_mlp", False, "LIFTorch"),
    ("rockpool_mlp", True, "LIFNeuronTorch", 13, True),
    ("rockpool_mlp", True, "LIFTorch", 13, True),
    ("snntorch_deep",),
]
RUNS = [("reference", "float"), ("brian2", "float"), ("brian2", "fixed"), ("lava", "float"), ("lava", "fixed")]
# one network per library for the speed rows (built again with N = SPEED_N)
SPEED_CASES = [
    ("snntorch_leaky", True, "subtract"),
    ("norse_lifbox", True),
    ("spikingjelly_mlp", True, "LIF"),
    ("spikingjelly_conv",),
    ("rockpool_mlp", True, "LIFTorch"),
]
SPYX_SPEED = ("lif_mlp", "cubalif_mlp", "if_conv")
SPEED_N = 1000


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
        kind, weights, spikes = f.stem.split("_")
        with np.load(f) as d:
            out.append(
                library_nets.Export(
                    "sinabs",
                    f"{kind} MLP ({'MultiSpike' if spikes == 'multi' else 'SingleSpike'}), "
                    f"{'integer' if weights == 'int' else 'float'} weights",
                    f.with_suffix(".nir"),
                    d["spikes"],
                    [d["layer0"], d["layer1"]],
                    "sinabs",
                    options=() if spikes == "multi" else ("--spikes", "single"),
                    loihi=False,
                )
            )
    return out


SPYX_NAMES = {
    "if_mlp": "IF MLP",
    "lif_mlp": "LIF MLP (beta 0.75)",
    "cubalif_mlp": "CuBaLIF MLP",
    "psu_lif_mlp": "PSU_LIF (reset-free) then LIF",
    "lif_mlp_bias": "LIF MLP with biases",
    "lif_mlp_per_neuron": "LIF MLP, per-neuron learnable betas",
    "rif_mlp": "RIF (recurrent) then IF",
    "rlif_mlp": "RLIF (recurrent) then LIF, with biases",
    "if_conv": "conv net (Conv, SumPool, Flatten, Linear), channels-last",
}


def spyx_exports(folder: Path, samples: int = 32) -> tuple[list, dict]:
    """Spyx's networks (tests/spyx_nets.py) made in .venv-spyx, and its timings.json; none when
    that environment is missing (make spyx-env)."""
    py = ROOT / ".venv-spyx" / "bin" / "python"
    if not py.exists():
        print("no .venv-spyx: Spyx rows left out (make spyx-env)", file=sys.stderr)
        return [], {}
    script = [str(py), str(ROOT / "tests" / "spyx_nets.py"), str(folder), "--samples", str(samples)]
    subprocess.run(script, check=True, capture_output=True)
    out = []
    for name, label in SPYX_NAMES.items():
        with np.load(folder / f"{name}.npz") as d:
            trains = [d[k] for k in sorted(k for k in d.files if k.startswith("layer"))]
            out.append(library_nets.Export("spyx", label, folder / f"{name}.nir", d["spikes"], trains, "spyx"))
    return out, json.loads((folder / "timings.json").read_text())


def _reference_seconds(ex, folder: Path, repeats: int = 3) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """The median of ``repeats`` reference runs of ``ex`` (run-nir's wall_time_s), and the share
    of spike trains identical to the library's at this N."""
    rows = [run_nir(ex, folder, "reference", "float") for _ in range(repeats)]
    return float(np.median([r["wall_s"] for r in rows])), rows[0]["identical_trains"]


def speed_rows(tmp: str) -> list[dict]:
    """The library's own simulation against the reference, N = SPEED_N (module docstring)."""
    rows = []
    n_before = library_nets.N
    library_nets.N = SPEED_N
    try:
        for case in SPEED_CASES:
            folder = _folder(tmp, "speed_" + "_".join(map(str, case)))
            lib_s = []
            for _ in range(3):
                ex = getattr(library_nets, str(case[0]))(folder, *case[1:])
                lib_s.append(library_nets.SIM_SECONDS[-1])
            rows.append(_speed_row(ex, float(np.median(lib_s)), None, _reference_seconds(ex, folder)))
    finally:
        library_nets.N = n_before
    exports, timings = spyx_exports(_folder(tmp, "speed_spyx"), SPEED_N)
    for ex in exports:
        name = ex.path.stem
        if name in SPYX_SPEED:
            t = timings["nets"][name]
            rows.append(_speed_row(ex, t["run_s"], t["first_call_s"], _reference_seconds(ex, ex.path.parent)))
    return rows


def _speed_row(ex, library_s: float, first_call_s: Optional[float], reference: tuple[float, float]) -> dict:  # type: ignore[no-untyped-def]
    n, steps = ex.inputs.shape[:2]
    reference_s, identical = reference
    row = {"library": ex.library, "network": ex.network, "samples": int(n), "steps": int(steps)}
    row.update(library_s=library_s, reference_s=reference_s, reference_speedup=library_s / reference_s)
    row["identical_trains"] = identical
    if first_call_s is not None:
        row["library_first_call_s"] = first_call_s
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    benchmark_parser(__doc__, markdown).parse_args()
    rows = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        exports = [getattr(library_nets, case[0])(_folder(tmp, "_".join(map(str, case))), *case[1:]) for case in CASES]
        exports += sinabs_exports(_folder(tmp, "sinabs")) + spyx_exports(_folder(tmp, "spyx"))[0]
        for ex in exports:
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
        speed = speed_rows(tmp)
    doc = {
        "command": "benchmarks/interop.py",
        "date": time.strftime("%Y-%m-%d"),
        "machine": "2 cores, no GPU",
        "samples": library_nets.N,
        "steps": library_nets.T,
        "rows": rows,
        "speed": speed,
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
    if doc.get("speed"):
        lines += [
            "",
            "| library | network | samples x steps | library's own simulation s | reference s | reference speed-up | identical trains |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in doc["speed"]:
            first = f" (first call {r['library_first_call_s']:.2f})" if "library_first_call_s" in r else ""
            lines.append(
                f"| {r['library']} | {r['network']} | {r['samples']} x {r['steps']} | {r['library_s']:.3f}{first} | "
                f"{r['reference_s']:.3f} | {r['reference_speedup']:.2f}x | {100 * r['identical_trains']:.3f} % |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
