"""NeuroBench's own metrics on the deployed digits members equal our counters, member by member
and for the whole ensemble (all awake)."""

from __future__ import annotations

import pytest

from sne_deploy.simulators import run
from sne_deploy.simulators.encoding import encode_regular


def test_neurobench_counts_what_we_count(digits_bundle, digits_data):
    from sne_deploy.neurobench_metrics import member_metrics
    from sne_deploy.runtime import simulate

    x = digits_data.test.flat()
    spikes = encode_regular(x, digits_bundle.steps)
    acs, zeros, weights = 0.0, 0.0, 0
    for net in digits_bundle.networks:
        nb = member_metrics(net, spikes, "fixed")
        ours = run(net, spikes, "reference", "fixed")
        assert nb.effective_acs == pytest.approx(ours.synaptic_events.sum(1).mean(), rel=1e-12)
        assert nb.effective_macs == 0.0
        assert nb.activation_sparsity == pytest.approx(
            1 - ours.layer_spikes.sum() / ours.neuron_updates.sum(), rel=1e-12
        )
        n_w = sum(l.weight.size for l in net.layers)
        n_zero = sum(int((l.fixed.weight == 0).sum()) for l in net.layers)
        assert nb.connection_sparsity == pytest.approx(n_zero / n_w, abs=5e-5)  # NeuroBench rounds to 4 decimals
        acs, zeros, weights = acs + nb.effective_acs, zeros + n_zero, weights + n_w
        assert nb.footprint_bytes == 4 * n_w
    report = simulate(digits_bundle, x, digits_data.test.y, 1.0, "all", "torch", "fixed", compare=False).neurobench
    assert report["SynapticOperations"]["Effective_ACs"] == pytest.approx(acs, rel=1e-12)
    assert report["ConnectionSparsity"] == pytest.approx(zeros / weights, rel=1e-12)
    assert report["Footprint"] == 4 * weights


def test_neurobench_adapter_runs_the_one_loop_recurrence_and_dynamics_included():
    """A recurrent layer with a current bias and sinabs-like dynamics: NeuroBench's counts still
    equal ours (the adapter runs loop.run_loop, so nothing the loop knows is left out)."""
    import numpy as np

    from sne_deploy.neurobench_metrics import member_metrics
    from sne_deploy.simulators.network import Network, make_layer
    from sne_deploy.simulators.neuron import Dynamics
    from sne_deploy.simulators.random_nets import random_spikes

    rng = np.random.default_rng(2)
    l1 = make_layer(
        "l1",
        rng.integers(-2, 3, (12, 9)).astype(float),
        0.5,
        0.25,
        2.0,
        ibias=0.2,
        recurrent=rng.integers(-1, 2, (12, 12)).astype(float),
    )
    l2 = make_layer("l2", rng.integers(-2, 3, (4, 12)).astype(float), 1.0, 0.5, 1.5)
    net = Network((l1, l2), dynamics=Dynamics("ge", "subtract"))
    spikes = random_spikes(20, 12, 9, rate=0.4, seed=3)
    nb, ours = member_metrics(net, spikes, "float"), run(net, spikes, "reference", "float", record=True)
    assert ours.layer_spikes.sum() > 0
    # we count every spike's recurrent events (the chip routes them); NeuroBench only those that
    # arrive within the sample: the last step's recurrent spikes are the difference
    after_the_end = ours.trains[0][:, -1].astype(float) @ l1.recurrent_fan_out("float")
    assert after_the_end.mean() > 0
    assert nb.effective_acs == pytest.approx(ours.synaptic_events.sum(1).mean() - after_the_end.mean(), rel=1e-12)
    assert nb.activation_sparsity == pytest.approx(1 - ours.layer_spikes.sum() / ours.neuron_updates.sum(), rel=1e-12)


def test_neurobench_counts_an_ann_baselines_macs_on_its_non_zero_inputs():
    """The baselines' Effective_MACs (benchmarks/fashion_baselines.py): NeuroBench counts the
    multiplications by non-zero inputs, which for an MLP we can count by hand."""
    import numpy as np
    import torch
    from torch import nn

    from sne_deploy.neurobench_metrics import ann_metrics

    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(20, 8), nn.ReLU(), nn.Linear(8, 3))
    x = np.random.default_rng(0).random((50, 1, 4, 5)).astype(np.float32)
    x[x < 0.4] = 0.0
    with torch.no_grad():
        hidden = torch.relu(net[1](torch.from_numpy(x).flatten(1))).numpy()
    by_hand = (np.count_nonzero(x.reshape(50, -1), axis=1) * 8 + np.count_nonzero(hidden, axis=1) * 3).mean()
    m = ann_metrics(net, x, batch=16)
    assert m.effective_macs == pytest.approx(by_hand) and m.effective_acs == 0
    assert m.footprint_bytes == 4 * (20 * 8 + 8 + 8 * 3 + 3)
    assert m.activation_sparsity == pytest.approx(1 - np.count_nonzero(hidden) / hidden.size)
