"""A budget sweep of every policy with its accuracy-energy plot.

    .venv/bin/python examples/budget_sweep.py                     # trains a small digits model first
    .venv/bin/python examples/budget_sweep.py --bundle model.lava --out sweep.png

Each point is one ``sne_deploy.simulate`` run over the test split on the PyTorch reference in
fixed point (the simulators reproduce it spike for spike); energy is per sample on Loihi's
constants, the teacher's ANN energy drawn as a line.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import sne_deploy as sd
from sne_deploy.data import load_dataset
from sne_deploy.exporters.bundle import load_bundle

BUDGETS = (0.15, 0.3, 0.5, 0.75, 1.0)
POLICIES = ("cascade", "gate", "random", "fixed")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", default=None, help="a bundle (default: train a small digits model here)")
    ap.add_argument("--out", default="budget_sweep.png", help="the plot (PNG)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if a.bundle:
            bundle = load_bundle(Path(a.bundle))
        else:
            model = sd.fit("digits", sd.TrainConfig(epochs=3, teacher_epochs=10), progress=False)
            bundle = sd.export(model, "nir", Path(tmp) / "model.nir")
        ds = load_dataset(bundle.manifest.dataset, None, bundle.manifest.data_seed)
        x, y = ds.test.inputs(), ds.test.y  # the model's inputs already (intensities, or event bins)
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        teacher_uj = None
        for policy in POLICIES:
            runs = [sd.simulate(bundle, x, y, budget=b, policy=policy, normalised=True, compare=False) for b in BUDGETS]
            ax.plot([r.energy_pj["loihi"] / 1e6 for r in runs], [r.accuracy for r in runs], "o-", label=policy)
            teacher_uj = runs[0].teacher_energy_pj["loihi"] / 1e6
            for r in runs:
                print(
                    f"{policy:8s} budget {r.budget:.2f}: accuracy {r.accuracy:.4f}, {r.energy_pj['loihi'] / 1e6:.3f} µJ"
                )
        if teacher_uj:
            ax.axvline(teacher_uj, color="grey", ls="--", label=f"teacher ANN ({teacher_uj:.3f} µJ)")
        ax.set_xlabel("energy per sample on Loihi's constants (µJ)")
        ax.set_ylabel("test accuracy")
        ax.set_title(f"{bundle.manifest.dataset}: accuracy vs energy over budgets {BUDGETS[0]}-{BUDGETS[-1]}")
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        fig.savefig(a.out, dpi=120)
        print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
