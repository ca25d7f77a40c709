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

from esa_lightning.data.mission import CHANNEL_TABLE_COLUMNS, Mission

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
