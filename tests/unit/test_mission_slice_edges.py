"""A range's row labels and its events agree at its first and last rows, as the reader's do
at the grid's (``test_esa_adb_edges``): a range keeps an event iff its span meets the time
after the row before it up to its last row time (an event wholly between two rows is the
later row's range's, listed on that range's first row time), and a range ending at a split
point unmarks its last row of the next range's events. Every event is so counted in exactly one
of two adjacent ranges unless it reaches rows of both; other slices (folds, chunks) keep the
marks their rows hold in the range they lie in."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
import pytest

from esa_lightning.data.label_channels import with_label_channels
from esa_lightning.data.mission import CATEGORY_TO_CODE, Mission
from esa_lightning.data.readers.esa_csv import read_esa_csv
from esa_lightning.data.readers.kaggle import read_kaggle
from tests.helpers import write_esa_csv, write_kaggle
from tests.unit.test_esa_adb import make_mission, read
from tests.unit.test_esa_adb_edges import _add_labels
from tests.unit.test_esa_adb_edges import codes_from_events as _codes_from_events

SPLIT = "2000-01-01 00:01:00"  # rows 00:00, 00:30 train; 00:01:00 .. 00:02:00 test


def codes_from_events(m: Mission) -> np.ndarray:
    """``test_esa_adb_edges.codes_from_events``, an empty range's too."""
    return _codes_from_events(m) if len(m.values) else np.zeros(m.labels.shape, np.uint8)


def test_split_point_rows_are_marked_only_by_the_ranges_events(tmp_path):
    """id_1 (anomaly, channel_1, 00:00:41 .. 00:00:45) lies between the training range's last
    row (00:00:30) and the test range's first (00:01:00): it was in neither range's events,
    so no range counted it, yet the reader marks it on both rows. It is the test range's (its
    samples land on 00:01:00, the first grid row at or after them), listed on that row's time;
    it and id_2 (a rare event from 00:00:50, also the test range's) no longer mark the
    training range's last row."""
    m = read(make_mission(tmp_path / "M"), split_date=SPLIT)
    train, test = m.train(), m.test()
    assert m.test_start == 2 and len(train.events) == 0
    assert set(test.events["ID"]) == {"id_1", "id_2", "id_3"}
    moved = test.events.set_index("ID").loc["id_1"]
    assert moved["StartTime"] == moved["EndTime"] == m.timestamps[2]
    assert train.labels[-1, 0] == 0
    assert test.labels[0, 0] == CATEGORY_TO_CODE["Anomaly"]
    for part in (train, m.val(), test, m.fit_range()):
        np.testing.assert_array_equal(part.labels, codes_from_events(part))


def test_an_event_between_the_rows_of_a_split_is_scored_in_the_later_range(tmp_path):
    """The test range's metrics count id_1 (they count events meeting the rows' time span):
    an alarm on its first row detects it, where before no range had it to detect."""
    from esa_lightning.metrics.report import full_report

    root = make_mission(tmp_path / "M")
    labels = pd.read_csv(root / "labels.csv")
    labels = labels[labels["ID"] == "id_1"]  # the anomaly alone
    labels.to_csv(root / "labels.csv", index=False)
    test = read(root, split_date=SPLIT).test()
    alarm = np.zeros(len(test.values), dtype=np.uint8)
    alarm[0] = 1
    scores = full_report(test.events, test.timestamps, alarm)
    assert scores["EW_recall"] == 1.0 and scores["EW_precision"] == 1.0


SPLITS = [{"split_date": SPLIT}, {"split_date": SPLIT, "val_days": 30 / 86400},
          {"split_date": "2000-01-01 00:01:30", "val_days": 60 / 86400}]


def _segments(events: pd.DataFrame) -> list[tuple[str, str]]:
    return sorted(zip(events["ID"], events["Channel"], strict=True))


def _expected_count(m: Mission, ranges: list[tuple[int, int]]) -> int:
    """How many segments ``ranges`` of ``m`` should list in all: each once, and once more per
    other range whose row times its span reaches too."""
    ts = np.asarray(m.timestamps)
    return sum(
        max(1, sum(bool(((ts[a:b] >= e["StartTime"]) & (ts[a:b] <= e["EndTime"])).any())
                   for a, b in ranges))
        for _, e in m.events.iterrows())


@pytest.mark.parametrize("options", SPLITS)
def test_every_event_is_counted_in_one_range_unless_it_reaches_two(tmp_path, options):
    root = make_mission(tmp_path / "M")
    _add_labels(root, [("gap", "channel_2", "2000-01-01 00:00:35", "2000-01-01 00:00:40"),
                       ("late", "channel_2", "2000-01-01 00:01:05", "2000-01-01 00:01:10")])
    m = read(root, **options)
    ts = np.asarray(m.timestamps)
    ranges = [(0, m.val_start), (m.val_start, m.test_start), (m.test_start, len(ts))]
    counted: list[tuple[str, str]] = []
    for part, (a, b) in zip((m.train(), m.val(), m.test()), ranges, strict=True):
        counted += _segments(part.events)
        np.testing.assert_array_equal(part.labels, codes_from_events(part))
        for _, e in part.events.iterrows():  # each lies on the range's rows' time span
            assert ts[a] <= e["EndTime"] and e["StartTime"] <= ts[b - 1]
    assert set(counted) == set(_segments(m.events))
    assert len(counted) == _expected_count(m, ranges)


def test_folds_and_chunks_keep_the_marks_of_the_range_they_lie_in(tmp_path):
    """Only a split point moves an event to another range: a fold or chunk ending on a row an
    event starting after it marks (its start floored onto it) kept the mark before only where
    the enclosing range did not end there; it unmarked it (id_2, 00:00:50, on 00:00:30)."""
    root = make_mission(tmp_path / "M")
    _add_labels(root, [("wide", "channel_2", "2000-01-01 00:00:20", "2000-01-01 00:01:40")])
    m = read(root, split_date="2000-01-01 00:01:30")  # test from row 3
    ranges = {"train": m.train(), "test": m.test(), "fit": m.fit_range()}
    range_rows = np.concatenate([ranges["train"].labels, ranges["test"].labels])
    for a, b in combinations(range(len(m.values) + 1), 2):
        part = m.slice(a, b)
        expected = np.array(m.labels[a:b])
        if b == m.test_start:  # ends where the test range begins: the training range's row
            expected[-1] = range_rows[b - 1]
        np.testing.assert_array_equal(part.labels, expected, err_msg=f"{a}:{b}")
        if b - a < 2:
            continue
        inner = part.slice(1, b - a - 1)  # a slice of a slice keeps them too
        np.testing.assert_array_equal(inner.labels, expected[1:-1])
    for name, r in ranges.items():  # a chunk of a range: that range's rows
        for a, b in combinations(range(len(r.values) + 1), 2):
            np.testing.assert_array_equal(r.slice(a, b).labels, r.labels[a:b], err_msg=name)
    assert m.slice(0, 2).labels[1, 0] == CATEGORY_TO_CODE["Anomaly"]  # id_1 at 00:00:30


@pytest.mark.parametrize("options", [{}, {"split_date": "2000-01-01 00:01:30"}])
def test_chunks_count_each_event_once(tmp_path, options):
    """Consecutive chunks of a range list each event segment once, unless it reaches rows of
    two: an event between two chunks' rows is the later chunk's."""
    m = read(make_mission(tmp_path / "M"), **options)
    ts = np.asarray(m.timestamps)
    for cut in range(1, len(ts)):
        parts = [(0, cut), (cut, len(ts))]
        counted = _segments(m.slice(*parts[0]).events) + _segments(m.slice(*parts[1]).events)
        assert set(counted) == set(_segments(m.events)), cut
        assert len(counted) == _expected_count(m, parts), cut


def test_a_slice_with_nothing_to_unmark_shares_the_missions_labels(tmp_path):
    m = read(make_mission(tmp_path / "M"))
    part = m.slice(1, 4)  # id_1 and id_2 start in it, id_2 and id_3 end in it
    assert np.shares_memory(part.labels, m.labels)
    np.testing.assert_array_equal(part.labels, m.labels[1:4])


def test_a_split_row_whose_code_does_not_change_is_not_copied(tmp_path):
    """The training range's last row (00:00:30) is marked on channel_1 by id_1 (an anomaly,
    00:00:41, the test range's) and by an anomaly of its own reaching it: its code stays, so
    its labels are the mission's, not a copy of its rows x channels."""
    root = make_mission(tmp_path / "M")
    _add_labels(root, [("own", "channel_1", "2000-01-01 00:00:00", "2000-01-01 00:00:30")])
    m = read(root, split_date=SPLIT)
    train = m.train()
    assert train.labels[-1, 0] == CATEGORY_TO_CODE["Anomaly"]
    assert np.shares_memory(train.labels, m.labels)
    np.testing.assert_array_equal(train.labels, codes_from_events(train))


def test_target_labels_unmark_the_channels_events_set_aside(tmp_path):
    """Under metrics.label_channels=target the events of non-target channels leave the event
    table but the labels stay as read: their split-point rows follow the same rule ("late",
    between the split's rows, is the test range's: it keeps its mark there)."""
    root = make_mission(tmp_path / "M")
    _add_labels(root, [("late", "channel_2", "2000-01-01 00:00:35", "2000-01-01 00:00:40")])
    m = with_label_channels(read(root, split_date=SPLIT), "target")  # channel_1 the target
    assert "late" not in set(m.events["ID"])
    assert m.labels[1, 1] == 1 and m.labels[2, 1] == 1  # 00:00:30 and 00:01:00, as read
    assert m.train().labels[-1, 1] == 0 and m.test().labels[0, 1] == 1
    kept = m.slice(0, 3)  # 00:00 .. 00:01:00 does not end at the split: its rows keep the mark
    assert kept.labels[1, 1] == 1 and kept.labels[2, 1] == 1


def _time_codes(m: Mission) -> np.ndarray:
    """uint8 [T, C]: the lowest code of the events whose span holds each row's time."""
    out = np.zeros(m.labels.shape, dtype=np.uint8)
    ts = np.asarray(m.timestamps)
    for _, e in m.events.iterrows():
        rows = (ts >= e["StartTime"]) & (ts <= e["EndTime"])
        cols = range(out.shape[1]) if m.meta.get("labels_broadcast") else [
            m.channel_names.index(e["Channel"])]
        for col in cols:
            code = CATEGORY_TO_CODE[e["Category"]]
            cells = out[rows, col]
            out[rows, col] = np.where((cells == 0) | (cells > code), code, cells)
    return out


@pytest.mark.parametrize("layout", ["esa_csv", "kaggle"])
def test_layouts_built_from_row_codes_agree_at_every_split(tmp_path, layout):
    """The ESA CSV and Kaggle readers build events from the rows' codes: an event starts and
    ends on row times, so no slice can drop one that marks its rows."""
    if layout == "esa_csv":
        path = write_esa_csv(tmp_path / "m.csv", n=12)
        frame = pd.read_csv(path)
        frame.loc[[2, 3, 4, 7], "is_anomaly_channel_1"] = 1
        frame.loc[[5, 6], "is_anomaly_channel_2"] = 1
        frame.to_csv(path, index=False)
        m = read_esa_csv(path, use_cache=False)
    else:
        m = read_kaggle(write_kaggle(tmp_path / "train.parquet", n=35), use_cache=False)
    for a, b in combinations(range(len(m.values) + 1), 2):
        part = m.slice(a, b)
        np.testing.assert_array_equal(
            np.asarray(part.labels), _time_codes(part), err_msg=f"{a}:{b}"
        )
        assert np.shares_memory(part.labels, m.labels)


def test_a_set_aside_event_between_the_rows_of_a_split_is_counted_in_the_later_range(tmp_path):
    """Under metrics.label_channels=target the count of events set aside (which names them in
    a range's "no labeled event" reason) follows ``range_events`` as the event table does:
    "late" (channel_2, not a target, between the training range's last row and the test
    range's first) is the test range's. It was counted in no range: the count kept the set
    aside events meeting the range's first .. last row time."""
    from esa_lightning.data.label_channels import SET_ASIDE
    from esa_lightning.runtime.evaluation import SCORED_CATEGORIES, set_aside_events

    root = make_mission(tmp_path / "M")
    _add_labels(root, [("late", "channel_2", "2000-01-01 00:00:35", "2000-01-01 00:00:40")])
    m = with_label_channels(read(root, split_date=SPLIT), "target")  # channel_1 the target
    aside = m.meta[SET_ASIDE]
    scored = set(aside.loc[aside["Category"].isin(SCORED_CATEGORIES), "ID"])
    assert "late" in scored
    train, test = m.train(), m.test()
    assert set_aside_events([train]) == 0
    assert set_aside_events([test]) == set_aside_events([m]) == len(scored)
    assert "late" in set(test.meta[SET_ASIDE]["ID"])
    assert "late" not in set(train.meta[SET_ASIDE]["ID"])
