"""Fashion-MNIST: energy-aware input sparsity, chosen on the validation split: a penalty on each input spike x its pixel's fan-out instead of one uniform threshold.

    .venv/bin/python benchmarks/fashion_input_sparsity.py            # writes benchmarks/results/fashion_input_sparsity.{json,png}
    .venv/bin/python benchmarks/fashion_input_sparsity.py --plots benchmarks/results/fashion_input_sparsity.json

On Loihi's constants a member's energy is mostly its input layer's synaptic events: each input
spike times its pixel's non-zero fan-out. The main model (``runs/fashion/model.pt``, from
``benchmarks/fashion_mnist.py`` or ``benchmarks/fashion_baselines.py``) makes that layer sparse
with one uniform ternary threshold (``input_delta`` 1.5 x mean|w|), the same for a pixel that
spikes at every step as for one that never does. ``TrainConfig.input_event_cost`` instead
penalises the events themselves (Sorbaro et al. 2020, Frontiers in Neuroscience: a pixel's cost
is its rate x its fan-out; :func:`sne_deploy.students.input_events`), so training drops the busy
pixels' synapses first. Each variant is the main model's configuration with its students (and
head and gate) retrained on the main model's teacher, seed 0; exported and run on torch fixed
point: the cascade at budget 0.3 and all members, on the validation split (where the choice is
made) and the test split (what it gives). Variants are kept under ``runs/fashion_input_sparsity/``
so a second run only evaluates. One run, 2 cores.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sne_deploy import checkpoint
from sne_deploy.data import Dataset, load_dataset
from sne_deploy.deploy import bundle_parts
from sne_deploy.exporters.bundle import load_bundle, write_bundle
from sne_deploy.model import TrainedModel, encode
from sne_deploy.quantization import ternarize
from sne_deploy.runtime import simulate
from sne_deploy.train import train

from _common import PROGRESS, ROOT, benchmark_parser, write_results

VARIANTS = (
    (1.5, 0.0),
    (1.5, 10.0),
    (0.7, 40.0),
)  # (input_delta, input_event_cost); the first is the main model
POLICIES = (("cascade", 0.3), ("all", 1.0))
KEYS = ("accuracy", "awake_fraction", "energy_pj", "input_synaptic_events_per_sample", "synaptic_events_per_sample")


def name(delta: float, cost: float) -> str:
    return f"delta{delta:g}_cost{cost:g}"


def variant(main: TrainedModel, ds: Dataset, delta: float, cost: float, store: Path) -> TrainedModel:
    """The main model's settings with ``input_delta`` and ``input_event_cost`` changed, trained on
    its teacher (or read back from ``store``)."""
    cfg = main.config
    if (delta, cost) == (cfg.input_delta, cfg.input_event_cost):
        return main
    path = store / f"{name(delta, cost)}.pt"
    if path.is_file():
        return checkpoint.load(path)
    t = time.perf_counter()
    model = train(
        replace(cfg, input_delta=delta, input_event_cost=cost),
        progress=PROGRESS,
        teacher=(main.teacher, main.teacher_kind),
        data=ds,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.save(model, path)
    print(f"trained {name(delta, cost)} in {time.perf_counter() - t:.0f} s", flush=True)
    return model


def fan_out_by_pixel(model: TrainedModel) -> np.ndarray:
    """(pixels,) non-zero input synapses per pixel, summed over the members."""
    return sum((ternarize(st.weights[0], delta=st.delta(0))[0] != 0).sum(dim=0).numpy() for st in model.students)  # type: ignore[return-value]


def evaluate(model: TrainedModel, ds: Dataset, rate: np.ndarray) -> dict[str, Any]:
    fan = fan_out_by_pixel(model)
    row: dict[str, Any] = {
        "input_synapses": int(fan.sum()),
        "input_events_per_sample_all_members": float(fan @ rate),
        "fan_out_by_pixel": fan.tolist(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        path, _ = write_bundle(bundle_parts(model, ds), Path(tmp) / "m.nir", "nir")
        bundle = load_bundle(path)
        for split in ("val", "test"):
            s = ds.split(split)
            row[split] = {
                p: {
                    k: v
                    for k, v in simulate(bundle, s.inputs(), s.y, b, p, "torch", "fixed", compare=False)
                    .to_dict()
                    .items()
                    if k in KEYS
                }
                for p, b in POLICIES
            }
    return row


def plot(doc: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.6))
    markers = {"cascade": "o", "all": "s"}
    for i, r in enumerate(doc["variants"]):
        color = f"C{i}"
        label = f"δ {r['input_delta']:g}, cost {r['input_event_cost']:g}" + (" (main model)" if i == 0 else "")
        for p, _ in POLICIES:
            t = r["test"][p]
            ax.scatter(
                t["energy_pj"]["loihi"] / 1e6,
                100 * t["accuracy"],
                color=color,
                marker=markers[p],
                s=60,
                label=f"{label}: {'cascade at 0.3' if p == 'cascade' else 'all 8 members'}",
            )
    ax.set_xlabel("energy per image, Loihi constants (µJ)")
    ax.set_ylabel(f"test accuracy (%, {doc['test_samples']} images, fixed point)")
    ax.set_title("Input-event penalty: accuracy against energy")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    rate = np.asarray(doc["pixel_rate"])
    order = np.argsort(rate)
    bins = np.array_split(order, 14)
    centres = [rate[b].mean() for b in bins]
    for i, r in enumerate(doc["variants"]):
        fan = np.asarray(r["fan_out_by_pixel"], dtype=float) / doc["members"]
        bx.plot(
            centres,
            [fan[b].mean() for b in bins],
            "o-",
            color=f"C{i}",
            label=f"δ {r['input_delta']:g}, cost {r['input_event_cost']:g}",
        )
    bx.set_xlabel(f"pixel's input spikes per image (training images, T = {doc['steps']})")
    bx.set_ylabel("kept input synapses per pixel and member")
    bx.set_title("Where the input layer keeps its synapses (pixels in 14 rate bins)")
    bx.legend(fontsize=8)
    bx.grid(alpha=0.3)
    fig.suptitle(f"Fashion-MNIST, K = {doc['members']}, seed 0, torch fixed point (one run, 2 cores)")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def markdown(doc: dict) -> str:
    lines = [
        "| input δ | event cost | input synapses | cascade 0.3 val | cascade 0.3 test | µJ Loihi | µJ memory | all 8 test | µJ Loihi |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["variants"]:
        c, f = r["test"]["cascade"], r["test"]["all"]
        lines.append(
            f"| {r['input_delta']:g} | {r['input_event_cost']:g} | {r['input_synapses']} | {r['val']['cascade']['accuracy']:.4f} | "
            f"{c['accuracy']:.4f} | {c['energy_pj']['loihi'] / 1e6:.3f} | {c['energy_pj']['memory'] / 1e6:.3f} | "
            f"{f['accuracy']:.4f} | {f['energy_pj']['loihi'] / 1e6:.3f} |"
        )
    lines += ["", f"Chosen on validation: {doc['chosen']['why']}"]
    return "\n".join(lines)


def main() -> None:
    ap = benchmark_parser(__doc__, markdown)
    ap.add_argument("--checkpoint", default=str(ROOT / "runs" / "fashion" / "model.pt"))
    ap.add_argument(
        "--store", default=str(ROOT / "runs" / "fashion_input_sparsity"), help="where the variants are kept"
    )
    ap.add_argument("--tolerance-pt", type=float, default=0.3, help="validation accuracy a cheaper variant may lose")
    ap.add_argument("--plots", default=None, metavar="JSON", help="redraw the PNG from a results file and exit")
    ap.add_argument(
        "--quick", action="store_true", help="smoke test: 2000 training images, 1 epoch, 500 val/test images"
    )
    a = ap.parse_args()
    if a.plots:
        path = Path(a.plots)
        plot(json.loads(path.read_text()), path.with_suffix(".png"))
        print(f"wrote {path.with_suffix('.png')}")
        return
    suffix = "_quick" if a.quick else ""
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    main_model = checkpoint.load(Path(a.checkpoint))
    cfg = main_model.config
    ds = load_dataset("fashion-mnist", None, cfg.seed)
    store = Path(a.store + suffix)
    if a.quick:
        main_model = replace(main_model, config=replace(cfg, epochs=1, head_epochs=1, gate_epochs=1))
        ds = Dataset(
            ds.name, ds.train.take(slice(2000)), ds.val.take(slice(500)), ds.test.take(slice(500)), ds.n_classes
        )
    rate = (
        encode(ds.train.inputs(), cfg.steps, cfg.encoding).sum(dim=1).mean(dim=0).numpy()
    )  # spikes per pixel and image
    rows = []
    for delta, cost in VARIANTS:
        model = variant(main_model, ds, delta, cost, store)
        row = {"input_delta": delta, "input_event_cost": cost, **evaluate(model, ds, rate)}
        rows.append(row)
        print(
            json.dumps(
                {
                    "variant": name(delta, cost),
                    "val_cascade": row["val"]["cascade"]["accuracy"],
                    "val_cascade_loihi_uj": row["val"]["cascade"]["energy_pj"]["loihi"] / 1e6,
                }
            ),
            flush=True,
        )
    base = rows[0]["val"]["cascade"]
    ok = [r for r in rows if r["val"]["cascade"]["accuracy"] >= base["accuracy"] - a.tolerance_pt / 100]
    chosen = min(ok, key=lambda r: r["val"]["cascade"]["energy_pj"]["loihi"])
    cv, ct, bt = chosen["val"]["cascade"], chosen["test"]["cascade"], rows[0]["test"]["cascade"]
    doc = {
        "command": "benchmarks/fashion_input_sparsity.py" + (" --quick" if a.quick else ""),
        "date": time.strftime("%Y-%m-%d"),
        "machine": "2 cores, no GPU (one run)",
        "checkpoint": str(Path(a.checkpoint).relative_to(ROOT))
        if Path(a.checkpoint).is_relative_to(ROOT)
        else a.checkpoint,
        "members": cfg.members,
        "steps": cfg.steps,
        "test_samples": len(ds.test.y),
        "pixel_rate": rate.tolist(),
        "variants": rows,
        "chosen": {
            "input_delta": chosen["input_delta"],
            "input_event_cost": chosen["input_event_cost"],
            "why": f"the cheapest cascade at 0.3 on Loihi's constants whose validation accuracy is within {a.tolerance_pt:g} pt "
            f"of the main model's: δ {chosen['input_delta']:g}, cost {chosen['input_event_cost']:g} "
            f"(val {cv['accuracy']:.4f} at {cv['energy_pj']['loihi'] / 1e6:.3f} µJ against {base['accuracy']:.4f} at "
            f"{base['energy_pj']['loihi'] / 1e6:.3f} µJ; on test {ct['accuracy']:.4f} at {ct['energy_pj']['loihi'] / 1e6:.3f} µJ "
            f"against {bt['accuracy']:.4f} at {bt['energy_pj']['loihi'] / 1e6:.3f} µJ)",
        },
        "timings": {"total_s": time.perf_counter() - t0},
    }
    out = write_results(f"fashion_input_sparsity{suffix}.json", doc)
    plot(doc, out.with_suffix(".png"))
    print(markdown(doc))
    print(f"wrote {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
