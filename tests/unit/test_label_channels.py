"""``metrics.label_channels``: score every channel's labels (default) or, as ESA-ADB's TimeEval
run does (``core/experiments.py`` keeps the label rows of the target channels only), the target
channels' only."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from esa_lightning.data.label_channels import with_label_channels
from esa_lightning.errors import ESAInputError
from esa_lightning.models.base import RowScores
from esa_lightning.postprocessing.thresholds import event_f05
from esa_lightning.runtime.evaluation import ScoredRange, has_labeled_events, report_for
from tests.helpers import make_mission


def two_event_mission():
    """100 rows, channel_1 a target channel, channel_2 not: event A on channel_1 (rows
    10..19), event B on channel_2 only (rows 50..59)."""
    m = make_mission(100, 2, anomalies=((10, 19),), val_start=0, test_start=0)
    channels = m.channels.copy()
    channels["Target"] = [True, False]
    stamps = m.timestamps
    b = {"ID": "id_B", "Channel": "channel_2", "StartTime": stamps[50], "EndTime": stamps[59],
         "Category": "Anomaly"}
    labels = m.labels.copy()
    labels[50:60, 1] = 1
    events = pd.concat([m.events, pd.DataFrame([b])], ignore_index=True)
    return dataclasses.replace(m, channels=channels, events=events, labels=labels)


def alarms_on_event_a(m):
    """Row alarms on event A's rows only; per channel, both channels alarm there."""
    alarm = np.zeros(100, np.uint8)
    alarm[10:20] = 1
    return RowScores(alarm.astype(np.float32), alarm, channel_alarm=np.stack([alarm, alarm], 1))


def report(m):
    rs = alarms_on_event_a(m)
    return report_for(ScoredRange(m, rs, np.asarray(m.timestamps), m.events), "test")


def test_an_event_on_a_non_target_channel_only_counts_under_all_and_not_under_target():
    m = two_event_mission()
    every = report(with_label_channels(m, "all"))
    target = report(with_label_channels(m, "target"))
    # all: events A and B count; the alarms (rows 10..19) catch A, not B: recall 1/2. No alarm
    # outside A, so precision 1.
    assert every["test/EW_recall"] == 0.5 and every["test/EW_precision"] == 1.0
    # target: B has no segment on a target channel, so it is no event (its rows are nominal
    # time, and no alarm lies there): A alone, caught, recall 1/1
    assert target["test/EW_recall"] == 1.0 and target["test/EW_precision"] == 1.0
    # channel-aware, macro-averaged over events. all: event A (annotated on channel_1) has
    # channel_1 true and channel_2's alarm inside its span a false channel, precision 1/2;
    # event B (channel_2) has no detection, precision 0: (1/2 + 0) / 2 = 1/4. target: only
    # channel_1 is evaluated and only A is left: 1/1
    assert every["test/channel_precision"] == 0.25
    assert target["test/channel_precision"] == 1.0
    # the default (unset) is "all": the same mission, the same numbers
    assert with_label_channels(m, None) is m
    assert report(m) == every


def test_the_f05_threshold_fits_read_the_same_events():
    m = two_event_mission()
    alarm = alarms_on_event_a(m).alarm
    # all: P 1, R 1/2: F0.5 = 1.25 * 0.5 / (0.25 + 0.5) = 5/6; target: P 1, R 1: F0.5 1
    assert event_f05(alarm, with_label_channels(m, "all")) == pytest.approx(5 / 6)
    assert event_f05(alarm, with_label_channels(m, "target")) == pytest.approx(1.0)


def test_a_range_whose_only_event_is_on_a_non_target_channel_is_not_scored_under_target():
    m = two_event_mission().slice(40, 100)  # event B only
    assert has_labeled_events(with_label_channels(m, "all"))
    assert not has_labeled_events(with_label_channels(m, "target"))


def test_target_is_refused_for_labels_that_name_no_channel_and_a_bad_value_is_named():
    m = two_event_mission()
    kaggle = dataclasses.replace(m, meta={"labels_broadcast": True, "source": "train.parquet"})
    with pytest.raises(ESAInputError, match=r"train\.parquet: column 'metrics\.label_channels'"
                                             r".*name no channel"):
        with_label_channels(kaggle, "target")
    assert with_label_channels(kaggle, "all") is kaggle
    with pytest.raises(ESAInputError, match=r"value 'targets': .* one of all, target"):
        with_label_channels(m, "targets")


def test_target_scores_per_channel_alarms_kept_on_alarmed_rows_only():
    """Chunked scoring (predict.py, train.py's reports) keeps the per-channel alarms of the
    alarmed rows only (``AlarmedRows``, which reads contiguous row slices): selecting the
    target channels' columns of it raised a TypeError, so ``predict.py
    metrics.label_channels=target`` failed on every mission. The same numbers as dense."""
    from esa_lightning.runtime.chunks import AlarmedRows

    m = with_label_channels(two_event_mission(), "target")
    rs = alarms_on_event_a(m)
    rows = np.flatnonzero(rs.alarm)
    kept = AlarmedRows(len(rs.alarm), rows, np.asarray(rs.channel_alarm)[rows], 0)
    sparse = dataclasses.replace(rs, channel_alarm=kept)
    stamps = np.asarray(m.timestamps)
    assert report_for(ScoredRange(m, sparse, stamps, m.events), "test") == report(m)


def test_a_range_left_without_an_event_by_target_says_why_and_counts_what_was_set_aside():
    """A range whose only labeled event lies on a non-target channel said ``not scored (no
    labeled anomaly or rare event)`` under ``target``, though the mission has labels there: it
    now names the events set aside and the setting. A range without any event says the plain
    reason under either setting; under ``all`` the range is scored."""
    from esa_lightning.runtime.evaluation import NO_LABELED_EVENT, unscored_reason

    m = two_event_mission()
    why = (f"{NO_LABELED_EVENT} on the target channels: 1 labeled event(s) on non-target "
           "channels only set aside by metrics.label_channels=target")
    # the setting applied to the whole mission and the range sliced after (as the jobs do),
    # or to the range itself
    assert unscored_reason(with_label_channels(m, "target").slice(40, 100)) == why
    assert unscored_reason(with_label_channels(m.slice(40, 100), "target")) == why
    assert unscored_reason(with_label_channels(m, "all").slice(40, 100)) is None
    for setting in ("all", "target"):  # rows 70..99: no event on any channel
        assert unscored_reason(with_label_channels(m, setting).slice(70, 100)) == NO_LABELED_EVENT
    # event A (on the target channel) is scored; B set aside leaves no reason to give
    assert unscored_reason(with_label_channels(m, "target")) is None
