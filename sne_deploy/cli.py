"""``sne-deploy``: train, export, simulate, run-nir. Bad input gives one line on stderr and exit 2."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, Optional

from sne_deploy.exporters.checks import EXPORT_TARGETS
from sne_deploy.simulators import BACKENDS as SIM_BACKENDS
from sne_deploy.simulators.errors import InputError, SneError
from sne_deploy.simulators.files import atomic_file, read_npz
from sne_deploy.simulators.neuron import DECAYS, FIRINGS, RESETS, SPIKES
from sne_deploy.simulators.presets import PRESETS
from sne_deploy.simulators.result import MODES

from .energy import MODELS as ENERGY_MODELS
from .runtime import BACKENDS as RUNTIME_BACKENDS
from .scheduler import POLICIES

# The project's own errors, and the I/O errors that name a user's path; anything else is a bug
# and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    SneError,
    FileNotFoundError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
)


def cmd_train(a: argparse.Namespace) -> int:
    import torch

    from . import api, checkpoint
    from .distributed import ranks_from_env, session
    from .model import resolve_device
    from .report import format_train_summary

    _at_least(a, 1, "--threads")
    cfg = _config_from_args(a).checked()  # every rule, before minutes of teacher training
    out = Path(a.out)
    if out.exists() and out.is_dir():
        raise InputError(f"--out {out} is a directory; give a file name such as model.pt")
    _check_replaceable(out, checkpoint.is_checkpoint, "an sne-deploy model checkpoint")
    _check_replaceable(out.with_suffix(".summary.json"), _is_summary, "a training summary")
    torch.set_num_threads(a.threads or max(1, torch.get_num_threads()))
    ranks = ranks_from_env()  # torchrun: DDP over WORLD_SIZE ranks; rank 0 writes the files
    with session(ranks, ranks.device(resolve_device(cfg.device))):
        model = api.fit_on_ranks(cfg.data, cfg, progress=_progress(a), ranks=ranks)
    if model is None:
        return 0
    checkpoint.save(model, out)
    summary, summary_path = model.summary, out.with_suffix(".summary.json")
    assert summary is not None  # train() always evaluates
    with atomic_file(summary_path) as tmp:
        tmp.write_text(json.dumps(summary.to_dict(), indent=2))
    if cfg.defaults_from != cfg.data:  # the user's own data: say whose defaults it took
        print(
            f"data {cfg.data}: the {cfg.defaults_from} defaults for its image size "
            f"({cfg.teacher} teacher, {cfg.student} students, T = {cfg.steps}, {cfg.hidden} hidden)"
            + (
                "; event data: their counts per bin are the input spikes, no encoder"
                if cfg.encoding == "events"
                else ""
            )
        )
    print(format_train_summary(summary))
    print(f"saved {out} and {summary_path}")
    print(f"next: sne-deploy export {out} --target lava")
    return 0


def _config_options() -> list:
    """The :class:`~sne_deploy.config.TrainConfig` fields ``train`` offers on the command line."""
    from dataclasses import fields

    from .config import TrainConfig

    return [f for f in fields(TrainConfig) if f.metadata["cli"]]


def _add_config_options(p: argparse.ArgumentParser) -> None:
    """One option per :class:`~sne_deploy.config.TrainConfig` field, from the field's metadata."""
    import typing
    from dataclasses import fields

    from .config import DatasetDefaults, TrainConfig, flag, per_dataset_help

    hints = typing.get_type_hints(TrainConfig)
    per_dataset = {f.name for f in fields(DatasetDefaults)}
    for f in _config_options():
        m = f.metadata
        kind = hints[f.name]
        if typing.get_origin(kind) is typing.Union:  # Optional[X]: the option takes an X
            kind = next(t for t in typing.get_args(kind) if t is not type(None))
        text = m["help"] + (f" (default per dataset: {per_dataset_help(f.name)})" if f.name in per_dataset else "")
        kw: dict = {
            "dest": f.name,
            "default": f.default,
            "help": text,
            "metavar": m["metavar"],
            "choices": m["choices"],
        }
        if kind is bool:
            kw.update(action=argparse.BooleanOptionalAction, metavar=None, choices=None)
        elif kind in (int, float):
            kw["type"] = kind
        p.add_argument(flag(f.name), **kw)


def _config_from_args(a: argparse.Namespace):
    from .config import TrainConfig, parse_conv_layers

    values = {f.name: getattr(a, f.name) for f in _config_options()}
    if values["conv"] is not None:
        values["conv"] = parse_conv_layers(values["conv"])
    return TrainConfig(**values)


def _check_replaceable(path: Path, ours: Callable[[Path], bool], kind: str) -> None:
    """An --out file may replace only the project's own kind of file, never a user's other files."""
    if (path.exists() or path.is_symlink()) and (path.is_symlink() or not ours(path)):
        raise InputError(f"{path} exists and is not {kind}; name a new file (it was left as it is)")


def _is_summary(path: Path) -> bool:
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(doc, dict) and "teacher_accuracy" in doc and "members" in doc


def _is_run_nir_output(path: Path) -> bool:
    import zipfile

    import numpy as np

    if not zipfile.is_zipfile(path):
        return False
    try:
        with np.load(path, allow_pickle=False) as z:
            return "output_counts" in z.files
    except Exception:  # damaged or foreign: not ours
        return False


def _progress(a: argparse.Namespace) -> bool:
    """Progress bars only on a terminal and unless --quiet: a log file gets no bars."""
    return not getattr(a, "quiet", False) and sys.stderr.isatty()


def cmd_setup(a: argparse.Namespace) -> int:
    from .setup_lava import setup_lava

    setup_lava(a.python, Path(a.env) if a.env else None, a.force)
    print("next: sne-deploy simulate BUNDLE --backend lava")
    return 0


def _at_least(a: argparse.Namespace, minimum: float, *options: str) -> None:
    """Every named option that was given must be a finite number >= ``minimum``."""
    import math

    for opt in options:
        v = getattr(a, opt.lstrip("-").replace("-", "_"))
        if v is not None and not (math.isfinite(v) and v >= minimum):
            raise InputError(f"{opt} must be a number >= {minimum:g}, got {v}")


def _add_brian2_target(p: argparse.ArgumentParser) -> None:
    from sne_deploy.simulators.brian2_backend import BRIAN2_TARGETS  # numpy-only module: no brian2 import here

    p.add_argument(
        "--brian2-target",
        default=None,
        choices=BRIAN2_TARGETS,
        help="Brian2 code target: cython (default), cpp_standalone (fast for large N; builds a C++ program) or numpy",
    )


def _add_cluster_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="shard the backend calls over N Ray workers on this machine (needs sne-deploy[cluster])",
    )
    p.add_argument(
        "--cluster",
        default=None,
        metavar="ADDRESS",
        help="shard them over the running Ray cluster at ADDRESS (default: $SNE_RAY_ADDRESS; 'auto' finds one here)",
    )
    p.add_argument(
        "--shard-samples",
        type=int,
        default=None,
        help="cut every backend call into shards of N samples (default: balance the work over the workers, "
        "no shard under lava 1000, brian2 200, others 50 samples: a shard's start-up must pay for itself)",
    )


def _executor(a: argparse.Namespace):
    """Serial unless --workers, --cluster or $SNE_RAY_ADDRESS ask for Ray (imported only then)."""
    from .cluster import executor_for

    return executor_for(a.workers, a.cluster, a.shard_samples, progress=_progress(a) and not a.json)


def _backend_options(a: argparse.Namespace) -> dict:
    """Options only one backend understands, passed on only to that backend."""
    return {"target": a.brian2_target} if a.backend == "brian2" and a.brian2_target else {}


def _read_nir(a: argparse.Namespace):
    """The graph as ``run-nir``'s options say: a preset's dt and conventions, each overridden by
    its own option; the reader's warnings become ``warning:`` lines."""
    import warnings

    from sne_deploy.simulators.neuron import LOIHI, Dynamics
    from sne_deploy.simulators.nir_io import GraphWarning, from_nir
    from sne_deploy.simulators.presets import get_preset

    preset = get_preset(a.preset) if a.preset else None
    base = preset.dynamics if preset else LOIHI
    dyn = Dynamics(
        a.firing or base.firing, a.reset or base.reset, a.decay or base.decay, a.spikes or base.spikes, base.gain
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", GraphWarning)
        net = from_nir(Path(a.graph), dt=a.dt, dynamics=dyn, default_dt=preset.dt if preset else 1.0)
    for w in caught:
        if issubclass(w.category, GraphWarning):
            print(f"warning: {w.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return net


def cmd_run_nir(a: argparse.Namespace) -> int:

    from sne_deploy.simulators.fixed_point import quantization_agreement, quantize_network

    if a.quantize and a.mode != "fixed":
        raise InputError("--quantize chooses fixed-point parameters: use it with --mode fixed")
    if a.out:
        _check_replaceable(Path(a.out), _is_run_nir_output, "an earlier 'run-nir --out' result")
    spikes = read_npz(Path(a.inputs), "spikes", "spike trains of shape (N, T, n_in)")["spikes"]
    net = _read_nir(a)
    quant = None
    if a.quantize:
        net, report = quantize_network(net)
        quant = quantization_agreement(net, spikes, report)
    from .cluster import Call

    record = a.out is not None
    (res,) = _executor(a).run([Call(net, spikes, record)], a.backend, a.mode, _backend_options(a))
    summary = res.summary()
    summary["dt"] = net.dt
    summary["dynamics"] = net.dynamics.to_dict()
    if quant is not None:
        summary["quantization"] = quant
    if a.out:
        arrays = {
            "output_counts": res.output_counts,
            "layer_spikes": res.layer_spikes,
            "synaptic_events": res.synaptic_events,
            "neuron_updates": res.neuron_updates,
        }
        for i, t in enumerate(res.trains or []):
            arrays[f"train_layer{i}"] = t
        if res.readout is not None:  # an LI last layer: its membrane trace (N, T, n_out)
            arrays["readout"] = res.readout
        import numpy as np

        with atomic_file(Path(a.out), suffix=".npz") as tmp:
            np.savez(tmp, **arrays)
    if a.json:
        print(json.dumps(summary))
    else:
        for k, v in summary.items():
            print(f"{k:28s} {v}")
    return 0


def _last_bundle_file() -> Path:
    """The "last exported bundle" pointer of *this working directory* (one per directory, in the
    user's cache), so runs in other projects or venvs never pick up each other's bundle."""
    import hashlib

    from sne_deploy.simulators.paths import user_cache

    key = hashlib.sha256(str(Path.cwd().resolve()).encode()).hexdigest()[:16]
    return user_cache() / "last-bundles" / key


def cmd_export(a: argparse.Namespace) -> int:
    import warnings

    from . import api, checkpoint

    model_path = Path(a.model)
    out = Path(a.out) if a.out else model_path.with_suffix(f".{a.target}")
    api.check_export(a.target, out, a.force)  # before the checkpoint loads
    with warnings.catch_warnings(record=True) as found:
        warnings.simplefilter("always", api.ExportWarning)
        bundle = api.export(
            checkpoint.load(model_path),
            a.target,
            out,
            force=a.force,
            strict=a.strict,
            data_dir=a.data_dir,
        )
    for w in found:
        print(f"warning: {w.message}", file=sys.stderr)
    path = bundle.path
    try:
        with atomic_file(_last_bundle_file()) as tmp:
            tmp.write_text(str(path.resolve()))
    except OSError as e:  # a convenience only: never fail an export for it
        print(f"warning: could not remember the bundle for 'simulate' ({e})", file=sys.stderr)
    print(f"wrote bundle {path.resolve()} (target {a.target}, {bundle.n_members} members)")
    print(f"next: sne-deploy simulate {path} --budget 0.3 --backend {'brian2' if a.target == 'brian2' else 'lava'}")
    return 0


def _resolve_bundle(arg: Optional[str]) -> Path:
    if arg:
        return Path(arg)
    last = _last_bundle_file()
    if last.is_file():
        return Path(last.read_text().strip())
    raise InputError(
        "no bundle given and none exported from this folder yet: run 'sne-deploy export MODEL.pt' "
        "first or name a bundle"
    )


def cmd_simulate(a: argparse.Namespace) -> int:

    from sne_deploy.exporters.bundle import load_bundle

    from .data import load_dataset
    from .energy import check_models, constants_table
    from .report import check_report_dir, format_simulation, write_report
    from .runtime import check_labels, check_run, raw_inputs
    from .scheduler import check_budget

    if a.energy_table:
        print(constants_table())
        return 0
    a.energy_models = check_models(a.energy_model)
    check_run(a.budget, a.policy, a.backend, a.mode)  # the library's own checks, before a dataset loads
    _at_least(a, 1, "--limit")
    if a.report:
        check_report_dir(Path(a.report))
    budgets = [check_budget(_number("--sweep", b)) for b in a.sweep.split(",")] if a.sweep else None
    bundle = load_bundle(_resolve_bundle(a.bundle))
    k = bundle.n_members
    for b in budgets or [a.budget]:
        if b < 1 / k and a.policy != "all":
            print(
                f"warning: budget {b} is below 1/K = {1 / k:.3g}: at least one of the {k} members always wakes, "
                f"so the awake fraction will be {1 / k:.3g}",
                file=sys.stderr,
            )
    if a.inputs:
        x, y = _read_inputs(Path(a.inputs))
        try:  # here, so that the message names the user's file
            x = raw_inputs(bundle, x)
            check_labels(bundle, y, len(x))
        except InputError as e:
            raise InputError(f"{a.inputs}: {e}") from None
    else:
        name = a.data or bundle.manifest.dataset
        ds = load_dataset(name, a.data_dir, bundle.manifest.data_seed)
        split = ds.split(a.split)
        x, y = split.inputs(), split.y
    if a.limit:
        x, y = x[: a.limit], (y[: a.limit] if y is not None else None)
    executor = _executor(a)
    if budgets is None:
        rows = [_simulate(bundle, x, y, a.budget, a.policy, a, executor)]
        r = rows[0]
        print(json.dumps(r.to_dict()) if a.json else format_simulation(r))
    else:
        rows = _sweep(bundle, x, y, budgets, a, executor)
    if a.report:
        write_report(Path(a.report), rows, bundle, x, y)
        print(f"wrote report to {a.report}", file=sys.stderr)
    return 0


def _simulate(bundle, x, y, budget: float, policy: str, a: argparse.Namespace, executor):
    """One ``sne_deploy.simulate`` call with the command line's settings (``x``: the model's inputs)."""
    from . import api

    return api.simulate(
        bundle,
        x,
        y,
        budget,
        policy,
        a.backend,
        a.mode,
        normalised=True,
        compare=not a.no_compare,
        seed=a.seed,
        record_sample=0,
        backend_options=_backend_options(a),
        executor=executor,
        energy_models=a.energy_models,
    )


def _sweep(bundle, x, y, budgets, a, executor) -> list:
    from tqdm.auto import tqdm

    from .report import format_simulation

    rows = []
    jobs = [(b, p) for b in budgets for p in ("gate", "cascade", "random", "fixed")]
    for b, p in tqdm(jobs, desc="sweep", disable=a.json or not _progress(a)):
        r = _simulate(bundle, x, y, b, p, a, executor)
        rows.append(r)
        if not a.json:
            tqdm.write(format_simulation(r))
    if a.json:
        print(json.dumps([r.to_dict() for r in rows]))
    return rows


def _number(option: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{option}: '{text.strip()}' is not a number") from None


def _read_inputs(path: Path):
    z = read_npz(path, "x", "inputs of shape (N, n_in) or (N, C, H, W), as the training data was stored")
    return z["x"], z.get("y")


ENVIRONMENT = """environment variables:
  SNE_LAVA_ENV        the Lava environment (default: made by 'sne-deploy setup lava' in the user data folder)
  SNE_LAVA_PYTHON     the Python 3.10 that 'setup lava' uses (or --python)
  SNE_LAVA_TIMEOUT    seconds a Lava run may take before it is killed (default 1800)
  SNE_BRIAN2_TARGET   Brian2 code target when --brian2-target is not given (default cython)
  SNE_BRIAN2_CACHE    Brian2's compiled code (default: the user cache folder, e.g. ~/.cache/sne-deploy/brian2)
  SNE_RAY_ADDRESS     the Ray cluster simulate and run-nir shard over when --cluster is not given
"""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Shows a default only where it says something (not None or False) and the help has none;
    the epilog (environment variables) keeps its lines."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default is None or action.default is False or "default" in text:
            return text
        return super()._get_help_string(action) or text


def _choices(values: tuple[str, ...]) -> str:
    return "{" + ",".join(values) + "}"


def _command(sub: Any, name: str, help: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help, description=help, formatter_class=_HelpFormatter, epilog=ENVIRONMENT)


def _add_train(sub: Any) -> None:
    """train: the options of TrainConfig, plus where the checkpoint goes and how many threads"""
    t = _command(sub, "train", "train teacher, K ternary student SNNs, head and gate")
    _add_config_options(t)
    t.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's own choice)")
    t.add_argument("--out", default="model.pt", help="checkpoint file (a summary .json is written beside it)")
    t.add_argument("--quiet", action="store_true", help="no progress bars (they appear only on a terminal anyway)")
    t.set_defaults(func=cmd_train)


def _add_export(sub: Any) -> None:
    """export: a checkpoint to a bundle for a target"""
    e = _command(sub, "export", "write a deployment bundle (NIR members, ONNX gate/head, manifest)")
    e.add_argument("model", help="model.pt from 'sne-deploy train'")
    e.add_argument("--target", default="lava", metavar=_choices(EXPORT_TARGETS), help="deployment target")
    e.add_argument("--out", default=None, help="bundle folder (default: <model>.<target>)")
    e.add_argument("--force", action="store_true", help="replace an existing bundle (never anything else)")
    e.add_argument("--strict", action="store_true", help="turn target warnings (24-bit range) into errors")
    e.add_argument("--data-dir", default=None, help="dataset folder, for calibration on validation data")
    e.set_defaults(func=cmd_export)


def _add_simulate(sub: Any) -> None:
    """simulate: a bundle under a budget and a policy"""
    s = _command(sub, "simulate", "run a bundle with the gate and a budget on a backend")
    s.add_argument(
        "bundle", nargs="?", default=None, help="bundle folder (default: the last one exported from this folder)"
    )
    s.add_argument("--budget", type=float, default=0.3, help="mean fraction of members awake, in (0, 1]")
    s.add_argument(
        "--policy",
        default="cascade",
        metavar=_choices(POLICIES),
        help="which members wake per input (cascade: the gate's order, stop when the head is confident; "
        "cascade-time: also within a round, after any step, the budget in member-steps)",
    )
    s.add_argument("--backend", default="torch", metavar=_choices(RUNTIME_BACKENDS), help="where the members run")
    s.add_argument("--mode", default="fixed", metavar=_choices(MODES), help="float model or Loihi's fixed point")
    _add_brian2_target(s)
    s.add_argument("--data", default=None, help="dataset (default: the bundle's)")
    s.add_argument("--data-dir", default=None, help="dataset folder (fashion-mnist: Debian's by default)")
    s.add_argument("--split", default="test", metavar="{train,val,test}", help="dataset split")
    s.add_argument("--inputs", default=None, help=".npz with 'x' (N, n_in) intensities in [0, 1] and optional 'y'")
    s.add_argument("--limit", type=int, default=None, help="only the first N samples")
    s.add_argument("--seed", type=int, default=0, help="seed of the random policy")
    s.add_argument("--sweep", default=None, help="comma-separated budgets: run gate/cascade/random/fixed at each")
    s.add_argument("--no-compare", action="store_true", help="skip the agreement check against PyTorch")
    s.add_argument("--json", action="store_true", help="print the report as JSON")
    s.add_argument(
        "--energy-model",
        default=",".join(ENERGY_MODELS),
        metavar="MODEL[,MODEL]",
        help="energy models to report, side by side: loihi (Loihi's measured per-op energies), 45nm-ops (45 nm "
        "arithmetic, no memory), memory (45 nm arithmetic plus every weight and state access, priced by memory "
        "size); --energy-table lists their constants and sources",
    )
    s.add_argument("--energy-table", action="store_true", help="print every energy constant with its source and exit")
    s.add_argument(
        "--report", default=None, help="folder for report.json and PNG plots (new, empty or an earlier report)"
    )
    s.add_argument("--quiet", action="store_true", help="no progress bars (they appear only on a terminal anyway)")
    _add_cluster_options(s)
    s.set_defaults(func=cmd_simulate)


def _add_run_nir(sub: Any) -> None:
    """run-nir: anyone's NIR graph on a simulator"""
    r = _command(sub, "run-nir", "run any NIR graph of LIF layers on reference, Brian2 or Lava")
    r.add_argument("graph", help="a .nir file (nir.write)")
    r.add_argument("--inputs", required=True, help=".npz with 'spikes' of shape (N, T, n_in)")
    r.add_argument("--backend", default="reference", choices=SIM_BACKENDS, help="simulator")
    r.add_argument("--mode", default="float", choices=MODES, help="float model or Loihi's fixed point")
    _add_brian2_target(r)
    _add_cluster_options(r)
    r.add_argument(
        "--dt",
        type=float,
        default=None,
        help="time step in seconds for NIR's continuous-time parameters (default: the graph's metadata, "
        "else the preset's, else 1)",
    )
    r.add_argument(
        "--preset",
        default=None,
        choices=list(PRESETS),
        help="the library that wrote the graph: sets dt, firing, reset and decay the way it simulates "
        "(see the README's table)",
    )
    r.add_argument(
        "--firing",
        default=None,
        choices=FIRINGS,
        help="gt: spike when v > threshold (Loihi, default); ge: when v >= threshold",
    )
    r.add_argument(
        "--reset",
        default=None,
        choices=RESETS,
        help="zero: v = 0 after a spike (Loihi, default); subtract: v -= threshold at once; "
        "subtract-next: threshold taken off at the next step (snnTorch); none: no reset (a reset-free neuron)",
    )
    r.add_argument(
        "--spikes",
        default=None,
        choices=SPIKES,
        help="single: at most one spike per neuron and step (Loihi, default); multi: floor(v / threshold) "
        "spikes where the neuron fires, the next layer receiving the count (sinabs' MultiSpike)",
    )
    r.add_argument(
        "--decay",
        default=None,
        choices=DECAYS,
        help="euler: dt/tau per step (default); exp: 1 - exp(-dt/tau), the exact decay",
    )
    r.add_argument(
        "--quantize",
        action="store_true",
        help="with --mode fixed: choose integer scales per layer (exact ratios kept when they exist) for a "
        "graph without fixed-point values, and report float-vs-fixed spike agreement",
    )
    r.add_argument("--out", default=None, help="write counts, counters and spike trains to this .npz")
    r.add_argument("--json", action="store_true", help="print the counters and timing as one JSON object")
    r.set_defaults(func=cmd_run_nir)


def _add_setup(sub: Any) -> None:
    """setup: the environment a backend needs"""
    u = _command(sub, "setup", "make an environment a backend needs (lava: Python 3.10 + lava-nc 0.10.0, no torch)")
    u.add_argument("what", choices=["lava"], help="which environment")
    u.add_argument(
        "--python", default=None, help="the Python 3.10 to use (default: SNE_LAVA_PYTHON, python3.10 on PATH, pyenv)"
    )
    u.add_argument("--env", default=None, help="where to make it (default: the user data folder, or SNE_LAVA_ENV)")
    u.add_argument("--force", action="store_true", help="rebuild it from scratch")
    u.set_defaults(func=cmd_setup)


def build_parser() -> argparse.ArgumentParser:
    from sne_deploy import __version__ as ver

    p = argparse.ArgumentParser(
        prog="sne-deploy",
        description="Train, export and run Spiking Neural Ensembles on Lava and Brian2.",
        epilog=ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"sne-deploy {ver}")
    sub = p.add_subparsers(dest="command", required=True)
    for add in (_add_train, _add_export, _add_simulate, _add_run_nir, _add_setup):
        add(sub)
    return p


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwinds the stack like Ctrl-C, so every ``finally`` (killing a
    Lava worker's process group, removing temporary folders and files) runs before exit."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _terminate(signum: int, _frame: object) -> None:
    raise Terminated(signum)


def main(argv: Optional[list[str]] = None) -> int:
    import signal

    args = build_parser().parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
    try:
        code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, where it is handled, not at interpreter exit
        return code
    except USER_ERRORS as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"sne-deploy: error: {msg}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `sne-deploy run-nir --json | head`: the reader left; end quietly, as cat does
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at interpreter exit
        return 128 + signal.SIGPIPE
    except KeyboardInterrupt:
        print("sne-deploy: interrupted", file=sys.stderr)
        return 130
    except Terminated as t:
        print(f"sne-deploy: terminated by {signal.Signals(t.signum).name}; stopped cleanly", file=sys.stderr)
        return 128 + t.signum


if __name__ == "__main__":
    sys.exit(main())
