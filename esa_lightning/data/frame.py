"""A DataFrame in raw units -> the ``Mission`` the detector's reader would have built from it.

The detector's schema records the reader's preprocessing (``data.preprocessing``); this module
repeats it through the reader's own code: ``esa_adb_grid.build_arrays`` (zero-order hold onto
the grid, counter differencing, telecommand pulses) for raw ESA-ADB data, the readers' forward
fill for data taken row by row (ESA CSV, Kaggle). Input problems are named by column: missing
columns, wrong dtypes and unusable indexes are ``ESAInputError``s; NaN gaps, grid holes and
counters that look differenced the wrong way are ``InputWarning``s (errors with ``strict``).

Expected frames
---------------
- time-indexed detectors: a ``DatetimeIndex`` (or a ``timestamp`` column); raw ESA data may be
  irregular (e.g. every channel file joined on the union of their timestamps, NaN where a channel
  has no sample) or already on the grid (one row per grid point).
- id-indexed detectors (Kaggle): an integer index or an ``id`` column.
- one column per channel and per telecommand the detector was trained on, in raw units (raw
  cumulative counters; telecommand columns non-zero where a command executed).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from esa_lightning.data.frame_counters import check_counters
from esa_lightning.data.mission import (
    CHANNEL_TABLE_COLUMNS,
    Mission,
    default_channel_table,
    empty_events,
)
from esa_lightning.data.preprocessing import PREPROCESSING_KEY, Preprocessing
from esa_lightning.data.readers.common import (
    int64_ids,
    name_undescribed,
    ns_times,
    off_grid,
    refuse_complex,
)
from esa_lightning.data.readers.nonfinite import repair_values, zero_nonfinite
from esa_lightning.errors import ESAInputError, quoted
from esa_lightning.install import command
from esa_lightning.metrics.intervals import refuse_long_cells, runs

SOURCE = "DataFrame"
LABEL_COLUMNS = ("is_anomaly",)  # and is_anomaly_<channel>: labels, ignored without a word
TIMEZONE_KEY = "timezone"  # meta: the frame's time zone, None for naive times (read as UTC)


class InputWarning(UserWarning):
    """A problem of the input DataFrame that has a documented repair (NaN gaps, grid holes) or
    that a heuristic suspects (a counter differenced the wrong way)."""


@dataclass
class InputCheck:
    """Collects the input warnings; with ``strict`` the first one is raised instead."""

    strict: bool = False
    messages: list[str] = field(default_factory=list)

    def warn(self, reason: str, column: str | None = None) -> None:
        if self.strict:
            raise ESAInputError(f"{reason} (strict=True)", path=SOURCE, column=column)
        self.note(reason, column)

    def note(self, reason: str, column: str | None = None) -> None:
        """A warning that ``strict`` does not turn into an error (nothing is repaired)."""
        text = f"{SOURCE}: column {quoted(column)}: {reason}" if column else f"{SOURCE}: {reason}"
        self.messages.append(text)
        warnings.warn(text, InputWarning, stacklevel=5)


def frame_to_mission(
    frame: pd.DataFrame, schema: dict[str, Any], *, strict: bool = False
) -> tuple[Mission, list[str]]:
    """The single-grid ``Mission`` of ``frame`` as the detector with ``schema`` expects it, and
    the input warnings issued. The whole frame is the range to score (``test_start`` 0)."""
    if not isinstance(frame, pd.DataFrame):
        raise ESAInputError(f"expected a pandas DataFrame, got {type(frame).__name__}")
    if schema.get("multiseries"):
        raise ESAInputError(
            "this detector scores independent series (NASA layout): predict(df) takes "
            f"single-grid data; use {command('predict')} for it"
        )
    check = InputCheck(strict)
    recorded = schema.get(PREPROCESSING_KEY) or {}
    prep = Preprocessing.from_dict(recorded)
    if prep is None:
        prep = Preprocessing(index="time" if schema.get("period") else "id")
        check.warn(
            "this detector records no preprocessing (trained before it was recorded): the "
            "frame is taken row by row, already preprocessed"
        )
    names, commands = list(schema["channels"]), list(schema.get("telecommands", []))
    stamps, timezone = _index(frame, prep)
    columns = _numeric_columns(frame, names + commands)
    _note_extra(frame, names + commands, prep, check)
    for name in names:
        if not np.isfinite(columns[name]).any():
            why = "in the frame: the detector needs it (a dead sensor? fill the column)"
            raise ESAInputError(f"channel holds no finite value {why}", path=SOURCE, column=name)
    check_counters(columns, names, prep, recorded.get("ranges") or {}, check.warn)
    _warn_beyond_float32(stamps, columns, names, check)
    if prep.resample == "hold":
        _check_grid_span(stamps, prep, _time_column(frame))
        values, telecommands, stamps, cells, sent = _hold_on_grid(
            stamps, columns, names, commands, prep, check
        )
    else:
        values, telecommands, cells = _row_by_row(stamps, columns, names, commands, prep, check)
        sent = None  # rows as given: every row is a reading, none held
    mission = Mission(
        name=SOURCE,
        values=values,
        timestamps=stamps,
        channels=_channel_table(recorded, names),
        labels=np.zeros((len(values), len(names)), dtype=np.uint8),
        events=empty_events(str(stamps.dtype)),
        telecommands=telecommands,
        telecommand_names=commands,
        period=None if prep.period is None else pd.Timedelta(prep.period),
        test_start=0,
        val_start=0,
        meta={
            "source": SOURCE,
            PREPROCESSING_KEY: prep.to_dict(),
            "test_labeled": False,
            TIMEZONE_KEY: timezone,
        },
        unrepresentable_cells=cells,
        sent=sent,
    )
    return mission, check.messages


# ------------------------------------------------------------------------------- the index
def _time_column(frame: pd.DataFrame) -> str:
    """Where a time-indexed frame's times are: its 'timestamp' column, or its index."""
    if "timestamp" in frame.columns and not isinstance(frame.index, pd.DatetimeIndex):
        return "timestamp"
    return "index"


def _index(frame: pd.DataFrame, prep: Preprocessing) -> tuple[np.ndarray, Any]:
    """datetime64[ns] (UTC) or int64 row keys, strictly increasing, and the time zone the
    frame's times were given in (None: naive times, or ids)."""
    timezone = None
    if prep.index == "time":
        where = _time_column(frame)
        index = _parse_timestamps(frame["timestamp"]) if where == "timestamp" else frame.index
        if not isinstance(index, pd.DatetimeIndex):
            raise ESAInputError(
                f"the detector was trained on time-indexed data: give a DatetimeIndex (got "
                f"{type(index).__name__}) or a 'timestamp' column",
                path=SOURCE,
                column=where,
            )
        if index.tz is not None:
            timezone = index.tz
            index = index.tz_convert("UTC").tz_localize(None)
        if index.hasnans:
            raise ESAInputError("missing timestamp (NaT)", path=SOURCE, column=where)
        keys = ns_times(index, SOURCE, where).to_numpy()
    else:
        raw = frame["id"] if "id" in frame.columns else pd.Series(frame.index)
        where = "id" if "id" in frame.columns else "index"
        # integers, or floats that are whole numbers (61.0: an integer column a NaN touched)
        if not (pd.api.types.is_integer_dtype(raw.dtype) or pd.api.types.is_float_dtype(raw)):
            raise ESAInputError(
                f"the detector was trained on id-indexed data (Kaggle): give integer ids as "
                f"the index or an 'id' column (got {raw.dtype})",
                path=SOURCE,
                column=where,
            )
        if raw.hasnans:  # a nullable Int64 column with <NA>, a float NaN
            raise ESAInputError("empty id", path=SOURCE, column=where)
        floats = pd.api.types.is_float_dtype(raw)
        keys = int64_ids(raw.to_numpy(np.float64 if floats else None), SOURCE, where)
    if len(keys) == 0:
        raise ESAInputError("no rows to score", path=SOURCE)
    step = np.diff(keys)
    if (step <= 0).any():
        i = int(np.flatnonzero(step <= 0)[0])
        what = "duplicate" if step[i] == 0 else "unsorted"
        raise ESAInputError(
            f"{what} key at row {i + 1} (sort the frame, drop duplicates)",
            path=SOURCE,
            column=where,
            value=str(keys[i + 1]),
        )
    return keys, timezone


def _parse_timestamps(column: pd.Series) -> pd.DatetimeIndex:
    """A ``timestamp`` column as times (NaT where unreadable). Times whose UTC offsets differ (a
    local clock's text across a daylight-saving change) are read in UTC. Numbers are refused:
    pandas reads them as nanoseconds after 1970, so epoch seconds fell onto one grid row. A cell
    longer than ``KEY_CELL_LIMIT`` characters is refused by its length before any is parsed."""
    if pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
        raise ESAInputError(
            f"holds numbers ({column.dtype}), not times: convert them, e.g. "
            "df['timestamp'] = pd.to_datetime(df['timestamp'], unit='s') for epoch seconds",
            path=SOURCE,
            column="timestamp",
        )
    refuse_long_cells(column, path=SOURCE, column="timestamp")
    with warnings.catch_warnings():  # pandas 2 warns before returning mixed offsets as objects
        warnings.simplefilter("ignore", FutureWarning)
        try:
            parsed = pd.to_datetime(column, errors="coerce")
        except (ValueError, TypeError):  # "Mixed timezones detected"
            parsed = None
    if parsed is None or getattr(parsed.dtype, "kind", "O") != "M":
        parsed = pd.to_datetime(column, errors="coerce", utc=True)
    return pd.DatetimeIndex(parsed)


# ----------------------------------------------------------------------------- the columns
def _numeric_columns(frame: pd.DataFrame, wanted: list[str]) -> dict[str, np.ndarray]:
    """float64 arrays of the ``wanted`` columns (NaN kept); missing or non-numeric is an error."""
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        shown = ", ".join(quoted(c) for c in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise ESAInputError(
            f"missing {len(missing)} column(s) the detector was trained on: {shown}",
            path=SOURCE,
            column=missing[0],
        )
    out = {}
    for name in wanted:
        col = frame[name]
        if isinstance(col, pd.DataFrame):
            raise ESAInputError("duplicate column name", path=SOURCE, column=name)
        if pd.api.types.is_bool_dtype(col.dtype) or pd.api.types.is_numeric_dtype(col.dtype):
            numeric = col
        elif not pd.api.types.is_object_dtype(col.dtype) and not pd.api.types.is_string_dtype(
            col.dtype
        ):
            raise ESAInputError(
                f"wrong dtype {col.dtype}: expected numbers", path=SOURCE, column=name
            )
        else:
            numeric = pd.to_numeric(col, errors="coerce")
            bad = numeric.isna() & col.notna()
            if bad.any():
                raise ESAInputError(
                    f"wrong dtype {col.dtype}: not a number",
                    path=SOURCE,
                    column=name,
                    value=col[bad].iloc[0],
                )
        refuse_complex(numeric, SOURCE, name)
        out[name] = numeric.to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def _note_extra(
    frame: pd.DataFrame, wanted: list[str], prep: Preprocessing, check: InputCheck
) -> None:
    """Columns the detector does not use are ignored (labels and the key without a word)."""
    keys = {"timestamp"} if prep.index == "time" else {"id"}
    extra = [
        str(c)
        for c in frame.columns
        if c not in set(wanted) and c not in keys and not str(c).startswith(LABEL_COLUMNS)
    ]
    if extra:
        shown = ", ".join(quoted(c) for c in extra[:5]) + (" ..." if len(extra) > 5 else "")
        check.note(f"ignored {len(extra)} column(s) the detector was not trained on: {shown}")


def _channel_table(recorded: dict[str, Any], names: list[str]) -> pd.DataFrame:
    """The channel table the detector recorded, in the order of ``names``. A channel it leaves
    out, or a row without a group or subsystem (an edited detector.json), gets a group of its
    own and a subsystem the table does not already use (as ``readers.esa_csv`` does for the
    channels ``channels.csv`` does not list): the defaults could be a listed channel's."""
    rows = recorded.get("channel_table")
    if not rows:
        return default_channel_table(names)
    table = pd.DataFrame(rows)
    table = table.set_index("Channel").reindex(names).reset_index()
    default = default_channel_table(names)
    table = name_undescribed(table, taken=table)
    for col in CHANNEL_TABLE_COLUMNS[1:]:
        table[col] = (
            table[col].where(table[col].notna(), default[col]) if col in table else default[col]
        )
    for col in ("Target", "Categorical"):
        table[col] = table[col].astype(bool)
    return table


# ----------------------------------------------------------------------- the two pipelines
def _check_grid_span(stamps: np.ndarray, prep: Preprocessing, where: str) -> None:
    """Refuse times spanning more grid rows than the raw reader allows (a corrupt timestamp?)
    before the grid is allocated, naming the frame's times rather than the reader's options."""
    from esa_lightning.data.readers.esa_adb_grid import MAX_GRID_ROWS
    from esa_lightning.data.readers.grid_period import period_ns

    first, last = int(stamps[0].astype(np.int64)), int(stamps[-1].astype(np.int64))
    rows = (last - first) // period_ns(prep.period) + 1
    if rows > MAX_GRID_ROWS:
        raise ESAInputError(
            f"times from {stamps[0]} to {stamps[-1]} span {rows} grid rows at {prep.period}: "
            f"more than {MAX_GRID_ROWS} (a corrupt timestamp?); score the frame in pieces",
            path=SOURCE,
            column=where,
        )


def _hold_on_grid(
    stamps: np.ndarray,
    columns: dict[str, np.ndarray],
    names: list[str],
    commands: list[str],
    prep: Preprocessing,
    check: InputCheck,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Raw ESA samples onto the period grid by the reader's own code (``build_arrays``):
    (values, telecommands, grid timestamps, the unrepresentable readings' cells, the rows each
    channel sent a reading on: ``Mission.sent``; a NaN cell is no reading)."""
    from esa_lightning.data.readers.esa_adb_grid import SeriesInMemory, build_arrays
    from esa_lightning.data.readers.grid_period import period_ns

    p_ns = period_ns(prep.period)
    ts = stamps.astype(np.int64)
    if (ts % p_ns == 0).all():  # one row per grid point: NaN cells and missing rows are gaps
        _warn_gaps(stamps, columns, names, p_ns, check)
    series = []
    for name in names:
        ok = ~np.isnan(columns[name])  # inf stays: the reader marks it (never hidden)
        series.append(SeriesInMemory(ts[ok], columns[name][ok], f"{SOURCE} column {name!r}"))
    executions = []
    for name in commands:
        col = columns[name]
        fired = np.isfinite(col) & (col != 0)
        executions.append(SeriesInMemory(ts[fired], col[fired], f"{SOURCE} column {name!r}"))
    start, end = pd.Timestamp(int(ts[0])), pd.Timestamp(int(ts[-1]))
    events = empty_events()
    # warn=False: the repaired readings are named per column by _warn_beyond_float32
    arrays, info = build_arrays(
        names, series, executions, events, p_ns, set(prep.counters), start, end, warn=False
    )
    n = int(info["n_rows"])
    grid = ((np.arange(n, dtype=np.int64) + int(info["k_lo"])) * p_ns).view("datetime64[ns]")
    return (arrays["values"], arrays["telecommands"], grid, arrays["unrepresentable_cells"],
            arrays["sent"])


def _row_by_row(
    stamps: np.ndarray,
    columns: dict[str, np.ndarray],
    names: list[str],
    commands: list[str],
    prep: Preprocessing,
    check: InputCheck,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows as given, repaired the readers' way (``repair_values``: readings beyond float32
    found, NaN/inf forward-filled; telecommands 0): (values, telecommands, their cells)."""
    _warn_nan(stamps, columns, names, "forward-filled from the previous row", check)
    if message := skipped_keys(stamps, prep):
        check.warn(message)
    values = np.stack([columns[c] for c in names], axis=1).astype(np.float32)
    telecommands = np.zeros((len(stamps), len(commands)), dtype=np.float32)
    if commands:
        telecommands = np.stack([columns[c] for c in commands], axis=1).astype(np.float32)
    with warnings.catch_warnings():  # counted per column above
        warnings.simplefilter("ignore")
        cells = repair_values(values, names, source=SOURCE).cells
        zero_nonfinite(telecommands, source=SOURCE)
    return values, telecommands, cells


# ---------------------------------------------------------------------------- gap reports
def _warn_gaps(
    stamps: np.ndarray,
    columns: dict[str, np.ndarray],
    names: list[str],
    p_ns: int,
    check: InputCheck,
) -> None:
    """A frame on the grid: NaN cells and missing grid rows are held at the previous value."""
    _warn_nan(stamps, columns, names, "held at the channel's previous value", check)
    ts = stamps.astype(np.int64)
    step = np.diff(ts) // p_ns
    holes = int((step - 1).sum())
    if holes:
        first = pd.Timestamp(int(ts[int(np.argmax(step > 1))] + p_ns))
        check.warn(
            f"{holes} grid timestamp(s) missing on the {pd.Timedelta(p_ns, unit='ns')} grid "
            f"(first at {first}): every channel holds its previous value there"
        )


def _warn_nan(
    stamps: np.ndarray,
    columns: dict[str, np.ndarray],
    names: list[str],
    repair: str,
    check: InputCheck,
) -> None:
    """Per column: its missing readings (NaN), repaired as ``repair`` says."""
    for name in names:
        nan = np.isnan(columns[name])
        if nan.any():
            first, last = runs(nan)
            k = int(np.argmax(last - first))  # the longest gap
            check.warn(
                f"{int(nan.sum())} NaN value(s), the longest gap {last[k] - first[k] + 1} row(s) "
                f"from {_key_text(stamps, first[k])}: {repair} (the first value before the "
                "channel's first one)",
                column=name,
            )


def _warn_beyond_float32(
    stamps: np.ndarray, columns: dict[str, np.ndarray], names: list[str], check: InputCheck
) -> None:
    """Per column: its readings float32 cannot hold (inf, |x| > 3.4e38), which are replaced for
    the model and whose rows always alarm, naming them (``Mission.unrepresentable_cells``)."""
    limit = float(np.finfo(np.float32).max)
    for name in names:
        with np.errstate(invalid="ignore"):
            beyond = np.abs(columns[name]) > limit  # inf too; NaN compares False
        if beyond.any():
            check.warn(
                f"{int(beyond.sum())} reading(s) beyond float32's range (inf or |x| > "
                f"{limit:.3g}), the first at {_key_text(stamps, int(np.argmax(beyond)))}: "
                "replaced for the model, their rows always alarm",
                column=name,
            )


def _key_text(stamps: np.ndarray, row: int) -> Any:  # a time, or an id
    return pd.Timestamp(stamps[row]) if stamps.dtype.kind == "M" else stamps[row]


def skipped_keys(
    stamps: np.ndarray, prep: Preprocessing, rows: str = "rows are scored as given"
) -> str | None:
    """The warning for row keys (ids, or times on the ``prep.period`` grid) that skip some or
    step off the grid (irregular times, ``off_grid``), or None: rows taken as given are scored
    as given (``rows``: which). ``Detector.predict`` and ``predict.py`` both warn with it."""
    as_given = f": {rows} (this detector's data is not resampled)"
    if prep.index == "id":
        step, unit = np.diff(stamps), 1
    elif prep.period is not None:
        if off := off_grid(stamps, prep.period):
            return off + as_given
        step, unit = np.diff(stamps.astype(np.int64)), pd.Timedelta(prep.period).value
    else:
        return None
    skipped = step > unit
    if not skipped.any():
        return None
    what = "id(s)" if prep.index == "id" else "timestamp(s) of the grid"
    n, first = int(((step[skipped] // unit) - 1).sum()), stamps[int(np.argmax(skipped))]
    return f"{n} {what} missing (first after {first}){as_given}"
