"""ESA-ADB corrected event-wise, alarming and affiliation scores (ESA-ADB §3.1-3.3).

Every step is a sort plus ``np.searchsorted`` over interval arrays; nothing loops over samples
or over (prediction, event) pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from esa_lightning.errors import ESAInputError
from esa_lightning.metrics.affiliation import affiliation_reference, affiliation_zones
from esa_lightning.metrics.intervals import (
    Intervals,
    as_time,
    beta_list,
    clip,
    coverage,
    f_beta,
    merge,
    overlap_counts,
    prediction_intervals,
    tick_after,
)
from esa_lightning.metrics.truth import Truth, read_truth


def _range(
    truth: Truth, pred_span: tuple[Any, Any], full_range: tuple[Any, Any] | None
) -> tuple[Any, Any]:
    if full_range is not None:
        lo, hi = (as_time(pd.Series([x]), what="full_range")[0] for x in full_range)
        if hi < lo:
            raise ESAInputError("full_range ends before it starts", value=tuple(full_range))
        return lo, hi
    lows = [
        x for x in (pred_span[0], truth.start.min() if truth.start.size else None) if x is not None
    ]
    highs = [
        x for x in (pred_span[1], truth.end.max() if truth.end.size else None) if x is not None
    ]
    if not lows:
        raise ESAInputError("no labels and no predictions: cannot infer the evaluated range")
    return min(lows), max(highs)


def prepare(
    y_true: pd.DataFrame | Truth,
    y_pred: Any,
    select_labels: dict | None,
    full_range: tuple[Any, Any] | None,
) -> tuple[Truth, Intervals, tuple[Any, Any]]:
    """Labels, predicted intervals and the evaluated range, all in one numeric time dtype."""
    truth = y_true if isinstance(y_true, Truth) else read_truth(y_true, select_labels)
    if full_range is not None:
        lo_hi = _range(truth, (None, None), full_range)
        pred, _ = prediction_intervals(y_pred, lo_hi)
    else:
        pred, span = prediction_intervals(y_pred, None)
        lo_hi = _range(truth, span, None)
        if not isinstance(y_pred, tuple) and span[0] is not None:
            # change points: re-read over the inferred range (the first/last values extend)
            pred, _ = prediction_intervals(y_pred, lo_hi)
    dtype = np.result_type(truth.start.dtype, pred.start.dtype, np.asarray(lo_hi[0]).dtype)
    truth = truth.astype(dtype)
    pred = Intervals(pred.start.astype(dtype), pred.end.astype(dtype))
    lo, hi = np.asarray(lo_hi[0], dtype=dtype), np.asarray(lo_hi[1], dtype=dtype)
    truth = truth.restrict(lo, hi)
    pred, _ = clip(pred, lo, hi)
    return truth, pred, (lo, hi)


def _zero_event_wise(betas: list[float]) -> dict[str, float]:
    out = {"EW_precision": 0.0, "EW_recall": 0.0}
    out.update({f"EW_F_{b:.2f}": 0.0 for b in betas})
    return out


def _zero_scores(betas: list[float]) -> dict[str, float]:
    out = _zero_event_wise(betas)
    out["alarming_precision"] = 0.0
    out.update({"AFF_precision": 0.0, "AFF_recall": 0.0})
    out.update({f"AFF_F_{b:.2f}": 0.0 for b in betas})
    out.update({"AFFpaper_precision": 0.0, "AFFpaper_recall": 0.0})
    out.update({f"AFFpaper_F_{b:.2f}": 0.0 for b in betas})
    return out


def event_counts(truth: Truth, pred: Intervals) -> dict[str, int]:
    """TP / FN over selected event IDs, FP over predicted intervals, redundant detections."""
    event, segs = truth.selected_events()
    hits = overlap_counts(segs, pred)
    detected = np.bincount(event, weights=hits > 0, minlength=len(truth.event_names)) > 0
    n_events = truth.n_selected_events
    tp = int(detected.sum())
    fp = int(np.count_nonzero(overlap_counts(pred, truth.union()) == 0))
    redundant = int(np.maximum(hits - 1, 0).sum())
    return {"tp": tp, "fn": n_events - tp, "fp": fp, "redundant": redundant}


def true_negative_rate(truth: Truth, pred: Intervals, full_range: tuple[Any, Any]) -> float:
    """1 - (predicted time inside nominal time) / (nominal time); 1 when there is none."""
    union = truth.union()
    lo, hi = full_range
    nominal = float(hi - lo) - float(coverage(np.asarray([lo]), np.asarray([hi]), union)[0])
    if nominal <= 0:
        return 1.0
    predicted_nominal = float(pred.lengths.sum() - coverage(pred.start, pred.end, union).sum())
    return float(min(max(1.0 - predicted_nominal / nominal, 0.0), 1.0))


def affiliation_scores(
    truth: Truth, pred: Intervals, full_range: tuple[Any, Any], *, reference: bool = False
) -> tuple[float, float]:
    """Mean affiliation precision / recall: zone scores averaged per event ID, then over IDs.

    Zones belong to the merged ground truth of every category; a zone touching an unselected
    event is left out (as in ESA-ADB). Zero-length intervals get one tick of length.

    ``reference=False``: the paper's definition (Huet et al., KDD 2022); each event averages
    the zones it touches, each once; no zone left gives 0. ``reference=True``: what ESA-ADB's
    code returns (:func:`affiliation_reference`: its arithmetic and recall pairing), a zone
    counted once per labelled row (channel) of the event touching it, NaN when no zone is left.
    """
    return affiliation_both(truth, pred, full_range)[1 if reference else 0]


def affiliation_both(
    truth: Truth,
    pred: Intervals,
    full_range: tuple[Any, Any],
    segments: Sequence[tuple[Any, Any]] | None = None,
) -> tuple[tuple[float, float], tuple[float, float]]:
    """``((paper P, paper R), (reference P, reference R))`` from one zone computation.

    ``segments``: the spans of independent series laid end to end on one timeline
    (``data.mission.one_timeline``); each series' zones then end at its own span, as if it
    were scored alone, instead of reaching into its neighbours (whose order is arbitrary)."""
    if len(pred) == 0 or truth.start.size == 0:
        return (0.0, 0.0), (0.0, 0.0)
    union = merge(truth.start, np.where(truth.end > truth.start, truth.end, tick_after(truth.end)))
    p_end = np.where(pred.end > pred.start, pred.end, tick_after(pred.end))
    pred = merge(pred.start, p_end)
    pieces = [full_range] if segments is None else list(segments)
    paper_p, paper_r, ref_p, ref_r = (np.full(len(union), np.nan) for _ in range(4))
    for first, last in pieces:
        if segments is None:
            in_u, u, p = np.arange(len(union)), union, pred
        else:
            in_u = np.flatnonzero((union.start >= first) & (union.start <= last))
            if not len(in_u):
                continue
            in_p = (pred.start >= first) & (pred.start <= last)
            u = Intervals(union.start[in_u], union.end[in_u])
            p = Intervals(pred.start[in_p], pred.end[in_p])
        zp, zr, rp, rr = _zone_scores(u, p, (first, last))
        paper_p[in_u], paper_r[in_u], ref_p[in_u], ref_r[in_u] = zp, zr, rp, rr
    zone = np.searchsorted(union.start, truth.start, side="right") - 1
    bad_zone = np.zeros(len(union), dtype=bool)
    bad_zone[zone[~truth.selected]] = True
    rows = pd.DataFrame({"zone": zone, "event": truth.event})[truth.selected]
    rows = rows[~bad_zone[rows["zone"].to_numpy()]]
    if rows.empty:
        return (0.0, 0.0), (float("nan"), float("nan"))

    def mean_of_event_means(pairs: pd.DataFrame, prec: np.ndarray, rec: np.ndarray):
        z = pairs["zone"].to_numpy()
        frame = pd.DataFrame({"event": pairs["event"].to_numpy(), "p": prec[z], "r": rec[z]})
        per_event = frame.groupby("event")[["p", "r"]].mean()
        return float(per_event["p"].mean()), float(per_event["r"].mean())

    paper = mean_of_event_means(rows.drop_duplicates(), paper_p, paper_r)
    reference = mean_of_event_means(rows, ref_p, ref_r)
    return paper, reference


def _zone_scores(
    union: Intervals, pred: Intervals, full_range: tuple[Any, Any]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per zone of the merged ground truth ``union``: the paper's precision and recall, then
    the reference's (ESA-ADB's code), over the range around ``full_range``, labels and
    predictions (merged) alike."""
    starts = [full_range[0], union.start[0]] + ([pred.start[0]] if len(pred) else [])
    ends = [full_range[1], union.end[-1]] + ([pred.end[-1]] if len(pred) else [])
    lo, hi = min(starts), max(ends)
    as_f = np.float64
    zones = affiliation_zones(
        Intervals(pred.start.astype(as_f) - as_f(lo), pred.end.astype(as_f) - as_f(lo)),
        Intervals(union.start.astype(as_f) - as_f(lo), union.end.astype(as_f) - as_f(lo)),
        (0.0, float(hi - lo)),
    )
    # the reference's own arithmetic on its own number types (see affiliation_reference)
    ref_p, ref_r = affiliation_reference(
        list(zip(pred.start.tolist(), pred.end.tolist(), strict=True)),
        list(zip(union.start.tolist(), union.end.tolist(), strict=True)),
        # ESA-ADB's range starts as a Python int and ends as a NumPy int (np.max): the last
        # zone border is then a NumPy float, which compares with Python ints after rounding
        # them to float64 (a 1 ns prediction at the end survives the cut to its zone)
        (np.asarray(lo).item(), np.asarray(hi)[()]),
    )
    return (zones.precision, zones.recall, np.asarray(ref_p, dtype=float),
            np.asarray(ref_r, dtype=float))


def _event_wise(
    truth: Truth, pred: Intervals, full_range: tuple[Any, Any], betas: list[float]
) -> tuple[dict[str, float], dict[str, int]]:
    """(the ``EW_*`` scores, the event counts) of prepared labels and predictions."""
    c = event_counts(truth, pred)
    precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 0.0
    if precision > 0:
        precision *= true_negative_rate(truth, pred, full_range)
    n_events = c["tp"] + c["fn"]
    recall = c["tp"] / n_events if n_events else 0.0
    out = {"EW_precision": float(precision), "EW_recall": float(recall)}
    out.update({f"EW_F_{b:.2f}": f_beta(precision, recall, b) for b in betas})
    return out, c


def event_wise_scores(
    y_true: pd.DataFrame | Truth,
    y_pred: Any,
    *,
    betas: float | Sequence[float] = 0.5,
    select_labels: dict | None = None,
    full_range: tuple[Any, Any] | None = None,
) -> dict[str, float]:
    """The corrected event-wise keys of :func:`esa_scores` alone (``EW_precision``,
    ``EW_recall``, ``EW_F_<beta>``), the same values, without the alarming precision and the
    affiliation scores. What a threshold search reads for each of its candidates: pass
    ``y_true`` as a :class:`Truth` (``read_truth``) to read the labels once for many of them."""
    bl = beta_list(betas)
    truth, pred, rng = prepare(y_true, y_pred, select_labels, full_range)
    if len(pred) == 0:
        return _zero_event_wise(bl)
    return _event_wise(truth, pred, rng, bl)[0]


def _f_beta_reference(precision: float, recall: float, beta: float) -> float:
    """F-beta as ESA-ADB's code computes it: NaN when undefined (0/0 or a NaN input)."""
    den = beta**2 * precision + recall
    if not den > 0:
        return float("nan")
    return float((1 + beta**2) * precision * recall / den)


def esa_scores(
    y_true: pd.DataFrame,
    y_pred: Any,
    *,
    betas: float | Sequence[float] = 0.5,
    select_labels: dict | None = None,
    full_range: tuple[Any, Any] | None = None,
    segments: Sequence[tuple[Any, Any]] | None = None,
) -> dict[str, float]:
    """Corrected event-wise P/R/F, alarming precision and affiliation P/R/F of ESA-ADB.

    y_true: labels (``ID, StartTime, EndTime`` and the columns ``select_labels`` filters on,
    e.g. ``{"Category": ["Anomaly"]}``); y_pred: change points or ``(timestamps, binary)``
    (see :mod:`esa_lightning.metrics.intervals`); full_range: the evaluated span, by default
    from the earliest to the latest label or prediction time; segments: the spans of
    independent series laid end to end (``affiliation_both``), in the same time unit.
    """
    bl = beta_list(betas)
    truth, pred, rng = prepare(y_true, y_pred, select_labels, full_range)
    if len(pred) == 0:
        return _zero_scores(bl)
    out, c = _event_wise(truth, pred, rng, bl)
    alarm_den = c["tp"] + c["redundant"]
    out["alarming_precision"] = c["tp"] / alarm_den if alarm_den else 0.0
    spans = None if segments is None else as_spans(segments, rng)
    (pap_p, pap_r), (ref_p, ref_r) = affiliation_both(truth, pred, rng, spans)
    out.update({"AFF_precision": ref_p, "AFF_recall": ref_r})
    out.update({f"AFF_F_{b:.2f}": _f_beta_reference(ref_p, ref_r, b) for b in bl})
    out.update({"AFFpaper_precision": pap_p, "AFFpaper_recall": pap_r})
    out.update({f"AFFpaper_F_{b:.2f}": f_beta(pap_p, pap_r, b) for b in bl})
    return out


def as_spans(segments: Sequence[tuple[Any, Any]], rng: tuple[Any, Any]) -> list[tuple]:
    """``segments`` in the evaluated range's time dtype, in time order."""
    dtype = np.asarray(rng[0]).dtype
    spans = [
        tuple(np.asarray(as_time(pd.Series([x]), what="segments")[0]).astype(dtype) for x in s)
        for s in segments
    ]
    return sorted(spans, key=lambda s: s[0])


def telemanom_scores(
    y_true: pd.DataFrame,
    y_pred: Any,
    *,
    betas: float | Sequence[float] = 0.5,
    select_labels: dict | None = None,
    full_range: tuple[Any, Any] | None = None,
) -> dict[str, float]:
    """Uncorrected event-wise P/R/F (Hundman et al. 2018), for NASA SMAP/MSL comparisons.

    An event is detected when any predicted interval overlaps it; each predicted interval
    overlapping no labelled segment is one false positive; no time-based correction.
    """
    bl = beta_list(betas)
    truth, pred, _ = prepare(y_true, y_pred, select_labels, full_range)
    c = event_counts(truth, pred)
    precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 0.0
    n_events = c["tp"] + c["fn"]
    recall = c["tp"] / n_events if n_events else 0.0
    out = {"EWraw_precision": float(precision), "EWraw_recall": float(recall)}
    out.update({f"EWraw_F_{b:.2f}": f_beta(precision, recall, b) for b in bl})
    return out
