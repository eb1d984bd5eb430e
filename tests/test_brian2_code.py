"""Brian2's statements (simulators/brian2_code.py) checked without Brian2: a few lines of numpy run
them in the backend's order and must give the reference's spikes exactly, float and fixed point,
for every firing/reset convention and a current bias."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from sne_deploy.simulators.brian2_code import LayerCode, layer_code
from sne_deploy.simulators.fixed_point import quantize_network
from sne_deploy.simulators.loop import run_loop
from sne_deploy.simulators.network import Network, make_layer
from sne_deploy.simulators.neuron import Dynamics
from sne_deploy.simulators.random_nets import random_spikes

# Brian2's functions as numpy: int() of a condition is 0 or 1
FUNCTIONS = {
    "sign": np.sign,
    "floor": np.floor,
    "abs": np.abs,
    "clip": np.clip,
    "int": lambda c: np.asarray(c, dtype=np.float64),
}


def _execute(statements: str, state: dict, where=None) -> None:
    """Brian2's abstract code, one assignment per line; ``where``: only those neurons (a reset)."""
    for line in filter(None, (ln.strip() for ln in statements.splitlines())):
        var, expr = (part.strip() for part in line.split("=", 1))
        value = np.broadcast_to(eval(expr, {"__builtins__": {}}, {**FUNCTIONS, **state}), state[var].shape)
        state[var] = np.where(where, value, state[var]) if where is not None else value.astype(np.float64)


def _run(code: LayerCode, spikes: np.ndarray) -> np.ndarray:
    """The backend's schedule for one layer: decay u, synaptic input, update v, threshold, reset."""
    n, steps, _ = spikes.shape
    size = code.weight.shape[0]
    zeros = np.zeros((n, size))
    state = dict(
        u=zeros,
        v=zeros,
        count=zeros,
        over=zeros,
        wrapped=zeros,
        sprev=zeros,
        fresh=zeros,
        nspk=zeros,
        vth=code.vth,
        bias=code.bias,
        mu=code.mu,
        mv=code.mv,
        ibias=np.zeros(size) if code.ibias is None else code.ibias,
    )
    out = np.zeros((n, steps, size), np.int64)
    for t in range(steps):
        _execute(code.decay_u, state)
        state["u"] = state["u"] + spikes[:, t].astype(np.float64) @ code.weight.T
        _execute(code.update_v, state)
        fired = eval(code.threshold, {"__builtins__": {}}, state)
        out[:, t] = np.rint(state["nspk"]) * fired if code.multi else fired  # an event is nspk spikes
        _execute(code.reset, state, fired)
    return out


def _layer_net(dyn: Dynamics, ibias: bool) -> Network:
    rng = np.random.default_rng(3)
    w = rng.integers(-2, 3, (7, 10)).astype(np.float64) / 2
    layer = make_layer("l", w, 0.5, 0.25, 1.5, 0.125, ibias=0.25 if ibias else None)
    return Network((layer,), dynamics=dyn)


@pytest.mark.parametrize(
    "dyn",
    [
        Dynamics(),
        Dynamics("ge", "subtract"),
        Dynamics("gt", "subtract-next"),
        Dynamics("gt", "none"),
        Dynamics("ge", "subtract", spikes="multi"),
        Dynamics("gt", "subtract-next", spikes="multi"),
        Dynamics("ge", "zero", spikes="multi"),
    ],
    ids=["loihi", "ge-subtract", "subtract-next", "reset-none", "multi-subtract", "multi-subtract-next", "multi-zero"],
)
@pytest.mark.parametrize("ibias", [False, True], ids=["no-ibias", "ibias"])
@pytest.mark.parametrize("mode", ["float", "fixed"])
def test_layer_code_gives_the_reference_spikes(dyn, ibias, mode):
    net = _layer_net(dyn, ibias)
    if mode == "fixed":
        net, report = quantize_network(net)
        assert all(r.exact for r in report)
    x = random_spikes(16, 25, net.n_in, rate=0.4, seed=1)
    ref = run_loop(net, x, mode, record=True).trains[0]
    assert ref.any() and not ref.all()
    np.testing.assert_array_equal(_run(layer_code(net.layers[0], mode, dyn), x), ref)


def test_layer_code_needs_no_brian2():
    code = "import sys, sne_deploy.simulators.brian2_code; print('brian2' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
        == "False"
    )


def test_runs_of_nearby_sample_counts_share_one_input_table_shape():
    """Brian2 writes a TimedArray's shape into its compiled code, so each new shape compiles two
    modules (~4 s here): every run of 33 to 48 samples must share one shape, each a cascade round's
    sample count, with the inputs where the batch layout puts them and the padding silent."""
    from sne_deploy.simulators.batching import unbatch_steps
    from sne_deploy.simulators.brian2_backend import _input_table, _run_steps

    shapes = set()
    for n in range(33, 49):
        x = random_spikes(n, 4, 10, seed=n)
        table = _input_table(x, n)
        rows, cols = _run_steps(n, 4, n) - 1, n * 10
        np.testing.assert_array_equal(unbatch_steps(table[:rows, :cols], n, 4, n, 10), x)
        assert not table[rows:].any() and not table[:, cols:].any()
        shapes.add(table.shape)
    assert shapes == {(16, 480)}  # 4 steps + 1 -> 16 rows (the least), 48 copies of 10 inputs
