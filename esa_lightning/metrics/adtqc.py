"""ADTQC: how well-timed the first alarm on each detected event is (ESA-ADB §3.5).

For a detected event: x = start of the earliest predicted interval overlapping it minus the
event start; beta_t = event span (first start to last end over its segments); alpha =
min(beta_t, event start - previous event start), beta_t for the first event. The score rises
from 0 at x = -alpha to 1 at x = 0 as ((x + alpha) / alpha)^e, then falls as
1 / (1 + (x / (beta_t - x))^e) to 0 at x = beta_t; with alpha or beta_t = 0 and x = 0 it is 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from esa_lightning.metrics.event_wise import as_spans, prepare


def timing_curve(x: np.ndarray, alpha: np.ndarray, beta_t: np.ndarray, exponent: float = math.e):
    """The ADTQC score of latency ``x`` (vectorised; all arrays in one time unit)."""
    x, a, b = (np.asarray(v, dtype=np.float64) for v in (x, alpha, beta_t))
    with np.errstate(divide="ignore", invalid="ignore"):
        early = ((x + a) / np.where(a > 0, a, 1.0)) ** exponent
        late = 1.0 / (1.0 + (x / np.where(b - x > 0, b - x, 1.0)) ** exponent)
    score = np.where(x <= 0, early, late)
    score = np.where((x <= -a) | (x >= b), 0.0, score)
    return np.where(((a == 0) | (b == 0)) & (x == 0), 1.0, score)


def adtqc(
    y_true: pd.DataFrame,
    y_pred: Any,
    *,
    select_labels: dict | None = None,
    full_range: tuple[Any, Any] | None = None,
    exponent: float = math.e,
    segments: Sequence[tuple[Any, Any]] | None = None,
) -> dict[str, float]:
    """``ADTQC`` (mean over detected events), ``ADTQC_before``/``ADTQC_after`` counts of first
    alarms before / at-or-after the event start, and ``ADTQC_after_rate``.

    ``segments``: the spans of independent series laid end to end; an event's previous event
    (its ``alpha``) is then one of its own series, the first of a series has none."""
    truth, pred, rng = prepare(y_true, y_pred, select_labels, full_range)
    m = truth.selected
    frame = pd.DataFrame({"event": truth.event[m], "start": truth.start[m], "end": truth.end[m]})
    spans = frame.groupby("event").agg(start=("start", "min"), end=("end", "max"))
    empty = {"ADTQC": 0.0, "ADTQC_before": 0, "ADTQC_after": 0, "ADTQC_after_rate": 0.0}
    if spans.empty or len(pred) == 0:
        return empty
    event, segs = truth.selected_events()
    first = np.searchsorted(pred.end, segs.start, side="left")
    hit = first < len(pred)
    hit[hit] = pred.start[first[hit]] <= segs.end[hit]
    earliest = pd.Series(first[hit]).groupby(event[hit]).min()
    if earliest.empty:
        return empty
    ev_start = spans["start"].to_numpy()
    ev_len = spans["end"].to_numpy() - ev_start
    all_starts = np.sort(ev_start)
    prev = np.searchsorted(all_starts, ev_start, side="left") - 1
    if segments is not None:  # a previous event of another series is none
        firsts = np.asarray([first for first, _ in as_spans(segments, rng)])
        series = np.searchsorted(firsts, all_starts, side="right")
        own = np.searchsorted(firsts, ev_start, side="right")
        prev = np.where((prev >= 0) & (series[np.maximum(prev, 0)] == own), prev, -1)
    gap = ev_start - all_starts[np.maximum(prev, 0)]
    alpha = np.where(prev >= 0, np.minimum(ev_len, gap), ev_len)
    pos = spans.index.get_indexer(earliest.index)
    x = pred.start[earliest.to_numpy()] - ev_start[pos]
    scores = timing_curve(x, alpha[pos], ev_len[pos], exponent)
    before = int(np.count_nonzero(x < 0))
    after = int(len(x) - before)
    return {
        "ADTQC": float(scores.mean()),
        "ADTQC_before": before,
        "ADTQC_after": after,
        "ADTQC_after_rate": after / len(x),
    }
