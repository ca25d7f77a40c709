"""Read a raw ESA-ADB mission folder onto a fixed time grid, the way the benchmark preprocesses it.

Layout::

    channels/channel_N.zip          one pickled DataFrame per channel (irregular timestamps)
    telecommands/telecommand_N.zip  execution times of each telecommand (optional)
    channels.csv                    Channel, Subsystem, Physical Unit, Group, Target, Categorical
    telecommands.csv                Telecommand, Priority (optional)
    labels.csv                      ID, Channel, StartTime, EndTime (optional)
    anomaly_types.csv               ID, Category, Class, Subclass, ... (needed with labels.csv)

Preprocessing
-------------
- The grid is the epoch-aligned lattice of ``period``: its first point is ``start`` (default: the
  earliest channel timestamp) floored to the period, its last point the latest lattice point at or
  before ``end`` (default: the latest channel timestamp). Both ends are included.
- Zero-order hold: the value at grid point t is the last raw value at or before t; grid points
  before a channel's first sample take its first value. Output float32 [T, C].
- ``counters`` are differenced after resampling (in float64, first row 0).
- Telecommands with ``Priority >= telecommand_priority`` become 0/1 pulses at the first grid point
  at or after each execution; executions outside the grid are dropped.
- Label start times floor to the grid and end times ceil, so every label marks at least one grid
  point; where labels of one channel overlap the lower (more important) code wins.
- Timestamps that are unsorted or duplicated are an error (``ESAInputError``) rather than silently
  reordered: ESA-ADB's own files are strictly increasing, so anything else means a broken file.
  NaN/inf values are repaired by forward fill (back fill at the start) with one warning that
  counts the repaired values per channel.

Speed and memory: ``n_jobs`` threads read and resample channels (unzipping and numpy release the
GIL), each into its own float32 column; groups of up to 16 columns (at most a quarter of the
output) are then copied into the [T, C] output block by block, so the output is swept once per
group instead of once per channel. The float32 output is the only big allocation (it grows,
rarely, when a later channel extends the time range and ``start``/``end`` were not given).
Results are cached by ``readers.cache``, keyed by the source files' identity and every option.
"""

from __future__ import annotations

import os
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from esa_lightning import io
from esa_lightning.data.array_store import ArrayStore
from esa_lightning.data.mission import CATEGORY_TO_CODE, Mission
from esa_lightning.data.readers.cache import read_through_cache
from esa_lightning.data.readers.common import forward_fill
from esa_lightning.data.safe_pickle import read_pickled_frame
from esa_lightning.data.selection import ChannelSpec, select_channels, split_points_by_time
from esa_lightning.errors import ESAInputError
from esa_lightning.progress import progress

CACHE_VERSION = "esa_adb-2"  # 2: the readers' shared cache format
CHANNEL_COLUMNS = ["Channel", "Subsystem", "Group", "Target", "Categorical"]
TELECOMMAND_COLUMNS = ["Telecommand", "Priority"]
LABEL_COLUMNS = ["ID", "Channel", "StartTime", "EndTime"]
ANOMALY_TYPE_COLUMNS = ["ID", "Category"]
ANOMALY_TYPE_OPTIONAL = ["Class", "Subclass", "Dimensionality", "Locality", "Length"]
EVENT_TABLE_COLUMNS = ["ID", "Channel", "StartTime", "EndTime", "Category", *ANOMALY_TYPE_OPTIONAL]
_BLOCK = 4096  # output rows written at once per channel group (stays in cache)
_GROUP = 16  # channels resampled before they are written into the output together
_T = TypeVar("_T")


# --------------------------------------------------------------------------- public entry point
def read_esa_mission(
    root: str | os.PathLike,
    *,
    channels: ChannelSpec = "all",
    period: str | pd.Timedelta = "30s",
    counters: Sequence[str] = (),
    telecommand_priority: int = 3,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    split_date: str | pd.Timestamp | None = None,
    val_days: float | None = None,
    lightweight: Sequence[str] = (),
    cache_dir: str | os.PathLike | None = "datasets/cache",
    use_cache: bool = True,
    n_jobs: int | None = None,
    max_rows: int = 50_000_000,
) -> Mission:
    """Read the ESA-ADB mission folder ``root`` into a ``Mission`` on a ``period`` grid.

    ``n_jobs`` threads read and resample channels (``None`` or -1: every usable core); the
    result does not depend on it. A channel whose time span needs more than ``max_rows`` grid
    rows (about 47 years at 30 s by default: a corrupt far-future or far-past timestamp) is
    refused with an error naming it, instead of allocating an enormous grid.
    """
    root = Path(root)
    jobs = _resolve_jobs(n_jobs)
    if not root.is_dir():
        raise ESAInputError("mission folder not found", path=root)
    p_ns = _period_ns(period)
    table = _read_channel_table(root / "channels.csv")
    chosen = select_channels(
        table, channels, lightweight=list(lightweight), source=str(root / "channels.csv")
    )
    names = list(chosen["Channel"])
    counters = [str(c) for c in counters]
    unknown = [c for c in counters if c not in set(table["Channel"])]
    if unknown:
        raise ESAInputError(f"unknown counter channel(s) {unknown}", path=root, column="counters")
    channel_files = [_member_file(root, "channels", n) for n in names]
    tc_names, tc_files, all_tc = _read_telecommand_table(root, telecommand_priority)
    events = _read_events(root, set(table["Channel"]) | set(all_tc))
    events = events[events["Channel"].isin(set(names))].reset_index(drop=True)

    sources = [root / "channels.csv", *channel_files, *tc_files]
    sources += [p for p in (root / "telecommands.csv", root / "labels.csv") if p.is_file()]
    sources += [p for p in (root / "anomaly_types.csv",) if p.is_file()]
    options = {
        "channels": names,
        "period_ns": p_ns,
        "counters": sorted(set(counters) & set(names)),
        "telecommands": tc_names,
        "start": None if start is None else str(_to_ns(start, "start")),
        "end": None if end is None else str(_to_ns(end, "end")),
    }
    key = io.cache_key(CACHE_VERSION, io.source_identity(sources), options)

    def build(store: ArrayStore) -> tuple[dict[str, np.ndarray], dict[str, int]]:
        # the grid is built in RAM (it grows while channels are read); the store saves it
        return _build_arrays(
            names,
            channel_files,
            tc_files,
            events,
            p_ns,
            set(options["counters"]),
            start,
            end,
            n_jobs=jobs,
            max_rows=int(max_rows),
        )

    folder = None if cache_dir is None else Path(cache_dir) / key
    arrays, info = read_through_cache(folder, use_cache, build)
    k_lo, n = int(info["k_lo"]), int(info["n_rows"])
    timestamps = ((np.arange(n, dtype=np.int64) + k_lo) * p_ns).view("datetime64[ns]")
    if n:
        lo, hi = timestamps[0], timestamps[-1]
        keep = (events["EndTime"].to_numpy() >= lo) & (events["StartTime"].to_numpy() <= hi)
        events = events.loc[keep].reset_index(drop=True)
    val_start, test_start = split_points_by_time(timestamps, split_date, val_days)
    return Mission(
        name=root.name,
        values=arrays["values"],
        timestamps=timestamps,
        channels=chosen,
        labels=arrays["labels"],
        events=events,
        telecommands=arrays["telecommands"],
        telecommand_names=tc_names,
        period=pd.Timedelta(p_ns, unit="ns"),
        test_start=test_start,
        val_start=val_start,
        meta={
            "source": "esa",
            "root": str(root),
            "cache_key": key,
            "counters": options["counters"],
            "lightweight": list(lightweight),
        },
    )


# --------------------------------------------------------------------------- tables
def _read_csv(path: Path, required: Sequence[str]) -> pd.DataFrame:
    if not path.is_file():
        raise ESAInputError("file not found", path=path)
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ESAInputError(f"cannot parse CSV: {exc}", path=path) from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ESAInputError(
            f"missing column(s) {missing}; found {list(df.columns)}", path=path, column=missing[0]
        )
    return df


def _yes_no(df: pd.DataFrame, column: str, path: Path) -> pd.Series:
    raw = df[column]
    if raw.dtype == bool:
        return raw
    text = raw.astype(str).str.strip().str.upper()
    mapping = {"YES": True, "NO": False, "TRUE": True, "FALSE": False, "1": True, "0": False}
    bad = ~text.isin(mapping)
    if bad.any():
        raise ESAInputError("expected YES or NO", path=path, column=column, value=raw[bad].iloc[0])
    return text.map(mapping).astype(bool)


def _read_channel_table(path: Path) -> pd.DataFrame:
    df = _read_csv(path, CHANNEL_COLUMNS)
    df["Channel"] = df["Channel"].astype(str).str.strip()
    dup = df["Channel"][df["Channel"].duplicated()]
    if len(dup):
        raise ESAInputError("duplicate channel", path=path, column="Channel", value=dup.iloc[0])
    for col in ("Target", "Categorical"):
        df[col] = _yes_no(df, col, path)
    return df.reset_index(drop=True)


def _member_file(root: Path, folder: str, name: str) -> Path:
    base = root / folder
    if not base.is_dir():
        raise ESAInputError(f"folder {folder}/ not found", path=base)
    for candidate in (base / f"{name}.zip", base / f"{name}.pkl", base / name):
        if candidate.is_file():
            return candidate
    raise ESAInputError(f"no file for {name!r}", path=base / f"{name}.zip")


def _read_telecommand_table(root: Path, priority: int) -> tuple[list[str], list[Path], list[str]]:
    """(selected names, their files, all names); no telecommands.csv means no telecommands."""
    path = root / "telecommands.csv"
    if not path.is_file():
        return [], [], []
    df = _read_csv(path, TELECOMMAND_COLUMNS)
    df["Telecommand"] = df["Telecommand"].astype(str).str.strip()
    prio = pd.to_numeric(df["Priority"], errors="coerce")
    if prio.isna().any():
        bad = df["Priority"][prio.isna()].iloc[0]
        raise ESAInputError("priority must be a number", path=path, column="Priority", value=bad)
    names = list(df.loc[prio >= priority, "Telecommand"])
    return names, [_member_file(root, "telecommands", n) for n in names], list(df["Telecommand"])


def _parse_times(values: pd.Series, path: Path, column: str) -> np.ndarray:
    """Times as naive UTC datetime64[ns]; strings with a timezone are converted to UTC."""
    try:
        parsed = pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError):
        try:
            parsed = pd.to_datetime(values, utc=True, format="mixed")
        except (ValueError, TypeError) as exc:
            raise ESAInputError(f"not a date/time: {exc}", path=path, column=column) from None
    if parsed.isna().any():
        bad = values[parsed.isna()].iloc[0]
        raise ESAInputError("missing or invalid time", path=path, column=column, value=bad)
    return parsed.dt.tz_localize(None).to_numpy().astype("datetime64[ns]")


def _read_events(root: Path, known: set[str]) -> pd.DataFrame:
    """labels.csv joined with anomaly_types.csv: one row per (ID, Channel, segment)."""
    labels_path, types_path = root / "labels.csv", root / "anomaly_types.csv"
    if not labels_path.is_file():
        return _empty_event_table()
    labels = _read_csv(labels_path, LABEL_COLUMNS)
    types = _read_csv(types_path, ANOMALY_TYPE_COLUMNS)
    labels["ID"] = labels["ID"].astype(str).str.strip()
    labels["Channel"] = labels["Channel"].astype(str).str.strip()
    types["ID"] = types["ID"].astype(str).str.strip()
    unknown = labels.loc[~labels["Channel"].isin(known), "Channel"]
    if len(unknown):
        raise ESAInputError(
            "label names an unknown channel",
            path=labels_path,
            column="Channel",
            value=unknown.iloc[0],
        )
    starts = _parse_times(labels["StartTime"], labels_path, "StartTime")
    ends = _parse_times(labels["EndTime"], labels_path, "EndTime")
    backwards = np.flatnonzero(ends < starts)
    if len(backwards):
        i = backwards[0]
        raise ESAInputError(
            f"label ends ({ends[i]}) before it starts ({starts[i]})",
            path=labels_path,
            column="EndTime",
            value=labels["ID"].iloc[i],
        )
    types["Category"] = types["Category"].astype(str).str.strip()
    bad = types.loc[~types["Category"].isin(CATEGORY_TO_CODE), "Category"]
    if len(bad):
        raise ESAInputError(
            f"unknown category; expected one of {sorted(CATEGORY_TO_CODE)}",
            path=types_path,
            column="Category",
            value=bad.iloc[0],
        )
    if types["ID"].duplicated().any():
        dup = types.loc[types["ID"].duplicated(), "ID"].iloc[0]
        raise ESAInputError("duplicate event ID", path=types_path, column="ID", value=dup)
    missing = sorted(set(labels["ID"]) - set(types["ID"]))
    if missing:
        raise ESAInputError(
            "event ID has no row in anomaly_types.csv",
            path=types_path,
            column="ID",
            value=missing[0],
        )
    for col in ANOMALY_TYPE_OPTIONAL:
        if col not in types.columns:
            types[col] = None
    events = pd.DataFrame(
        {"ID": labels["ID"], "Channel": labels["Channel"], "StartTime": starts, "EndTime": ends}
    )
    events = events.merge(types[["ID", "Category", *ANOMALY_TYPE_OPTIONAL]], on="ID", how="left")
    return events[EVENT_TABLE_COLUMNS].reset_index(drop=True)


def _empty_event_table() -> pd.DataFrame:
    cols: dict[str, Any] = {c: pd.Series([], dtype=object) for c in EVENT_TABLE_COLUMNS}
    cols["StartTime"] = pd.Series([], dtype="datetime64[ns]")
    cols["EndTime"] = pd.Series([], dtype="datetime64[ns]")
    return pd.DataFrame(cols)


# --------------------------------------------------------------------------- raw series
def _period_ns(period: str | pd.Timedelta) -> int:
    try:
        p = pd.Timedelta(period)
    except (ValueError, TypeError):
        raise ESAInputError("not a time period (e.g. 30s)", column="period", value=period) from None
    if p <= pd.Timedelta(0):
        raise ESAInputError("period must be positive", column="period", value=period)
    return int(p.value)


def _to_ns(value: str | pd.Timestamp, column: str) -> int:
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ESAInputError("not a date/time", column=column, value=value) from None
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return int(ts.as_unit("ns").value)


def read_raw_series(
    path: str | os.PathLike, name: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(timestamps int64 ns UTC, values float64) of one channel/telecommand file, validated.

    Raises ``ESAInputError`` for an empty series, a non-datetime index, unsorted or duplicate
    timestamps, or non-numeric values. NaN/inf values are returned as they are.
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
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex):
        raise ESAInputError(f"index must be a DatetimeIndex, got {type(index).__name__}", path=path)
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    if index.hasnans:
        raise ESAInputError("missing timestamp (NaT) in the index", path=path)
    ts = np.asarray(index.as_unit("ns").asi8, dtype=np.int64)
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
    if column.dtype == bool or pd.api.types.is_bool_dtype(column.dtype):
        values = column.to_numpy(dtype=np.float64)
    elif pd.api.types.is_numeric_dtype(column.dtype):
        values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        numeric = pd.to_numeric(column, errors="coerce")
        bad = numeric.isna() & column.notna()
        if bad.any():
            raise ESAInputError(
                "non-numeric value",
                path=path,
                column=str(frame.columns[0]),
                value=column[bad].iloc[0],
            )
        values = numeric.to_numpy(dtype=np.float64, na_value=np.nan)
    return ts, values


FLOAT32_MAX = float(np.finfo(np.float32).max)


def _repair_nonfinite(values: np.ndarray, path: Path) -> tuple[np.ndarray, int]:
    """Forward-fill NaN/inf and values beyond float32's range (they would become inf in the
    float32 output); back-fill at the start. Return (values, how many were repaired)."""
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(values) | (np.abs(values) > FLOAT32_MAX)
    n_bad = int(bad.sum())
    if not n_bad:
        return values, 0
    if n_bad == len(values):
        raise ESAInputError("no finite value in the series", path=path)
    return forward_fill(values, bad), n_bad


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
    last_floor: int  # lattice index of the floor of the last raw timestamp


def _hold(
    ts: np.ndarray, values: np.ndarray, k_lo: int, n: int, p_ns: int, counter: bool
) -> np.ndarray:
    """Zero-order hold of (ts, values) onto lattice rows k_lo .. k_lo + n - 1, as float32.

    Sample i holds from its first grid row at or after it (ceil) up to the next sample's; the
    first sample also fills the rows before it. So the column is ``np.repeat`` of the values by
    those run lengths: one pass over the output, with only raw-sized temporaries.
    Counters are differenced in float64 on the raw values that survive (the held column only
    changes where a new sample's run starts), then cast, exactly like differencing the column.
    """
    starts = np.clip(-(-ts // p_ns) - k_lo, 0, n)  # sorted, since ts is
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
    path: Path,
    p_ns: int,
    counter: bool,
    k_lo: int | None,
    k_hi: int | None,
    max_rows: int = 50_000_000,
) -> _Column:
    """Read, validate, repair and resample one channel (runs in a worker thread)."""
    ts, values = read_raw_series(path, name)
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
    values, n_bad = _repair_nonfinite(values, path)
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
    column = _hold(ts, values, lo, hi - lo + 1, p_ns, counter)
    return _Column(lo, hi, column, n_bad, _floor_div(last, p_ns))


def _build_arrays(
    names: list[str],
    files: list[Path],
    tc_files: list[Path],
    events: pd.DataFrame,
    p_ns: int,
    counters: set[str],
    start: Any,
    end: Any,
    n_jobs: int = 1,
    max_rows: int = 50_000_000,
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    k_lo = None if start is None else _floor_div(_to_ns(start, "start"), p_ns)
    k_hi = None if end is None else _floor_div(_to_ns(end, "end"), p_ns)
    if k_lo is not None and k_hi is not None and k_hi < k_lo:
        raise ESAInputError("end lies before start (no grid point)", column="end", value=end)
    grid = _GridBuffer(len(names), k_lo, k_hi)
    own: list[tuple[int, int, float, float]] = []  # per channel: its lattice range and end values
    last_floor = -(2**62)
    repaired: dict[str, int] = {}
    group = _group_size(len(names))
    tasks: list[Callable[[], Any]] = [
        partial(_channel_column, name, path, p_ns, name in counters, k_lo, k_hi, max_rows)
        for name, path in zip(names, files, strict=True)
    ]
    # telecommand files are read by the same threads, right after the channels
    tasks += [partial(_execution_times, path) for path in tc_files]
    results = _in_order(tasks, n_jobs, ahead=2 * n_jobs)
    try:
        pending: list[_Column] = []
        for col in progress(range(len(names)), "reading channels"):
            column = next(results)
            if column.n_bad:
                repaired[names[col]] = column.n_bad
            grid.cover(column.lo, column.hi)
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
    if repaired:
        warnings.warn(
            f"repaired non-finite values (forward fill) per channel: {repaired}", stacklevel=3
        )
    if grid.buf is None:  # no channels
        raise ESAInputError("no channels selected")
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
        "values": values,
        "labels": _label_mask(events, names, k_lo, n, p_ns),
        "telecommands": _telecommand_pulses(tc_times, k_lo, n, p_ns),
    }
    return arrays, {"k_lo": int(k_lo), "n_rows": int(n)}


def _group_size(n_cols: int) -> int:
    """Channels resampled before they are written together: at most a quarter of the output."""
    return max(1, min(_GROUP, n_cols // 4))


def _resolve_jobs(n_jobs: int | None) -> int:
    """``None`` or -1: every usable core; otherwise a positive thread count."""
    if n_jobs is None or n_jobs == -1:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not Linux
            return max(1, os.cpu_count() or 1)
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise ESAInputError(
            "n_jobs must be a positive integer, -1 or None", column="n_jobs", value=n_jobs
        )
    return n_jobs


def _in_order(tasks: list[Callable[[], _T]], n_jobs: int, ahead: int) -> Iterator[_T]:
    """Results of ``tasks`` in order, ``n_jobs`` threads computing at most ``ahead`` in advance.

    Unzipping and the numpy work release the GIL, so threads overlap on several cores; the
    bounded look-ahead keeps the memory bound (at most ``ahead`` finished columns waiting).
    With one job the tasks run here, one after the other.
    """
    if n_jobs <= 1:
        for task in tasks:
            yield task()
        return
    pool = ThreadPoolExecutor(max_workers=n_jobs)
    try:
        queued: deque[Future[_T]] = deque(pool.submit(t) for t in tasks[:ahead])
        following = iter(tasks[ahead:])
        while queued:
            result = queued.popleft().result()
            task = next(following, None)
            if task is not None:
                queued.append(pool.submit(task))
            yield result
            del result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _floor_div(x: int, p: int) -> int:
    return x // p


def _label_mask(events: pd.DataFrame, names: list[str], k_lo: int, n: int, p_ns: int) -> np.ndarray:
    """uint8 [T, C]: start floors, end ceils; overlaps keep the lower (more important) code."""
    mask = np.zeros((n, len(names)), dtype=np.uint8)
    if not len(events) or not n:
        return mask
    col_of = {c: i for i, c in enumerate(names)}
    codes = events["Category"].map(CATEGORY_TO_CODE).to_numpy()
    starts = events["StartTime"].to_numpy().astype("datetime64[ns]").astype(np.int64)
    ends = events["EndTime"].to_numpy().astype("datetime64[ns]").astype(np.int64)
    first = starts // p_ns - k_lo
    last = -(-ends // p_ns) - k_lo
    cols = events["Channel"].map(col_of).to_numpy()
    for i in np.argsort(-codes, kind="stable"):  # highest code first, lower codes overwrite
        a, b = max(int(first[i]), 0), min(int(last[i]), n - 1)
        if a <= b:
            mask[a : b + 1, int(cols[i])] = codes[i]
    return mask


def _execution_times(path: Path) -> np.ndarray:
    """Execution times (int64 ns) of one telecommand file."""
    return read_raw_series(path)[0]


def _telecommand_pulses(times: list[np.ndarray], k_lo: int, n: int, p_ns: int) -> np.ndarray:
    """float32 [T, K]: 1 at the first grid point at or after each execution inside the grid."""
    out = np.zeros((n, len(times)), dtype=np.float32)
    for j, ts in enumerate(times):
        rows = -(-ts // p_ns) - k_lo
        rows = rows[(rows >= 0) & (rows < n)]
        out[rows, j] = 1.0
    return out
