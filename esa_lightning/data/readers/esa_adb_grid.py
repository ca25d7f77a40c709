"""ESA-ADB raw series onto the fixed time grid: parsing one channel file, zero-order hold,
counters, telecommand pulses and label masks (the preprocessing ``esa_adb`` describes)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from esa_lightning.data.readers.common import ns_times, refuse_complex
from esa_lightning.data.readers.grid_marks import (
    label_mask,
    sample_cells,
    sent_bits,
    sent_mask,
    telecommand_pulses,
)
from esa_lightning.data.readers.nonfinite import forward_fill
from esa_lightning.data.readers.threads import in_order
from esa_lightning.data.safe_pickle import read_pickled_frame
from esa_lightning.data.selection import NS_RANGE
from esa_lightning.errors import ESAInputError, user_stacklevel
from esa_lightning.progress import progress

_BLOCK = 4096  # output rows written at once per channel group (stays in cache)
_GROUP = 16  # channels resampled before they are written into the output together
# the most grid rows a read may span (about 47 years at 30 s): beyond it, a corrupt timestamp
MAX_GRID_ROWS = 50_000_000


# --------------------------------------------------------------------------- raw series
@dataclass(frozen=True)
class SeriesInMemory:
    """One channel's or telecommand's raw samples already in memory, where ``build_arrays``
    otherwise takes a file: the Python API resamples a DataFrame's columns through the same
    grid code as the reader. ``source`` is what error messages name."""

    timestamps: np.ndarray  # int64 ns UTC, strictly increasing
    values: np.ndarray  # float64
    source: str

    def __str__(self) -> str:
        return self.source


def _raw_samples(
    source: Path | SeriesInMemory, name: str | None, kind: str = "channel"
) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(source, SeriesInMemory):
        return source.timestamps, source.values
    return read_raw_series(source, name, kind)


def to_ns(value: str | pd.Timestamp, column: str) -> int:
    """A date/time as int64 ns UTC; anything else, or a date outside the nanosecond range
    (``NS_RANGE``), is an ESAInputError naming ``column``."""
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ESAInputError("not a date/time", column=column, value=value) from None
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    try:
        return int(ts.as_unit("ns").value)
    except (ValueError, OverflowError):  # OutOfBoundsDatetime
        raise ESAInputError(NS_RANGE, column=column, value=value) from None


def read_raw_series(
    path: str | os.PathLike, name: str | None = None, kind: str = "channel"
) -> tuple[np.ndarray, np.ndarray]:
    """(timestamps int64 ns UTC, values float64) of one channel/telecommand file, validated.

    Raises ``ESAInputError`` for an empty series, a non-datetime index, unsorted or duplicate
    timestamps, or non-numeric values; with a ``name``, also for a single value column named
    otherwise (ESA-ADB names it after the channel or telecommand, ``kind`` in the message).
    NaN/inf values are returned as they are.
    """
    path = Path(path)
    frame = read_pickled_frame(path)
    if frame.shape[1] == 0 or len(frame) == 0:
        raise ESAInputError("empty series", path=path)
    if frame.shape[1] > 1:
        if name is None or name not in frame.columns:
            raise ESAInputError(
                f"expected one value column, found {list(frame.columns)}", path=path
            )
        frame = frame[[name]]
    elif name is not None and not (isinstance(frame.columns[0], str) and frame.columns[0] == name):
        # ESA-ADB names it after the channel (telecommand), and its reference preprocessing
        # reads it by that name: another name is another's file, or not written as ESA-ADB's are
        found = frame.columns[0]
        raise ESAInputError(
            f"the value column must be named after the {kind}, {name!r}, as ESA-ADB's files "
            f"name it: rename it (frame.rename(columns={{{found!r}: {name!r}}})) or check that "
            f"the file is that {kind}'s",
            path=path,
            column=str(found),
        )
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex):
        raise ESAInputError(f"index must be a DatetimeIndex, got {type(index).__name__}", path=path)
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    if index.hasnans:
        raise ESAInputError("missing timestamp (NaT) in the index", path=path)
    index = ns_times(index, path)  # pandas holds times in s / us too: 3000-01-01 is valid
    ts = np.asarray(index.asi8, dtype=np.int64)
    step = np.diff(ts)
    if (step <= 0).any():
        i = int(np.flatnonzero(step <= 0)[0])
        what = "duplicate" if step[i] == 0 else "unsorted"
        raise ESAInputError(
            f"{what} timestamps (sort the series, drop duplicates)",
            path=path,
            value=str(index[i + 1]),
        )
    column = frame.iloc[:, 0]
    numeric = (column if pd.api.types.is_numeric_dtype(column.dtype)  # bool, nullable too
               else pd.to_numeric(column, errors="coerce"))
    bad = numeric.isna() & column.notna()
    if bad.any():
        raise ESAInputError(
            "non-numeric value",
            path=path,
            column=str(frame.columns[0]),
            value=column[bad].iloc[0],
        )
    refuse_complex(numeric, path, str(frame.columns[0]))
    return ts, numeric.to_numpy(dtype=np.float64, na_value=np.nan)  # <NA> as NaN


FLOAT32_MAX = float(np.finfo(np.float32).max)


def repair_samples(values: np.ndarray, path: Path) -> tuple[np.ndarray, int, np.ndarray]:
    """Forward-fill NaN/inf and values beyond float32's range (they would become inf in the
    float32 output); back-fill at the start. Return (values, how many were repaired, bool mask
    of the samples float32 cannot represent: inf or beyond its range, NaN excluded)."""
    with np.errstate(invalid="ignore"):
        unrepresentable = np.abs(values) > FLOAT32_MAX  # inf included, NaN not
        bad = np.isnan(values) | unrepresentable
    n_bad = int(bad.sum())
    if not n_bad:
        return values, 0, unrepresentable
    if n_bad == len(values):
        raise ESAInputError("no finite value in the series", path=path)
    return forward_fill(values, bad), n_bad, unrepresentable


# --------------------------------------------------------------------------- grid output
class _GridBuffer:
    """float32 [rows, C] on lattice indices [k_lo, k_hi], grown (rarely) when a channel extends it.

    Spare rows on both sides are allocated but never touched, so they cost no resident memory.
    """

    def __init__(self, n_cols: int, k_lo: int | None, k_hi: int | None) -> None:
        self.n_cols = n_cols
        self.fixed = k_lo is not None and k_hi is not None
        self.k_lo, self.k_hi = k_lo, k_hi
        self.buf: np.ndarray | None = None
        self.base = 0  # lattice index of buf row 0
        if self.fixed:
            self._allocate(k_lo, k_hi, spare=0)

    def _allocate(self, lo: int, hi: int, spare: int) -> None:
        new = np.empty((hi - lo + 1 + 2 * spare, self.n_cols), dtype=np.float32)
        if self.buf is not None:
            a, b = self.rows(self.k_lo, self.k_hi)
            off = self.k_lo - (lo - spare)
            new[off : off + (b - a)] = self.buf[a:b]
        self.buf, self.base = new, lo - spare

    def cover(self, lo: int, hi: int) -> None:
        """Make lattice [lo, hi] addressable (for a range not fixed by start/end)."""
        if self.fixed:
            return
        if self.buf is None:
            self._allocate(lo, hi, spare=max(1024, (hi - lo) // 50))
            self.k_lo, self.k_hi = lo, hi
            return
        new_lo, new_hi = min(lo, self.k_lo), max(hi, self.k_hi)
        if new_lo < self.base or new_hi >= self.base + len(self.buf):
            self._allocate(new_lo, new_hi, spare=max(1024, (new_hi - new_lo) // 50))
        self.k_lo, self.k_hi = new_lo, new_hi

    def rows(self, lo: int, hi: int) -> tuple[int, int]:
        return lo - self.base, hi - self.base + 1

    def view(self) -> np.ndarray:
        a, b = self.rows(self.k_lo, self.k_hi)
        return self.buf[a:b]

    def write_columns(self, col0: int, columns: list[_Column]) -> None:
        """Copy the columns of channels ``col0, col0 + 1, ...`` into their lattice rows.

        Row block by row block, so each block of the [T, C] output stays in cache while every
        column of the group is written into it: writing one whole column at a time would stride
        through the full output once per channel (the cost that dominated the old reader).
        """
        lo = min(c.lo for c in columns)
        hi = max(c.hi for c in columns)
        for a in range(lo, hi + 1, _BLOCK):
            b = min(a + _BLOCK, hi + 1)
            for j, c in enumerate(columns):
                s, e = max(a, c.lo), min(b, c.hi + 1)
                if s < e:
                    r = s - self.base
                    self.buf[r : r + (e - s), col0 + j] = c.values[s - c.lo : e - c.lo]


@dataclass
class _Column:
    """One channel held on its own lattice range [lo, hi] (float32, hi - lo + 1 rows)."""

    lo: int
    hi: int
    values: np.ndarray
    n_bad: int  # non-finite raw values repaired
    first_floor: int  # lattice index of the floor of the first raw timestamp
    last_floor: int  # lattice index of the floor of the last raw timestamp
    unrepresentable: np.ndarray  # int64 lattice rows where a sample beyond float32 lands
    inside: bool  # a raw sample lies on or between the requested range's grid points
    sent: np.ndarray  # packed bits over [lo, hi]: the rows a raw reading's hold starts on


def _hold(
    landing: np.ndarray, values: np.ndarray, k_lo: int, n: int, counter: bool
) -> np.ndarray:
    """Zero-order hold of ``values`` onto lattice rows k_lo .. k_lo + n - 1, as float32;
    ``landing``: each sample's lattice row, the first grid row at or after it (sorted).

    Sample i holds from its first grid row at or after it (ceil) up to the next sample's; the
    first sample also fills the rows before it. So the column is ``np.repeat`` of the values by
    those run lengths: one pass over the output, with only raw-sized temporaries.
    Counters are differenced in float64 on the raw values that survive (the held column only
    changes where a new sample's run starts), then cast, exactly like differencing the column.
    """
    starts = np.clip(landing - k_lo, 0, n)
    starts[0] = 0
    lengths = np.diff(starts, append=n)
    if not counter:
        return np.repeat(values.astype(np.float32), lengths)
    kept = np.flatnonzero(lengths)
    held = values[kept]
    out = np.zeros(n, dtype=np.float32)
    out[starts[kept[1:]]] = np.diff(held)
    return out


def _channel_column(
    name: str,
    path: Path | SeriesInMemory,
    p_ns: int,
    counter: bool,
    k_lo: int | None,
    k_hi: int | None,
    max_rows: int = MAX_GRID_ROWS,
) -> _Column:
    """Read, validate, repair and resample one channel (runs in a worker thread)."""
    ts, values = _raw_samples(path, name)
    lo_ts = int(ts[0]) if k_lo is None else max(int(ts[0]), k_lo * p_ns)
    hi_ts = int(ts[-1]) if k_hi is None else min(int(ts[-1]), k_hi * p_ns)
    if (hi_ts - lo_ts) // p_ns + 1 > max_rows:
        span = f"{np.datetime64(int(ts[0]), 'ns')} .. {np.datetime64(int(ts[-1]), 'ns')}"
        raise ESAInputError(
            f"channel spans {span}: more than max_rows={max_rows} grid rows (a corrupt "
            "timestamp?); select a time range with data.start / data.end",
            path=path,
            column=name,
        )
    reading = ~np.isnan(values)  # a NaN sample is held over: no reading, as in a frame
    values, n_bad, beyond = repair_samples(values, path)
    first, last = int(ts[0]), int(ts[-1])
    if k_lo is not None and k_hi is not None:
        lo, hi = k_lo, k_hi
    else:
        # own range: up to the first grid point at or after the last sample, so that every
        # grid point after it holds the last raw value (trimmed to the real end later)
        lo = _floor_div(first, p_ns) if k_lo is None else k_lo
        hi = -(-last // p_ns) if k_hi is None else min(k_hi, -(-last // p_ns))
        if hi < lo:  # the channel lies entirely outside a half-open requested range
            lo = hi = k_lo if k_lo is not None else k_hi
    landing = -(-ts // p_ns)  # the lattice row each sample's hold starts on
    column = _hold(landing, values, lo, hi - lo + 1, counter)
    marked = landing[beyond]
    inside = bool(np.any((ts >= (first if k_lo is None else k_lo * p_ns))
                         & (ts < (last + 1 if k_hi is None else (k_hi + 1) * p_ns))))
    sent = sent_bits(landing[reading] - lo, hi - lo + 1)
    floors = _floor_div(first, p_ns), _floor_div(last, p_ns)
    return _Column(lo, hi, column, n_bad, *floors, marked, inside, sent)


def build_arrays(
    names: list[str],
    files: list[Path | SeriesInMemory],
    tc_files: list[Path | SeriesInMemory],
    events: pd.DataFrame,
    p_ns: int,
    counters: set[str],
    start: Any,
    end: Any,
    n_jobs: int = 1,
    max_rows: int = MAX_GRID_ROWS,
    warn: bool = True,
    tc_names: list[str] | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """(values, labels, telecommands and ``sent`` (``Mission.sent``) arrays on the grid;
    {k_lo, n_rows, and data_k_lo .. data_k_hi: the lattice range the channels' own samples
    span, the grid without start/end}) of the chosen files;
    ``warn``: a warning counting each channel file's repaired non-finite values and one naming
    the channel files with readings beyond float32's range (an in-memory series: by its name;
    False: the caller reports them its own way); ``tc_names``: the telecommand of each of
    ``tc_files``, whose files' value column must be named after it (as a channel file's is)."""
    k_lo = None if start is None else _floor_div(to_ns(start, "start"), p_ns)
    k_hi = None if end is None else _floor_div(to_ns(end, "end"), p_ns)
    if k_lo is not None and k_hi is not None and k_hi < k_lo:
        raise ESAInputError("end lies before start (no grid point)", column="end", value=end)
    if k_lo is not None and k_hi is not None and k_hi - k_lo + 1 > max_rows:
        raise ESAInputError(  # the grid is allocated from them before any channel is read
            f"start={start} .. end={end} spans {k_hi - k_lo + 1} grid rows: more than "
            f"max_rows={max_rows}; select a shorter time range with data.start / data.end"
        )
    grid = _GridBuffer(len(names), k_lo, k_hi)
    own: list[tuple[int, int, float, float]] = []  # per channel: its lattice range and end values
    first_floor, last_floor = 2**62, -(2**62)
    repaired: dict[str, int] = {}
    marked: list[np.ndarray] = []  # lattice rows of samples beyond float32
    sent: list[tuple[int, np.ndarray]] = []  # per channel: (lattice start, packed sample rows)
    group = _group_size(len(names))
    tasks: list[Callable[[], Any]] = [
        partial(_channel_column, name, path, p_ns, name in counters, k_lo, k_hi, max_rows)
        for name, path in zip(names, files, strict=True)
    ]
    # telecommand files are read by the same threads, right after the channels
    tc_named = [None] * len(tc_files) if tc_names is None else tc_names
    tasks += [partial(_execution_times, path, name)
              for path, name in zip(tc_files, tc_named, strict=True)]
    results = in_order(tasks, n_jobs, ahead=2 * n_jobs)
    try:
        pending: list[_Column] = []
        any_inside = False
        for col in progress(range(len(names)), "reading channels"):
            column = next(results)
            any_inside |= column.inside
            if column.n_bad:
                repaired[_named(files[col], names[col])] = column.n_bad
            marked.append(column.unrepresentable)
            sent.append((column.lo, column.sent))
            _check_span(grid, column, max_rows, p_ns, files[col], names[col])
            grid.cover(column.lo, column.hi)
            first_floor = min(first_floor, column.first_floor)
            last_floor = max(last_floor, column.last_floor)
            own.append((column.lo, column.hi, float(column.values[0]), float(column.values[-1])))
            pending.append(column)
            if len(pending) == group or col == len(names) - 1:
                grid.write_columns(col + 1 - len(pending), pending)
                pending = []
            del column
        tc_times = list(results)
    finally:
        results.close()  # on an error: stop the threads before raising
    per = "channel file" if any(isinstance(f, Path) for f in files) else "channel"
    if repaired and warn:
        warnings.warn(
            f"repaired non-finite values (forward fill) per {per}: {repaired}",
            stacklevel=user_stacklevel(),
        )
    if grid.buf is None:  # no channels
        raise ESAInputError("no channels selected")
    if not any_inside:  # every row would hold a value from outside the range
        asked = " and ".join(f"{k}={v}" for k, v in (("start", start), ("end", end)) if v)
        raise ESAInputError(
            f"no sample of any chosen channel lies in the time range {asked}: every row would "
            "hold a value from outside it; choose data.start / data.end inside the data"
        )
    # channels that start later / end earlier than the grid hold their first / last value
    values = grid.view()
    for col, (lo, hi, first, last) in enumerate(own):
        if names[col] in counters:
            first = last = 0.0  # a constant hold differences to zero
        values[: lo - grid.k_lo, col] = first
        values[hi - grid.k_lo + 1 :, col] = last
    if k_hi is None:  # the grid ends at the latest raw timestamp (floored)
        values = values[: max(last_floor, grid.k_lo) - grid.k_lo + 1]
    k_lo, n = grid.k_lo, len(values)
    arrays = {
        "unrepresentable_cells": sample_cells(marked, k_lo, n),
        "values": values,
        "labels": label_mask(events, names, k_lo, n, p_ns),
        "telecommands": telecommand_pulses(tc_times, k_lo, n, p_ns),
        "sent": sent_mask(sent, k_lo, n),
    }
    cells = arrays["unrepresentable_cells"]
    if len(cells) and warn:  # as repair_values words it for the other readers
        where = [_named(files[c], names[c]) for c in np.unique(cells[:, 1])]
        warnings.warn(
            f"{len(np.unique(cells[:, 0]))} row(s) hold a reading beyond float32's range (inf "
            f"or |x| > {FLOAT32_MAX:.3g}) in {per}(s) {where}: they are replaced for the "
            "model and always alarm",
            stacklevel=user_stacklevel(),
        )
    span = {"data_k_lo": int(first_floor), "data_k_hi": int(last_floor)}
    return arrays, {"k_lo": int(k_lo), "n_rows": int(n), **span}


def _named(source: Path | SeriesInMemory, name: str) -> str:
    """A channel as the warnings name it: its file (an in-memory series: its name)."""
    return str(source) if isinstance(source, Path) else name


def _check_span(
    grid: _GridBuffer, column: _Column, max_rows: int, p_ns: int, source: object, name: str
) -> None:
    """Refuse a channel that would stretch the grid beyond ``max_rows`` rows: each channel's
    own span is bounded when it is read, but channels far apart in time (one with a corrupt
    timestamp) would still make the grid of all of them enormous."""
    if grid.fixed or grid.k_lo is None or grid.k_hi is None:
        return
    lo, hi = min(grid.k_lo, column.lo), max(grid.k_hi, column.hi)
    if hi - lo + 1 > max_rows:
        span = f"{np.datetime64(lo * p_ns, 'ns')} .. {np.datetime64(hi * p_ns, 'ns')}"
        raise ESAInputError(
            f"with this channel the grid spans {span}: more than max_rows={max_rows} grid rows "
            "(a channel far from the others in time, a corrupt timestamp?); select a time range "
            "with data.start / data.end",
            path=str(source),
            column=name,
        )


def _group_size(n_cols: int) -> int:
    """Channels resampled before they are written together: at most a quarter of the output."""
    return max(1, min(_GROUP, n_cols // 4))


def _floor_div(x: int, p: int) -> int:
    return x // p


def _execution_times(path: Path | SeriesInMemory, name: str | None = None) -> np.ndarray:
    """Execution times (int64 ns) of one telecommand file, its value column named ``name``
    (where given: the check ``read_raw_series`` makes of a channel file's)."""
    return _raw_samples(path, name, "telecommand")[0]
