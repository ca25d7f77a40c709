"""Vectorised interval arithmetic on sorted arrays: the common ground of every event metric.

Conventions
-----------
- Times are numbers: datetimes become int64 nanoseconds (timezone-aware ones in UTC), integers
  stay int64, floats stay float64. Every metric is a ratio of durations, so the unit cancels.
- An interval is closed, ``[start, end]``, with ``start <= end``; a set of intervals is a pair of
  arrays ``(starts, ends)``. "Disjoint" sets are sorted and non-touching (the output of
  :func:`merge`), which lets one ``np.searchsorted`` answer overlap and coverage questions.
- Two closed intervals overlap when they share at least one point.

Predictions come in two forms (see :func:`prediction_intervals`):
- change points, the ESA-ADB reference input: rows ``(timestamp, 0/1)``, each saying "from this
  time on the prediction is 0/1". A run that becomes 1 at ``t_x`` and 0 at ``t_y`` covers
  ``[t_x, t_y)`` (stored closed as ``[t_x, t_y - 1 tick]``, a tick being 1 ns, 1 sample id or
  the next float); the last value holds until the end of the evaluated range, the first value
  is carried back to its start (as the reference does).
- samples: a tuple ``(timestamps, binary)`` of one decision per row. A run of 1s from row i to
  row j covers the closed interval ``[t_i, t_j]`` (for sample ids: samples i..j inclusive), so
  a detector alarming exactly the rows of a label ``[StartTime, EndTime]`` reproduces it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from esa_lightning.errors import ESAInputError


class Intervals(NamedTuple):
    """Closed intervals ``[start[i], end[i]]`` as two arrays of one numeric time dtype."""

    start: np.ndarray
    end: np.ndarray

    def __len__(self) -> int:  # noqa: D105 - the number of intervals, not of fields
        return len(self.start)

    @property
    def lengths(self) -> np.ndarray:
        return (self.end - self.start).astype(np.float64)


#: the longest ``timestamp`` or ``id`` cell read: ISO 8601 with nanoseconds and a zone offset
#: is 35 characters, an int64 id 20, a float written in full under 30; pandas' time parsing
#: slows down with the square of a cell's length (4.7 s for one 100 KB cell)
KEY_CELL_LIMIT = 256


def refuse_long_cells(cells: pd.Series, *, path: Any, column: str, row: str = "row {}",
                      first: int = 0) -> None:
    """Refuse the first text cell of ``cells`` (a ``timestamp`` or ``id`` column, before it is
    parsed) longer than ``KEY_CELL_LIMIT`` characters, naming ``path``, ``column``, its row
    (``row`` formatted with its position counted from ``first``) and its length, never its
    content; nothing for a column holding no text. evaluate.py's files and ``predict(df)``'s
    frames alike."""
    if not (cells.dtype == object or pd.api.types.is_string_dtype(cells.dtype)):
        return
    try:
        lengths = cells.str.len().to_numpy(dtype=np.float64, na_value=np.nan)
    except AttributeError:  # objects, none of them text (datetimes): nothing to measure
        return
    long = np.flatnonzero(lengths > KEY_CELL_LIMIT)  # NaN (no text) compares False
    if long.size:
        raise ESAInputError(
            f"{row.format(int(long[0]) + first)}: a cell of {int(lengths[long[0]])} characters "
            f"(at most {KEY_CELL_LIMIT}: no time or id is longer)", path=path, column=column)


def as_time(values: Any, *, what: str = "timestamps") -> np.ndarray:
    """Times as int64 nanoseconds (datetimes), int64 (integers) or float64 (other numbers)."""
    s = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values).ravel())
    if len(s) and (s.dtype == object or pd.api.types.is_string_dtype(s.dtype)):
        first = s.iloc[0]
        if isinstance(first, (pd.Timestamp, np.datetime64, str)) or hasattr(first, "year"):
            try:
                s = pd.to_datetime(s, utc=True)
            except (ValueError, TypeError) as exc:
                raise _not_datetimes(s, what, exc) from None
        else:
            s = pd.to_numeric(s, errors="coerce")
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        if s.isna().any():
            raise ESAInputError(f"{what} contain missing times (NaT)")
        return s.to_numpy().astype("datetime64[ns]").view(np.int64)
    if pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_integer_dtype(s.dtype):
        return s.to_numpy().astype(np.int64)
    if pd.api.types.is_numeric_dtype(s.dtype):
        arr = s.to_numpy(dtype=np.float64)
        if np.isnan(arr).any():
            raise ESAInputError(f"{what} contain missing or non-numeric values")
        return arr
    raise ESAInputError(f"cannot read {what} of dtype {s.dtype} as times")


def _not_datetimes(s: pd.Series, what: str, exc: Exception) -> ESAInputError:
    """One line naming the first value of ``s`` that is no time (pandas' own reason runs over
    several lines: only its first is kept when no single value is to blame)."""
    parsed = pd.to_datetime(s, utc=True, errors="coerce")
    bad = np.flatnonzero((parsed.isna() & s.notna()).to_numpy())
    if bad.size:
        value = s.iloc[bad[0]]
        return ESAInputError(f"cannot read {what} as datetimes: position {bad[0]} is no time",
                             value=value.item() if isinstance(value, np.generic) else value)
    first = (str(exc).splitlines() or [type(exc).__name__])[0]
    return ESAInputError(f"cannot read {what} as datetimes: {first}")


def common_dtype(*arrays: np.ndarray) -> np.dtype:
    """float64 as soon as one time array is float, int64 otherwise."""
    return np.result_type(*[a.dtype for a in arrays if a is not None])


def tick_before(t: np.ndarray) -> np.ndarray:
    """The last representable time before ``t``: turns an open end into a closed one."""
    if np.issubdtype(t.dtype, np.integer):
        return t - 1
    return np.nextafter(t, -np.inf)


def tick_after(t: np.ndarray) -> np.ndarray:
    if np.issubdtype(t.dtype, np.integer):
        return t + 1
    return np.nextafter(t, np.inf)


# --------------------------------------------------------------------------- construction
def runs(binary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(first, last)`` (inclusive) of every maximal run of non-zero values."""
    b = np.asarray(binary).ravel() != 0
    if b.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    edges = np.diff(b.view(np.int8), prepend=np.int8(0), append=np.int8(0))
    first = np.flatnonzero(edges == 1)
    last = np.flatnonzero(edges == -1) - 1
    return first, last


def samples_to_intervals(
    times: np.ndarray, binary: np.ndarray, *, assume_sorted: bool = False
) -> Intervals:
    """Runs of 1 in a per-row series: rows i..j become ``[t_i, t_j]`` (rows sorted by time)."""
    times = np.asarray(times)
    binary = np.asarray(binary).ravel()
    if times.shape[0] != binary.shape[0]:
        raise ESAInputError(
            f"prediction has {binary.shape[0]} values for {times.shape[0]} timestamps"
        )
    if not assume_sorted and times.size > 1 and np.any(times[1:] < times[:-1]):
        order = np.argsort(times, kind="stable")
        times, binary = times[order], binary[order]
    first, last = runs(binary)
    return Intervals(times[first], times[last])


def change_points_to_intervals(
    times: np.ndarray, values: np.ndarray, full_range: tuple[Any, Any]
) -> Intervals:
    """ESA-ADB reference reading of ``(timestamp, value)`` change points over ``full_range``."""
    order = np.argsort(times, kind="stable")
    times, values = np.asarray(times)[order], np.asarray(values).ravel()[order] != 0
    lo, hi = full_range
    if times.size == 0:
        return empty_intervals(np.result_type(times.dtype, np.asarray(lo).dtype))
    if times[0] > lo:
        times, values = np.r_[lo, times], np.r_[values[0], values]
    if times[-1] < hi:
        times, values = np.r_[times, hi], np.r_[values, values[-1]]
    first, last = runs(values)
    n = len(times)
    reaches_end = last == n - 1
    starts = times[first]
    ends = np.where(reaches_end, times[last], tick_before(times[np.minimum(last + 1, n - 1)]))
    keep = ends >= starts  # duplicated timestamps can make a zero-width run
    return Intervals(starts[keep], ends[keep])


def empty_intervals(dtype: Any = np.int64) -> Intervals:
    return Intervals(np.zeros(0, dtype=dtype), np.zeros(0, dtype=dtype))


def prediction_intervals(
    y_pred: Any, full_range: tuple[Any, Any] | None = None
) -> tuple[Intervals, tuple[Any, Any]]:
    """Read ``y_pred`` in either accepted form; return its intervals and the range it spans.

    A tuple ``(timestamps, binary)`` is the samples form; an ``(n, 2)`` array or a list of
    pairs is the change-point form (see the module docstring).
    """
    if isinstance(y_pred, Intervals):
        if len(y_pred) == 0:
            return y_pred, (None, None)
        return y_pred, (y_pred.start.min(), y_pred.end.max())
    if isinstance(y_pred, tuple) and len(y_pred) == 2:
        times = as_time(y_pred[0], what="prediction timestamps")
        binary = np.asarray(y_pred[1])
        iv = samples_to_intervals(times, binary)
        span = (times.min(), times.max()) if times.size else (None, None)
        return iv, span
    arr = np.asarray(y_pred, dtype=object)
    if arr.size == 0:
        return empty_intervals(), (None, None)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ESAInputError(
            "y_pred must be (timestamp, 0/1) change points of shape (n, 2) or a tuple"
            f" (timestamps, binary); got an array of shape {arr.shape}"
        )
    times = as_time(arr[:, 0], what="prediction timestamps")
    values = pd.to_numeric(pd.Series(arr[:, 1]), errors="coerce").to_numpy(np.float64)
    if np.isnan(values).any():
        raise ESAInputError("y_pred values must be 0/1 numbers")
    span = (times.min(), times.max())
    rng = span if full_range is None else full_range
    return change_points_to_intervals(times, values, rng), span


# --------------------------------------------------------------------------- set operations
def merge(start: np.ndarray, end: np.ndarray) -> Intervals:
    """Union of closed intervals as a disjoint sorted set (touching intervals are joined)."""
    start, end = np.asarray(start), np.asarray(end)
    if start.size == 0:
        return Intervals(start.copy(), end.copy())
    order = np.argsort(start, kind="stable")
    s, e = start[order], end[order]
    reach = np.maximum.accumulate(e)
    new_block = np.ones(len(s), dtype=bool)
    new_block[1:] = s[1:] > reach[:-1]
    block_start = np.flatnonzero(new_block)
    block_last = np.r_[block_start[1:] - 1, len(s) - 1]
    return Intervals(s[block_start], reach[block_last])


def merge_grouped(group: np.ndarray, start: np.ndarray, end: np.ndarray):
    """Union of closed intervals within each group; returns ``(group, Intervals)`` sorted."""
    if start.size == 0:
        return np.asarray(group)[:0], Intervals(start[:0], end[:0])
    order = np.lexsort((start, group))
    g, s, e = np.asarray(group)[order], start[order], end[order]
    group_first = np.ones(len(g), dtype=bool)
    group_first[1:] = g[1:] != g[:-1]
    # running max of the end within each group (pandas' grouped cummax runs in C)
    reach = pd.Series(e).groupby(np.cumsum(group_first)).cummax().to_numpy()
    new_block = group_first.copy()
    new_block[1:] |= s[1:] > reach[:-1]
    block_start = np.flatnonzero(new_block)
    block_last = np.r_[block_start[1:] - 1, len(s) - 1]
    return g[block_start], Intervals(s[block_start], reach[block_last])


def overlap_counts(query: Intervals, other: Intervals) -> np.ndarray:
    """For each query interval, how many intervals of ``other`` share a point with it.

    ``other`` may be any set (not necessarily disjoint): #(start <= q_end) - #(end < q_start).
    """
    s = np.sort(other.start)
    e = np.sort(other.end)
    return np.searchsorted(s, query.end, side="right") - np.searchsorted(e, query.start, "left")


def coverage(query_start: np.ndarray, query_end: np.ndarray, disjoint: Intervals) -> np.ndarray:
    """Length of ``disjoint`` (a merged set) inside each ``[query_start, query_end]``."""
    if len(disjoint) == 0:
        return np.zeros(np.shape(query_start), dtype=np.float64)
    lengths = disjoint.lengths
    cum = np.r_[0.0, np.cumsum(lengths)]

    def covered_up_to(t: np.ndarray) -> np.ndarray:
        k = np.searchsorted(disjoint.start, t, side="right") - 1
        kk = np.maximum(k, 0)
        inside = np.clip((t - disjoint.start[kk]).astype(np.float64), 0.0, lengths[kk])
        return np.where(k >= 0, cum[kk] + inside, 0.0)

    return covered_up_to(np.asarray(query_end)) - covered_up_to(np.asarray(query_start))


def clip(iv: Intervals, lo: Any, hi: Any) -> tuple[Intervals, np.ndarray]:
    """Intersect every interval with ``[lo, hi]``; return the kept ones and their positions."""
    keep = (iv.end >= lo) & (iv.start <= hi)
    idx = np.flatnonzero(keep)
    return Intervals(np.maximum(iv.start[idx], lo), np.minimum(iv.end[idx], hi)), idx


def f_beta(precision: float, recall: float, beta: float) -> float:
    den = beta**2 * precision + recall
    return 0.0 if den <= 0 else float((1 + beta**2) * precision * recall / den)


def beta_list(betas: float | Sequence[float]) -> list[float]:
    return [float(b) for b in np.atleast_1d(betas)]
