"""Short gaps between alarms closed, and what several rules share to choose and apply it.

``close_gaps`` switches on every run of non-alarmed rows shorter than a width that lies between
two alarmed rows (``rolling_gbdt``'s ``f05_gap`` rule chooses it with its threshold).
``pooled_range`` lays independent series end to end on one shifted timeline, as the evaluation
pools them, so that a choice made on their rows counts events over every series as the reported
metrics do.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from esa_lightning.data.mission import Mission, default_channel_table, one_timeline
from esa_lightning.errors import ESAInputError


def close_gaps(alarm: np.ndarray, width: int) -> np.ndarray:
    """bool [T]: ``alarm`` with every run of non-alarmed rows shorter than ``width`` rows that
    lies between two alarmed rows switched on (``width`` 0 or 1: unchanged)."""
    out = np.asarray(alarm, dtype=bool).copy()
    idx = np.flatnonzero(out)
    if width <= 1 or len(idx) < 2:
        return out
    gaps = np.diff(idx) - 1
    fill = (gaps > 0) & (gaps < width)
    edges = np.zeros(len(out) + 1, dtype=np.int64)
    np.add.at(edges, idx[:-1][fill] + 1, 1)
    np.add.at(edges, idx[1:][fill], -1)
    out |= np.cumsum(edges[:-1]) > 0
    return out


def check_int_list(values: Any, key: str, low: int) -> list[int]:
    """The sorted distinct entries of a config list of integers >= ``low``, or a one-line error
    naming ``key``."""
    items = list(values) if isinstance(values, list | tuple) else None
    if not items or not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        raise ESAInputError("must be a non-empty list of integers", column=key, value=values)
    if min(items) < low:
        raise ESAInputError(f"every entry must be >= {low}", column=key, value=values)
    return sorted(set(items))


def pooled_range(
    mission: Mission, parts: list[tuple[Mission, np.ndarray]], what: str
) -> tuple[np.ndarray, Mission]:
    """(row values, the range they lie on) of ``parts``: (range, its row values) pairs cut from
    ``mission``'s grids. A single grid's one part as it is; independent series' parts laid end
    to end on one shifted timeline (``one_timeline``), named ``what`` of every series."""
    if not mission.is_multiseries:
        ((part, values),) = parts
        return values, part
    stamps, events, kept = one_timeline([part for part, _ in parts])
    pooled = Mission(
        name=f"{mission.name} ({what} of every series)",
        values=np.zeros((len(stamps), 0), dtype=np.float32),
        timestamps=stamps,
        channels=default_channel_table([]),
        labels=None,
        events=mission.events.iloc[:0] if events is None else events,
    )
    return np.concatenate([parts[i][1] for i in kept]), pooled
