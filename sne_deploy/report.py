"""Plain-text tables of measured numbers, for the terminal, and the plots of a report."""
from __future__ import annotations

from simulators.result import MODES

from .records import SimulationReport, TrainSummary


def format_train_summary(s: TrainSummary) -> str:
    lines = [f"dataset {s.dataset}  test samples {s.test_samples}  T={s.steps}  encoding {s.encoding}",
             f"{'model':28s} {'accuracy':>9s} {'spikes/sample':>14s}",
             f"{'teacher (ANN)':28s} {s.teacher_accuracy:9.4f} {'-':>14s}   {s.teacher_macs} MACs"]
    for mode in MODES:
        lines.append(f"{'ensemble, all awake, ' + mode:28s} {s.ensemble_accuracy[mode]:9.4f} {s.spikes_per_sample[mode]:14.1f}")
    for k, m in enumerate(s.members):
        lines.append(f"  member {k}: {m.dims} dims  R2 {m.feature_r2:.3f}  spikes/sample {m.spikes_per_sample:.1f}"
                     f"  float/fixed count agreement {m.float_fixed_count_agreement:.4f}")
    lines.append(f"gate: {s.gate_macs} MACs per input")
    t = s.timings
    if t:
        lines.append("time: " + ", ".join(f"{k[:-2]} {v:.1f}s" for k, v in t.items()))
    return "\n".join(lines)


def _uj(pj: float) -> str:
    return f"{pj / 1e6:.3f} µJ"


def _ratio(teacher_over_sne: float) -> str:
    """Say which way the ratio goes, in words."""
    if teacher_over_sne >= 1:
        return f"SNE uses {teacher_over_sne:.1f}x less energy than the teacher"
    return f"SNE uses {1 / teacher_over_sne:.1f}x the teacher's energy"


def format_simulation(r: SimulationReport) -> str:
    acc = "-" if r.accuracy is None else f"{r.accuracy:.4f}"
    e, te, ratio = r.energy_pj, r.teacher_energy_pj, r.teacher_to_sne_energy_ratio
    c = r.counts
    lines = [
        f"bundle {r.bundle}",
        f"backend {r.backend} ({r.mode})  policy {r.policy}  budget {r.budget}  samples {r.samples}",
        f"  accuracy                    {acc}",
        f"  awake fraction              {r.awake_fraction:.4f}   member wakes {r.member_wakes}",
        f"  spikes / sample             {c.spikes:.1f}",
        f"  synaptic events / sample    {c.synaptic_events:.1f}",
        f"  neuron updates / sample     {c.neuron_updates:.1f}",
        f"  gate cost                   {c.gate_macs:.0f} MACs / sample",
        f"  energy / sample  Loihi      {_uj(e['loihi'])}   (teacher {_uj(te['loihi'])}; {_ratio(ratio['loihi'])})",
        f"  energy / sample  45 nm      {_uj(e['45nm'])}   (teacher {_uj(te['45nm'])}; {_ratio(ratio['45nm'])})",
        f"  wall time                   {r.wall_time_s:.2f} s (backend {r.backend_time_s:.2f} s)",
    ]
    a = r.agreement
    if a:
        ta = "-" if a.torch_accuracy is None else f"{a.torch_accuracy:.4f}"
        lines.append(f"  vs PyTorch ({r.mode})         prediction agreement {a.prediction_agreement:.4f}, "
                     f"spike mismatches {a.spike_mismatches}, torch accuracy {ta}")
    return "\n".join(lines)


def _pyplot():  # type: ignore[no-untyped-def]
    """matplotlib's pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out_png: str) -> None:  # type: ignore[no-untyped-def]
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    _pyplot().close(fig)


def plot_sweep(rows: list[dict], teacher: dict, out_png: str, constants: str = "loihi") -> None:
    """Accuracy against energy per policy; ``rows`` in the JSON form (``SimulationReport.to_dict``)."""
    fig, ax = _pyplot().subplots(figsize=(6, 4))
    for policy, marker in (("gate", "o"), ("random", "s"), ("fixed", "^")):
        pts = sorted((r["energy_pj"][constants] / 1e3, r["accuracy"]) for r in rows if r["policy"] == policy)
        if pts:
            ax.plot(*zip(*pts), marker=marker, label=policy)
    ax.scatter([teacher["energy_pj"][constants] / 1e3], [teacher["accuracy"]], marker="*", s=150, c="k", label="teacher (ANN)")
    ax.set_xscale("log")
    ax.set_xlabel(f"estimated energy per sample [nJ] ({constants} constants)")
    ax.set_ylabel("test accuracy")
    ax.grid(True, alpha=0.3)
    ax.legend()
    _save(fig, out_png)


def plot_awake(awake_fraction: list[float], out_png: str, title: str) -> None:
    fig, ax = _pyplot().subplots(figsize=(5, 3))
    ax.bar(range(len(awake_fraction)), awake_fraction)
    ax.set_xlabel("member")
    ax.set_ylabel("fraction of inputs awake")
    ax.set_title(title)
    _save(fig, out_png)


def plot_raster(raster: dict, out_png: str, title: str) -> None:
    members = sorted(raster)
    fig, axes = _pyplot().subplots(len(members), 1, figsize=(6, 1.8 * len(members)), squeeze=False)
    for ax, j in zip(axes[:, 0], members):
        base = 0
        for li, train in enumerate(raster[j]):
            t, i = train.nonzero()
            ax.scatter(t, i + base, s=4, marker="|")
            base += train.shape[1]
            ax.axhline(base - 0.5, color="grey", lw=0.5)
        ax.set_ylabel(f"member {j}\nneuron")
    axes[-1, 0].set_xlabel("time step")
    axes[0, 0].set_title(title)
    _save(fig, out_png)


def plot_noise(rows: list[dict], out_png: str) -> None:
    """Accuracy of teacher and SNE against input noise; rows hold sigma, teacher and sne_fixed."""
    fig, ax = _pyplot().subplots(figsize=(5, 3.5))
    ax.plot([r["sigma"] for r in rows], [r["teacher"] for r in rows], "o-", label="teacher (ANN)")
    ax.plot([r["sigma"] for r in rows], [r["sne_fixed"] for r in rows], "s-", label="SNE (fixed point, all awake)")
    ax.set_xlabel("Gaussian input noise sigma")
    ax.set_ylabel("test accuracy")
    ax.grid(True, alpha=0.3)
    ax.legend()
    _save(fig, out_png)


def plot_ablations(groups: dict[str, dict[str, dict]], out_png: str) -> None:
    """One bar chart per ablation group: mean fixed-point accuracy, error bar = half the spread."""
    fig, axes = _pyplot().subplots(1, len(groups), figsize=(11, 3.3), squeeze=False)
    for ax, (group, g) in zip(axes[0], groups.items()):
        names = list(g)
        ax.bar(names, [g[k]["fixed_mean"] for k in names], yerr=[g[k]["fixed_spread"] / 2 for k in names], capsize=4)
        lo = min(g[k]["fixed_mean"] for k in names)
        ax.set_ylim(max(0.0, lo - 0.05), min(1.0, max(g[k]["fixed_mean"] for k in names) + 0.03))
        ax.set_title(group)
        ax.set_ylabel("fixed-point accuracy")
    _save(fig, out_png)
