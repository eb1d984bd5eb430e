"""Graphs as the libraries write them: each network is built and simulated in its library the way
its tutorials do, exported with the library's own NIR exporter (no patching), run through
``sne-deploy run-nir --preset LIB`` and compared spike train by spike train, every layer.

Also the run options themselves (firing comparison, reset, decay), by hand and on every backend,
and ``--quantize``. Inputs stay small (N = 32, T = 50) so the suite stays fast.
"""

from __future__ import annotations

import nir
import numpy as np
import pytest

from sne_deploy.cli import main
from sne_deploy.simulators import Network, make_layer, run
from sne_deploy.simulators.errors import GraphError
from sne_deploy.simulators.fixed_point import quantize_network
from sne_deploy.simulators.neuron import Dynamics, LIFParams, LIFState, lif_step_float
from sne_deploy.simulators.nir_io import from_nir

from . import library_nets
from .helpers import need
from .library_nets import N_IN, N_OUT, N, T, run_nir_args


def _run_nir(tmp_path, graph_file, x, preset, backend="reference", mode="float", extra=()) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    """``sne-deploy run-nir`` on the file, in process; the spike trains it wrote with --out."""
    inputs, out = tmp_path / "in.npz", tmp_path / f"out_{backend}_{mode}.npz"
    np.savez(inputs, spikes=x)
    assert main(run_nir_args(graph_file, inputs, preset, backend, mode, out, *extra)) == 0
    with np.load(out) as f:
        return [f[k] for k in sorted(k for k in f.files if k.startswith("train_layer"))]


def _assert_identical(lib: list[np.ndarray], ours: list[np.ndarray]) -> None:
    assert len(lib) == len(ours)
    for i, (a, b) in enumerate(zip(lib, ours)):
        assert a.shape == b.shape, f"layer {i}: shape {a.shape} vs {b.shape}"
        assert a.sum() > 0, f"layer {i} is silent: the comparison would prove nothing"
        mism = int((a != b).sum())
        assert mism == 0, f"layer {i}: {mism} of {a.size} spike bits differ"


# --- the run options by hand -----------------------------------------------------------------


def _one_neuron(inputs: list[float], dyn: Dynamics, dv: float = 0.5, vth: float = 1.0) -> tuple[list[int], list[float]]:
    p = LIFParams(1.0, dv, np.array([vth]), np.array([0.0]))
    st, spikes, vs = LIFState(np.zeros(1), np.zeros(1)), [], []
    for a in inputs:
        st, s = lif_step_float(st, np.array([a]), p, dyn=dyn)
        spikes.append(int(s[0]))
        vs.append(float(st.v[0]))
    return spikes, vs


def test_firing_and_reset_options_by_hand():
    # v = 1.0 exactly at threshold: only >= fires
    assert _one_neuron([1.0], Dynamics("gt"))[0] == [0]
    assert _one_neuron([1.0], Dynamics("ge"))[0] == [1]
    # 1.5 then nothing, dv = 0.5, vth = 1
    assert _one_neuron([1.5, 0, 0], Dynamics(reset="zero")) == ([1, 0, 0], [0.0, 0.0, 0.0])
    assert _one_neuron([1.5, 0, 0], Dynamics(reset="subtract")) == ([1, 0, 0], [0.5, 0.25, 0.125])
    # snnTorch: the threshold comes off at the next step, undecayed: 1.5 -> 0.75 - 1 -> -0.125
    assert _one_neuron([1.5, 0, 0], Dynamics(reset="subtract-next")) == ([1, 0, 0], [1.5, -0.25, -0.125])
    with pytest.raises(GraphError, match="unknown reset"):
        Dynamics(reset="soft")


def _small_network(dyn: Dynamics) -> Network:
    rng = np.random.default_rng(1)
    l1 = make_layer("a", rng.integers(-3, 4, (20, 12)).astype(float), 1.0, 0.25, 4.0)
    l2 = make_layer("b", rng.integers(-3, 4, (6, 20)).astype(float), 0.5, 0.5, 3.0)
    return quantize_network(Network((l1, l2), dynamics=dyn))[0]


DYNAMICS = [Dynamics("ge", "zero"), Dynamics("gt", "subtract"), Dynamics("ge", "subtract-next"), Dynamics("gt", "none")]


@pytest.mark.brian2
@pytest.mark.parametrize("mode", ["float", "fixed"])
@pytest.mark.parametrize("dyn", DYNAMICS, ids=lambda d: f"{d.firing}-{d.reset}")
def test_run_options_are_spike_exact_on_brian2(brian2_ready, dyn, mode):
    net = _small_network(dyn)
    x = (np.random.default_rng(2).random((16, 30, 12)) < 0.4).astype(np.uint8)
    ref = run(net, x, "reference", mode, record=True)
    other = run(Network(net.layers), x, "reference", mode, record=True)  # Loihi's dynamics
    assert any((a != b).any() for a, b in zip(ref.trains, other.trains)), "the option changed nothing"
    b2 = run(net, x, "brian2", mode, record=True)
    for a, b in zip(ref.trains, b2.trains):
        assert np.array_equal(a, b)


@pytest.mark.parametrize("dyn", DYNAMICS, ids=lambda d: f"{d.firing}-{d.reset}")
def test_run_options_are_spike_exact_on_lava(lava_ready, dyn):
    """What Lava's LIF is not (>= firing, subtracting and no resets) runs on the GeneralLIF
    process, float and fixed point, spike for spike with the reference."""
    net = _small_network(dyn)
    x = (np.random.default_rng(2).random((16, 30, 12)) < 0.4).astype(np.uint8)
    for mode in ("float", "fixed"):
        ref = run(net, x, "reference", mode, record=True)
        lava = run(net, x, "lava", mode, record=True)
        assert lava.details["general_lif_layers"] == [True] * len(net.layers)
        for a, b in zip(ref.trains, lava.trains):
            assert np.array_equal(a, b)
    assert run(Network(net.layers), x, "lava", "fixed").details["general_lif_layers"] == [False] * len(net.layers)


def test_exponential_decay_option(tmp_path):
    tau = np.full(3, 4.0)
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([2])}),
            "fc": nir.Linear(weight=np.ones((3, 2))),
            "lif": nir.LIF(tau=tau, r=np.ones(3), v_leak=np.zeros(3), v_threshold=np.ones(3)),
            "output": nir.Output(output_type={"output": np.array([3])}),
        },
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")],
    )
    euler = from_nir(g, dt=1.0)
    exact = from_nir(g, dt=1.0, dynamics=Dynamics(decay="exp"))
    assert euler.layers[0].params.dv == 0.25
    assert exact.layers[0].params.dv == pytest.approx(1 - np.exp(-0.25), rel=1e-12)
    assert exact.layers[0].weight[0, 0] == pytest.approx(
        1 - np.exp(-0.25), rel=1e-12
    )  # r * (1 - alpha), sinabs' norm_input


# --- the libraries ---------------------------------------------------------------------------


def _build(name: str, *args):  # type: ignore[no-untyped-def]
    """A library network from tests/library_nets.py; under CI a missing library is a failure."""
    try:
        return getattr(library_nets, name)(*args)
    except ImportError as e:
        need(
            e.name or name, False, "pip install -e '.[test]' (the test extra installs snntorch, spikingjelly, rockpool)"
        )


def _reproduces(tmp_path, ex, backend="reference", mode="float", extra=()) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    ours = _run_nir(tmp_path, ex.path, ex.inputs, ex.preset, backend, mode, (*ex.options, *extra))
    _assert_identical(ex.trains, ours[: len(ex.trains)])
    return ours


LIBRARY_CASES = {
    "snntorch-leaky-int-subtract": ("snntorch_leaky", True, "subtract"),
    "snntorch-leaky-float-subtract": ("snntorch_leaky", False, "subtract"),
    "snntorch-leaky-int-zero": ("snntorch_leaky", True, "zero"),
    "snntorch-leaky-float-zero": ("snntorch_leaky", False, "zero"),
    "snntorch-leaky-int-none": ("snntorch_leaky", True, "none"),
    "snntorch-leaky-float-none": ("snntorch_leaky", False, "none"),
    "snntorch-synaptic": ("snntorch_synaptic",),
    "snntorch-synaptic-bias": ("snntorch_synaptic", 3, True),
    "snntorch-leaky-per-neuron": ("snntorch_leaky", True, "subtract", 2, True),
    "spikingjelly-lif-int": ("spikingjelly_mlp", True, "LIF"),
    "spikingjelly-lif-float": ("spikingjelly_mlp", False, "LIF"),
    "spikingjelly-if-int": ("spikingjelly_mlp", True, "IF"),
    "spikingjelly-if-float": ("spikingjelly_mlp", False, "IF"),
    "spikingjelly-conv": ("spikingjelly_conv",),
    "snntorch-rleaky-int": ("snntorch_recurrent", True, "RLeaky"),
    "snntorch-rleaky-float": ("snntorch_recurrent", False, "RLeaky"),
    "snntorch-rsynaptic-int": ("snntorch_recurrent", True, "RSynaptic"),
    "snntorch-rsynaptic-float": ("snntorch_recurrent", False, "RSynaptic"),
    "rockpool-lif-int": ("rockpool_mlp", True, "LIFNeuronTorch"),
    "rockpool-lif-float": ("rockpool_mlp", False, "LIFNeuronTorch"),
    "rockpool-cubalif-int": ("rockpool_mlp", True, "LIFTorch"),
    "rockpool-cubalif-float": ("rockpool_mlp", False, "LIFTorch"),
    "rockpool-lif-single": ("rockpool_mlp", True, "LIFNeuronTorch", 13, True),
    "rockpool-cubalif-single": ("rockpool_mlp", True, "LIFTorch", 13, True),
    "snntorch-deep": ("snntorch_deep",),
    "norse-lifbox-int": ("norse_lifbox", True),
    "norse-lifbox-float": ("norse_lifbox", False),
    "norse-lifcell-int": ("norse_lifcell", True),
    "norse-lifcell-float": ("norse_lifcell", False),
    "norse-iaf": ("norse_iaf",),
}


@pytest.mark.parametrize("case", list(LIBRARY_CASES))
def test_library_export_runs_spike_exact_with_its_preset(tmp_path, case):
    name, *args = LIBRARY_CASES[case]
    _reproduces(tmp_path, _build(name, tmp_path, *args))


@pytest.mark.parametrize(
    "case, wrong", [("snntorch-leaky-int-subtract", ("--reset", "zero")), ("spikingjelly-lif-int", ("--firing", "gt"))]
)
def test_the_presets_conventions_matter(tmp_path, case, wrong):
    """Run with Loihi's reset or comparison instead of the library's, the trains differ."""
    name, *args = LIBRARY_CASES[case]
    ex = _build(name, tmp_path, *args)
    ours = _run_nir(tmp_path, ex.path, ex.inputs, ex.preset, extra=(*ex.options, *wrong))
    assert any((a != b).any() for a, b in zip(ex.trains, ours))


@pytest.mark.parametrize("backend", ["brian2", "lava"])
def test_snntorch_on_the_simulators(tmp_path, request, backend):
    """Loihi's dynamics (reset to zero) on every backend, float and fixed point (integer weights:
    --quantize finds an exact scale, so fixed equals float); subtraction on Brian2."""
    request.getfixturevalue(f"{backend}_ready")
    ex = _build("snntorch_leaky", tmp_path, True, "zero", 1)
    _reproduces(tmp_path, ex, backend)
    _reproduces(tmp_path, ex, backend, "fixed", ("--quantize",))
    if backend == "brian2":
        _reproduces(tmp_path, _build("snntorch_leaky", tmp_path, True, "subtract", 1), backend)
        rec = _build("snntorch_recurrent", tmp_path, True, "RLeaky")  # recurrent, subtraction one step late
        _reproduces(tmp_path, rec, backend)
        _reproduces(tmp_path, rec, backend, "fixed", ("--quantize",))


def _refusal(tmp_path, capsys, graph, *options: str) -> str:  # type: ignore[no-untyped-def]
    """run-nir on the graph (a few silent inputs): it must exit 2 with exactly one line; that line."""
    np.savez(tmp_path / "in.npz", spikes=np.zeros((1, 5, N_IN), np.uint8))
    capsys.readouterr()
    assert main(["run-nir", str(graph), "--inputs", str(tmp_path / "in.npz"), *options]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    return err[0]


def test_snntorch_recurrent_layer_keeps_its_loop(tmp_path):
    """RLeaky's export is a subgraph lif -> w_rec -> lif: the loop becomes the layer's recurrent
    synapses (w_rec's bias a constant input), nothing else of the graph changes."""
    ex = _build("snntorch_recurrent", tmp_path, True, "RLeaky")
    net = from_nir(ex.path, default_dt=1e-4, dynamics=Dynamics("gt", "subtract-next"))
    assert [l.recurrent is not None for l in net.layers] == [True, False]
    from sne_deploy.simulators.nir_graph import _flatten
    from sne_deploy.simulators.nir_io import read_graph

    nodes, _ = _flatten(read_graph(ex.path))
    (w_rec,) = [v for k, v in nodes.items() if k.endswith("w_rec")]
    np.testing.assert_array_equal(net.layers[0].recurrent, w_rec.weight)
    np.testing.assert_array_equal(net.layers[0].params.bias, w_rec.bias)


@pytest.mark.parametrize("case", list(LIBRARY_CASES))
def test_library_export_runs_spike_exact_on_lava(tmp_path, lava_ready, case):
    """Every library network of the reference test on Lava: Loihi's LIF where the neurons are
    Loihi's, the GeneralLIF process where not (>= firing, subtracting or no resets, a bias on the
    current, per-neuron time constants, multi-spike); in fixed point (--quantize) bit for bit
    the reference's fixed point, which equals the library where the decays lie on Loihi's grid."""
    name, *args = LIBRARY_CASES[case]
    ex = _build(name, tmp_path, *args)
    _reproduces(tmp_path, ex, "lava")
    fixed = (*ex.options, "--quantize")
    ref = _run_nir(tmp_path, ex.path, ex.inputs, ex.preset, "reference", "fixed", fixed)
    _assert_identical(ref, _run_nir(tmp_path, ex.path, ex.inputs, ex.preset, "lava", "fixed", fixed))


@pytest.mark.brian2
@pytest.mark.parametrize(
    "case",
    [("spikingjelly_mlp", True, "LIF", 5), ("snntorch_synaptic", 3, True), ("snntorch_leaky", True, "zero", 2, True)],
    ids=["ge-firing", "current-bias", "per-neuron"],
)
def test_non_loihi_neurons_run_on_brian2(tmp_path, brian2_ready, case):
    """What Lava's LIF cannot run (>= firing, a bias on the current, per-neuron time constants)
    runs exactly on Brian2, float and fixed point."""
    name, *args = case
    ex = _build(name, tmp_path, *args)
    _reproduces(tmp_path, ex, "brian2")
    _reproduces(tmp_path, ex, "brian2", "fixed", ("--quantize",))


@pytest.mark.parametrize("backend", ["brian2", "lava"])
@pytest.mark.parametrize("kind", ["LIFNeuronTorch", "LIFTorch"])
def test_rockpool_multi_spike_exports_on_the_simulators(tmp_path, request, backend, kind):
    """Rockpool's default neurons emit several spikes a step; its exports run spike-exact on Brian2
    and Lava with --preset rockpool (multi-spike, exp decays, its gains)."""
    request.getfixturevalue(f"{backend}_ready")
    ex = _build("rockpool_mlp", tmp_path, False, kind)
    assert max(int(t.max()) for t in ex.trains) > 1
    _reproduces(tmp_path, ex, backend)


@pytest.mark.parametrize("backend", ["brian2", "lava"])
def test_norse_on_the_simulators(tmp_path, request, backend):
    request.getfixturevalue(f"{backend}_ready")
    for name in ("norse_lifbox", "norse_lifcell", "norse_iaf"):  # LIF, CubaLIF (its gain read norse's way), IF
        ex = _build(name, tmp_path, True) if name != "norse_iaf" else _build(name, tmp_path)
        _reproduces(tmp_path, ex, backend)
        _reproduces(tmp_path, ex, backend, "fixed", ("--quantize",))


# --- --quantize ------------------------------------------------------------------------------


def _run_nir_cli(ex, tmp_path, preset: str, *args: str) -> int:  # type: ignore[no-untyped-def]
    """``sne-deploy run-nir`` on an export's graph and the inputs saved beside it."""
    return main(["run-nir", str(ex.path), "--inputs", str(tmp_path / "in.npz"), "--preset", preset, *args])


def test_quantize_keeps_integer_ratios_and_reports_agreement(tmp_path, capsys):
    import json

    ex = _build("snntorch_leaky", tmp_path, True, "zero", 11)
    np.savez(tmp_path / "in.npz", spikes=ex.inputs)
    capsys.readouterr()
    assert _run_nir_cli(ex, tmp_path, "snntorch", *ex.options, "--mode", "fixed", "--quantize", "--json") == 0
    q = json.loads(capsys.readouterr().out)["quantization"]
    assert all(layer["exact"] for layer in q["layers"])
    assert q["float_vs_fixed_identical_trains"] == [1.0, 1.0]
    qnet = quantize_network(from_nir(ex.path, dynamics=Dynamics(), default_dt=1e-4))[0]
    w, w_int = qnet.layers[0].weight, qnet.layers[0].fixed.weight
    nz = w != 0
    ratio = w_int[nz] / w[nz]
    assert np.all(ratio == ratio[0]) and ratio[0] % 2 == 0  # one even scale: 1, 2, 3 -> 84, 168, 252
    assert (
        main(["run-nir", str(ex.path), "--inputs", str(tmp_path / "in.npz"), "--preset", "snntorch", "--quantize"]) == 2
    )


# --- event counts ----------------------------------------------------------------------------


@pytest.mark.brian2
@pytest.mark.lava
@pytest.mark.parametrize("mode", ["float", "fixed"])
def test_event_counts_are_weighted_inputs_on_every_backend(brian2_ready, lava_ready, mode):
    """A count c in a bin is c coincident events: c x weight into the current, c synaptic events
    per synapse; Brian2 weights its synapses by the count, Lava takes them as graded spikes."""
    net = _small_network(Dynamics())
    counts = np.random.default_rng(3).poisson(0.6, (16, 30, 12))
    assert counts.max() > 1
    ref = run(net, counts, "reference", mode, record=True)
    # the same events as c separate 0/1 inputs into c copies of each synapse
    wide = Network(
        (
            make_layer(
                "a",
                np.repeat(net.layers[0].weight, 5, axis=1),
                1.0,
                0.25,
                4.0,
                fixed=None if mode == "float" else replace_weight(net.layers[0], 5),
            ),
            net.layers[1],
        )
    )
    unrolled = np.stack([counts > k for k in range(5)], axis=3).reshape(16, 30, 60)
    assert counts.max() <= 5
    same = run(wide, unrolled, "reference", mode, record=True)
    for a, b in zip(ref.trains, same.trains):
        assert np.array_equal(a, b)
    assert ref.synaptic_events[:, 0].sum() == int((counts.sum(axis=1) * net.layers[0].fan_out(mode)).sum())
    b2 = run(net, counts, "brian2", mode, record=True)
    for a, b in zip(ref.trains, b2.trains):
        assert np.array_equal(a, b)
    assert np.array_equal(ref.synaptic_events, b2.synaptic_events)
    lava = run(net, counts, "lava", mode, record=True)
    for a, b in zip(ref.trains, lava.trains):
        assert np.array_equal(a, b)
    assert np.array_equal(ref.synaptic_events, lava.synaptic_events)


def replace_weight(layer, k: int):  # type: ignore[no-untyped-def]
    """The layer's fixed-point form with every input column repeated k times."""
    from dataclasses import replace

    return replace(layer.fixed, weight=np.repeat(layer.fixed.weight, k, axis=1))


# --- LI readouts -----------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["reference", "brian2", "lava"])
def test_norse_li_readout_returns_its_membrane_trace(tmp_path, request, backend, capsys):
    """Linear -> LIFBox -> Linear -> LIBox, norse's classifier shape: the readout never spikes, so
    its membrane trace is the result (--out holds it, --json summarises it)."""
    import json

    if backend != "reference":
        request.getfixturevalue(f"{backend}_ready")
    ex = _build("norse_li_readout", tmp_path)
    _reproduces(tmp_path, ex, backend)
    with np.load(tmp_path / f"out_{backend}_float.npz") as f:
        ours = f["readout"]
    assert ours.shape == ex.readout.shape == (N, T, N_OUT)
    np.testing.assert_allclose(ours, ex.readout, rtol=1e-5, atol=1e-5)  # norse computes in float32
    capsys.readouterr()
    assert _run_nir_cli(ex, tmp_path, "norse", "--backend", backend, "--json") == 0
    summary = json.loads(capsys.readouterr().out)["readout"]
    assert summary["argmax_of_max_over_time"] == ex.readout.max(axis=1).argmax(axis=1).tolist()


# --- Spyx, in its own environment --------------------------------------------------------------

SPYX_NETS = (
    "if_mlp",
    "lif_mlp",
    "cubalif_mlp",
    "psu_lif_mlp",
    "lif_mlp_bias",
    "lif_mlp_per_neuron",
    "rif_mlp",
    "rlif_mlp",
    "if_conv",
)


@pytest.fixture(scope="session")
def spyx_exports(tmp_path_factory):  # type: ignore[no-untyped-def]
    """tests/spyx_nets.py run by the Spyx environment: (folder, names written)."""
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    py = Path(os.environ.get("SNE_SPYX_ENV", root / ".venv-spyx")) / "bin" / "python"
    need("the Spyx environment", py.exists(), "run 'make spyx-env' (Spyx runs on JAX: its own venv)")
    out = tmp_path_factory.mktemp("spyx")
    done = subprocess.run(
        [str(py), str(root / "tests" / "spyx_nets.py"), str(out)], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return out, done.stdout.split()


@pytest.mark.parametrize("backend", ["reference", "brian2", "lava"])
def test_spyx_exports_run_spike_exact_with_its_preset(tmp_path, request, spyx_exports, backend):
    """Spyx 1.0.0's own to_nir files, unpatched: IF, LIF, CuBaLIF MLPs (biases and Spyx's default
    per-neuron betas too), recurrent RIF and RLIF layers, a channels-last conv net with SumPool and
    a reset-free PSU_LIF (LI -> Threshold) give Spyx's trains in every layer with --preset spyx
    (its one-step spike delay, gain 1, CuBaLIF's reset before the decay, its recurrent export's
    input read as going to the neuron, channels-last flatten), on the reference, Brian2 (the delay
    through its relay group) and Lava; on Lava in fixed point (--quantize) bit for bit the
    reference's fixed point."""
    if backend != "reference":
        request.getfixturevalue(f"{backend}_ready")
    folder, names = spyx_exports
    assert sorted(names) == sorted(SPYX_NETS)
    for name in names:
        with np.load(folder / f"{name}.npz") as f:
            x, lib = f["spikes"], [f[k] for k in sorted(k for k in f.files if k.startswith("layer"))]
        _assert_identical(lib, _run_nir(tmp_path, folder / f"{name}.nir", x, "spyx", backend))
        if backend == "lava":
            ref = _run_nir(tmp_path, folder / f"{name}.nir", x, "spyx", "reference", "fixed", ("--quantize",))
            _assert_identical(
                ref, _run_nir(tmp_path, folder / f"{name}.nir", x, "spyx", "lava", "fixed", ("--quantize",))
            )


def test_spyx_timing_is_its_preset(tmp_path, spyx_exports, capsys):
    """Without the one-step delay Spyx's trains are not reproduced, and its recurrent export is
    refused as a graph whose input runs through the loop unless the preset reads it Spyx's way."""
    folder, _ = spyx_exports
    with np.load(folder / "lif_mlp.npz") as f:
        x, lib = f["spikes"], [f["layer0"], f["layer1"]]
    ours = _run_nir(tmp_path, folder / "lif_mlp.nir", x, "snntorch", extra=("--dt", "1"))
    assert any((a != b).any() for a, b in zip(lib, ours))
    capsys.readouterr()
    with np.load(folder / "rif_mlp.npz") as f:  # its recurrent export routes the input through w_rec:
        np.savez(tmp_path / "r.npz", spikes=f["spikes"][:2])  # only the preset reads it Spyx's way
    rec = ["run-nir", str(folder / "rif_mlp.nir"), "--inputs", str(tmp_path / "r.npz"), "--preset", "snntorch"]
    assert main(rec) == 2
    assert "recurrent edge" in capsys.readouterr().err


# --- sinabs, in its own environment ------------------------------------------------------------


@pytest.fixture(scope="session")
def sinabs_python():  # type: ignore[no-untyped-def]
    import os
    from pathlib import Path

    py = (
        Path(os.environ.get("SNE_SINABS_ENV", Path(__file__).resolve().parent.parent / ".venv-sinabs"))
        / "bin"
        / "python"
    )
    need("the sinabs environment", py.exists(), "run 'make sinabs-env' (sinabs pins nir<=1.0.4: its own venv)")
    return py


@pytest.fixture(scope="session")
def sinabs_exports(sinabs_python, tmp_path_factory):  # type: ignore[no-untyped-def]
    import subprocess
    from pathlib import Path

    out = tmp_path_factory.mktemp("sinabs")
    script = Path(__file__).resolve().parent / "sinabs_nets.py"
    done = subprocess.run([str(sinabs_python), str(script), str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return out, done.stdout.split()


@pytest.mark.parametrize("backend", ["reference", "brian2", "lava"])
def test_sinabs_exports_run_spike_exact_with_its_preset(tmp_path, request, sinabs_exports, backend):
    """sinabs' own to_nir files (0-d tau, (T, n) input shapes, written by nir 1.0.4), read by our
    nir; exponential decay, >= firing and subtraction from --preset sinabs."""
    if backend != "reference":
        request.getfixturevalue(f"{backend}_ready")
    folder, names = sinabs_exports
    assert sorted(names) == sorted(
        f"{k}_{w}_{s}" for k in ("IAF", "LIF") for w in ("float", "int") for s in ("multi", "single")
    )
    for name in names:
        with np.load(folder / f"{name}.npz") as f:
            x, lib = f["spikes"], [f["layer0"], f["layer1"]]
        if name.endswith("_multi"):  # sinabs' default MultiSpike: the preset's default
            assert max(int(t.max()) for t in lib) > 1  # the nets do emit several spikes in a step
            ours = _run_nir(tmp_path, folder / f"{name}.nir", x, "sinabs", backend)
        else:
            ours = _run_nir(tmp_path, folder / f"{name}.nir", x, "sinabs", backend, extra=("--spikes", "single"))
        _assert_identical(lib, ours)


# --- NIR Threshold nodes: reset-free and memoryless spiking neurons --------------------------


def _threshold_graph(rng: np.random.Generator) -> "nir.NIRGraph":
    """input -> Affine -> LIF (resets) -> Affine -> LI -> Threshold (reset-free, Spyx's PSU_LIF)
    -> Linear -> Threshold (memoryless)."""
    nodes = {
        "input": nir.Input(input_type={"input": np.array([5])}),
        "fc1": nir.Affine(weight=rng.normal(0.6, 1, (8, 5)), bias=np.zeros(8)),
        "lif": nir.LIF(tau=np.full(8, 0.004), r=np.ones(8), v_leak=np.zeros(8), v_threshold=np.full(8, 0.5)),
        "fc2": nir.Affine(weight=rng.normal(0.5, 1, (6, 8)), bias=np.zeros(6)),
        "li": nir.LI(tau=np.full(6, 0.01), r=np.ones(6), v_leak=np.zeros(6)),
        "th": nir.Threshold(threshold=np.full(6, 0.4)),
        "fc3": nir.Linear(weight=rng.normal(0.5, 1, (3, 6))),
        "th2": nir.Threshold(threshold=np.full(3, 0.5)),
        "output": nir.Output(output_type={"output": np.array([3])}),
    }
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])), type_check=False)


@pytest.mark.brian2
def test_threshold_nodes_are_reset_free_and_memoryless_spiking_neurons(brian2_ready, lava_ready):
    """LI -> Threshold is a leaky neuron whose v is never reset (whatever the graph's reset); a
    Threshold after a weight node spikes where this step's input crosses it; Brian2 and Lava (its
    GeneralLIF process) run both spike for spike."""
    rng = np.random.default_rng(4)
    net = from_nir(_threshold_graph(rng), dt=1e-3, dynamics=Dynamics("gt", "subtract"))
    assert [l.reset for l in net.layers] == [None, "none", "none"]
    assert [l.reset for l in Network.from_arrays(net.to_arrays()).layers] == [None, "none", "none"]  # to a worker
    x = rng.random((6, 40, 5)) < 0.5
    ref = run(net, x, "reference", "float", record=True)
    g = _threshold_graph(np.random.default_rng(4))
    w1, w2, w3 = (g.nodes[k].weight for k in ("fc1", "fc2", "fc3"))
    v1, v2, s1, s2 = np.zeros((6, 8)), np.zeros((6, 6)), [], []
    for t in range(40):  # forward Euler at dt = 1e-3, as the reference is told
        v1 = v1 * (1 - 0.25) + 0.25 * x[:, t] @ w1.T
        s1.append(v1 > 0.5)
        v1 = np.where(s1[-1], v1 - 0.5, v1)  # the graph's reset (subtract) for the LIF layer
        v2 = v2 * (1 - 0.1) + 0.1 * s1[-1] @ w2.T
        s2.append(v2 > 0.4)  # and none for LI -> Threshold
    s1a, s2a = np.stack(s1, 1), np.stack(s2, 1)
    s3 = (s2a.astype(float) @ w3.T) > 0.5
    assert all(int(s.sum()) > 0 for s in (s1a, s2a, s3)), "a layer never spiked: the test proves nothing"
    for got, want in zip(ref.trains, (s1a, s2a, s3)):
        assert np.array_equal(got, want)
    for a, b in zip(ref.trains, run(net, x, "brian2", "float", record=True).trains):
        assert np.array_equal(a, b)
    for a, b in zip(ref.trains, run(net, x, "lava", "float", record=True).trains):
        assert np.array_equal(a, b)
    bad = _threshold_graph(rng)
    bad.nodes["th0"] = nir.Threshold(threshold=np.ones(8))
    bad.edges = [("input", "fc1"), ("fc1", "lif"), ("lif", "th0"), ("th0", "fc2"), *bad.edges[3:]]
    with pytest.raises(GraphError, match="Threshold node 'th0' follows 'lif' \\(LIF\\)"):
        from_nir(bad, dt=1e-3)
