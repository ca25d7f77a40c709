"""Channel-aware and subsystem-aware F-scores of ESA-ADB (§3.4).

For each selected event ID, S = the union of its segments over the evaluated channels. A channel
is a TP when annotated for the event and it has a detection inside S, an FN when annotated
without one, an FP when not annotated but it has a detection inside S, unless that detection
(clipped to S) overlaps another selected event's annotation on the same channel. P, R and F are
computed per event and macro-averaged over events. Subsystems: the same, a subsystem being
annotated / detected when any of its evaluated channels is (detections excused on a channel do
not make a subsystem FP). Events with no annotation on an evaluated channel are left out.
The loop runs over channels; each channel's work is vectorised over all events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from esa_lightning.errors import ESAInputError
from esa_lightning.metrics.intervals import (
    Intervals,
    as_time,
    beta_list,
    clip,
    f_beta,
    merge_grouped,
    overlap_counts,
    prediction_intervals,
)
from esa_lightning.metrics.truth import read_truth


def _per_event_prf(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, betas: list[float]):
    """Macro-averaged precision, recall and F over events (rows of the count arrays)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
        r = np.where(tp + fn > 0, tp / np.maximum(tp + fn, 1), 0.0)
    out = {"precision": float(p.mean()) if p.size else 0.0}
    out["recall"] = float(r.mean()) if r.size else 0.0
    for b in betas:
        f = [f_beta(pi, ri, b) for pi, ri in zip(p, r, strict=True)]
        out[f"F_{b:.2f}"] = float(np.mean(f)) if f else 0.0
    return out


def _subsystem_matrix(channels: list[str], channels_table: pd.DataFrame | None) -> np.ndarray:
    """One-hot [C, S] membership of the evaluated channels in their subsystems."""
    if channels_table is None:
        subs = list(channels)
    else:
        for col in ("Channel", "Subsystem"):
            if col not in channels_table.columns:
                raise ESAInputError("channels table lacks a required column", column=col)
        lookup = dict(
            zip(channels_table["Channel"].astype(str), channels_table["Subsystem"], strict=True)
        )
        subs = [str(lookup.get(c, c)) for c in channels]
    codes, names = pd.factorize(pd.Series(subs))
    m = np.zeros((len(channels), len(names)), dtype=bool)
    m[np.arange(len(channels)), codes] = True
    return m


def channel_aware_scores(
    y_true: pd.DataFrame,
    channel_predictions: Mapping[str, Any],
    channels_table: pd.DataFrame | None = None,
    *,
    betas: float | Sequence[float] = 0.5,
    select_labels: dict | None = None,
    full_range: tuple[Any, Any] | None = None,
) -> dict[str, float]:
    """``channel_*`` and ``subsystem_*`` precision / recall / F over the predicted channels.

    channel_predictions: channel name -> prediction (change points or (timestamps, binary));
    channels_table: ``Channel, Subsystem`` (None: every channel is its own subsystem).
    """
    bl = beta_list(betas)
    truth = read_truth(y_true, select_labels)
    if truth.channel is None:
        raise ESAInputError(
            "channel-aware scores need the labels' Channel column", column="Channel"
        )
    channels = [str(c) for c in channel_predictions]
    if not channels:
        raise ESAInputError("channel_predictions is empty")
    preds = [prediction_intervals(channel_predictions[c], None) for c in channels]
    if full_range is None:
        spans = [s for _, s in preds if s[0] is not None]
        lows = [s[0] for s in spans] + ([truth.start.min()] if truth.start.size else [])
        highs = [s[1] for s in spans] + ([truth.end.max()] if truth.end.size else [])
        full_range = (min(lows), max(highs))
    else:
        full_range = tuple(as_time(pd.Series([x]), what="full_range")[0] for x in full_range)
    preds = [prediction_intervals(channel_predictions[c], full_range)[0] for c in channels]
    dtype = np.result_type(truth.start.dtype, *[p.start.dtype for p in preds])
    lo, hi = np.asarray(full_range[0]).astype(dtype), np.asarray(full_range[1]).astype(dtype)
    truth = truth.astype(dtype).restrict(lo, hi)
    preds = [clip(Intervals(p.start.astype(dtype), p.end.astype(dtype)), lo, hi)[0] for p in preds]

    ch_index = {c: i for i, c in enumerate(channels)}
    row_ch = np.array([ch_index.get(c, -1) for c in truth.channel], dtype=np.int64)
    keep = truth.selected & (row_ch >= 0)
    ev_codes, ev = np.unique(truth.event[keep], return_inverse=True)
    row_ch, starts, ends = row_ch[keep], truth.start[keep], truth.end[keep]
    n_ev, n_ch = len(ev_codes), len(channels)
    if n_ev == 0:
        zero = {
            f"{lvl}_{k}": 0.0 for lvl in ("channel", "subsystem") for k in ("precision", "recall")
        }
        zero.update({f"{lvl}_F_{b:.2f}": 0.0 for lvl in ("channel", "subsystem") for b in bl})
        return zero

    annotated = np.zeros((n_ev, n_ch), dtype=bool)
    annotated[ev, row_ch] = True
    s_event, s_union = merge_grouped(ev, starts, ends)  # S of each event, as disjoint blocks
    detected = np.zeros((n_ev, n_ch), dtype=bool)
    excused = np.zeros((n_ev, n_ch), dtype=bool)
    for c, pred in enumerate(preds):
        if len(pred) == 0:
            continue
        first = np.searchsorted(pred.end, s_union.start, side="left")
        n = np.maximum(np.searchsorted(pred.start, s_union.end, side="right") - first, 0)
        detected[:, c] = np.bincount(s_event, weights=n > 0, minlength=n_ev) > 0
        block = np.repeat(np.arange(len(s_union)), n)
        k = np.repeat(first, n) + np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        pieces = Intervals(
            np.maximum(s_union.start[block], pred.start[k]),
            np.minimum(s_union.end[block], pred.end[k]),
        )
        on_c = row_ch == c
        hits_other = overlap_counts(pieces, Intervals(starts[on_c], ends[on_c])) > 0
        excused[:, c] = np.bincount(s_event[block], weights=hits_other, minlength=n_ev) > 0

    tp = (annotated & detected).sum(1)
    fn = (annotated & ~detected).sum(1)
    fp = (~annotated & detected & ~excused).sum(1)
    out = {f"channel_{k}": v for k, v in _per_event_prf(tp, fp, fn, bl).items()}

    member = _subsystem_matrix(channels, channels_table).astype(np.int64)
    sub_annotated = (annotated.astype(np.int64) @ member) > 0
    sub_detected = (detected.astype(np.int64) @ member) > 0
    sub_unexcused = ((detected & ~excused).astype(np.int64) @ member) > 0
    tp = (sub_annotated & sub_detected).sum(1)
    fn = (sub_annotated & ~sub_detected).sum(1)
    fp = (~sub_annotated & sub_unexcused).sum(1)
    out.update({f"subsystem_{k}": v for k, v in _per_event_prf(tp, fp, fn, bl).items()})
    return out
