"""Which members to wake for each input, under an average budget.

``--budget b`` in (0, 1] is the mean fraction of the K members awake. Policies:

* ``gate`` — the gate scores every member for the input; members scoring above a threshold wake,
  and the best-scoring member always wakes. The threshold for b is calibrated on validation
  data (:func:`calibrate`), so the mean awake fraction there is b (b < 1/K cannot be met: one
  member always wakes).
* ``cascade`` — members wake one at a time in the order of the gate's scores; after each round
  the host head classifies with the members awake so far and the cascade stops once its
  confidence (top softmax probability) reaches a threshold calibrated on validation data so the
  mean awake fraction there is b (:func:`calibrate_cascade`). Its rounds are sequential on a
  chip; the runtime runs them round by round (:func:`sne_deploy.runtime.run_cascade`).
* ``cascade-time`` — the cascade with an early exit in time as well (DT-SNN, arXiv 2305.17346):
  the head reads after every step of a round, the running member's counts so far scaled to T
  steps (:func:`scale_to_steps`), and the input stops at the first step whose confidence reaches
  the threshold. Its budget is in member-steps (0.3 = 30 % of K x T), calibrated on validation
  data the same way (:func:`time_checkpoint_logits`, :func:`cascade_table`). For one student
  (K = 1) it is the only policy that saves anything.
* ``random`` — round(b*K) members drawn at random per input (stochastic rounding keeps the mean b).
* ``fixed`` — the best static subset of size round(b*K), chosen on validation data.
* ``all`` — every member, whatever the budget.
"""

from __future__ import annotations

from itertools import combinations
from typing import Callable, Optional, Sequence

import numpy as np

from sne_deploy.exporters.manifest import CalibrationRow
from sne_deploy.simulators.errors import InputError, check_choice

POLICIES = ("gate", "cascade", "cascade-time", "random", "fixed", "all")
CASCADES = ("cascade", "cascade-time")  # the policies that run round by round
CALIBRATION_BUDGETS = [round(0.01 * i, 2) for i in range(1, 101)]


def check_budget(budget: float) -> float:
    if not (0.0 < budget <= 1.0) or not np.isfinite(budget):
        raise InputError(f"--budget must lie in (0, 1], got {budget}")
    return float(budget)


def gate_awake(scores: np.ndarray, threshold: float) -> np.ndarray:
    awake = scores > threshold
    awake[np.arange(len(scores)), scores.argmax(axis=1)] = True
    return awake


def calibrate(scores: np.ndarray, budget: float) -> float:
    """The threshold at which :func:`gate_awake` wakes a fraction ``budget`` of members on ``scores``."""
    n, k = scores.shape
    extra = int(round(budget * n * k)) - n  # members beyond the one that always wakes
    rest = np.sort(scores, axis=1)[:, :-1].ravel()  # every score but each row's best
    rest = np.sort(rest)[::-1]
    if extra <= 0:
        return float("inf")
    if extra >= len(rest):
        return float("-inf")
    return float((rest[extra - 1] + rest[extra]) / 2)


def _table(
    calibrate_fn: Callable[[float], float], fraction_fn: Callable[[float], float], budgets: Sequence[float]
) -> list[CalibrationRow]:
    """Per budget: the calibrated threshold and the awake fraction it gives on the same data."""
    rows = []
    for b in budgets:
        thr = calibrate_fn(b)
        rows.append(CalibrationRow(b, thr, fraction_fn(thr)))
    return rows


def calibration_table(scores: np.ndarray, budgets: Sequence[float] = CALIBRATION_BUDGETS) -> list[CalibrationRow]:
    return _table(lambda b: calibrate(scores, b), lambda thr: float(gate_awake(scores, thr).mean()), budgets)


def threshold_for(table: Sequence[CalibrationRow], budget: float) -> float:
    """Look a budget up in the calibration table (linear interpolation between entries)."""
    bs = np.array([r.budget for r in table])
    th = np.array([r.threshold for r in table], dtype=np.float64)
    i = int(np.searchsorted(bs, budget))
    if i < len(bs) and abs(bs[i] - budget) < 1e-9:
        return float(th[i])
    if i == 0:
        return float(th[0])
    if i >= len(bs):
        return float(th[-1])
    lo, hi = th[i - 1], th[i]
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return float(hi)
    w = (budget - bs[i - 1]) / (bs[i] - bs[i - 1])
    return float(lo + w * (hi - lo))


def cascade_order(scores: np.ndarray) -> np.ndarray:
    """(N, K) member indices, best gate score first (ties: lower index first)."""
    return np.argsort(-scores, axis=1, kind="stable")


def confidence(logits: np.ndarray) -> np.ndarray:
    """The head's top softmax probability over the last axis (per row; per row and step of
    :func:`round_step_logits`' (n, T, classes))."""
    z = logits - logits.max(axis=-1, keepdims=True)
    p = np.exp(z)
    return (p.max(axis=-1) / p.sum(axis=-1)).astype(np.float64)


def cascade_stops(conf: np.ndarray, threshold: float) -> np.ndarray:
    """The cascade's stopping rule, in one place: an input stops once the head's confidence
    reaches the threshold."""
    return conf >= threshold


def cascade_rounds(conf_by_round: np.ndarray, threshold: float) -> np.ndarray:
    """Rounds each input takes: the first r (1-based) whose confidence reaches ``threshold``
    (``conf_by_round[:, r-1]``, confidence with the first r members of its order awake), else K."""
    hit = cascade_stops(conf_by_round, threshold)
    hit[:, -1] = True
    return hit.argmax(axis=1) + 1


def calibrate_cascade(conf_by_round: np.ndarray, budget: float) -> float:
    """The confidence threshold at which the cascade's mean awake fraction on ``conf_by_round``
    (N, K) is ``budget``.

    An input stops at the first round whose running maximum of confidence reaches the threshold,
    so its rounds are 1 + (how many of its first K-1 running maxima lie below the threshold): the
    mean number of rounds is 1 + (values below the threshold) / N, which a sort inverts exactly."""
    n, k = conf_by_round.shape
    extra = int(round(budget * n * k)) - n  # rounds beyond the first, over all inputs
    if extra <= 0:
        return float("-inf")
    run_max = np.maximum.accumulate(conf_by_round, axis=1)[:, :-1].ravel()
    if extra >= len(run_max):
        return float("inf")
    v = np.sort(run_max)
    return float((v[extra - 1] + v[extra]) / 2) if v[extra] > v[extra - 1] else float(np.nextafter(v[extra], np.inf))


def cascade_table(conf_by_round: np.ndarray, budgets: Sequence[float] = CALIBRATION_BUDGETS) -> list[CalibrationRow]:
    k = conf_by_round.shape[1]
    return _table(
        lambda b: calibrate_cascade(conf_by_round, b),
        lambda thr: float(cascade_rounds(conf_by_round, thr).mean() / k),
        budgets,
    )


def scale_to_steps(counts: np.ndarray, steps_run: np.ndarray, steps: int) -> np.ndarray:
    """A member's output counts (N, n) after ``steps_run`` (N,) of its ``steps`` steps, scaled to
    what ``steps`` steps would give (the head was trained on T-step counts): the one rule by which
    the cascade in time reads a member it stopped early. Rows that never ran (0 steps) stay 0."""
    t = np.asarray(steps_run, dtype=np.float32)
    scale = np.where(t > 0, np.float32(steps) / np.maximum(t, 1), 0).astype(np.float32)
    return (np.asarray(counts, np.float32) * scale[:, None]).astype(np.float32)


def round_step_logits(
    counts: np.ndarray,
    awake: np.ndarray,
    running: Sequence[tuple[int, np.ndarray, np.ndarray]],
    offsets: np.ndarray,
    head_logits: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> np.ndarray:
    """(n, T, classes): the head's logits after each step t = 1..T of one cascade round.

    ``counts`` (n, sum g) hold the earlier rounds' members' whole counts, ``awake`` (n, K) this
    round's member too; ``running`` lists (member j, the rows it runs for, its (rows, T, n_j)
    output trains): its counts after t steps, scaled to T (:func:`scale_to_steps`), join the rest."""
    steps = running[0][2].shape[1]
    so_far = [(j, rows, np.cumsum(tr, axis=1, dtype=np.float32)) for j, rows, tr in running]
    out: Optional[np.ndarray] = None
    for t in range(1, steps + 1):
        c = counts.copy()
        for j, rows, cum in so_far:
            c[rows, offsets[j] : offsets[j + 1]] = scale_to_steps(cum[:, t - 1], np.full(len(rows), t), steps)
        logits = np.asarray(head_logits(c, awake))
        if out is None:
            out = np.empty((len(c), steps, logits.shape[1]), logits.dtype)
        out[:, t - 1] = logits
    assert out is not None
    return out


def first_confident_step(conf: np.ndarray, threshold: float) -> np.ndarray:
    """(n,) the first step (1-based) of a round whose confidence ``conf`` (n, T) reaches the
    threshold (:func:`cascade_stops`), 0 where none does (the input goes on to the next round)."""
    hit = cascade_stops(conf, threshold)
    return np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, 0)


def time_checkpoint_logits(
    out_trains: Sequence[np.ndarray], order: np.ndarray, head_logits: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> np.ndarray:
    """(N, K*T, classes): the head's logits after every step of every round of a cascade that can
    also stop within a round (an early exit in time, as DT-SNN, arXiv 2305.17346, does for one
    network). Checkpoint c = r*T + t - 1 is round r's member after t of its T steps
    (:func:`round_step_logits`); at t = T this is the plain cascade's round r.
    ``out_trains[j]`` is member j's (N, T, n_j) output trains over every input; ``order`` (N, K)
    the cascade's. Calibrating on these (:func:`cascade_table`) gives ``cascade-time``'s thresholds."""
    n, k = order.shape
    offs = np.cumsum([0] + [tr.shape[2] for tr in out_trains])
    counts = np.zeros((n, offs[-1]), np.float32)
    awake = np.zeros((n, k), bool)
    rows = np.arange(n)
    parts = []
    for r in range(k):
        awake[rows, order[:, r]] = True
        running = [(int(j), rows[order[:, r] == j]) for j in np.unique(order[:, r])]
        parts.append(
            round_step_logits(counts, awake, [(j, i, out_trains[j][i]) for j, i in running], offs, head_logits)
        )
        for j, i in running:
            counts[i, offs[j] : offs[j + 1]] = out_trains[j][i].sum(axis=1)
    return np.concatenate(parts, axis=1)


def time_exit_steps(order: np.ndarray, checkpoints: np.ndarray, steps: int) -> np.ndarray:
    """(N, K) steps each member runs for each input that stops at ``checkpoints`` (1-based, in
    :func:`time_checkpoint_logits`' order): T for the members of its earlier rounds, the rest of
    its last round for that round's member, 0 for the members that never wake."""
    n, k = order.shape
    c = np.asarray(checkpoints, dtype=np.int64) - 1
    last_round, last_steps = c // steps, c % steps + 1
    run = np.zeros((n, k), np.int64)
    for r in range(k):
        ran = np.where(r < last_round, steps, np.where(r == last_round, last_steps, 0))
        run[np.arange(n), order[:, r]] = ran
    return run


def random_awake(n: int, k: int, budget: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    target = budget * k
    m = np.floor(target) + (rng.random(n) < target - np.floor(target))
    m = np.clip(m, 1, k).astype(int)
    order = np.argsort(rng.random((n, k)), axis=1)
    return order < m[:, None]


def best_subsets(k: int, score_fn: Callable[[np.ndarray], float]) -> dict[int, list[int]]:
    """For every size m, the static subset of members maximising ``score_fn(mask)`` (e.g. validation accuracy)."""
    out: dict[int, list[int]] = {}
    for m in range(1, k + 1):
        best: list[int] = []
        best_s = -np.inf
        for sub in combinations(range(k), m):
            mask = np.zeros(k, bool)
            mask[list(sub)] = True
            s = score_fn(mask)
            if s > best_s:
                best, best_s = list(sub), s
        out[m] = best
    return out


def choose(
    policy: str,
    budget: float,
    n: int,
    k: int,
    scores: Optional[np.ndarray] = None,
    table: Optional[Sequence[CalibrationRow]] = None,
    subsets: Optional[dict[int, list[int]]] = None,
    seed: int = 0,
) -> np.ndarray:
    """(n, k) boolean mask of awake members."""
    budget = check_budget(budget)
    if policy == "all":
        return np.ones((n, k), bool)
    if policy == "gate":
        assert scores is not None and table is not None
        return gate_awake(scores, threshold_for(table, budget))
    if policy == "random":
        return random_awake(n, k, budget, seed)
    if policy in CASCADES:
        raise InputError(
            "the cascade's members depend on the members' outputs: run it with sne_deploy.runtime.simulate"
        )
    if policy == "fixed":
        assert subsets is not None
        m = int(min(max(round(budget * k), 1), k))
        mask = np.zeros((n, k), bool)
        mask[:, subsets[m]] = True
        return mask
    check_choice("policy", policy, POLICIES)
    raise AssertionError(policy)  # every policy is handled above
