"""ESA-ADB preprocessed CSV reader: round trips, splits, events, projection, cache, bad input."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.csv as pacsv
import pytest

from esa_lightning.data.mission import Mission, default_channel_table, empty_events
from esa_lightning.data.readers import esa_csv
from esa_lightning.data.readers.esa_csv import read_esa_csv
from esa_lightning.errors import ESAInputError
from tests.helpers import write_esa_csv

START = pd.Timestamp("2000-01-01")
STEP = pd.Timedelta("30s")


def make_frame(n: int = 40, n_channels: int = 3, n_commands: int = 2, seed: int = 0):
    """A CSV-shaped frame plus the arrays it encodes."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range(START, periods=n, freq=STEP)
    values = rng.normal(size=(n, n_channels)).astype(np.float32)
    commands = (rng.random((n, n_commands)) < 0.2).astype(np.float32)
    labels = np.zeros((n, n_channels), dtype=np.uint8)
    names = [f"channel_{i + 1}" for i in range(n_channels)]
    tcs = [f"telecommand_{i + 1}" for i in range(n_commands)]
    frame = pd.DataFrame({"timestamp": ts.strftime("%Y-%m-%d %H:%M:%S")})
    for j, c in enumerate(names):
        frame[c] = values[:, j]
    for j, c in enumerate(tcs):
        frame[c] = commands[:, j].astype(int)
    return frame, ts, values, commands, labels, names, tcs


def write_csv(path: Path, frame: pd.DataFrame, labels: np.ndarray, names: list[str]) -> Path:
    frame = frame.copy()
    value_cols = [c for c in frame.columns if c != "timestamp"]
    for c in value_cols:
        j = names.index(c) if c in names else None
        frame["is_anomaly_" + c] = labels[:, j] if j is not None else 0
    frame.to_csv(path, index=False, float_format="%.9g")
    return path


def read(path, **kw):
    kw.setdefault("use_cache", False)
    return read_esa_csv(path, **kw)


def test_single_file_round_trip_and_split(tmp_path):
    frame, ts, values, commands, labels, names, tcs = make_frame()
    labels[5:9, 0] = 1
    labels[7:12, 2] = 1
    labels[20:22, 1] = 2
    labels[30, 0] = 3
    path = write_csv(tmp_path / "3_months.train.csv", frame, labels, names)
    split = START + STEP * 25
    m = read(path, split_date=split, val_days=5 * 30 / 86400)
    np.testing.assert_array_equal(m.values, values)
    np.testing.assert_array_equal(m.telecommands, commands)
    np.testing.assert_array_equal(m.labels, labels)
    np.testing.assert_array_equal(m.timestamps, ts.values)
    assert m.values.dtype == np.float32 and m.labels.dtype == np.uint8
    assert m.channel_names == names and m.telecommand_names == tcs
    assert m.test_start == 25
    assert m.val_start == 20  # last 5 steps of training (rows 20..24) are validation
    assert m.period == STEP
    assert m.name == "3_months"


def test_header_names_padded_with_spaces_are_read_as_trimmed(tmp_path):
    frame, ts, values, commands, labels, names, tcs = make_frame()
    labels[5:9, 0] = 1
    path = write_csv(tmp_path / "m.train.csv", frame, labels, names)
    lines = path.read_text().splitlines()
    lines[0] = ",".join(f" {name} " for name in lines[0].split(","))
    path.write_text("\n".join(lines) + "\n")
    m = read(path)
    assert m.channel_names == names and m.telecommand_names == tcs
    np.testing.assert_array_equal(m.values, values)
    np.testing.assert_array_equal(m.labels, labels)


def test_events_from_runs(tmp_path):
    frame, ts, _, _, labels, names, _ = make_frame(n=30)
    labels[5:9, 0] = 1  # event A spans rows 5..11 over two channels
    labels[7:12, 2] = 1
    labels[20:22, 1] = 2  # event B: a rare event
    labels[25, 0] = 1  # event C: one row
    labels[25, 1] = 3  # event D: a gap on the same row, another category
    path = write_csv(tmp_path / "x.csv", frame, labels, names)
    ev = read(path).events
    assert list(ev.columns[:5]) == ["ID", "Channel", "StartTime", "EndTime", "Category"]
    assert ev["ID"].nunique() == 4
    a = ev[ev["ID"] == ev.loc[(ev["Channel"] == "channel_3"), "ID"].iloc[0]]
    assert set(a["Channel"]) == {"channel_1", "channel_3"}
    seg1 = a[a["Channel"] == "channel_1"].iloc[0]
    seg3 = a[a["Channel"] == "channel_3"].iloc[0]
    assert (seg1["StartTime"], seg1["EndTime"]) == (ts[5], ts[8])
    assert (seg3["StartTime"], seg3["EndTime"]) == (ts[7], ts[11])
    rare = ev[ev["Category"] == "Rare Event"]
    assert len(rare) == 1 and rare.iloc[0]["Channel"] == "channel_2"
    assert (rare.iloc[0]["StartTime"], rare.iloc[0]["EndTime"]) == (ts[20], ts[21])
    at25 = ev[ev["StartTime"] == ts[25]]
    assert set(at25["Category"]) == {"Anomaly", "Communication Gap"}
    assert at25["ID"].nunique() == 2


def test_folder_train_test_and_channel_table(tmp_path):
    frame, ts, values, commands, labels, names, _ = make_frame(n=50)
    labels[40:45, 1] = 1
    write_csv(tmp_path / "3_months.train.csv", frame.iloc[:30], labels[:30], names)
    write_csv(tmp_path / "3_months.test.csv", frame.iloc[30:], labels[30:], names)
    pd.DataFrame(
        {
            "Channel": names,
            "Subsystem": ["subsystem_1", "subsystem_1", "subsystem_2"],
            "Physical Unit": ["V", "A", "K"],
            "Group": ["g1", "g1", "g2"],
            "Target": ["YES", "NO", "YES"],
            "Categorical": ["NO", "NO", "YES"],
        }
    ).to_csv(tmp_path / "channels.csv", index=False)
    m = read(tmp_path, split_date="1999-01-01", val_days=10 * 30 / 86400)
    assert m.test_start == 30  # from the files, not from split_date
    assert m.val_start == 20
    np.testing.assert_array_equal(m.values, values)
    np.testing.assert_array_equal(m.labels, labels)
    assert m.target_channels == ["channel_1", "channel_3"]
    assert list(m.channels["Group"]) == ["g1", "g1", "g2"]
    assert list(m.channels["Categorical"]) == [False, False, True]
    assert len(m.test().events) == 1
    t = read(tmp_path, channels="target")
    assert t.channel_names == ["channel_1", "channel_3"]
    np.testing.assert_array_equal(t.values, values[:, [0, 2]])


@pytest.mark.parametrize("cached", [False, True])
def test_a_file_without_label_columns_reads_as_unlabeled_telemetry(tmp_path, cached):
    # new telemetry to score carries no is_anomaly_<channel> column: it was refused as missing
    # them; it reads as the Kaggle reader reads a test.parquet without is_anomaly
    frame, _, values, commands, labels, names, _ = make_frame(n=50)
    labels[10:15, 1] = 1
    write_csv(tmp_path / "3_months.train.csv", frame.iloc[:30], labels[:30], names)
    frame.iloc[30:].to_csv(tmp_path / "3_months.test.csv", index=False, float_format="%.9g")
    kw = {"use_cache": True, "cache_dir": tmp_path / "cache"} if cached else {}
    for _ in range(1 + cached):  # the cached read too
        m = read(tmp_path, **kw)
        np.testing.assert_array_equal(m.values, values)
        np.testing.assert_array_equal(m.telecommands, commands)
        np.testing.assert_array_equal(m.labels[:30], labels[:30])
        assert not m.labels[30:].any()
        assert m.meta["train_labeled"] and not m.meta["test_labeled"]
        assert len(m.events) == 1
    alone = read(tmp_path / "3_months.test.csv")  # one unlabeled file, split or not
    assert not alone.meta["train_labeled"] and not alone.meta["test_labeled"]


def test_validation_falls_back_to_a_fraction_of_a_short_training_range(tmp_path):
    """As data=esa: val_days that do not fit (a NASA mission converted to CSV spans days, not
    the 180 days 90 validation days need) give the last val_fraction of the training rows."""
    frame, _, _, _, labels, names, _ = make_frame(n=50)
    write_csv(tmp_path / "short.train.csv", frame.iloc[:40], labels[:40], names)
    write_csv(tmp_path / "short.test.csv", frame.iloc[40:], labels[40:], names)
    assert read(tmp_path, val_days=90).val_start == 0  # the old behaviour: no training rows
    m = read(tmp_path, val_days=90, val_fraction=0.2)
    assert (m.val_start, m.test_start) == (32, 40)
    assert read(tmp_path, val_days=5 * 30 / 86400, val_fraction=0.2).val_start == 35  # fits
    single = read(
        tmp_path / "short.train.csv", split_date=START + STEP * 30, val_days=90, val_fraction=0.5
    )
    assert (single.val_start, single.test_start) == (15, 30)


def test_reads_only_requested_columns(tmp_path, monkeypatch):
    frame, _, values, _, labels, names, tcs = make_frame(n_channels=5)
    labels[3:6, 3] = 1
    path = write_csv(tmp_path / "x.csv", frame, labels, names)
    seen = []
    real_open = pacsv.open_csv

    def spy(*args, **kwargs):
        seen.append(list(kwargs["convert_options"].include_columns))
        return real_open(*args, **kwargs)

    monkeypatch.setattr(esa_csv.pacsv, "open_csv", spy)
    m = read(path, channels=["channel_4", "channel_2"])
    assert m.channel_names == ["channel_4", "channel_2"]
    np.testing.assert_array_equal(m.values, values[:, [3, 1]])
    np.testing.assert_array_equal(m.labels, labels[:, [3, 1]])
    expected = {"timestamp", "channel_4", "channel_2", "is_anomaly_channel_4"}
    expected |= {"is_anomaly_channel_2", *tcs}
    assert set(seen[0]) == expected


def test_lightweight_subset(tmp_path):
    frame, _, values, _, labels, names, _ = make_frame(n_channels=4)
    path = write_csv(tmp_path / "x.csv", frame, labels, names)
    m = read(path, channels="lightweight", lightweight=["channel_2", "channel_3"])
    np.testing.assert_array_equal(m.values, values[:, 1:3])


def test_many_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(esa_csv, "BLOCK_BYTES", 4096)
    frame, ts, values, commands, labels, names, _ = make_frame(n=3000)
    labels[1000:1500, 0] = 1
    path = write_csv(tmp_path / "x.csv", frame, labels, names)
    m = read(path)
    np.testing.assert_array_equal(m.values, values)
    np.testing.assert_array_equal(m.labels, labels)
    np.testing.assert_array_equal(m.timestamps, ts.values)
    # a duplicate timestamp far from the start is caught across batch boundaries
    frame.loc[2500, "timestamp"] = frame.loc[2499, "timestamp"]
    write_csv(path, frame, labels, names)
    with pytest.raises(ESAInputError, match="row 2500"):
        read(path)


def test_cache_round_trip(tmp_path):
    frame, _, values, _, labels, names, _ = make_frame()
    labels[2:4, 1] = 1
    path = write_csv(tmp_path / "x.csv", frame, labels, names)
    cache = tmp_path / "cache"
    first = read_esa_csv(path, cache_dir=cache)
    assert isinstance(first.values, np.memmap)  # the cache is built on disk and mapped
    second = read_esa_csv(path, cache_dir=cache)
    assert isinstance(second.values, np.memmap)
    np.testing.assert_array_equal(second.values, values)
    np.testing.assert_array_equal(second.labels, labels)
    assert second.events.equals(first.events)
    assert len(list(cache.glob("*/manifest.json"))) == 1
    assert not list(cache.rglob(".tmp-*"))
    # another channel selection is another entry; a changed file is another entry too
    read_esa_csv(path, cache_dir=cache, channels=["channel_1"])
    assert len(list(cache.glob("*/manifest.json"))) == 2
    frame["channel_1"] = 7.0
    write_csv(path, frame, labels, names)
    third = read_esa_csv(path, cache_dir=cache)
    assert np.all(third.values[:, 0] == 7.0)


def test_no_cache_writes_nothing(tmp_path):
    frame, _, _, _, labels, names, _ = make_frame()
    path = write_csv(tmp_path / "x.csv", frame, labels, names)
    read_esa_csv(path, cache_dir=tmp_path / "cache", use_cache=False)
    assert not (tmp_path / "cache").exists()


def test_nan_and_inf_are_forward_filled(tmp_path):
    frame, _, values, _, labels, names, _ = make_frame(n=10)
    frame["channel_1"] = frame["channel_1"].astype(object)
    frame.loc[0, "channel_1"] = ""  # leading gap: back-filled from row 1
    frame.loc[4, "channel_1"] = "nan"
    frame.loc[5, "channel_1"] = "inf"
    path = write_csv(tmp_path / "x.csv", frame, labels, names)
    with pytest.warns(UserWarning, match="repaired 3 NaN/inf"):
        m = read(path)
    col = m.values[:, 0]
    assert col[0] == values[1, 0]
    assert col[4] == col[5] == values[3, 0]
    np.testing.assert_array_equal(col[6:], values[6:, 0])


# ------------------------------------------------------------------------------ bad input
def _bad_frame(tmp_path, edit) -> Path:
    frame, _, _, _, labels, names, _ = make_frame(n=10)
    path = write_csv(tmp_path / "bad.csv", frame, labels, names)
    table = pd.read_csv(path, dtype=str)
    edit(table).to_csv(path, index=False)
    return path


def _set(column, row, value):
    def edit(table):
        table.loc[row, column] = table.loc[value, column] if isinstance(value, int) else value
        return table

    return edit


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (_set("channel_2", 9, "abc"), "channel_2.*'abc'.*number"),
        (_set("is_anomaly_channel_1", 9, "5"), "0..4"),
        (_set("is_anomaly_channel_1", 9, "-1"), "0..4"),
        (_set("is_anomaly_channel_2", 4, ""), "is_anomaly_channel_2.*empty label"),
        (_set("timestamp", 3, ""), "timestamp.*empty timestamp"),
        (_set("timestamp", 3, "yesterday"), "'yesterday'"),
        (_set("timestamp", 3, 2), "increasing"),  # duplicate
        (_set("timestamp", 3, 8), "increasing"),  # unsorted
        (lambda t: t.drop(columns="is_anomaly_channel_3"), "is_anomaly_channel_3"),
        (lambda t: t.drop(columns="timestamp"), "timestamp"),
        # labels of a column the file lacks were dropped without a word
        (lambda t: t.drop(columns="channel_3"), "is_anomaly_channel_3.*no column 'channel_3'"),
        (lambda t: t.assign(is_anomaly_channel_9=0), "is_anomaly_channel_9.*'channel_9'"),
        (lambda t: t.iloc[:0], "no data rows"),
    ],
)
def test_bad_input_names_the_problem(tmp_path, edit, match):
    path = _bad_frame(tmp_path, edit)
    with pytest.raises(ESAInputError, match=match) as info:
        read(path)
    assert "bad.csv" in str(info.value)


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ESAInputError, match="empty"):
        read(empty)
    with pytest.raises(ESAInputError, match="no such"):
        read(tmp_path / "nope.csv")
    with pytest.raises(ESAInputError, match="exactly one"):
        read(tmp_path)  # a folder without *.train.csv


@pytest.mark.parametrize("separator", [";", "\t"])
def test_a_file_of_another_separator_is_named_as_such(tmp_path, separator):
    # it said only "missing the timestamp column", of a header that begins with timestamp
    path = tmp_path / "x.csv"
    path.write_text(f"timestamp{separator}channel_1\n2000-01-01 00:00:00{separator}1\n")
    said = f"timestamp.*separated by {re.escape(repr(separator))}.*comma"
    with pytest.raises(ESAInputError, match=said):
        read(path)


def test_all_nan_channel_is_an_error(tmp_path):
    frame, _, _, _, labels, names, _ = make_frame(n=10)
    frame["channel_2"] = np.nan
    path = write_csv(tmp_path / "x.csv", frame, labels, names)
    with pytest.raises(ESAInputError, match="channel_2.*no finite") as err:
        read(path)
    assert err.value.path == str(path)  # the full path, as the other errors give it


def test_a_test_file_label_column_without_its_channel_is_refused(tmp_path):
    frame, _, _, _, labels, names, _ = make_frame(n=20)
    write_csv(tmp_path / "a.train.csv", frame.iloc[:10], labels[:10], names)
    test = write_csv(tmp_path / "a.test.csv", frame.iloc[10:], labels[10:], names)
    misspelt = {"is_anomaly_channel_2": "is_anomaly_chanel_2"}
    pd.read_csv(test, dtype=str).rename(columns=misspelt).to_csv(test, index=False)
    with pytest.raises(ESAInputError, match=r"a\.test\.csv.*is_anomaly_chanel_2"):
        read(tmp_path)


def test_test_file_must_follow_train(tmp_path):
    frame, _, _, _, labels, names, _ = make_frame(n=20)
    write_csv(tmp_path / "a.train.csv", frame.iloc[10:], labels[10:], names)
    write_csv(tmp_path / "a.test.csv", frame.iloc[:10], labels[:10], names)
    with pytest.raises(ESAInputError, match="a.test.csv.*after the last training"):
        read(tmp_path)


def test_an_unsorted_test_file_names_its_own_row(tmp_path):
    """A duplicate timestamp at row 5 of the test file was named as row 25 of that file: the
    row counted the training file's 20 rows too."""
    frame, _, _, _, labels, names, _ = make_frame(n=40)
    write_csv(tmp_path / "a.train.csv", frame.iloc[:20], labels[:20], names)
    test = frame.iloc[20:].reset_index(drop=True)
    test.loc[5, "timestamp"] = test.loc[4, "timestamp"]
    write_csv(tmp_path / "a.test.csv", test, labels[20:], names)
    with pytest.raises(ESAInputError, match=r"a\.test\.csv.*duplicate at row 5\)"):
        read(tmp_path)


def test_unknown_channel(tmp_path):
    frame, _, _, _, labels, names, _ = make_frame()
    path = write_csv(tmp_path / "x.csv", frame, labels, names)
    with pytest.raises(ESAInputError, match="channel_99"):
        read(path, channels=["channel_99"])


def small_mission(n: int = 200, n_channels: int = 3, seed: int = 1) -> Mission:
    rng = np.random.default_rng(seed)
    labels = np.zeros((n, n_channels), dtype=np.uint8)
    labels[50:60, 0] = 1
    labels[55:70, 2] = 1
    labels[120:125, 1] = 2
    names = [f"channel_{i + 1}" for i in range(n_channels)]
    return Mission(
        name="tiny",
        values=rng.normal(size=(n, n_channels)).astype(np.float32),
        timestamps=pd.date_range(START, periods=n, freq=STEP).values,
        channels=default_channel_table(names),
        labels=labels,
        events=empty_events(),
        telecommands=(rng.random((n, 2)) < 0.1).astype(np.float32),
        telecommand_names=["telecommand_1", "telecommand_2"],
        test_start=150,
    )


def test_round_trip_through_synthetic_writer(tmp_path):
    writers = pytest.importorskip("esa_lightning.data.readers.layout_writers")
    source = small_mission()
    writers.write_esa_csv(source.fit_range(), tmp_path / "tiny.train.csv")
    writers.write_esa_csv(source.test(), tmp_path / "tiny.test.csv")
    m = read(tmp_path)
    np.testing.assert_array_equal(m.values, source.values)
    np.testing.assert_array_equal(m.telecommands, source.telecommands)
    np.testing.assert_array_equal(m.labels, source.labels)
    np.testing.assert_array_equal(m.timestamps, source.timestamps)
    assert m.test_start == source.test_start
    assert m.channel_names == source.channel_names
    assert m.events["ID"].nunique() == 2


@pytest.mark.parametrize("layout", ["pandas_index", "trailing_comma"])
def test_unnamed_column_is_named_as_the_problem(tmp_path, layout):
    """A CSV written by to_csv() with its index, or with a trailing comma on every line, has a
    header column without a name: it was read as a channel named '' and refused for a missing
    column 'is_anomaly_', which names nothing the user wrote."""
    frame, _, _, _, labels, names, _ = make_frame(n=10)
    path = write_csv(tmp_path / "x.csv", frame, labels, names)
    table = pd.read_csv(path)
    if layout == "pandas_index":
        table.to_csv(path)  # index=True: a leading column without a name
        column = 1
    else:
        path.write_text("".join(line + ",\n" for line in path.read_text().splitlines()))
        column = table.shape[1] + 1
    with pytest.raises(ESAInputError, match=rf"x.csv.*column {column} .*has no name"):
        read(path)


def test_channel_table_listing_a_channel_twice_is_refused(tmp_path):
    """channels.csv with a channel on two rows made the mission read that CSV column twice (one
    channel per row, Target flags disagreeing); the raw ESA reader already refuses it."""
    frame, _, _, _, labels, names, _ = make_frame(n=20)
    write_csv(tmp_path / "m.train.csv", frame, labels, names)
    rows = [*names, names[0]]
    pd.DataFrame({"Channel": rows, "Target": ["YES", "YES", "YES", "NO"]}).to_csv(
        tmp_path / "channels.csv", index=False
    )
    with pytest.raises(ESAInputError, match=r"channels.csv.*'Channel'.*'channel_1'.*duplicate"):
        read(tmp_path)


def test_test_file_on_another_grid_is_refused(tmp_path):
    """A test file sampled every 60 s after a 30 s training file was read without a word: the
    mission's period (the median step) stayed 30 s and the detector scored 60 s rows as 30 s
    ones, so a detector trained on 30 s data also passed the schema check."""
    frame, _, _, _, labels, names, _ = make_frame(n=60)
    write_csv(tmp_path / "m.train.csv", frame.iloc[:40], labels[:40], names)
    test = frame.iloc[40:].copy()
    start = pd.Timestamp(frame["timestamp"].iloc[39]) + pd.Timedelta("60s")
    test["timestamp"] = pd.date_range(start, periods=len(test), freq="60s").strftime(
        "%Y-%m-%d %H:%M:%S"
    )
    write_csv(tmp_path / "m.test.csv", test, labels[40:], names)
    with pytest.raises(ESAInputError, match=r"m.test.csv.*'timestamp'.*0 days 00:01:00.*00:00:30"):
        read(tmp_path)


@pytest.mark.parametrize("cell", ["", "  "])
def test_channel_table_row_without_a_channel_is_refused_naming_its_row(tmp_path, cell):
    """A channels.csv row with an empty Channel cell was dropped without a word, and the
    subsystem, group and flags it held went to no channel; the raw ESA reader refuses it."""
    frame, _, _, _, labels, names, _ = make_frame(n=20)
    write_csv(tmp_path / "m.train.csv", frame, labels, names)
    rows = ["channel_1", cell, "channel_3"]
    pd.DataFrame({"Channel": rows, "Target": ["YES", "NO", "YES"]}).to_csv(
        tmp_path / "channels.csv", index=False
    )
    with pytest.raises(ESAInputError, match=r"channels.csv.*'Channel'.*empty cell in row 2 after"):
        read(tmp_path)
    rows[1] = "NA"  # a name spelt like a missing value is a name: the row is kept
    pd.DataFrame({"Channel": rows}).to_csv(tmp_path / "channels.csv", index=False)
    assert read(tmp_path).channel_names == names


@pytest.mark.parametrize(
    "listed",
    [
        # real names spelt like the defaults of the channels channels.csv does not list
        {"Subsystem": ["subsystem_0", "power"], "Group": ["group_0", "group_1"]},
        # no Group or Subsystem column: the listed rows get the default names themselves
        {},
    ],
)
def test_unlisted_channels_join_no_group_or_subsystem_of_the_listed_ones(tmp_path, listed):
    """A channel missing from channels.csv got ``group_0`` and ``subsystem_0``, the defaults,
    which a listed channel could hold too (a real name, or the default given to a file without
    the column): the unlisted channel then joined its group and subsystem."""
    frame, _, _, _, labels, names, _ = make_frame(n=20, n_channels=4)
    write_csv(tmp_path / "m.train.csv", frame, labels, names)
    pd.DataFrame({"Channel": names[:2], **listed}).to_csv(tmp_path / "channels.csv", index=False)
    table = read(tmp_path).channels.set_index("Channel")
    listed_groups = set(table.loc[names[:2], "Group"])
    listed_subsystems = set(table.loc[names[:2], "Subsystem"])
    unlisted = table.loc[names[2:]]
    assert not set(unlisted["Group"]) & listed_groups
    assert unlisted["Group"].is_unique  # each its own group, as without a channels.csv
    assert not set(unlisted["Subsystem"]) & listed_subsystems
    if listed:
        assert list(table.loc[names[:2], "Group"]) == listed["Group"]  # real names kept


def test_channel_table_row_with_more_cells_than_the_header_is_refused(tmp_path):
    """pandas took a trailing cell as an index and shifted every column: each channel's
    Subsystem became its Channel, so the table described no channel of the CSV and was left
    out without a word."""
    write_esa_csv(tmp_path / "m.train.csv")
    (tmp_path / "channels.csv").write_text(
        "Channel,Subsystem,Group\nchannel_1,sub_a,group_a,\nchannel_2,sub_b,group_b,\n"
    )
    with pytest.raises(ESAInputError, match="more cells than the header") as err:
        read(tmp_path)
    assert err.value.path == str(tmp_path / "channels.csv")


@pytest.mark.parametrize("zone", ["Z", "+02:00"])
def test_timestamps_with_a_time_zone_are_read_in_utc(tmp_path, zone):
    """Timestamps with a time zone (ISO text ending in Z or +02:00) were refused as "not a
    timestamp in the format %Y-%m-%d %H:%M:%S"; the raw reader converts zones to UTC, and so
    does this one now (naive times are UTC, as before)."""
    frame, ts, values, _, labels, names, _ = make_frame(n=12)
    shift = pd.Timedelta(hours=2) if zone == "+02:00" else pd.Timedelta(0)
    frame["timestamp"] = [(t + shift).strftime("%Y-%m-%dT%H:%M:%S") + zone for t in ts]
    mission = read(write_csv(tmp_path / "z.csv", frame, labels, names))
    np.testing.assert_array_equal(mission.timestamps, ts.to_numpy())
    np.testing.assert_array_equal(mission.values, values)


def test_a_timestamp_without_the_files_time_zone_is_named_as_such(tmp_path):
    frame, ts, _, _, labels, names, _ = make_frame(n=12)
    frame["timestamp"] = [t.strftime("%Y-%m-%d %H:%M:%S") + "Z" for t in ts]
    frame.loc[5, "timestamp"] = ts[5].strftime("%Y-%m-%d %H:%M:%S")
    with pytest.raises(ESAInputError, match="time zone") as err:
        read(write_csv(tmp_path / "z.csv", frame, labels, names))
    assert err.value.column == "timestamp" and err.value.value == frame.loc[5, "timestamp"]


def test_a_timestamp_beyond_the_nanosecond_range_is_named_as_such(tmp_path):
    """A year-3000 timestamp was refused as not in the format %Y-%m-%d %H:%M:%S (it is)."""
    frame, _, _, _, labels, names, _ = make_frame(n=12)
    frame.loc[11, "timestamp"] = "3000-01-01 00:00:00"
    with pytest.raises(ESAInputError, match=r"outside the dates a datetime64\[ns\]") as err:
        read(write_csv(tmp_path / "late.csv", frame, labels, names))
    assert err.value.column == "timestamp" and err.value.value == "3000-01-01 00:00:00"


def _jittered(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DatetimeIndex]:
    """``frame`` sampled irregularly: steps of 40, 20, 50 and 10 s instead of 30 s."""
    times = pd.to_datetime(frame["timestamp"]) + pd.to_timedelta([0, 10, 0, 20] * 10, unit="s")
    return frame.assign(timestamp=times.dt.strftime("%Y-%m-%d %H:%M:%S")), pd.DatetimeIndex(times)


def _off_grid_warnings(path, **kw) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read_esa_csv(path, **kw)
    return [str(w.message) for w in caught if "off the grid" in str(w.message)]


def test_irregular_rows_are_warned_about_at_every_read_naming_the_file(tmp_path):
    """Rows whose steps are not whole grid periods (irregular sampling) were read, and trained
    on, without a word: only predict.py warned. Every read says so now, a cached one too,
    naming the file, the count and the time before the first such step."""
    frame, _, _, _, labels, names, _ = make_frame(n=40)
    irregular, times = _jittered(frame)
    path = write_csv(tmp_path / "irregular.csv", irregular, labels, names)
    with pytest.warns(UserWarning, match="off the grid"):
        period = read(path).period  # the median step
    off = np.flatnonzero(np.diff(times) % period != pd.Timedelta(0))
    assert 0 < len(off) < len(times) - 1  # some steps are whole periods, most are not
    expected = (f"{path}: {len(off)} step(s) between rows are not a whole number of grid "
                f"periods ({period}): the rows are off the grid (first after "
                f"{times[off[0]].strftime('%Y-%m-%dT%H:%M:%S')}")
    for _ in range(2):  # the second read comes from the cache
        [message] = _off_grid_warnings(path, cache_dir=tmp_path / "cache")
        assert message.startswith(expected), message
        assert "taken as given" in message
    [entry] = [p for p in (tmp_path / "cache").iterdir() if p.is_dir()]  # one read, one reuse
    assert (entry / "manifest.json").is_file()

    # a folder: the file holding the rows off the grid is named
    folder = tmp_path / "folder"
    folder.mkdir()
    write_csv(folder / "m.train.csv", frame.iloc[:20], labels[:20], names)
    test = frame.iloc[20:].copy()  # one row 10 s late: two steps off the test file's grid
    test.loc[25, "timestamp"] = str(pd.Timestamp(test.loc[25, "timestamp"]) + pd.Timedelta("10s"))
    write_csv(folder / "m.test.csv", test, labels[20:], names)
    [message] = _off_grid_warnings(folder, use_cache=False)
    assert message.startswith(f"{folder / 'm.test.csv'}: 2 step(s) "), message
    assert "(first after 2000-01-01T00:12:00" in message, message  # row 24's time


def test_rows_on_the_grid_are_not_warned_about(tmp_path):
    """Regular rows, missing rows (gaps of whole periods) and a test file after a gap: no
    warning about the grid."""
    frame, _, _, _, labels, names, _ = make_frame(n=40)
    keep = np.r_[0:10, 13:40]
    path = write_csv(tmp_path / "gaps.csv", frame.iloc[keep], labels[keep], names)
    assert _off_grid_warnings(path, use_cache=False) == []
    write_csv(tmp_path / "m.train.csv", frame.iloc[:20], labels[:20], names)
    write_csv(tmp_path / "m.test.csv", frame.iloc[25:], labels[25:], names)
    assert _off_grid_warnings(tmp_path, use_cache=False) == []


def test_off_grid_of_a_zero_period_is_none_without_a_division_warning():
    """A period of 0 (a detector's schema records the period ``Detector.predict`` checks rows
    against) has no grid to be off; it divided by zero."""
    import warnings

    from esa_lightning.data.readers.common import off_grid

    stamps = np.array([0, 30, 75], dtype="datetime64[s]").astype("datetime64[ns]")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert off_grid(stamps, "0s") is None
        assert "1 step(s)" in off_grid(stamps, "30s")


def test_the_channels_without_a_reading_in_a_range_are_those_the_values_say():
    """``scan_nonfinite`` packs the rows holding a finite reading 8 to a byte, in chunks;
    ``ranges_without_reading`` must name exactly the channels whose cells in the validation or
    test rows are all NaN/inf, wherever the ranges start and end within a byte."""
    from esa_lightning.data.array_store import ArrayStore
    from esa_lightning.data.readers.nonfinite import ranges_without_reading, scan_nonfinite

    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(2, 80))
        values = rng.normal(size=(n, 4)).astype(np.float32)
        values[rng.random((n, 4)) < rng.random()] = rng.choice([np.nan, np.inf])
        finite = scan_nonfinite(values, ArrayStore(), 8 * int(rng.integers(1, 4))).finite
        val_start, test_start = sorted(rng.integers(0, n + 1, size=2))
        names = ["a", "b", "c", "d"]
        got = ranges_without_reading(finite, names, int(val_start), int(test_start), n)
        for key, (lo, hi) in {"val": (val_start, test_start), "test": (test_start, n)}.items():
            dead = [c for j, c in enumerate(names) if not np.isfinite(values[lo:hi, j]).any()]
            assert got.get(key, []) == (dead if lo < hi else []), (n, lo, hi, key)


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="POSIX pipes")
@pytest.mark.parametrize("part", ["train", "test"])
def test_a_data_file_that_is_a_pipe_or_device_is_refused_not_read_forever(tmp_path, part):
    """A ``*.train.csv`` (or ``*.test.csv``) that is a named pipe, or a link to /dev/zero, was
    opened and read: the read waited forever for a writer (/dev/zero: a header line that never
    ends, memory growing without bound). The Kaggle reader refuses them as missing files."""
    import os
    import subprocess
    import sys

    folder = tmp_path / "m"
    folder.mkdir()
    write_esa_csv(folder / "m.train.csv", 40)
    pipe = folder / f"{'z' if part == 'train' else 'm'}.{part}.csv"
    if part == "train":  # the pipe is the only training file
        (folder / "m.train.csv").rename(folder / "m.data")
    os.mkfifo(pipe)
    code = (
        "from esa_lightning.data.readers.esa_csv import read_esa_csv\n"
        "from esa_lightning.errors import ESAInputError\n"
        "try:\n"
        f"    read_esa_csv({str(folder)!r}, cache_dir=None)\n"
        "except ESAInputError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30, cwd=Path(__file__).parents[2])
    assert f"{pipe}: not a regular file" in done.stdout, done.stderr


def test_a_file_without_line_breaks_is_refused_without_reading_it_whole(tmp_path):
    """A CSV whose line ends were lost was read whole as one header line (a 50 MB file: seconds
    and hundreds of MB, then 'column 5700004 of the header has no name'; a header of 4 million
    names did not finish in minutes); now the header line is refused past 4 MiB."""
    path = tmp_path / "flat.csv"
    row = "2000-01-01 00:00:00,0.5,0.1,0,0,0,"
    path.write_text("timestamp,channel_1,channel_2,telecommand_1,is_anomaly_channel_1,"
                    "is_anomaly_channel_2," + row * ((5 << 20) // len(row) + 1))
    with pytest.raises(ESAInputError, match=r"flat\.csv: the header line is longer than "
                                            r"4,194,304 characters"):
        read(path)
    write_esa_csv(tmp_path / "ok.csv")  # a header and rows: read as before
    assert read(tmp_path / "ok.csv").n_rows == 30


@pytest.mark.parametrize("where", ["first row", "later row"])
def test_a_data_row_without_line_breaks_is_refused_in_bounded_memory(tmp_path, where):
    """A fine header, then 20 MB of rows whose line ends were lost: the first data row was
    parsed whole by the csv module to see whether its timestamp has a time zone (0.7 s and
    ~370 MB of Python strings for 50 MB), then pyarrow refused it as 'straddling object
    straddles two block boundaries (try to increase block size?)', an option no user has; the
    same message for such a row later in the file. Now one line naming the file and the bound,
    reading at most 4 MiB of the row."""
    import tracemalloc

    path = tmp_path / "lost.csv"
    row = "2000-01-01 00:00:00,0.5,0.1,0,0,0,"
    before = "2000-01-01 00:00:00,0.5,0.1,0,0,0\n" if where == "later row" else ""
    path.write_text("timestamp,channel_1,channel_2,telecommand_1,is_anomaly_channel_1,"
                    "is_anomaly_channel_2\n" + before + row * ((20 << 20) // len(row)))
    tracemalloc.start()
    try:
        with pytest.raises(ESAInputError) as info:
            read(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    assert "longer than 4,194,304 characters" in message and "straddl" not in message, message
    assert peak < 32 << 20, peak
