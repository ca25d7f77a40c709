"""The raw ESA reader's tables: ``channels.csv``, ``telecommands.csv`` and ``labels.csv`` joined
with ``anomaly_types.csv`` (the layout ``readers.esa_adb`` describes), validated, and the member
file each channel or telecommand names."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from esa_lightning.data.mission import CATEGORY_TO_CODE
from esa_lightning.data.readers.common import check_no_index_taken
from esa_lightning.data.readers.file_names import refuse_path_names
from esa_lightning.data.selection import NS_RANGE
from esa_lightning.errors import ESAInputError, quoted, user_stacklevel
from esa_lightning.io import not_a_file

CHANNEL_COLUMNS = ["Channel", "Subsystem", "Group", "Target", "Categorical"]
TELECOMMAND_COLUMNS = ["Telecommand", "Priority"]
LABEL_COLUMNS = ["ID", "Channel", "StartTime", "EndTime"]
ANOMALY_TYPE_COLUMNS = ["ID", "Category"]
ANOMALY_TYPE_OPTIONAL = ["Class", "Subclass", "Dimensionality", "Locality", "Length"]
EVENT_TABLE_COLUMNS = ["ID", "Channel", "StartTime", "EndTime", "Category", *ANOMALY_TYPE_OPTIONAL]


def _unparsed(exc: pd.errors.ParserError | UnicodeDecodeError) -> str:
    """Why a table could not be parsed, in a user's words: the byte that is not UTF-8 (not the
    codec's message, whose offset counts from a chunk), or the parser's finding without its
    "C error" prefix."""
    if isinstance(exc, UnicodeDecodeError):
        return (f"not UTF-8 text (it holds the byte 0x{exc.object[exc.start]:02x}): save it "
                "as a UTF-8 CSV")
    reason = " ".join(str(exc).split()).replace("Error tokenizing data. C error: ", "")
    return f"not a readable CSV ({reason}): fix that line or write the table again"


def _read_csv(path: Path, required: Sequence[str]) -> pd.DataFrame:
    """The table as text: names like ``NA`` or ``null`` are kept; only empty cells are missing."""
    if not path.is_file():
        raise ESAInputError("file not found", path=path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:  # a table of no rows still has its header line
        raise ESAInputError(f"empty file (no header line; a table of no rows is its header "
                            f"line alone: {','.join(required)})", path=path) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ESAInputError(_unparsed(exc), path=path) from None
    check_no_index_taken(df, path)
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ESAInputError(
            f"missing column(s) {missing}; found {list(df.columns)}", path=path, column=missing[0]
        )
    return df


def _names(df: pd.DataFrame, column: str, path: Path) -> pd.Series:
    """``column`` as stripped strings; an empty cell is an error naming its row."""
    text = df[column].astype(str).str.strip()
    empty = df[column].isna() | (text == "")
    if empty.any():
        row = int(np.flatnonzero(empty.to_numpy())[0]) + 1
        raise ESAInputError(f"empty cell in row {row} after the header", path=path, column=column)
    return text


def _file_names(df: pd.DataFrame, column: str, path: Path) -> pd.Series:
    """``_names`` of a column naming files ``<folder>/<name>.zip``: one holding a path
    separator would read a file elsewhere (``../x`` outside the mission folder)."""
    text = _names(df, column, path)
    refuse_path_names(text, path, column, f"{column.lower()}s/<name>.zip")
    return text


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


def read_channel_table(path: Path) -> pd.DataFrame:
    df = _read_csv(path, CHANNEL_COLUMNS)
    df["Channel"] = _file_names(df, "Channel", path)
    dup = df["Channel"][df["Channel"].duplicated()]
    if len(dup):
        raise ESAInputError("duplicate channel", path=path, column="Channel", value=dup.iloc[0])
    for col in ("Target", "Categorical"):
        df[col] = _yes_no(df, col, path)
    return df.reset_index(drop=True)


def member_file(root: Path, folder: str, name: str) -> Path:
    base = root / folder
    if not base.is_dir():
        raise ESAInputError(f"folder {folder}/ not found", path=base)
    candidates = (base / f"{name}.zip", base / f"{name}.pkl", base / name)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    there = next((c for c in candidates if c.exists()), None)
    if there is not None:  # a folder (an unzipped download) where the file belongs
        raise ESAInputError(f"{not_a_file(there)}: {name!r} is read from one file, "
                            f"{folder}/{name}.zip (or .pkl)", path=there)
    raise ESAInputError(f"no file for {name!r}: it is read from {folder}/{name}.zip (or .pkl)",
                        path=base / f"{name}.zip")


def read_telecommand_table(root: Path, priority: int) -> tuple[list[str], list[Path], list[str]]:
    """(selected names, their files, all names); no telecommands.csv means no telecommands."""
    path = root / "telecommands.csv"
    if not path.is_file():
        return [], [], []
    df = _read_csv(path, TELECOMMAND_COLUMNS)
    df["Telecommand"] = _file_names(df, "Telecommand", path)
    prio = pd.to_numeric(df["Priority"], errors="coerce")
    if prio.isna().any():
        bad = df["Priority"][prio.isna()].iloc[0]
        raise ESAInputError("priority must be a number", path=path, column="Priority", value=bad)
    names = list(df.loc[prio >= priority, "Telecommand"])
    return names, [member_file(root, "telecommands", n) for n in names], list(df["Telecommand"])


def _parse_times(values: pd.Series, path: Path, column: str) -> np.ndarray:
    """Times as naive UTC datetime64[ns]; strings with a timezone are converted to UTC."""
    try:
        parsed = pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError):
        try:
            parsed = pd.to_datetime(values, utc=True, format="mixed")
        except (ValueError, TypeError):  # the first cell that is no time is named below
            parsed = pd.to_datetime(values, utc=True, format="mixed", errors="coerce")
    if parsed.isna().any():  # named by its row (1 = the first after the header)
        i = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        bad, where = values.iloc[i], f"in row {i + 1} after the header"
        if pd.isna(bad):
            raise ESAInputError(f"empty cell {where}: a time is needed", path=path, column=column)
        raise ESAInputError(f"not a time {where}: write it as 2000-01-01 00:00:41 (a time "
                            "zone, +01:00 or Z, may follow)", path=path, column=column, value=bad)
    naive = parsed.dt.tz_localize(None)
    try:  # pandas parses in s / us: a cast with astype would wrap 2584 onto 2000
        return naive.dt.as_unit("ns").to_numpy()
    except (ValueError, OverflowError):  # OutOfBoundsDatetime
        outside = (naive < pd.Timestamp.min) | (naive > pd.Timestamp.max)
        bad = values[outside].iloc[0]
        raise ESAInputError(f"time {NS_RANGE}", path=path, column=column, value=bad) from None


def read_events(root: Path, known: set[str]) -> pd.DataFrame:
    """labels.csv joined with anomaly_types.csv: one row per (ID, Channel, segment)."""
    labels_path, types_path = root / "labels.csv", root / "anomaly_types.csv"
    if not labels_path.is_file():
        return _empty_event_table()
    labels = _read_csv(labels_path, LABEL_COLUMNS)
    if not types_path.is_file():
        if labels.empty:  # a header-only labels.csv: no events, so no types to look up
            return _empty_event_table()
        raise ESAInputError(f"file not found (needed by the labels in {labels_path})",
                            path=types_path)
    types = _read_csv(types_path, ANOMALY_TYPE_COLUMNS)
    labels["ID"] = _names(labels, "ID", labels_path)
    labels["Channel"] = _names(labels, "Channel", labels_path)
    types["ID"] = _names(types, "ID", types_path)
    unknown = np.flatnonzero(~labels["Channel"].isin(known).to_numpy())
    if len(unknown):
        raise ESAInputError(
            f"row {unknown[0] + 1} after the header names a channel that neither channels.csv "
            "nor telecommands.csv lists: correct the label's Channel, or add the channel",
            path=labels_path,
            column="Channel",
            value=labels["Channel"].iloc[unknown[0]],
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
    events = _merge_overlaps(_drop_exact_duplicates(events, labels_path), labels_path)
    events = events.merge(types[["ID", "Category", *ANOMALY_TYPE_OPTIONAL]], on="ID", how="left")
    return events[EVENT_TABLE_COLUMNS].reset_index(drop=True)


def _drop_exact_duplicates(events: pd.DataFrame, path: Path) -> pd.DataFrame:
    """``events`` (labels.csv's rows, in file order) without the rows that repeat an earlier
    row's ID, Channel, StartTime and EndTime (times compared once parsed, so the same time
    spelt with a zone is the same), with a warning naming ``path`` and the first repeats by
    row (from 1 after the header) and ID. A repeated segment is one segment read twice (a
    file written twice into one): the event table would list it twice, and the mission's
    segment count with it. The same ID on the same channel at other times is another segment
    of that event (ESA-ADB's events span several) and is kept."""
    repeat = events.duplicated(keep="first").to_numpy()
    if not repeat.any():
        return events
    first_row = events.groupby(list(events.columns), sort=False).ngroup().to_numpy()
    first_of = {g: i for i, g in reversed(list(enumerate(first_row)))}
    rows = np.flatnonzero(repeat)
    ids = events["ID"].to_numpy()
    named = [f"row {i + 1} (ID {quoted(ids[i])}) repeats row {first_of[first_row[i]] + 1}"
             for i in rows[:5]]
    warnings.warn(
        f"{path}: {len(rows)} duplicate row(s) (the same ID, Channel, StartTime and EndTime as "
        f"an earlier row) are read once: {', '.join(named)}{' ...' * (len(rows) > 5)} (rows "
        "counted from 1 after the header)",
        stacklevel=user_stacklevel(),
    )
    return events.loc[~repeat]  # its index: the rows of labels.csv (from 0 after the header)


def _merge_overlaps(events: pd.DataFrame, path: Path) -> pd.DataFrame:
    """``events`` (indexed by labels.csv's rows) with the segments of one ID on one channel
    that overlap or touch (closed spans sharing a point) read as one, their union, in the row
    of the one that starts first; with a warning naming ``path`` and the first merged rows
    (from 1 after the header). The metrics join them so before counting (``metrics.intervals.
    merge_grouped``), and the rows they mark are the union's: only ``Mission.events`` listed
    the pieces, and a user counting an event's segments per channel counted each."""
    if len(events) < 2:
        return events.reset_index(drop=True)
    group = events.groupby(["ID", "Channel"], sort=False).ngroup().to_numpy()
    starts = events["StartTime"].to_numpy().astype(np.int64)
    ends = events["EndTime"].to_numpy().astype(np.int64)
    order = np.lexsort((starts, group))
    g, s = group[order], starts[order]
    first = np.ones(len(g), dtype=bool)
    first[1:] = g[1:] != g[:-1]
    reach = pd.Series(ends[order]).groupby(np.cumsum(first)).cummax().to_numpy()
    new_block = first.copy()
    new_block[1:] |= s[1:] > reach[:-1]
    if new_block.all():
        return events.reset_index(drop=True)
    block = np.cumsum(new_block) - 1
    heads = order[new_block]  # per block, the position of its first-starting row
    last = np.r_[np.flatnonzero(new_block)[1:] - 1, len(g) - 1]
    out = events.copy()
    out.iloc[heads, out.columns.get_loc("EndTime")] = reach[last].astype("datetime64[ns]")
    head_of = np.empty(len(g), dtype=np.int64)  # per row: the row it is merged into
    head_of[order] = heads[block]
    gone = np.sort(order[~new_block])  # file order
    rows = events.index.to_numpy()
    ids = events["ID"].to_numpy()
    named = [f"row {rows[i] + 1} (ID {quoted(ids[i])}) into row {rows[head_of[i]] + 1}"
             for i in gone[:5]]
    warnings.warn(
        f"{path}: {len(gone)} segment(s) overlap or touch another segment of the same ID on "
        f"the same channel and are read merged into it (their union): {', '.join(named)}"
        f"{' ...' * (len(gone) > 5)} (rows counted from 1 after the header)",
        stacklevel=user_stacklevel(),
    )
    keep = np.ones(len(out), dtype=bool)
    keep[gone] = False
    return out.loc[keep].reset_index(drop=True)


def _empty_event_table() -> pd.DataFrame:
    cols: dict[str, Any] = {c: pd.Series([], dtype=object) for c in EVENT_TABLE_COLUMNS}
    cols["StartTime"] = pd.Series([], dtype="datetime64[ns]")
    cols["EndTime"] = pd.Series([], dtype="datetime64[ns]")
    return pd.DataFrame(cols)
