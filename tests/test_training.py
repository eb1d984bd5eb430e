"""Training: accuracy floors on digits, partitions, TNA and regularisers, checkpoints."""

from __future__ import annotations

import os
import pickle
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from sne_deploy import checkpoint
from sne_deploy.checkpoint import CheckpointError
from sne_deploy.member_stack import MemberStack
from sne_deploy.model import TrainConfig, encode
from sne_deploy.partition import MODES, live_dimensions, partition_features
from sne_deploy.simulators import run
from sne_deploy.simulators.encoding import encode_spikes
from sne_deploy.simulators.errors import InputError
from sne_deploy.simulators.random_nets import random_spikes
from sne_deploy.snn import StudentSNN, StudentSpec, run_network_torch
from sne_deploy.students import stack_loss
from sne_deploy.train import train

from .helpers import float64_stack


def test_digits_accuracy_floors(digits_model):
    s = digits_model.summary
    assert s.teacher_accuracy >= 0.95
    assert s.ensemble_accuracy["float"] >= 0.90
    assert abs(s.ensemble_accuracy["fixed"] - s.ensemble_accuracy["float"]) <= 0.01


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("d, k", [(32, 4), (30, 4), (64, 8), (7, 7)])
def test_partitions_are_disjoint_balanced_and_cover(mode, d, k):
    rng = np.random.default_rng(0)
    f = rng.standard_normal((300, d)) @ rng.standard_normal((d, d))
    groups = partition_features(f, k, mode, seed=1)
    assert len(groups) == k
    allidx = np.concatenate(groups)
    assert sorted(allidx.tolist()) == list(range(d))
    assert max(map(len, groups)) - min(map(len, groups)) <= 1


def test_informed_partition_groups_correlated_dimensions():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((500, 4))
    # 4 latent factors, each copied into 4 noisy dimensions, the dimensions interleaved
    f = np.repeat(base, 4, axis=1) + 0.1 * rng.standard_normal((500, 16))
    perm = rng.permutation(16)
    groups = partition_features(f[:, perm], 4, "informed")
    factor = (np.arange(16) // 4)[perm]
    assert all(len(set(factor[g])) == 1 for g in groups)


def _loss(cfg, student, twin=None):
    torch.manual_seed(0)
    x = encode(np.random.default_rng(0).random((16, 20)), 8)
    target = torch.zeros(2, 16, 3)
    loss, z, _ = stack_loss(student, x, target, cfg)
    if twin is not None:
        lt, z_t, _ = stack_loss(twin, x, target, cfg)
        loss = loss + lt + cfg.tna * torch.nn.functional.mse_loss(z, z_t)
    return float(loss)


def test_surrogate_gradient_is_the_slope_one_fast_sigmoid():
    """Training's spike function: the strict Heaviside forward and 1 / (1 + |x|)^2 backward. A
    norse release that changed SuperSpike's gradient would change every trained student."""
    from sne_deploy.snn import _surrogate

    x = torch.tensor([-2.0, -0.5, 0.0, 1e-3, 0.5, 3.0], requires_grad=True)
    s = _surrogate(x)
    assert s.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    s.sum().backward()
    assert torch.allclose(x.grad, 1.0 / (1.0 + x.detach().abs()) ** 2)


def test_regularisers_and_tna_change_the_loss():
    st = MemberStack(StudentSpec(20, (16,), steps=8), [3, 2], seed=0)
    twin = MemberStack(StudentSpec(20, (16,), steps=8), [3, 2], ternary=False, seed=1)
    base = TrainConfig()
    l0 = _loss(base, st)
    assert _loss(replace(base, spike_reg=1.0), st) > l0
    assert _loss(replace(base, logit_reg=1.0), st) > l0
    assert _loss(replace(base, tna=1.0), st, twin) != _loss(replace(base, tna=0.5), st, twin)


def test_member_stack_equals_its_members_run_one_by_one():
    """The batched module computes, member by member, what each exported StudentSNN computes
    (padding of the smaller groups included), forward counts and spike totals alike (float64, so
    a different summation order cannot flip a threshold tie)."""
    stack = float64_stack(20, [16], [4, 3, 4], 8, dv=0.125, seed=2)
    x = encode(np.random.default_rng(1).random((12, 20)), 8).double()
    with torch.no_grad():
        out, total = stack(x)
        for k, st in enumerate(stack.members()):
            o, t = st.double()(x)
            assert st.sizes == [20, 16, [4, 3, 4][k]]
            assert torch.equal(out[k, :, : o.shape[1]], o) and not out[k, :, o.shape[1] :].any()
            assert torch.allclose(total[k], t)


def test_input_delta_makes_the_input_layer_sparser_in_training_and_export(tmp_path):
    """A larger ternary threshold on the input layer keeps fewer of its synapses and no other
    layer's; the stack's members carry it, compute what the stack computes, and export exactly
    the ternary weights they trained with."""
    from sne_deploy.quantization import TWN_DELTA, ternarize

    twn = float64_stack(30, [16], [4, 3], 6, seed=3)
    sparse = float64_stack(30, [16], [4, 3], 6, seed=3, input_delta=2.0)
    x = encode(np.random.default_rng(4).random((10, 30)), 6).double()
    with torch.no_grad():
        out, _ = sparse(x)
        members = sparse.members()
        for k, st in enumerate(members):
            assert st.input_delta == 2.0 and st.delta(1) == TWN_DELTA
            o, _ = st.double()(x)
            assert torch.equal(out[k, :, : o.shape[1]], o)
            net, net_twn = st.to_network(), twn.members()[k].to_network()
            w0 = ternarize(st.weights[0], delta=2.0)[0].numpy()
            assert np.array_equal(net.layers[0].weight != 0, w0 != 0)  # the exported synapses are the trained ones
            assert (net.layers[0].weight != 0).sum() < 0.6 * (net_twn.layers[0].weight != 0).sum()
            assert np.array_equal(net.layers[1].weight != 0, net_twn.layers[1].weight != 0)  # other layers: TWN's rule


def test_end_to_end_head_and_logit_kd(tmp_path):
    """train_head trains the teacher's classifier with the students (the head starts from it, so
    it differs from the teacher's); logit_kd changes the loss; the labels objective refuses
    both; a checkpoint keeps input_delta and one written before it existed loads with TWN's."""
    from sne_deploy.quantization import TWN_DELTA

    cfg = TrainConfig(
        epochs=2,
        teacher_epochs=5,
        limit_train=400,
        head_epochs=0,
        gate_epochs=1,
        ensemble_ce=1.0,
        member_ce=1.0,
        input_delta=1.5,
    )
    frozen = train(replace(cfg, train_head=False, logit_kd=0.0), progress=False)
    assert torch.equal(frozen.head.head.weight, frozen.teacher.classifier.weight)  # no head epochs: the teacher's
    e2e = train(replace(cfg, train_head=True, logit_kd=1.0), progress=False)
    assert not torch.equal(e2e.head.head.weight, e2e.teacher.classifier.weight)
    assert e2e.summary.train_log["loss"] != frozen.summary.train_log["loss"]
    with pytest.raises(InputError, match="--train-head and --logit-kd need"):
        train(replace(cfg, objective="labels", train_head=True), progress=False)
    path = tmp_path / "m.pt"
    checkpoint.save(e2e, path)
    back = checkpoint.load(path)
    assert back.config.input_delta == 1.5 and back.students[0].input_delta == 1.5
    assert all(np.array_equal(a.layers[0].weight, b.layers[0].weight) for a, b in zip(back.networks, e2e.networks))
    payload = torch.load(path, weights_only=True)
    del payload["config"]["input_delta"]
    torch.save(payload, path)
    assert checkpoint.load(path).config.input_delta == TWN_DELTA


def test_centred_encoding_trains_exports_and_runs_spike_exact(tmp_path):
    """A model trained on the centred code records it in its checkpoint and bundle, every backend
    input comes from the bundle's code (the reference simulator reproduces the torch members spike
    for spike), it differs from the phase-0 code's model, and a checkpoint from before the option
    loads with the phase-0 code it was trained on."""
    from sne_deploy.data import load_dataset
    from sne_deploy.deploy import bundle_parts
    from sne_deploy.exporters.bundle import load_bundle, write_bundle
    from sne_deploy.exporters.manifest import BundleError, Manifest
    from sne_deploy.runtime import simulate

    cfg = TrainConfig(
        epochs=1, teacher_epochs=3, limit_train=300, head_epochs=0, gate_epochs=1, encoding="regular-if-centred"
    )
    model = train(cfg, progress=False)
    assert model.summary.encoding == "regular-if-centred"
    floor = train(replace(cfg, encoding="regular-if"), progress=False)
    assert model.summary.train_log["loss"] != floor.summary.train_log["loss"]
    ds = load_dataset("digits")
    write_bundle(bundle_parts(model, ds), tmp_path / "b", "nir")
    bundle = load_bundle(tmp_path / "b")
    assert bundle.manifest.encoding == "regular-if-centred"
    x = ds.test.flat()[:40]
    assert np.array_equal(bundle.spikes(x), encode_spikes(x, bundle.steps, "regular-if-centred"))
    rep = simulate(bundle, x, ds.test.y[:40], 1.0, "all", "reference", "fixed")
    assert rep.agreement.spike_mismatches == 0 and rep.agreement.prediction_agreement == 1.0
    d = bundle.manifest.to_dict()
    with pytest.raises(BundleError, match="encoding 'poisson' is none of"):
        Manifest.from_dict({**d, "encoding": "poisson"}, "b")
    path = tmp_path / "m.pt"
    checkpoint.save(model, path)
    assert checkpoint.load(path).config.encoding == "regular-if-centred"
    payload = torch.load(path, weights_only=True)
    del payload["config"]["encoding"]
    torch.save(payload, path)
    assert checkpoint.load(path).config.encoding == "regular-if"


@pytest.mark.lava
def test_graded_code_trains_holds_its_input_and_runs_spike_exact_on_lava(tmp_path, lava_ready):
    """``--encoding graded``: the students' first layer holds the one graded input in its current
    (HOLD_DU) and the export folds the payload's 1/15 into its threshold, so the exported float
    network computes what the trained student does; Lava reproduces the torch fixed-point members
    spike for spike; the input layer's events are its messages (all graded, NeuroBench's MACs),
    far fewer than the spikes of the rate code at the same T."""
    from sne_deploy.data import load_dataset
    from sne_deploy.deploy import bundle_parts
    from sne_deploy.exporters.bundle import load_bundle, write_bundle
    from sne_deploy.neurobench_metrics import member_metrics
    from sne_deploy.runtime import simulate
    from sne_deploy.simulators.neuron import HOLD_DU
    from sne_deploy.snn import run_network_torch

    cfg = TrainConfig(epochs=2, teacher_epochs=3, limit_train=400, head_epochs=1, gate_epochs=1, encoding="graded")
    model = train(cfg, progress=False)
    net = model.networks[0]
    assert net.graded_input == 15 and net.layers[0].params.du == HOLD_DU and net.layers[1].params.du == 1.0
    ds = load_dataset("digits")
    x = ds.test.flat()[:60]
    spikes = encode_spikes(x, cfg.resolved().steps, "graded")
    with torch.no_grad():
        trained = model.students[0](torch.from_numpy(spikes.astype(np.float32)))[0].numpy()
    exported = run_network_torch(net, spikes, "float").output_counts
    assert exported.sum() > 0 and np.mean(np.all(trained == exported, axis=1)) > 0.95
    checkpoint.save(model, tmp_path / "m.pt")
    back = checkpoint.load(tmp_path / "m.pt").networks[0]
    assert back.graded_input == 15 and np.array_equal(back.layers[0].fixed.weight, net.layers[0].fixed.weight)
    assert back.layers[0].params.du == HOLD_DU and np.array_equal(back.layers[0].params.vth, net.layers[0].params.vth)
    write_bundle(bundle_parts(model, ds), tmp_path / "b.lava", "lava")
    bundle = load_bundle(tmp_path / "b.lava")
    assert bundle.manifest.encoding == "graded" and all(n.graded_input == 15 for n in bundle.networks)
    rep = simulate(bundle, x, ds.test.y[:60], 1.0, "all", "lava", "fixed")
    assert rep.agreement.spike_mismatches == 0 and rep.agreement.prediction_agreement == 1.0
    c = rep.counts
    assert c.graded_events == c.input_synaptic_events > 0
    assert rep.neurobench["SynapticOperations"]["Effective_MACs"] == c.graded_events + c.head_macs + c.gate_macs
    rate_spikes = encode_spikes(x, cfg.resolved().steps, "regular-if").sum((1, 2)).mean()
    assert np.count_nonzero(spikes, axis=(1, 2)).mean() < rate_spikes / 4
    nb = member_metrics(net, spikes, "fixed")
    ours = run_network_torch(net, spikes, "fixed")
    assert nb.effective_macs == pytest.approx(ours.graded_events.mean(), rel=1e-12) and nb.effective_macs > 0
    assert nb.effective_acs == pytest.approx((ours.synaptic_events.sum(1) - ours.graded_events).mean(), rel=1e-12)


def test_dead_teacher_features_join_no_group_and_k_above_live_is_refused():
    rng = np.random.default_rng(0)
    f = np.maximum(rng.standard_normal((400, 12)) @ rng.standard_normal((12, 12)), 0)
    f[:, [1, 5, 9]] = 0.0  # dead ReLU units
    f[:, 7] = 3.0  # a constant one
    assert live_dimensions(f).tolist() == [0, 2, 3, 4, 6, 8, 10, 11]
    for mode in MODES:
        groups = partition_features(f, 4, mode, seed=0)
        assert sorted(np.concatenate(groups).tolist()) == [0, 2, 3, 4, 6, 8, 10, 11]
    with pytest.raises(InputError, match="8 live feature dimensions into 9 groups.*--members <= 8"):
        partition_features(f, 9)


def test_input_events_are_each_spike_times_its_pixels_kept_synapses():
    """The event count the penalty reads is exact (input spikes x the pixel's non-zero fan-out
        after ternarisation, per member), its gradient on a silent pixel's synapses is only the moving
    threshold's (the same for all, growing |w|), and
        descending it drops synapses: the count falls and every kept synapse survives the forward
        pass's own ternarisation."""
    from sne_deploy.quantization import ternarize
    from sne_deploy.students import input_events

    stack = float64_stack(30, [16], [4, 3], 6, seed=3)
    x = encode(np.random.default_rng(4).random((10, 30)), 6).double()
    x[:, :, :5] = 0.0  # five pixels that never spike
    events = input_events(stack, x)
    for k in range(2):
        kept = (ternarize(stack.weights[0][k])[0] != 0).sum(dim=0).double()  # (n_in,) fan-out per pixel
        assert torch.equal(events[k], x.sum(dim=1) @ kept)
    events.sum().backward()
    grad, w = stack.weights[0].grad, stack.weights[0].detach()
    silent = grad[:, :, :5]  # only the threshold's share: the same for every weight, growing |w| (raising Delta)
    assert (silent * w[:, :, :5].sign() < 0).all()
    assert torch.allclose(silent.abs(), silent.abs()[:, :1, :1].expand_as(silent))
    assert (grad[:, :, 5:].abs().amax(dim=(1, 2)) > 2 * silent.abs()[:, 0, 0]).all()  # the busy pixels' own share
    before = float(events.detach().sum())
    opt = torch.optim.SGD(stack.parameters(), lr=0.05)
    for _ in range(20):
        opt.zero_grad()
        input_events(stack, x).sum().backward()
        opt.step()
    assert float(input_events(stack, x).sum()) < 0.8 * before


def test_input_event_cost_drops_the_busy_pixels_synapses_first():
    """Trained with the penalty, the students' input layers cost fewer events on the training
    inputs, and the synapses they keep moved from the busy pixels to the quiet ones: the fan-out
    falls more (relatively) where the pixels spike most. Conv students refuse the option."""
    from sne_deploy.data import load_dataset
    from sne_deploy.quantization import ternarize

    cfg = TrainConfig(epochs=6, teacher_epochs=10, limit_train=500, head_epochs=0, gate_epochs=1)
    x = load_dataset("digits").train.flat()[:500]
    rate = encode(x, 16).sum(dim=1).mean(dim=0).numpy()  # (64,) spikes per pixel and sample
    busy = rate >= np.quantile(rate[rate > 0], 0.75)

    def fan_out(model) -> np.ndarray:  # (members, 64) kept synapses per pixel
        return np.stack([(ternarize(st.weights[0])[0] != 0).sum(dim=0).numpy() for st in model.students])

    plain, cheap = (fan_out(train(replace(cfg, input_event_cost=c), progress=False)) for c in (0.0, 50.0))
    assert (cheap @ rate).sum() < 0.9 * (plain @ rate).sum(), ((plain @ rate).sum(), (cheap @ rate).sum())
    share = [f[:, busy].sum() / f.sum() for f in (plain, cheap)]
    assert share[1] < 0.9 * share[0], share
    with pytest.raises(InputError, match="--input-event-cost .* takes --student mlp"):
        TrainConfig(student="conv", input_event_cost=1.0).checked()


def test_spike_reg_lowers_spikes_on_a_fixed_seed():
    cfg = TrainConfig(epochs=6, teacher_epochs=10, limit_train=500, head_epochs=2, gate_epochs=2)
    plain = train(cfg, progress=False).summary
    reg = train(replace(cfg, spike_reg=2.0), progress=False).summary
    assert reg.spikes_per_sample["float"] < 0.85 * plain.spikes_per_sample["float"], (
        plain.spikes_per_sample["float"],
        reg.spikes_per_sample["float"],
    )


def test_student_export_matches_its_torch_reference_in_both_modes():
    st = StudentSNN(StudentSpec(12, (10,), steps=10, dv=0.125), 4, seed=3)
    with torch.no_grad():
        for b in st.biases:
            b.uniform_(-0.3, 0.3)
    net = st.to_network()
    x = random_spikes(25, 10, 12, seed=1)
    for mode in ("float", "fixed"):
        trains = run_network_torch(net, x, mode, record=True).trains
        ref = run(net, x, "reference", mode, record=True)
        for a, b in zip(trains, ref.trains):
            assert np.array_equal(a, b)
    # float forward used in training agrees with the exported float form on (almost) every count
    with torch.no_grad():
        out, _ = st(torch.from_numpy(x.astype(np.float32)))
    agree = (out.numpy() == run_network_torch(net, x, "float").output_counts).mean()
    assert agree > 0.97


def test_checkpoint_round_trip_is_exact(digits_model, tmp_path, digits_data):
    p = tmp_path / "m.pt"
    checkpoint.save(digits_model, p)
    back = checkpoint.load(p)
    for a, b in zip(digits_model.students, back.students):
        for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
            assert ka == kb and torch.equal(va, vb)
    for a, b in ((digits_model.head, back.head), (digits_model.gate, back.gate), (digits_model.teacher, back.teacher)):
        for va, vb in zip(a.state_dict().values(), b.state_dict().values()):
            assert torch.equal(va, vb)
    for na, nb in zip(digits_model.networks, back.networks):
        for la, lb in zip(na.layers, nb.layers):
            assert np.array_equal(la.fixed.weight, lb.fixed.weight) and np.array_equal(la.params.vth, lb.params.vth)
    assert back.summary.ensemble_accuracy["fixed"] == digits_model.summary.ensemble_accuracy["fixed"]
    assert [g.tolist() for g in back.groups] == [g.tolist() for g in digits_model.groups]


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/sne-ckpt-pwned",))


def test_checkpoint_refuses_code_truncation_and_foreign_files(tmp_path, digits_model):
    evil = tmp_path / "evil.pt"
    torch.save({"format": "sne-deploy-model", "x": _Evil()}, evil)
    with pytest.raises(CheckpointError, match="refusing to load"):
        checkpoint.load(evil)
    assert not os.path.exists("/tmp/sne-ckpt-pwned")
    good = tmp_path / "m.pt"
    checkpoint.save(digits_model, good)
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="truncated or foreign"):
        checkpoint.load(trunc)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not an sne-deploy model"):
        checkpoint.load(foreign)
    with pytest.raises(CheckpointError, match="not found"):
        checkpoint.load(tmp_path / "missing.pt")
    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(CheckpointError):
        checkpoint.load(raw)


def test_plain_labels_objective_trains_without_teacher_signal():
    cfg = TrainConfig(objective="labels", epochs=3, teacher_epochs=5, limit_train=400, head_epochs=2, gate_epochs=2)
    s = train(cfg, progress=False).summary
    assert s.ensemble_accuracy["float"] > 0.3  # well above chance (0.1) from labels alone
    with pytest.raises(ValueError, match="objective"):
        train(replace(cfg, objective="magic"), progress=False)


def test_population_outputs_are_averaged_into_their_dimension():
    """A feature predicted by P output neurons gets their mean; dead dimensions get 0 (their mean)."""
    from sne_deploy.ensemble import HostHead, placement

    p = placement(np.array([2, 2, 0, 0, 0]), 4).numpy()
    assert np.allclose(p[:, 2], [0.5, 0.5, 0, 0, 0]) and np.allclose(p[:, 0], [0, 0, 1 / 3, 1 / 3, 1 / 3])
    assert not p[:, [1, 3]].any()
    head = HostHead(
        [np.array([2, 2]), np.array([0, 0, 0])],
        np.array([1.0, 7.0, 2.0, 5.0]),
        np.ones(4),
        torch.nn.Linear(4, 3),
        steps=4,
    )
    with torch.no_grad():
        f = head.features(torch.tensor([[4.0, 0.0, 4.0, 4.0, 0.0]]), torch.ones(1, 2))
    # readout z = c / T * gamma + beta with gamma 1, beta 0: dim 2 <- mean(1, 0), dim 0 <- mean(1, 1, 0)
    assert np.allclose(f.numpy(), [[1 + 2 / 3, 7.0, 2.5, 5.0]])


# --- convolutional students ------------------------------------------------------------------


def _conv_stack(ternary=True):
    from sne_deploy.config import CONV_STUDENT
    from sne_deploy.snn import conv_layout

    convs = conv_layout((1, 8, 8), CONV_STUDENT)
    stack = float64_stack(64, [], [4, 3, 4], 6, dv=0.125, ternary=ternary, seed=2, convs=convs)
    return stack, convs


def test_conv_member_stack_equals_its_members_and_exports_spike_exact(tmp_path):
    """Conv students: the batched grouped convolutions compute what each member computes alone;
    each exported member keeps its conv geometry, runs spike-exact in both modes, and goes
    through NIR as Conv2d nodes and back bit for bit."""
    import nir

    from sne_deploy.simulators import from_nir, to_nir

    stack, convs = _conv_stack()
    assert stack.sizes == [64, 8 * 2 * 2, 16 * 1 * 1, 4]
    x = encode(np.random.default_rng(1).random((20, 64)), 6).double()
    with torch.no_grad():
        out, total = stack(x)
        members = stack.members()
        for k, st in enumerate(members):
            o, t = st.double()(x)
            assert torch.equal(out[k, :, : o.shape[1]], o) and torch.allclose(total[k], t)
    assert out.sum() > 0
    net = members[0].to_network("m0")
    assert [l.conv is not None for l in net.layers] == [True, True, False]
    xs = random_spikes(15, 6, 64, rate=0.5, seed=4)
    for mode in ("float", "fixed"):
        trains = run_network_torch(net, xs, mode, record=True).trains
        ref = run(net, xs, "reference", mode, record=True)
        assert all(np.array_equal(a, b) for a, b in zip(trains, ref.trains)), mode
    assert sum(int(t.sum()) for t in ref.trains[:2]) > 0, "the conv layers never spiked"
    graph = to_nir(net)
    assert sum(isinstance(v, nir.Conv2d) for v in graph.nodes.values()) == 2
    nir.write(str(tmp_path / "m0.nir"), graph)
    back = from_nir(tmp_path / "m0.nir")
    for a, b in zip(net.layers, back.layers):
        assert np.array_equal(a.weight, b.weight) and np.array_equal(a.fixed.weight, b.fixed.weight)
        assert a.conv == b.conv


def test_conv_students_train_save_and_load():
    from sne_deploy import checkpoint

    cfg = TrainConfig(student="conv", epochs=6, teacher_epochs=20, limit_train=600, head_epochs=5, gate_epochs=5)
    model = train(cfg, progress=False)
    assert all(l.conv is not None for net in model.networks for l in net.layers[:2])
    assert model.summary.ensemble_accuracy["fixed"] > 0.6  # measured 0.74 (the MLP students: 0.77)
    path = Path(tempfile.mkdtemp()) / "conv.pt"
    checkpoint.save(model, path)
    back = checkpoint.load(path)
    for a, b in zip(model.networks, back.networks):
        assert all(
            np.array_equal(x.fixed.weight, y.fixed.weight) and x.conv == y.conv for x, y in zip(a.layers, b.layers)
        )
    with pytest.raises(InputError, match="--student"):
        train(replace(cfg, student="transformer"), progress=False)


def test_conv_layers_option_shapes_the_students():
    from sne_deploy.config import parse_conv_layers
    from sne_deploy.model import student_layout

    layers = parse_conv_layers("8,5,3,1")
    hidden, convs = student_layout(TrainConfig(data="fashion-mnist", student="conv", conv=layers), (1, 28, 28))
    assert hidden == [] and [c.out_shape for c in convs] == [(8, 9, 9)]
    assert [c.out_shape for c in student_layout(TrainConfig(student="conv").resolved(), (1, 8, 8))[1]] == [
        (8, 8, 8),
        (16, 4, 4),
    ]


def test_every_train_option_is_declared_once_and_checked_by_the_library():
    """The parser is built from TrainConfig's fields; the library applies the rules (for the CLI
    and the Python API alike); the per-dataset defaults are exactly the fields left None."""
    from dataclasses import fields

    from sne_deploy.cli import _config_from_args, build_parser
    from sne_deploy.config import DATASET_DEFAULTS, DatasetDefaults

    by_name = {f.name: f for f in fields(TrainConfig)}
    assert all(by_name[f.name].default is None for f in fields(DatasetDefaults))
    assert _config_from_args(build_parser().parse_args(["train"])) == TrainConfig()
    args = build_parser().parse_args(
        [
            "train",
            "--members",
            "4",
            "--no-train-head",
            "--conv-layers",
            "4,3,1,1",
            "--student",
            "conv",
            "--input-delta",
            "1.5",
        ]
    )
    assert _config_from_args(args) == TrainConfig(
        members=4, train_head=False, conv=((4, 3, 1, 1),), student="conv", input_delta=1.5
    )
    assert TrainConfig(data="fashion-mnist").checked().steps == DATASET_DEFAULTS["fashion-mnist"].steps
    for cfg in (TrainConfig(), TrainConfig(student="conv"), TrainConfig(data="fashion-mnist", objective="labels")):
        assert cfg.checked().checked() == cfg.checked()  # the CLI checks, then train() checks the resolved config
    assert TrainConfig().checked().conv is None and TrainConfig(student="conv").checked().conv is not None
    for bad, words in (
        (dict(members=0), "--members must be a number >= 1"),
        (dict(partition="x"), "unknown --partition 'x'"),
        (dict(tna=float("nan")), "--tna must be"),
        (dict(conv=((4, 3, 1, 1),)), "add --student conv"),
        (dict(members=33), "--members 33 exceeds the 32 feature dimensions"),
    ):
        with pytest.raises(InputError, match=words):
            TrainConfig(**bad).checked()


def test_a_pooled_gate_sees_the_average_pooled_image_saves_and_exports(tmp_path):
    """--gate-pool N: the gate's first layer reads the image averaged in N x N windows (N² fewer
    MACs there); the checkpoint rebuilds it, the exported ONNX computes it, and a window larger
    than the image is one line."""
    from sne_deploy.data import load_dataset
    from sne_deploy.deploy import bundle_parts
    from sne_deploy.ensemble import Gate
    from sne_deploy.exporters.bundle import load_bundle, write_bundle
    from sne_deploy.simulators.errors import InputError

    gate = Gate(64, 4, 16, (1, 8, 8), pool=2)
    x = torch.rand(5, 64)
    pooled = torch.nn.functional.avg_pool2d(x.view(5, 1, 8, 8), 2).flatten(1)
    lin1, lin2 = gate.net[3], gate.net[5]
    assert torch.allclose(gate(x), lin2(torch.relu(lin1(pooled))))
    assert gate.macs() == 16 * 16 + 16 * 4 + 64 and Gate(64, 4, 16).macs() == 64 * 16 + 16 * 4
    cfg = TrainConfig(epochs=1, teacher_epochs=2, limit_train=300, head_epochs=0, gate_epochs=2, gate_pool=2)
    model = train(cfg, progress=False)
    path = tmp_path / "m.pt"
    checkpoint.save(model, path)
    again = checkpoint.load(path)
    xs = torch.from_numpy(load_dataset("digits").test.flat()[:30])
    assert again.config.gate_pool == 2 and torch.equal(again.gate(xs), model.gate(xs))
    write_bundle(bundle_parts(again, load_dataset("digits")), tmp_path / "b", "nir")
    onnx_scores = load_bundle(tmp_path / "b").gate_scores(xs.numpy())
    assert np.allclose(onnx_scores, model.gate(xs).detach().numpy(), atol=1e-5)
    with pytest.raises(InputError, match="--gate-pool 9: the inputs are 1x8x8, smaller than one window"):
        train(replace(cfg, gate_pool=9), progress=False)
