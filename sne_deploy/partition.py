"""Partition the teacher's feature dimensions into K balanced, disjoint groups.

``informed`` groups mutually correlated dimensions, so each student learns a coherent sub-space
(SNE's informed partitioning): every dimension is described by its row of the absolute
correlation matrix on training features, k-means finds K centres, and a capacity-limited greedy
assignment (most confident dimensions first) makes the groups balanced (sizes differ by <= 1).
``contiguous`` and ``random`` are the ablation baselines.

Every mode partitions only the *live* dimensions (:func:`live_dimensions`): a ReLU teacher often
has features that are 0 on every training image; a student cannot learn anything from them, and
grouped together they would make whole members useless. The host head imputes a dead dimension
by its constant training value, which is exactly what it always is.
"""

from __future__ import annotations

import numpy as np

from sne_deploy.simulators.errors import InputError, check_choice

MODES = ("informed", "contiguous", "random")


def _capacities(d: int, k: int) -> list[int]:
    return [d // k + (1 if i < d % k else 0) for i in range(k)]


def live_dimensions(features: np.ndarray) -> np.ndarray:
    """Indices of the columns of ``features`` (N, D) that vary over the samples; a column whose
    spread is below 1e-6 of the largest spread is constant (dead) and left out."""
    f = np.asarray(features, dtype=np.float64)
    spread = f.max(axis=0) - f.min(axis=0) if len(f) else np.zeros(f.shape[1])
    return np.flatnonzero(spread > 1e-6 * max(float(spread.max(initial=0.0)), 1e-30))


def partition_features(features: np.ndarray, k: int, mode: str = "informed", seed: int = 0) -> list[np.ndarray]:
    """Split the live columns of ``features`` (N, D) into ``k`` groups of sorted dimension
    indices (indices into all D columns; constant columns belong to no group)."""
    features = np.asarray(features, dtype=np.float64)
    live = live_dimensions(features)
    if not 1 <= k <= len(live):
        raise InputError(
            f"cannot split the teacher's {len(live)} live feature dimensions into {k} groups "
            f"({features.shape[1] - len(live)} of {features.shape[1]} are constant on the training set); "
            f"use --members <= {len(live)}"
        )
    return [live[g] for g in _partition(features[:, live], k, mode, seed)]


def _partition(features: np.ndarray, k: int, mode: str, seed: int) -> list[np.ndarray]:
    d = features.shape[1]
    caps = _capacities(d, k)
    if mode == "contiguous":
        bounds = np.cumsum([0] + caps)
        return [np.arange(bounds[i], bounds[i + 1]) for i in range(k)]
    if mode == "random":
        perm = np.random.default_rng(seed).permutation(d)
        bounds = np.cumsum([0] + caps)
        return [np.sort(perm[bounds[i] : bounds[i + 1]]) for i in range(k)]
    check_choice("partition", mode, MODES)
    from sklearn.cluster import KMeans

    std = features.std(axis=0)
    centred = (features - features.mean(axis=0)) / np.where(std > 0, std, 1.0)
    corr = np.abs(centred.T @ centred) / max(len(features), 1)  # |correlation| (dead dims: rows of 0)
    km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(corr)
    dist = ((corr[:, None, :] - km.cluster_centers_[None, :, :]) ** 2).sum(axis=2)  # (D, K)
    # most decided dimensions first: largest gap between their best and second-best centre
    srt = np.sort(dist, axis=1)
    order = np.argsort(-(srt[:, 1] - srt[:, 0]) if k > 1 else np.zeros(d), kind="stable")
    left = list(caps)
    groups: list[list[int]] = [[] for _ in range(k)]
    for j in order:
        for c in np.argsort(dist[j], kind="stable"):
            if left[c] > 0:
                groups[c].append(int(j))
                left[c] -= 1
                break
    return [np.array(sorted(g), dtype=np.int64) for g in groups]
