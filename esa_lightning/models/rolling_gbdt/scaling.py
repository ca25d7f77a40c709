"""What the rolling-statistics baseline fits besides its classifier: the channels' robust
scaling, the training rows it learns from, and the nominal spread of every feature."""

from __future__ import annotations

import numpy as np

from esa_lightning.data.mission import Mission

#: rows (evenly spaced) that the scaling and the feature spread are estimated from, at most
MAX_SCALING_ROWS = 500_000
MAX_SPREAD_ROWS = 20_000
#: smallest feature spread, in units of the channel's IQR (features constant in training)
MIN_SPREAD = 0.01


def evenly(rows: np.ndarray, limit: int) -> np.ndarray:
    """At most ``limit`` of ``rows``, evenly spaced."""
    if len(rows) <= limit:
        return rows
    return rows[np.linspace(0, len(rows) - 1, limit).astype(np.int64)]


def robust_scaling(train: Mission) -> tuple[np.ndarray, np.ndarray]:
    """float64 per-channel (median, IQR) of the nominal rows of ``train`` (every row when none
    is nominal); a channel without spread falls back to its standard deviation, then to 1."""
    values = np.asarray(train.values)
    rows = np.flatnonzero(train.row_labels == 0)
    if not len(rows):
        rows = np.arange(len(values))
    c = values.shape[1]
    if not len(rows):
        return np.zeros(c), np.ones(c)
    x = np.asarray(values[evenly(rows, MAX_SCALING_ROWS)], dtype=np.float64)
    x = np.where(np.isfinite(x), x, np.nan)
    with np.errstate(all="ignore"):
        q25, median, q75 = np.nanpercentile(x, [25, 50, 75], axis=0)
        std = np.nanstd(x, axis=0)
    scale = np.where(q75 - q25 > 1e-12, q75 - q25, np.where(std > 1e-12, std, 1.0))
    return np.nan_to_num(median, nan=0.0), np.nan_to_num(scale, nan=1.0)


def training_rows(y: np.ndarray, max_rows: int, seed: int) -> np.ndarray:
    """Sorted indices of the rows to learn from: every anomalous row (``y`` True), at most half
    of ``max_rows`` of them, and a seeded uniform subsample of the others up to ``max_rows``."""
    y = np.asarray(y, dtype=bool)
    if len(y) <= max_rows:
        return np.arange(len(y))
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    n_pos = min(len(pos), max_rows // 2)
    n_neg = min(len(neg), max_rows - n_pos)
    n_pos = min(len(pos), max_rows - n_neg)
    rng = np.random.default_rng(seed)
    pick = [
        rows if n == len(rows) else rng.choice(rows, n, replace=False)
        for rows, n in ((pos, n_pos), (neg, n_neg))
    ]
    return np.sort(np.concatenate(pick))


def feature_spread(x: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float64 per-column (median, 99.9th percentile of the distance to it, floored at
    ``MIN_SPREAD``) of the feature rows ``x[rows]`` (missing values read as 0), from at most
    ``MAX_SPREAD_ROWS`` of them: a feature 1 spread from its median lies as far out as the most
    extreme 0.1 % of those rows, whatever the shape of its distribution."""
    sample = x[evenly(np.asarray(rows), MAX_SPREAD_ROWS)]
    center = np.zeros(x.shape[1])
    spread = np.full(x.shape[1], MIN_SPREAD)
    if not len(sample):
        return center, spread
    for lo in range(0, x.shape[1], 256):  # float64 copies of 256 columns at a time
        part = np.nan_to_num(sample[:, lo : lo + 256].astype(np.float64), nan=0.0)
        median = np.median(part, axis=0)
        center[lo : lo + 256] = median
        far = np.percentile(np.abs(part - median), 99.9, axis=0)
        spread[lo : lo + 256] = np.maximum(far, MIN_SPREAD)
    return center, spread
