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
