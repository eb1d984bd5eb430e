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
        assert nb.activation_sparsity == pytest.approx(1 - ours.layer_spikes.sum() / ours.neuron_updates.sum(), rel=1e-12)
        n_w = sum(l.weight.size for l in net.layers)
        n_zero = sum(int((l.fixed.weight == 0).sum()) for l in net.layers)
        assert nb.connection_sparsity == pytest.approx(n_zero / n_w, abs=5e-5)  # NeuroBench rounds to 4 decimals
        acs, zeros, weights = acs + nb.effective_acs, zeros + n_zero, weights + n_w
        assert nb.footprint_bytes == 4 * n_w
    report = simulate(digits_bundle, x, digits_data.test.y, 1.0, "all", "torch", "fixed", compare=False).neurobench
    assert report["SynapticOperations"]["Effective_ACs"] == pytest.approx(acs, rel=1e-12)
    assert report["ConnectionSparsity"] == pytest.approx(zeros / weights, rel=1e-12)
    assert report["Footprint"] == 4 * weights
