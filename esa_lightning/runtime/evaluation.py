"""Score a fitted detector on a mission range with the full ESA-ADB metric suite.

Independent series (NASA telemanom data) are scored as one timeline: each series' rows and
events are shifted into a disjoint stretch of the time axis, so event counts add up over channels
exactly as in the Telemanom paper, and a prediction can never match an event of another channel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from esa_lightning.data.label_channels import SET_ASIDE
from esa_lightning.data.mission import Mission, events_overlapping, one_timeline, series_spans
from esa_lightning.metrics.report import SELECTIONS, scored_columns
from esa_lightning.models.base import RowScores, Scorer


@dataclass
class ScoredRange:
    """A detector's output on one range, with everything the metrics need."""

    mission: Mission
    scores: RowScores
    timestamps: np.ndarray
    events: pd.DataFrame
    # independent series laid end to end: each one's (first, last) timestamp
    segments: list[tuple[int, int]] | None = None


def score_range(
    model: Scorer,
    part: Mission,
    chunk_rows: int = 0,
    keep_channel_scores: str = "all",
    within: Mission | None = None,
    channel_scores_from: int | None = None,
) -> ScoredRange:
    """``model.score_rows`` of every grid of ``part`` (each independent series, or its one
    grid), ``chunk_rows`` rows at a time when > 0 (``chunks.score_in_chunks``), joined into one
    scored range.

    ``within``: the single-grid mission ``part`` was sliced from (``part = within.test()``);
    the rows before ``part`` are then the scoring context, as they were when the model was
    fitted: detrending and windows see the history before the range's first row. Independent
    series (NASA) keep scoring each range alone: their test recordings are separate from the
    training ones, and the Telemanom protocol scores them so. ``channel_scores_from``: as
    ``score_in_chunks`` (a row of ``part``)."""
    from esa_lightning.runtime.chunks import score_in_chunks

    pieces = []
    for name, grid in part.grids().items():
        source, first_row = grid, 0
        if within is not None and not within.is_multiseries:
            parent = within.grids()[name]
            first_row = grid.meta.get("row_offset", 0) - parent.meta.get("row_offset", 0)
            source = parent.slice(0, first_row + len(grid.values))
        scores = score_in_chunks(
            model, source, chunk_rows, keep_channel_scores=keep_channel_scores,
            first_row=first_row, channel_scores_from=channel_scores_from,
        )
        pieces.append((name, grid, scores))
    if part.is_multiseries:
        return concatenate_series(part, pieces)
    ((_, grid, scores),) = pieces
    return ScoredRange(grid, scores, np.asarray(grid.timestamps), grid.events)


def concatenate_series(part: Mission, pieces: list[tuple[str, Mission, RowScores]]) -> ScoredRange:
    """The series' scored pieces as one range on one shifted timeline (``one_timeline``)."""
    stamps, events, kept = one_timeline([sub for _, sub, _ in pieces])
    scores = [pieces[i][2] for i in kept]
    rs = RowScores(
        score=np.concatenate([s.score for s in scores]),
        alarm=np.concatenate([s.alarm for s in scores]),
    )
    segments = series_spans(stamps, [len(s.alarm) for s in scores])
    return ScoredRange(
        part, rs, stamps, part.events.iloc[:0] if events is None else events, segments
    )


def report_for(scored: ScoredRange, prefix: str) -> dict[str, float]:
    """The full metric dict of one scored range, keys prefixed like ``val/EW_F_0.50``."""
    from esa_lightning.metrics import full_report

    channel_alarm = scored.scores.channel_alarm
    # channel-aware scores need labels that name channels (Mission.has_channel_labels), and
    # count the channels metrics.label_channels scores (Mission.scored_channels)
    mission = scored.mission
    channels = mission.scored_channels if mission.has_channel_labels else None
    if channels is not None and channel_alarm is not None:
        channel_alarm, _ = scored_columns(
            channel_alarm, list(mission.channels["Channel"]), set(channels["Channel"])
        )
    result = full_report(
        scored.events,
        scored.timestamps,
        scored.scores.alarm,
        score=scored.scores.score,
        channel_alarm=channel_alarm if channels is not None else None,
        channel_names=None if channels is None else list(channels["Channel"]),
        channels_table=channels,
        segments=scored.segments,
    )
    return {f"{prefix}/{k}": float(v) for k, v in result.items()}


#: the categories a range must hold an event of to be scored (``EW_recall``'s)
SCORED_CATEGORIES = SELECTIONS[""]

#: why a range with labels is not scored: they hold no event (an all-zero label column)
NO_LABELED_EVENT = "no labeled anomaly or rare event"


def unscored_reason(part: Mission) -> str | None:
    """Why ``part`` gets no labeled metrics (``empty``, ``no labels``, ``NO_LABELED_EVENT``),
    or None when it is scored: a range without labels has no metric keys, never 0.0
    (interfaces: metric names). Where ``metrics.label_channels=target`` set aside the events
    of its rows (none with a segment on a target channel), the reason says so and counts them.
    """
    if part.n_rows == 0:
        return "empty"
    if has_labeled_events(part):
        return None
    return no_event_reason([part]) if has_labels(part) else "no labels"


def no_event_reason(parts: list[Mission]) -> str:
    """``NO_LABELED_EVENT``, naming how many anomalies and rare events of ``parts``' rows
    ``metrics.label_channels=target`` set aside (on non-target channels only), where it did."""
    aside = set_aside_events(parts)
    if not aside:
        return NO_LABELED_EVENT
    return (f"{NO_LABELED_EVENT} on the target channels: {aside} labeled event(s) on "
            "non-target channels only set aside by metrics.label_channels=target")


def set_aside_events(parts: list[Mission]) -> int:
    """How many anomalies and rare events (distinct IDs, per series) in the labeled rows of
    ``parts`` ``metrics.label_channels=target`` set aside (``data.label_channels.SET_ASIDE``):
    a slice keeps those of its range by ``mission.range_events`` (an event wholly between the
    rows either side of a split is the later range's), as it does its events."""
    ids = set()
    for i, part in enumerate(parts):
        for name, g in enumerate(_labeled_grids(part)):
            aside = g.meta.get(SET_ASIDE)
            if aside is None or not len(aside):
                continue
            aside = events_overlapping(aside, g.timestamps)
            scored = aside.loc[aside["Category"].isin(SCORED_CATEGORIES), "ID"]
            ids |= {(i, name, event) for event in scored}
    return len(ids)


def has_labels(part: Mission) -> bool:
    """Whether ``part``'s labels are known, an all-zero label column included: not the case
    without labels, nor for a range holding rows a reader marks unlabeled
    (``meta["train_labeled"]`` / ``meta["test_labeled"]`` False: a file without the column)."""
    return bool(_labeled_grids(part))


def has_labeled_events(part: Mission) -> bool:
    """Whether ``part`` carries labels with an anomaly or rare event on its own rows: a range
    without one has no labeled metric keys at all, never 0.0 (interfaces: metric names).

    A reader without labels for the test range (Kaggle's ``test.parquet``) sets
    ``meta["test_labeled"] = False``: a range holding test rows is then unlabeled (its zeros are
    unknowns), while the validation range before it keeps its labels. ``train_labeled`` False
    (a ``train.parquet`` without the column) makes a range holding training rows unlabeled
    alike: its test rows' events are not scored with the training rows' zeros as nominal.
    """
    if part.meta.get("label_channels") == "target":  # the events left (data.label_channels)
        return any(
            g.events["Category"].isin(SCORED_CATEGORIES).any() for g in _labeled_grids(part)
        )
    return any(g.is_anomaly.any() for g in _labeled_grids(part))


def _labeled_grids(part: Mission) -> list[Mission]:
    """The grids of ``part`` whose labels are known on every row (``has_labels``)."""
    train_unlabeled = not part.meta.get("train_labeled", True)
    test_unlabeled = not part.meta.get("test_labeled", True)
    return [
        g
        for g in part.grids().values()
        if g.labels is not None
        and not (test_unlabeled and g.test_start < g.n_rows)
        and not (train_unlabeled and g.test_start > 0)
    ]
