"""Conv2d and SumPool2d: unrolled into the exact matrices PyTorch's operators apply, and a
convolutional NIR graph runs spike-exact on every backend."""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sne_deploy.simulators import GraphError, from_nir, run
from sne_deploy.simulators.fixed_point import quantize_layer
from sne_deploy.simulators.linear_maps import (
    conv2d_geometry,
    conv2d_matrix,
    conv_kernel,
    geometry_matrix,
    sumpool2d_matrix,
    synapse_operator,
)
from sne_deploy.simulators.loop import NUMPY, run_loop
from sne_deploy.simulators.network import Network
from sne_deploy.simulators.random_nets import random_conv_graph, random_spikes

CONV_ARGS = "c_in, c_out, k, stride, padding, dilation, groups"
# strides, paddings (int, pair, 'same', 'valid'), dilation, groups, a non-square kernel
CONV_CASES = [
    (1, 4, 3, 1, 1, 1, 1),
    (2, 3, (3, 2), (2, 1), (0, 1), 1, 1),
    (4, 4, 3, 1, "same", 2, 2),
    (3, 6, 2, 2, "valid", 1, 3),
]


@pytest.mark.parametrize(CONV_ARGS, CONV_CASES)
def test_conv2d_matrix_is_torch_conv2d(c_in, c_out, k, stride, padding, dilation, groups):
    rng = np.random.default_rng(0)
    kh, kw = (k, k) if isinstance(k, int) else k
    weight = rng.normal(size=(c_out, c_in // groups, kh, kw))
    x = rng.normal(size=(c_in, 9, 7))
    matrix, out_shape = conv2d_matrix(weight, x.shape, stride, padding, dilation, groups)
    want = F.conv2d(
        torch.from_numpy(x)[None],
        torch.from_numpy(weight),
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
    )[0].numpy()
    assert out_shape == want.shape
    np.testing.assert_allclose(matrix @ x.ravel(), want.ravel(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(CONV_ARGS, CONV_CASES + [(2, 8, 5, 2, 2, 1, 1)])
def test_the_conv_product_computes_the_unrolled_matrix_exactly(c_in, c_out, k, stride, padding, dilation, groups):
    """The reference's product for a conv layer adds the same integer products as the dense matrix
    (fixed point: exact), and the kernel read back out of the matrix is the kernel put in."""
    rng = np.random.default_rng(3)
    kh, kw = (k, k) if isinstance(k, int) else k
    kernel = rng.integers(-3, 4, size=(c_out, c_in // groups, kh, kw)).astype(np.float64)
    geom = conv2d_geometry(kernel.shape, (c_in, 9, 7), stride, padding, dilation, groups)
    matrix = geometry_matrix(kernel, geom)
    np.testing.assert_array_equal(matrix, conv2d_matrix(kernel, (c_in, 9, 7), stride, padding, dilation, groups)[0])
    np.testing.assert_array_equal(conv_kernel(matrix, geom), kernel)
    x = rng.integers(0, 3, size=(5, matrix.shape[1])).astype(np.float64)  # spikes or event counts
    np.testing.assert_array_equal(synapse_operator(matrix, geom)(x), x @ matrix.T)


def test_a_matrix_that_is_no_longer_the_convolution_is_computed_as_a_matrix():
    kernel = np.random.default_rng(4).normal(size=(4, 2, 3, 3))
    geom = conv2d_geometry(kernel.shape, (2, 10, 10), 2, 1)
    matrix = geometry_matrix(kernel, geom)
    scaled = matrix * np.linspace(0.5, 2.0, matrix.shape[0])[:, None]  # a per-neuron gain on each row
    assert conv_kernel(scaled, geom) is None
    assert conv_kernel(matrix[:, :-1], geom) is None
    x = (np.random.default_rng(5).random((6, matrix.shape[1])) < 0.3).astype(np.float64)
    np.testing.assert_allclose(
        synapse_operator(scaled, geom)(x), x @ scaled.T, rtol=1e-12, atol=1e-12
    )  # sparse product


def test_conv_layers_keep_their_geometry_and_run_as_convolutions_spike_exact():
    """A NIR conv net: each Conv2d layer carries its geometry (through the worker's array form
    too); the reference computed with convolutions and sparse products gives exactly the spikes
    of the dense matrix products, float and fixed point."""
    from sne_deploy.simulators.fixed_point import quantize_network

    net = from_nir(random_conv_graph(in_shape=(2, 14, 14), dense=(20, 5), vth=(2, 3, 3, 4, 3)))
    assert [l.conv is not None for l in net.layers] == [True, True, True, False, False]
    assert Network.from_arrays(net.to_arrays()).layers[1].conv == net.layers[1].conv
    qnet, report = quantize_network(net)
    assert all(q.exact for q in report)
    x = random_spikes(6, 30, net.n_in, rate=0.15, seed=2)
    dense = NUMPY._replace(synapses=None)  # every layer as one dense matrix product
    for network, mode in ((net, "float"), (qnet, "fixed")):
        fast, slow = run_loop(network, x, mode, True), run_loop(network, x, mode, True, dense)
        assert all(int(t.sum()) > 0 for t in fast.trains), f"{mode}: a layer never spiked"
        for a, b in zip(fast.trains, slow.trains):
            assert np.array_equal(a, b), mode
        assert fast.saturated.tolist() == slow.saturated.tolist()


@pytest.mark.parametrize("backend", ["brian2", "lava"])
def test_sparse_conv_net_is_spike_exact_on_the_simulators(request, backend):
    """Layers that are mostly zeros run on Lava's Sparse process (and as non-zero synapses on
    Brian2, as always): spike for spike the reference's, float and fixed point, for 0/1 spikes and
    for event counts (graded spikes into Lava's Sparse)."""
    request.getfixturevalue(f"{backend}_ready")
    from sne_deploy.simulators.fixed_point import quantize_network

    net = from_nir(random_conv_graph(in_shape=(2, 14, 14), dense=(20, 5), vth=(2, 3, 3, 4, 3)))
    qnet = quantize_network(net)[0]
    spikes = random_spikes(5, 20, net.n_in, rate=0.15, seed=3)
    counts = spikes * np.random.default_rng(4).integers(1, 4, spikes.shape)  # an event camera's frames: counts per bin
    for network, mode, x in ((n, m, inp) for inp in (spikes, counts) for n, m in ((net, "float"), (qnet, "fixed"))):
        ref = run(network, x, "reference", mode, record=True)
        got = run(network, x, backend, mode, record=True)
        if backend == "lava":
            kinds = got.details["sparse_layers"]  # the 14x14 input's first conv is sparse, the 5-output layer dense
            assert kinds[0] and not kinds[-1], kinds
        for a, b in zip(ref.trains, got.trains):
            assert int((a != b).sum()) == 0, f"{mode}: {backend} differs from the reference"


@pytest.mark.parametrize("kernel, stride, padding", [(2, 2, 0), (3, 2, 1), ((2, 3), (1, 2), 0)])
def test_sumpool2d_matrix_is_a_sum_over_windows(kernel, stride, padding):
    x = np.random.default_rng(1).normal(size=(3, 8, 9))
    matrix, out_shape = sumpool2d_matrix(x.shape, kernel, stride, padding)
    want = F.avg_pool2d(torch.from_numpy(x)[None], kernel, stride, padding, divisor_override=1)[0].numpy()
    assert out_shape == want.shape
    np.testing.assert_allclose(matrix @ x.ravel(), want.ravel(), rtol=1e-12, atol=1e-12)


def _lif(shape, vth):
    tau = np.full(shape, 2.0)  # dt = 1: dv = 0.5, gain r*dt/tau = 1
    return nir.LIF(tau=tau, r=tau.copy(), v_leak=np.zeros(shape), v_threshold=np.full(shape, vth))


def conv_graph() -> nir.NIRGraph:
    """(1, 8, 8) -> Conv 4x3x3 pad 1 -> LIF -> SumPool 2x2 -> Conv 6x3x3 -> LIF -> Flatten -> Affine 3 -> LIF,
    written by nir the way nirtorch writes a small convolutional SNN."""
    rng = np.random.default_rng(7)
    w1 = rng.choice([-1.0, 0.0, 1.0], size=(4, 1, 3, 3), p=[0.2, 0.3, 0.5])
    w2 = rng.choice([-1.0, 0.0, 1.0], size=(6, 4, 3, 3), p=[0.3, 0.3, 0.4])
    w3 = rng.choice([-1.0, 0.0, 1.0], size=(3, 24))
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([1, 8, 8])}),
            "conv1": nir.Conv2d(
                input_shape=(8, 8), weight=w1, stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(4)
            ),
            "lif1": _lif((4, 8, 8), 1.5),
            "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
            "conv2": nir.Conv2d(
                input_shape=(4, 4), weight=w2, stride=1, padding=0, dilation=1, groups=1, bias=np.zeros(6)
            ),
            "lif2": _lif((6, 2, 2), 2.5),
            "flat": nir.Flatten(input_type={"input": np.array([6, 2, 2])}, start_dim=0),
            "fc": nir.Affine(weight=w3, bias=np.zeros(3)),
            "lif3": _lif((3,), 1.5),
            "output": nir.Output(output_type={"output": np.array([3])}),
        },
        edges=[
            ("input", "conv1"),
            ("conv1", "lif1"),
            ("lif1", "pool"),
            ("pool", "conv2"),
            ("conv2", "lif2"),
            ("lif2", "flat"),
            ("flat", "fc"),
            ("fc", "lif3"),
            ("lif3", "output"),
        ],
        type_check=False,
    )


def test_conv_graph_maps_onto_three_layers(tmp_path):
    nir.write(str(tmp_path / "conv.nir"), conv_graph())
    net = from_nir(tmp_path / "conv.nir")
    assert [(l.n_in, l.n_out) for l in net.layers] == [(64, 256), (256, 24), (24, 3)]
    # pool then conv2 compose into one matrix: each conv2 weight, used at 2x2 output positions, now
    # reaches a 2x2 window of lif1 (windows never overlap: stride 2)
    assert np.count_nonzero(net.layers[1].weight) == 4 * 4 * np.count_nonzero(conv_graph().nodes["conv2"].weight)
    assert net.layers[0].params.dv == 0.5 and net.layers[0].params.du == 1.0


@pytest.mark.parametrize("backend", ["reference", "brian2", "lava"])
def test_conv_graph_is_spike_exact_on_every_backend(request, backend):
    if backend != "reference":
        request.getfixturevalue(f"{backend}_ready")
    net = from_nir(conv_graph())
    x = random_spikes(7, 10, 64, rate=0.4, seed=5)
    qnet = Network(tuple(quantize_layer(l) for l in net.layers))
    for network, mode in ((net, "float"), (qnet, "fixed")):
        ref = run(network, x, "reference", mode, record=True)
        got = run(network, x, backend, mode, record=True) if backend != "reference" else ref
        if backend == "reference":  # the reference itself against the dense conv done by torch, layer 1
            drive = F.conv2d(
                torch.from_numpy(x.astype(np.float64)).reshape(70, 1, 8, 8),
                torch.from_numpy(np.asarray(conv_graph().nodes["conv1"].weight)),
                padding=1,
            )
            assert np.allclose(drive.reshape(70, -1).numpy(), x.reshape(70, 64) @ net.layers[0].weight.T)
        assert all(int(t.sum()) > 0 for t in ref.trains), f"{mode}: a layer never spiked"
        for a, b in zip(ref.trains, got.trains):
            assert int((a != b).sum()) == 0, f"{mode}: {backend} differs from the reference"


def test_conv_shape_errors_name_the_node():
    g = conv_graph()
    g.nodes["input"] = nir.Input(input_type={"input": np.array([2, 8, 8])})  # conv1 wants 1 channel
    with pytest.raises(GraphError, match="conv1"):
        from_nir(g)
    g = conv_graph()
    g.nodes["fc"] = nir.Affine(weight=np.ones((3, 25)), bias=np.zeros(3))
    with pytest.raises(GraphError, match="'fc'.*25 inputs, gets 24"):
        from_nir(g)


@pytest.mark.parametrize("kernel, stride, padding", [(2, 2, 0), (3, 2, 1)])
def test_avgpool2d_node_is_pytorchs_average_pooling(kernel, stride, padding):
    """snnTorch and SpikingJelly export nn.AvgPool2d as NIR AvgPool2d: SumPool2d / k², padded zeros counted."""
    from sne_deploy.simulators.nir_read import _linear

    x = np.random.default_rng(2).normal(size=(2, 6, 6))
    node = nir.AvgPool2d(
        kernel_size=np.array([kernel, kernel]), stride=np.array([stride, stride]), padding=np.array([padding, padding])
    )
    step = _linear("pool", node, x.shape, nir)
    want = F.avg_pool2d(torch.from_numpy(x)[None], kernel, stride, padding)[0].numpy()
    assert step.out_shape == want.shape
    np.testing.assert_allclose(step.weight @ x.ravel(), want.ravel(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", ["brian2", "lava"])
def test_conv_student_is_spike_exact_on_the_simulators(request, backend):
    """A trained-shape convolutional student (sne-deploy's own export: ternary kernels, folded
    thresholds and biases, exact integers) on Brian2 and Lava, float and fixed point."""
    request.getfixturevalue(f"{backend}_ready")
    from sne_deploy.config import CONV_STUDENT
    from sne_deploy.snn import StudentSNN, StudentSpec, conv_layout

    convs = conv_layout((1, 28, 28), CONV_STUDENT)
    st = StudentSNN(StudentSpec(784, (), tuple(convs), 4), 6, seed=3)
    assert st.sizes == [784, 8 * 9 * 9, 16 * 5 * 5, 6]
    with torch.no_grad():
        for b in st.biases:
            b.uniform_(-0.2, 0.4)
    net = st.to_network("conv")
    x = random_spikes(6, 4, 784, rate=0.3, seed=6)
    for mode in ("float", "fixed"):
        ref = run(net, x, "reference", mode, record=True)
        got = run(net, x, backend, mode, record=True)
        assert int(ref.trains[0].sum()) > 0 and int(ref.trains[1].sum()) > 0
        for a, b in zip(ref.trains, got.trains):
            assert int((a != b).sum()) == 0, f"{backend} {mode}"
