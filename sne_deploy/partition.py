"""Partition the teacher's feature dimensions into K balanced, disjoint groups.

``informed`` groups mutually correlated dimensions, so each student learns a coherent sub-space
(SNE's informed partitioning): every dimension is described by its row of the absolute
correlation matrix on training features, k-means finds K centres, and a capacity-limited greedy
assignment (most confident dimensions first) makes the groups balanced (sizes differ by <= 1).
``contiguous`` and ``random`` are the ablation baselines.
"""
from __future__ import annotations

import numpy as np

from simulators.errors import InputError

MODES = ("informed", "contiguous", "random")


def _capacities(d: int, k: int) -> list[int]:
    return [d // k + (1 if i < d % k else 0) for i in range(k)]


def partition_features(features: np.ndarray, k: int, mode: str = "informed", seed: int = 0) -> list[np.ndarray]:
    """Split the columns of ``features`` (N, D) into ``k`` groups of sorted dimension indices."""
    features = np.asarray(features, dtype=np.float64)
    d = features.shape[1]
    if not 1 <= k <= d:
        raise InputError(f"cannot split {d} feature dimensions into {k} groups")
    caps = _capacities(d, k)
    if mode == "contiguous":
        bounds = np.cumsum([0] + caps)
        return [np.arange(bounds[i], bounds[i + 1]) for i in range(k)]
    if mode == "random":
        perm = np.random.default_rng(seed).permutation(d)
        bounds = np.cumsum([0] + caps)
        return [np.sort(perm[bounds[i] : bounds[i + 1]]) for i in range(k)]
    if mode != "informed":
        raise InputError(f"unknown partition '{mode}' (choose from {', '.join(MODES)})")
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
