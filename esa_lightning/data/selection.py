"""Channel selection and train/validation/test split points shared by every reader."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from esa_lightning.errors import ESAInputError

ChannelSpec = str | Sequence[str] | None
log = logging.getLogger(__name__)


def select_channels(
    table: pd.DataFrame,
    spec: ChannelSpec,
    *,
    lightweight: Sequence[str] = (),
    source: str | None = None,
) -> pd.DataFrame:
    """Rows of the channel ``table`` chosen by ``spec``.

    ``spec`` is ``"all"`` (or None), ``"target"``, ``"lightweight"`` or a list of channel names
    (a comma-separated string also works). Unknown names raise an error naming them.
    """
    names = list(table["Channel"])
    if spec is None or spec == "all":
        chosen = names
    elif spec == "target":
        chosen = list(table.loc[table["Target"].astype(bool), "Channel"])
    elif spec == "lightweight":
        if not lightweight:
            raise ESAInputError(
                "this source defines no lightweight channel subset: give the list "
                "(data.lightweight=[...]) or a preset that has one (e.g. data=esa_mission1)",
                path=source,
                value=spec,
            )
        chosen = list(lightweight)
    else:
        chosen = [c.strip() for c in spec.split(",")] if isinstance(spec, str) else list(spec)
    unknown = [c for c in chosen if c not in set(names)]
    if unknown:
        raise ESAInputError(
            f"unknown channel(s) {unknown}; known: {names[:5]}{'...' if len(names) > 5 else ''}",
            path=source,
            column="channels",
        )
    if not chosen:
        raise ESAInputError("channel selection is empty", path=source, value=spec)
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
    val_from = ts[test_start - 1] - np.timedelta64(int(round(float(val_days) * 86400e9)), "ns")
    val_start = int(np.searchsorted(ts[:test_start], val_from, side="right"))
    return val_start, test_start


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


def _to_datetime64(value: str | pd.Timestamp) -> np.datetime64:
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ESAInputError(f"not a date: {exc}", column="split_date", value=value) from None
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return np.datetime64(ts.to_datetime64(), "ns")
