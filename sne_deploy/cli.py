"""``sne-deploy``: train, export, simulate, run-nir. Bad input gives one line on stderr and exit 2."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable, Optional

USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, FileNotFoundError, PermissionError, IsADirectoryError)


def _user_errors() -> tuple[type[BaseException], ...]:
    from simulators.lava_backend import BackendUnavailable, WorkerError

    return USER_ERRORS + (BackendUnavailable, WorkerError)


def cmd_train(a: argparse.Namespace) -> int:
    import torch

    from . import checkpoint
    from .report import format_train_summary
    from .train import TrainConfig, train

    torch.set_num_threads(max(1, torch.get_num_threads()))
    out = Path(a.out)
    if out.exists() and out.is_dir():
        raise ValueError(f"--out {out} is a directory; give a file name such as model.pt")
    cfg = TrainConfig(data=a.data, data_dir=a.data_dir, members=a.members, partition=a.partition, tna=a.tna,
                      spike_reg=a.spike_reg, logit_reg=a.logit_reg, epochs=a.epochs, seed=a.seed, teacher=a.teacher,
                      teacher_epochs=a.teacher_epochs, steps=a.steps, hidden=a.hidden, limit_train=a.limit_train)
    model = train(cfg, progress=not a.quiet)
    checkpoint.save(model, out)
    summary_path = out.with_suffix(".summary.json")
    summary_path.write_text(json.dumps(checkpoint._plain(model.summary), indent=2))
    print(format_train_summary(model.summary))
    print(f"saved {out} and {summary_path}")
    return 0


def cmd_run_nir(a: argparse.Namespace) -> int:
    import numpy as np

    import simulators

    path = Path(a.inputs)
    if not path.is_file():
        raise FileNotFoundError(f"inputs file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            if "spikes" not in z:
                raise ValueError(f"{path} has no array 'spikes' (expected shape (N, T, n_in))")
            spikes = z["spikes"]
    except (OSError, EOFError) as e:  # np.load's errors on a foreign file are ValueError/OSError
        raise ValueError(f"cannot read {path} as .npz: {e}") from None
    net = simulators.from_nir(a.graph, dt=a.dt)
    res = simulators.run(net, spikes, backend=a.backend, mode=a.mode, record=a.out is not None)
    summary = res.summary()
    if a.out:
        arrays = {"output_counts": res.output_counts, "layer_spikes": res.layer_spikes,
                  "synaptic_events": res.synaptic_events, "neuron_updates": res.neuron_updates}
        for i, t in enumerate(res.trains or []):
            arrays[f"train_layer{i}"] = t
        _atomic_savez(Path(a.out), arrays)
    if a.json:
        print(json.dumps(summary))
    else:
        for k, v in summary.items():
            print(f"{k:28s} {v}")
    return 0


def _atomic_savez(path: Path, arrays: dict) -> None:
    import os
    import tempfile

    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=path.parent)
    os.close(fd)
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _not_yet(name: str) -> Callable[[argparse.Namespace], int]:
    def run(a: argparse.Namespace) -> int:
        raise ValueError(f"'{name}' is not yet available in this version")

    return run


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sne-deploy", description="Train, export and run Spiking Neural Ensembles on Lava and Brian2.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train teacher, K ternary student SNNs, head and gate")
    t.add_argument("--data", default="digits", choices=["digits", "fashion-mnist", "cifar10"])
    t.add_argument("--data-dir", default=None, help="folder with the dataset files (fashion-mnist: Debian's by default)")
    t.add_argument("--members", type=int, default=4, help="K, the number of student SNNs")
    t.add_argument("--partition", default="informed", choices=["informed", "contiguous", "random"])
    t.add_argument("--tna", type=float, default=0.0, metavar="LAMBDA", help="Twin Network Augmentation weight (0 = off)")
    t.add_argument("--spike-reg", type=float, default=0.0, help="penalty on spike counts")
    t.add_argument("--logit-reg", type=float, default=0.0, help="penalty on output magnitude")
    t.add_argument("--epochs", type=int, default=30, help="student epochs")
    t.add_argument("--teacher-epochs", type=int, default=None)
    t.add_argument("--teacher", default=None, help="mlp, cnn, or a TorchScript file with features() and head()")
    t.add_argument("--steps", type=int, default=None, help="time steps T per sample")
    t.add_argument("--hidden", type=int, default=None, help="hidden neurons per student")
    t.add_argument("--limit-train", type=int, default=None, help="use only the first N training samples")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", default="model.pt")
    t.add_argument("--quiet", action="store_true", help="no progress bars")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("export", help="write a deployment bundle (NIR members, ONNX gate/head, manifest)")
    e.set_defaults(func=_not_yet("export"))
    s = sub.add_parser("simulate", help="run a bundle with the gate and a budget on a backend")
    s.set_defaults(func=_not_yet("simulate"))

    r = sub.add_parser("run-nir", help="run any NIR graph of LIF layers on reference, Brian2 or Lava")
    r.add_argument("graph", help="a .nir file (nir.write)")
    r.add_argument("--inputs", required=True, help=".npz with 'spikes' of shape (N, T, n_in)")
    r.add_argument("--backend", default="reference", choices=["reference", "brian2", "lava"])
    r.add_argument("--mode", default="float", choices=["float", "fixed"])
    r.add_argument("--dt", type=float, default=None, help="time step for NIR's continuous parameters (default: graph metadata or 1)")
    r.add_argument("--out", default=None, help="write counts, counters and spike trains to this .npz")
    r.add_argument("--json", action="store_true", help="print the counters and timing as one JSON object")
    r.set_defaults(func=cmd_run_nir)
    return p


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except _user_errors() as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"sne-deploy: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sne-deploy: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
