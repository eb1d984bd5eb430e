"""The Lava worker: runs inside the Lava environment (Python 3.10, lava-nc 0.10.0, no torch).

    python -m simulators.lava_worker JOB.npz OUT_DIR

JOB.npz holds the network (``Network.to_arrays``), ``spikes`` (N, T, n_in) and ``mode``. All N
samples run in one long Lava run: the input is one RingBuffer of N*T steps; each layer is
Dense -> LIFReset with ``reset_interval = T``. Dense delays its output by one step, so layer l
(0-based) sees input step k at Lava time step k + 2 + l; its ``reset_offset`` is (2 + l) mod T,
which zeroes u and v exactly when a new sample reaches it. A SpikeRecorder per layer keeps that
layer's spikes and writes ``layer<l>.npy`` itself at the last step. ``stop()`` always runs, or
Lava hangs at interpreter exit.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from simulators.network import GraphError, Network


def build_and_run(network: Network, spikes: np.ndarray, mode: str, out_dir: Path, record: bool = True) -> dict:
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIFReset

    from simulators.lava_procs.recorder import SpikeRecorder

    t0 = time.perf_counter()
    n, steps, n_in = spikes.shape
    n_layers = len(network.layers)
    total = n * steps + n_layers + 1
    data = np.zeros((n_in, total), dtype=np.int32)
    data[:, : n * steps] = spikes.reshape(n * steps, n_in).T
    source = RingBuffer(data=data)
    prev_port = source.s_out
    procs = [source]
    for li, layer in enumerate(network.layers):
        if not layer.spiking:
            raise GraphError(f"layer '{layer.name}': non-spiking (LI) layers are not supported on the Lava backend")
        offset = (2 + li) % steps
        if mode == "fixed":
            f = layer.fixed.params
            vth = np.unique(np.asarray(f.vth))
            if vth.size != 1:
                raise GraphError(f"layer '{layer.name}': Lava's LIF takes one threshold per population, got {vth.size}")
            dense = Dense(weights=layer.fixed.weight.astype(np.int32), num_message_bits=0)
            lif = LIFReset(shape=(layer.n_out,), du=int(f.du_fx), dv=int(f.dv_fx), vth=int(vth[0]),
                           bias_mant=np.broadcast_to(np.asarray(f.bias_mant), (layer.n_out,)).astype(np.int32),
                           bias_exp=int(f.bias_exp), reset_interval=steps, reset_offset=offset)
        else:
            p = layer.params
            vth = np.unique(np.asarray(p.vth))
            if vth.size != 1:
                raise GraphError(f"layer '{layer.name}': Lava's LIF takes one threshold per population, got {vth.size}")
            dense = Dense(weights=layer.weight.astype(np.float64), num_message_bits=0)
            lif = LIFReset(shape=(layer.n_out,), du=float(p.du), dv=float(p.dv), vth=float(vth[0]),
                           bias_mant=np.asarray(p.bias, dtype=np.float64), bias_exp=0,
                           reset_interval=steps, reset_offset=offset)
        prev_port.connect(dense.s_in)
        dense.a_out.connect(lif.a_in)
        prev_port = lif.s_out
        procs += [dense, lif]
        if record:  # without recorders: Lava's raw step rate, for the benchmark
            rec = SpikeRecorder(shape=(layer.n_out,), first=2 + li, length=n * steps, last=total,
                                path=str(out_dir / f"layer{li}.npy"))
            lif.s_out.connect(rec.s_in)
            procs.append(rec)
    t_build = time.perf_counter() - t0
    cfg = Loihi2SimCfg(select_tag="fixed_pt" if mode == "fixed" else "floating_pt")
    t1 = time.perf_counter()
    try:
        source.run(condition=RunSteps(num_steps=total), run_cfg=cfg)
    finally:
        source.stop()
    t_run = time.perf_counter() - t1
    return {"build_s": t_build, "run_s": t_run, "lava_steps": total, "steps_per_s": total / t_run}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m simulators.lava_worker JOB.npz OUT_DIR", file=sys.stderr)
        return 2
    job, out_dir = Path(argv[0]), Path(argv[1])
    try:
        with np.load(job, allow_pickle=False) as a:
            network = Network.from_arrays(a)
            spikes = np.asarray(a["spikes"], dtype=bool)
            mode = str(a["mode"])
            variant = str(a["variant"]) if "variant" in a else "recorded"
        if variant == "naive":  # the baseline: a new network and a new run for every sample
            t0 = time.perf_counter()
            for i in range(len(spikes)):
                build_and_run(network, spikes[i : i + 1], mode, out_dir)
            info = {"build_s": 0.0, "run_s": time.perf_counter() - t0, "variant": variant}
        else:
            info = build_and_run(network, spikes, mode, out_dir, record=variant == "recorded")
    except GraphError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    (out_dir / "info.json").write_text(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
