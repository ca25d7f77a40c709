"""A slice's row labels and its events agree at the slice's first and last rows, as the
reader's do at the grid's (``test_esa_adb_edges``): a slice keeps an event iff its span meets
the slice's first .. last row time, and only the events it keeps mark its rows."""

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
    row (00:00:30) and the test range's first (00:01:00): in neither range's events. It (and
    id_2, a rare event from 00:00:50) still marked the training range's last row, and id_1's
    anomaly code the test range's first row, where only id_2 is left."""
    m = read(make_mission(tmp_path / "M"), split_date=SPLIT)
    train, test = m.train(), m.test()
    assert m.test_start == 2 and len(train.events) == 0
    assert set(test.events["ID"]) == {"id_2", "id_3"}
    assert train.labels[-1, 0] == 0
    assert test.labels[0, 0] == CATEGORY_TO_CODE["Rare Event"]
    for part in (train, m.val(), test, m.fit_range()):
        np.testing.assert_array_equal(part.labels, codes_from_events(part))


def test_every_slice_of_the_raw_layout_agrees_with_its_events(tmp_path):
    root = make_mission(tmp_path / "M")
    _add_labels(root, [("wide", "channel_2", "2000-01-01 00:00:20", "2000-01-01 00:01:40")])
    m = read(root)
    before = np.array(m.labels)
    for a, b in combinations(range(len(m.values) + 1), 2):
        part = m.slice(a, b)
        np.testing.assert_array_equal(part.labels, codes_from_events(part), err_msg=f"{a}:{b}")
        if b - a < 2:
            continue
        inner = part.slice(1, b - a - 1)  # a slice of a slice agrees too
        np.testing.assert_array_equal(inner.labels, codes_from_events(inner))
    np.testing.assert_array_equal(m.labels, before)  # the mission's own rows keep their marks


def test_a_slice_with_nothing_to_unmark_shares_the_missions_labels(tmp_path):
    m = read(make_mission(tmp_path / "M"))
    part = m.slice(1, 4)  # id_1 and id_2 start in it, id_2 and id_3 end in it
    assert np.shares_memory(part.labels, m.labels)
    np.testing.assert_array_equal(part.labels, m.labels[1:4])


def test_target_labels_unmark_the_channels_events_set_aside(tmp_path):
    """Under metrics.label_channels=target the events of non-target channels leave the event
    table but the labels stay as read: their split-point rows follow the same rule."""
    root = make_mission(tmp_path / "M")
    _add_labels(root, [("late", "channel_2", "2000-01-01 00:00:35", "2000-01-01 00:00:40")])
    m = with_label_channels(read(root, split_date=SPLIT), "target")  # channel_1 the target
    assert "late" not in set(m.events["ID"])
    assert m.labels[1, 1] == 1 and m.labels[2, 1] == 1  # 00:00:30 and 00:01:00, as read
    assert m.train().labels[-1, 1] == 0 and m.test().labels[0, 1] == 0
    kept = m.slice(0, 3)  # 00:00 .. 00:01:00 holds it: its rows keep the mark
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
