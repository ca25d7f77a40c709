"""Which labeled events the alarms caught: ``events.csv`` and the report's "Events" section.

One row per labeled event of the scored range:

    series      the independent series (NASA channel) of the event, else empty
    id          the event's ID in the labels
    category    Anomaly, Rare Event, Communication Gap... (empty when the labels lack it)
    class       its class and subclass in ESA-ADB's ``anomaly_types.csv`` (empty without one)
    subclass
    start, end  its first and last labeled timestamp (or sample id) in the range
    channels    its labeled channels, ``;``-joined (empty where labels name none: Kaggle rows)
    caught      1 when an alarm overlaps one of its labeled segments, else 0
    alarms      the numbers of those alarms, ``;``-joined: rows of ``intervals.csv`` counted
                from 0, as the report numbers them

An event is caught exactly when the corrected event-wise recall counts it as detected
(``metrics.event_wise.event_counts``: an alarm interval shares a point with one of the event's
segments, each channel's segments of one event merged), so the share of caught events among
anomalies and rare events is the run's ``EW_recall``. A range without labeled events has no
such table (and ``predict.py`` writes no ``events.csv``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from esa_lightning.metrics.event_wise import prepare

if TYPE_CHECKING:
    from esa_lightning.reporting.figures import ScoredGrid

EVENT_COLUMNS = [
    "series", "id", "category", "class", "subclass", "start", "end", "channels", "caught",
    "alarms",
]
_LABEL_COLUMNS = {"category": "Category", "class": "Class", "subclass": "Subclass"}


def event_outcomes(
    events: pd.DataFrame, timestamps: np.ndarray, alarm: np.ndarray, *, series: str = "",
    first_alarm: int = 0,
) -> pd.DataFrame:
    """The table of the module docstring for one scored grid: its label rows ``events``, the
    grid's ``timestamps`` and row ``alarm`` (0/1). ``first_alarm``: the number of this grid's
    first alarm (the alarms of the grids before it in ``intervals.csv``)."""
    times = np.asarray(timestamps)
    if events is None or len(events) == 0 or len(times) == 0:
        return pd.DataFrame(columns=EVENT_COLUMNS)
    alarm = np.asarray(alarm).astype(np.uint8)
    truth, pred, _ = prepare(events, (times, alarm), None, (times[0], times[-1]))
    code, segments = truth.selected_events()  # every label row selected: no selection given
    if len(code) == 0:
        return pd.DataFrame(columns=EVENT_COLUMNS)
    # alarm intervals are disjoint and sorted: those sharing a point with [start, end]
    first = np.searchsorted(pred.end, segments.start, side="left")
    stop = np.searchsorted(pred.start, segments.end, side="right")
    caught: dict[int, set[int]] = {int(c): set() for c in np.unique(code)}
    for c, lo, hi in zip(code.tolist(), first.tolist(), stop.tolist(), strict=True):
        caught[c].update(range(lo, hi))
    names = truth.event_names
    by_id = dict(tuple(events.groupby(events["ID"].astype(str), sort=False)))
    rows = []
    for c, hits in caught.items():
        own = by_id[str(names[c])]
        mine = code == c
        row = {"series": series, "id": names[c]}
        for key, column in _LABEL_COLUMNS.items():
            value = own[column].iloc[0] if column in own.columns else None
            row[key] = "" if value is None or pd.isna(value) else str(value)
        row["start"] = _as_stamp(segments.start[mine].min(), times)
        row["end"] = _as_stamp(segments.end[mine].max(), times)
        row["channels"] = (
            ";".join(sorted(own["Channel"].dropna().astype(str).unique()))
            if "Channel" in own
            else ""
        )
        row["caught"] = int(bool(hits))
        row["alarms"] = ";".join(str(first_alarm + k) for k in sorted(hits))
        rows.append(row)
    out = pd.DataFrame(rows, columns=EVENT_COLUMNS)
    return out.sort_values(["start", "id"], kind="stable").reset_index(drop=True)


def _as_stamp(value: object, times: np.ndarray) -> object:
    """A time of ``prepare``'s numeric axis in the grid's own type (datetime or sample id)."""
    if np.issubdtype(times.dtype, np.datetime64):
        return pd.Timestamp(int(value))
    return value


def caught_by_class(outcomes: pd.DataFrame) -> pd.DataFrame:
    """Per (category, class): how many events, and how many of them caught."""
    if len(outcomes) == 0:
        return pd.DataFrame(columns=["category", "class", "events", "caught"])
    grouped = outcomes.groupby(["category", "class"], sort=True)["caught"]
    return grouped.agg(events="size", caught="sum").reset_index()


def outcomes_in_turn(
    pieces: Iterable[tuple[str, pd.DataFrame, np.ndarray, np.ndarray, int]],
) -> pd.DataFrame:
    """``event_outcomes`` of scored grids one after another, each piece (series name, label
    rows, timestamps, row alarm, how many alarms it has), alarms numbered on across them."""
    frames, first_alarm = [], 0
    for series, events, timestamps, alarm, n_alarms in pieces:
        frames.append(
            event_outcomes(events, timestamps, alarm, series=series, first_alarm=first_alarm)
        )
        first_alarm += n_alarms
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=EVENT_COLUMNS)


def grids_outcomes(grids: Sequence[ScoredGrid]) -> pd.DataFrame:
    """``event_outcomes`` of every scored grid, numbered as their alarms follow one another in
    ``intervals.csv``."""
    return outcomes_in_turn(  # named as intervals.csv names their alarms' series
        (g.series, g.part.events, g.timestamps, g.scores.alarm, len(g.intervals)) for g in grids
    )
