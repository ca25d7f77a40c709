"""Which channels' labels the reports and the F0.5 threshold fits score (the setting
``metrics.label_channels``).

``all`` (the default): the labels of every channel the mission reads. ``target``: only those
of its target channels (channels.csv ``Target``), as ESA-ADB's TimeEval run scores an
algorithm (``core/experiments.py`` keeps the label rows of the algorithm's target channels):
label segments on other channels are dropped from ``Mission.events``, so an event without a
target-channel segment is no event (its rows are nominal time), and the channel-aware scores
are made over the target channels only (``Mission.scored_channels``). The label arrays
(``Mission.labels``) are left as read: what a detector learns from them (the rows nominal fits
leave out, the supervised heads' targets) does not change. The events set aside (those without
a target-channel segment) are kept in ``Mission.meta[SET_ASIDE]``, so that a range left without
an event can say why (``runtime.evaluation.unscored_reason``), and the whole table the labels
were marked from in ``Mission.meta[LABEL_EVENTS]`` (a slice's edge rows follow it:
``mission.edge_labels``).
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from esa_lightning.data.mission import LABEL_EVENTS, SET_ASIDE, Mission
from esa_lightning.errors import ESAInputError

LABEL_CHANNELS = ("all", "target")
KEY = "metrics.label_channels"


def with_label_channels(mission: Mission, label_channels: str | None) -> Mission:
    """``mission`` with the events ``label_channels`` scores (``all``/None: itself). ``target``
    is refused where the labels name no channel: a Kaggle file's one row label (TimeEval then
    scores its single ``is_anomaly`` column whole, whatever the target channels)."""
    value = "all" if label_channels is None else label_channels
    if value not in LABEL_CHANNELS:
        raise ESAInputError(
            f"{KEY} must be one of {', '.join(LABEL_CHANNELS)}", column=KEY, value=value
        )
    if value == "all":
        return mission
    if mission.meta.get("labels_broadcast"):
        raise ESAInputError(
            "the labels of this data name no channel (one is_anomaly per row, as in a Kaggle "
            "file): there are no target-channel labels to keep; use metrics.label_channels=all",
            path=mission.meta.get("source"),
            column=KEY,
            value=value,
        )
    kept = _target_events(mission)
    aside = mission.events[~mission.events["ID"].isin(set(kept["ID"]))].reset_index(drop=True)
    # the labels stay marked by every event: a slice's edge rows follow those (``edge_labels``)
    labeled_by = mission.meta.get(LABEL_EVENTS, mission.events)
    meta = {**mission.meta, "label_channels": value, SET_ASIDE: aside, LABEL_EVENTS: labeled_by}
    if mission.series is not None:  # independent series (NASA): each its own channel
        series = {name: with_label_channels(m, value) for name, m in mission.series.items()}
        return replace(mission, series=series, events=kept, meta=meta)
    return replace(mission, events=kept, meta=meta)


def _target_events(mission: Mission) -> pd.DataFrame:
    """``mission.events``' segments on target channels."""
    events = mission.events
    targets = set(mission.target_channels)
    if mission.series is not None:
        targets = {c for m in mission.series.values() for c in m.target_channels}
    return events[events["Channel"].isin(targets)].reset_index(drop=True)
