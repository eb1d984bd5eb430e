"""Plain-text tables of measured numbers, for the terminal, and ``simulate --report``'s folder:
report.json and its plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from sne_deploy.simulators.errors import InputError
from sne_deploy.simulators.result import MODES

if TYPE_CHECKING:
    from sne_deploy.exporters.bundle import Bundle

from .records import SimulationReport, TrainSummary


def format_train_summary(s: TrainSummary) -> str:
    lines = [
        f"dataset {s.dataset}  test samples {s.test_samples}  T={s.steps}  encoding {s.encoding}",
        f"{'model':28s} {'accuracy':>9s} {'spikes/sample':>14s}",
        f"{'teacher (ANN)':28s} {s.teacher_accuracy:9.4f} {'-':>14s}   {s.teacher_macs} MACs",
    ]
    for mode in MODES:
        lines.append(
            f"{'ensemble, all awake, ' + mode:28s} {s.ensemble_accuracy[mode]:9.4f} {s.spikes_per_sample[mode]:14.1f}"
        )
    for k, m in enumerate(s.members):
        lines.append(
            f"  member {k}: {m.dims} dims  R2 {m.feature_r2:.3f}  spikes/sample {m.spikes_per_sample:.1f}"
            f"  float/fixed count agreement {m.float_fixed_count_agreement:.4f}"
        )
    lines.append(f"gate: {s.gate_macs} MACs per input")
    t = s.timings
    if t:
        lines.append("time: " + ", ".join(f"{k[:-2]} {v:.1f}s" for k, v in t.items()))
    return "\n".join(lines)


MODEL_LABELS = {"loihi": "Loihi", "45nm-ops": "45 nm ops", "memory": "memory"}  # sne_deploy.energy.MODELS


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
        f"  synaptic events / sample    {c.synaptic_events:.1f}   (input layer {c.input_synaptic_events:.1f}"
        + (f", {c.graded_events:.1f} of them graded: weight x payload)" if c.graded_events else ")"),
        f"  neuron updates / sample     {c.neuron_updates:.1f}",
        f"  host cost                   gate {c.gate_macs:.0f} + head {c.head_macs:.0f} MACs / sample",
    ]
    if r.mean_rounds is not None and r.policy == "cascade-time":
        lines.append(
            f"  member-steps                {r.mean_rounds:.2f} rounds' worth on average "
            f"({r.mean_rounds / len(r.member_wakes):.3f} of all; the head read after every step)"
        )
    elif r.mean_rounds is not None:
        lines.append(f"  cascade rounds              {r.mean_rounds:.2f} on average (sequential on a chip)")
    t8 = r.teacher_pj("int8")
    for m, pj in e.items():
        fp32, int8, ratio_m = te[m], t8[m], ratio[m]
        teacher = (
            f"teacher {_uj(fp32)} fp32, {_uj(int8)} int8; {_ratio(ratio_m)}"
            if fp32 is not None and int8 is not None and ratio_m is not None
            else "teacher unknown"
        )
        lines.append(f"  energy / sample  {MODEL_LABELS[m]:10s} {_uj(pj)}   ({teacher})")
    for m, parts in r.energy_breakdown_pj.items():
        lines.append(
            f"  {MODEL_LABELS[m] + ' by part':27s} "
            + ", ".join(f"{k.replace('_', ' ')} {_uj(v)}" for k, v in parts.items())
        )
    lines.append(f"  wall time                   {r.wall_time_s:.2f} s (backend {r.backend_time_s:.2f} s)")
    if r.mode == "fixed":
        hit = {j: v for j, v in r.overflow.items() if sum(v) > 0}
        lines.append(
            f"  fixed-point overflow        {r.overflow_total} neuron-steps"
            + ("" if hit else " (none: the chip computes what the model does)")
        )
        for j, v in hit.items():
            layers = ", ".join(f"layer {i} {n}" for i, n in enumerate(v) if n)
            lines.append(
                f"  warning: member {j} overflows in fixed point ({layers} neuron-steps where u wrapped or "
                "v saturated): on the chip it computes something other than the trained model"
            )
    a = r.agreement
    if a:
        ta = "-" if a.torch_accuracy is None else f"{a.torch_accuracy:.4f}"
        lines.append(
            f"  vs PyTorch ({r.mode})         prediction agreement {a.prediction_agreement:.4f}, "
            f"spike mismatches {a.spike_mismatches}, torch accuracy {ta}"
        )
    return "\n".join(lines)


def subplots(*args: Any, **kw: Any) -> Any:
    """(figure, axes) of a stand-alone matplotlib Figure: it renders to files on its own Agg canvas,
    so plotting needs no display and never switches the caller's pyplot backend or touches its
    figures (a notebook's inline plots stay as they were)."""
    from matplotlib.figure import Figure

    figsize = kw.pop("figsize", None)
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(*args, **kw)


def save_figure(fig, out_png: str) -> None:
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)


POLICY_STYLE = {
    "gate": ("o", "C0"),
    "random": ("s", "C1"),
    "fixed": ("^", "C2"),
    "all": ("D", "C3"),
    "cascade": ("v", "C4"),
}


def plot_sweep(rows: list[dict], teacher: dict, out_png: str, title: str, constants: str = "loihi") -> None:
    """Accuracy against energy per policy, each point labelled with its budget; ``rows`` in the
    JSON form (``SimulationReport.to_dict``). Open markers and small offsets keep coincident
    points visible."""
    from .energy import CONSTANTS

    fig, ax = subplots(figsize=(7, 4.5))
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
            ax.annotate(
                "/".join(f"{b:g}" for b in sorted(points[(x, y)])),
                (x, y),
                textcoords="offset points",
                xytext=(5, 3 + 7 * n),
                fontsize=7,
                color=color,
            )
    what = (
        f"MACs at {CONSTANTS[constants]['mac'].pj:g} pJ" if constants in CONSTANTS else "fp32 with its memory accesses"
    )
    ax.scatter(
        [teacher["energy_pj"][constants] / 1e6],
        [teacher["accuracy"]],
        marker="*",
        s=150,
        c="k",
        label=f"teacher (ANN), {what}",
    )
    ax.set_xscale("log")
    import math

    from matplotlib.ticker import FormatStrFormatter, FuncFormatter

    def two_and_five(v: float, _pos: Any) -> str:  # minor labels at 2x and 5x a decade only: legible
        return f"{v:g}" if v > 0 and round(v / 10 ** math.floor(math.log10(v)), 6) in (2.0, 5.0) else ""

    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.xaxis.set_minor_formatter(FuncFormatter(two_and_five))
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel(
        f"estimated energy per sample [µJ] ({MODEL_LABELS.get(constants, constants)} model, incl. gate and head)"
    )
    ax.set_ylabel("test accuracy")
    ax.set_title(title + "\n(numbers next to points: budget = mean fraction of members awake)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, out_png)


def plot_awake(awake_fraction: list[float], out_png: str, title: str, budget: float) -> None:
    """How often each member was awake, with the requested budget and the achieved mean."""
    from matplotlib.ticker import MaxNLocator

    fig, ax = subplots(figsize=(5.5, 3.2))
    ax.bar(range(len(awake_fraction)), awake_fraction, color="C0")
    ax.axhline(budget, color="C3", ls="--", label=f"requested budget {budget:g}")
    ax.axhline(
        sum(awake_fraction) / max(len(awake_fraction), 1),
        color="k",
        lw=1,
        label=f"achieved mean {sum(awake_fraction) / max(len(awake_fraction), 1):.3f}",
    )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("member")
    ax.set_ylabel("fraction of inputs awake")
    ax.set_ylim(0, 1.05)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    save_figure(fig, out_png)


def plot_raster(raster: dict, inputs: Any, out_png: str, title: str) -> None:
    """One sample: its input spikes (T, n_in) on top, then every awake member's layers."""
    members = sorted(raster)
    from matplotlib.lines import Line2D

    fig, axes = subplots(len(members) + 1, 1, figsize=(6.5, 1.6 * (len(members) + 1)), squeeze=False, sharex=True)
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
    handles = [
        Line2D(
            [],
            [],
            color=f"C{li}",
            marker="|",
            ls="",
            label=("output layer" if li == n_layers - 1 else f"hidden layer {li}"),
        )
        for li in range(n_layers)
    ]
    axes[-1, 0].legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    axes[-1, 0].set_xlabel("time step")
    axes[0, 0].set_title(title, fontsize=10)
    save_figure(fig, out_png)


def check_report_dir(out: Path) -> None:
    """``--report`` must name a new folder, an empty one or an earlier report; checked before any work."""
    for parent in [out, *out.parents]:
        if parent.exists() and not parent.is_dir():
            raise InputError(f"--report {out}: {parent} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "report.json").is_file():
        raise InputError(f"--report {out} is a folder that holds other files; name a new folder or an earlier report")


def write_report(
    out: Path, rows: list[SimulationReport], bundle: Bundle, x: np.ndarray, y: Optional[np.ndarray]
) -> None:
    """The whole folder is written as a temporary sibling and swapped in: an earlier report's files
    never mix with this one's, and a second concurrent writer is refused."""
    from sne_deploy.simulators.files import atomic_dir, exclusive

    from .energy import constants_json

    check_report_dir(out)
    with exclusive(out), atomic_dir(out) as tmp:
        teacher = {"accuracy": bundle.manifest.teacher_accuracy, "energy_pj": rows[0].teacher_energy_pj}
        doc: dict[str, Any] = {
            "bundle": str(bundle.path.resolve()),
            "teacher": teacher,
            "runs": [r.to_dict() for r in rows],
            "energy_constants": constants_json(),
        }
        (tmp / "report.json").write_text(json.dumps(doc, indent=2))
        main = next((r for r in rows if r.policy == "gate"), rows[0])
        where = f"{bundle.manifest.dataset}, {main.backend} ({main.mode}), N = {main.samples}"
        if len(rows) > 1:
            plot_sweep(doc["runs"], teacher, str(tmp / "accuracy_vs_energy.png"), f"Accuracy vs energy: {where}")
        plot_awake(
            main.awake.mean(0).tolist(),
            str(tmp / "awake_fraction.png"),
            f"Members awake: {main.policy} policy, {where}",
            main.budget,
        )
        if main.raster:
            truth = "" if y is None else f"true class {int(y[0])}, "
            plot_raster(
                main.raster,
                bundle.spikes(x[:1])[0],
                str(tmp / "raster_sample0.png"),
                f"Sample 0 ({truth}predicted {int(main.predictions[0])}): spikes of the awake members\n"
                f"{main.policy} policy, budget {main.budget:g}, {where}",
            )
