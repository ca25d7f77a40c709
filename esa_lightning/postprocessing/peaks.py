"""Pooled-row probabilities → per-sample probabilities → alarms (reference pipeline A, §4.8).

The channel ensemble scores pooled rows, each covering a span of samples that overlaps its
neighbours. ``spread_rows_to_samples`` averages the rows covering every sample,
``peaks_to_alarm`` turns the per-sample probability into 0/1 alarms around its peaks, and
``max_over_folds`` combines the alarms (or probabilities) of the final folds.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import find_peaks

from esa_lightning.metrics.intervals import runs
from esa_lightning.postprocessing.base import PostRule


def spread_rows_to_samples(
    row_prob: np.ndarray, spans: np.ndarray, n_samples: int, fill: float = 0.0
) -> np.ndarray:
    """Per-sample mean of the probabilities of every row whose span covers the sample.

    row_prob: [R] or [R, K] (K independent series, e.g. channels); spans: int [R, 2] holding the
    first and last sample of each row (inclusive). Samples covered by no row get ``fill``.
    Returns float32 [T] or [T, K]. Vectorised with difference arrays and cumulative sums.
    """
    prob = np.asarray(row_prob, dtype=np.float64)
    squeeze = prob.ndim == 1
    if squeeze:
        prob = prob[:, None]
    spans = np.asarray(spans, dtype=np.int64).reshape(-1, 2)
    if len(spans) != len(prob):
        raise ValueError(f"{len(prob)} row probabilities but {len(spans)} spans")
    first = np.clip(spans[:, 0], 0, n_samples)
    stop = np.clip(spans[:, 1] + 1, 0, n_samples)
    keep = stop > first
    first, stop, prob = first[keep], stop[keep], prob[keep]

    total = np.zeros((n_samples + 1, prob.shape[1]))
    np.add.at(total, first, prob)
    np.add.at(total, stop, -prob)
    count = np.bincount(first, minlength=n_samples + 1) - np.bincount(stop, minlength=n_samples + 1)
    total = np.cumsum(total, axis=0)[:n_samples]
    count = np.cumsum(count)[:n_samples]
    out = np.full((n_samples, prob.shape[1]), fill, dtype=np.float64)
    covered = count > 0
    out[covered] = total[covered] / count[covered, None]
    if len(prob):  # cumulative-sum rounding must not leave the range of the inputs
        out[covered] = np.clip(out[covered], prob.min(axis=0), prob.max(axis=0))
    out = out.astype(np.float32)
    return out[:, 0] if squeeze else out


def peaks_to_alarm(
    prob: np.ndarray, height: float = 0.5, buffer: int = 100, **find_peaks_kwargs
) -> np.ndarray:
    """0/1 alarms: the region above ``height`` around every peak, widened by ``buffer`` samples.

    Definition: ``scipy.signal.find_peaks`` finds the peaks of ``prob`` higher than ``height``.
    The series is padded with a value below every sample, so a run touching either end still
    has a peak; extra ``find_peaks_kwargs`` (``prominence``, ``distance``...) filter the peaks.
    Every kept peak marks the maximal contiguous run of samples with ``prob > height`` that
    contains it; each run is then extended by ``buffer`` samples on both sides (clipped to the
    series). Returns uint8 [T].
    """
    prob = np.asarray(prob, dtype=np.float64)
    n = len(prob)
    alarm = np.zeros(n, dtype=np.uint8)
    if n == 0:
        return alarm
    pad = min(float(np.nanmin(prob)), height) - 1.0  # finite: keeps prominences meaningful
    padded = np.concatenate([[pad], prob, [pad]])
    peaks, _ = find_peaks(padded, height=height, **find_peaks_kwargs)
    if len(peaks) == 0:
        return alarm
    peaks = peaks - 1
    above = prob > height
    run_start, run_last = runs(above)
    run_stop = run_last + 1  # exclusive
    run_of_peak = np.searchsorted(run_start, peaks, side="right") - 1
    valid = (run_of_peak >= 0) & (peaks < run_stop[np.maximum(run_of_peak, 0)])
    kept = np.unique(run_of_peak[valid])
    starts = np.clip(run_start[kept] - buffer, 0, n)
    stops = np.clip(run_stop[kept] + buffer, 0, n)
    diff = np.zeros(n + 1, dtype=np.int64)
    np.add.at(diff, starts, 1)
    np.add.at(diff, stops, -1)
    alarm[np.cumsum(diff)[:n] > 0] = 1
    return alarm


class PeakAlarm(PostRule):
    """Alarms around the peaks of the per-sample probability above ``height``, widened by
    ``buffer`` samples (``peaks_to_alarm``); nothing to fit."""

    kind = "peaks"
    stage = 2

    def __init__(self, height: float = 0.5, buffer: int = 100) -> None:
        super().__init__()
        self.height, self.buffer = float(height), int(buffer)

    @property
    def context_rows(self) -> int:
        return self.buffer

    def alarm(self, prob: np.ndarray) -> np.ndarray:
        """uint8 [T] alarms of the per-sample probability ``prob``."""
        return peaks_to_alarm(prob, height=self.height, buffer=self.buffer)
