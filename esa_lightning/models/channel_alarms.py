"""The channels an alarmed row names (``RowScores.channel_alarm`` of a per-row decision) and
the ``top_channels`` setting that says how many."""

from __future__ import annotations

from typing import Any

import numpy as np

from esa_lightning.errors import ESAInputError


def top_channels_setting(value: Any) -> int:
    """``top_channels`` (the channels an alarmed row names, ``top_channel_alarm``) checked: an
    integer >= 1, else an error naming the key."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ESAInputError("must be an integer >= 1", column="model.top_channels", value=value)
    return value


def top_channel_alarm(
    alarm: np.ndarray, channel_scores: np.ndarray, k: int, scored: np.ndarray | None = None
) -> np.ndarray:
    """uint8 [T, C]: on alarmed rows, the ``k`` channels with the highest scores.

    For detectors whose decision is per row: it names the channels an operator should look at
    and feeds the channel-aware metrics. ``scored`` (bool [C]): the channels that make the row
    score (a ``channel_norm`` on the target channels); only they are named, the others' scores
    stay as they are.
    """
    out = np.zeros(channel_scores.shape, dtype=np.uint8)
    rows = np.flatnonzero(alarm)
    n_channels = channel_scores.shape[1]
    cols = np.arange(n_channels) if scored is None else np.flatnonzero(np.asarray(scored, bool))
    if not len(rows) or not len(cols):
        return out
    k = min(k, len(cols))
    candidates = np.nan_to_num(channel_scores[rows][:, cols], nan=-np.inf)
    top = cols[np.argpartition(-candidates, k - 1, axis=1)[:, :k]]
    out[rows[:, None], top] = 1
    return out
