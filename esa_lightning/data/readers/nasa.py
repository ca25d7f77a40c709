"""Reader of the NASA telemanom layout (SMAP / MSL, Hundman et al. 2018) into a ``Mission``.

Layout: ``train/<chan>.npy`` and ``test/<chan>.npy`` (float [T, 1 + K]: column 0 the telemetry
value, columns 1..K 0/1 commands) and ``labeled_anomalies.csv`` (chan_id, spacecraft,
anomaly_sequences, class, num_values). ``anomaly_sequences`` holds inclusive ``[start, end]``
index pairs into the test array.

Every channel is an independent series (different lengths, not aligned in time), so the
returned ``Mission`` is a container: ``series`` maps each channel to its own single-channel
``Mission`` whose timestamps are ``np.arange(-T_train, T_test)``: test rows carry their original
test indices (the numbers in ``labeled_anomalies.csv``) and training rows are negative.

The public release's csv lists SMAP and MSL together while a folder usually holds one of them:
channels of a spacecraft without any files are skipped; a channel of a spacecraft that is
present (or asked for with ``spacecraft=``) must have both files.

Quirks of the published csv that are accepted:

- a channel listed on several rows (the public release lists SMAP ``P-2`` twice): its rows'
  sequences are merged, overlapping ones into one event (``[[5350, 6575]]`` and
  ``[[5300, 6420]]`` become ``[[5300, 6575]]``; separate ones stay separate events, in row
  order), with a warning naming the channel. The rows must agree on ``spacecraft`` and
  ``num_values`` (the test file's length has to match it), else an ``ESAInputError`` names both.
  The merged event's class is its rows' classes, distinct, joined by ``/``;
- sequences listed out of order (MSL ``P-11``) are kept in the listed order, and a sequence
  ending on the test array's last row (MSL ``F-8``) is inside it; one ending past it is an error;
- ``class`` names with or without quotes, mixed classes in one row, and stray spaces around
  any cell (``" SMAP "``) are read as the plain values.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from tokenize import TokenError

import numpy as np
import pandas as pd

from esa_lightning.data.array_store import ArrayStore
from esa_lightning.data.mission import EVENT_COLUMNS, Mission, empty_events
from esa_lightning.data.readers.common import WITHOUT_READING, one_line, other_layout_hint
from esa_lightning.data.readers.file_names import refuse_path_names
from esa_lightning.data.readers.nonfinite import (
    ranges_without_reading,
    repair_values,
    zero_nonfinite,
)
from esa_lightning.data.selection import ChannelSpec, select_channels, split_points_by_fraction
from esa_lightning.errors import ESAInputError, user_stacklevel

LABELS_FILE = "labeled_anomalies.csv"
REQUIRED = ["chan_id", "spacecraft", "anomaly_sequences", "class", "num_values"]


def read_nasa(
    root: str | Path,
    *,
    channels: ChannelSpec = "all",
    spacecraft: str | None = None,
    val_fraction: float | None = None,
) -> Mission:
    """Read a telemanom folder: one independent single-channel ``Mission`` per channel."""
    root = Path(root)
    other_layout = "" if (root / LABELS_FILE).is_file() else other_layout_hint(root, reads="nasa")
    if not root.is_dir() or other_layout:
        found = "not a NASA folder" if root.exists() else "no such folder"
        raise ESAInputError(found + other_layout, path=root)
    csv_path = root / LABELS_FILE
    listing = _read_listing(csv_path, spacecraft)
    table = pd.DataFrame(
        {
            "Channel": listing["chan_id"].tolist(),
            "Subsystem": [c.split("-")[0] for c in listing["chan_id"]],
            "Group": listing["chan_id"].tolist(),
            "Target": True,
            "Categorical": False,
        }
    )
    selected = select_channels(table, channels, source=str(csv_path))
    rows = listing.set_index("chan_id")
    series: dict[str, Mission] = {}
    for chan in selected["Channel"]:
        series[chan] = _read_channel(root, chan, rows.loc[chan], csv_path, val_fraction)
    frames = [m.events for m in series.values() if len(m.events)]
    events = pd.concat(frames, ignore_index=True) if frames else _with_class(empty_events("int64"))
    return Mission(
        name=root.name,
        values={chan: m.values[:, 0] for chan, m in series.items()},
        timestamps=None,
        channels=selected,
        labels=None,
        events=events,
        series=series,
        meta={"source": str(root), "spacecraft": sorted(set(listing["spacecraft"]))},
    )


def _read_listing(csv_path: Path, spacecraft: str | None) -> pd.DataFrame:
    """Rows of ``labeled_anomalies.csv`` for the channels this folder holds."""
    if not csv_path.is_file():
        raise ESAInputError("no such file", path=csv_path)
    try:
        listing = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.EmptyDataError) as exc:
        raise ESAInputError(
            f"cannot read the anomaly list: {one_line(exc)}", path=csv_path
        ) from None
    if not isinstance(listing.index, pd.RangeIndex):  # pandas took the extra leading cells
        raise ESAInputError(  # as an index: every column would be read shifted
            f"its rows hold more cells than the header's {len(listing.columns)} columns "
            '(a cell holding commas, as anomaly_sequences does, must be quoted: "[[5, 9]]")',
            path=csv_path,
        )
    listing.columns = [c.strip() for c in listing.columns]
    for col in REQUIRED:
        if col not in listing.columns:
            raise ESAInputError("missing column", path=csv_path, column=col)
    if listing.empty:
        raise ESAInputError("empty file (no channels listed)", path=csv_path)
    listing = listing.apply(lambda s: s.str.strip())
    empty = np.flatnonzero((listing["chan_id"] == "").to_numpy())
    if len(empty):  # else a channel named '' whose files train/.npy are missing
        raise ESAInputError(
            f"empty cell in row {empty[0] + 1} after the header", path=csv_path, column="chan_id"
        )
    refuse_path_names(listing["chan_id"], csv_path, "chan_id",
                      "train/<chan_id>.npy and test/<chan_id>.npy")
    listing["spacecraft"] = listing["spacecraft"].str.upper()  # as spacecraft= matches it
    root = csv_path.parent
    _warn_unlisted_files(root, set(listing["chan_id"]), csv_path)
    has_files = listing["chan_id"].map(
        lambda c: (root / "train" / f"{c}.npy").is_file() or (root / "test" / f"{c}.npy").is_file()
    )
    if spacecraft is not None:
        wanted = listing["spacecraft"].str.upper() == str(spacecraft).strip().upper()
        if not wanted.any():
            raise ESAInputError(
                f"no channel of this spacecraft; listed: {sorted(set(listing['spacecraft']))}",
                path=csv_path,
                column="spacecraft",
                value=spacecraft,
            )
    else:
        present = set(listing.loc[has_files, "spacecraft"])
        if not present:
            raise ESAInputError("no listed channel has files under train/ or test/", path=csv_path)
        wanted = listing["spacecraft"].isin(present)
    return _merge_repeated(listing[wanted].reset_index(drop=True), csv_path)


def _warn_unlisted_files(root: Path, listed: set[str], csv_path: Path) -> None:
    """Channel files without a row are not read: a forgotten row would drop a channel quietly."""
    files = {p.stem for part in ("train", "test") for p in (root / part).glob("*.npy")}
    unlisted = sorted(files - listed)
    if unlisted:
        more = f" and {len(unlisted) - 5} more" if len(unlisted) > 5 else ""
        warnings.warn(
            f"{csv_path}: {len(unlisted)} channel(s) with files under train/ or test/ have no "
            f"row and are not read: {', '.join(unlisted[:5])}{more}",
            stacklevel=user_stacklevel(),
        )


def _merge_repeated(listing: pd.DataFrame, csv_path: Path) -> pd.DataFrame:
    """One row per channel: the sequences of a channel listed on several rows are merged."""
    counts = listing["chan_id"].value_counts(sort=False)
    repeated = [c for c in listing["chan_id"].drop_duplicates() if counts[c] > 1]
    if not repeated:
        return listing
    listing = listing.copy()
    for chan in repeated:
        rows = listing[listing["chan_id"] == chan]
        for col in ("spacecraft", "num_values"):
            distinct = list(dict.fromkeys(_as_int(v) for v in rows[col]))
            if len(distinct) > 1:
                raise ESAInputError(
                    f"channel listed {len(rows)} times with different {col}: "
                    f"{', '.join(map(str, distinct))} (cannot tell which row is right)",
                    path=csv_path,
                    column=f"{chan}: {col}",
                    value=distinct[0],
                )
        pairs: list[tuple[int, int]] = []
        classes: list[str | None] = []
        for _, row in rows.iterrows():
            found = _sequence_pairs(row["anomaly_sequences"], csv_path, chan)
            for a, b in found:
                if not 0 <= a <= b:
                    raise ESAInputError(
                        f"sequence [{a}, {b}] does not lie inside the test array",
                        path=csv_path,
                        column=f"{chan}: anomaly_sequences",
                        value=row["anomaly_sequences"],
                    )
            pairs += found
            classes += _parse_classes(row["class"], len(found), csv_path, chan)
        merged, merged_classes = _merge_overlapping(pairs, classes)
        first = rows.index[0]
        merged_text = json.dumps([list(p) for p in merged])
        listing.at[first, "anomaly_sequences"] = merged_text
        listing.at[first, "class"] = "[" + ", ".join(map(str, merged_classes)) + "]"
        warnings.warn(
            f"{csv_path}: channel {chan} is listed {len(rows)} times; merged its anomaly "
            f"sequences {' + '.join(rows['anomaly_sequences'])} into {merged_text}",
            stacklevel=user_stacklevel(),
        )
    return listing[~listing["chan_id"].duplicated()].reset_index(drop=True)


def _as_int(text: str) -> int | str:
    try:
        return int(text)
    except ValueError:
        return text


def _merge_overlapping(
    pairs: list[tuple[int, int]], classes: list[str | None]
) -> tuple[list[tuple[int, int]], list[str | None]]:
    """Sequences sharing a row become one (sorted by start); without overlaps, unchanged."""
    order = sorted(range(len(pairs)), key=lambda k: pairs[k])
    if all(pairs[a][1] < pairs[b][0] for a, b in zip(order, order[1:], strict=False)):
        return pairs, classes
    merged: list[list] = []
    for k in order:
        start, end = pairs[k]
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
            if classes[k] not in merged[-1][2]:
                merged[-1][2].append(classes[k])
        else:
            merged.append([start, end, [classes[k]]])
    return [(a, b) for a, b, _ in merged], ["/".join(map(str, c)) for _, _, c in merged]


def _load_array(path: Path, chan: str) -> np.ndarray:
    if not path.is_file():
        raise ESAInputError(
            "channel listed in labeled_anomalies.csv but file missing", path=path, column=chan
        )
    try:
        # memory-mapped: a corrupt header claiming a huge shape fails instead of allocating
        array = np.load(path, allow_pickle=False, mmap_mode="r")
    except (OSError, ValueError, EOFError, SyntaxError, TokenError, MemoryError) as exc:
        # numpy's words ("EOF: reading array header", advice to load pickled data unsafely)
        # stay in the chained traceback (--debug)
        raise ESAInputError(
            "not a readable .npy array of numbers (damaged, cut short, holding Python objects, "
            "or another format): write it again with numpy.save, a 2-D array of numbers",
            path=path, column=chan,
        ) from exc
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ESAInputError(
            f"expected a non-empty 2-D array, got shape {array.shape}", path=path, column=chan
        )
    real = np.issubdtype(array.dtype, np.number) or array.dtype == bool
    if not real or np.issubdtype(array.dtype, np.complexfloating):  # a cast drops .imag
        raise ESAInputError(f"not a real-valued array ({array.dtype})", path=path, column=chan)
    return array


def _read_channel(
    root: Path, chan: str, row: pd.Series, csv_path: Path, val_fraction: float | None
) -> Mission:
    train_path, test_path = root / "train" / f"{chan}.npy", root / "test" / f"{chan}.npy"
    train, test = _load_array(train_path, chan), _load_array(test_path, chan)
    if train.shape[1] != test.shape[1]:
        raise ESAInputError(
            f"train has {train.shape[1]} columns, test {test.shape[1]}", path=test_path, column=chan
        )
    try:
        num_values = int(row["num_values"])
    except ValueError:
        raise ESAInputError(
            "num_values is not an integer", path=csv_path, column=chan, value=row["num_values"]
        ) from None
    if num_values != len(test):
        raise ESAInputError(
            f"num_values is {num_values} but the test array has {len(test)} rows",
            path=test_path,
            column=chan,
            value=num_values,
        )
    sequences = parse_sequences(row["anomaly_sequences"], len(test), csv_path, chan)
    classes = _parse_classes(row["class"], len(sequences), csv_path, chan)
    merged, merged_classes = _merge_overlapping(sequences, classes)
    if merged != sequences:  # one row's overlapping sequences: one event, as across rows
        warnings.warn(
            f"{csv_path}: channel {chan}'s anomaly sequences {row['anomaly_sequences']} "
            f"overlap; merged into {json.dumps([list(p) for p in merged])}",
            stacklevel=user_stacklevel(),
        )
        sequences, classes = merged, merged_classes

    with np.errstate(over="ignore"):  # beyond float32: inf, repaired below naming the files
        both = np.concatenate([train, test]).astype(np.float32)
    if not np.isfinite(both[: len(train), 0]).any():  # the repair would fill it from test rows
        raise ESAInputError(
            "the training file holds no finite value in column 0 (the telemetry value; NaN, "
            "inf or beyond float32's range): nothing to train on",
            path=train_path,
            column=chan,
        )
    values = np.ascontiguousarray(both[:, :1])
    commands = np.ascontiguousarray(both[:, 1:])
    n_train, val_start = len(train), split_points_by_fraction(len(train), val_fraction)
    where = f"{train_path}, {test_path}"
    found = repair_values(values, [chan], source=where, store=ArrayStore())
    zero_nonfinite(commands, source=where)

    labels = np.zeros((len(both), 1), dtype=np.uint8)
    for start, end in sequences:
        labels[n_train + start : n_train + end + 1, 0] = 1
    events = pd.DataFrame(
        {
            "ID": [f"{chan}_{k}" for k in range(len(sequences))],
            "Channel": [chan] * len(sequences),
            "StartTime": np.array([s for s, _ in sequences], dtype=np.int64),
            "EndTime": np.array([e for _, e in sequences], dtype=np.int64),
            "Category": ["Anomaly"] * len(sequences),
            "Class": classes,
        },
    ).astype({"ID": object, "Channel": object, "Category": object, "Class": object})
    channel_table = pd.DataFrame(
        {
            "Channel": [chan],
            "Subsystem": [chan.split("-")[0]],
            "Group": [chan],
            "Target": [True],
            "Categorical": [False],
        }
    )
    return Mission(
        name=chan,
        values=values,
        timestamps=np.arange(-n_train, len(test), dtype=np.int64),
        channels=channel_table,
        labels=labels,
        events=events,
        telecommands=commands,
        telecommand_names=[f"cmd_{i}" for i in range(1, commands.shape[1] + 1)],
        unrepresentable_cells=found.cells,
        test_start=n_train,
        val_start=val_start,
        meta={
            "spacecraft": row["spacecraft"],
            "source": str(test_path),
            WITHOUT_READING: ranges_without_reading(
                found.finite, [chan], val_start, n_train, len(both)
            ),
        },
    )


def parse_sequences(text: str, n_test: int, path: Path | str, chan: str) -> list[tuple[int, int]]:
    """``"[[550, 750], [2100, 2210]]"`` -> inclusive (start, end) pairs inside the test array."""
    pairs = _sequence_pairs(text, path, chan)
    for a, b in pairs:
        if not 0 <= a <= b < n_test:
            raise ESAInputError(
                f"sequence [{a}, {b}] does not lie inside the test array (0..{n_test - 1})",
                path=path,
                column=f"{chan}: anomaly_sequences",
                value=text,
            )
    return pairs


def _sequence_pairs(text: str, path: Path | str, chan: str) -> list[tuple[int, int]]:
    """The (start, end) integer pairs of an ``anomaly_sequences`` cell, in the listed order."""
    try:
        raw = json.loads(text)
    except (TypeError, ValueError, RecursionError):
        raw = None
    ok = isinstance(raw, list) and all(
        isinstance(p, list)
        and len(p) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in p)
        for p in raw
    )
    if not ok:
        raise ESAInputError(
            "anomaly_sequences must be a list of [start, end] integer pairs",
            path=path,
            column=f"{chan}: anomaly_sequences",
            value=text,
        )
    for a, b in raw:
        if a > b:
            raise ESAInputError(
                f"sequence [{a}, {b}] ends before it starts",
                path=path,
                column=f"{chan}: anomaly_sequences",
                value=text,
            )
    return [(int(a), int(b)) for a, b in raw]


def _parse_classes(text: str, n: int, path: Path, chan: str) -> list[str | None]:
    """``"[point, contextual]"`` (unquoted names) -> one class per sequence."""
    inner = text.strip()
    if not (inner.startswith("[") and inner.endswith("]")):
        raise ESAInputError(
            "class must be a bracketed list", path=path, column=f"{chan}: class", value=text
        )
    names = [c.strip().strip("'\"") for c in inner[1:-1].split(",") if c.strip()]
    if len(names) != n:
        raise ESAInputError(
            f"{len(names)} classes for {n} anomaly sequences",
            path=path,
            column=f"{chan}: class",
            value=text,
        )
    return names


def _with_class(events: pd.DataFrame) -> pd.DataFrame:
    events = events[EVENT_COLUMNS].copy()
    events["Class"] = pd.Series([], dtype=object)
    return events
