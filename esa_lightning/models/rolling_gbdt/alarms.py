"""Row scores -> alarms: a threshold, then gaps between alarms shorter than a width closed.

``GapClosingF05`` (post rule kind ``f05_gap``) chooses both on the validation range, with its
labels: every width of ``widths`` with every candidate threshold (``f05_candidates`` of the
validation scores and a 0.02-step probability grid) is scored by corrected event-wise F0.5, as
the reported ``EW_F_0.50`` counts it (``postprocessing.f05_search.event_f05``). The best
pair wins; among ties the narrowest width, then the tied threshold nearest the middle of the tied
ones (the widest margin to either side, where the quantile candidates crowd the top scores).
Both are buffers. Without a labeled validation event it falls back to
``fallback_threshold`` and no gap closing (logged). The validation rows are scored as the
evaluation scores them (``validation_probability``): a single grid's with the training rows
before them as context (the centred windows of its first rows reach into training), an
independent series' alone; and each pair's alarms are those scoring gives: closed, then the
rows of readings float32 cannot hold alarmed (never closed from). Independent series are
pooled into one
timeline, each series' rows and events shifted apart, and scored as the evaluation scores them:
gaps closed within each series, and no alarm running from one series into the next (the
``segments`` of ``event_f05``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from esa_lightning.data.mission import Mission, forced_alarm
from esa_lightning.errors import ESAInputError
from esa_lightning.models.base import context_start
from esa_lightning.models.raised_by import rule_flags
from esa_lightning.postprocessing.base import RULE_KEY, PostRule
from esa_lightning.postprocessing.f05_search import event_f05, f05_candidates
from esa_lightning.postprocessing.gaps import (
    check_int_list,
    close_gaps,
    pooled_range,
    series_starts,
    width_problem,
)

log = logging.getLogger("esa_lightning")
#: thresholds tried besides the quantiles of the validation scores (the score is a probability)
PROBABILITY_GRID = np.linspace(0.02, 0.98, 49)


class GapClosingF05(PostRule):
    """Threshold and gap-closing width chosen together for validation event-wise F0.5."""

    kind = "f05_gap"

    def __init__(
        self,
        widths: list[int] | tuple[int, ...] = (0, 5, 25, 100),
        n_candidates: int = 200,
        fallback_threshold: float = 0.5,
    ) -> None:
        super().__init__()
        key = RULE_KEY
        self.widths = check_int_list(widths, f"{key}.widths", 0)
        if not isinstance(n_candidates, int) or n_candidates < 1:
            raise ESAInputError(
                "must be an integer >= 1", column=f"{key}.n_candidates", value=n_candidates
            )
        if not 0.0 <= float(fallback_threshold) <= 1.0:
            raise ESAInputError(
                "must lie in [0, 1]", column=f"{key}.fallback_threshold", value=fallback_threshold
            )
        self.n_candidates = n_candidates
        self.fallback_threshold = float(fallback_threshold)
        self.register_buffer("threshold", torch.tensor(float("nan"), dtype=torch.float64))
        self.register_buffer("width", torch.tensor(-1, dtype=torch.int64))

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], context: Mapping[str, Any]) -> PostRule:
        return cls(**settings)

    @property
    def is_fitted(self) -> bool:
        return bool(torch.isfinite(self.threshold)) and int(self.width) >= 0

    @property
    def context_rows(self) -> int:
        """A gap is closed from the alarms at most ``width`` rows away on either side."""
        return int(self.width) if self.is_fitted else max(self.widths)

    def fitted_state_problem(self) -> str | None:
        """A loaded width the fit never writes (``artifact.fitted``), or None."""
        return width_problem(self.width, self.widths)

    def alarms(self, score: np.ndarray) -> np.ndarray:
        """uint8 [T] alarms of row scores (all 0 before fitting)."""
        if not self.is_fitted:
            return np.zeros(len(score), dtype=np.uint8)
        alarm = np.asarray(score, dtype=np.float64) > float(self.threshold)
        return close_gaps(alarm, int(self.width)).astype(np.uint8)

    def raised_by(self, score: np.ndarray, alarm: np.ndarray) -> np.ndarray:
        """uint8 [T] ``RowScores.raised_by`` of ``alarm`` (``alarms(score)``): ``score`` above
        the threshold, ``gap_close`` on the rows closing the gaps added."""
        if not self.is_fitted:
            return np.zeros(len(score), dtype=np.uint8)
        return rule_flags(np.asarray(score, dtype=np.float64) > float(self.threshold), alarm)

    def fit(self, model: Any, datamodule: Any) -> None:
        """Choose threshold and width on the validation range of ``datamodule.mission``."""
        self.fit_scores(*pooled_validation(model, datamodule.mission))

    def f05_table(self, score: np.ndarray, part: Mission) -> list[tuple[float, int, float]] | None:
        """(F0.5, width, threshold) of every pair tried on validation row scores ``score`` of
        ``part`` (one grid or pooled series): its alarms closed, then the rows of readings
        float32 cannot hold alarmed, as scoring forces them (``forced_alarm``); None without a
        labeled event there."""
        candidates = np.unique(
            np.concatenate([f05_candidates(score, self.n_candidates), PROBABILITY_GRID])
        )
        table = []
        seen: dict[bytes, float | None] = {}  # alarms -> F0.5: many candidates alarm alike
        segments, starts = part.meta.get("segments"), series_starts(part)
        forced = part.unrepresentable  # scoring alarms them whatever the threshold
        for width in self.widths:
            for thr in candidates:
                alarm = forced_alarm(close_gaps(score > thr, width, starts), forced)
                key = hashlib.blake2b(np.packbits(alarm).tobytes(), digest_size=16).digest()
                if key not in seen:
                    seen[key] = event_f05(alarm, part, segments)
                if seen[key] is None:
                    return None
                table.append((seen[key], width, float(thr)))
        return table

    def fit_scores(self, score: np.ndarray, part: Mission) -> None:
        """Fit on validation row scores ``score`` of ``part`` (one grid or pooled series)."""
        table = self.f05_table(score, part)
        if table is None:
            return self._fall_back(part)
        best = max(f for f, _, _ in table)
        tied = [(w, t) for f, w, t in table if f >= best - 1e-12]
        width = min(w for w, _ in tied)
        thresholds = np.array(sorted(t for w, t in tied if w == width))
        middle = (thresholds[0] + thresholds[-1]) / 2
        thr = float(thresholds[np.argmin(np.abs(thresholds - middle))])
        self.threshold.fill_(thr)
        self.width.fill_(width)
        log.info(
            "f05_gap: threshold %.6g, gap width %d: validation EW_F_0.50 %.4f (%d tied)",
            thr,
            width,
            best,
            len(thresholds),
        )

    def _fall_back(self, part: Mission) -> None:
        log.warning(
            "%s: no labeled anomaly or rare event on the validation range; alarm threshold "
            "falls back to %g, no gap closing",
            part.name,
            self.fallback_threshold,
        )
        self.threshold.fill_(self.fallback_threshold)
        self.width.fill_(0)


def pooled_validation(model: Any, mission: Mission) -> tuple[np.ndarray, Mission]:
    """(float64 row scores, the range they score): the validation range of a single grid, or
    every series' validation range laid end to end on one shifted timeline, each scored as
    the evaluation scores it (``validation_probability``)."""
    parts = [
        (grid.val(), validation_probability(model, grid, mission.is_multiseries))
        for grid in mission.grids().values()
        if grid.test_start > grid.val_start
    ]
    if not parts:
        raise ESAInputError("no validation rows to choose an alarm threshold on", path=mission.name)
    score, part = pooled_range(mission, parts, "validation")
    return score.astype(np.float64), part


def validation_probability(model: Any, grid: Mission, alone: bool) -> np.ndarray:
    """float32 row probabilities of ``grid``'s validation rows as ``runtime.evaluation`` and
    ``predict.py range=val`` score them: a single grid's with the rows before them as context
    (``context_start``: its centred windows reach back into training) and without the test
    rows after them; an independent series' (``alone``) on its validation rows alone, as the
    Telemanom protocol scores each recording."""
    if alone:
        return model.row_probability(grid.val())
    lo = context_start(grid.val_start, int(model.context_rows), int(model.alignment_rows))
    return model.row_probability(grid.slice(lo, grid.test_start))[grid.val_start - lo :]
