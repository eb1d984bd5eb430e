"""Fashion-MNIST: a cheaper gate, chosen on the validation split: the gate's hidden width and an average pooling of the image before it.

    .venv/bin/python benchmarks/fashion_gate.py     # writes benchmarks/results/fashion_gate.json

The gate of the main model (``runs/fashion/model.pt``, from ``benchmarks/fashion_mnist.py`` or
``benchmarks/fashion_baselines.py``) is a 784-64-8 MLP on the host: 50.7k fp32 MACs, 0.23 µJ on
Loihi's table and about 1.4 µJ under the memory model, most of the cascade's energy there. Each
variant here is the same model with only its gate retrained (the same targets, epochs and seed),
calibrated on the validation split as export does, and run on torch fixed point: the cascade and
the gate policy at budget 0.3 on the validation split (where the choice is made) and on the test
split (what it gives). One run, 2 cores.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from sne_deploy import checkpoint
from sne_deploy.data import Dataset, load_dataset
from sne_deploy.deploy import bundle_parts
from sne_deploy.ensemble import Gate
from sne_deploy.exporters.bundle import load_bundle, write_bundle
from sne_deploy.head_gate import gate_targets, train_gate
from sne_deploy.model import TrainedModel, member_counts
from sne_deploy.runtime import simulate

from _common import RESULTS, ROOT, benchmark_parser

VARIANTS = ((1, 64), (1, 16), (2, 64), (2, 16), (4, 64), (4, 16), (7, 16))  # (pool, hidden)
MODELS = ("loihi", "45nm-ops", "memory")


def markdown(doc: dict) -> str:
    lines = [
        "| gate (pool, hidden) | gate MACs | cascade 0.3 val | cascade 0.3 test | gate 0.3 test | cascade µJ Loihi | cascade µJ memory |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in doc["variants"]:
        c = r["test"]["cascade"]
        lines.append(
            f"| {r['pool']}x{r['pool']}, {r['hidden']} | {r['gate_macs']} | {r['val']['cascade']['accuracy']:.4f} | "
            f"{c['accuracy']:.4f} | {r['test']['gate']['accuracy']:.4f} | {c['energy_pj']['loihi'] / 1e6:.3f} | "
            f"{c['energy_pj']['memory'] / 1e6:.3f} |"
        )
    lines += ["", f"Chosen on validation: {doc['chosen']['why']}"]
    return "\n".join(lines)


def train_targets(model: TrainedModel, ds: Dataset) -> np.ndarray:
    """The gate's training targets of ``model`` (what each member adds, per training image)."""
    counts, _ = member_counts(model.networks, ds.train.inputs(), model.config.steps, "float", model.config.encoding)
    return gate_targets(model.head, counts, ds.train.y)


def with_gate(
    model: TrainedModel, ds: Dataset, pool: int, hidden: int, targets: Optional[np.ndarray] = None
) -> TrainedModel:
    """``model`` with only its gate retrained: an average ``pool`` of the image, then ``hidden``
    units (the same targets, epochs and seed as its own gate)."""
    cfg = model.config
    targets = train_targets(model, ds) if targets is None else targets
    torch.manual_seed(cfg.seed)
    gate = Gate(int(np.prod(model.input_shape)), cfg.members, hidden, model.input_shape, pool)
    vcfg = replace(cfg, gate_pool=pool, gate_hidden=hidden)
    train_gate(gate, ds.train.flat(), targets, vcfg, progress=False)
    return replace(model, config=vcfg, gate=gate)


def main() -> None:
    ap = benchmark_parser(__doc__, markdown)
    ap.add_argument("--checkpoint", default=str(ROOT / "runs" / "fashion" / "model.pt"))
    ap.add_argument("--tolerance-pt", type=float, default=0.3, help="validation accuracy a cheaper gate may lose")
    ap.add_argument("--quick", action="store_true", help="smoke test: 2000 training images, 2 gate epochs")
    a = ap.parse_args()
    suffix = "_quick" if a.quick else ""
    torch.set_num_threads(2)
    t0 = time.perf_counter()
    model = checkpoint.load(Path(a.checkpoint))
    cfg = model.config
    ds = load_dataset("fashion-mnist", None, cfg.seed)
    if a.quick:
        cfg = replace(cfg, gate_epochs=2)
        ds = Dataset(
            ds.name, ds.train.take(slice(2000)), ds.val.take(slice(500)), ds.test.take(slice(500)), ds.n_classes
        )
    targets = train_targets(model, ds)
    rows = []
    for pool, hidden in VARIANTS:
        variant = with_gate(model, ds, pool, hidden, targets)
        row: dict = {"pool": pool, "hidden": hidden, "gate_macs": variant.gate.macs()}
        with tempfile.TemporaryDirectory() as tmp:
            path, _ = write_bundle(bundle_parts(variant, ds), Path(tmp) / "m.nir", "nir")
            bundle = load_bundle(path)
            for split in ("val", "test"):
                s = ds.split(split)
                row[split] = {
                    p: {
                        k: v
                        for k, v in simulate(bundle, s.inputs(), s.y, 0.3, p, "torch", "fixed", compare=False)
                        .to_dict()
                        .items()
                        if k in ("accuracy", "awake_fraction", "mean_rounds", "energy_pj", "energy_breakdown_pj")
                    }
                    for p in ("cascade", "gate")
                }
        rows.append(row)
        print(
            json.dumps(
                {k: row[k] for k in ("pool", "hidden", "gate_macs")}
                | {"val_cascade": row["val"]["cascade"]["accuracy"]}
            ),
            flush=True,
        )
    base = rows[0]["val"]["cascade"]["accuracy"]
    ok = [r for r in rows if r["val"]["cascade"]["accuracy"] >= base - a.tolerance_pt / 100]
    chosen = min(ok, key=lambda r: r["val"]["cascade"]["energy_pj"]["memory"])
    doc = {
        "command": "benchmarks/fashion_gate.py",
        "date": time.strftime("%Y-%m-%d"),
        "machine": "2 cores, no GPU (one run)",
        "checkpoint": str(Path(a.checkpoint).relative_to(ROOT))
        if Path(a.checkpoint).is_relative_to(ROOT)
        else a.checkpoint,
        "variants": rows,
        "chosen": {
            "pool": chosen["pool"],
            "hidden": chosen["hidden"],
            "why": f"the cheapest gate under the memory model whose cascade at 0.3 keeps the default's validation accuracy "
            f"within {a.tolerance_pt:g} pt: pool {chosen['pool']}, hidden {chosen['hidden']} ({chosen['gate_macs']} MACs; "
            f"val {chosen['val']['cascade']['accuracy']:.4f} against {base:.4f})",
        },
        "timings": {"total_s": time.perf_counter() - t0},
    }
    out = RESULTS / f"fashion_gate{suffix}.json"
    out.write_text(json.dumps(doc, indent=2))
    print(markdown(doc))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
