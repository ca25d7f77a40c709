"""Telemanom's non-parametric dynamic threshold with pruning (Hundman et al. 2018).

EWMA-smoothed errors, epsilon = mu + z sigma with z chosen to maximise
(delta mu / mu + delta sigma / sigma) / (|E_anom| + |E_seq|^2), then weak anomalous sequences
pruned. ``dynamic_threshold`` does it on one sequence of errors; ``TelemanomOnline`` is the post
rule that applies it to the errors of the very stream being scored (no labels, nothing fitted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from esa_lightning.errors import ESAInputError
from esa_lightning.metrics.intervals import runs
from esa_lightning.postprocessing.base import RULE_KEY, PostRule, check_rule_settings


def ewma(x: np.ndarray, span: float) -> np.ndarray:
    """Exponentially weighted moving average along time (Telemanom's error smoothing)."""
    if span is None or span <= 1 or len(x) == 0:
        return np.asarray(x, dtype=np.float32)
    return pd.Series(x).ewm(span=span).mean().to_numpy(dtype=np.float32)


@dataclass
class DynamicThreshold:
    threshold: float  # ε (the median of the chunk thresholds when ``window`` split the errors)
    alarm: np.ndarray  # bool [T] after pruning
    smoothed: np.ndarray  # float [T] the EWMA-smoothed errors ε applies to
    z: float  # z of ε (median over chunks)


def _dilate(mask: np.ndarray, buffer: int) -> np.ndarray:
    """``mask`` with every True spread to the ``buffer - 1`` rows on each side (Telemanom's
    error buffer); ``buffer <= 1`` leaves it as it is."""
    if buffer <= 1 or not mask.any():
        return mask
    from scipy.ndimage import maximum_filter1d

    return maximum_filter1d(mask.astype(np.uint8), size=2 * buffer - 1, mode="constant") > 0


def _epsilon(
    e: np.ndarray, z_values: np.ndarray, buffer: int = 0, max_sequences: int | None = None
) -> tuple[float, float]:
    mu, sd = float(e.mean()), float(e.std())
    if sd == 0 or mu == 0:
        return mu + float(z_values[-1]) * sd, float(z_values[-1])
    best, best_eps, best_z = -np.inf, mu + float(z_values[-1]) * sd, float(z_values[-1])
    for z in z_values:
        eps = mu + z * sd
        above = _dilate(e > eps, buffer)
        n_anom = int(above.sum())
        if n_anom == 0 or n_anom == len(e):
            continue
        n_seq = len(runs(above)[0])
        if max_sequences is not None and (n_seq > max_sequences or n_anom >= 0.5 * len(e)):
            continue  # Telemanom: at most 5 sequences, under half of the window
        below = e[e <= eps]
        score = ((mu - below.mean()) / mu + (sd - below.std()) / sd) / (n_anom + n_seq**2)
        if score >= best:
            best, best_eps, best_z = score, float(eps), float(z)
    return best_eps, best_z


def prune(seq_max: np.ndarray, non_anomalous_max: float, min_percent_decrease: float) -> np.ndarray:
    """bool [K]: which anomalous sequences survive Telemanom pruning.

    Sequence maxima sorted in decreasing order, followed by the largest non-anomalous error; a
    sequence is dropped when it and every sequence below it decrease by less than
    ``min_percent_decrease`` to their successor.
    """
    seq_max = np.asarray(seq_max, dtype=np.float64)
    order = np.argsort(-seq_max, kind="stable")
    chain = np.append(seq_max[order], non_anomalous_max)
    with np.errstate(divide="ignore", invalid="ignore"):
        drop = (chain[:-1] - chain[1:]) / chain[:-1]
    significant = np.flatnonzero(drop >= min_percent_decrease)
    n_keep = 0 if len(significant) == 0 else int(significant[-1]) + 1
    keep = np.zeros(len(seq_max), dtype=bool)
    keep[order[:n_keep]] = True
    return keep


@dataclass(frozen=True)
class ErrorScale:
    """Telemanom's check that errors are large against the values they were made on.

    ``values``: the forecast (or reconstructed) values, aligned with the errors and in the same
    units. A chunk is judged only when its errors' spread exceeds ``ratio`` x the values' spread
    or its largest error exceeds ``ratio`` x the values' 5-95 % range, and its largest error
    exceeds ``min_error``; an error is anomalous only above ``ratio`` x that range too.
    """

    values: np.ndarray
    ratio: float = 0.05
    min_error: float = 0.0

    def floor(self, e: np.ndarray, lo: int, hi: int) -> float:
        """The least anomalous error of chunk ``[lo, hi)`` with errors ``e``; infinite (nothing
        anomalous) when the chunk's errors are too small against its values to be judged."""
        v = np.asarray(self.values[lo:hi], dtype=np.float64)
        high, low = np.percentile(v, [95, 5]) if len(v) else (0.0, 0.0)
        spread = self.ratio * (high - low)
        big = e.std() > self.ratio * v.std() or e.max() > spread
        return float(spread) if big and e.max() > self.min_error else np.inf


def _chunk_alarm(
    e: np.ndarray,
    z_values: np.ndarray,
    p: float,
    *,
    judge_from: int = 0,
    earlier: np.ndarray | None = None,
    floor: float = -np.inf,
    buffer: int = 0,
    max_sequences: int | None = None,
) -> tuple[float, float, np.ndarray]:
    """(ε, z, bool alarm) of one chunk of smoothed errors: ε chosen on the whole chunk, alarms
    kept only from position ``judge_from`` on (earlier positions were judged by earlier chunks,
    whose alarms ``earlier`` leave out of the largest non-anomalous error)."""
    eps, z = _epsilon(e, z_values, buffer, max_sequences)
    above = _dilate((e > eps) & (e > floor), buffer)
    above[:judge_from] = False
    seqs = np.stack(runs(above), axis=1)
    if len(seqs) == 0:
        return eps, z, above
    seq_max = np.array([e[a : b + 1].max() for a, b in seqs])
    free = ~above if earlier is None else ~above & ~earlier
    non_anom_max = float(e[free].max()) if free.any() else 0.0
    keep = prune(seq_max, non_anom_max, p)
    alarm = np.zeros(len(e), dtype=bool)
    for a, b in seqs[keep]:
        alarm[a : b + 1] = True
    return eps, z, alarm


def chunk_bounds(n: int, window: int | None, step: int | None) -> list[tuple[int, int, int]]:
    """(start, end, judged_from) of the chunks thresholded one by one, as Telemanom slides them.

    Chunks of ``window`` errors side by side (``step`` None) or starting every ``step`` errors,
    the last one reaching the end; each error is judged once, by the first chunk holding it:
    the first chunk judges all of its errors, a later one only those past the previous end.
    """
    size = n if window is None else max(1, min(n, int(window)))
    advance = size if step is None else max(1, int(step))
    starts = list(range(0, n - size + 1, advance))
    bounds, judged = [], 0
    for k, lo in enumerate(starts):
        last = k == len(starts) - 1
        hi = n if last and step is not None else lo + size
        bounds.append((lo, hi, judged))
        judged = hi
    if judged < n:  # side by side: the tail gets a chunk of its own
        bounds.append((judged, n, judged))
    return bounds


def dynamic_threshold(
    errors: np.ndarray,
    *,
    window: int | None = None,
    smoothing: float = 105,
    z_range: tuple[float, float] = (2, 10),
    z_step: float = 0.5,
    min_percent_decrease: float = 0.13,
    step: int | None = None,
    error_buffer: int = 0,
    max_sequences: int | None = None,
    scale: ErrorScale | None = None,
    inverse: bool = False,
    warmup: int = 0,
) -> DynamicThreshold:
    """Telemanom's dynamic threshold and pruning on a sequence of errors (Hundman et al. 2018).

    ``smoothing`` is the EWMA span (Telemanom: batch 70 x window 30 x 5 % = 105; <= 1 disables);
    ``window`` splits the smoothed errors into chunks thresholded separately (None: one
    threshold for the whole sequence); ``step`` makes those chunks slide by ``step`` errors
    (Telemanom: windows of 2100 errors every 70), each error judged once, by the first chunk
    holding it (``chunk_bounds``); ``error_buffer`` spreads each error above the threshold to
    its neighbours before sequences are counted and pruned (Telemanom: 100);
    ``max_sequences`` bounds the sequences a threshold may leave, and their rows to under half
    the chunk (Telemanom: 5); ``scale`` skips errors that are small against the values
    (``ErrorScale``); ``inverse`` also flags unusually small errors (mirrored about the chunk
    mean); ``warmup`` (Telemanom: its 250-row history) replaces the first ``warmup`` smoothed
    errors by the mean of the first ``2 x warmup`` and leaves the first 2 x ``warmup`` errors
    unjudged (``warmup`` on streams under 2500 errors, none under 1800).
    """
    raw = np.asarray(errors, dtype=np.float64).ravel()
    if len(raw) == 0:
        raise ValueError("no errors to threshold")
    e = ewma(raw, smoothing).astype(np.float64)
    ignore = 0
    if warmup > 0 and len(e) > warmup:
        e[:warmup] = e[: 2 * warmup].mean()
        ignore = 2 * warmup if len(e) >= 2500 else warmup if len(e) >= 1800 else 0
    z_values = np.arange(z_range[0], z_range[1] + 1e-9, z_step)
    alarm = np.zeros(len(e), dtype=bool)
    eps_all, z_all = [], []
    for lo, hi, judged in chunk_bounds(len(e), window, step):
        chunk = e[lo:hi]
        floor = -np.inf if scale is None else scale.floor(chunk, lo, hi)
        judge_from = max(judged, ignore) - lo
        mirrored = [2 * chunk.mean() - chunk] if inverse else []
        for k, errs in enumerate([chunk, *mirrored]):
            eps, z, a = _chunk_alarm(
                errs, z_values, min_percent_decrease, judge_from=judge_from,
                earlier=alarm[lo:hi], floor=floor,
                buffer=int(error_buffer), max_sequences=max_sequences,
            )
            alarm[lo:hi] |= a
            if k == 0:
                eps_all.append(eps)
                z_all.append(z)
    return DynamicThreshold(float(np.median(eps_all)), alarm, e, float(np.median(z_all)))




def z_range_setting(z_range: Any) -> tuple[float, float]:
    """``z_range`` [low, high]: the thresholds mean + z x std tried, from above the mean (0 <
    low <= high, finite), or an ``ESAInputError`` naming the setting: a negative z put the
    threshold below the mean and alarmed nearly every window."""
    values = [] if isinstance(z_range, str) or not isinstance(z_range, Sequence) else list(z_range)
    numbers = len(values) == 2 and all(
        isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v) for v in values
    )
    if not numbers or not 0 < values[0] <= values[1]:
        raise ESAInputError("must be [low, high], finite numbers with 0 < low <= high",
                            column=f"{RULE_KEY}.z_range", value=z_range)
    return float(values[0]), float(values[1])


class TelemanomOnline(PostRule):
    """Telemanom's dynamic threshold applied to the smoothed errors of the scored stream itself.

    It uses no labels, so it is legitimate on a test range, but a row's alarm then depends on
    the whole scored stream (or its ``window`` chunk): chunked prediction is approximate in this
    mode. Settings as in ``dynamic_threshold``; ``error_scale`` / ``min_error`` (the value's
    own units) turn on the error-scale check, which needs a model with one output channel.
    """

    kind = "telemanom"

    def __init__(
        self,
        smoothing: float = 105.0,
        z_range: tuple[float, float] | list[float] = (2.5, 12.0),
        z_step: float = 0.5,
        min_percent_decrease: float = 0.13,
        window: int | None = None,
        step: int | None = None,
        error_buffer: int = 0,
        max_sequences: int | None = None,
        error_scale: float = 0.0,
        min_error: float = 0.0,
        inverse: bool = False,
        warmup: int = 0,
    ) -> None:
        super().__init__()
        check_rule_settings(  # train.py's rules, checked again when an artifact is loaded
            smoothing=smoothing, z_step=z_step, min_percent_decrease=min_percent_decrease,
            error_buffer=error_buffer, max_sequences=max_sequences, error_scale=error_scale,
            min_error=min_error, warmup=warmup,
        )
        z_range = z_range_setting(z_range)
        self.smoothing, self.z_range, self.z_step = float(smoothing), z_range, z_step
        self.min_percent_decrease = float(min_percent_decrease)
        self.window, self.step = window, step
        self.error_buffer, self.max_sequences = int(error_buffer), max_sequences
        self.error_scale, self.min_error = float(error_scale), float(min_error)
        self.inverse, self.warmup = bool(inverse), int(warmup)

    @property
    def checks_error_scale(self) -> bool:
        """Whether alarms need the forecast values (Telemanom's error-scale check)."""
        return max(self.error_scale, self.min_error) > 0

    @property
    def context_rows(self) -> int:
        """Only the local context: the whole stream influences every row (see the class)."""
        return int(40 * self.smoothing) if self.smoothing > 0 else 0

    def window_alarms(
        self, total: np.ndarray, targets: np.ndarray | None = None, unit: float = 1.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """(smoothed errors, bool alarms) of window errors ``total``; ``targets`` are the
        scaled values forecast (error-scale check), ``unit`` the scale of one value unit."""
        if len(total) == 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=bool)
        scale = None
        if targets is not None and self.checks_error_scale:
            # errors are in scaled units: the minimum error (in the value's units) is too
            scale = ErrorScale(targets, self.error_scale, self.min_error / unit)
        dyn = dynamic_threshold(
            total,
            window=self.window,
            smoothing=self.smoothing,
            z_range=self.z_range,
            z_step=self.z_step,
            min_percent_decrease=self.min_percent_decrease,
            step=self.step,
            error_buffer=self.error_buffer,
            max_sequences=self.max_sequences,
            scale=scale,
            inverse=self.inverse,
            warmup=self.warmup,
        )
        return dyn.smoothed.astype(np.float32), dyn.alarm

    def extra_repr(self) -> str:
        return f"smoothing={self.smoothing}, window={self.window}, step={self.step}"

