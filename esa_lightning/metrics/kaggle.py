"""Sample-based scores: the Kaggle ESA-ADB challenge F0.5 and the threshold-free AUC-PR."""

from __future__ import annotations

import numpy as np

from esa_lightning.errors import ESAInputError
from esa_lightning.metrics.intervals import Intervals, f_beta, overlap_counts, runs


def _binary(x: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(x).ravel()
    if arr.dtype != bool and arr.size and not ((arr == 0) | (arr == 1)).all():
        raise ESAInputError(f"{name} must hold only 0/1 values")
    return arr.astype(bool)


def kaggle_scores(y_true: np.ndarray, y_pred: np.ndarray, beta: float = 0.5) -> dict[str, float]:
    """Corrected event-wise precision / recall / F in samples, events = runs of ``y_true``.

    TP: events sharing a sample with a predicted run; FP: predicted runs touching no event;
    precision x (1 - predicted nominal samples / nominal samples).
    """
    t, p = _binary(y_true, "y_true"), _binary(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ESAInputError(f"y_true has {t.size} samples but y_pred has {p.size}")
    events, preds = Intervals(*runs(t)), Intervals(*runs(p))
    tp = int(np.count_nonzero(overlap_counts(events, preds)))
    fp = int(np.count_nonzero(overlap_counts(preds, events) == 0))
    precision = tp / (tp + fp) if tp + fp else 0.0
    nominal = int(t.size - np.count_nonzero(t))
    if precision > 0 and nominal > 0:
        precision *= 1.0 - np.count_nonzero(p & ~t) / nominal
    recall = tp / len(events) if len(events) else 0.0
    return {
        "precision": float(precision),
        "recall": float(recall),
        f"F_{beta:.2f}": f_beta(precision, recall, beta),
    }


def kaggle_f05(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The Kaggle challenge score: corrected event-wise F0.5 over binary sample arrays."""
    return kaggle_scores(y_true, y_pred, 0.5)["F_0.50"]


def auc_pr(labels_binary: np.ndarray, scores: np.ndarray) -> float:
    """Average precision of the scores (0.0 when there is no positive row)."""
    y = _binary(labels_binary, "labels")
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ESAInputError(f"{y.size} labels but {s.size} scores")
    if not y.any():
        return 0.0
    if not np.isfinite(s).all():  # +inf ranks first, NaN and -inf last: their ranks (ties
        # kept), no arithmetic (hi + 1 tied +inf with a score of 1e300, inf - inf warned)
        s = np.unique(np.where(np.isnan(s), -np.inf, s), return_inverse=True)[1].astype(np.float64)
    return average_precision(y, s)


def average_precision(y: np.ndarray, s: np.ndarray) -> float:
    """sklearn's ``average_precision_score`` (sum over thresholds of dRecall x precision) with
    an unstable sort: ties form one threshold either way, and it is several times faster."""
    order = np.argsort(-s, kind="quicksort")
    s_sorted, hits = s[order], y[order]
    last_of_group = np.r_[np.flatnonzero(np.diff(s_sorted)), s_sorted.size - 1]
    tps = np.cumsum(hits, dtype=np.int64)[last_of_group]
    precision = tps / (last_of_group + 1)
    recall_gain = np.diff(np.r_[0, tps]) / tps[-1]
    return float(np.sum(recall_gain * precision))
