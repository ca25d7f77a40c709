"""Channel selection and train/validation/test split points shared by every reader."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from esa_lightning.errors import ESAInputError

ChannelSpec = str | Sequence[str] | None


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
                "this source defines no lightweight channel subset", path=source, value=spec
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
) -> tuple[int, int]:
    """(val_start, test_start): test from ``split_date``; validation = last ``val_days``."""
    ts = np.asarray(timestamps, dtype="datetime64[ns]")
    n = len(ts)
    if split_date is None:
        test_start = n
    else:
        split = _to_datetime64(split_date)
        test_start = int(np.searchsorted(ts, split, side="left"))
    if not val_days:
        return test_start, test_start
    if test_start == 0:
        return 0, 0
    val_from = ts[test_start - 1] - np.timedelta64(int(round(float(val_days) * 86400e9)), "ns")
    val_start = int(np.searchsorted(ts[:test_start], val_from, side="right"))
    return val_start, test_start


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
