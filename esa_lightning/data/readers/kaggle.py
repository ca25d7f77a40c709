"""Reader of the Kaggle ESA-ADB challenge layout into a ``Mission``.

Layout: a folder with ``train.parquet`` and/or ``test.parquet`` (``id``, ``channel_N``,
``telecommand_N``, ``is_anomaly`` in train only) and an optional ``target_channels.csv``; or one
parquet file: ``test.parquet`` is test data (scored on its labels if it has any),
``train.parquet`` training data, and a file of another name is training data when it has
``is_anomaly``, test data without it. A pandas index stored as a column
(``__index_level_0__``) is not a channel and is not read; a named one other than ``id``
(``df.set_index("channel_2")``) is refused naming it. Column names are read as esa_csv
reads its header (``readers.common.clean_names``): without surrounding spaces, none empty.

Choices worth knowing:
- Column projection: only the requested channels, the telecommands, ``id`` and ``is_anomaly``
  are read (``ParquetFile.iter_batches(columns=...)``), batch by batch into arrays allocated
  once from the file metadata's row count. Six channels of the 14.7 M-row train file cost six
  columns of I/O and memory, not 76.
- ``timestamps`` are the int64 ``id`` values (a float ``id`` column's whole numbers, 61.0 as
  pandas writes an integer column a NaN touched, are the ids they are; an id with a fraction
  is refused naming its row); train and test are concatenated and ``test_start = len(train)``.
  ids must increase strictly and the test ids follow the train ids.
- Kaggle publishes only the aggregated row label. ``Mission.labels`` [T, C] carries it on every
  channel as ``np.broadcast_to(row_label[:, None], (T, C))``: a read-only view that costs no
  memory. Per-channel metrics on Kaggle data are therefore not meaningful.
- ``is_anomaly`` is 0 or 1 (a bool column too); any other value is refused, not read as an
  ESA CSV code. A test part without it gets labels 0 and ``meta["test_labeled"] = False``.
- A column named ``is_anomaly_<x>`` (an ``esa_csv`` per-channel label; Kaggle's files have
  none) is refused, naming the file and the column: read as a channel, the labels would be a
  model input (label leakage).
- Events are the contiguous runs of the row label (``event_k``, Channel None, Category
  "Anomaly" for code 1).
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from esa_lightning.data.array_store import ArrayStore
from esa_lightning.data.mission import Mission, default_channel_table
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
    UNREADABLE_PARQUET,
    WITHOUT_READING,
    check_increasing,
    clean_names,
    events_from_labels,
    int64_ids,
    one_line,
    other_layout_hint,
    put_columns,
    type_words,
)
from esa_lightning.data.readers.digests import cache_key, change_stamps, source_identity
from esa_lightning.data.readers.esa_csv_files import TELECOMMAND_PREFIX
from esa_lightning.data.readers.nonfinite import (
    ranges_without_reading,
    repair_values,
    zero_nonfinite,
)
from esa_lightning.data.selection import (
    ChannelSpec,
    UnknownChannels,
    select_channels,
    split_points_by_fraction,
)
from esa_lightning.errors import ESAInputError, quoted
from esa_lightning.io import SETTINGS_LIMIT
from esa_lightning.settings.values import CHANNEL_WORDS

ID = "id"
LABEL = "is_anomaly"
CACHE_VERSION = 5  # 2: the unrepresentable-rows mark; 3: ids beyond int64, labels 0/1 refused;
# 4: the unrepresentable cells (row and channel) instead of rows; 5: finite_rows
BATCH_ROWS = 262144
UNNAMED_INDEX = re.compile(r"__index_level_\d+__")  # pandas' name for an unnamed index level


def read_kaggle(
    root: str | Path,
    *,
    channels: ChannelSpec = "all",
    val_fraction: float | None = None,
    include_test: bool = True,
    lightweight: Sequence[str] = (),
    cache_dir: str | os.PathLike | UserCacheDir | None = USER_CACHE_DIR,
    use_cache: bool = True,
) -> Mission:
    """Read a Kaggle challenge folder (or one parquet file) into a ``Mission``.

    ``channels`` picks the channel columns read (``all``, ``target`` from target_channels.csv,
    ``lightweight`` with ``lightweight`` names, or a list); validation is the last
    ``val_fraction`` of the training rows; ``include_test=False`` skips test.parquet. Arrays are
    cached under ``cache_dir`` (default: the user cache folder, ``readers.cache.user_cache_dir``;
    None: no cache) keyed by the files' identity and the selected columns.
    """
    root = Path(root)
    train_path, test_path, targets_path = _locate(root, include_test)
    parts = [p for p in (train_path, test_path) if p is not None]
    read_before = change_stamps(parts)  # the schemas are read before the files are hashed
    schemas = {p: _schema(p) for p in parts}
    first = parts[0]
    channel_cols, telecommand_cols = _split_schema(schemas[first], first)
    table = default_channel_table(channel_cols)
    if targets_path is not None:
        targets = _read_targets(targets_path, channel_cols)
        table["Target"] = table["Channel"].isin(targets)
    try:
        selected = select_channels(table, channels, lightweight=lightweight, source=str(first))
    except UnknownChannels as exc:
        raise _lacking(exc.names, parts, schemas, exc.words) or exc from None
    names = list(selected["Channel"])
    if channels is not None and channels not in CHANNEL_WORDS and (
        refused := _lacking(names, parts, schemas)
    ):
        raise refused  # named by the user or predict.py (the detector's): the file lacking them
    # a channel word's channels (the first file's) or a telecommand that a later file lacks
    absent = _absent([*names, *telecommand_cols], parts, schemas)
    for p in parts:  # every file's id and types, not only the first's
        _require_id(schemas[p], p)
        _refuse_channel_labels(schemas[p], p)
        if missing := absent.get(p):
            raise ESAInputError(f"missing column(s) {missing[:5]}", path=p, column=missing[0])
        read = [*names, *telecommand_cols, *([LABEL] if LABEL in schemas[p].names else [])]
        for c in read:
            _check_numeric(schemas[p], c, p)

    memo = cache_folder(cache_dir) if use_cache else None
    sources = source_identity(parts, memo)
    roles = ["train" if p == train_path else "test" for p in parts]  # a file's part: its name
    key = cache_key("kaggle", CACHE_VERSION, sources, names, telecommand_cols, roles)
    arrays, info = read_through_cache(
        cache_entry(cache_dir, key),
        use_cache,
        lambda store: _read_parts(train_path, test_path, schemas, names, telecommand_cols, store),
        paths=[root, *parts],
        read_before=read_before,
        layout=Layout(rows_layout(len(names), len(telecommand_cols), ids="int64",
                                  row_labels=("uint8", ("n",))),
                      counts=("n_train",), flags=("train_labeled", "test_labeled")),
    )

    n_train = int(info["n_train"])
    row = arrays["row_labels"]
    ids = arrays["ids"]
    labels = np.broadcast_to(row[:, None], (len(row), len(names)))
    val_start = split_points_by_fraction(n_train, val_fraction)
    return Mission(
        name=root.stem if root.is_file() else root.name,
        values=arrays["values"],
        timestamps=ids,
        channels=selected,
        labels=labels,
        events=events_from_labels(row[:, None], ids, [None]),
        telecommands=arrays["telecommands"],
        telecommand_names=list(telecommand_cols),
        unrepresentable_cells=arrays["unrepresentable_cells"],
        test_start=n_train,
        val_start=val_start,
        meta={
            "source": str(root),
            "files": [p.name for p in parts],
            "train_labeled": bool(info["train_labeled"]),
            "test_labeled": bool(info["test_labeled"]),
            "labels_broadcast": True,
            WITHOUT_READING: ranges_without_reading(
                arrays["finite_rows"], names, val_start, n_train, len(ids)
            ),
            "cache_key": key,
            PREPROCESSING_KEY: Preprocessing(index="id").to_dict(),
        },
    )


def _lacking(
    asked: list[str], parts: list[Path], schemas: dict[Path, pa.Schema], words: Sequence[str] = ()
) -> UnknownChannels | None:
    """The refusal of channels ``asked`` for that a file of ``parts`` lacks, or None. It names
    the test file where it lacks them (the rows predict.py's ``range=test`` and the inference
    container score; the training file is read before it), else the training file, with the
    other file where it lacks them too."""
    absent = _absent(asked, parts, schemas)
    if not absent:
        return None
    lacking = list(absent)
    named = lacking[-1]
    missing = [c for c in asked if any(c in absent[p] for p in lacking)]
    known = _split_schema(schemas[named], named)[0]
    return UnknownChannels(missing, known, str(named), words, [str(p) for p in lacking[:-1]])


def _absent(
    columns: Sequence[str], parts: list[Path], schemas: dict[Path, pa.Schema]
) -> dict[Path, list[str]]:
    """The ``columns`` each file of ``parts`` lacks (in their order), for the files (in
    ``parts``' order) that lack any: the one check behind both refusals of a missing column."""
    absent = {p: [c for c in columns if c not in schemas[p].names] for p in parts}
    return {p: cols for p, cols in absent.items() if cols}


# ---------------------------------------------------------------------------- locating files
def _locate(root: Path, include_test: bool) -> tuple[Path | None, Path | None, Path | None]:
    if root.is_file():
        if other_layout := other_layout_hint(root, reads="kaggle"):  # a .csv file
            raise ESAInputError("not a parquet file" + other_layout, path=root)
        # the challenge's names say which part a file is (the converter's test.parquet carries
        # is_anomaly); another name: labeled means training data
        if root.name == "test.parquet":
            return None, root, None
        if root.name == "train.parquet" or LABEL in _schema(root).names:
            return root, None, None
        return None, root, None
    if not root.is_dir():
        raise ESAInputError("no such file or folder", path=root)
    train = root / "train.parquet"
    test = root / "test.parquet"
    targets = root / "target_channels.csv"
    for part in (train, test):
        if part.is_dir():  # a partitioned dataset (Spark, Polars): never silently left out
            raise ESAInputError("a folder, not a parquet file: write it as one file", path=part)
    train_path = train if train.is_file() else None
    test_path = test if include_test and test.is_file() else None
    if train_path is None and test_path is None:
        other_layout = other_layout_hint(root, reads="kaggle")
        raise ESAInputError("no train.parquet or test.parquet in the folder" + other_layout,
                            path=root)
    return train_path, test_path, (targets if targets.is_file() else None)


def _schema(path: Path) -> pa.Schema:
    """The file's schema, its column names as esa_csv names columns (``clean_names``: without
    surrounding spaces, none empty). A named pandas index other than ``id`` is refused: it is
    data (``df.set_index("channel_2")``), where the unnamed ``__index_level_0__`` is row numbers
    that are not read."""
    try:
        raw = pq.ParquetFile(path).schema_arrow
    except FileNotFoundError:
        raise ESAInputError("no such file", path=path) from None
    except (OSError, pa.ArrowException, UnicodeDecodeError) as exc:
        raise ESAInputError(UNREADABLE_PARQUET, path=path) from exc
    names = clean_names(raw.names, path)
    pandas_json = (raw.metadata or {}).get(b"pandas", b"")
    if len(pandas_json) > SETTINGS_LIMIT:  # parsed, tiny JSON items take 20x their size
        raise ESAInputError(
            f"its pandas metadata is {len(pandas_json):,} bytes, more than "
            f"{SETTINGS_LIMIT >> 20} MiB; refused before it is parsed",
            path=path,
        )
    index = (raw.pandas_metadata or {}).get("index_columns", [])
    named = [c.strip() for c in index if isinstance(c, str) and not UNNAMED_INDEX.fullmatch(c)]
    named = [c for c in named if c != ID]  # an index named id is the id column
    if named:
        raise ESAInputError(
            "is the file's pandas index (DataFrame.set_index), which is not read: write it as a "
            "column with df.reset_index().to_parquet(...), or drop it with "
            "df.reset_index(drop=True)",
            path=path,
            column=named[0],
        )
    return pa.schema(
        [f.with_name(n) for f, n in zip(raw, names, strict=True)], metadata=raw.metadata
    )


def _batches(path: Path, columns: list[str]) -> Iterator[pa.RecordBatch]:
    """The file's ``columns`` (named as ``_schema`` names them) batch by batch."""
    pf = pq.ParquetFile(path)
    raw = dict(zip(clean_names(pf.schema_arrow.names, path), pf.schema_arrow.names, strict=True))
    for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=[raw[c] for c in columns]):
        yield pa.RecordBatch.from_arrays([batch.column(raw[c]) for c in columns], names=columns)


def _value_columns(schema: pa.Schema) -> list[str]:
    """Every column but ``id``, ``is_anomaly`` and a pandas index that ``DataFrame.to_parquet``
    stored as a column (``__index_level_0__`` once rows were dropped): row numbers, not data."""
    index = (schema.pandas_metadata or {}).get("index_columns", [])
    skip = {ID, LABEL, *(c.strip() for c in index if isinstance(c, str) and c.strip() != ID)}
    return [c for c in schema.names if c not in skip]


def _split_schema(schema: pa.Schema, path: Path) -> tuple[list[str], list[str]]:
    """(channel columns, telecommand columns) in file order; checks ``id`` and the types."""
    _require_id(schema, path)
    value_cols = _value_columns(schema)
    for c in value_cols:
        _check_numeric(schema, c, path)
    telecommands = [c for c in value_cols if c.startswith(TELECOMMAND_PREFIX)]
    chans = [c for c in value_cols if not c.startswith(TELECOMMAND_PREFIX)]
    if not chans:
        raise ESAInputError("no channel columns", path=path)
    return chans, telecommands


def _require_id(schema: pa.Schema, path: Path) -> None:
    """Refuse a file without an ``id`` column (every file's: the test file's is read too)."""
    if ID in schema.names:
        return
    index = (schema.pandas_metadata or {}).get("index_columns", [])
    if any(isinstance(c, dict) and c.get("name") == ID for c in index):
        raise ESAInputError(  # pandas kept a RangeIndex named id as metadata, not a column
            "id is the file's pandas index, stored as metadata and not as a column: write "
            "it with df.reset_index().to_parquet(...)",
            path=path,
            column=ID,
        )
    raise ESAInputError("missing the id column", path=path, column=ID)


def _refuse_channel_labels(schema: pa.Schema, path: Path) -> None:
    """Kaggle's files hold one row label: an ``is_anomaly_<x>`` column (esa_csv's per-channel
    label) would be read as a channel, an input the model trains on (label leakage)."""
    value_cols = _value_columns(schema)
    leak = [c for c in value_cols if c.startswith(LABEL + "_")]
    if leak:
        raise ESAInputError(
            f"a per-channel label column ({len(leak)} in all) would be read as a model input "
            f"(the Kaggle layout has one row label, {LABEL}): drop the {LABEL}_* columns "
            "before writing the parquet file, or write the mission as data=esa_csv, which "
            "reads them as per-channel labels",
            path=path,
            column=leak[0],
        )


def _check_numeric(schema: pa.Schema, column: str, path: Path) -> None:
    t = schema.field(column).type
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)):
        raise ESAInputError(f"column is not numeric (it holds {type_words(t)}): write it as "
                            "numbers", path=path, column=column)


def _read_targets(path: Path, channel_cols: list[str]) -> set[str]:
    """Channel names of ``target_channels.csv`` (one column; a header line is optional)."""
    try:
        table = pd.read_csv(path, header=None, dtype=str, keep_default_na=False)  # "NA" is a name
        raw = table.iloc[:, 0].str.strip().tolist()
    except pd.errors.EmptyDataError:  # before ValueError, of which it is one
        raise ESAInputError("empty file: list the target channels, one a line", path=path) from None
    except (OSError, ValueError) as exc:
        raise ESAInputError(f"cannot read the target channels: {one_line(exc)}",
                            path=path) from None
    known = set(channel_cols)
    if raw and raw[0] not in known and not _near(raw[0], channel_cols):
        raw = raw[1:]  # header line (a misspelt first channel of a file without one is kept)
    for name in raw:
        if name not in known:
            near = _near(name, channel_cols)
            hint = f" (did you mean {quoted(near[0])}?)" if near else ""
            raise ESAInputError(f"unknown target channel{hint}", path=path, value=name)
    return set(raw)


def _near(name: str, channel_cols: list[str]) -> list[str]:
    """The channel ``name`` is a typo of, if any (``chanel_41`` for ``channel_41``)."""
    return difflib.get_close_matches(name, channel_cols, n=1, cutoff=0.9)


# ---------------------------------------------------------------------------- reading arrays
def _read_parts(
    train_path: Path | None,
    test_path: Path | None,
    schemas: dict[Path, pa.Schema],
    names: list[str],
    telecommands: list[str],
    store: ArrayStore,
) -> tuple[dict[str, np.ndarray], dict]:
    parts = [p for p in (train_path, test_path) if p is not None]
    sizes = {}
    for p in parts:
        sizes[p] = pq.ParquetFile(p).metadata.num_rows
        if sizes[p] == 0:
            raise ESAInputError("empty file (no rows)", path=p)
    total = sum(sizes.values())
    out = {
        "ids": store.empty("ids", (total,), np.int64),
        "values": store.empty("values", (total, len(names)), np.float32),
        "telecommands": store.empty("telecommands", (total, len(telecommands)), np.float32),
        "row_labels": store.zeros("row_labels", (total,), np.uint8),
    }
    pos = 0
    for p in parts:
        start = pos
        has_label = LABEL in schemas[p].names
        pos = _read_one(p, names, telecommands, has_label, out, pos, store)
        if pos != start + sizes[p]:
            raise ESAInputError("row count differs from the file metadata", path=p)
        check_increasing(out["ids"][start:pos], p, ID)
        if start and out["ids"][start] <= out["ids"][start - 1]:
            raise ESAInputError(
                f"test ids must follow the train ids (last train id {out['ids'][start - 1]})",
                path=p,
                column=ID,
                value=int(out["ids"][start]),
            )
    where = ", ".join(str(p) for p in parts)  # full paths, as every other error names files
    found = repair_values(out["values"], names, source=where, store=store)
    out["finite_rows"], out["unrepresentable_cells"] = found.finite, found.cells
    zero_nonfinite(out["telecommands"], source=where)
    info = {
        "n_train": sizes[train_path] if train_path is not None else 0,
        "train_labeled": train_path is None or LABEL in schemas[train_path].names,
        "test_labeled": test_path is None or LABEL in schemas[test_path].names,
    }
    return out, info


def _read_one(
    path: Path,
    names: list[str],
    telecommands: list[str],
    has_label: bool,
    out: dict[str, np.ndarray],
    pos: int,
    store: ArrayStore,
) -> int:
    columns = [ID, *names, *telecommands, *([LABEL] if has_label else [])]
    first = pos  # the file's first row
    try:
        for batch in _batches(path, columns):
            n = batch.num_rows
            if pos + n > len(out["ids"]):
                raise ESAInputError("file changed while reading", path=path)
            out["ids"][pos : pos + n] = _ids(batch.column(ID), path, pos - first)
            put_columns(out["values"], pos, [_floats(batch.column(c)) for c in names])
            put_columns(out["telecommands"], pos, [_floats(batch.column(c)) for c in telecommands])
            if has_label:
                out["row_labels"][pos : pos + n] = _row_labels(batch.column(LABEL), path)
            store.release(out, pos, pos + n)
            pos += n
    except (OSError, pa.ArrowException, UnicodeDecodeError) as exc:
        raise ESAInputError(UNREADABLE_PARQUET, path=path) from exc
    return pos


def _row_labels(col: pa.Array, path: Path) -> np.ndarray:
    """The ``is_anomaly`` column as uint8 0/1; a boolean column (pandas' bool) is 0/1.

    The challenge's row label is binary (1: an anomaly or a rare event on some channel). The
    ESA CSV's codes 2-4 would read as rare event, gap and invalid here, and a gap or invalid row
    is no anomaly to the metrics: any value but 0 and 1 is refused.
    """
    if col.null_count:
        raise ESAInputError("empty label cell", path=path, column=LABEL)
    codes = col.to_numpy(zero_copy_only=False)  # booleans are bit-packed: never zero-copy
    if codes.dtype == np.bool_:
        return codes.astype(np.uint8)
    bad = (codes != 0) & (codes != 1)  # NaN too
    if bad.any():
        raise ESAInputError(
            "the row label must be 0 or 1", path=path, column=LABEL, value=codes[bad][0].item()
        )
    return codes.astype(np.uint8)


def _ids(col: pa.Array, path: Path, first_row: int) -> np.ndarray:
    """A batch's ids as int64, its first row being ``first_row`` of the file: integers, or
    floats that are whole numbers (``int64_ids``)."""
    if col.null_count:
        raise ESAInputError("empty id", path=path, column=ID)
    if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
        raise ESAInputError(f"ids must be integers, not {type_words(col.type)}", path=path,
                            column=ID)
    return int64_ids(col.to_numpy(), path, ID, first_row)


def _floats(col: pa.Array) -> np.ndarray:
    """A numeric column as float32 with nulls as NaN (repaired later)."""
    if col.null_count:
        col = col.cast(pa.float32()).fill_null(np.float32("nan"))
    with np.errstate(over="ignore"):  # beyond float32: inf, marked as unrepresentable later
        return col.to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
