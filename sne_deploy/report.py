"""Plain-text tables of measured numbers, for the terminal, and the plots of a report."""
from __future__ import annotations

from typing import Any

from sne_deploy.simulators.result import MODES

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
        f"  synaptic events / sample    {c.synaptic_events:.1f}   (input layer {c.input_synaptic_events:.1f})",
        f"  neuron updates / sample     {c.neuron_updates:.1f}",
        f"  host cost                   gate {c.gate_macs:.0f} + head {c.head_macs:.0f} MACs / sample",
    ]
    if r.mean_rounds is not None:
        lines.append(f"  cascade rounds              {r.mean_rounds:.2f} on average (sequential on a chip)")
    lines += [
        f"  energy / sample  Loihi      {_uj(e['loihi'])}   (teacher {_uj(te['loihi'])}; {_ratio(ratio['loihi'])})",
        f"  energy / sample  45 nm      {_uj(e['45nm'])}   (teacher {_uj(te['45nm'])}; {_ratio(ratio['45nm'])})",
        "  Loihi energy by part        " + ", ".join(f"{k.replace('_', ' ')} {_uj(v)}" for k, v in r.energy_breakdown_pj["loihi"].items()),
        f"  wall time                   {r.wall_time_s:.2f} s (backend {r.backend_time_s:.2f} s)",
    ]
    if r.mode == "fixed":
        hit = {j: v for j, v in r.overflow.items() if sum(v) > 0}
        lines.append(f"  fixed-point overflow        {r.overflow_total} neuron-steps"
                     + ("" if hit else " (none: the chip computes what the model does)"))
        for j, v in hit.items():
            layers = ", ".join(f"layer {i} {n}" for i, n in enumerate(v) if n)
            lines.append(f"  warning: member {j} overflows in fixed point ({layers} neuron-steps where u wrapped or "
                         "v saturated): on the chip it computes something other than the trained model")
    a = r.agreement
    if a:
        ta = "-" if a.torch_accuracy is None else f"{a.torch_accuracy:.4f}"
        lines.append(f"  vs PyTorch ({r.mode})         prediction agreement {a.prediction_agreement:.4f}, "
                     f"spike mismatches {a.spike_mismatches}, torch accuracy {ta}")
    return "\n".join(lines)


def _subplots(*args: Any, **kw: Any) -> Any:
    """(figure, axes) of a stand-alone matplotlib Figure: it renders to files on its own Agg canvas,
    so plotting needs no display and never switches the caller's pyplot backend or touches its
    figures (a notebook's inline plots stay as they were)."""
    from matplotlib.figure import Figure

    figsize = kw.pop("figsize", None)
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*args, **kw)


def _save(fig, out_png: str) -> None:  # type: ignore[no-untyped-def]
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)


POLICY_STYLE = {"gate": ("o", "C0"), "random": ("s", "C1"), "fixed": ("^", "C2"), "all": ("D", "C3"),
                "cascade": ("v", "C4")}


def plot_sweep(rows: list[dict], teacher: dict, out_png: str, title: str, constants: str = "loihi") -> None:
    """Accuracy against energy per policy, each point labelled with its budget; ``rows`` in the
    JSON form (``SimulationReport.to_dict``). Open markers and small offsets keep coincident
    points visible."""
    from .energy import CONSTANTS

    fig, ax = _subplots(figsize=(7, 4.5))
    policies = [p for p in POLICY_STYLE if any(r["policy"] == p for r in rows)]
    for n, policy in enumerate(policies):
        marker, color = POLICY_STYLE[policy]
        points: dict[tuple[float, float], list[float]] = {}  # budgets that gave the very same point share a label
        for r in rows:
            if r["policy"] == policy:
                points.setdefault((r["energy_pj"][constants] / 1e6, r["accuracy"]), []).append(r["budget"])
        xy = sorted(points)
        ax.plot(*zip(*xy), marker=marker, color=color, mfc="none", ms=7 + 2 * (len(policies) - n), lw=1, label=policy)
        for x, y in xy:
            ax.annotate("/".join(f"{b:g}" for b in sorted(points[(x, y)])), (x, y), textcoords="offset points",
                        xytext=(5, 3 + 7 * n), fontsize=7, color=color)
    mac = CONSTANTS[constants]["mac"][0]
    ax.scatter([teacher["energy_pj"][constants] / 1e6], [teacher["accuracy"]], marker="*", s=150, c="k",
               label=f"teacher (ANN), MACs at {mac:g} pJ")
    ax.set_xscale("log")
    import math

    from matplotlib.ticker import FormatStrFormatter, FuncFormatter

    def two_and_five(v: float, _pos: Any) -> str:  # minor labels at 2x and 5x a decade only: legible
        return f"{v:g}" if v > 0 and round(v / 10 ** math.floor(math.log10(v)), 6) in (2.0, 5.0) else ""

    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(FuncFormatter(two_and_five))
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel(f"estimated energy per sample [µJ] ({'Loihi' if constants == 'loihi' else constants} constants, incl. gate and head)")
    ax.set_ylabel("test accuracy")
    ax.set_title(title + "\n(numbers next to points: budget = mean fraction of members awake)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, out_png)


def plot_awake(awake_fraction: list[float], out_png: str, title: str, budget: float) -> None:
    """How often each member was awake, with the requested budget and the achieved mean."""
    from matplotlib.ticker import MaxNLocator

    fig, ax = _subplots(figsize=(5.5, 3.2))
    ax.bar(range(len(awake_fraction)), awake_fraction, color="C0")
    ax.axhline(budget, color="C3", ls="--", label=f"requested budget {budget:g}")
    ax.axhline(sum(awake_fraction) / max(len(awake_fraction), 1), color="k", lw=1,
               label=f"achieved mean {sum(awake_fraction) / max(len(awake_fraction), 1):.3f}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("member")
    ax.set_ylabel("fraction of inputs awake")
    ax.set_ylim(0, 1.05)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    _save(fig, out_png)


def plot_raster(raster: dict, inputs: Any, out_png: str, title: str) -> None:
    """One sample: its input spikes (T, n_in) on top, then every awake member's layers."""
    members = sorted(raster)
    from matplotlib.lines import Line2D

    fig, axes = _subplots(len(members) + 1, 1, figsize=(6.5, 1.6 * (len(members) + 1)), squeeze=False, sharex=True)
    t, i = inputs.nonzero()
    axes[0, 0].scatter(t, i, s=3, marker="|", color="grey")
    axes[0, 0].set_ylabel("input\nchannel")
    n_layers = max(len(v) for v in raster.values())
    for ax, j in zip(axes[1:, 0], members):
        base = 0
        for li, train in enumerate(raster[j]):
            tt, ii = train.nonzero()
            ax.scatter(tt, ii + base, s=5, marker="|", color=f"C{li}")
            base += train.shape[1]
            ax.axhline(base - 0.5, color="grey", lw=0.5)
        ax.set_ylabel(f"member {j}\nneuron")
    handles = [Line2D([], [], color=f"C{li}", marker="|", ls="", label=("output layer" if li == n_layers - 1 else f"hidden layer {li}"))
               for li in range(n_layers)]
    axes[-1, 0].legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axes[-1, 0].set_xlabel("time step")
    axes[0, 0].set_title(title, fontsize=10)
    _save(fig, out_png)


def plot_noise(rows: list[dict], out_png: str, title: str) -> None:
    """Accuracy of teacher and SNE against input noise; rows hold sigma, teacher and sne_fixed."""
    fig, ax = _subplots(figsize=(5.5, 3.8))
    ax.plot([r["sigma"] for r in rows], [r["teacher"] for r in rows], "o-", label="teacher (ANN)")
    ax.plot([r["sigma"] for r in rows], [r["sne_fixed"] for r in rows], "s-", label="SNE (fixed point, all awake)")
    ax.set_xlabel("Gaussian noise σ on pixel intensities (intensity range [0, 1]; clipped)")
    ax.set_ylabel("test accuracy")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend()
    _save(fig, out_png)


def _slanted(ax) -> None:  # type: ignore[no-untyped-def]
    """Variant names at 40 degrees, right-aligned under their bars, so long names do not collide."""
    for label in ax.get_xticklabels():
        label.set_rotation(40)
        label.set_horizontalalignment("right")
        label.set_fontsize(8)


def plot_ablations(groups: dict[str, dict[str, dict]], out_png: str, title: str) -> None:
    """Per ablation group: mean fixed-point accuracy and spikes per sample side by side; error
    bars span the seeds' min..max."""
    fig, axes = _subplots(2, len(groups), figsize=(2.8 * len(groups) + 1, 7), squeeze=False)

    def span(g: dict, names: list, key: str) -> list:  # (below, above) the mean: to the seeds' min and max
        runs = [[r[key] for r in g[k]["runs"]] for k in names]
        return [[g[k][f"{key}_mean"] - min(r) for k, r in zip(names, runs)],
                [max(r) - g[k][f"{key}_mean"] for k, r in zip(names, runs)]]

    for col, (group, g) in enumerate(groups.items()):
        names = list(g)
        ax = axes[0, col]
        ax.bar(names, [g[k]["fixed_mean"] for k in names], yerr=span(g, names, "fixed"), capsize=4)
        lo = min(g[k]["fixed_mean"] for k in names)
        ax.set_ylim(max(0.0, lo - 0.05), min(1.0, max(g[k]["fixed_mean"] for k in names) + 0.03))
        ax.set_title(group)
        ax.set_ylabel("fixed-point accuracy")
        _slanted(ax)
        ax = axes[1, col]
        ax.bar(names, [g[k]["spikes_mean"] for k in names], yerr=span(g, names, "spikes"), capsize=4, color="C1")
        ax.set_ylabel("members' spikes / sample")
        _slanted(ax)
    fig.suptitle(title + "\n(bars: mean over seeds; error bars: min to max over seeds)", fontsize=10)
    _save(fig, out_png)


def plot_ceiling(bars: dict[str, tuple[float, float, float]], lines: dict[str, float], out_png: str, title: str,
                 other: tuple[str, ...] = (), other_label: str = "") -> None:
    """Bars of accuracy (mean, min, max over seeds) per network shape, each labelled with its
    mean, against horizontal reference ``lines`` (label -> accuracy), e.g. the target and the
    measured spiking ensemble; the bars named in ``other`` are drawn in a second colour."""
    fig, ax = _subplots(figsize=(11, 4.6))
    names = list(bars)
    mean = [bars[n][0] for n in names]
    err = [[bars[n][0] - bars[n][1] for n in names], [bars[n][2] - bars[n][0] for n in names]]
    for group, color, label in ((False, "#8fb3d9", "float members (mean; min–max over seeds)"), (True, "#c9a3d9", other_label)):
        idx = [i for i, n in enumerate(names) if (n in other) == group]
        if idx:
            bc = ax.bar(idx, [mean[i] for i in idx], yerr=[[err[0][i] for i in idx], [err[1][i] for i in idx]], capsize=3,
                        color=color, label=label)
            ax.bar_label(bc, fmt="%.4f", fontsize=7, padding=2)
    for (label, value), (color, style) in zip(lines.items(), (("C3", "--"), ("C2", ":"), ("C0", "-."))):
        ax.axhline(value, color=color, ls=style, label=f"{label} ({value:.4f})")
    ax.set_xticks(range(len(names)), names)
    _slanted(ax)
    values = mean + list(lines.values())
    ax.set_ylim(min(values) - 0.02, max(values) + 0.015)
    ax.set_ylabel("test accuracy (10k samples)")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    _save(fig, out_png)
