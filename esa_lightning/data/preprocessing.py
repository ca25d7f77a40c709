"""What a reader did to raw telemetry before a model saw it, recorded so a detector repeats it.

Each reader states its preprocessing in ``Mission.meta["preprocessing"]`` (a ``Preprocessing``
as a plain dict); training copies it, with the range of every channel's values over the fit
range, into the artifact's schema (``record_input``). The Python API
(``esa_lightning.data.frame``) then turns a DataFrame in raw units into the same ``Mission`` the
reader would have produced, through the reader's own grid code.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from esa_lightning.data.mission import CHANNEL_TABLE_COLUMNS, Mission
from esa_lightning.errors import quoted

PREPROCESSING_KEY = "preprocessing"
RANGE_ROWS = 262_144  # rows per block when measuring channel ranges
UNIT_COLUMNS = ["Physical Unit"]  # kept from channels.csv for reports in physical units


@dataclass(frozen=True)
class Preprocessing:
    """index: ``time`` (datetime64 rows) or ``id`` (integer sample ids);
    resample: ``hold`` (zero-order hold of raw samples onto the ``period`` grid, as
    ``readers.esa_adb``) or ``none`` (rows taken as given);
    counters: channels differenced after resampling;
    telecommands: ``pulses`` (1 at the first grid point at or after each execution) or
    ``values`` (columns taken as given)."""

    index: Literal["time", "id"] = "time"
    resample: Literal["hold", "none"] = "none"
    period: str | None = None
    counters: list[str] = field(default_factory=list)
    telecommands: Literal["pulses", "values"] = "values"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict[str, Any] | None) -> Preprocessing | None:
        if not record:
            return None
        known = {k: record[k] for k in cls.__dataclass_fields__ if k in record}
        return cls(**known)


def channel_ranges(mission: Mission) -> dict[str, list[float]]:
    """[min, max] of each channel's values (as the model sees them) over the fit range."""
    fit = mission.fit_range()
    values = np.asarray(fit.values) if not fit.is_multiseries else None
    if values is None or values.size == 0:
        return {}
    lo = np.full(values.shape[1], np.inf)
    hi = np.full(values.shape[1], -np.inf)
    for start in range(0, len(values), RANGE_ROWS):
        block = values[start : start + RANGE_ROWS]
        lo = np.minimum(lo, np.nanmin(block, axis=0))
        hi = np.maximum(hi, np.nanmax(block, axis=0))
    return {
        name: [float(a), float(b)] for name, a, b in zip(fit.channel_names, lo, hi, strict=True)
    }


def record_input(mission: Mission) -> dict[str, Any] | None:
    """The reader's preprocessing plus the channel table and the channels' fit-range ranges
    (for the artifact's schema), or None when the reader recorded none."""
    record = mission.meta.get(PREPROCESSING_KEY)
    if record is None:
        return None
    columns = CHANNEL_TABLE_COLUMNS + [c for c in UNIT_COLUMNS if c in mission.channels]
    table = mission.channels[columns].to_json(orient="records")
    return {**record, "channel_table": json.loads(table), "ranges": channel_ranges(mission)}


def record_problem(
    record: Any, channels: list[str], where: str = PREPROCESSING_KEY
) -> str | None:
    """What is wrong with a recorded preprocessing (``record_input``'s, read back from an
    artifact that may have been edited) for a detector of ``channels``, or None. The channel
    table may leave channels out (``data.frame`` gives them names of their own) but not list
    one twice or one the detector does not have. The problem names its key path from
    ``where`` (the record's own key) on: ``preprocessing must be an object, ...``,
    ``preprocessing.index = 'row', ...``."""
    if record is None:
        return None
    if not isinstance(record, dict):
        return f"{where} must be an object, not a JSON {type(record).__name__}"
    problem = _fields_problem(record, channels)
    return None if problem is None else f"{where}.{problem}"


def _fields_problem(record: dict[str, Any], channels: list[str]) -> str | None:
    """``record_problem`` of a record that is an object, named from its keys on."""
    choices = {"index": ("time", "id"), "resample": ("hold", "none"),
               "telecommands": ("pulses", "values")}
    for key, allowed in choices.items():
        if key in record and record[key] not in allowed:
            return f"{key} = {quoted(record[key])}, not one of {list(allowed)}"
    if problem := period_problem(record.get("period")):
        return problem
    if record.get("resample") == "hold" and record.get("period") is None:
        return "resample = 'hold' needs a period"
    counters = record.get("counters", [])
    if not (isinstance(counters, list) and all(isinstance(c, str) for c in counters)):
        return f"counters = {quoted(counters)}: must be a list of channel names"
    ranges = record.get("ranges", {})
    if not isinstance(ranges, dict):
        return "ranges must be an object: channel -> [min, max]"
    for name, span in ranges.items():
        if not (isinstance(span, list) and len(span) == 2 and all(_number(v) for v in span)):
            return f"ranges[{quoted(name)}] = {quoted(span)}: must be [min, max], two numbers"
    return _table_problem(record.get("channel_table"), channels)


def period_problem(period: Any) -> str | None:
    """What is wrong with a recorded grid ``period`` (a positive duration or null), or None."""
    if period is None:
        return None
    try:
        valid = isinstance(period, str) and pd.Timedelta(period) > pd.Timedelta(0)
    except ValueError:
        valid = False
    return None if valid else f"period = {quoted(period)}: must be a positive duration or null"


def _table_problem(rows: Any, channels: list[str]) -> str | None:
    if rows is None:
        return None
    if not isinstance(rows, list):
        return f"channel_table must be a list of rows, not a JSON {type(rows).__name__}"
    known, seen = set(channels), set()
    for i, row in enumerate(rows):
        where = f"channel_table[{i}]"
        if not isinstance(row, dict):
            return f"{where} is a JSON {type(row).__name__}, not an object with a Channel"
        if "Channel" not in row:
            return f"{where} has no Channel"
        if not isinstance(row["Channel"], str):
            return f"{where}: Channel = {quoted(row['Channel'])}, not a name"
        name = row["Channel"]
        if name in seen:
            return f"{where}: channel {quoted(name)} listed twice"
        if name not in known:
            return f"{where}: channel {quoted(name)} is not one of the detector's channels"
        seen.add(name)
        for key in ("Subsystem", "Group"):  # a Mission built in Python may number them
            value = row.get(key)
            if value is not None and not (isinstance(value, str) or _number(value)):
                return f"{where}: {key} = {quoted(value)}, must be a name or a number (or null)"
        for key in ("Target", "Categorical"):
            if row.get(key) is not None and not isinstance(row[key], bool):
                return f"{where}: {key} = {quoted(row[key])}, must be true or false (or null)"
    return None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
