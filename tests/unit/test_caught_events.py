"""``reporting.caught``: which labeled events the alarms caught (events.csv, the report)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given

from esa_lightning.metrics import esa_scores
from esa_lightning.postprocessing.thresholds import F05_CATEGORIES
from esa_lightning.reporting.caught import EVENT_COLUMNS, caught_by_class, event_outcomes
from esa_lightning.reporting.page import render_page
from tests.unit.test_event_wise_only import N, labels_and_alarms
from tests.unit.test_metrics_properties import SETTINGS


@SETTINGS
@given(labels_and_alarms())
def test_the_share_caught_is_the_event_wise_recall(case):
    events, alarm = case
    times = np.arange(N)
    out = event_outcomes(events, times, alarm)
    assert sorted(out["id"]) == sorted(events["ID"].unique())
    counted = out[out["category"].isin(F05_CATEGORIES)]
    recall = esa_scores(events, (times, alarm), select_labels={"Category": F05_CATEGORIES},
                        full_range=(0, N - 1))["EW_recall"]
    assert (counted["caught"].mean() if len(counted) else 0.0) == recall


def labels(rows):
    return pd.DataFrame(rows, columns=["ID", "Channel", "StartTime", "EndTime", "Category",
                                       "Class"])


def test_an_alarm_between_two_segments_of_an_event_does_not_catch_it():
    events = labels([("a", "c1", 10, 20, "Anomaly", "spike"),
                     ("a", "c2", 40, 50, "Anomaly", "spike"),
                     ("b", "c1", 70, 80, "Rare Event", "manoeuvre")])
    alarm = np.zeros(N, dtype=np.uint8)
    alarm[25:35] = 1  # between a's segments
    alarm[80:90] = 1  # touches b's last row
    out = event_outcomes(events, np.arange(N), alarm).set_index("id")
    assert out.loc["a", "caught"] == 0 and out.loc["a", "alarms"] == ""
    assert out.loc["b", "caught"] == 1 and out.loc["b", "alarms"] == "1"
    assert (out.loc["a", "start"], out.loc["a", "end"]) == (10, 50)
    assert out.loc["a", "channels"] == "c1;c2" and out.loc["b", "class"] == "manoeuvre"


def test_alarm_numbers_follow_the_grids_before_and_events_outside_the_range_are_left_out():
    events = labels([("in", "c1", 30, 60, "Anomaly", "drift"),
                     ("out", "c1", 500, 510, "Anomaly", "spike")])
    alarm = np.zeros(N, dtype=np.uint8)
    alarm[[5, 32, 40, 58]] = 1  # four alarms, the last three inside "in"
    out = event_outcomes(events, np.arange(N), alarm, series="P-1", first_alarm=7)
    assert out["id"].tolist() == ["in"]
    assert out.loc[0, "alarms"] == "8;9;10" and out.loc[0, "series"] == "P-1"


def test_datetimes_come_back_as_timestamps_and_no_event_gives_an_empty_table():
    times = pd.date_range("2000-01-01", periods=N, freq="30s").to_numpy()
    events = pd.DataFrame({"ID": ["x"], "StartTime": [times[3]], "EndTime": [times[9]]})
    alarm = np.zeros(N, dtype=np.uint8)
    alarm[9] = 1
    out = event_outcomes(events, times, alarm)
    assert out.loc[0, "start"] == pd.Timestamp(times[3]) and out.loc[0, "caught"] == 1
    assert out.loc[0, "category"] == "" and out.loc[0, "class"] == ""
    empty = event_outcomes(events.iloc[:0], times, alarm)
    assert list(empty.columns) == EVENT_COLUMNS and len(empty) == 0


def test_the_report_counts_caught_events_per_class_and_names_the_missed_ones():
    events = labels([("a", "c1", 10, 20, "Anomaly", "spike"),
                     ("b", "c1", 40, 50, "Anomaly", "spike"),
                     ("c", "c2", 70, 80, "Anomaly", "shape")])
    alarm = np.zeros(N, dtype=np.uint8)
    alarm[15] = 1
    out = event_outcomes(events, np.arange(N), alarm)
    table = caught_by_class(out).set_index("class")
    assert table.loc["spike", "events"] == 2 and table.loc["spike", "caught"] == 1
    assert table.loc["shape", "caught"] == 0
    page = render_page({}, None, pd.DataFrame(), [], {"test/EW_recall": 1 / 3}, out)
    assert "Labeled events (1 of 3 caught)" in page and page.count("missed") == 2
    assert "Anomaly, Rare Event: 1 of 3 caught" in page
    assert "events.csv" in page
    assert "Labeled events" not in render_page({}, None, pd.DataFrame(), [], None)


def test_labels_that_name_no_channel_give_an_empty_channel_list():
    # Kaggle-layout labels: a row label names no channel (Channel missing)
    events = pd.DataFrame({"ID": ["k1", "k2"], "Channel": [np.nan, "c1"], "StartTime": [10, 60],
                           "EndTime": [20, 70], "Category": ["Anomaly", "Anomaly"]})
    alarm = np.zeros(N, dtype=np.uint8)
    alarm[15] = 1
    out = event_outcomes(events, np.arange(N), alarm).set_index("id")
    assert out.loc["k1", "channels"] == "" and out.loc["k1", "caught"] == 1
    assert out.loc["k2", "channels"] == "c1"
