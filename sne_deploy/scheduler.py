"""Which members to wake for each input, under an average budget.

``--budget b`` in (0, 1] is the mean fraction of the K members awake. Policies:

* ``gate`` — the gate scores every member for the input; members scoring above a threshold wake,
  and the best-scoring member always wakes. The threshold for b is calibrated on validation
  data (:func:`calibrate`), so the mean awake fraction there is b (b < 1/K cannot be met: one
  member always wakes).
* ``random`` — round(b*K) members drawn at random per input (stochastic rounding keeps the mean b).
* ``fixed`` — the best static subset of size round(b*K), chosen on validation data.
* ``all`` — every member, whatever the budget.
"""
from __future__ import annotations

from itertools import combinations
from typing import Callable, Optional, Sequence

import numpy as np

from exporters.manifest import CalibrationRow
from simulators.errors import InputError

POLICIES = ("gate", "random", "fixed", "all")
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


def calibration_table(scores: np.ndarray, budgets: Sequence[float] = CALIBRATION_BUDGETS) -> list[CalibrationRow]:
    out = []
    for b in budgets:
        thr = calibrate(scores, b)
        out.append(CalibrationRow(b, thr, float(gate_awake(scores, thr).mean())))
    return out


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


def random_awake(n: int, k: int, budget: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    target = budget * k
    m = np.floor(target) + (rng.random(n) < target - np.floor(target))
    m = np.clip(m, 1, k).astype(int)
    order = np.argsort(rng.random((n, k)), axis=1)
    return order < m[:, None]


def best_subsets(k: int, score_fn: Callable[[np.ndarray], float]) -> dict[int, list[int]]:
    """For every size m, the static subset of members maximising ``score_fn(mask)`` (e.g. validation accuracy)."""
    out = {}
    for m in range(1, k + 1):
        best, best_s = None, -np.inf
        for sub in combinations(range(k), m):
            mask = np.zeros(k, bool)
            mask[list(sub)] = True
            s = score_fn(mask)
            if s > best_s:
                best, best_s = list(sub), s
        out[m] = best
    return out


def choose(policy: str, budget: float, n: int, k: int, scores: Optional[np.ndarray] = None,
           table: Optional[Sequence[CalibrationRow]] = None, subsets: Optional[dict[int, list[int]]] = None,
           seed: int = 0) -> np.ndarray:
    """(n, k) boolean mask of awake members."""
    budget = check_budget(budget)
    if policy == "all":
        return np.ones((n, k), bool)
    if policy == "gate":
        assert scores is not None and table is not None
        return gate_awake(scores, threshold_for(table, budget))
    if policy == "random":
        return random_awake(n, k, budget, seed)
    if policy == "fixed":
        assert subsets is not None
        m = int(min(max(round(budget * k), 1), k))
        mask = np.zeros((n, k), bool)
        mask[:, subsets[m]] = True
        return mask
    raise InputError(f"unknown policy '{policy}' (choose from {', '.join(POLICIES)})")
