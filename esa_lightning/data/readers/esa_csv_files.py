"""The files of an ESA-ADB preprocessed CSV export and what describes them, for ``esa_csv``:
the training and test files of a ``root``, each file's header split into channel and
telecommand columns, and ``channels.csv`` beside them as the project's channel table."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

from esa_lightning.data.mission import CHANNEL_TABLE_COLUMNS, default_channel_table
from esa_lightning.data.readers.common import (
    check_no_index_taken,
    clean_names,
    name_undescribed,
    one_line,
    other_layout_hint,
)
from esa_lightning.data.readers.header_line import refuse_long_header
from esa_lightning.errors import ESAInputError, quoted

TIMESTAMP = "timestamp"
LABEL_PREFIX = "is_anomaly_"
TELECOMMAND_PREFIX = "telecommand_"


def locate_files(root: Path) -> tuple[Path, Path | None]:
    """(training file, test file or None) of ``root``: a CSV file, or a folder holding one
    ``*.train.csv`` and at most one ``*.test.csv``."""
    if root.is_file():
        if other_layout := other_layout_hint(root, reads="esa_csv"):  # a .parquet file
            raise ESAInputError("not a CSV file" + other_layout, path=root)
        return root, None
    if not root.is_dir():
        raise ESAInputError("no such file or folder", path=root)
    trains = sorted(root.glob("*.train.csv"))
    tests = sorted(root.glob("*.test.csv"))
    if len(trains) != 1:
        found = [p.name for p in trains] or "none"
        other_layout = "" if trains else other_layout_hint(root, reads="esa_csv")
        raise ESAInputError(
            f"need exactly one *.train.csv in the folder (found {found}); pass the file "
            f"instead{other_layout}",
            path=root,
        )
    if len(tests) > 1:
        raise ESAInputError(
            f"more than one *.test.csv in the folder: {[p.name for p in tests]}", path=root
        )
    for path in (*trains, *tests):  # a pipe, or a link to /dev/zero, would be read forever
        if not path.is_file():
            raise ESAInputError("not a regular file (a pipe, a device or a folder)", path=path)
    return trains[0], (tests[0] if tests else None)


def mission_name(root: Path) -> str:
    """``root``'s name without ``.csv``, ``.train`` and ``.test``: ``3_months``."""
    name = root.name
    for suffix in (".csv", ".train", ".test"):
        name = name.removesuffix(suffix)
    return name


def read_header(path: Path) -> list[str]:
    """The column names of ``path``'s header line (``clean_names``); it must hold the timestamp."""
    try:
        refuse_long_header(path)  # a file without line breaks is not read whole
        with open(path, newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f), None)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ESAInputError(f"cannot read the header: {one_line(exc)}", path=path) from None
    if not header:
        raise ESAInputError("empty file (no header line)", path=path)
    # an unnamed column would be a channel named "" whose labels is_anomaly_ are missing
    header = clean_names(
        header,
        path,
        unnamed_hint=" (a DataFrame index written by to_csv without index=False, or a "
        "trailing comma)",
    )
    if TIMESTAMP not in header:
        other = [c for c in (";", "\t", "|") if len(header) == 1 and c in header[0]]
        hint = (f" (the header is one column of names separated by {other[0]!r}: the file must "
                "be comma-separated)") if other else ""
        raise ESAInputError(f"missing the timestamp column{hint}", path=path, column=TIMESTAMP)
    refuse_orphan_labels(header, path)
    return header


def refuse_orphan_labels(header: list[str], path: Path) -> None:
    """Refuse an ``is_anomaly_<column>`` whose ``<column>`` the file lacks: its labels belong
    to no channel or telecommand read, and would be dropped without a word (a column renamed
    or left out, a misspelt label column)."""
    present = set(header)
    for h in header:
        if h.startswith(LABEL_PREFIX) and h.removeprefix(LABEL_PREFIX) not in present:
            raise ESAInputError(
                f"a label column without its value column (no column "
                f"{quoted(h.removeprefix(LABEL_PREFIX))} in the file): its labels would be "
                "read for no channel",
                path=path,
                column=h,
            )


def split_header(header: list[str], path: Path) -> tuple[list[str], list[str]]:
    """(channel columns, telecommand columns) in file order."""
    value_cols = [h for h in header if h != TIMESTAMP and not h.startswith(LABEL_PREFIX)]
    telecommands = [h for h in value_cols if h.startswith(TELECOMMAND_PREFIX)]
    chans = [h for h in value_cols if not h.startswith(TELECOMMAND_PREFIX)]
    if not chans:
        raise ESAInputError("no channel columns", path=path)
    return chans, telecommands


def channel_table(path: Path, channel_cols: list[str]) -> pd.DataFrame:
    """``channels.csv`` beside the data (YES/NO flags to bools) or the default table."""
    if not path.is_file():
        return default_channel_table(channel_cols)
    listed = read_channel_table(path)
    table = listed[listed["Channel"].isin(set(channel_cols))]
    extra = [c for c in channel_cols if c not in set(table["Channel"])]
    if extra:  # channels it does not list: their own groups, one subsystem, as without it
        unlisted = default_channel_table(extra).assign(Group=None, Subsystem=None)
        table = name_undescribed(pd.concat([table, unlisted], ignore_index=True), taken=listed)
    order = {c: i for i, c in enumerate(channel_cols)}
    return table.sort_values("Channel", key=lambda s: s.map(order)).reset_index(drop=True)


def read_channel_table(path: Path) -> pd.DataFrame:
    """An ESA ``channels.csv`` as the project's channel table (Target/Categorical as bools)."""
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise ESAInputError(f"cannot read the channel table: {one_line(exc)}", path=path) from None
    check_no_index_taken(raw, path)
    raw.columns = [c.strip() for c in raw.columns]
    if "Channel" not in raw.columns:
        raise ESAInputError("missing column", path=path, column="Channel")
    table = raw.copy()
    table["Channel"] = table["Channel"].str.strip()
    empty = np.flatnonzero((table["Channel"] == "").to_numpy())
    if len(empty):  # its subsystem, group and flags would go to no channel
        raise ESAInputError(
            f"empty cell in row {empty[0] + 1} after the header", path=path, column="Channel"
        )
    dup = table["Channel"][table["Channel"].duplicated()]
    if len(dup):  # each row would become one more column of the same channel
        raise ESAInputError("duplicate channel", path=path, column="Channel", value=dup.iloc[0])
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
