"""The combiner's row features and the small helpers its fit and files share: each
component's feature columns, per-channel scores on one scale, standardised logistic weights and
the log-odds under them, labeled-run counts, contiguous folds and the gap-closing settings."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import maximum_filter1d

from esa_lightning.data.mission import Mission
from esa_lightning.errors import ESAInputError
from esa_lightning.models.base import RowScores, top_channel_alarm
from esa_lightning.models.raised_by import FROZEN, SCORE
from esa_lightning.postprocessing.f05_search import F05_CATEGORIES
from esa_lightning.postprocessing.gaps import gap_settings

log = logging.getLogger("esa_lightning")

#: the feature columns (and so the weights) ``component_features`` gives each component
FEATURES_PER_COMPONENT = 5
#: how many quantiles of each component's fit-range scores ``any_alarm`` ranks scores against
RANK_QUANTILES = 201
#: the gap widths ``combiner.gap_close`` chooses from unless given (the GRU's ``gap_close``'s)
GAP_WIDTHS = (0, 5, 25, 100, 400)


def component_features(rs: RowScores, neighbourhood: int, alarm: bool = False) -> np.ndarray:
    """float32 [T, FEATURES_PER_COMPONENT (+ 1 with ``alarm``)]: score, its neighbourhood max,
    channel max / mean / std (and the component's own alarm, 0 or 1)."""
    score = np.nan_to_num(rs.score.astype(np.float32), posinf=1e6)
    local = maximum_filter1d(score, size=max(1, 2 * neighbourhood + 1), mode="nearest")
    if rs.channel_scores is not None and rs.channel_scores.shape[1]:
        ch = np.nan_to_num(rs.channel_scores.astype(np.float32), posinf=1e6)
        stats = [ch.max(axis=1), ch.mean(axis=1), ch.std(axis=1)]
    else:
        stats = [score, score, np.zeros_like(score)]
    own = [(rs.alarm != 0).astype(np.float32)] if alarm else []
    return np.column_stack([score, local, *stats, *own]).astype(np.float32)


def rank_average(channel_scores: list[np.ndarray]) -> np.ndarray:
    """Per-channel scores of several components on one scale: the mean of per-column ranks
    scaled to [0, 1] (components score channels in different units)."""
    ranks = []
    for cs in channel_scores:
        order = np.argsort(np.argsort(np.nan_to_num(cs, nan=-np.inf), axis=1), axis=1)
        ranks.append(order.astype(np.float32) / max(1, cs.shape[1] - 1))
    return np.mean(ranks, axis=0).astype(np.float32)


def log_odds(
    x: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    coef: np.ndarray,
    intercept: float,
    silent: np.ndarray | None = None,
) -> np.ndarray:
    """float64 log-odds of anomaly of feature rows ``x`` under standardised weights;
    ``silent``: columns read as 0 whatever ``x`` holds there. One standardised copy of ``x``
    is made (divided in place where its type holds the quotient), ``x`` neither copied nor
    written: the numbers of ``((x - mean) / std) @ coef + intercept`` (of ``x`` with those
    columns zeroed), bit for bit."""
    z = x - mean
    if silent is not None:  # 0 - mean, in the type x - mean is computed in
        zero = np.zeros((1, len(silent)), dtype=x.dtype)
        z[:, silent] = zero - np.broadcast_to(mean, x.shape[1:])[silent]
    z = np.divide(z, std, out=z) if np.result_type(z, std) == z.dtype else z / std
    return z @ coef + intercept


def logistic_weights(
    x: np.ndarray, y: np.ndarray, c: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(mean, std, coef, intercept) of the standardised logistic regression (sklearn's ``C``
    ``c``) of ``y`` on ``x``; the mean of the standardised features when ``y`` holds one
    class. The mean and spread come back in float64 (their values those of ``x``'s type), as
    ``combiner.json`` gives them back: the fitted and the reloaded combiner score alike."""
    from sklearn.linear_model import LogisticRegression

    mean, std = x.mean(0), x.std(0) + 1e-6
    if len(np.unique(y)) < 2:
        return as_saved(mean), as_saved(std), np.ones(x.shape[1]) / x.shape[1], 0.0
    lr = LogisticRegression(C=c, class_weight="balanced", max_iter=1000)
    lr.fit((x - mean) / std, y)
    return as_saved(mean), as_saved(std), lr.coef_[0].astype(np.float64), float(lr.intercept_[0])


def as_saved(values: np.ndarray) -> np.ndarray:
    """``values`` in float64, as ``combiner.json`` (JSON numbers) gives them back."""
    return np.asarray(values, dtype=np.float64)


def any_of(names: list[str]) -> str:
    """``names`` as the subject of "... alarms": one name, or "any of a, b"."""
    return names[0] if len(names) == 1 else f"any of {', '.join(names)}"


def scored_events(part: Mission) -> int:
    """How many labeled events the F0.5 threshold search scores on ``part``: the distinct IDs
    of ``part.events`` of the categories the reported ``EW_F_0.50`` counts. The events, not
    runs of the label arrays: under ``metrics.label_channels=target`` an event labeled on
    non-target channels only is no event to the search, though its rows stay labeled."""
    events = part.events
    if "Category" in events.columns:
        events = events[events["Category"].isin(F05_CATEGORIES)]
    return int(events["ID"].nunique()) if len(events) else 0


def contiguous_folds(
    blocks: list[tuple[int, int]], n_folds: int
) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """((first row, stop row) of the range, (first, stop) in the fit's feature rows) of each
    fold: the runs of consecutive ``blocks``, a single run cut into ``n_folds`` pieces."""
    runs, pos = [], 0
    for a, b in blocks:
        if runs and runs[-1][0][1] == a:
            (ra, _), (fi, _) = runs[-1]
            runs[-1] = ((ra, b), (fi, pos + b - a))
        else:
            runs.append(((a, b), (pos, pos + b - a)))
        pos += b - a
    if len(runs) == 1:
        (a, b), (i, _) = runs[0]
        cuts = np.linspace(a, b, n_folds + 1).astype(int)
        pairs = zip(cuts[:-1], cuts[1:], strict=True)
        runs = [((lo, hi), (i + lo - a, i + hi - a)) for lo, hi in pairs if hi > lo]
    return runs


def label_free_names(names: list[str], label_free_components: list[str] | None) -> list[str]:
    """The components ``label_free_alarm`` alarms with: those of ``names`` whose training read
    no label (a supervised component's alarms cannot be checked on rows it did not train on
    when they hold too few events; a label-free one's threshold was chosen on labeled rows it
    never trained on). Every component, logged, when none is label-free."""
    chosen = [n for n in names if n in set(label_free_components or [])]
    if not chosen:
        log.warning("combiner: no component's training is label-free; alarming where any "
                    "component alarms")
        return list(names)
    return chosen


def check_flag(value: Any, key: str) -> bool:
    """``value`` of the true/false setting ``key``, or a one-line error naming it."""
    if not isinstance(value, bool):
        raise ESAInputError("must be true or false", column=key, value=value)
    return value


def check_gap_close(settings: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``combiner.gap_close`` as {"widths": sorted distinct ints, "tolerance": float}, or
    None (off); a one-line error naming the setting."""
    if settings is None:
        return None
    if not isinstance(settings, Mapping):
        raise ESAInputError("must be a mapping with widths and tolerance, or null",
                            column="combiner.gap_close", value=settings)
    unknown = sorted(set(settings) - {"widths", "tolerance"})
    if unknown:
        raise ESAInputError("unknown setting (known: widths, tolerance)",
                            column=f"combiner.gap_close.{unknown[0]}", value=settings[unknown[0]])
    widths, tolerance = gap_settings(settings.get("widths", list(GAP_WIDTHS)),
                                     settings.get("tolerance", 0.005), "combiner.gap_close")
    return {"widths": widths, "tolerance": tolerance}


def check_fitted(obj: Any, path: Path) -> None:
    """Refuse, naming ``path``, a combiner read from its file whose numbers do not describe a
    fitted one: lengths, finiteness, names, rule and quantiles."""
    width = obj.features_per_component * len(obj.names)
    numbers = np.concatenate([obj.mean, obj.std, obj.coef, [obj.intercept, obj.threshold]])
    if not (obj.names and all(a.shape == (width,) for a in (obj.mean, obj.std, obj.coef))
            and np.isfinite(numbers).all() and (obj.std > 0).all()
            and obj.neighbourhood >= 0 and obj.top_channels >= 1 and obj.gap_width >= 0):
        raise ESAInputError(
            f"combiner.json does not describe a fitted combiner of {len(obj.names)} "
            f"components (mean/std/coef of length {width}, finite, std > 0, gap_width >= 0)",
            path=path
        )
    if not obj.alarm_names or not set(obj.alarm_names) <= set(obj.names):
        raise ESAInputError(
            f"combiner.json: alarm_names must be some of its components {obj.names} "
            f"(got {obj.alarm_names})", path=path
        )
    q = obj.quantiles
    if obj.rule not in ("weights", "any_alarm") or (obj.rule == "any_alarm" and not (
            q is not None and q.shape == (len(obj.names), RANK_QUANTILES)
            and np.isfinite(q).all()
            and (np.diff(q, axis=1) >= 0).all())):
        raise ESAInputError(
            f"combiner.json: rule must be 'weights', or 'any_alarm' with {RANK_QUANTILES} "
            f"non-decreasing finite score quantiles per component (rule {obj.rule!r})",
            path=path
        )


def any_raised_by(outputs: list[RowScores]) -> np.ndarray | None:
    """``RowScores.raised_by`` of ``any_alarm``: the rules that raised each row in any of the
    alarming components' ``outputs``; None where one of them does not record them."""
    flags = [o.raised_by for o in outputs]
    if not flags or any(f is None for f in flags):
        return None
    return np.bitwise_or.reduce(np.stack(flags).astype(np.uint8), axis=0)


def alarm_columns(width: int, components: int) -> np.ndarray:
    """The columns of the components' own alarms among ``width`` feature columns of
    ``components`` components (``alarm_feature``: the last of each component's columns)."""
    per_component = width // max(1, components)
    return np.arange(per_component - 1, width, per_component)


def alarm_fed(names: list[str], coef: np.ndarray) -> list[str]:
    """The components (``names``, in column order) whose own alarm has a positive weight in
    ``coef`` (``alarm_feature``): the ones whose rules ``weights_raised_by`` reads, and whose
    stuck channels a row read ``frozen`` names."""
    columns = alarm_columns(len(coef), len(names))
    return [n for n, column in zip(names, columns, strict=True) if coef[column] > 0]


def weights_raised_by(
    decided: np.ndarray,
    x: np.ndarray,
    outputs: list[RowScores],
    weights: tuple[np.ndarray, np.ndarray, np.ndarray, float],
    threshold: float,
) -> np.ndarray:
    """uint8 [T] ``RowScores.raised_by`` of the rows the weights alarm (``decided``: log-odds
    above ``threshold``) when each component's own alarm is a feature (``alarm_feature``; the
    last of each component's columns of ``x``): ``score`` where the components' scores alone
    cross the threshold (the log-odds with every alarm feature 0, as though no component
    alarmed), else the rules that raised the alarms of the components (``outputs``, in column
    order) that alarm there with a positive weight on their alarm: without those alarms the row
    would not alarm. A component that records no rules counts as ``score``."""
    mean, std, coef, intercept = weights
    columns = alarm_columns(x.shape[1], len(outputs))
    alone = log_odds(x, mean, std, coef, intercept, silent=columns) > threshold
    flags = (decided & alone).astype(np.uint8) * np.uint8(SCORE)
    fed = decided & ~alone
    for rs, column in zip(outputs, columns, strict=True):
        if coef[column] <= 0:  # its alarm lowers the log-odds: it fed no alarm
            continue
        rows = fed & (rs.alarm != 0)
        theirs = rs.raised_by if rs.raised_by is not None else rs.alarm * np.uint8(SCORE)
        flags[rows] |= np.asarray(theirs, dtype=np.uint8)[rows]
    flags[decided & (flags == 0)] = SCORE  # a component alarm recorded without its rule
    return flags


def any_stuck(outputs: list[RowScores]) -> np.ndarray | None:
    """bool [T, C]: the channels any of the components' ``outputs`` found stuck on each row
    (``RowScores.stuck_channels``); None where none of them has a stuck-channel rule."""
    stuck = [o.stuck_channels for o in outputs if o.stuck_channels is not None]
    if not stuck:
        return None
    width = min(s.shape[1] for s in stuck)
    return np.logical_or.reduce([np.asarray(s[:, :width], dtype=bool) for s in stuck])


def combined_row_scores(
    score: np.ndarray,
    alarm: np.ndarray,
    channel_scores: np.ndarray | None,
    top_channels: int,
    threshold: np.ndarray | None,
    raised_by: np.ndarray | None,
    stuck: np.ndarray | None = None,
) -> RowScores:
    """The combiner's ``RowScores``: an alarmed row names its ``top_channels`` channels of
    highest (rank-averaged) score, except where only a component's stuck-channel rule raised it
    (``raised_by`` ``frozen`` alone): there it names the stuck channel(s) (``stuck``, the
    components' ``stuck_channels``) alone, as the GRU and the channel ensemble do; a row raised
    by ``frozen`` and another rule names both. Without ``raised_by`` or ``stuck`` every alarmed
    row names its top channels."""
    named = None
    if channel_scores is not None:
        own = alarm
        if raised_by is not None and stuck is not None:
            flags = np.asarray(raised_by, dtype=np.uint8)
            own = (alarm != 0) & ((flags & ~np.uint8(FROZEN)) != 0)
        named = top_channel_alarm(own, channel_scores, top_channels)
        if raised_by is not None and stuck is not None:
            frozen = (alarm != 0) & ((np.asarray(raised_by, dtype=np.uint8) & FROZEN) != 0)
            width = min(named.shape[1], stuck.shape[1])
            named[:, :width] |= (stuck[:, :width] & frozen[:, None]).astype(np.uint8)
            bare = (alarm != 0) & ~named.any(axis=1)  # a frozen flag without a stuck channel
            named |= top_channel_alarm(bare, channel_scores, top_channels)
    return RowScores(
        score=score,
        alarm=alarm,
        channel_scores=channel_scores,
        channel_alarm=named,
        threshold=threshold,
        raised_by=raised_by,
    )
