"""The benchmarks' own figures (noise robustness, ablations, the accuracy ceiling), drawn with the
package's stand-alone figure helpers; the figures a user's ``simulate --report`` writes live in
:mod:`sne_deploy.report`."""

from __future__ import annotations

from sne_deploy.report import save_figure, subplots


def plot_noise(rows: list[dict], out_png: str, title: str) -> None:
    """Accuracy of teacher and SNE against input noise; rows hold sigma, teacher and sne_fixed."""
    fig, ax = subplots(figsize=(5.5, 3.8))
    ax.plot([r["sigma"] for r in rows], [r["teacher"] for r in rows], "o-", label="teacher (ANN)")
    ax.plot([r["sigma"] for r in rows], [r["sne_fixed"] for r in rows], "s-", label="SNE (fixed point, all awake)")
    ax.set_xlabel("Gaussian noise σ on pixel intensities (intensity range [0, 1]; clipped)")
    ax.set_ylabel("test accuracy")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend()
    save_figure(fig, out_png)


def _slanted(ax) -> None:  # type: ignore[no-untyped-def]
    """Variant names at 40 degrees, right-aligned under their bars, so long names do not collide."""
    for label in ax.get_xticklabels():
        label.set_rotation(40)
        label.set_horizontalalignment("right")
        label.set_fontsize(8)


def plot_ablations(groups: dict[str, dict[str, dict]], out_png: str, title: str) -> None:
    """Per ablation group: mean fixed-point accuracy and spikes per sample side by side; error
    bars span the seeds' min..max."""
    fig, axes = subplots(2, len(groups), figsize=(2.8 * len(groups) + 1, 7), squeeze=False)

    def span(g: dict, names: list, key: str) -> list:  # (below, above) the mean: to the seeds' min and max
        runs = [[r[key] for r in g[k]["runs"]] for k in names]
        return [
            [g[k][f"{key}_mean"] - min(r) for k, r in zip(names, runs)],
            [max(r) - g[k][f"{key}_mean"] for k, r in zip(names, runs)],
        ]

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
    save_figure(fig, out_png)


def plot_ceiling(
    bars: dict[str, tuple[float, float, float]],
    lines: dict[str, float],
    out_png: str,
    title: str,
    other: tuple[str, ...] = (),
    other_label: str = "",
) -> None:
    """Bars of accuracy (mean, min, max over seeds) per network shape, each labelled with its
    mean, against horizontal reference ``lines`` (label -> accuracy), e.g. the target and the
    measured spiking ensemble; the bars named in ``other`` are drawn in a second colour."""
    fig, ax = subplots(figsize=(11, 4.6))
    names = list(bars)
    mean = [bars[n][0] for n in names]
    err = [[bars[n][0] - bars[n][1] for n in names], [bars[n][2] - bars[n][0] for n in names]]
    for group, color, label in (
        (False, "#8fb3d9", "float members (mean; min–max over seeds)"),
        (True, "#c9a3d9", other_label),
    ):
        idx = [i for i, n in enumerate(names) if (n in other) == group]
        if idx:
            bc = ax.bar(
                idx,
                [mean[i] for i in idx],
                yerr=[[err[0][i] for i in idx], [err[1][i] for i in idx]],
                capsize=3,
                color=color,
                label=label,
            )
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
    save_figure(fig, out_png)
