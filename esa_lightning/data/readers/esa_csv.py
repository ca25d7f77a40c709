"""Reader of the ESA-ADB preprocessed CSV files (``3_months.train.csv`` style) into a ``Mission``.

Layout: ``timestamp`` (``%Y-%m-%d %H:%M:%S`` or ISO 8601, in UTC; a file whose timestamps end in
a time zone, ``Z`` or ``+02:00``, is converted to UTC, as the raw reader does), value columns
``channel_N``, telecommand columns ``telecommand_N``, then one ``is_anomaly_<column>`` (uint8 code
0..4) per value column; a file without any ``is_anomaly_`` column is unlabeled new telemetry
(labels 0, ``meta["train_labeled"]`` / ``meta["test_labeled"]`` False, as the Kaggle reader
reads a parquet file without ``is_anomaly``). ``root``
is one CSV file (split by ``split_date``) or a folder with one ``*.train.csv`` and optionally one
``*.test.csv`` (the test part starts at the first test row).

Why streaming: ``84_months`` holds 7.3 M rows x ~175 columns. pyarrow's CSV reader converts only
the requested columns, already typed, block by block into arrays allocated once (their size
comes from a cheap newline count), so the peak memory is the result itself.

Events are rebuilt from the label columns (the CSV carries no event table): one event per
maximal run of rows where some selected channel holds the same non-zero code, with one segment
row per channel for the part of that run the channel is labeled.

The arrays are cached by ``readers.cache``; the checks shared with the Kaggle and NASA readers
live in ``readers.common``, their repair of non-finite values in ``readers.nonfinite``; finding
the files, their headers and ``channels.csv`` is ``readers.esa_csv_files``.
"""

from __future__ import annotations

import csv
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from esa_lightning.data.array_store import ArrayStore
from esa_lightning.data.mission import Mission
from esa_lightning.data.preprocessing import PREPROCESSING_KEY, Preprocessing
from esa_lightning.data.readers.cache import (
    USER_CACHE_DIR,
    Layout,
    UserCacheDir,
    cache_entry,
    cache_folder,
    read_through_cache,
    rows_layout,
)
from esa_lightning.data.readers.common import (
    MAX_CODE,
    WITHOUT_READING,
    OffGridWarning,
    check_codes,
    check_increasing_batch,
    events_from_labels,
    median_period,
    off_grid,
    one_line,
    put_columns,
)
from esa_lightning.data.readers.digests import cache_key, change_stamps, source_identity
from esa_lightning.data.readers.esa_csv_files import (
    LABEL_PREFIX,
    TIMESTAMP,
    channel_table,
    locate_files,
    mission_name,
    read_header,
    split_header,
)
from esa_lightning.data.readers.header_line import first_data_line, long_row
from esa_lightning.data.readers.nonfinite import (
    ranges_without_reading,
    repair_values,
    zero_nonfinite,
)
from esa_lightning.data.selection import (
    NS_RANGE,
    ChannelSpec,
    select_channels,
    split_points_by_time,
)
from esa_lightning.errors import ESAInputError, user_stacklevel

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
ZONE = re.compile(r"\d\d:\d\d(:\d\d(\.\d*)?)?\s*(Z|[+-]\d\d(:?\d\d)?)$")  # a time, then its zone
CACHE_VERSION = 4  # 2: the unrepresentable-rows mark; 3: its cells (row and channel);
# 4: the rows holding a finite reading (finite_rows)
BLOCK_BYTES = 4 << 20


def read_esa_csv(
    root: str | Path,
    *,
    channels: ChannelSpec = "all",
    split_date: str | pd.Timestamp | None = None,
    val_days: float | None = None,
    lightweight: Sequence[str] = (),
    cache_dir: str | os.PathLike | UserCacheDir | None = USER_CACHE_DIR,
    use_cache: bool = True,
    val_fraction: float | None = None,
) -> Mission:
    """Read an ESA-ADB preprocessed CSV file or train/test folder into a ``Mission``.

    A single file is split at ``split_date``; a folder's test file starts the test range (then
    ``split_date`` is not used). Validation is the last ``val_days`` of the training range; the
    last ``val_fraction`` of it where ``val_days`` is not given or does not fit (under half of
    the training range), as ``read_esa_mission`` does.
    ``channels`` picks the value columns to read (``all``, ``target``, ``lightweight`` or names);
    every telecommand column is read. The arrays are cached under ``cache_dir`` (default: the
    user cache folder, ``readers.cache.user_cache_dir``; None: no cache) keyed by the files'
    identity (path and content digest: ``digests.source_identity``) and the selected columns.
    """
    train_file, test_file = locate_files(Path(root))
    files = [f for f in (train_file, test_file) if f is not None]
    read_before = change_stamps(files)  # the headers are read before the files are hashed
    headers = {f: read_header(f) for f in files}
    channel_cols, telecommand_cols = split_header(headers[train_file], train_file)
    table = channel_table(train_file.parent / "channels.csv", channel_cols)
    selected = select_channels(table, channels, lightweight=lightweight, source=str(train_file))
    names = list(selected["Channel"])
    # a file without any label column is unlabeled telemetry; one with some needs them all
    labeled = {f: any(h.startswith(LABEL_PREFIX) for h in header) for f, header in headers.items()}
    for f, header in headers.items():
        needed = [TIMESTAMP, *names, *telecommand_cols]
        needed += [LABEL_PREFIX + c for c in names] if labeled[f] else []
        present = set(header)
        missing = [c for c in needed if c not in present]
        if missing:
            raise ESAInputError(
                f"missing column(s) {missing[:5]}{'...' if len(missing) > 5 else ''}",
                path=f,
                column=missing[0],
            )

    memo = cache_folder(cache_dir) if use_cache else None
    sources = source_identity(files, memo)
    key = cache_key("esa_csv", CACHE_VERSION, sources, names, telecommand_cols)
    arrays, info = read_through_cache(
        cache_entry(cache_dir, key),
        use_cache,
        lambda store: _read_files(files, headers, labeled, names, telecommand_cols, store),
        paths=[root, *files],
        read_before=read_before,
        layout=Layout(rows_layout(len(names), len(telecommand_cols), timestamps="datetime64[ns]",
                                  labels=("uint8", ("n", len(names)))), counts=("n_train",)),
    )

    ts = arrays["timestamps"]
    n_train = int(info["n_train"])
    if test_file is not None:
        _check_same_period(ts, n_train, test_file)
        val_start, _ = split_points_by_time(ts[:n_train], None, val_days, val_fraction)
        test_start = n_train
    else:
        val_start, test_start = split_points_by_time(ts, split_date, val_days, val_fraction)
    labels = arrays["labels"]
    period = median_period(ts)
    _warn_off_grid(ts, n_train, files, period)
    return Mission(
        name=mission_name(Path(root)),
        values=arrays["values"],
        timestamps=ts,
        channels=selected,
        labels=labels,
        events=events_from_labels(labels, ts, names),
        telecommands=arrays["telecommands"],
        telecommand_names=list(telecommand_cols),
        unrepresentable_cells=arrays["unrepresentable_cells"],
        period=period,
        test_start=test_start,
        val_start=val_start,
        meta={
            "source": str(root),
            "files": [f.name for f in files],
            "cache_key": key,
            "train_labeled": labeled[train_file],
            "test_labeled": labeled[test_file or train_file],
            WITHOUT_READING: ranges_without_reading(
                arrays["finite_rows"], names, val_start, test_start, len(ts)
            ),
            PREPROCESSING_KEY: Preprocessing(
                index="time", period=None if period is None else str(period)
            ).to_dict(),
        },
    )


def _check_same_period(ts: np.ndarray, n_train: int, test_file: Path) -> None:
    """The test file on the training file's grid: the mission's period is the median step of
    both, so a test file sampled at another rate would be scored as if it were on that grid."""
    train, test = median_period(ts[:n_train]), median_period(ts[n_train:])
    if train is not None and test is not None and train != test:
        raise ESAInputError(
            f"the test file's grid period {test} differs from the training file's {train}",
            path=test_file,
            column=TIMESTAMP,
        )


def _warn_off_grid(
    ts: np.ndarray, n_train: int, files: list[Path], period: pd.Timedelta | None
) -> None:
    """Warn, at every read (from the cache too), about each file whose rows step off the grid
    of the mission's ``period`` (irregular sampling, ``off_grid``): they are taken as given,
    so a window of rows spans unequal times. ``predict.py`` leaves this ``OffGridWarning`` out
    and says it once, for the rows it scores (``jobs.predict.warn_skipped_rows``)."""
    if period is None:
        return
    parts = [ts[:n_train], ts[max(n_train - 1, 0) :]]  # the test file's from the last train row
    for path, part in zip(files, parts, strict=False):
        if off := off_grid(part, str(period)):
            warnings.warn(
                f"{path}: {off}: rows are taken as given, not resampled (data=esa holds each "
                "channel's samples on a grid of data.period)",
                OffGridWarning,
                stacklevel=user_stacklevel(),
            )


# ---------------------------------------------------------------------------- reading arrays
def _count_lines(path: Path) -> int:
    """Upper bound of the data rows: newlines, plus one for a last line without a newline."""
    n, last = 0, b"\n"
    with open(path, "rb") as f:
        while chunk := f.read(BLOCK_BYTES):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n + (last != b"\n")


def _read_files(
    files: list[Path],
    headers: dict[Path, list[str]],
    labeled: dict[Path, bool],
    names: list[str],
    telecommands: list[str],
    store: ArrayStore,
) -> tuple[dict[str, np.ndarray], dict]:
    capacity = sum(_count_lines(f) for f in files)
    out = {
        "timestamps": store.empty("timestamps", (capacity,), "datetime64[ns]"),
        "values": store.empty("values", (capacity, len(names)), np.float32),
        "telecommands": store.empty("telecommands", (capacity, len(telecommands)), np.float32),
        "labels": store.zeros("labels", (capacity, len(names)), np.uint8),  # unlabeled: 0
    }
    pos, n_train = 0, 0
    for i, f in enumerate(files):
        start = pos
        pos = _read_one(f, headers[f], labeled[f], names, telecommands, out, pos, store)
        if pos == start:
            raise ESAInputError("no data rows", path=f)
        if i == 0:
            n_train = pos
        elif out["timestamps"][start] <= out["timestamps"][start - 1]:
            raise ESAInputError(
                "the test file must start after the last training timestamp",
                path=f,
                column=TIMESTAMP,
                value=str(out["timestamps"][start]),
            )
    arrays = {k: v[:pos] for k, v in out.items()}
    where = ", ".join(str(f) for f in files)  # full paths, as every other error names files
    found = repair_values(arrays["values"], names, source=where, store=store)
    arrays["finite_rows"], arrays["unrepresentable_cells"] = found.finite, found.cells
    zero_nonfinite(arrays["telecommands"], source=where)
    return arrays, {"n_train": n_train}


def _read_one(
    path: Path,
    header: list[str],
    labeled: bool,
    names: list[str],
    telecommands: list[str],
    out: dict[str, np.ndarray],
    pos: int,
    store: ArrayStore,
) -> int:
    """Stream ``path`` into ``out`` from row ``pos``; return the row after the last one. An
    unlabeled file leaves its rows' labels 0."""
    label_cols = [LABEL_PREFIX + c for c in names] if labeled else []
    columns = [TIMESTAMP, *names, *telecommands, *label_cols]
    zoned = _first_time_zoned(path, header)  # pyarrow reads zoned times only as such
    types = {TIMESTAMP: pa.timestamp("ns", tz="UTC" if zoned else None)}
    types.update({c: pa.float32() for c in (*names, *telecommands)})
    types.update({c: pa.int16() for c in label_cols})
    convert = pacsv.ConvertOptions(
        include_columns=columns,
        column_types=types,
        timestamp_parsers=[TIME_FORMAT, pacsv.ISO8601],
        strings_can_be_null=False,
    )
    n_val, n_tc = len(names), len(telecommands)
    last_ts, first = None, pos  # errors name the file's own rows, from 0
    try:
        # the header's names as read_header cleaned them (" channel_1 " is channel_1)
        read = pacsv.ReadOptions(block_size=BLOCK_BYTES, column_names=header, skip_rows=1)
        reader = pacsv.open_csv(path, read_options=read, convert_options=convert)
        for batch in reader:
            n = batch.num_rows
            if n == 0:
                continue
            if pos + n > len(out["timestamps"]):
                raise ESAInputError("file changed while reading", path=path)
            ts_col = batch.column(0)
            if ts_col.null_count:
                raise ESAInputError("empty timestamp", path=path, column=TIMESTAMP)
            ts = ts_col.to_numpy().astype("datetime64[ns]")
            check_increasing_batch(ts, last_ts, path, TIMESTAMP, pos_offset=pos - first)
            last_ts = ts[-1]
            out["timestamps"][pos : pos + n] = ts
            cols = [c.to_numpy(zero_copy_only=False) for c in batch.columns[1:]]
            put_columns(out["values"], pos, cols[:n_val])
            put_columns(out["telecommands"], pos, cols[n_val : n_val + n_tc])
            codes = []
            for j, name in enumerate(label_cols):
                if batch.column(1 + n_val + n_tc + j).null_count:
                    raise ESAInputError("empty label cell", path=path, column=name)
                codes.append(check_codes(cols[n_val + n_tc + j], path, name))
            put_columns(out["labels"], pos, codes)
            store.release(out, pos, pos + n)
            pos += n
    except pa.ArrowInvalid as exc:
        raise _arrow_error(exc, path, header, zoned) from None
    return pos


def _first_time_zoned(path: Path, header: list[str]) -> bool:
    """Whether the first data row's timestamp ends in a time zone (``Z``, ``+02:00``): then
    every timestamp of the file must have one, and they are converted to UTC."""
    col = header.index(TIMESTAMP)
    try:  # at most one block (what pyarrow reads a row within) of the row
        first = next(csv.reader([first_data_line(path, BLOCK_BYTES)]), [])
    except (OSError, csv.Error):  # pyarrow names the problem when it reads the file
        return False
    return col < len(first) and ZONE.search(first[col].strip()) is not None


def _arrow_error(exc: Exception, path: Path, header: list[str], zoned: bool) -> ESAInputError:
    """Turn pyarrow's 'In CSV column #3: ... invalid value 'x'' into a named error."""
    msg = str(exc)
    column, value = None, None
    if "CSV column #" in msg:
        try:
            column = header[int(msg.split("CSV column #", 1)[1].split(":", 1)[0])]
        except (ValueError, IndexError):
            column = None
    if "invalid value '" in msg:
        value = msg.split("invalid value '", 1)[1].rsplit("'", 1)[0]
    if column is not None and value is not None:
        if column == TIMESTAMP:
            reason = _time_reason(value, zoned)
        elif column.startswith(LABEL_PREFIX):
            reason = f"not an integer label code 0..{MAX_CODE}"
        else:
            reason = "not a number"
        return ESAInputError(reason, path=path, column=column, value=value)
    if "Empty CSV file" in msg:
        return ESAInputError("empty file", path=path)
    if "straddling object straddles" in msg:  # a row longer than a block: line ends lost
        return ESAInputError(long_row(BLOCK_BYTES), path=path)
    return ESAInputError(
        f"cannot parse the CSV: {one_line(exc)}", path=path, column=column, value=value
    )


def _time_reason(value: str, zoned: bool) -> str:
    """Why pyarrow refused the timestamp ``value`` of a file whose first timestamp has a time
    zone (``zoned``) or none."""
    try:
        when = pd.Timestamp(value)
    except (ValueError, TypeError):
        when = None
    if when is not None and not pd.isna(when):
        try:
            when.as_unit("ns")
        except (ValueError, OverflowError):  # OutOfBoundsDatetime: pandas reads it in s / us
            return f"timestamp {NS_RANGE}"
        if (when.tzinfo is not None) != zoned:
            has, first = ("no", "has one") if zoned else ("a", "has none")
            return (
                f"timestamp with {has} time zone where the file's first timestamp {first}: a "
                "file's timestamps must all have a time zone (converted to UTC) or none (UTC)"
            )
    return f"not a timestamp in the format {TIME_FORMAT} (a time zone, Z or +02:00, may follow)"
