"""The batch layout both simulators use: B copies of a network side by side, batches one after
the other in time. Sample s = b*B + c is copy c during batch b, i.e. steps b*T .. b*T + T-1; the
last batch is padded with silent copies. One place for the rule, so Brian2 and Lava cannot
disagree about which copy held which sample.
"""

from __future__ import annotations

import numpy as np


def n_batches(n: int, bsz: int) -> int:
    return -(-n // bsz)


def batch_inputs(spikes: np.ndarray, bsz: int, rows: int, copies: int = 0) -> np.ndarray:
    """(rows, max(copies, bsz)*n_in) of the inputs' dtype (booleans, or event counts), row b*T + t
    = step t of batch b; rows beyond the batches and columns beyond the bsz copies stay silent."""
    n, steps, n_in = spikes.shape
    if rows < n_batches(n, bsz) * steps:
        raise ValueError(f"{rows} rows cannot hold {n_batches(n, bsz)} batches of {steps} steps")
    table = np.zeros((rows, max(copies, bsz) * n_in), dtype=spikes.dtype)
    s, t, k = np.nonzero(spikes)
    table[(s // bsz) * steps + t, (s % bsz) * n_in + k] = spikes[s, t, k]
    return table


def unbatch_steps(train: np.ndarray, n: int, steps: int, bsz: int, size: int) -> np.ndarray:
    """(n_batches*T, bsz*size) per-step values -> (n, T, size) per sample (padding dropped)."""
    nb = train.shape[0] // steps
    return train.reshape(nb, steps, bsz, size).transpose(0, 2, 1, 3).reshape(nb * bsz, steps, size)[:n]


def unbatch_counts(counts: np.ndarray, n: int, size: int) -> np.ndarray:
    """(n_batches, bsz*size) per-batch values -> (n, size) per sample (padding dropped)."""
    return counts.reshape(-1, size)[:n]
