"""Calibrated confidence of a score: where it falls among the detector's nominal scores.

At training, the fitted detector scores its validation range once more and keeps a sorted
sample (evenly spaced quantiles) of the scores of its nominal rows (no label of any kind) in
the artifact (``info["calibration"]``, written by ``runtime.calibration``).
``confidence(scores, reference)`` is then the fraction of those nominal scores strictly below
each score: 0.5 is a typical nominal row, 0.999 a score that one nominal row in a thousand
exceeds. Without nominal validation rows the training range
is used instead (recorded as ``source``); a detector trained before this was recorded has none,
and its confidence is NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np

CALIBRATION_KEY = "calibration"
REFERENCE_SIZE = 1001  # quantiles kept: a resolution of 0.1 %


def confidence(scores: np.ndarray, reference: np.ndarray | None) -> np.ndarray:
    """float64 [N]: the fraction of the sorted nominal ``reference`` scores strictly below each
    score (NaN where the score is NaN, or everywhere without a reference)."""
    scores = np.asarray(scores, dtype=np.float64)
    if reference is None or len(reference) == 0:
        return np.full(scores.shape, np.nan)
    reference = np.asarray(reference, dtype=np.float64)
    out = np.searchsorted(reference, scores, side="left") / len(reference)
    out[np.isnan(scores)] = np.nan
    return out


def reference_sample(scores: np.ndarray, size: int = REFERENCE_SIZE) -> np.ndarray:
    """A sorted sample of ``scores``: ``size`` evenly spaced quantiles (all of them if fewer)."""
    scores = np.asarray(scores, dtype=np.float64)
    scores = np.sort(scores[np.isfinite(scores)])
    if len(scores) <= size:
        return scores
    return np.quantile(scores, np.linspace(0.0, 1.0, size))


def stored_reference(info: dict[str, Any]) -> np.ndarray | None:
    """The sorted nominal reference scores an artifact's ``info`` holds, or None."""
    record = (info or {}).get(CALIBRATION_KEY) or {}
    scores = record.get("reference_scores")
    return None if not scores else np.asarray(scores, dtype=np.float64)
