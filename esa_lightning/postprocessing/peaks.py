"""Pooled-row probabilities → per-sample probabilities → alarms (reference pipeline A, §4.8).

The channel ensemble scores pooled rows, each covering a span of samples that overlaps its
neighbours. ``spread_rows_to_samples`` averages the rows covering every sample,
``peaks_to_alarm`` turns the per-sample probability into 0/1 alarms around its peaks, and
``max_over_folds`` combines the alarms (or probabilities) of the final folds.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from scipy.signal import find_peaks

from esa_lightning.metrics.intervals import runs
from esa_lightning.postprocessing.base import CHUNK_ROWS, PostRule, check_chunk_rows
from esa_lightning.postprocessing.f05_search import stable_f05_threshold

log = logging.getLogger(__name__)


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
    peaks = peaks[prob[peaks] > height]  # find_peaks keeps a peak equal to the height
    if len(peaks) == 0:
        return alarm
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


def fold_pieces(ranges: list[tuple[int, int]], n_folds: int) -> list[tuple[int, int]]:
    """``n_folds`` contiguous folds over the rows of ``ranges`` taken one after another, each
    cut where a range ends: [first, stop) pieces of rows (one range: its ``n_folds`` cuts)."""
    ranges = [(int(a), int(b)) for a, b in ranges if b > a]
    if not ranges:
        return []
    offsets = np.cumsum([0] + [b - a for a, b in ranges])
    cuts = np.linspace(0, offsets[-1], n_folds + 1).astype(int)
    pieces = []
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
        for (a, _), off, end in zip(ranges, offsets[:-1], offsets[1:], strict=True):
            first, stop = max(lo, off), min(hi, end)
            if stop > first:
                pieces.append((a + first - off, a + stop - off))
    return pieces


class PeakAlarm(PostRule):
    """Alarms around the peaks of the per-sample probability above a height, widened by
    ``buffer`` samples (``peaks_to_alarm``).

    The height is ``height`` as configured, or with ``fit: true`` the one with the best mean
    corrected event-wise F0.5 over ``folds`` contiguous folds of the rows the model's learners
    did not read the labels of (``stable_f05_threshold``, see ``fit``; the alarms scoring forces
    on readings float32 cannot hold counted, as the evaluation adds them): a model's probabilities
    are not calibrated to 0.5 on every mission (on real telemetry they can sit above it
    everywhere), and a height chosen on a validation range's few events alone is a coin toss.
    The fit scores the fit range ``chunk_rows`` rows at a time with their context, keeping the
    probability only (memory only: the same height for any value; 0: the whole range at once).
    """

    kind = "peaks"
    stage = 2
    RUNTIME_SETTINGS = frozenset({"chunk_rows"})

    def __init__(
        self,
        height: float = 0.5,
        buffer: int = 100,
        fit: bool = False,
        folds: int = 3,
        chunk_rows: int = CHUNK_ROWS,
    ) -> None:
        super().__init__()
        self.height, self.buffer = float(height), int(buffer)
        self.fit_height, self.folds = bool(fit), max(1, int(folds))
        self.chunk_rows = check_chunk_rows(chunk_rows)
        if self.fit_height:  # only then: artifacts with a fixed height load as they are
            self.register_buffer("fitted_height", torch.tensor(float("nan")))

    @property
    def is_fitted(self) -> bool:
        return not self.fit_height or bool(torch.isfinite(self.fitted_height))

    @property
    def current_height(self) -> float:
        return float(self.fitted_height) if self.fit_height else self.height

    @property
    def context_rows(self) -> int:
        return self.buffer

    def alarm(self, prob: np.ndarray) -> np.ndarray:
        """uint8 [T] alarms of the per-sample probability ``prob``."""
        height = self.current_height
        if not np.isfinite(height):
            return np.zeros(len(prob), dtype=np.uint8)
        return peaks_to_alarm(prob, height=height, buffer=self.buffer)

    def fit(self, model: Any, datamodule: Any) -> None:
        """With ``fit``: the height over ``folds`` folds of the rows the model's learners did
        not read the labels of (``datamodule.label_free_ranges()``: its own probabilities on its
        training rows are far higher than anywhere else, and a height fitted there alarms
        nowhere else); the whole fit range when those rows hold no labeled event, the
        configured height when it holds none either."""
        if not self.fit_height:
            return
        fit_range = datamodule.mission.fit_range()
        n = len(fit_range.values)
        # the probability alone is kept of each piece (not its per-channel scores and alarms)
        pieces = model.provisional_pieces(fit_range, self.chunk_rows)
        prob = np.concatenate([np.asarray(rs.score, dtype=np.float64) for rs in pieces])
        height = None
        uncaught = False
        free_ranges = datamodule.label_free_ranges()
        for ranges in [free_ranges] + ([[(0, n)]] if free_ranges != [(0, n)] else []):
            pieces = fold_pieces(ranges, self.folds)
            if not pieces:
                continue
            folds = [
                (fit_range.slice(a, b), lambda h, p=prob[a:b]: peaks_to_alarm(p, h, self.buffer))
                for a, b in pieces
            ]
            free = np.concatenate([prob[a:b] for a, b in pieces])
            levels = np.unique(np.quantile(free, np.linspace(0.5, 0.9999, 60)))
            # the midpoints too: a gap between nominal and anomalous probabilities has candidates
            candidates = np.unique(np.concatenate([levels, (levels[1:] + levels[:-1]) / 2]))
            height = stable_f05_threshold(candidates, folds)
            if height is not None and height[1] > 0:
                break
            # every candidate at F0.5 0 (no height catches a labeled event): the median tied
            # candidate was an arbitrary height, which alarmed nearly every row
            uncaught = height is not None
            height = None
            if ranges != [(0, n)]:  # the whole fit range is tried next
                log.warning(
                    "peaks: %s in rows %s; trying all rows",
                    "no height catches a labeled event" if uncaught else "no labeled event",
                    ranges,
                )
        if height is None:
            log.warning(
                "peaks: %s before the test range; the configured height %g "
                "(model.post_processing.alarm.height)",
                "no height catches a labeled event" if uncaught else "no labeled event",
                self.height,
            )
            self.fitted_height.fill_(self.height)
            return
        value, mean_f, n_folds = height
        self.fitted_height.fill_(value)
        log.info(
            "peaks: height %.4f (mean EW_F_0.50 %.4f over %d folds of rows %s)",
            value,
            mean_f,
            n_folds,
            ", ".join(f"{a}-{b - 1}" for a, b in ranges),
        )
