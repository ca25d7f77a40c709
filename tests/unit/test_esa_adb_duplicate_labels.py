"""An exact duplicate row of ``labels.csv`` is read once, with a warning naming the file and
the rows. It was accepted without a word and listed twice in ``Mission.events`` (what the
Python API hands a user counting segments per channel); the metrics merge an event's segments
before counting, so their values never changed (asserted here so that they stay so)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from esa_lightning.metrics.report import full_report
from tests.unit.test_esa_adb import make_mission, read


def _read_warned(root: Path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = read(root)
    return m, [str(w.message) for w in caught]


def _scores(m) -> dict[str, float]:
    """The metrics of two alarms inside id_2 (rare event, channel_1, 00:00:50 .. 00:01:30),
    at 00:00:50 and 00:01:10, on a 10 s row grid: one redundant detection."""
    times = pd.date_range("2000-01-01", periods=13, freq="10s").to_numpy()
    alarm = np.zeros(len(times), dtype=np.uint8)
    alarm[[5, 7]] = 1
    return full_report(m.events, times, alarm)


def test_an_exact_duplicate_label_row_is_read_once_and_named(tmp_path):
    clean = make_mission(tmp_path / "clean")
    dup = make_mission(tmp_path / "dup")
    labels = pd.read_csv(dup / "labels.csv")
    # id_2 repeated as the last row; id_3 repeated with its time spelt in UTC (the same time)
    again = labels.iloc[[1, 2]].copy()
    again.loc[again["ID"] == "id_3", ["StartTime", "EndTime"]] = "2000-01-01 00:01:30"
    pd.concat([labels, again]).to_csv(dup / "labels.csv", index=False)

    expected, said_clean = _read_warned(clean)
    m, said = _read_warned(dup)
    assert not [s for s in said_clean if "duplicate" in s]
    pd.testing.assert_frame_equal(m.events, expected.events)
    np.testing.assert_array_equal(m.labels, expected.labels)
    assert _scores(m) == _scores(expected)
    named = [s for s in said if "duplicate" in s]
    assert len(named) == 1, said
    assert str(dup / "labels.csv") in named[0]
    # rows from 1 after the header: id_2 is row 2, id_3 row 3; the repeats rows 4 and 5
    assert "2 duplicate row(s)" in named[0]
    assert "row 4 (ID 'id_2') repeats row 2" in named[0]
    assert "row 5 (ID 'id_3') repeats row 3" in named[0]


def test_an_id_repeated_with_other_times_is_another_segment(tmp_path):
    """The same event on the same channel at another time is a second segment, kept as it is
    (ESA-ADB's events span several segments), without the duplicate warning."""
    root = make_mission(tmp_path / "M")
    labels = pd.read_csv(root / "labels.csv")
    other = labels.iloc[[1]].assign(StartTime="2000-01-01 00:01:50",
                                     EndTime="2000-01-01 00:01:55")
    pd.concat([labels, other]).to_csv(root / "labels.csv", index=False)
    m, said = _read_warned(root)
    assert not [s for s in said if "duplicate" in s]
    assert (m.events["ID"] == "id_2").sum() == 2


def test_overlapping_segments_of_one_id_on_one_channel_are_read_merged_and_named(tmp_path):
    """Segments of one event on one channel that overlap (or touch) are one stretch of it: the
    metrics merge them before counting, but ``Mission.events`` listed each (a user counting
    segments per channel counted three). They are read as their union, with a warning naming
    the file and the rows; the same ID on another channel stays its own segment."""
    merged = make_mission(tmp_path / "merged")
    labels = pd.read_csv(merged / "labels.csv")
    labels.loc[labels["ID"] == "id_2", "EndTime"] = "2000-01-01 00:01:45"  # the union
    labels.to_csv(merged / "labels.csv", index=False)
    split = make_mission(tmp_path / "split")
    labels = pd.read_csv(split / "labels.csv")
    pieces = labels.iloc[[1, 1, 1]].assign(  # id_2 is 00:00:50 .. 00:01:30 on channel_1
        StartTime=["2000-01-01 00:01:20", "2000-01-01 00:01:00", "2000-01-01 00:00:55"],
        EndTime=["2000-01-01 00:01:45", "2000-01-01 00:01:05", "2000-01-01 00:01:10"],
    )
    pieces.iloc[2, pieces.columns.get_loc("Channel")] = "channel_2"  # another channel: kept
    pd.concat([labels, pieces]).to_csv(split / "labels.csv", index=False)

    expected, _ = _read_warned(merged)
    m, said = _read_warned(split)
    on_1 = m.events[(m.events["ID"] == "id_2") & (m.events["Channel"] == "channel_1")]
    assert len(on_1) == 1
    assert on_1["StartTime"].iloc[0] == pd.Timestamp("2000-01-01 00:00:50")
    assert on_1["EndTime"].iloc[0] == pd.Timestamp("2000-01-01 00:01:45")
    assert ((m.events["ID"] == "id_2") & (m.events["Channel"] == "channel_2")).sum() == 1
    pd.testing.assert_frame_equal(m.events.iloc[:3], expected.events)
    np.testing.assert_array_equal(m.labels[:, 0], expected.labels[:, 0])
    named = [s for s in said if "overlap" in s]
    assert len(named) == 1, said
    assert str(split / "labels.csv") in named[0]
    assert "2 segment(s)" in named[0]
    assert "row 4 (ID 'id_2') into row 2" in named[0]
    assert "row 5 (ID 'id_2') into row 2" in named[0]


def test_touching_segments_of_one_id_are_one_segment(tmp_path):
    # the metrics join closed segments that share a point: the reader does the same
    root = make_mission(tmp_path / "M")
    labels = pd.read_csv(root / "labels.csv")
    touch = labels.iloc[[1]].assign(StartTime="2000-01-01 00:01:30",
                                    EndTime="2000-01-01 00:01:40")
    pd.concat([labels, touch]).to_csv(root / "labels.csv", index=False)
    m, said = _read_warned(root)
    assert (m.events["ID"] == "id_2").sum() == 1
    assert m.events.loc[m.events["ID"] == "id_2", "EndTime"].iloc[0] == pd.Timestamp(
        "2000-01-01 00:01:40")
    assert [s for s in said if "overlap" in s]
