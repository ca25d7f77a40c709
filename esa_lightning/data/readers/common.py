"""Small helpers the readers share: value checks, column writes, events rebuilt from label codes,
and the hint naming another layout's data=. The forward-fill repair of non-finite values is
``readers.nonfinite``."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from esa_lightning.data.mission import EVENT_COLUMNS, LABEL_CODES, empty_events
from esa_lightning.data.selection import NS_RANGE
from esa_lightning.errors import ESAInputError
from esa_lightning.metrics.intervals import runs as true_runs
from esa_lightning.metrics.report import not_whole_ids

MAX_CODE = max(LABEL_CODES)
# Mission.meta of the readers of rows taken as given: per range a job scores ("val", "test"),
# the channels without a finite reading in it (``nonfinite.ranges_without_reading``)
WITHOUT_READING = "without_reading"


def one_line(exc: BaseException) -> str:
    """A library's error message on one line (pyarrow's span several), in a user's words where
    the library's are internals: a file that is not UTF-8 names its byte (not the codec's
    message, whose position counts from a chunk), an empty table says so, pandas' parser
    loses its "C error" prefix, an ``OSError`` says its reason without the errno."""
    if isinstance(exc, UnicodeDecodeError):
        return undecoded(exc)
    if isinstance(exc, pd.errors.EmptyDataError):
        return "empty file"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    said = " ".join(str(exc).split()).replace("Error tokenizing data. C error: ", "")
    return said or "unreadable"


#: a parquet file pyarrow cannot read, in a user's words (pyarrow's, "magic bytes not found in
#: footer", stay in the chained traceback)
UNREADABLE_PARQUET = ("not a readable parquet file (damaged, cut short, or another format): "
                      "write it again with DataFrame.to_parquet")


def type_words(arrow_type: object) -> str:
    """An arrow column type as a user says it: ``text``, not ``large_string``."""
    import pyarrow as pa

    kinds = [((pa.types.is_string, pa.types.is_large_string), "text"),
             ((pa.types.is_timestamp, pa.types.is_date, pa.types.is_time, pa.types.is_duration),
              "dates or times"),
             ((pa.types.is_binary, pa.types.is_large_binary), "bytes"),
             ((pa.types.is_dictionary,), "categories")]
    for tests, words in kinds:
        if any(test(arrow_type) for test in tests):
            return words
    return str(arrow_type)


def undecoded(exc: UnicodeDecodeError) -> str:
    """A file that is not UTF-8, in a user's words: the byte, not the codec's message."""
    return f"not UTF-8 text (it holds the byte 0x{exc.object[exc.start]:02x}): save it as UTF-8"


def ns_times(
    times: pd.DatetimeIndex, path: Path | str, column: str | None = None
) -> pd.DatetimeIndex:
    """Naive ``times`` in nanoseconds. pandas keeps times in s / ms / us too, where 3000-01-01
    is a valid time: one outside datetime64[ns]'s range (``NS_RANGE``) is an ``ESAInputError``
    naming ``path``, ``column`` and the first such time, not pandas' OutOfBoundsDatetime."""
    try:
        return times.as_unit("ns")
    except (ValueError, OverflowError):  # OutOfBoundsDatetime
        outside = times[(times < pd.Timestamp.min) | (times > pd.Timestamp.max)]
        raise ESAInputError(
            f"timestamp {NS_RANGE}", path=path, column=column, value=str(outside[0])
        ) from None


def clean_names(names: Sequence[str], path: Path | str, *, unnamed_hint: str = "") -> list[str]:
    """A file's column names as the readers name channels: without surrounding spaces
    (`` channel_1 `` is ``channel_1``). A name empty once trimmed (it would become a channel
    without a name) is refused naming its position (from 1) and ``unnamed_hint`` (how such a
    column comes about); so are two names that are the same once trimmed."""
    clean = [str(name).strip() for name in names]
    if "" in clean:
        raise ESAInputError(
            f"column {clean.index('') + 1} of the header has no name{unnamed_hint}", path=path
        )
    dupes = sorted({name for name in clean if clean.count(name) > 1})
    if dupes:
        raise ESAInputError("duplicate column names", path=path, column=dupes[0])
    return clean


def check_no_index_taken(table: pd.DataFrame, path: Path | str) -> None:
    """Refuse a table ``pd.read_csv`` read with an index of its own: rows holding more cells
    than the header (a trailing comma, an unquoted comma in a cell) make pandas take the extra
    leading cells as the index and shift every column, so each cell would be read as the
    next column's."""
    if not isinstance(table.index, pd.RangeIndex):
        raise ESAInputError(
            f"its rows hold more cells than the header's {len(table.columns)} columns (a "
            "trailing comma, or a cell holding a comma without quotes)",
            path=path,
        )


def check_increasing_batch(
    ts: np.ndarray, last: object, path: Path | str, column: str, *, pos_offset: int = 0
) -> None:
    """Strictly increasing timestamps / ids, also across batch boundaries."""
    bad = np.flatnonzero(ts[1:] <= ts[:-1])
    if last is not None and ts[0] <= last:
        row, value = pos_offset, ts[0]
    elif len(bad):
        row, value = pos_offset + int(bad[0]) + 1, ts[bad[0] + 1]
    else:
        return
    raise ESAInputError(
        f"values must be strictly increasing (unsorted or duplicate at row {row})",
        path=path,
        column=column,
        value=str(value),
    )


def put_columns(
    out: np.ndarray, pos: int, columns: Sequence[np.ndarray], chunk_rows: int = 8192
) -> None:
    """Write equal-length columns into rows ``pos..`` of a row-major [T, C] array.

    Goes through small contiguous [C, chunk] blocks that stay in cache: writing one column at a
    time strides through memory and costs several times as much for wide files.
    """
    if not columns:
        return
    n = len(columns[0])
    block = np.empty((len(columns), min(n, chunk_rows)), dtype=out.dtype)
    for start in range(0, n, chunk_rows):
        stop = min(n, start + chunk_rows)
        part = block[:, : stop - start]
        for j, col in enumerate(columns):
            part[j] = col[start:stop]
        out[pos + start : pos + stop] = part.T


def check_increasing(values: np.ndarray, path: Path | str, column: str) -> None:
    """Raise an ``ESAInputError`` naming the first unsorted or duplicate entry."""
    if len(values):
        check_increasing_batch(np.asarray(values), None, path, column)


def refuse_complex(values: pd.Series, path: Path | str, column: str) -> None:
    """Complex readings are refused: a cast to float drops their imaginary parts (behind a
    numpy warning naming no file), as the NASA reader refuses complex arrays."""
    if pd.api.types.is_complex_dtype(values.dtype):
        raise ESAInputError(f"complex values ({values.dtype}): give real numbers (a cast would "
                            "drop the imaginary part)", path=path, column=column)


def check_codes(codes: np.ndarray, path: Path | str, column: str) -> np.ndarray:
    """Label codes as uint8, refusing anything outside 0..4."""
    codes = np.asarray(codes)
    bad = (codes < 0) | (codes > MAX_CODE)
    if not np.issubdtype(codes.dtype, np.integer):
        bad |= codes != np.floor(codes)  # also catches NaN
    if bad.any():
        raise ESAInputError(
            f"label codes must lie in 0..{MAX_CODE}",
            path=path,
            column=column,
            value=codes[np.argmax(bad)].item(),
        )
    return codes.astype(np.uint8)


def events_from_labels(
    labels: np.ndarray, timestamps: np.ndarray, names: Sequence[str | None]
) -> pd.DataFrame:
    """Event table from per-channel codes: one ID per maximal run of rows where some channel
    holds the same non-zero code, one segment row per channel for its labeled part of the run."""
    time_dtype = str(np.asarray(timestamps).dtype)
    if labels.size == 0:
        return empty_events(time_dtype)
    rows = np.flatnonzero(labels.max(axis=1) > 0)
    if len(rows) == 0:
        return empty_events(time_dtype)
    sub = labels[rows]
    found = []
    for code in range(1, MAX_CODE + 1):
        hit = np.zeros(len(labels), dtype=bool)
        hit[rows[(sub == code).any(axis=1)]] = True
        first, last = true_runs(hit)
        found += [(int(a), int(b), code) for a, b in zip(first, last, strict=True)]
    found.sort()
    records = []
    for k, (a, b, code) in enumerate(found):
        block = labels[a : b + 1] == code
        for j in np.flatnonzero(block.any(axis=0)):
            for s, e in zip(*true_runs(block[:, j]), strict=True):
                records.append(
                    (
                        f"event_{k}",
                        names[j],
                        timestamps[a + s],
                        timestamps[a + e],
                        LABEL_CODES[code],
                    )
                )
    events = pd.DataFrame.from_records(records, columns=EVENT_COLUMNS)
    for col in ("StartTime", "EndTime"):
        events[col] = events[col].astype(time_dtype)
    events["ID"] = events["ID"].astype(object)
    events["Channel"] = events["Channel"].astype(object)
    events["Category"] = events["Category"].astype(object)
    return events


def median_period(timestamps: np.ndarray) -> pd.Timedelta | None:
    """The grid step: median difference of the timestamps (None for fewer than two rows)."""
    if len(timestamps) < 2:
        return None
    return pd.Timedelta(int(np.median(np.diff(timestamps).astype(np.int64))), unit="ns")


class OffGridWarning(UserWarning):
    """Rows a reader takes as given whose steps are not whole grid periods (``off_grid``)."""


def off_grid(timestamps: np.ndarray, period: str | pd.Timedelta) -> str | None:
    """How many steps between ``timestamps`` are not a whole number of grid ``period``s
    (irregular sampling: the rows are off the grid) and the time before the first; None where
    every step is. The ESA CSV reader and ``data.frame.skipped_keys`` (prediction) warn with it."""
    stamps, unit = np.asarray(timestamps), pd.Timedelta(period).value
    if unit <= 0:  # no grid to be off (a period of 0)
        return None
    off = np.diff(stamps.astype(np.int64)) % unit != 0
    if not off.any():
        return None
    return (f"{int(off.sum())} step(s) between rows are not a whole number of grid periods "
            f"({period}): the rows are off the grid (first after {stamps[int(np.argmax(off))]})")


def int64_ids(ids: np.ndarray, path: str | Path, column: str, first_row: int = 0) -> np.ndarray:
    """Ids as int64. uint64 ids beyond int64's range are refused (the cast would wrap them to
    negative ids), naming the first. Float ids that are whole numbers (61.0: pandas writes an
    integer column a NaN touched as floats) are the integer ids they are; one with a fraction,
    not finite or beyond 2**62 is refused naming its row (``first_row`` plus its position,
    counted from 0 as the file's rows) and value."""
    if ids.dtype.kind == "f":
        bad = not_whole_ids(ids)
        if bad.any():
            row = int(np.argmax(bad))
            raise ESAInputError(
                f"at row {first_row + row}: an id must be a whole number",
                path=path,
                column=column,
                value=ids[row].item(),
            )
        return ids.astype(np.int64)
    if ids.dtype == np.uint64:
        beyond = ids > np.iinfo(np.int64).max
        if beyond.any():
            raise ESAInputError(
                f"id beyond the int64 range (at most {np.iinfo(np.int64).max})",
                path=path,
                column=column,
                value=int(ids[np.argmax(beyond)]),
            )
    return ids.astype(np.int64, copy=False)


def unused_names(stem: str, count: int, taken: set[str]) -> list[str]:
    """``count`` names ``<stem>_<i>`` (i from 0), skipping those in ``taken``: default group
    and subsystem names for channels a channel table does not describe, which must not put them
    in a described channel's group or subsystem."""
    names: list[str] = []
    i = 0
    while len(names) < count:
        if (name := f"{stem}_{i}") not in taken:
            names.append(name)
        i += 1
    return names


def name_undescribed(table: pd.DataFrame, taken: pd.DataFrame) -> pd.DataFrame:
    """``table`` (a channel table) with a group of its own for each row without a Group, and
    one subsystem for all rows without a Subsystem, named as a table without them names its
    rows (``group_<i>``, ``subsystem_<i>``) but skipping the names ``taken`` (the described
    channels' table) uses: a default name could put a channel in a described channel's group or
    subsystem."""
    out = table.copy()
    for col, stem in (("Group", "group"), ("Subsystem", "subsystem")):
        cells = (out[col] if col in out else pd.Series(None, index=out.index)).astype(object)
        missing = cells.isna()
        used = {str(v) for v in taken[col].dropna()} if col in taken else set()
        fresh = unused_names(stem, int(missing.sum()) if col == "Group" else 1, used)
        cells[missing] = fresh if col == "Group" else fresh[0]
        out[col] = cells
    return out


# the known layouts by their data=: name and telling files (a pattern ending in / a folder)
_LAYOUTS = {
    "esa": ("ESA mission", ("channels/",)),  # (its channels.csv an ESA CSV export has too)
    "kaggle": ("Kaggle", ("train.parquet", "test.parquet")),
    "esa_csv": ("ESA CSV", ("*.train.csv",)),
    "nasa": ("NASA", ("labeled_anomalies.csv",)),
}


def other_layout_hint(root: Path, reads: str) -> str:
    """Where ``root`` is a folder or file of another known layout than the one the reader
    ``reads`` (a data= of ``_LAYOUTS``; the synthetic reader reads the ``esa`` one), judged
    from its file names alone (as ``data.convert`` and the generator write them): ``'; it
    holds train.parquet, of the Kaggle layout: read it with data=kaggle and the same
    data.root'``; else ``''``."""
    found = _other_layout(root, reads)
    if found is None:
        return ""
    kind, evidence = found
    return (f"; it {evidence}, of the {_LAYOUTS[kind][0]} layout: read it with data={kind} and "
            "the same data.root")


def _other_layout(root: Path, reads: str) -> tuple[str, str] | None:
    """(the data= of ``root``'s layout, what tells it) for ``other_layout_hint``."""
    if root.is_file():
        if root.name in _LAYOUTS["nasa"][1]:  # the NASA listing: its folder is the data.root
            return None
        kind = {".parquet": "kaggle", ".csv": "esa_csv"}.get(root.suffix.lower())
        return None if kind in (None, reads) else (kind, f"is a {root.suffix} file")
    if not root.is_dir():
        return None
    for kind, (_, patterns) in _LAYOUTS.items():
        hits = sorted(name for pattern in patterns for name in _matching(root, pattern))
        if hits and kind != reads:
            return kind, f"holds {hits[0]}"
    return None


def _matching(root: Path, pattern: str) -> list[str]:
    """Names in ``root`` matching ``pattern``; one ending in / matches folders only."""
    folder = pattern.endswith("/")
    found = root.glob(pattern.rstrip("/"))
    return [p.name + "/" if folder else p.name for p in found if p.is_dir() or not folder]
