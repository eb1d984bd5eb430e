"""Spyx networks for the interop tests, run by the Spyx environment's Python (``.venv-spyx``:
Spyx 1.0.0 on JAX, kept out of the main environment as sinabs is).

    .venv-spyx/bin/python tests/spyx_nets.py OUT_DIR [--samples N]

Builds the networks a Spyx user writes (``flax.nnx`` layers and Spyx neurons, as its tutorials
do): IF, LIF and CuBaLIF MLPs, a conv net with SumPool (channels-last, as JAX convolves), and a
reset-free ``PSU_LIF`` layer. Each is simulated step by step as ``spyx.nn.Sequential`` does,
exported with ``spyx.nir.to_nir`` unpatched, and written as ``<name>.nir`` plus ``<name>.npz``
(``spikes`` (N, T, n_in) in channels-first order, ``layer<i>`` (N, T, n_i) spikes per neuron layer,
channels-first too). Integer weights and dyadic decays keep Spyx's float32 arithmetic exact, so a
simulator that follows its conventions must give identical trains. Prints the names it wrote.
``timings.json`` holds, per network, Spyx's own jitted run (``nnx.jit`` of ``spyx.nn.run``, the
``jax.lax.scan`` a Spyx user runs) over the same N samples: the first call (with compilation) and
the median of three further calls (``benchmarks/interop.py`` sets N = 1,000 for its speed table).
"""

import json
import sys
import time
from pathlib import Path

import jax.numpy as jnp
import nir
import numpy as np
from flax import nnx
from spyx import nn as snn
from spyx.nir import to_nir

N, T = 32, 30  # N: --samples
NEURONS = (snn.IF, snn.LIF, snn.CuBaLIF, snn.PSU_LIF, snn.RIF, snn.RLIF)


def _ints(rng, shape, lo=-2, hi=4):
    return jnp.asarray(rng.integers(lo, hi, size=shape).astype(np.float32))


def _linear(rng, n_in, n_out, bias=False):
    layer = nnx.Linear(n_in, n_out, use_bias=bias, rngs=nnx.Rngs(0))
    layer.kernel[...] = _ints(rng, (n_in, n_out))
    if bias:
        layer.bias[...] = jnp.asarray(rng.integers(0, 2, size=n_out).astype(np.float32) * 0.5)
    return layer


def _recurrent(rng, layer):
    n = layer.hidden_shape[0]
    layer.recurrent_w[...] = _ints(rng, (n, n), -1, 2)  # integer loop weights, as the feed-forward ones
    return layer


def mlp(rng, kind, bias=False):
    neuron = {
        "IF": lambda n: snn.IF((n,), threshold=2.0, rngs=nnx.Rngs(0)),
        "LIF": lambda n: snn.LIF((n,), beta=0.75, threshold=2.0, rngs=nnx.Rngs(0)),
        # Spyx's default: a learnable beta per neuron (float32, truncated normal around 0.5)
        "LIF_per_neuron": lambda n: snn.LIF((n,), threshold=2.0, rngs=nnx.Rngs(n)),
        "CuBaLIF": lambda n: snn.CuBaLIF((n,), alpha=0.5, beta=0.75, threshold=2.0, rngs=nnx.Rngs(0)),
        "PSU_LIF": lambda n: snn.PSU_LIF((n,), beta=0.5, threshold=3.0, rngs=nnx.Rngs(0)),
        "RIF": lambda n: _recurrent(rng, snn.RIF((n,), threshold=2.0, rngs=nnx.Rngs(0))),
        "RLIF": lambda n: _recurrent(rng, snn.RLIF((n,), beta=0.75, threshold=2.0, rngs=nnx.Rngs(0))),
    }
    # a reset-free or recurrent layer, then a plain one
    second = {"PSU_LIF": "LIF", "RIF": "IF", "RLIF": "LIF"}.get(kind, kind)
    layers = [_linear(rng, 12, 20, bias), neuron[kind](20), _linear(rng, 20, 8, bias), neuron[second](8)]
    x = rng.random((N, T, 12)) < 0.4
    return snn.Sequential(*layers), x, x, {"input": np.array([12])}, {"output": np.array([8])}


def conv(rng):
    """(H, W, C) = (8, 8, 2) frames -> Conv 3x3, 4 channels, SAME -> IF -> SumPool 2x2 -> Flatten
    -> Linear -> IF."""
    # with a (zero) bias: nir.write cannot store the None that to_nir writes for a bias-free Conv
    c = nnx.Conv(2, 4, kernel_size=(3, 3), padding="SAME", use_bias=True, rngs=nnx.Rngs(0))
    c.kernel[...] = _ints(rng, (3, 3, 2, 4), -1, 3)
    c.bias[...] = jnp.zeros(4)
    layers = [
        c,
        snn.IF((8, 8, 4), threshold=2.0, rngs=nnx.Rngs(0)),
        snn.SumPool(window_shape=(2, 2), strides=(2, 2), padding="VALID"),
        snn.Flatten(),
        _linear(rng, 4 * 4 * 4, 6),
        snn.IF((6,), threshold=3.0, rngs=nnx.Rngs(0)),
    ]
    x_hwc = rng.random((N, T, 8, 8, 2)) < 0.3
    x_chw = x_hwc.transpose(0, 1, 4, 2, 3).reshape(N, T, -1)  # what run-nir takes: channels-first, flat
    return snn.Sequential(*layers), x_hwc, x_chw, {"input": np.array([2, 8, 8])}, {"output": np.array([6])}


def simulate(model, x):
    """Spyx's own step (``Sequential.__call__``), recording every neuron layer's spikes."""
    state = model.initial_state(x.shape[0])
    trains = [[] for layer in model.layers if isinstance(layer, NEURONS)]
    for t in range(x.shape[1]):
        h, k = jnp.asarray(x[:, t], dtype=jnp.float32), 0
        new = []
        for layer, s in zip(model.layers, state):
            if s is not None:
                h, s = layer(h, s)
                if isinstance(layer, NEURONS):
                    trains[k].append(np.asarray(h))
                    k += 1
            else:
                h = layer(h)
            new.append(s)
        state = new
    out = []
    for tr in trains:
        a = np.stack(tr, axis=1)
        if a.ndim == 5:  # (N, T, H, W, C) -> channels-first, flat
            a = a.transpose(0, 1, 4, 2, 3).reshape(a.shape[0], a.shape[1], -1)
        out.append(a.astype(bool))
    return out


def jitted_seconds(model, x) -> dict:
    """Spyx's own jitted simulation of ``x`` (N, T, ...): first call, then the median of three."""
    run = nnx.jit(lambda m, xs: snn.run(m, xs, batch_major=True)[0])
    xs = jnp.asarray(x, dtype=jnp.float32)
    t0 = time.perf_counter()
    run(model, xs).block_until_ready()
    first = time.perf_counter() - t0
    again = []
    for _ in range(3):
        t0 = time.perf_counter()
        run(model, xs).block_until_ready()
        again.append(time.perf_counter() - t0)
    return {"first_call_s": first, "run_s": sorted(again)[1]}


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    nets = {f"{k.lower()}_mlp": mlp(rng, k) for k in ("IF", "LIF", "CuBaLIF", "PSU_LIF")}
    nets["lif_mlp_bias"] = mlp(rng, "LIF", bias=True)
    nets["lif_mlp_per_neuron"] = mlp(rng, "LIF_per_neuron", bias=True)
    nets["rif_mlp"] = mlp(rng, "RIF")
    nets["rlif_mlp"] = mlp(rng, "RLIF", bias=True)
    nets["if_conv"] = conv(rng)
    timings = {}
    for name, (model, x_spyx, x_ours, inp, outp) in nets.items():
        trains = simulate(model, x_spyx)
        assert all(t.any() for t in trains), f"{name}: a layer never spiked"
        nir.write(str(out / f"{name}.nir"), to_nir(model, inp, outp))
        np.savez(out / f"{name}.npz", spikes=x_ours, **{f"layer{i}": t for i, t in enumerate(trains)})
        timings[name] = jitted_seconds(model, x_spyx)
        print(name)
    (out / "timings.json").write_text(json.dumps({"samples": N, "steps": T, "nets": timings}))


if __name__ == "__main__":
    if "--samples" in sys.argv:
        N = int(sys.argv[sys.argv.index("--samples") + 1])
    main(Path(sys.argv[1]))
