"""Runtime: scheduler, energy accounting, sleeping members, errors, and the CI proof that Lava and
Brian2 reproduce the PyTorch model on the whole digits test split."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from sne_deploy.energy import Counts, ann_energy_pj, energy_breakdown_pj, snn_energy_pj
from sne_deploy.runtime import simulate
from sne_deploy.scheduler import calibrate, calibrate_cascade, cascade_rounds, choose, gate_awake, random_awake


def test_energy_constants_by_hand():
    c = Counts(synaptic_events=10, neuron_updates=100, spikes=5, gate_macs=2)
    assert snn_energy_pj(c, "loihi") == pytest.approx(10 * 23.6 + 5 * 81 + 95 * 52 + 2 * 4.6)
    assert snn_energy_pj(c, "45nm-ops") == pytest.approx(10 * 0.9 + 100 * 4.6 + 2 * 4.6)
    assert ann_energy_pj(1000, "45nm-ops") == pytest.approx(4600)
    assert ann_energy_pj(1000, "45nm-ops", "int8") == pytest.approx(230)
    assert ann_energy_pj(1000, "memory") is None  # a bare MAC count says nothing of memory
    c = Counts(synaptic_events=10, neuron_updates=100, spikes=5, gate_macs=2, head_macs=3, input_synaptic_events=7)
    parts = energy_breakdown_pj(c, "loihi")
    assert parts["input_layer_synops"] == pytest.approx(7 * 23.6) and parts["other_synops"] == pytest.approx(3 * 23.6)
    assert parts["head"] == pytest.approx(3 * 4.6) and sum(parts.values()) == pytest.approx(snn_energy_pj(c, "loihi"))


def test_graded_events_cost_a_multiply_more_under_every_model():
    """A graded spike's synaptic event (the graded input code) multiplies the weight by its payload:
    Loihi's synaptic op plus an 8-bit multiply, a float MAC at 45 nm, the memory model's event plus
    an 8-bit multiply; part of the input layer's share."""
    from sne_deploy.energy import AnnWork, HostWork, SnnSizes

    plain = Counts(synaptic_events=10, neuron_updates=100, spikes=5, input_synaptic_events=7)
    graded = Counts(synaptic_events=10, neuron_updates=100, spikes=5, input_synaptic_events=7, graded_events=7)
    extra = {"loihi": 7 * 0.2, "45nm-ops": 7 * 3.7}
    for model, pj in extra.items():
        a, b = energy_breakdown_pj(plain, model), energy_breakdown_pj(graded, model)
        assert b["input_layer_synops"] - a["input_layer_synops"] == pytest.approx(pj)
        assert {k: v for k, v in a.items() if k != "input_layer_synops"} == {
            k: v for k, v in b.items() if k != "input_layer_synops"
        }
    sizes, host = SnnSizes(32768, 1000), HostWork(AnnWork(1, 1, 1), AnnWork(1, 1, 1))
    diff = snn_energy_pj(graded, "memory", sizes, host) - snn_energy_pj(plain, "memory", sizes, host)
    assert diff == pytest.approx(7 * 0.2)


def test_memory_model_prices_every_access_by_the_size_of_its_memory():
    from sne_deploy.energy import AnnWork, HostWork, SnnSizes, ann_memory_pj, sram_pj

    # Horowitz 2014's 64-bit SRAM reads: 10 pJ at 8 KiB, 20 pJ at 32 KiB, 100 pJ at 1 MiB; between them log-log
    assert sram_pj(64, 8 << 10) == pytest.approx(10) and sram_pj(64, 32 << 10) == pytest.approx(20)
    assert sram_pj(64, 1 << 20) == pytest.approx(100) and sram_pj(64, 100) == pytest.approx(10)
    assert 20 < sram_pj(64, 256 << 10) < 100 and sram_pj(64, 4 << 20) == pytest.approx(200)  # past 1 MiB: sqrt
    assert sram_pj(64, 64 << 20) == pytest.approx(2000)  # off chip: DRAM
    assert sram_pj(2, 8 << 10) == pytest.approx(10 / 32)  # a ternary weight is 2 bits of a word
    # a member of 32768 ternary synapses (8 KiB) and 1000 neurons (6 KB of u, v): small memories, 10 pJ a word
    sizes, w = SnnSizes(32768, 1000), 10 / 64
    host = HostWork(AnnWork(100, 100, 30), AnnWork(10, 12, 5), gate_runs=1.0, head_runs=2.0)
    c = Counts(synaptic_events=10, neuron_updates=100, spikes=5, input_synaptic_events=7)
    parts = energy_breakdown_pj(c, "memory", sizes, host)
    event = 2 * w + 2 * 24 * w + 0.1  # weight read, accumulator read + write, add
    assert parts["input_layer_synops"] == pytest.approx(7 * event) and parts["other_synops"] == pytest.approx(3 * event)
    update = 2 * 48 * w + 2 * 3.1 + 3 * 0.1  # u, v read + written, two decays, three adds
    assert parts["neuron_updates"] == pytest.approx(100 * update + 5 * 16 * w)
    # an ANN at fp32: MAC + 32-bit weight read per MAC, each activation written and read once
    assert parts["gate"] == pytest.approx(100 * (4.6 + 32 * w) + 30 * 2 * 32 * w)
    assert parts["head"] == pytest.approx(ann_memory_pj(AnnWork(20, 12, 10), "fp32"))  # two rounds
    assert ann_memory_pj(AnnWork(100, 100, 30), "int8") == pytest.approx(100 * (0.23 + 8 * w) + 30 * 2 * 8 * w)
    # a bigger model reads from bigger, dearer memories: 1 M fp32 weights sit in 4 MiB (200 pJ a word)
    big = AnnWork(1 << 20, 1 << 20, 0)
    assert ann_memory_pj(big, "fp32") == pytest.approx((1 << 20) * (4.6 + 100))
    with pytest.raises(Exception, match="needs the members' sizes"):
        energy_breakdown_pj(c, "memory")


def test_ann_work_counts_macs_weights_and_activations_of_linear_and_conv_layers():
    import torch.nn as nn

    from sne_deploy.teacher import ann_work

    net = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 10))
    w = ann_work(net, (1, 8, 8))
    assert w.macs == 64 * 9 + 64 * 10 and w.weights == 4 * 9 + 640 and w.activations == 64 + 64 + 10


def test_cascade_calibration_hits_the_budget():
    rng = np.random.default_rng(0)
    conf = np.sort(rng.random((2000, 6)), axis=1) * 0.5 + rng.random((2000, 1)) * 0.5  # rising with rounds
    for b in (1 / 6, 0.3, 0.5, 0.8, 1.0):
        rounds = cascade_rounds(conf, calibrate_cascade(conf, b))
        assert abs(rounds.mean() / 6 - b) < 0.002 and rounds.min() >= 1 and rounds.max() <= 6
    assert (cascade_rounds(conf, calibrate_cascade(conf, 0.05)) == 1).all()  # below 1/K: one round


def test_calibration_hits_the_budget_and_always_wakes_one():
    scores = np.random.default_rng(0).standard_normal((1000, 5))
    for b in (0.2, 0.3, 0.55, 1.0):
        awake = gate_awake(scores, calibrate(scores, b))
        assert abs(awake.mean() - b) < 0.002
        assert awake.sum(1).min() >= 1
    assert gate_awake(scores, calibrate(scores, 0.05)).sum(1).max() == 1  # below 1/K: exactly one
    r = random_awake(5000, 4, 0.3, seed=0)
    assert abs(r.mean() - 0.3) < 0.01 and r.sum(1).min() >= 1
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        choose("all", 0.0, 3, 4)


def test_budget_is_met_on_test_split_and_dynamic_policies_beat_baselines(digits_bundle, digits_data):
    x, y = digits_data.test.flat(), digits_data.test.y
    acc = {}
    for policy in ("gate", "cascade", "random", "fixed"):
        r = simulate(digits_bundle, x, y, 0.3, policy, "torch", "fixed", compare=False)
        acc[policy] = r.accuracy
        if policy in ("gate", "cascade"):
            assert abs(r.awake_fraction - 0.3) <= 0.05, (policy, r.awake_fraction)
            assert r.counts.gate_macs == digits_bundle.manifest.gate_macs
        else:
            assert r.counts.gate_macs == 0  # the gate is charged only to policies that ask it
        if policy == "cascade":
            assert 1 <= r.mean_rounds <= digits_bundle.n_members
            assert r.counts.head_macs == pytest.approx(r.mean_rounds * digits_bundle.manifest.head_macs)
        else:
            assert r.counts.head_macs == digits_bundle.manifest.head_macs
    best = max(acc["gate"], acc["cascade"])
    assert best >= acc["random"] and best >= acc["fixed"], acc


def test_cascade_runs_round_by_round_and_reference_matches_torch(digits_bundle, digits_data):
    """Each round wakes the next member of the gate's order for the inputs still unsure; the
    numpy reference reproduces the torch cascade spike for spike (same choices, same rounds)."""
    x, y = digits_data.test.flat()[:80], digits_data.test.y[:80]
    r = simulate(digits_bundle, x, y, 0.3, "cascade", "reference", "fixed", compare=True)
    assert r.agreement.spike_mismatches == 0 and r.agreement.prediction_agreement == 1.0
    t = simulate(digits_bundle, x, y, 0.3, "cascade", "torch", "fixed", compare=False)
    assert np.array_equal(r.awake, t.awake) and r.mean_rounds == t.mean_rounds
    order = np.argsort(-digits_bundle.gate_scores(x), axis=1, kind="stable")
    for n in range(len(x)):  # the awake members are a prefix of the input's order
        m = int(r.awake[n].sum())
        assert set(np.flatnonzero(r.awake[n])) == set(order[n, :m].tolist())
    assert r.awake_fraction == pytest.approx(r.mean_rounds / digits_bundle.n_members)


def test_cascade_time_stops_within_rounds_as_calibrated(digits_bundle, digits_data):
    """cascade-time: the reference reproduces torch spike for spike over the steps each member ran;
    each input stops at the checkpoint an offline replay of the head's every step picks (the
    export's calibration: member-steps near the budget on the validation split); the members are
    charged only the steps they ran, the head once per step it read."""
    from sne_deploy.runtime import run_member, time_exit_table
    from sne_deploy.scheduler import confidence, threshold_for, time_checkpoint_logits, time_exit_steps
    from sne_deploy.simulators.result import stopped_early

    b, steps, k = digits_bundle, digits_bundle.steps, digits_bundle.n_members
    x, y = digits_data.test.flat()[:80], digits_data.test.y[:80]
    r = simulate(b, x, y, 0.3, "cascade-time", "reference", "fixed", compare=True)
    assert r.agreement.spike_mismatches == 0 and r.agreement.prediction_agreement == 1.0
    t = simulate(b, x, y, 0.3, "cascade-time", "torch", "fixed", compare=False)
    assert np.array_equal(r.awake, t.awake) and r.mean_rounds == t.mean_rounds
    spikes = b.spikes(x)
    full = [run_member(net, spikes, "torch", "fixed", True) for net in b.networks]
    order = np.argsort(-b.gate_scores(x), axis=1, kind="stable")
    logits = time_checkpoint_logits([f.trains[-1] for f in full], order, b.head_logits)
    stop = cascade_rounds(confidence(logits), threshold_for(time_exit_table(b), 0.3))  # (N,) checkpoints, 1-based
    assert r.mean_rounds * steps == pytest.approx(stop.mean())
    assert np.array_equal(r.predictions, logits[np.arange(len(x)), stop - 1].argmax(1))
    run = time_exit_steps(order, stop, steps)  # (N, K) steps per member
    assert np.array_equal(r.awake, run > 0)
    assert 0 < (run < steps).sum()  # some stopped within a round
    charged = sum(stopped_early(f, spikes, run[:, j]).synaptic_events.sum(1) for j, f in enumerate(full))
    assert r.counts.synaptic_events == pytest.approx(float(np.mean(charged)))
    assert r.counts.head_macs == pytest.approx(stop.mean() * b.manifest.head_macs)
    v = simulate(b, digits_data.val.flat(), digits_data.val.y, 0.3, "cascade-time", "torch", "fixed", compare=False)
    assert abs(v.mean_rounds / k - 0.3) < 0.02  # member-steps on the split it was calibrated on


def test_sleeping_members_cost_nothing(digits_bundle, digits_data):
    from sne_deploy.runtime import run_member
    from sne_deploy.simulators.encoding import encode_regular

    x, y = digits_data.test.flat()[:60], digits_data.test.y[:60]
    r = simulate(digits_bundle, x, y, 1 / digits_bundle.n_members, "fixed", "reference", "fixed", compare=False)
    awake = r.awake
    (only,) = np.flatnonzero(awake[0])
    assert awake.sum(1).max() == 1 and r.member_wakes[only] == 60 and sum(r.member_wakes) == 60
    alone = run_member(
        digits_bundle.networks[only], encode_regular(x, digits_bundle.steps), "reference", "fixed", False
    )
    assert r.counts.synaptic_events == pytest.approx(alone.synaptic_events.sum(1).mean())
    assert r.counts.neuron_updates == pytest.approx(alone.neuron_updates.sum(1).mean())
    assert [d.member for d in r.backend_details] == [only]  # the others never ran


@pytest.mark.lava
@pytest.mark.brian2
def test_ci_simulators_reproduce_pytorch_on_the_whole_test_split(
    lava_ready, brian2_ready, digits_bundle, digits_data, capsys
):
    """The CI proof: same choices, same spikes, same predictions — Lava (fixed) and Brian2 (float
    and fixed) against the PyTorch model in the same mode, whole digits test split, the gate at
    budgets 0.3 and 1.0 and the cascade (round by round on the backend) at 0.3."""
    x, y = digits_data.test.flat(), digits_data.test.y
    lines = []
    runs = [
        (budget, "gate", backend, mode)
        for budget in (0.3, 1.0)
        for backend, mode in (("lava", "fixed"), ("brian2", "fixed"), ("brian2", "float"))
    ]
    runs += [(0.3, "cascade", "lava", "fixed"), (0.3, "cascade", "brian2", "fixed")]
    for budget, policy, backend, mode in runs:
        r = simulate(digits_bundle, x, y, budget, policy, backend, mode, compare=True)
        a = r.agreement
        lines.append(
            f"{policy:7s} budget {budget:.1f}  {mode:5s}  torch {a.torch_accuracy:.4f}  {backend:6s} {r.accuracy:.4f}  "
            f"agreement {a.prediction_agreement:.4f}  spike mismatches {a.spike_mismatches}  "
            f"awake {r.awake_fraction:.3f}  ({len(y)} samples)"
        )
        assert a.prediction_agreement == 1.0 and a.spike_mismatches == 0, lines[-1]
    with capsys.disabled():
        print("\n[CI] simulators vs PyTorch on the digits test split\n" + "\n".join(lines))


def _cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "sne_deploy.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )


def _fake_lava_env(tmp_path, body: str):
    venv = tmp_path / "fake-lava"
    (venv / "bin").mkdir(parents=True)
    py = venv / "bin" / "python"
    py.write_text("#!/bin/sh\n" + body + "\n")
    py.chmod(0o755)
    return str(venv)


def test_simulate_errors_are_one_line_exit_2_and_leave_no_report(digits_bundle, tmp_path):
    b = str(digits_bundle.path)
    bad_x = tmp_path / "bad.npz"
    np.savez(bad_x, x=np.zeros((3, 10)))
    nan_x = tmp_path / "nan.npz"
    np.savez(nan_x, x=np.full((3, 64), np.nan))
    dies = _fake_lava_env(tmp_path / "d", "exit 3")
    hangs = _fake_lava_env(tmp_path / "h", "sleep 30")
    cases = [
        (["simulate", b, "--budget", "0"], None, "(0, 1]"),
        (["simulate", b, "--budget", "1.5"], None, "(0, 1]"),
        (["simulate", b, "--backend", "loihi"], None, "unknown backend"),
        (["simulate", b, "--inputs", str(bad_x)], None, "shape (N, 64)"),
        (["simulate", b, "--inputs", str(nan_x)], None, "NaN"),
        (["simulate", b, "--backend", "lava", "--limit", "5"], {"SNE_LAVA_ENV": dies}, "Lava worker failed"),
        (
            ["simulate", b, "--backend", "lava", "--limit", "5"],
            {"SNE_LAVA_ENV": hangs, "SNE_LAVA_TIMEOUT": "2"},
            "timed out",
        ),
        (["simulate", str(tmp_path / "nothing")], None, "not a bundle"),
    ]
    for args, env, msg in cases:
        rep = tmp_path / "report"
        r = _cli(*args, "--report", str(rep), env=env)
        assert r.returncode == 2, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and msg in r.stderr, (args, r.stderr)
        assert not rep.exists()


def test_simulate_cli_prints_table_and_writes_report(digits_bundle, tmp_path):
    rep = tmp_path / "rep"
    r = _cli(
        "simulate",
        str(digits_bundle.path),
        "--budget",
        "0.3",
        "--backend",
        "reference",
        "--limit",
        "40",
        "--sweep",
        "0.3,1.0",
        "--report",
        str(rep),
    )
    assert r.returncode == 0, r.stderr
    assert "accuracy" in r.stdout and "energy / sample  Loihi" in r.stdout and "spike mismatches 0" in r.stdout
    doc = json.loads((rep / "report.json").read_text())
    assert len(doc["runs"]) == 8 and {x["policy"] for x in doc["runs"]} == {"gate", "cascade", "random", "fixed"}
    for png in ("accuracy_vs_energy.png", "awake_fraction.png", "raster_sample0.png"):
        assert (rep / png).stat().st_size > 1000


def _overflowing_copy(digits_bundle, out):  # type: ignore[no-untyped-def]
    """A copy of the digits bundle whose member 0's first layer overflows in fixed point: 8-bit
    weights, no decay and the largest threshold, so v runs into its rail within a few steps
    (the member graph's checksum updated, as a user who re-exported would have it)."""
    import shutil
    from dataclasses import replace

    import nir

    from sne_deploy.simulators import from_nir, to_nir
    from sne_deploy.simulators.files import sha256_file
    from tests.helpers import edit_manifest

    shutil.copytree(digits_bundle.path, out)
    path = out / "members" / "member_0.nir"
    net = from_nir(path)
    first = net.layers[0]
    fixed = replace(
        first.fixed,
        weight=254 * np.sign(first.fixed.weight),
        params=first.fixed.params._replace(du_fx=0, dv_fx=0, vth=np.full(first.n_out, 131071)),
    )
    nir.write(str(path), to_nir(replace(net, layers=(replace(first, fixed=fixed),) + net.layers[1:])))
    edit_manifest(out, lambda m: m["files"].update({"members/member_0.nir": sha256_file(path)}))
    return out


def test_simulate_reports_fixed_point_overflow_per_member_in_text_and_json(digits_bundle, tmp_path):
    bundle = _overflowing_copy(digits_bundle, tmp_path / "over.lava")

    def sne(path, mode="fixed", *more):  # type: ignore[no-untyped-def]
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "sne_deploy",
                "simulate",
                str(path),
                "--backend",
                "reference",
                "--mode",
                mode,
                "--limit",
                "20",
                "--budget",
                "1.0",
                "--policy",
                "fixed",
                *more,
            ],
            capture_output=True,
            text=True,
        )

    r = sne(bundle)
    assert r.returncode == 0, r.stderr
    warnings = [ln for ln in r.stdout.splitlines() if "warning: member" in ln]
    assert len(warnings) == 1 and "member 0 overflows" in warnings[0] and "layer 0" in warnings[0], r.stdout
    d = json.loads(sne(bundle, "fixed", "--json").stdout)
    over = d["overflow_neuron_steps"]
    assert over["0"][0] > 0 and d["overflow_neuron_steps_total"] == sum(map(sum, over.values()))
    assert all(sum(v) == 0 for k, v in over.items() if k != "0") and set(over) == {str(j) for j in range(8)}
    # the same run in float mode, and the pristine bundle in fixed point, report none
    assert json.loads(sne(digits_bundle.path, "fixed", "--json").stdout)["overflow_neuron_steps_total"] == 0
    assert "overflow        0 neuron-steps (none" in sne(digits_bundle.path).stdout
    assert json.loads(sne(bundle, "float", "--json").stdout)["overflow_neuron_steps"] is None


def test_simulate_reports_every_energy_model_side_by_side_and_as_chosen(digits_bundle):
    """The JSON carries loihi, 45nm-ops and memory for the ensemble and the teacher (fp32 and
    int8); --energy-model picks; a name that is none of them is one line."""

    def sne(*more: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "sne_deploy", "simulate", str(digits_bundle.path), "--limit", "30", "--json", *more],
            capture_output=True,
            text=True,
        )

    d = json.loads(sne().stdout)
    assert set(d["energy_pj"]) == set(d["teacher_energy_pj"]) == set(d["teacher_energy_int8_pj"]) == {
        "loihi", "45nm-ops", "memory"
    }  # fmt: skip
    for m, parts in d["energy_breakdown_pj"].items():
        assert sum(parts.values()) == pytest.approx(d["energy_pj"][m])
    assert all(d["teacher_energy_int8_pj"][m] < d["teacher_energy_pj"][m] for m in d["energy_pj"])
    # memory costs more than the arithmetic alone, for the ensemble and the teacher
    assert d["energy_pj"]["memory"] > d["energy_pj"]["45nm-ops"]
    assert d["teacher_energy_pj"]["memory"] > d["teacher_energy_pj"]["45nm-ops"]
    manifest = json.loads((digits_bundle.path / "manifest.json").read_text())
    assert manifest["host_work"]["teacher"]["macs"] == manifest["teacher_macs"]
    assert manifest["host_work"]["gate"]["macs"] == manifest["gate_macs"]
    only = json.loads(sne("--energy-model", "memory").stdout)
    assert set(only["energy_pj"]) == {"memory"} and only["energy_pj"]["memory"] == pytest.approx(
        d["energy_pj"]["memory"]
    )
    bad = sne("--energy-model", "loihi,tpu")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "sne-deploy: error: unknown --energy-model 'tpu' (choose from loihi, 45nm-ops, memory)"
    ]
    table = sne("--energy-table").stdout
    assert "Davies et al. 2018" in table and "sram_64bit_1024KiB" in table and "Horowitz 2014" in table


def test_a_run_stopped_early_is_the_run_of_its_first_steps():
    """stopped_early charges what a network's first t steps did: the same counts, synaptic
    events, neuron updates and trains as running only those t steps (a network is causal); 0
    steps cost nothing."""
    from sne_deploy.simulators.random_nets import random_spikes, random_ternary_network
    from sne_deploy.simulators.reference import run_reference
    from sne_deploy.simulators.result import stopped_early

    net = random_ternary_network((12, 20, 6), seed=1)
    x = random_spikes(9, 8, 12, seed=2)
    full = run_reference(net, x, "float", record=True)
    stop = np.array([1, 2, 3, 4, 5, 6, 7, 8, 0])
    cut = stopped_early(full, x, stop)
    for i, t in enumerate(stop):
        if t == 0:
            assert cut.synaptic_events[i].sum() == 0 and cut.neuron_updates[i].sum() == 0
            continue
        alone = run_reference(net, x[i : i + 1, :t], "float", record=True)
        np.testing.assert_array_equal(cut.synaptic_events[i], alone.synaptic_events[0])
        np.testing.assert_array_equal(cut.neuron_updates[i], alone.neuron_updates[0])
        for a, b in zip(cut.trains, alone.trains):
            np.testing.assert_array_equal(a[i, :t], b[0])
            assert not a[i, t:].any()
    assert cut.synaptic_events.sum() < full.synaptic_events.sum()
    with pytest.raises(ValueError, match="0..8"):
        stopped_early(full, x, np.full(9, 9))


def test_time_checkpoints_extend_the_cascade_within_its_rounds():
    """The cascade in time: after every step of a round the head reads the counts so far, scaled
    to T steps; at a round's last step that is the plain cascade. Its calibration meets a budget
    of member-steps, and the steps each member runs follow the stop."""
    from sne_deploy.scheduler import time_checkpoint_logits, time_exit_steps

    rng = np.random.default_rng(0)
    n, k, steps, width = 300, 3, 4, 5
    trains = [rng.random((n, steps, width)) < 0.4 for _ in range(k)]
    order = np.argsort(rng.random((n, k)), axis=1)
    w = rng.standard_normal((k * width, 4)).astype(np.float32)

    def head(counts, awake):  # type: ignore[no-untyped-def]
        return counts @ w + awake.sum(1, keepdims=True)

    logits = time_checkpoint_logits(trains, order, head)
    assert logits.shape == (n, k * steps, 4)
    counts, awake = np.zeros((n, k * width), np.float32), np.zeros((n, k), bool)
    for r in range(k):  # the plain cascade's rounds
        for i in range(n):
            j = order[i, r]
            awake[i, j] = True
            counts[i, j * width : (j + 1) * width] = trains[j][i].sum(0)
        np.testing.assert_allclose(logits[:, r * steps + steps - 1], head(counts, awake), rtol=1e-6)
    first = order[:, 0]
    half = np.stack([trains[j][i, :2].sum(0) * 2 for i, j in enumerate(first)])  # after 2 of 4 steps, x 4/2
    one = np.zeros((n, k * width), np.float32)
    for i, j in enumerate(first):
        one[i, j * width : (j + 1) * width] = half[i]
    np.testing.assert_allclose(logits[:, 1], head(one, np.eye(k, dtype=bool)[first]), rtol=1e-6)
    conf = np.sort(rng.random((n, k * steps)), axis=1)
    for b in (0.2, 0.5):
        used = cascade_rounds(conf, calibrate_cascade(conf, b))
        assert abs(used.mean() / (k * steps) - b) < 0.01
        run = time_exit_steps(order, used, steps)
        np.testing.assert_array_equal(run.sum(1), used)  # member-steps = checkpoints used
        assert set(np.unique(run)) <= set(range(steps + 1))
    run = time_exit_steps(order[:3], np.array([1, steps, steps + 2]), steps)
    assert run[0, order[0, 0]] == 1 and run[0].sum() == 1
    assert run[1, order[1, 0]] == steps and run[2, order[2, 0]] == steps and run[2, order[2, 1]] == 2
