"""What every detector LightningModule hands back: per-row scores on a mission's own rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from esa_lightning.data.mission import Mission


@dataclass
class RowScores:
    """Scores aligned with the rows of the mission they were computed on.

    score: float32 [T] anomaly score per row (higher is more anomalous).
    alarm: uint8 [T] 0/1 decision per row after the fitted threshold / heads.
    channel_scores: float32 [T, C] per-channel scores (channel order of the mission) or None.
    channel_alarm: uint8 [T, C] per-channel decisions or None.
    """

    score: np.ndarray
    alarm: np.ndarray
    channel_scores: np.ndarray | None = None
    channel_alarm: np.ndarray | None = None


class Detector(Protocol):
    """Implemented by every detector LightningModule used by ``train.py``."""

    def score_rows(self, mission: Mission) -> RowScores:
        """Score every row of ``mission`` (after fitting); must not look at its labels."""
        ...


def top_channel_alarm(alarm: np.ndarray, channel_scores: np.ndarray, k: int) -> np.ndarray:
    """uint8 [T, C]: on alarmed rows, the ``k`` channels with the highest scores.

    For detectors whose decision is per row: it names the channels an operator should look at
    and feeds the channel-aware metrics.
    """
    out = np.zeros(channel_scores.shape, dtype=np.uint8)
    rows = np.flatnonzero(alarm)
    if not len(rows) or not channel_scores.shape[1]:
        return out
    k = min(k, channel_scores.shape[1])
    top = np.argpartition(-np.nan_to_num(channel_scores[rows], nan=-np.inf), k - 1, axis=1)[:, :k]
    out[rows[:, None], top] = 1
    return out
