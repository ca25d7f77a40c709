"""Score a fitted detector on a mission range with the full ESA-ADB metric suite.

Independent series (NASA telemanom data) are scored as one timeline: each series' rows and
events are shifted into a disjoint stretch of the time axis, so event counts add up over channels
exactly as in the Telemanom paper, and a prediction can never match an event of another channel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from esa_lightning.data.mission import Mission
from esa_lightning.models.base import RowScores, Scorer


@dataclass
class ScoredRange:
    """A detector's output on one range, with everything the metrics need."""

    mission: Mission
    scores: RowScores
    timestamps: np.ndarray
    events: pd.DataFrame


def score_range(
    model: Scorer, part: Mission, chunk_rows: int = 0, keep_channel_scores: str = "all"
) -> ScoredRange:
    """Run ``model.score_rows`` on a single-grid range (``chunk_rows`` at a time when > 0, see
    ``chunks.score_in_chunks``) or on every series of a multi-series one."""
    if not part.is_multiseries:
        from esa_lightning.runtime.chunks import score_in_chunks

        scores = score_in_chunks(model, part, chunk_rows, keep_channel_scores=keep_channel_scores)
        return ScoredRange(part, scores, np.asarray(part.timestamps), part.events)
    pieces = [(name, sub, model.score_rows(sub)) for name, sub in part.series.items()]
    return concatenate_series(part, pieces)


def concatenate_series(part: Mission, pieces: list[tuple[str, Mission, RowScores]]) -> ScoredRange:
    offset = 0
    stamps, events, score, alarm = [], [], [], []
    for _, sub, rs in pieces:
        ts = np.asarray(sub.timestamps, dtype=np.int64)
        if not len(ts):
            continue
        shift = offset - int(ts[0])
        stamps.append(ts + shift)
        ev = sub.events.copy()
        if len(ev):
            ev["StartTime"] = ev["StartTime"].astype(np.int64) + shift
            ev["EndTime"] = ev["EndTime"].astype(np.int64) + shift
            events.append(ev)
        score.append(rs.score)
        alarm.append(rs.alarm)
        offset = int(stamps[-1][-1]) + 2  # a one-sample gap keeps runs of series apart
    events_df = pd.concat(events, ignore_index=True) if events else part.events.iloc[:0]
    rs = RowScores(score=np.concatenate(score), alarm=np.concatenate(alarm))
    return ScoredRange(part, rs, np.concatenate(stamps), events_df)


def report_for(scored: ScoredRange, prefix: str) -> dict[str, float]:
    """The full metric dict of one scored range, keys prefixed like ``val/EW_F_0.50``."""
    from esa_lightning.metrics import full_report

    channel_alarm = scored.scores.channel_alarm
    # channel-aware scores need per-channel labels: none for independent series, and Kaggle
    # files broadcast one row label to every channel (its events name no channel)
    per_channel = not (scored.mission.is_multiseries or scored.mission.meta.get("labels_broadcast"))
    channels = scored.mission.channels if per_channel else None
    result = full_report(
        scored.events,
        scored.timestamps,
        scored.scores.alarm,
        score=scored.scores.score,
        channel_alarm=channel_alarm if channels is not None else None,
        channel_names=None if channels is None else list(channels["Channel"]),
        channels_table=channels,
    )
    return {f"{prefix}/{k}": float(v) for k, v in result.items()}
