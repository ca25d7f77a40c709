"""Channel selection and train/validation/test split points shared by every reader."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from esa_lightning.errors import ESAInputError, quoted
from esa_lightning.settings.values import CHANNEL_WORDS

if TYPE_CHECKING:
    from esa_lightning.data.mission import Mission

ChannelSpec = str | Sequence[str] | None
log = logging.getLogger(__name__)
#: ``Mission.meta`` key of a reader whose ``val_days`` null is a share of the mission (the
#: synthetic one): ``{"share": "a sixth of the mission", "set_by": "data.generate.days=42"}``
VAL_DAYS_NULL = "val_days_null"


class UnknownChannels(ESAInputError):
    """Channels asked for (``names``) that the data's channel list (``path``) lacks;
    ``lacking_too``: other files read that lack them as well (``too`` words them)."""

    def __init__(self, names: list[str], known: list[str], source: str | None,
                 words: Sequence[str] = (), lacking_too: Sequence[str] = ()) -> None:
        self.names = names
        self.words = tuple(words)
        self.lacking_too = tuple(lacking_too)
        shown = f"{known[:5]}{'...' if len(known) > 5 else ''}"
        also = f"; or one of the words {', '.join(words)}" if words else ""
        super().__init__(f"unknown channel(s) {names}{self.too}; known: {shown}{also}",
                         path=source, column="channels")

    @property
    def too(self) -> str:
        """`` (also missing from FILE)`` where other files read lack them too; else empty."""
        return f" (also missing from {', '.join(self.lacking_too)})" if self.lacking_too else ""


def _why_none_chosen(names: list, spec: ChannelSpec) -> str:
    """Why ``spec`` chose no channel of ``names``, and what to do, in a user's words."""
    if not names:
        return "no channel to read: the file lists none (add a row for each channel)"
    if spec == "target":
        return ("no channel is marked as a target (Target YES): mark some, or choose the "
                "channels with data.channels=[NAME,...]")
    return "channel selection is empty: choose at least one channel, data.channels=[NAME,...]"


def select_channels(
    table: pd.DataFrame,
    spec: ChannelSpec,
    *,
    lightweight: Sequence[str] | None = None,
    source: str | None = None,
) -> pd.DataFrame:
    """Rows of the channel ``table`` chosen by ``spec``.

    ``spec`` is ``"all"`` (or None), ``"target"``, ``"lightweight"`` or a list of channel names
    (a comma-separated string also works). Unknown names raise an error naming them.
    ``lightweight``: the reader's lightweight subset (empty: it has none); None for a reader
    without a ``lightweight`` option (NASA), whose error then points to ``data.channels``.
    """
    names = list(table["Channel"])
    if spec is None or spec == "all":
        chosen = names
    elif spec == "target":
        chosen = list(table.loc[table["Target"].astype(bool), "Channel"])
    elif spec == "lightweight":
        if not lightweight:
            fix = (
                "give the channels as a list (data.channels=[...])"
                if lightweight is None
                else "give the list (data.lightweight=[...]) or a preset that has one "
                "(e.g. data=esa_mission1)"
            )
            raise ESAInputError(
                f"this source defines no lightweight channel subset: {fix}",
                path=source,
                value=spec,
            )
        chosen = list(lightweight)
    else:
        chosen = [c.strip() for c in spec.split(",")] if isinstance(spec, str) else list(spec)
    unknown = [c for c in chosen if c not in set(names)]
    if unknown:  # a string given alone may be a misspelt word (targt): the words are named too
        words = CHANNEL_WORDS if isinstance(spec, str) else ()
        raise UnknownChannels(unknown, names, source, words)
    if not chosen:
        raise ESAInputError(_why_none_chosen(names, spec), path=source, value=spec)
    order = {c: i for i, c in enumerate(chosen)}
    out = table[table["Channel"].isin(order)].copy()
    out["_order"] = out["Channel"].map(order)
    return out.sort_values("_order").drop(columns="_order").reset_index(drop=True)


def split_points_by_time(
    timestamps: np.ndarray,
    split_date: str | pd.Timestamp | None,
    val_days: float | None,
    val_fraction: float | None = None,
) -> tuple[int, int]:
    """(val_start, test_start): test from ``split_date``; validation = last ``val_days``.

    Without ``val_days``, validation is the last ``val_fraction`` of the training rows. With
    both, ``val_days`` is used where it fits: when it is at least half of the training range's
    span (first to last training timestamp), which would leave training empty or smaller than
    validation, the last ``val_fraction`` of the training rows is used instead and a log line
    says so (``val_fraction`` None keeps ``val_days`` regardless).
    """
    ts = np.asarray(timestamps, dtype="datetime64[ns]")
    n = len(ts)
    _check_val_days(val_days)
    if split_date is None:
        test_start = n
    else:
        split = _to_datetime64(split_date)
        test_start = int(np.searchsorted(ts, split, side="left"))
    if test_start == 0:
        return 0, 0
    if not val_days:
        return split_points_by_fraction(test_start, val_fraction), test_start
    if val_fraction and not val_days_fit(ts[:test_start], val_days):
        span_days = float((ts[test_start - 1] - ts[0]) / np.timedelta64(1, "D"))
        val_start = split_points_by_fraction(test_start, val_fraction)
        log.info(
            "val_days=%g does not fit the %.2f-day training range (it must be under half of "
            "it); validation is the last val_fraction=%g of the training range instead "
            "(%d of %d rows)",
            float(val_days), span_days, float(val_fraction), test_start - val_start, test_start,
        )
        return val_start, test_start
    span_ns = int((ts[test_start - 1] - ts[0]) / np.timedelta64(1, "ns"))
    if float(val_days) * 86400e9 > span_ns:  # every training row (and no int64 overflow)
        return 0, test_start
    val_from = ts[test_start - 1] - np.timedelta64(int(round(float(val_days) * 86400e9)), "ns")
    val_start = int(np.searchsorted(ts[:test_start], val_from, side="right"))
    return val_start, test_start


def _check_val_days(val_days: object) -> None:
    """``val_days`` as ``settings`` checks it on the command line (a finite number >= 0, or
    None): from Python a negative one left no validation row, nan or a word a traceback."""
    if val_days is None:
        return
    try:
        days = float(val_days)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        days = float("nan")
    if isinstance(val_days, bool) or not math.isfinite(days) or days < 0:
        raise ESAInputError("val_days must be a finite number >= 0 (or null)",
                            column="val_days", value=val_days)


def val_days_fit(train_timestamps: np.ndarray, val_days: float) -> bool:
    """Whether ``val_days`` of validation fits a training range with these timestamps: it must
    be under half of the range's span (so training keeps more time than validation)."""
    ts = np.asarray(train_timestamps, dtype="datetime64[ns]")
    if len(ts) < 2:
        return False
    span_ns = int((ts[-1] - ts[0]) / np.timedelta64(1, "ns"))
    return float(val_days) * 86400e9 < 0.5 * span_ns


def split_points_by_fraction(n_train: int, val_fraction: float | None) -> int:
    """val_start for sample-indexed data: the last ``val_fraction`` of the training rows."""
    if not val_fraction:
        return n_train
    if not 0 < float(val_fraction) < 1:
        raise ESAInputError("val_fraction must lie in (0, 1)", column="val_fraction",
                            value=val_fraction)
    return n_train - int(round(n_train * float(val_fraction)))


# datetime64[ns] holds these dates; one outside would wrap around when cast (3000 -> 1830)
NS_RANGE = "outside the dates a datetime64[ns] grid can hold (1677-09-21 .. 2262-04-11)"


def _to_datetime64(value: str | pd.Timestamp) -> np.datetime64:
    if isinstance(value, int | float):  # pandas would read 2000 as 2000 ns after 1970
        raise ESAInputError("a date such as 2000-01-03T13:19:00, not a number",
                            column="split_date", value=value)
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ESAInputError(f"not a date: {exc}", column="split_date", value=value) from None
    if pd.isna(ts):  # "" (data.split_date= on the command line), "NaT": no date at all
        raise ESAInputError(
            f"data.split_date={quoted(value)}: not a date; give one (e.g. 2007-01-01), or null for "
            "the default (the split date mission.json records, else no test range)"
        )
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    try:
        return ts.as_unit("ns").to_datetime64()
    except (ValueError, OverflowError):  # OutOfBoundsDatetime
        raise ESAInputError(NS_RANGE, column="split_date", value=value) from None


def require_training_rows(mission: Mission, settings: Mapping[str, Any]) -> None:
    """Refuse a split that leaves some grid without training rows, naming the data setting
    responsible: training on nothing fits a threshold of inf, a detector that never alarms.

    ``settings`` is the ``data`` config (``split_date``, ``val_days``, ``val_fraction``); a
    reader whose ``val_days`` null means a share of the mission says so in
    ``mission.meta[VAL_DAYS_NULL]``, and the error then names it."""
    share = mission.meta.get(VAL_DAYS_NULL)
    for name, grid in mission.grids().items():
        if grid.val_start > 0:
            continue
        where = f"series {name}: " if name is not None else ""
        if grid.test_start == 0:
            first = _describe_row(grid, 0) if grid.n_rows else "nothing"
            split = settings.get("split_date")
            cause = (
                f"data.split_date={split} is not after the first row ({first})"
                if split is not None
                else "the data holds a test range only"
            )
            raise ESAInputError(f"{where}{cause}: no training rows to fit a detector on")
        span = _describe_span(grid, grid.test_start)
        val_days = settings.get("val_days")
        if val_days or (val_days is None and share is not None):
            shown = f"null ({share['share']})" if val_days is None else val_days
            cause = f"data.val_days={shown} covers the whole training range ({span})"
            fix = _val_days_that_fit(grid)
            if share is not None and val_days is not None:
                fix += f", or data.val_days=null: {share['share']} ({share['set_by']})"
        else:
            cause = (
                f"data.val_fraction={settings.get('val_fraction')} leaves no row of the "
                f"training range ({span})"
            )
            fix = "choose a smaller validation range"
        raise ESAInputError(f"{where}{cause}: no training rows are left; {fix}")


def _val_days_that_fit(grid: Mission) -> str:
    """The ``data.val_days`` values that leave training rows in ``grid``'s training range."""
    days = _span_days(grid, grid.test_start)
    if days is None:
        return "choose a smaller validation range"
    return (
        f"choose data.val_days under {math.floor(days * 100) / 100:.2f} (under "
        f"{math.floor(days * 50) / 100:.2f} keeps more training than validation)"
    )


def _describe_row(grid: Mission, row: int) -> str:
    stamp = np.asarray(grid.timestamps)[row]
    return str(pd.Timestamp(stamp)) if grid.is_time_indexed else f"id {int(stamp)}"


def _describe_span(grid: Mission, n_rows: int) -> str:
    days = _span_days(grid, n_rows)
    return f"{n_rows} rows" if days is None else f"{n_rows} rows over {days:.2f} days"


def _span_days(grid: Mission, n_rows: int) -> float | None:
    """Days from the first to the last of ``grid``'s first ``n_rows`` (None: not time-indexed
    or under two rows)."""
    if not grid.is_time_indexed or n_rows < 2:
        return None
    ts = np.asarray(grid.timestamps)
    return float((ts[n_rows - 1] - ts[0]) / np.timedelta64(1, "D"))
