"""Ground-truth segments read once into arrays: event codes, times, channel and selection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from esa_lightning.errors import ESAInputError
from esa_lightning.metrics.intervals import Intervals, as_time, merge, merge_grouped

REQUIRED = ("ID", "StartTime", "EndTime")


@dataclass
class Truth:
    """One row per labelled segment (labels.csv joined with anomaly_types.csv).

    ``event`` holds integer codes into ``event_names``; ``selected`` marks the rows chosen by
    ``select_labels`` (all rows when it is None). Unselected rows still count as ground truth
    for the false-positive rule and for nominal time.
    """

    event: np.ndarray
    event_names: np.ndarray
    start: np.ndarray
    end: np.ndarray
    selected: np.ndarray
    channel: np.ndarray | None

    @property
    def segments(self) -> Intervals:
        return Intervals(self.start, self.end)

    def union(self) -> Intervals:
        """All segments of every category merged: everything that is not nominal time."""
        return merge(self.start, self.end)

    def selected_events(self) -> tuple[np.ndarray, Intervals]:
        """Per selected event code, its own segments merged (over channels)."""
        m = self.selected
        return merge_grouped(self.event[m], self.start[m], self.end[m])

    @property
    def n_selected_events(self) -> int:
        return int(np.unique(self.event[self.selected]).size)

    def astype(self, dtype: Any) -> Truth:
        return Truth(
            self.event,
            self.event_names,
            self.start.astype(dtype),
            self.end.astype(dtype),
            self.selected,
            self.channel,
        )

    def restrict(self, lo: Any, hi: Any) -> Truth:
        """Keep segments touching ``[lo, hi]``, clipped to it."""
        keep = (self.end >= lo) & (self.start <= hi)
        return Truth(
            self.event[keep],
            self.event_names,
            np.maximum(self.start[keep], lo),
            np.minimum(self.end[keep], hi),
            self.selected[keep],
            None if self.channel is None else self.channel[keep],
        )


def read_truth(y_true: pd.DataFrame, select_labels: dict | None = None) -> Truth:
    """Validate the label table and turn it into arrays (rows in any order)."""
    if not isinstance(y_true, pd.DataFrame):
        raise ESAInputError(f"y_true must be a DataFrame of labels, got {type(y_true).__name__}")
    for col in REQUIRED:
        if col not in y_true.columns:
            raise ESAInputError("label table lacks a required column", column=col)
    start = as_time(y_true["StartTime"].reset_index(drop=True), what="StartTime")
    end = as_time(y_true["EndTime"].reset_index(drop=True), what="EndTime")
    if start.dtype != end.dtype:
        dtype = np.result_type(start.dtype, end.dtype)
        start, end = start.astype(dtype), end.astype(dtype)
    bad = np.flatnonzero(end < start)
    if bad.size:
        raise ESAInputError(
            "label ends before it starts", column="EndTime", value=str(y_true["ID"].iloc[bad[0]])
        )
    codes, names = pd.factorize(y_true["ID"].astype(str), sort=True)
    selected = np.ones(len(y_true), dtype=bool)
    for col, allowed in (select_labels or {}).items():
        if col not in y_true.columns:
            raise ESAInputError("select_labels names a column the labels lack", column=col)
        selected &= y_true[col].isin(list(np.atleast_1d(allowed))).to_numpy()
    channel = y_true["Channel"].astype(str).to_numpy() if "Channel" in y_true.columns else None
    return Truth(codes.astype(np.int64), np.asarray(names), start, end, selected, channel)
