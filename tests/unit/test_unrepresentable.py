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
    assert mission.unrepresentable_cells.tolist() == [[10, 0], [11, 0], [40, 0]]  # channel_1
    assert np.isfinite(mission.values).all()
    again = read_kaggle(path, cache_dir=tmp_path / "cache")  # the mark is cached too
    np.testing.assert_array_equal(again.unrepresentable, mission.unrepresentable)
    np.testing.assert_array_equal(again.unrepresentable_cells, mission.unrepresentable_cells)


def test_a_missing_reading_is_repaired_without_a_mark(tmp_path):
    path = kaggle_with(tmp_path / "train.parquet", [10], np.nan)
    mission = read_kaggle(path, cache_dir=None)
    assert not mission.unrepresentable.any()
    assert mission.unrepresentable_cells.shape == (0, 2)


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
    assert mission.unrepresentable_cells.tolist() == [[marked[0], 1]]  # channel_2's column


def test_nasa_marks_infinite_rows(tmp_path):
    root = write_nasa(tmp_path / "nasa")
    arr = np.load(root / "test" / "A-1.npy")
    arr[7, 0] = np.inf
    np.save(root / "test" / "A-1.npy", arr)
    series = read_nasa(root).series["A-1"]
    assert series.test().unrepresentable.nonzero()[0].tolist() == [7]
    assert series.test().unrepresentable_cells.tolist() == [[7, 0]]


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


class AlarmsNoChannel(NeverAlarms):
    """``NeverAlarms`` with per-channel scores and alarms over two channels (none alarmed)."""

    def score_rows(self, mission):
        rs = NeverAlarms.score_rows(self, mission)
        n = len(rs.score)
        values = np.asarray(mission.values, dtype=np.float32)
        return RowScores(
            rs.score,
            rs.alarm,
            channel_scores=np.abs(values - values.mean(0)),
            channel_alarm=np.zeros((n, values.shape[1]), dtype=np.uint8),
        )


def two_channel_mission(cells):
    mission = toy_mission(
        np.stack([np.arange(300.0) ** 1.5, np.sin(np.arange(300.0))], 1).astype(np.float32),
        val_start=100,
        test_start=200,
    )
    mission.unrepresentable_cells = np.array(cells, dtype=np.int64).reshape(-1, 2)
    mission.unrepresentable = np.zeros(300, dtype=np.uint8)
    mission.unrepresentable[mission.unrepresentable_cells[:, 0]] = 1
    return mission


@pytest.mark.parametrize("keep", ["all", "alarmed", "none"])
@pytest.mark.parametrize("chunk_rows", [0, 7, 1000])
def test_the_channel_of_an_unrepresentable_reading_alarms(chunk_rows, keep):
    """A row forced to alarm by an unrepresentable reading alarmed no channel, though the
    channel holding it is known: that channel alarms there (and only it)."""
    cells = [[3, 1], [150, 0], [150, 1], [299, 0]]
    mission = two_channel_mission(cells)
    scores = score_in_chunks(AlarmsNoChannel(), mission, chunk_rows, keep_channel_scores=keep)
    assert np.argwhere(np.asarray(scores.channel_alarm)).tolist() == cells
    assert np.flatnonzero(scores.alarm).tolist() == [3, 150, 299]
    test = score_in_chunks(AlarmsNoChannel(), mission.test(), chunk_rows, keep_channel_scores=keep)
    assert np.argwhere(np.asarray(test.channel_alarm)).tolist() == [[99, 0]]  # sliced too


def test_the_interval_of_an_unrepresentable_reading_names_its_channel():
    """channel_0 held a reading float32 cannot represent (repaired to its flat value, so
    nothing else sets it apart) while channel_1 swings as usual: the forced alarm names
    channel_0, first, where it named channel_1 (the attribution over all channels)."""
    from esa_lightning.reporting.outputs import alarm_intervals

    t = np.arange(300.0)
    values = np.stack([np.zeros(300), np.sin(t / 3.0)], 1).astype(np.float32)
    mission = toy_mission(values, val_start=100, test_start=200)
    mission.unrepresentable = np.zeros(300, dtype=np.uint8)
    mission.unrepresentable[250] = 1
    mission.unrepresentable_cells = np.array([[250, 0]])
    part = mission.test()
    scores = score_in_chunks(AlarmsNoChannel(), part, 0, keep_channel_scores="alarmed")
    (row,) = alarm_intervals(np.asarray(part.timestamps), scores, part).itertuples(index=False)
    assert row.channels == "channel_0"
    assert row.top_channels.split("=")[0] == "channel_0"


class WithThresholdAndGate(NeverAlarms):
    """``NeverAlarms`` reporting a threshold and a gate probability on every row."""

    def score_rows(self, mission):
        rs = NeverAlarms.score_rows(self, mission)
        n = len(rs.score)
        return RowScores(
            rs.score,
            rs.alarm,
            threshold=np.full(n, 2.5, np.float32),
            gate_probability=np.full(n, 0.25, np.float32),
        )


@pytest.mark.parametrize("chunk_rows", [0, 7, 1000])
def test_a_forced_alarm_keeps_the_threshold_and_the_gate_probability(chunk_rows):
    """Forcing the alarms of a piece dropped its threshold and gate probability, and with them
    those of the whole range (intervals.csv's threshold column, the report's threshold)."""
    mission = ramp_mission()
    mission.unrepresentable = np.zeros(300, dtype=np.uint8)
    mission.unrepresentable[150] = 1
    scores = score_in_chunks(WithThresholdAndGate(), mission, chunk_rows)
    np.testing.assert_array_equal(scores.threshold, np.full(300, 2.5, np.float32))
    np.testing.assert_array_equal(scores.gate_probability, np.full(300, 0.25, np.float32))


def test_a_row_of_an_unrepresentable_reading_is_not_nominal():
    """Its forced score (float32's largest) entered the nominal validation reference that
    every alarm's confidence is measured against, and its repaired value the rows the models
    fit on: such a reading is an anomaly by itself, never a nominal row."""
    from esa_lightning.data.mission import nominal_rows
    from esa_lightning.runtime.calibration import calibration_record

    mission = two_channel_mission([[150, 0]])
    assert np.flatnonzero(~nominal_rows(mission)).tolist() == [150]
    assert nominal_rows(mission.val()).sum() == 99
    record = calibration_record(AlarmsNoChannel(), mission, chunk_rows=0)
    assert record["source"] == "validation"
    assert max(record["reference_scores"]) < np.finfo(np.float32).max


def _filled(column):
    """A plain forward fill of ``column``'s NaN/inf (the first finite value before it)."""
    ok = np.isfinite(column)
    out, last = column.copy(), column[np.argmax(ok)]
    for i, good in enumerate(ok):
        last = column[i] if good else last
        out[i] = last
    return out


def test_the_one_pass_repair_finds_and_fills_what_separate_passes_do():
    """``repair_values`` reads the values once (``scan_nonfinite``, in row chunks) for the
    packed finite rows, the +-inf cells, each column's NaN/inf count and first finite row, then
    fills the columns holding one in a second pass of row chunks, carrying each column's last
    finite value from chunk to chunk: each must equal its own computation on the whole array,
    wherever the NaN, inf and values beyond float32 fall against the chunk boundaries (runs
    across them, a column's first finite value in a later chunk, NaN in the first row)."""
    import warnings

    from esa_lightning.data.array_store import ArrayStore
    from esa_lightning.data.readers.nonfinite import repair_values, scan_nonfinite
    from esa_lightning.errors import ESAInputError

    rng = np.random.default_rng(3)
    seen = {"first row bad": 0, "run across chunks": 0, "first finite in a later chunk": 0}
    for _ in range(300):
        n, c = int(rng.integers(1, 70)), int(rng.integers(1, 5))
        chunk = 8 * int(rng.integers(1, 4))
        raw = rng.normal(size=(n, c))
        for bad in (np.nan, np.inf, -np.inf, 1e39, -1e300):
            raw[rng.random((n, c)) < rng.random() * 0.3] = bad
        # a run of NaN, often across a chunk boundary; in 3 arrays of 10 from row 0 (the first
        # finite value then often lies in a later chunk)
        start = int(rng.integers(0, n)) if rng.random() < 0.7 else 0
        raw[start : start + int(rng.integers(1, 2 * chunk)), int(rng.integers(c))] = np.nan
        with np.errstate(over="ignore"):
            values = raw.astype(np.float32)  # beyond float32: inf
        ok = np.isfinite(values)
        found = scan_nonfinite(values, ArrayStore(), chunk_rows=chunk)
        np.testing.assert_array_equal(found.finite, np.packbits(ok, axis=0).T)
        np.testing.assert_array_equal(found.cells, np.argwhere(np.isinf(values)))
        np.testing.assert_array_equal(found.counts, (~ok).sum(axis=0))
        np.testing.assert_array_equal(found.first, np.where(ok.any(axis=0), ok.argmax(axis=0), -1))
        assert scan_nonfinite(values).finite is None

        names = [f"ch{j}" for j in range(c)]
        repaired = values.copy()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if not ok.any(axis=0).all():
                dead = names[int(np.argmin(ok.any(axis=0)))]
                with pytest.raises(ESAInputError, match=f"'{dead}'.*holds no finite value"):
                    repair_values(repaired, names, source="src", chunk_rows=chunk)
                assert repaired.tobytes() == values.tobytes()  # nothing filled
                continue
            again = repair_values(repaired, names, source="src", store=ArrayStore(),
                                  chunk_rows=chunk)
        for got, want in zip(again, found, strict=True):
            np.testing.assert_array_equal(got, want)
        for j in range(c):
            np.testing.assert_array_equal(repaired[:, j], _filled(values[:, j]))
        said = [str(w.message) for w in caught]
        inf_rows = len(np.unique(np.argwhere(np.isinf(values))[:, 0]))
        bad_cols = int((~ok).any(axis=0).sum())
        want_said = [f"src: {inf_rows} row(s) hold a reading beyond"] if inf_rows else []
        if bad_cols:
            want_said.append(f"src: repaired {int((~ok).sum())} NaN/inf value(s) in {bad_cols} ")
        assert [s[: len(w)] for s, w in zip(said, want_said, strict=False)] == want_said
        assert len(said) == len(want_said)
        seen["first row bad"] += int((~ok[0]).any())
        edges = np.arange(chunk, n, chunk)
        seen["run across chunks"] += int((~ok[edges - 1] & ~ok[edges]).any())
        seen["first finite in a later chunk"] += int((found.first >= chunk).any())
    assert min(seen.values()) >= 10, seen  # the repaired arrays held each case
