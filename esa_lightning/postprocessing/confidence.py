"""Calibrated confidence of anomaly scores: how unusual a score is among nominal scores."""

from __future__ import annotations

import numpy as np


def confidence(scores: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """float64 [N]: for each score, the fraction of the nominal ``reference`` scores below it.

    ``reference`` holds the detector's scores on label-free rows it did not train its threshold
    against blindly (the validation range's nominal rows). 0.99 reads "higher than 99 % of
    nominal scores"; a score above every nominal one gets 1.0. NaN scores, and every score when
    ``reference`` holds no finite value, get NaN. Works for any score scale (raw errors,
    probabilities, log-odds): only the order of the scores matters.
    """
    s = np.asarray(scores, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64).ravel()
    ref = np.sort(ref[np.isfinite(ref)])
    out = np.full(s.shape, np.nan)
    if len(ref) == 0:
        return out
    finite = ~np.isnan(s)
    out[finite] = np.searchsorted(ref, s[finite], side="left") / len(ref)
    return out
