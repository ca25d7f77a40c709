"""Choosing a threshold by corrected event-wise F0.5, scored as the reported ``EW_F_0.50`` is:
the labeled events a search scores, each candidate's F0.5 on a range (the alarms scoring forces
added), the best candidate on one range or the most stable over several folds, and the
candidates themselves. Every fit that chooses a setting by F0.5 scores through here: the window
``f05`` threshold, the channel ensemble's ``peaks`` height, esa_full's combiner, the gap widths
and the random-forest gate's check."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from esa_lightning.data.mission import Mission, forced_alarm
from esa_lightning.metrics.report import SELECTIONS

F05_CATEGORIES = SELECTIONS[""]  # what the reported EW_F_0.50 counts


def labeled_event_count(part: Mission, categories: list[str] | None = None) -> int:
    """The distinct labeled events of ``categories`` (``F05_CATEGORIES``) on ``part``: what
    an F0.5 search scores."""
    events = part.events
    if len(events) == 0 or len(part.values) == 0:
        return 0
    if "Category" in events.columns:
        wanted = F05_CATEGORIES if categories is None else categories
        events = events[events["Category"].isin(wanted)]
    return int(events["ID"].nunique()) if "ID" in events.columns else len(events)


def f05_per_candidate(
    candidates: np.ndarray,
    alarm_of: Callable[[float], np.ndarray],
    part: Mission,
    categories: list[str] | None = None,
    segments: list[tuple[int, int]] | None = None,
) -> np.ndarray | None:
    """float [K]: the corrected event-wise F0.5 on ``part`` of each candidate's row alarms
    (``alarm_of``), scored as the reported ``EW_F_0.50`` is (the events of ``categories``, the
    range's full extent; the other labeled events, e.g. communication gaps, set aside: an alarm
    there is neither a true nor a false one), with the rows of readings float32 cannot hold
    (``part.unrepresentable``) alarmed on top as scoring forces them (``forced_alarm``): every
    fit scoring through here scores the alarms the evaluation scores. ``segments``: the spans
    of independent series laid end to end on ``part`` (``data.mission.series_spans``): an alarm
    never runs from one into the next, as the evaluation scores them. None when ``part`` holds
    no such event."""
    from esa_lightning.metrics.event_wise import event_wise_scores
    from esa_lightning.metrics.report import series_intervals
    from esa_lightning.metrics.truth import read_truth

    categories = F05_CATEGORIES if categories is None else categories
    events, select = part.events, None
    if "Category" in events.columns:
        select = {"Category": categories}
        if not events["Category"].isin(categories).any():
            return None
    if len(events) == 0 or len(part.values) == 0 or len(candidates) == 0:
        return None
    times = np.asarray(part.timestamps)
    full_range = (times[0], times[-1])
    truth = read_truth(events, select)  # once for every candidate

    def predicted(alarm: np.ndarray) -> Any:
        alarm = forced_alarm(alarm, part.unrepresentable)
        return (times, alarm) if segments is None else series_intervals(times, alarm, segments)

    return np.array(
        [
            event_wise_scores(
                truth,
                predicted(alarm_of(float(thr))),
                betas=0.5,
                full_range=full_range,
            )["EW_F_0.50"]
            for thr in candidates
        ]
    )


def event_f05(
    alarm: np.ndarray, part: Mission, segments: list[tuple[int, int]] | None = None
) -> float | None:
    """Corrected event-wise F0.5 of row ``alarm`` on ``part``, counted as the reported
    ``EW_F_0.50`` is (``f05_per_candidate`` of one candidate: the forced alarms of
    ``part.unrepresentable`` added); None without such an event."""
    f = f05_per_candidate(np.zeros(1), lambda _: alarm, part, segments=segments)
    return None if f is None else float(f[0])


def _median_best(candidates: np.ndarray, f: np.ndarray) -> tuple[float, float, int]:
    """(candidate, F0.5, number tied): the median of the candidates tied for the best ``f``."""
    tied = np.flatnonzero(f >= f.max() - 1e-12)
    return float(candidates[tied[len(tied) // 2]]), float(f.max()), len(tied)


def best_f05_threshold(
    candidates: np.ndarray,
    alarm_of: Callable[[float], np.ndarray],
    part: Mission,
    categories: list[str] | None = None,
) -> tuple[float, float, int] | None:
    """(threshold, F0.5, number tied) of the candidate whose row alarms (``alarm_of``) give the
    best corrected event-wise F0.5 on ``part`` (``f05_per_candidate``); ties go to the median
    tied candidate. None when ``part`` holds no such event."""
    f = f05_per_candidate(candidates, alarm_of, part, categories)
    return None if f is None else _median_best(np.asarray(candidates), f)


def stable_f05_threshold(
    candidates: np.ndarray,
    folds: list[tuple[Mission, Callable[[float], np.ndarray]]],
    categories: list[str] | None = None,
) -> tuple[float, float, int] | None:
    """(threshold, mean F0.5, folds used) of the candidate whose row alarms give the best mean
    corrected event-wise F0.5 over ``folds``: (range, its alarms of a threshold) pairs; ranges
    without an event of ``categories`` are left out, ties go to the median tied candidate. A
    threshold good on every fold, not the one that happens to catch one of a validation
    range's five events. None when no fold holds such an event."""
    per_fold = []
    for part, alarm_of in folds:
        f = f05_per_candidate(candidates, alarm_of, part, categories)
        if f is not None:
            per_fold.append(f)
    if not per_fold:
        return None
    thr, mean_f, _ = _median_best(np.asarray(candidates), np.mean(per_fold, axis=0))
    return thr, mean_f, len(per_fold)


def f05_candidates(scores: np.ndarray, n_candidates: int = 200) -> np.ndarray:
    """Quantiles of finite ``scores``, denser towards the top."""
    finite = scores[np.isfinite(scores)]
    if len(finite) == 0:
        return np.zeros(0)
    q = np.unique(np.concatenate([np.linspace(0.0, 0.9, 10), 1 - np.geomspace(0.1, 1e-5, 190)]))
    return np.unique(np.quantile(finite, q[:n_candidates] if n_candidates < len(q) else q))
