"""Row labels and the event table agree at the grid's edges: an event marks rows iff it is
among the mission's events (the raw ESA layout, the ESA CSV and the Kaggle layouts)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from esa_lightning.data.mission import CATEGORY_TO_CODE, Mission
from esa_lightning.data.readers.esa_csv import read_esa_csv
from esa_lightning.data.readers.kaggle import read_kaggle
from tests.helpers import write_esa_csv, write_kaggle
from tests.unit.test_esa_adb import make_mission, read

P = pd.Timedelta("30s")


def _add_labels(root: Path, rows: list[tuple[str, str, str, str]]) -> None:
    labels = pd.read_csv(root / "labels.csv")
    extra = pd.DataFrame(rows, columns=["ID", "Channel", "StartTime", "EndTime"])
    pd.concat([labels, extra]).to_csv(root / "labels.csv", index=False)
    types = pd.read_csv(root / "anomaly_types.csv")
    more = pd.concat([types.iloc[:1]] * len(rows)).assign(ID=[r[0] for r in rows])
    pd.concat([types, more]).to_csv(root / "anomaly_types.csv", index=False)


def codes_from_events(m: Mission, period: pd.Timedelta = P) -> np.ndarray:
    """uint8 [T, C]: the codes the event table alone gives each row: every segment covers the
    rows from its start floored to its end ceiled (ESA-ADB's rule), the lowest code winning."""
    out = np.zeros(m.labels.shape, dtype=np.uint8)
    p = period.value
    k0 = int(m.timestamps[0].astype("datetime64[ns]").astype(np.int64)) // p
    for _, e in m.events.iterrows():
        a = int(pd.Timestamp(e["StartTime"]).value) // p - k0
        b = -(-int(pd.Timestamp(e["EndTime"]).value) // p) - k0
        a, b = max(a, 0), min(b, len(m.timestamps) - 1)
        col, code = m.channel_names.index(e["Channel"]), CATEGORY_TO_CODE[e["Category"]]
        cells = out[a : b + 1, col]
        out[a : b + 1, col] = np.where((cells == 0) | (cells > code), code, cells)
    return out


# (label added on channel_2 or None, reader options, the edge row and column it reached)
EDGES = {
    # starts 10 s after the last grid point (00:02:00): its start floored onto it
    "after-last-row": (("2000-01-01 00:02:10", "2000-01-01 00:02:20"), {}, (-1, 1)),
    # data.end cuts the grid at 00:01:30; a label 00:01:35 .. 00:01:50 starts after it
    "end-cut": (("2000-01-01 00:01:35", "2000-01-01 00:01:50"),
                {"end": "2000-01-01 00:01:40"}, (-1, 1)),
}


@pytest.mark.parametrize("edge", list(EDGES))
def test_raw_layout_an_event_marks_rows_iff_it_is_among_the_events(tmp_path, edge):
    """An event starting after the last grid time by less than a period was left out of the
    events but still marked the edge row (its start floored onto it): a row labeled anomalous
    that no scored event covers, and a warning saying the event is not read."""
    label, options, (row, col) = EDGES[edge]
    root = make_mission(tmp_path / "M")
    _add_labels(root, [("edge", "channel_2", *label)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a label off the channels' own range is warned about
        m = read(root, **options)
    assert "edge" not in set(m.events["ID"])
    np.testing.assert_array_equal(m.labels, codes_from_events(m))
    assert m.labels[row, col] != CATEGORY_TO_CODE["Anomaly"]


# (label added on channel_2 or None, reader options, the ID that ends before the first row and
# the column it marks there)
FIRST_ROW = {
    # ends 10 s before the first grid point (00:00:00): its end ceiled onto row 0
    "before-first-row": (("1999-12-31 23:59:40", "1999-12-31 23:59:50"), {}, "edge", 1),
    # data.start cuts the grid at 00:01:00; id_1 (anomaly, 00:00:41 .. 00:00:45) ends 15 s
    # before it
    "start-cut": (None, {"start": "2000-01-01 00:01:00"}, "id_1", 0),
}


@pytest.mark.parametrize("edge", list(FIRST_ROW))
def test_raw_layout_an_event_in_the_period_before_the_first_row_is_the_first_rows(tmp_path, edge):
    """Each row owns the time since the row before it (a sample there holds from the first row
    at or after it; one before the grid shows on the first row): an event ending less than a
    period before the first grid time marks the first row and is listed on its time, as a
    range lists an event between its first row and the row before (``Mission.slice``). It was
    dropped and marked no row: the only boundary where such an event counted nowhere."""
    label, options, name, col = FIRST_ROW[edge]
    root = make_mission(tmp_path / "M")
    if label is not None:
        _add_labels(root, [("edge", "channel_2", *label)])
    m = read(root, **options)
    assert name in set(m.events["ID"])
    moved = m.events.set_index("ID").loc[name]
    assert moved["StartTime"] == moved["EndTime"] == m.timestamps[0]
    assert m.labels[0, col] == CATEGORY_TO_CODE["Anomaly"]
    np.testing.assert_array_equal(m.labels, codes_from_events(m))


@pytest.mark.parametrize("first", range(1, 5))
def test_a_mission_read_from_a_start_keeps_the_events_and_marks_of_that_slice(tmp_path, first):
    """Reading with ``start`` at a grid row gives the events and labels of the whole mission
    sliced from that row (the slice keeps an event ending after the row before it)."""
    root = make_mission(tmp_path / "M")
    _add_labels(root, [("gap", "channel_2", "2000-01-01 00:00:35", "2000-01-01 00:00:40"),
                       ("late", "channel_2", "2000-01-01 00:01:05", "2000-01-01 00:01:10")])
    whole = read(root)
    start = str(pd.Timestamp(whole.timestamps[first]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cut = read(root, start=start)
    part = whole.slice(first, len(whole.values))
    np.testing.assert_array_equal(cut.timestamps, part.timestamps)
    np.testing.assert_array_equal(cut.labels, part.labels)
    cols = ["ID", "Channel", "StartTime", "EndTime"]
    order = ["ID", "Channel"]
    pd.testing.assert_frame_equal(cut.events[cols].sort_values(order).reset_index(drop=True),
                                  part.events[cols].sort_values(order).reset_index(drop=True))


def test_raw_layout_labels_touching_the_grid_still_floor_and_ceil(tmp_path):
    """An event that reaches the first / last grid time keeps its event and its rows."""
    root = make_mission(tmp_path / "M")
    _add_labels(root, [("early", "channel_2", "1999-12-31 23:59:50", "2000-01-01 00:00:00"),
                       ("late", "channel_2", "2000-01-01 00:02:00", "2000-01-01 00:02:05")])
    m = read(root)
    assert {"early", "late"} <= set(m.events["ID"])
    assert m.labels[0, 1] == 1 and m.labels[-1, 1] == 1
    np.testing.assert_array_equal(m.labels, codes_from_events(m))


def test_esa_csv_layout_builds_events_from_its_rows_first_and_last_included(tmp_path):
    path = write_esa_csv(tmp_path / "m.csv")
    frame = pd.read_csv(path)
    frame.loc[[0, 1, len(frame) - 1], "is_anomaly_channel_1"] = 1
    frame.to_csv(path, index=False)
    m = read_esa_csv(path, use_cache=False)
    assert m.labels[0, 0] == 1 and m.labels[-1, 0] == 1
    np.testing.assert_array_equal(m.labels, codes_from_events(m))


def test_kaggle_layout_builds_events_from_its_rows_first_and_last_included(tmp_path):
    path = write_kaggle(tmp_path / "train.parquet", n=35)  # is_anomaly on rows 0, 17 and 34
    m = read_kaggle(path, use_cache=False)
    marked = np.zeros(len(m.timestamps), dtype=bool)
    for _, e in m.events.iterrows():
        marked |= (m.timestamps >= e["StartTime"]) & (m.timestamps <= e["EndTime"])
    assert marked[0] and marked[-1]
    np.testing.assert_array_equal(marked, m.labels.any(axis=1))
