"""Readings float32 cannot represent (inf, or beyond its range) are marked by every reader and
always alarm; a range is scored with the rows before it as context."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from esa_lightning.data.readers.esa_adb import read_esa_mission
from esa_lightning.data.readers.kaggle import read_kaggle
from esa_lightning.data.readers.nasa import read_nasa
from esa_lightning.models.base import RowScores
from esa_lightning.runtime.chunks import score_in_chunks
from tests.helpers import esa_frame, pickled_zip, toy_mission, write_esa_mission, write_nasa

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def kaggle_with(path, rows, value):
    """``write_kaggle``'s layout (float64 channels) with ``value`` in ``channel_1`` at ``rows``."""
    n = 60
    ch1 = np.sin(np.arange(n) / 3.0)
    ch1[rows] = value
    table = pa.table(
        {
            "id": np.arange(n, dtype=np.int64),
            "channel_1": ch1,
            "channel_2": np.cos(np.arange(n) / 3.0),
            "is_anomaly": np.zeros(n, dtype=np.uint8),
        }
    )
    pq.write_table(table, path)
    return path


@pytest.mark.parametrize("value", [np.inf, -np.inf, 1e39, -1e300])
def test_kaggle_marks_rows_float32_cannot_hold(tmp_path, value):
    path = kaggle_with(tmp_path / "train.parquet", [10, 11, 40], value)
    mission = read_kaggle(path, cache_dir=tmp_path / "cache")
    assert np.flatnonzero(mission.unrepresentable).tolist() == [10, 11, 40]
    assert np.isfinite(mission.values).all()
    again = read_kaggle(path, cache_dir=tmp_path / "cache")  # the mark is cached too
    np.testing.assert_array_equal(again.unrepresentable, mission.unrepresentable)


def test_a_missing_reading_is_repaired_without_a_mark(tmp_path):
    path = kaggle_with(tmp_path / "train.parquet", [10], np.nan)
    mission = read_kaggle(path, cache_dir=None)
    assert not mission.unrepresentable.any()


def test_esa_marks_the_grid_row_of_a_value_beyond_float32(tmp_path):
    frame = esa_frame("channel_2")
    frame.iloc[20, 0] = 1e300
    root = write_esa_mission(
        tmp_path / "mission",
        {"channel_1": pickled_zip(esa_frame("channel_1")), "channel_2": pickled_zip(frame)},
    )
    mission = read_esa_mission(root, cache_dir=tmp_path / "cache")
    assert np.isfinite(mission.values).all()
    marked = np.flatnonzero(mission.unrepresentable)
    assert mission.timestamps[marked].tolist() == [frame.index[20].value]


def test_nasa_marks_infinite_rows(tmp_path):
    root = write_nasa(tmp_path / "nasa")
    arr = np.load(root / "test" / "A-1.npy")
    arr[7, 0] = np.inf
    np.save(root / "test" / "A-1.npy", arr)
    series = read_nasa(root).series["A-1"]
    assert series.test().unrepresentable.nonzero()[0].tolist() == [7]


class NeverAlarms:
    """A scorer that alarms on nothing; its score is the row's value minus the mean of the
    ``context_rows`` rows before it (a detrending detector)."""

    context_rows = 5
    alignment_rows = 1

    def score_rows(self, mission):
        x = np.asarray(mission.values[:, 0], dtype=np.float64)
        csum = np.concatenate([[0.0], np.cumsum(x)])
        idx = np.arange(len(x))
        lo = np.maximum(idx - self.context_rows, 0)
        mean = np.where(idx > 0, (csum[idx] - csum[lo]) / np.maximum(idx - lo, 1), x)
        score = (x - mean).astype(np.float32)
        return RowScores(score, np.zeros(len(x), dtype=np.uint8))


def ramp_mission(n=300):
    values = np.arange(n, dtype=np.float32)[:, None] ** 1.5
    return toy_mission(values, val_start=100, test_start=200)


@pytest.mark.parametrize("chunk_rows", [0, 7, 1000])
def test_unrepresentable_rows_always_alarm(chunk_rows):
    mission = ramp_mission()
    mission.unrepresentable = np.zeros(300, dtype=np.uint8)
    mission.unrepresentable[[3, 150, 299]] = 1
    scores = score_in_chunks(NeverAlarms(), mission, chunk_rows)
    assert np.flatnonzero(scores.alarm).tolist() == [3, 150, 299]
    assert scores.score[150] == np.finfo(np.float32).max
    test = score_in_chunks(NeverAlarms(), mission.test(), chunk_rows)  # the mark is sliced too
    assert np.flatnonzero(test.alarm).tolist() == [99]


@pytest.mark.parametrize("chunk_rows", [0, 7, 1000])
def test_a_range_is_scored_with_the_rows_before_it(chunk_rows):
    mission = ramp_mission()
    whole = NeverAlarms().score_rows(mission)
    test = score_in_chunks(NeverAlarms(), mission, chunk_rows, first_row=mission.test_start)
    np.testing.assert_array_equal(test.score, whole.score[mission.test_start :])
