"""Plain-text tables of measured numbers, for the terminal."""
from __future__ import annotations


def format_train_summary(s: dict) -> str:
    lines = [f"dataset {s['dataset']}  test samples {s['test_samples']}  T={s['steps']}  encoding {s['encoding']}",
             f"{'model':28s} {'accuracy':>9s} {'spikes/sample':>14s}",
             f"{'teacher (ANN)':28s} {s['teacher_accuracy']:9.4f} {'-':>14s}   {s['teacher_macs']} MACs"]
    for mode in ("float", "fixed"):
        lines.append(f"{'ensemble, all awake, ' + mode:28s} {s[f'ensemble_{mode}_accuracy']:9.4f} {s[f'spikes_per_sample_{mode}']:14.1f}")
    for k, m in enumerate(s["members"]):
        lines.append(f"  member {k}: {m['dims']} dims  R2 {m['feature_r2']:.3f}  spikes/sample {m['spikes_per_sample']:.1f}"
                     f"  float/fixed count agreement {m['float_fixed_count_agreement']:.4f}")
    lines.append(f"gate: {s['gate_macs']} MACs per input")
    t = s.get("timings", {})
    if t:
        lines.append("time: " + ", ".join(f"{k[:-2]} {v:.1f}s" for k, v in t.items()))
    return "\n".join(lines)


def format_simulation(r: dict) -> str:
    acc = "-" if r["accuracy"] is None else f"{r['accuracy']:.4f}"
    e, te, ratio = r["energy_pj"], r["teacher_energy_pj"], r["teacher_to_sne_energy_ratio"]
    lines = [
        f"backend {r['backend']} ({r['mode']})  policy {r['policy']}  budget {r['budget']}  samples {r['samples']}",
        f"  accuracy                    {acc}",
        f"  awake fraction              {r['awake_fraction']:.4f}   member wakes {r['member_wakes']}",
        f"  spikes / sample             {r['spikes_per_sample']:.1f}",
        f"  synaptic events / sample    {r['synaptic_events_per_sample']:.1f}",
        f"  neuron updates / sample     {r['neuron_updates_per_sample']:.1f}",
        f"  gate cost                   {r['gate_macs']:.0f} MACs / sample",
        f"  energy / sample  Loihi      {e['loihi'] / 1e3:.2f} nJ   (teacher {te['loihi'] / 1e3:.2f} nJ, ratio {ratio['loihi']:.2f}x)",
        f"  energy / sample  45 nm      {e['45nm'] / 1e3:.2f} nJ   (teacher {te['45nm'] / 1e3:.2f} nJ, ratio {ratio['45nm']:.2f}x)",
        f"  wall time                   {r['wall_time_s']:.2f} s (backend {r['backend_time_s']:.2f} s)",
    ]
    a = r.get("agreement_with_torch")
    if a:
        ta = "-" if a["torch_accuracy"] is None else f"{a['torch_accuracy']:.4f}"
        lines.append(f"  vs PyTorch ({r['mode']})         prediction agreement {a['prediction_agreement']:.4f}, "
                     f"spike mismatches {a['spike_mismatches']}, torch accuracy {ta}")
    return "\n".join(lines)


def plot_sweep(rows: list[dict], teacher: dict, out_png: str, constants: str = "loihi") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
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
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    plt.close(fig)


def plot_awake(awake_fraction: list[float], out_png: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar(range(len(awake_fraction)), awake_fraction)
    ax.set_xlabel("member")
    ax.set_ylabel("fraction of inputs awake")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    plt.close(fig)


def plot_raster(raster: dict, out_png: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    members = sorted(raster)
    fig, axes = plt.subplots(len(members), 1, figsize=(6, 1.8 * len(members)), squeeze=False)
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
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    plt.close(fig)
