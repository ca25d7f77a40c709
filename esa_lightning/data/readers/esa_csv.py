"""Reader of the ESA-ADB preprocessed CSV files (``3_months.train.csv`` style) into a ``Mission``.

Layout: ``timestamp`` (``%Y-%m-%d %H:%M:%S``), value columns ``channel_N``, telecommand columns
``telecommand_N``, then one ``is_anomaly_<column>`` (uint8 code 0..4) per value column. ``root``
is one CSV file (split by ``split_date``) or a folder with one ``*.train.csv`` and optionally one
``*.test.csv`` (the test part starts at the first test row).

Why streaming: ``84_months`` holds 7.3 M rows x ~175 columns. pyarrow's CSV reader converts only
the requested columns, already typed, block by block into arrays allocated once (their size
comes from a cheap newline count), so the peak memory is the result itself.

Events are rebuilt from the label columns (the CSV carries no event table): one event per
maximal run of rows where some selected channel holds the same non-zero code, with one segment
row per channel for the part of that run the channel is labeled.

This module also holds the small helpers the Kaggle and NASA readers share: the array cache
(npy files under ``cache_dir/<key>/``, memory-mapped on load, written atomically), the
forward-fill repair of non-finite values and the run/event helpers.
"""

from __future__ import annotations

import csv
import json
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from esa_lightning.data.array_store import ArrayStore, release_pages
from esa_lightning.data.mission import (
    CHANNEL_TABLE_COLUMNS,
    EVENT_COLUMNS,
    LABEL_CODES,
    Mission,
    default_channel_table,
    empty_events,
)
from esa_lightning.data.selection import ChannelSpec, select_channels, split_points_by_time
from esa_lightning.errors import ESAInputError
from esa_lightning.io import (
    atomic_folder,
    cache_key,
    remove_stale_temporaries,
    source_identity,
    write_json_atomic,
)

TIMESTAMP = "timestamp"
LABEL_PREFIX = "is_anomaly_"
TELECOMMAND_PREFIX = "telecommand_"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
CACHE_VERSION = 1
BLOCK_BYTES = 4 << 20
MAX_CODE = max(LABEL_CODES)
STALE_AFTER_S = 3600.0


def read_esa_csv(
    root: str | Path,
    *,
    channels: ChannelSpec = "all",
    split_date: str | pd.Timestamp | None = None,
    val_days: float | None = None,
    lightweight: Sequence[str] = (),
    cache_dir: str | Path = "datasets/cache",
    use_cache: bool = True,
) -> Mission:
    """Read an ESA-ADB preprocessed CSV file or train/test folder into a ``Mission``.

    A single file is split at ``split_date``; a folder's test file starts the test range (then
    ``split_date`` is not used). Validation is the last ``val_days`` of the training range.
    ``channels`` picks the value columns to read (``all``, ``target``, ``lightweight`` or names);
    every telecommand column is read. The arrays are cached under ``cache_dir`` keyed by the
    files' identity (path, size, mtime) and the selected columns.
    """
    train_file, test_file = _locate(Path(root))
    files = [f for f in (train_file, test_file) if f is not None]
    headers = {f: _read_header(f) for f in files}
    channel_cols, telecommand_cols = _split_header(headers[train_file], train_file)
    table = _channel_table(train_file.parent / "channels.csv", channel_cols)
    selected = select_channels(table, channels, lightweight=lightweight, source=str(train_file))
    names = list(selected["Channel"])
    needed = [TIMESTAMP, *names, *telecommand_cols, *(LABEL_PREFIX + c for c in names)]
    for f, header in headers.items():
        present = set(header)
        missing = [c for c in needed if c not in present]
        if missing:
            raise ESAInputError(
                f"missing column(s) {missing[:5]}{'...' if len(missing) > 5 else ''}",
                path=f,
                column=missing[0],
            )

    key = cache_key("esa_csv", CACHE_VERSION, source_identity(files), names, telecommand_cols)
    arrays, info = read_through_cache(
        Path(cache_dir) / key,
        use_cache,
        lambda store: _read_files(files, headers, names, telecommand_cols, store),
    )

    ts = arrays["timestamps"]
    n_train = int(info["n_train"])
    if test_file is not None:
        val_start, _ = split_points_by_time(ts[:n_train], None, val_days)
        test_start = n_train
    else:
        val_start, test_start = split_points_by_time(ts, split_date, val_days)
    labels = arrays["labels"]
    return Mission(
        name=_mission_name(Path(root)),
        values=arrays["values"],
        timestamps=ts,
        channels=selected,
        labels=labels,
        events=events_from_labels(labels, ts, names),
        telecommands=arrays["telecommands"],
        telecommand_names=list(telecommand_cols),
        period=median_period(ts),
        test_start=test_start,
        val_start=val_start,
        meta={"source": str(root), "files": [f.name for f in files], "cache_key": key},
    )


# ---------------------------------------------------------------------------- locating files
def _locate(root: Path) -> tuple[Path, Path | None]:
    if root.is_file():
        return root, None
    if not root.is_dir():
        raise ESAInputError("no such file or folder", path=root)
    trains = sorted(root.glob("*.train.csv"))
    tests = sorted(root.glob("*.test.csv"))
    if len(trains) != 1:
        found = [p.name for p in trains] or "none"
        raise ESAInputError(
            f"need exactly one *.train.csv in the folder (found {found}); pass the file instead",
            path=root,
        )
    if len(tests) > 1:
        raise ESAInputError(
            f"more than one *.test.csv in the folder: {[p.name for p in tests]}", path=root
        )
    return trains[0], (tests[0] if tests else None)


def _mission_name(root: Path) -> str:
    name = root.name
    for suffix in (".csv", ".train", ".test"):
        name = name.removesuffix(suffix)
    return name


def _read_header(path: Path) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f), None)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ESAInputError(f"cannot read the header: {one_line(exc)}", path=path) from None
    if not header:
        raise ESAInputError("empty file (no header line)", path=path)
    header = [h.strip() for h in header]
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise ESAInputError("duplicate column names", path=path, column=dupes[0])
    if TIMESTAMP not in header:
        raise ESAInputError("missing the timestamp column", path=path, column=TIMESTAMP)
    return header


def _split_header(header: list[str], path: Path) -> tuple[list[str], list[str]]:
    """(channel columns, telecommand columns) in file order."""
    value_cols = [h for h in header if h != TIMESTAMP and not h.startswith(LABEL_PREFIX)]
    telecommands = [h for h in value_cols if h.startswith(TELECOMMAND_PREFIX)]
    chans = [h for h in value_cols if not h.startswith(TELECOMMAND_PREFIX)]
    if not chans:
        raise ESAInputError("no channel columns", path=path)
    return chans, telecommands


def _channel_table(path: Path, channel_cols: list[str]) -> pd.DataFrame:
    """``channels.csv`` beside the data (YES/NO flags to bools) or the default table."""
    if not path.is_file():
        return default_channel_table(channel_cols)
    table = read_channel_table(path)
    table = table[table["Channel"].isin(set(channel_cols))]
    extra = [c for c in channel_cols if c not in set(table["Channel"])]
    if extra:
        table = pd.concat([table, default_channel_table(extra)], ignore_index=True)
    order = {c: i for i, c in enumerate(channel_cols)}
    return table.sort_values("Channel", key=lambda s: s.map(order)).reset_index(drop=True)


def read_channel_table(path: Path) -> pd.DataFrame:
    """An ESA ``channels.csv`` as the project's channel table (Target/Categorical as bools)."""
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise ESAInputError(f"cannot read the channel table: {one_line(exc)}", path=path) from None
    raw.columns = [c.strip() for c in raw.columns]
    if "Channel" not in raw.columns:
        raise ESAInputError("missing column", path=path, column="Channel")
    table = raw.copy()
    table["Channel"] = table["Channel"].str.strip()
    if "Subsystem" not in table:
        table["Subsystem"] = "subsystem_0"
    if "Group" not in table:
        table["Group"] = [f"group_{i}" for i in range(len(table))]
    for flag, default in (("Target", True), ("Categorical", False)):
        if flag in table:
            table[flag] = table[flag].str.strip().str.upper().isin({"YES", "Y", "TRUE", "1"})
        else:
            table[flag] = default
    rest = [c for c in table.columns if c not in CHANNEL_TABLE_COLUMNS]
    return table[CHANNEL_TABLE_COLUMNS + rest].reset_index(drop=True)


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
    names: list[str],
    telecommands: list[str],
    store: ArrayStore,
) -> tuple[dict[str, np.ndarray], dict]:
    capacity = sum(_count_lines(f) for f in files)
    out = {
        "timestamps": store.empty("timestamps", (capacity,), "datetime64[ns]"),
        "values": store.empty("values", (capacity, len(names)), np.float32),
        "telecommands": store.empty("telecommands", (capacity, len(telecommands)), np.float32),
        "labels": store.empty("labels", (capacity, len(names)), np.uint8),
    }
    pos, n_train = 0, 0
    for i, f in enumerate(files):
        start = pos
        pos = _read_one(f, headers[f], names, telecommands, out, pos, store)
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
    where = ", ".join(f.name for f in files)
    forward_fill_nonfinite(arrays["values"], names, source=where)
    zero_nonfinite(arrays["telecommands"], source=where)
    return arrays, {"n_train": n_train}


def _read_one(
    path: Path,
    header: list[str],
    names: list[str],
    telecommands: list[str],
    out: dict[str, np.ndarray],
    pos: int,
    store: ArrayStore,
) -> int:
    """Stream ``path`` into ``out`` from row ``pos``; return the row after the last one."""
    label_cols = [LABEL_PREFIX + c for c in names]
    columns = [TIMESTAMP, *names, *telecommands, *label_cols]
    types = {TIMESTAMP: pa.timestamp("ns")}
    types.update({c: pa.float32() for c in (*names, *telecommands)})
    types.update({c: pa.int16() for c in label_cols})
    convert = pacsv.ConvertOptions(
        include_columns=columns,
        column_types=types,
        timestamp_parsers=[TIME_FORMAT, pacsv.ISO8601],
        strings_can_be_null=False,
    )
    n_val, n_tc = len(names), len(telecommands)
    last_ts = None
    try:
        reader = pacsv.open_csv(
            path, read_options=pacsv.ReadOptions(block_size=BLOCK_BYTES), convert_options=convert
        )
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
            _check_increasing(ts, last_ts, path, TIMESTAMP, pos_offset=pos)
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
        raise _arrow_error(exc, path, header) from None
    return pos


def _arrow_error(exc: Exception, path: Path, header: list[str]) -> ESAInputError:
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
            reason = f"not a timestamp in the format {TIME_FORMAT}"
        elif column.startswith(LABEL_PREFIX):
            reason = f"not an integer label code 0..{MAX_CODE}"
        else:
            reason = "not a number"
        return ESAInputError(reason, path=path, column=column, value=value)
    if "Empty CSV file" in msg:
        return ESAInputError("empty file", path=path)
    return ESAInputError(
        f"cannot parse the CSV: {one_line(exc)}", path=path, column=column, value=value
    )


# ---------------------------------------------------------------------- shared small helpers
def one_line(exc: BaseException) -> str:
    """A library's error message on one line (pyarrow's span several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _check_increasing(
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


def nonfinite_columns(values: np.ndarray, chunk_rows: int = 65536) -> np.ndarray:
    """Indices of the columns holding NaN/inf, checked in row chunks (no [T, C] temporary)."""
    bad = np.zeros(values.shape[1], dtype=bool)
    for start in range(0, len(values), chunk_rows):
        block = values[start : start + chunk_rows]
        bad |= ~np.isfinite(block).all(axis=0)
        release_pages(block)  # a memory-mapped cache being built stays out of RAM
    return np.flatnonzero(bad)


def check_increasing(values: np.ndarray, path: Path | str, column: str) -> None:
    """Raise an ``ESAInputError`` naming the first unsorted or duplicate entry."""
    if len(values):
        _check_increasing(np.asarray(values), None, path, column)


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


def forward_fill_nonfinite(values: np.ndarray, names: Sequence[str], *, source: str) -> int:
    """Repair NaN/inf in place: last finite value forward, the first finite one backward.

    Warns with the count of repaired cells; a column without any finite value is an error.
    """
    bad_cols = nonfinite_columns(values)
    repaired = 0
    for j in bad_cols:
        col = values[:, j]
        ok = np.isfinite(col)
        if not ok.any():
            raise ESAInputError("channel holds no finite value", path=source, column=names[j])
        idx = np.where(ok, np.arange(len(col)), 0)
        np.maximum.accumulate(idx, out=idx)
        idx[: np.argmax(ok)] = np.argmax(ok)
        repaired += int((~ok).sum())
        values[:, j] = col[idx]
    if repaired:
        warnings.warn(
            f"{source}: repaired {repaired} NaN/inf value(s) in {len(bad_cols)} channel(s) by "
            "forward fill",
            stacklevel=3,
        )
    return repaired


def zero_nonfinite(commands: np.ndarray, *, source: str) -> int:
    """Telecommand cells that are NaN/inf become 0 (no pulse), with a warning."""
    n = 0
    for j in nonfinite_columns(commands):
        bad = ~np.isfinite(commands[:, j])
        n += int(bad.sum())
        commands[bad, j] = 0
    if n:
        warnings.warn(f"{source}: set {n} NaN/inf telecommand value(s) to 0", stacklevel=3)
    return n


def runs(index: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of consecutive integers in a sorted index array, as inclusive pairs."""
    if len(index) == 0:
        return []
    breaks = np.flatnonzero(np.diff(index) != 1)
    starts = index[np.r_[0, breaks + 1]]
    ends = index[np.r_[breaks, len(index) - 1]]
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]


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
        found += [(a, b, code) for a, b in runs(rows[(sub == code).any(axis=1)])]
    found.sort()
    records = []
    for k, (a, b, code) in enumerate(found):
        block = labels[a : b + 1] == code
        for j in np.flatnonzero(block.any(axis=0)):
            for s, e in runs(np.flatnonzero(block[:, j])):
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


# ------------------------------------------------------------------------------------- cache
def read_through_cache(
    folder: Path, use_cache: bool, build: Callable[[ArrayStore], tuple[dict, dict]]
) -> tuple[dict, dict]:
    """(arrays, info) from the cache entry ``folder`` if complete, else ``build(store)``.

    ``build`` allocates its outputs with ``store.empty``: when caching, they are ``.npy`` files
    of the entry being written (memory bounded by the reader's batches, not the file), renamed
    into place when complete and returned memory-mapped. Stale temporaries of interrupted
    writers in the cache folder are removed first. The cache is optional: when it cannot be
    written (full disk, read-only folder) a warning says so and the arrays are built in RAM.
    """
    if not use_cache:
        return build(ArrayStore())
    clean_cache_dir(folder.parent)
    cached = load_array_cache(folder)
    if cached is not None:
        return cached
    try:
        with atomic_folder(folder) as tmp:
            store = ArrayStore(tmp)
            arrays, info = build(store)
            store.finish(arrays)
            del arrays  # unmap before the folder is renamed
            write_json_atomic(tmp / "manifest.json", {"arrays": sorted(store.names), "info": info})
    except (OSError, ESAInputError) as exc:
        if isinstance(exc, ESAInputError) and not isinstance(exc.__cause__, OSError):
            raise  # bad input, not a cache problem
        warnings.warn(f"could not write the cache {folder}: {exc}", stacklevel=2)
        return build(ArrayStore())
    cached = load_array_cache(folder)
    if cached is None:
        raise ESAInputError("cache entry unreadable right after writing it", path=folder)
    return cached


def load_array_cache(folder: Path) -> tuple[dict[str, np.ndarray], dict] | None:
    """The arrays (memory-mapped, read-only) and info of a complete cache entry, else None."""
    manifest = Path(folder) / "manifest.json"
    if not manifest.is_file():
        return None
    try:
        spec = json.loads(manifest.read_text())
        arrays = {n: np.load(Path(folder) / f"{n}.npy", mmap_mode="r") for n in spec["arrays"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return arrays, spec["info"]


def clean_cache_dir(cache_dir: str | Path) -> None:
    """Drop leftovers of cache writes killed half-way (older than an hour: not a live writer)."""
    remove_stale_temporaries(cache_dir, min_age_s=STALE_AFTER_S)
