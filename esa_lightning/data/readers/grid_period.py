"""The grid period in integer nanoseconds: the one piece of the grid code the synthetic generator
uses (``synthetic_signals``), in a module of its own so the generator's code digest
(``synthetic_record.GENERATOR_MODULES``) covers it without the readers' grid code."""

from __future__ import annotations

import pandas as pd

from esa_lightning.errors import ESAInputError


def period_ns(period: str | pd.Timedelta) -> int:
    """The grid period in integer nanoseconds (positive)."""
    try:
        p = pd.Timedelta(period)
    except (ValueError, TypeError):
        raise ESAInputError("not a time period (e.g. 30s)", column="period", value=period) from None
    if p <= pd.Timedelta(0):
        raise ESAInputError("period must be positive", column="period", value=period)
    return int(p.value)
