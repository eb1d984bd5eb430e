"""One serialisation per record: to_dict/from_dict restores every field and type, through the
Lava worker's npz form and through NIR metadata (whose keys are the records' own field names)."""

from __future__ import annotations

from dataclasses import replace

import nir
import numpy as np
import pytest

from sne_deploy.simulators import plain
from sne_deploy.simulators.fixed_point import quantize_network
from sne_deploy.simulators.linear_maps import ConvGeometry
from sne_deploy.simulators.network import FixedLayer, Layer, Network, make_layer
from sne_deploy.simulators.neuron import Dynamics, LIFFixedParams, LIFParams
from sne_deploy.simulators.nir_io import from_nir, to_nir
from sne_deploy.simulators.random_nets import random_conv_graph


def _every_field_network() -> Network:
    """Per-neuron decays, a current bias, recurrence, fixed point and non-Loihi dynamics."""
    rng = np.random.default_rng(0)
    w_int = 2 * rng.integers(-3, 4, (6, 5))
    rec_int = 2 * rng.integers(-2, 3, (6, 6))
    fixed = FixedLayer(
        w_int,
        LIFFixedParams(
            np.arange(6) + 1000,
            1024,
            np.arange(6, dtype=np.int64) + 5,
            np.arange(6, dtype=np.int64) - 3,
            2,
            np.arange(6, dtype=np.int64),
        ),
        rec_int,
    )
    l0 = make_layer(
        "a",
        w_int / 4.0,
        np.linspace(0.25, 0.5, 6),
        0.25,
        2.0,
        0.125,
        fixed=fixed,
        ibias=np.linspace(0, 1, 6),
        recurrent=rec_int / 4.0,
    )
    l1 = make_layer("b", rng.normal(size=(3, 6)), 1.0, 0.5, np.inf, spiking=False)
    return Network((l0, l1), dt=0.5, dynamics=Dynamics("ge", "subtract-next", "exp"))


def test_every_record_round_trips_through_its_dict_and_the_workers_arrays(tmp_path):
    net = _every_field_network()
    for rec, cls in (
        (net.layers[0].params, LIFParams),
        (net.layers[0].fixed.params, LIFFixedParams),
        (net.layers[0].fixed, FixedLayer),
        (net.layers[0], Layer),
        (net.dynamics, Dynamics),
    ):
        back = cls.from_dict(rec.to_dict())
        assert plain.same(back, rec) and type(back) is cls
    np.savez(tmp_path / "job.npz", **net.to_arrays())
    with np.load(tmp_path / "job.npz", allow_pickle=False) as a:
        back = Network.from_arrays(a)
    assert plain.same(back.to_dict(), net.to_dict())
    assert isinstance(back.layers[1].params.du, float) and back.layers[0].params.ibias is not None
    assert isinstance(back.layers[0].fixed.params.dv_fx, int) and back.layers[0].fixed.params.du_fx.dtype == np.int64
    geom = ConvGeometry((2, 8, 8), (4, 4, 4), (4, 2, 3, 3), (2, 2), (1, 1), (1, 1), 1)
    assert ConvGeometry.from_dict(plain.unflatten(plain.flatten(geom.to_dict()))) == geom


def test_same_sees_every_field():
    net = _every_field_network()
    l0 = net.layers[0]
    assert plain.same(l0, l0)
    changed = [
        replace(l0, recurrent=None),
        replace(l0, fixed=replace(l0.fixed, recurrent=l0.fixed.recurrent + 2)),
        replace(l0, params=l0.params._replace(ibias=None)),
        replace(l0, spiking=False),
        replace(l0, fixed=replace(l0.fixed, params=l0.fixed.params._replace(bias_exp=3))),
        replace(l0, weight=l0.weight.astype(np.float32)),
    ]
    assert not any(plain.same(c, l0) for c in changed)


def test_nir_metadata_carries_the_layer_dict_under_its_field_names_and_reads_back_equal(tmp_path):
    net, _ = quantize_network(from_nir(random_conv_graph(in_shape=(2, 10, 10), dense=(12, 4), vth=(2, 3, 3, 4, 3))))
    nir.write(str(tmp_path / "g.nir"), to_nir(net))
    graph = nir.read(str(tmp_path / "g.nir"), type_check=False)
    keys = {k for node in graph.nodes.values() for k in (node.metadata or {}) if k.startswith("sne_")}
    fields = {k for layer in net.layers for k in plain.flatten(layer.to_dict())}
    assert {k[len("sne_") :] for k in keys} - {"kernel", "fixed.kernel"} <= fields
    assert {"sne_params.du", "sne_fixed.params.bias_exp", "sne_fixed.weight", "sne_kernel", "sne_fixed.kernel"} <= keys
    back = from_nir(tmp_path / "g.nir")
    for a, b in zip(net.layers, back.layers):
        assert plain.same(replace(a, name=b.name), b)


def test_edited_exact_metadata_is_refused(tmp_path):
    net, _ = quantize_network(from_nir(random_conv_graph(in_shape=(2, 10, 10), dense=(12, 4), vth=(2, 3, 3, 4, 3))))
    graph = to_nir(net)
    graph.nodes["lif3"].metadata["sne_params.vth"] = graph.nodes["lif3"].metadata["sne_params.vth"] + 1.0
    with pytest.raises(Exception, match="disagrees with the graph's standard v_threshold"):
        from_nir(graph)
