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
