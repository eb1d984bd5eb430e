"""simulators/: the contract, NIR import, and spike-exact agreement of every backend."""

from __future__ import annotations

import subprocess
import sys

import nir
import numpy as np
import pytest

from sne_deploy.simulators import GraphError, from_nir, run, to_nir
from sne_deploy.simulators.network import FixedLayer, Network, make_layer
from sne_deploy.simulators.neuron import Dynamics, LIFFixedParams, LIFState, lif_step_fixed
from sne_deploy.simulators.random_nets import random_spikes, random_ternary_network

CASES = [  # (sizes, seed, du, dv, bias)
    ((12, 7), 0, 1.0, 0.25, False),
    ((16, 20, 5), 1, 1.0, 0.125, True),
    ((10, 24, 16, 6), 2, 0.5, 0.0625, False),
    ((8, 30, 4), 3, 0.25, 0.5, True),
]


def _case(case, n):
    """The network and n input samples of one CASES entry."""
    sizes, seed, du, dv, bias = case
    net = random_ternary_network(sizes, seed=seed, du=du, dv=dv, with_bias=bias)
    return net, random_spikes(n, 12, sizes[0], seed=seed)


def _assert_same(a, b):
    assert a.trains is not None and b.trains is not None
    for la, lb in zip(a.trains, b.trains):
        mism = int((la != lb).sum())
        assert mism == 0, f"{mism} spike mismatches between {a.backend} and {b.backend}"
    assert a.layer_spikes.sum() > 0, "test network never spiked: the comparison would prove nothing"


def test_fixed_step_matches_lava_formulas_by_hand():
    # one neuron, du_fx = 4095 (du = 1), dv_fx = 1024 (dv = 0.25), vth = 3 -> spike if v > 192
    p = LIFFixedParams(4095, 1024, np.array([3]), np.array([0]), 0)
    st = LIFState(np.zeros(1, np.int64), np.zeros(1, np.int64))
    st, s = lif_step_fixed(st, np.array([2]), p)  # u = 2<<6 = 128, v = 128
    assert st.u[0] == 128 and st.v[0] == 128 and not s[0]
    st, s = lif_step_fixed(st, np.array([2]), p)  # v = (128*3072)>>12 + 128 = 96 + 128 = 224 > 192
    assert s[0] and st.v[0] == 0
    st, s = lif_step_fixed(LIFState(np.array([0]), np.array([-101])), np.array([0]), p)
    assert st.v[0] == -75  # -(101*3072 >> 12) = -75: truncation toward zero, not floor (-76)


def _overflowing_layer(sign: int, du_fx: int):  # type: ignore[no-untyped-def]
    """Four inputs at the largest weight into one neuron that never fires: v saturates (sign -1,
    du = 1) or u wraps (sign +1, du_fx = 0: u keeps everything) within a few hundred steps."""
    w = np.full((1, 4), 254 * sign, np.int64)
    return make_layer(
        "big",
        w / 2.0,
        1.0,
        0.0,
        1e9,
        fixed=FixedLayer(w, LIFFixedParams(du_fx, 0, np.array([131071]), np.array([0]), 0)),
    )


@pytest.mark.parametrize("sign, du_fx", [(-1, 4095), (1, 0)])  # v saturating low; u wrapping high
def test_fixed_overflow_is_reported(sign, du_fx):
    layer = _overflowing_layer(sign, du_fx)
    res = run(Network((layer,)), np.ones((1, 400, 4), bool), mode="fixed")
    assert res.overflow[0] > 0
    quiet = run(Network((layer,)), np.ones((1, 3, 4), bool), mode="fixed")
    assert quiet.overflow == (0,)


@pytest.mark.parametrize("backend", ["brian2", "lava"])
@pytest.mark.parametrize("sign, du_fx", [(-1, 4095), (1, 0)])
def test_every_backend_reports_the_same_overflow_counter(request, backend, sign, du_fx):
    request.getfixturevalue(f"{backend}_ready")
    layer = _overflowing_layer(sign, du_fx)
    x = np.ones((3, 200, 4), bool)
    x[1, 100:] = False
    ref = run(Network((layer,)), x, mode="fixed")
    other = run(Network((layer,)), x, backend, mode="fixed")
    assert ref.overflow[0] > 0
    assert other.overflow == ref.overflow


@pytest.mark.parametrize("bad, msg", [(255, "8-bit"), (3, "odd"), (-300, "8-bit")])
def test_weights_off_the_lava_grid_are_refused(bad, msg):
    net = random_ternary_network((6, 3), seed=0)
    layer = net.layers[0]
    w = layer.fixed.weight.copy()
    w[0, 0] = bad
    net2 = Network((make_layer("l", layer.weight, 1.0, 0.25, 1.0, fixed=FixedLayer(w, layer.fixed.params)),))
    with pytest.raises(GraphError, match=msg):
        run(net2, random_spikes(2, 4, 6), mode="fixed")


@pytest.mark.parametrize("mode", ["float", "fixed"])
@pytest.mark.parametrize("case", CASES)
def test_nir_round_trip_is_exact(tmp_path, case, mode):
    net, x = _case(case, 20)
    path = tmp_path / "net.nir"
    nir.write(str(path), to_nir(net))
    back = from_nir(path)
    a, b = run(net, x, mode=mode, record=True), run(back, x, mode=mode, record=True)
    _assert_same(a, b)


@pytest.mark.brian2
@pytest.mark.parametrize("target", ["cython", "cpp_standalone"])
@pytest.mark.parametrize("mode", ["float", "fixed"])
@pytest.mark.parametrize("case", CASES)
def test_brian2_is_spike_exact(brian2_ready, case, mode, target):
    net, x = _case(case, 37)
    ref = run(net, x, "reference", mode, record=True)
    b2 = run(net, x, "brian2", mode, record=True, batch=8, target=target)  # several batches, a padded last one
    assert b2.details["target"] == target, b2.details.get("fallback")
    _assert_same(ref, b2)
    assert all(np.array_equal(a, b) for a, b in zip(ref.layer_counts, b2.layer_counts))  # the counters, too
    assert np.array_equal(ref.synaptic_events, b2.synaptic_events)


@pytest.mark.brian2
def test_brian2_numpy_target_is_spike_exact(brian2_ready):
    net, x = _case(CASES[1], 9)
    for mode in ("float", "fixed"):
        _assert_same(
            run(net, x, "reference", mode, record=True), run(net, x, "brian2", mode, record=True, target="numpy")
        )


@pytest.mark.brian2
def test_brian2_standalone_reuses_its_program_for_new_weights_and_inputs(brian2_ready):
    """One C++ program per shape: a second network of the same shape, with other weights and other
    inputs, must run in the same project and still be exact (no stale weights, no stale inputs)."""
    sizes = (16, 20, 5)
    projects = set()
    for seed in (11, 12):
        net = random_ternary_network(sizes, seed=seed, du=0.5, dv=0.125, with_bias=True)
        x = random_spikes(21, 12, sizes[0], seed=seed)
        ref = run(net, x, "reference", "fixed")
        got = run(net, x, "brian2", "fixed", target="cpp_standalone", batch=4)
        assert all(np.array_equal(a, b) for a, b in zip(ref.layer_counts, got.layer_counts)), seed
        assert ref.layer_spikes.sum() > 0
        projects.add(got.details["project"])
    assert len(projects) == 1


def test_unknown_brian2_target_is_a_clear_error():
    from sne_deploy.simulators.brian2_backend import Brian2Error

    with pytest.raises(Brian2Error, match="unknown Brian2 target"):
        run(random_ternary_network((5, 3)), np.zeros((2, 4, 5), bool), "brian2", target="gpu")


@pytest.mark.lava
@pytest.mark.parametrize("mode", ["float", "fixed"])
@pytest.mark.parametrize("case", CASES)
def test_lava_is_spike_exact(lava_ready, case, mode):
    net, x = _case(case, 9)
    lava = run(net, x, "lava", mode, record=True, batch=4)  # copies side by side, a padded last batch
    assert lava.details["batch"] == 4
    _assert_same(run(net, x, "reference", mode, record=True), lava)


def _snntorch_style_graph(dt: float) -> nir.NIRGraph:
    """Affine + LIF with snnTorch's parametrisation (tau = dt/(1-beta), r = tau/dt), written by nir itself."""
    rng = np.random.default_rng(5)
    beta = 0.75
    tau = np.full(6, dt / (1 - beta))
    w1 = rng.choice([-1.0, 0.0, 1.0], size=(6, 10))
    w2 = rng.choice([-1.0, 0.0, 1.0], size=(3, 6))
    sub = nir.NIRGraph.from_list(
        nir.Affine(weight=w2, bias=np.zeros(3)),
        nir.LIF(tau=tau[:3], r=tau[:3] / dt, v_leak=np.zeros(3), v_threshold=np.ones(3)),
    )
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([10])}),
            "fc1": nir.Affine(weight=w1, bias=np.zeros(6)),
            "lif1": nir.LIF(tau=tau, r=tau / dt, v_leak=np.zeros(6), v_threshold=np.full(6, 1.5)),
            "block": sub,
            "output": nir.Output(output_type={"output": np.array([3])}),
        },
        edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "block"), ("block", "output")],
    )


def test_third_party_graph_maps_as_documented(tmp_path):
    dt = 1e-4
    nir.write(str(tmp_path / "g.nir"), _snntorch_style_graph(dt))
    net = from_nir(tmp_path / "g.nir", dt=dt)
    assert [l.n_out for l in net.layers] == [6, 3]
    assert net.layers[0].params.du == 1.0 and net.layers[0].params.dv == 0.25
    assert set(np.unique(net.layers[0].weight)) <= {-1.0, 0.0, 1.0}  # r*dt/tau == 1 exactly after snapping


@pytest.mark.parametrize("backend", ["reference", "brian2", "lava"])
def test_third_party_graph_runs_on_every_backend(request, backend):
    if backend != "reference":
        request.getfixturevalue(f"{backend}_ready")
    from sne_deploy.simulators.fixed_point import quantize_layer

    net = from_nir(_snntorch_style_graph(1e-4), dt=1e-4)
    x = random_spikes(6, 10, 10, rate=0.5, seed=3)
    ref = run(net, x, "reference", "float", record=True)
    _assert_same(ref, run(net, x, backend, "float", record=True))
    qnet = Network(tuple(quantize_layer(l) for l in net.layers))
    _assert_same(run(qnet, x, "reference", "fixed", record=True), run(qnet, x, backend, "fixed", record=True))


def _graph(nodes, edges):
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def test_bad_graphs_give_clear_errors():
    inp = nir.Input(input_type={"input": np.array([4])})
    out = nir.Output(output_type={"output": np.array([2])})
    aff = nir.Affine(weight=np.ones((2, 4)), bias=np.zeros(2))
    lif = nir.LIF(tau=np.ones(2) * 4, r=np.ones(2) * 4, v_leak=np.zeros(2), v_threshold=np.ones(2))
    reset = nir.LIF(
        tau=np.ones(2) * 4, r=np.ones(2) * 4, v_leak=np.zeros(2), v_threshold=np.ones(2), v_reset=np.ones(2)
    )
    with pytest.raises(GraphError, match="v_reset"):
        from_nir(
            _graph(
                {"input": inp, "fc": aff, "lif": reset, "output": out},
                [("input", "fc"), ("fc", "lif"), ("lif", "output")],
            )
        )
    with pytest.raises(GraphError, match="recurrent"):
        from_nir(
            _graph(
                {"input": inp, "fc": aff, "lif": lif, "output": out},
                [("input", "fc"), ("fc", "lif"), ("lif", "fc"), ("lif", "output")],
            )
        )
    with pytest.raises(GraphError, match="not supported"):
        from_nir(
            _graph(
                {"input": inp, "fc": aff, "th": nir.Delay(delay=np.ones(2)), "output": out},
                [("input", "fc"), ("fc", "th"), ("th", "output")],
            )
        )
    with pytest.raises(GraphError, match="no Affine"):
        from_nir(_graph({"input": inp, "lif": lif, "output": out}, [("input", "lif"), ("lif", "output")]))


def test_bad_inputs_give_clear_errors(tmp_path):
    net = random_ternary_network((5, 3))
    with pytest.raises(GraphError, match="shape"):
        run(net, np.zeros((4, 5), bool))
    with pytest.raises(GraphError, match="input channels"):
        run(net, np.zeros((2, 4, 6), bool))
    for bad in (np.full((2, 4, 5), np.nan), np.full((2, 4, 5), -1), np.full((2, 4, 5), 0.5)):
        with pytest.raises(GraphError, match="non-negative integer event counts"):
            run(net, bad)
    with pytest.raises(GraphError, match="mode"):
        run(net, np.zeros((2, 4, 5), bool), mode="double")
    with pytest.raises(GraphError, match="unknown backend"):
        run(net, np.zeros((2, 4, 5), bool), backend="loihi3")
    (tmp_path / "junk.nir").write_bytes(b"not hdf5")
    with pytest.raises(GraphError, match="cannot read"):
        from_nir(tmp_path / "junk.nir")


def test_energy_counters_by_construction():
    # 2 inputs -> 3 neurons; input 0 has 2 non-zero synapses, input 1 has 1.
    w = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    net = Network((make_layer("l", w, 1.0, 0.0, 100.0),))
    x = np.zeros((2, 5, 2), bool)
    x[0, :3, 0] = True  # 3 spikes x fan-out 2
    x[1, :, 1] = True  # 5 spikes x fan-out 1
    res = run(net, x)
    assert res.synaptic_events[:, 0].tolist() == [6, 5]
    assert res.neuron_updates[:, 0].tolist() == [15, 15]
    assert res.layer_spikes.sum() == 0


def test_simulators_import_without_torch():
    code = (
        "import sys, sne_deploy.simulators, sne_deploy.simulators.reference, sne_deploy.simulators.nir_io, sne_deploy.simulators.lava_backend;"
        "assert 'torch' not in sys.modules and 'brian2' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_run_nir_cli_json_and_errors(tmp_path, brian2_ready):
    import json

    net = random_ternary_network((10, 12, 4), seed=4, with_bias=True)
    nir.write(str(tmp_path / "g.nir"), to_nir(net))
    x = random_spikes(7, 6, 10, seed=2)
    np.savez(tmp_path / "x.npz", spikes=x)
    cli = [sys.executable, "-m", "sne_deploy.cli", "run-nir", str(tmp_path / "g.nir")]
    r = subprocess.run(
        cli + ["--inputs", str(tmp_path / "x.npz"), "--mode", "fixed", "--json", "--out", str(tmp_path / "r.npz")],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    ref = run(net, x, mode="fixed")
    assert summary["samples"] == 7 and summary["spikes_per_sample"] == ref.layer_spikes.sum() / 7
    with np.load(tmp_path / "r.npz") as z:
        assert np.array_equal(z["output_counts"], ref.output_counts)
    r = subprocess.run(
        cli
        + [
            "--inputs",
            str(tmp_path / "x.npz"),
            "--mode",
            "fixed",
            "--json",
            "--backend",
            "brian2",
            "--brian2-target",
            "cpp_standalone",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["details"]["target"] == "cpp_standalone", summary
    assert summary["spikes_per_sample"] == ref.layer_spikes.sum() / 7
    np.savez(tmp_path / "bad.npz", other=x)
    for args, msg in (
        (["--inputs", str(tmp_path / "bad.npz")], "no array 'spikes'"),
        (["--inputs", str(tmp_path / "missing.npz")], "not found"),
    ):
        r = subprocess.run(cli + args, capture_output=True, text=True)
        assert r.returncode == 2 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def _lif_graph(tau, r, weight, dt_meta=None):
    import nir

    n_out, n_in = weight.shape
    nodes = {
        "input": nir.Input(input_type=np.array([n_in])),
        "fc": nir.Linear(weight=weight),
        "lif": nir.LIF(tau=tau, r=r, v_leak=np.zeros(n_out, np.float32), v_threshold=np.ones(n_out, np.float32)),
        "output": nir.Output(output_type=np.array([n_out])),
    }
    edges = [("input", "fc"), ("fc", "lif"), ("lif", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={} if dt_meta is None else {"dt": dt_meta})


def test_float32_noise_in_tau_and_gain_is_snapped():
    """snnTorch writes tau = dt / (1 - beta) and r = tau / dt in float32 (dt = 1e-4, beta = 0.5):
    read back, dv and the gain must be exactly 0.5 and 1, or every tie at threshold flips."""
    from sne_deploy.simulators.nir_io import from_nir

    dt = 1e-4
    tau = np.full(3, dt / (1 - 0.5), np.float32)
    r = (tau.astype(np.float64) / dt).astype(np.float32)
    w = np.array([[1.0, 1.0], [2.0, -1.0], [1.0, 0.0]], np.float32)
    layer = from_nir(_lif_graph(tau, r, w), dt=dt).layers[0]
    assert dt / np.float64(tau[0]) != 0.5  # the float32 noise is real
    assert layer.params.dv == 0.5 and np.array_equal(layer.weight, w.astype(np.float64))


def test_a_graph_without_dt_names_the_dt_option():
    from sne_deploy.simulators.nir_io import from_nir

    tau = np.full(2, 2e-4, np.float32)
    with pytest.raises(
        GraphError, match=r"dt = 1 from the default \(the graph states no dt\).*pass the one .* with --dt"
    ):
        from_nir(_lif_graph(tau, tau / 1e-4, np.ones((2, 2), np.float32)))
    with pytest.raises(GraphError, match="from the graph's metadata"):
        from_nir(_lif_graph(tau, tau / 1e-4, np.ones((2, 2), np.float32), dt_meta=1.0))
    assert from_nir(_lif_graph(tau, tau / 1e-4, np.ones((2, 2), np.float32)), dt=1e-4).layers[0].params.dv == 0.5


# --- recurrent layers ------------------------------------------------------------------------


def _recurrent_network(bias: float = 0.0) -> Network:
    """Two layers, each with integer recurrent synapses onto itself (a CubaLIF-like first layer)."""
    rng = np.random.default_rng(0)
    l1 = make_layer(
        "l1",
        rng.integers(-2, 4, (16, 20)).astype(float),
        1.0,
        0.5,
        3.0,
        bias,
        recurrent=rng.integers(-2, 3, (16, 16)).astype(float),
    )
    l2 = make_layer(
        "l2",
        rng.integers(-2, 4, (5, 16)).astype(float),
        0.5,
        0.25,
        2.0,
        recurrent=rng.integers(-1, 2, (5, 5)).astype(float),
    )
    return Network((l1, l2))


def test_recurrent_layer_sees_its_own_last_spikes_and_nothing_of_other_samples():
    from sne_deploy.simulators.fixed_point import quantize_network

    net = _recurrent_network()
    x = random_spikes(12, 30, 20, rate=0.3, seed=1)
    res = run(net, x, "reference", "float", record=True)
    # by hand, layer 1: u = W x[t] + W_rec s[t-1] (du = 1), v = v/2 + u, fire at v > 3, reset to 0
    l1 = net.layers[0]
    s_prev, v = np.zeros((12, 16)), np.zeros((12, 16))
    for t in range(30):
        v = 0.5 * v + x[:, t] @ l1.weight.T + s_prev @ l1.recurrent.T
        s_prev = (v > 3.0).astype(float)
        v = np.where(s_prev > 0, 0.0, v)
        assert np.array_equal(res.trains[0][:, t], s_prev > 0), t
    assert not np.array_equal(
        res.trains[0],
        run(Network((make_layer("l1", l1.weight, 1.0, 0.5, 3.0),)), x, "reference", "float", record=True).trains[0],
    ), "the loop changed nothing"
    solo = run(net, x[7:8], "reference", "float", record=True)  # a sample alone = the same sample in a batch
    assert all(np.array_equal(a[7:8], b) for a, b in zip(res.trains, solo.trains))
    # quantised with one scale for both kinds of synapse, and written to NIR and back exactly
    q, report = quantize_network(net)
    assert all(r.exact for r in report) and q.layers[0].fixed.recurrent is not None
    back = from_nir(to_nir(q))
    assert np.array_equal(back.layers[1].recurrent, net.layers[1].recurrent)
    assert np.array_equal(back.layers[1].fixed.recurrent, q.layers[1].fixed.recurrent)
    assert all(
        np.array_equal(a, b)
        for a, b in zip(
            run(q, x, "reference", "fixed", record=True).trains, run(back, x, "reference", "fixed", record=True).trains
        )
    )
    # energy: the recurrent synapses count as synaptic events (own spikes x recurrent fan-out)
    events = res.synaptic_events
    own = [c @ np.count_nonzero(l.recurrent, axis=0) for c, l in zip(res.layer_counts, net.layers)]
    pre = [res.input_counts, res.layer_counts[0]]
    for i, l in enumerate(net.layers):
        assert np.array_equal(events[:, i], pre[i] @ np.count_nonzero(l.weight, axis=0) + own[i])


@pytest.mark.parametrize("backend", ["brian2", "lava"])
def test_recurrent_network_is_spike_exact_on_the_simulators(request, backend, monkeypatch):
    """Brian2 with several batches (the first step of a sample must not see the last spikes of
    the copy's previous sample); Lava in several runs of one batch each."""
    request.getfixturevalue(f"{backend}_ready")
    from sne_deploy.simulators import lava_worker
    from sne_deploy.simulators.fixed_point import quantize_network

    monkeypatch.setattr(lava_worker, "_RECURRENT_MAX_BATCH", 10)  # 25 samples: 3 Lava runs
    net = _recurrent_network()
    x = random_spikes(25, 20, 20, rate=0.3, seed=2)
    for network, mode in ((net, "float"), (quantize_network(net)[0], "fixed")):
        ref = run(network, x, "reference", mode, record=True)
        got = run(network, x, backend, mode, record=True, **({"batch": 4} if backend == "brian2" else {}))
        if backend == "lava":
            assert got.details["runs"] == 3
        for a, b in zip(ref.trains, got.trains):
            assert a.sum() > 0 and int((a != b).sum()) == 0, f"{backend} {mode}"


def test_a_recurrent_layer_that_fires_without_input_runs_exactly_on_lava(lava_ready):
    """v reaches the threshold 3 from the bias alone: before its first sample such a layer would
    fire into its own first step through the recurrent synapses on Lava's LIF; it runs on
    GeneralLIF, silent until then, spike for spike with the reference."""
    from sne_deploy.simulators.fixed_point import quantize_network
    from sne_deploy.simulators.lava_worker import restless_layers

    net = _recurrent_network(bias=4.0)
    assert restless_layers(net, "float"), "no layer fires without input: the test proves nothing"
    x = np.random.default_rng(1).random((4, 6, 20)) < 0.3
    for network, mode in ((net, "float"), (quantize_network(net)[0], "fixed")):
        ref = run(network, x, "reference", mode, record=True)
        got = run(network, x, "lava", mode, record=True)
        for a, b in zip(ref.trains, got.trains):
            assert a.sum() > 0 and np.array_equal(a, b), mode


def test_only_a_neurons_own_loop_is_recurrent():
    """A loop through a weight node that also takes other input is a cycle, refused as before."""
    inp = nir.Input(input_type={"input": np.array([3])})
    out = nir.Output(output_type={"output": np.array([2])})
    lif = nir.LIF(tau=np.ones(2) * 4, r=np.ones(2) * 4, v_leak=np.zeros(2), v_threshold=np.ones(2))
    g = nir.NIRGraph(
        nodes={
            "input": inp,
            "fc": nir.Linear(weight=np.ones((2, 3))),
            "lif": lif,
            "rec": nir.Linear(weight=np.ones((2, 2))),
            "output": out,
        },
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "output")],
        type_check=False,
    )
    assert from_nir(g).layers[0].recurrent is not None
    g.edges.append(("input", "rec"))
    with pytest.raises(GraphError, match="recurrent edge"):
        from_nir(g)


# --- multi-spike neurons ----------------------------------------------------------------------


@pytest.mark.parametrize("reset, want", [("zero", [2, 2, 2, 2]), ("subtract", [2, 3, 2, 3]), ("none", [2, 5, 7, 10])])
def test_multi_spike_neurons_emit_floor_v_over_vth(reset, want):
    """An IF neuron fed 5 per step with threshold 2 emits floor(v / 2) spikes a step, takes that
    many thresholds off (subtract), nothing (none) or all of v (zero); float, fixed point and the
    torch reference agree, and the next layer receives the counts."""
    from sne_deploy.simulators.fixed_point import quantize_network
    from sne_deploy.snn import run_network_torch

    net = Network(
        (make_layer("l", np.array([[5.0]]), 1.0, 0.0, 2.0), make_layer("next", np.array([[1.0]]), 1.0, 0.0, 0.5)),
        dynamics=Dynamics("ge", reset, "euler", "multi"),
    )
    x = np.ones((1, 4, 1), bool)
    float_run = run(net, x, "reference", "float", record=True)
    fixed_run = run(quantize_network(net)[0], x, "reference", "fixed", record=True)
    torch_run = run_network_torch(net, x, "float", record=True)
    for r in (float_run, fixed_run, torch_run):
        assert r.trains[0][0, :, 0].tolist() == want
    assert float_run.synaptic_events[0, 1] == sum(want)  # one event per spike and synapse


@pytest.mark.parametrize("backend", ["brian2", "lava"])
@pytest.mark.parametrize("reset", ["zero", "subtract", "subtract-next", "none"])
def test_multi_spike_networks_are_spike_exact_on_brian2_and_lava(request, backend, reset):
    """Counts far above one a step (the recurrent test network, its feedback driving them up):
    Brian2 computes nspk with v, its synapses deliver w x nspk; Lava's GeneralLIF sends the counts
    as graded spikes into Dense/Sparse synapses (the recurrent ones too); float and fixed point."""
    request.getfixturevalue(f"{backend}_ready")
    from dataclasses import replace

    from sne_deploy.simulators.fixed_point import quantize_network

    net = replace(_recurrent_network(0.125), dynamics=Dynamics("ge", reset, "euler", "multi"))
    x = np.random.default_rng(0).random((10, 20, 20)) < 0.5
    for mode, network in (("float", net), ("fixed", quantize_network(net)[0])):
        ref, b2 = run(network, x, "reference", mode, record=True), run(network, x, backend, mode, record=True)
        assert max(int(t.max()) for t in ref.trains) > 1
        for a, b in zip(ref.trains, b2.trains):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ref.synaptic_events, b2.synaptic_events)


def test_a_layer_delay_sends_each_steps_spikes_one_step_later():
    """Layer.delay = 1 (Spyx's timing): a layer's spikes reach the next layer and the trains one
    step later, with its bias and its own dynamics unchanged; the torch reference agrees."""
    from dataclasses import replace

    from sne_deploy.snn import run_network_torch

    rng = np.random.default_rng(3)
    first = make_layer("a", rng.normal(0, 0.8, (10, 6)), 1.0, 0.25, 1.0, 0.05)
    second = make_layer("b", rng.normal(0, 0.8, (4, 10)), 1.0, 0.25, 1.0, 0.1)
    x = rng.random((8, 25, 6)) < 0.5
    plain = run(Network((first, second)), x, "reference", "float", record=True)
    late = Network((replace(first, delay=1), second))
    got = run(late, x, "reference", "float", record=True)
    assert plain.trains[0][:, :-1].any()
    np.testing.assert_array_equal(got.trains[0][:, 1:], plain.trains[0][:, :-1])  # the same spikes, a step later
    assert not got.trains[0][:, 0].any()
    assert (got.trains[1] != plain.trains[1]).any()  # the next layer sees them later
    torch_run = run_network_torch(late, x, "float", record=True)
    for a, b in zip(got.trains, torch_run.trains):
        np.testing.assert_array_equal(a, b)
    assert Network.from_dict(late.to_dict()).layers[0].delay == 1
    with pytest.raises(GraphError, match="layer 'a': writing a spike delay"):
        to_nir(late)  # NIR cannot say it: refused, not lost


@pytest.mark.parametrize("backend", ["lava", "brian2"])
@pytest.mark.parametrize("spikes", ["single", "multi"])
def test_delayed_recurrent_layers_run_exactly_on_lava_and_brian2(request, backend, spikes):
    """A recurrent layer with a spike delay (Spyx's RLIF timing; 1 and 2 steps): its own loop sees
    this step's spikes undelayed, the next layer the delayed ones. GeneralLIF sends both (s_now,
    s_out); Brian2 re-emits them through a relay group zeroed with each sample, so no delayed spike
    reaches the next sample of a batched copy. Spike for spike with the reference, counts (and so
    synaptic events) too, float and fixed point."""
    request.getfixturevalue(f"{backend}_ready")
    from dataclasses import replace

    from sne_deploy.simulators.fixed_point import quantize_network

    rng = np.random.default_rng(0)
    first = make_layer("a", rng.normal(0, 0.7, (12, 8)), 1.0, 0.25, 1.0, 0.05, recurrent=rng.normal(0, 0.4, (12, 12)))
    second = make_layer("b", rng.normal(0, 0.7, (5, 12)), 1.0, 0.25, 1.0, 0.0)
    dyn = Dynamics("gt", "subtract-next", spikes=spikes)
    net = Network((replace(first, delay=1), replace(second, delay=2)), dynamics=dyn)
    x = rng.random((6, 20, 8)) < 0.4
    for network, mode in ((net, "float"), (quantize_network(net)[0], "fixed")):
        ref, other = run(network, x, "reference", mode, record=True), run(network, x, backend, mode, record=True)
        assert ref.trains[0][:, -1].any()  # the last step's spikes exist, and are not sent
        for a, b in zip(ref.trains, other.trains):
            assert a.any() and np.array_equal(a, b), mode
        np.testing.assert_array_equal(ref.synaptic_events, other.synaptic_events)


def _graded_network(seed: int = 0) -> Network:
    """A network fed the ``graded`` code: its first layer holds each sample's one graded input in
    its current (HOLD_DU); thresholds and biases on the fixed-point grid of scale 2."""
    from dataclasses import replace

    from sne_deploy.simulators.fixed_point import fold_ternary
    from sne_deploy.simulators.neuron import HOLD_DU

    rng = np.random.default_rng(seed)
    w0 = rng.choice([-1, 0, 1], size=(16, 30), p=[0.3, 0.4, 0.3])
    first = fold_ternary("layer0", w0, 40.0, rng.integers(-64, 128, 16) / 128, HOLD_DU, 0.25, 8, scale=2, graded=15)
    rest = random_ternary_network((16, 6), seed=seed, dv=0.25).layers
    return replace(Network((first, *rest)), graded_input=15)


def _graded_inputs(n: int, seed: int = 0) -> np.ndarray:
    from sne_deploy.simulators.encoding import encode_graded

    x = np.random.default_rng(seed).random((n, 30))
    x[x < 0.3] = 0.0  # dark pixels send nothing
    return encode_graded(x, 8)


@pytest.mark.parametrize("backend", ["brian2", "lava"])
def test_graded_inputs_run_exactly_and_count_one_event_per_message(request, backend):
    """The graded code's one payload per pixel, held by the first layer's current for the sample:
    Lava (graded spikes into Dense) and Brian2 reproduce the reference spike for spike in float and
    fixed point, the first layer's synaptic events are its messages x fan-out (not payload x
    fan-out: one graded spike is one event per synapse), all of them graded."""
    request.getfixturevalue(f"{backend}_ready")
    net, x = _graded_network(), _graded_inputs(12)
    assert x[:, 0].max() > 1 and not x[:, 1:].any()
    for mode in ("float", "fixed"):
        ref, got = run(net, x, "reference", mode, record=True), run(net, x, backend, mode, record=True)
        _assert_same(ref, got)
        assert ref.trains[0][:, -1].any(), "the held input must still drive the first layer at the last step"
        fan_out = net.layers[0].fan_out(mode)
        messages = np.count_nonzero(x[:, 0], axis=1)
        np.testing.assert_array_equal(ref.synaptic_events[:, 0], (x[:, 0] != 0).astype(np.int64) @ fan_out)
        assert (ref.synaptic_events[:, 0] < x[:, 0].astype(np.int64) @ fan_out).all() and messages.min() > 0
        np.testing.assert_array_equal(ref.graded_events, ref.synaptic_events[:, 0])
        np.testing.assert_array_equal(got.synaptic_events, ref.synaptic_events)
        np.testing.assert_array_equal(got.graded_events, ref.graded_events)


def test_graded_input_survives_nir_and_stopping_early(tmp_path):
    """Network.graded_input travels in the NIR graph's metadata (a plain graph's inputs stay events)
    and in the plain-data form the Lava worker gets; a run stopped after t >= 1 steps has sent every
    message (they all leave at the first step), one that never ran none."""
    from sne_deploy.simulators.result import stopped_early

    net, x = _graded_network(1), _graded_inputs(6, 1)
    path = tmp_path / "g.nir"
    nir.write(str(path), to_nir(net))
    back = from_nir(path)
    assert back.graded_input == 15 and random_ternary_network((4, 3)).graded_input == 0
    assert from_nir(to_nir(random_ternary_network((4, 3)))).graded_input == 0
    assert Network.from_dict(net.to_dict()).graded_input == 15
    res = run(back, x, "reference", "fixed", record=True)
    np.testing.assert_array_equal(res.synaptic_events, run(net, x, "reference", "fixed").synaptic_events)
    stop = stopped_early(res, x, np.array([0, 1, 2, 8, 3, 1]))
    np.testing.assert_array_equal(stop.input_messages[0], 0)
    np.testing.assert_array_equal(stop.input_messages[1:], res.input_messages[1:])
    bad = to_nir(net)
    bad.metadata["sne_graded_input"] = -3
    with pytest.raises(GraphError, match="sne_graded_input"):
        from_nir(bad)


def test_graded_input_layer_is_scaled_for_one_held_payload():
    """A held graded input adds at most G x |W| to u once (it only decays after), not |W| every
    step for 4096 steps: the scale is chosen for that, and the export's range check agrees."""
    from sne_deploy.exporters.checks import check_network
    from sne_deploy.simulators.fixed_point import ACT_UNIT, choose_scale, worst_case_uv_of
    from sne_deploy.simulators.neuron import HOLD_DU, decays_to_fixed

    w = np.ones((4, 100))
    du_fx, dv_fx = decays_to_fixed(HOLD_DU, 0.25)
    umax, vmax = worst_case_uv_of(w, du_fx, dv_fx, np.zeros(4), 8, graded=15)
    assert umax == 100 * ACT_UNIT * 15 and vmax == umax * 4
    assert worst_case_uv_of(w, du_fx, dv_fx, np.zeros(4), 8)[0] == 100 * ACT_UNIT * 4096  # as if spiking every step
    assert choose_scale(w, HOLD_DU, 0.25, 8, graded=15) == 20 and choose_scale(w, HOLD_DU, 0.25, 8) == 2  # 2^23 / vmax
    assert check_network(_graded_network(), "lava", 8, strict=True) == []
