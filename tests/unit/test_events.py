"""Alarm intervals and the block report in original sample numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from esa_lightning.data.mission import Mission, default_channel_table, empty_events
from esa_lightning.reporting.events import (
    alarms_to_intervals,
    row_ids,
    window_report,
    write_window_report,
)


def test_intervals_are_maximal_runs():
    alarm = np.array([1, 1, 0, 0, 1, 0, 1, 1, 1, 0], np.uint8)
    ts = np.arange(10) * 30 + 1000
    df = alarms_to_intervals(alarm, ts)
    assert df["start_index"].tolist() == [0, 4, 6]
    assert df["end_index"].tolist() == [1, 4, 8]
    assert df["start"].tolist() == [1000, 1120, 1180]
    assert df["end"].tolist() == [1030, 1120, 1240]
    assert len(alarms_to_intervals(np.zeros(5), np.arange(5))) == 0


def test_report_uses_original_sample_ids():
    first = 14_728_321  # the first id of the Kaggle test file
    ids = first + np.arange(2500)
    alarm = np.zeros(2500, np.uint8)
    alarm[[0, 5, 678, 2400]] = 1  # id first + 678 = 14728999 ends block 1
    df = window_report(alarm, ids, block=1000)
    # blocks aligned on multiples of 1000 of the ids, not of the positions
    assert df["range"].tolist() == ["14728000-14728999", "14729000-14729999", "14730000-14730999"]
    assert df["status"].tolist() == ["ANOMALY", "OK", "ANOMALY"]
    assert df.loc[0, "indices"] == f"{first};{first + 5};14728999"
    assert df.loc[1, "indices"] == ""
    assert df.loc[2, "indices"] == str(first + 2400)
    for _, row in df.iterrows():
        lo, hi = map(int, row["range"].split("-"))
        assert all(lo <= int(i) <= hi for i in filter(None, row["indices"].split(";")))


def test_row_ids_of_a_sliced_mission_are_full_mission_rows():
    T = 3000
    ts = pd.date_range("2000-01-01", periods=T, freq="30s").to_numpy()
    m = Mission(
        "toy",
        np.zeros((T, 1), np.float32),
        ts,
        default_channel_table(["a"]),
        np.zeros((T, 1), np.uint8),
        empty_events(),
        test_start=1700,
    )
    test = m.test()
    np.testing.assert_array_equal(row_ids(test), np.arange(1700, T))
    alarm = np.zeros(len(test.values), np.uint8)
    alarm[0] = 1
    df = window_report(alarm, row_ids(test))
    assert df.loc[0, "range"] == "1000-1999" and df.loc[0, "indices"] == "1700"
    ids = Mission(
        "k",
        np.zeros((3, 1), np.float32),
        np.array([7, 8, 9]),
        default_channel_table(["a"]),
        None,
        empty_events(),
    )
    np.testing.assert_array_equal(row_ids(ids), [7, 8, 9])


def test_write_window_report_round_trips(tmp_path):
    df = window_report(np.array([0, 1, 1, 0]), np.array([10, 11, 12, 2013]), block=1000)
    path = write_window_report(df, tmp_path / "out" / "report.csv")
    back = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert back.columns.tolist() == ["range", "status", "indices"]
    assert back.values.tolist() == [["0-999", "ANOMALY", "11;12"], ["2000-2999", "OK", ""]]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["report.csv"]


def test_window_report_blocks_at_the_int64_edges():
    """Ids near int64's limits (the Kaggle reader accepts them): the block bounds were computed
    in int64 and wrapped, so report.csv named a block '9223372036854775000--9223372036854775617'."""
    top = np.iinfo(np.int64).max
    bottom = np.iinfo(np.int64).min
    numbers = np.array([bottom, bottom + 1, top - 1, top], dtype=np.int64)
    report = window_report(np.array([1, 0, 0, 1]), numbers, block=1000)
    assert list(report["range"]) == [
        "-9223372036854776000--9223372036854775001",
        "9223372036854775000-9223372036854775999",
    ]
    assert list(report["indices"]) == [str(bottom), str(top)]
