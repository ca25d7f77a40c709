"""Kaggle challenge reader: round trip, projection, broadcast labels, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from esa_lightning.data.mission import Mission, default_channel_table, empty_events
from esa_lightning.data.readers.kaggle import read_kaggle
from esa_lightning.errors import ESAInputError
from tests.helpers import json_parse_sizes


def make_parts(n_train: int = 60, n_test: int = 15, n_channels: int = 4, seed: int = 0):
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    values = rng.normal(size=(n, n_channels)).astype(np.float32)
    commands = (rng.random((n, 2)) < 0.1).astype(np.uint8)
    row = np.zeros(n, dtype=np.uint8)
    row[10:14] = 1
    row[30] = 1
    row[n_train + 3 : n_train + 6] = 1
    frame = pd.DataFrame({"id": np.arange(n, dtype=np.int64)})
    names = [f"channel_{i + 1}" for i in range(n_channels)]
    for j, c in enumerate(names):
        frame[c] = values[:, j]
    frame["telecommand_1"] = commands[:, 0]
    frame["telecommand_2"] = commands[:, 1]
    frame["is_anomaly"] = row
    return frame, values, commands, row, names


def write_layout(root: Path, frame: pd.DataFrame, n_train: int, test_labels: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    frame.iloc[:n_train].to_parquet(root / "train.parquet", index=False)
    test = frame.iloc[n_train:]
    if not test_labels:
        test = test.drop(columns="is_anomaly")
    test.to_parquet(root / "test.parquet", index=False)
    return root


def read(root, **kw):
    kw.setdefault("use_cache", False)
    return read_kaggle(root, **kw)


def test_round_trip_folder(tmp_path):
    frame, values, commands, row, names = make_parts()
    root = write_layout(tmp_path / "kg", frame, 60)
    pd.DataFrame({"target_channels": ["channel_2", "channel_4"]}).to_csv(
        root / "target_channels.csv", index=False
    )
    m = read(root, val_fraction=0.25)
    np.testing.assert_array_equal(m.values, values)
    np.testing.assert_array_equal(m.telecommands, commands.astype(np.float32))
    np.testing.assert_array_equal(m.timestamps, np.arange(75))
    assert m.timestamps.dtype == np.int64
    assert (m.val_start, m.test_start) == (45, 60)
    assert m.channel_names == names
    assert m.telecommand_names == ["telecommand_1", "telecommand_2"]
    assert m.target_channels == ["channel_2", "channel_4"]
    # the row label sits on every channel; the test part has none
    expected = row.copy()
    expected[60:] = 0
    assert m.labels.shape == (75, 4)
    for j in range(4):
        np.testing.assert_array_equal(m.labels[:, j], expected)
    assert m.labels.strides[1] == 0 and not m.labels.flags.writeable
    np.testing.assert_array_equal(m.is_anomaly, expected)
    assert m.meta["test_labeled"] is False and m.meta["train_labeled"] is True
    ev = m.events
    assert list(zip(ev["StartTime"], ev["EndTime"], strict=True)) == [(10, 13), (30, 30)]
    assert set(ev["Category"]) == {"Anomaly"} and ev["Channel"].isna().all()
    assert ev["ID"].is_unique


def test_labeled_test_part(tmp_path):
    frame, _, _, row, _ = make_parts()
    root = write_layout(tmp_path / "kg", frame, 60, test_labels=True)
    m = read(root)
    np.testing.assert_array_equal(m.labels[:, 0], row)
    assert m.meta["test_labeled"] is True
    assert len(m.test().events) == 1


def test_reads_only_requested_columns(tmp_path, monkeypatch):
    frame, values, _, _, _ = make_parts(n_channels=8)
    root = write_layout(tmp_path / "kg", frame, 60)
    seen = []
    real = pq.ParquetFile.iter_batches

    def spy(self, *args, **kwargs):
        seen.append(list(kwargs["columns"]))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", spy)
    monkeypatch.setattr(pq, "read_table", None)  # a full-table read would fail
    m = read(root, channels=["channel_7", "channel_3"])
    np.testing.assert_array_equal(m.values, values[:, [6, 2]])
    common = {"id", "channel_7", "channel_3", "telecommand_1", "telecommand_2"}
    assert [set(c) for c in seen] == [common | {"is_anomaly"}, common]
    assert pq.ParquetFile(root / "train.parquet").metadata.num_columns == 12


def test_single_files_and_include_test(tmp_path):
    frame, values, _, row, _ = make_parts()
    root = write_layout(tmp_path / "kg", frame, 60)
    train_only = read(root / "train.parquet")
    assert train_only.test_start == 60 == len(train_only.values)
    np.testing.assert_array_equal(train_only.labels[:, 0], row[:60])
    test_only = read(root / "test.parquet")
    assert test_only.test_start == 0 and len(test_only.values) == 15
    np.testing.assert_array_equal(test_only.values, values[60:])
    assert test_only.meta["test_labeled"] is False
    no_test = read(root, include_test=False)
    assert len(no_test.values) == 60 and no_test.test_start == 60


def test_cache_round_trip(tmp_path):
    frame, values, _, row, _ = make_parts()
    root = write_layout(tmp_path / "kg", frame, 60, test_labels=True)
    first = read_kaggle(root, cache_dir=tmp_path / "cache")
    second = read_kaggle(root, cache_dir=tmp_path / "cache")
    assert isinstance(second.values, np.memmap)
    np.testing.assert_array_equal(second.values, values)
    np.testing.assert_array_equal(second.labels[:, 3], row)
    assert second.meta["test_labeled"] is True
    assert second.events.equals(first.events)


def test_nan_repair(tmp_path):
    frame, values, _, _, _ = make_parts()
    frame.loc[[5, 6], "channel_2"] = np.nan
    frame.loc[61, "channel_3"] = np.inf
    root = write_layout(tmp_path / "kg", frame, 60)
    with pytest.warns(UserWarning, match="repaired 3 NaN/inf"):
        m = read(root)
    assert m.values[5, 1] == m.values[6, 1] == values[4, 1]
    assert m.values[61, 2] == values[60, 2]


def test_reads_batch_by_batch(tmp_path, monkeypatch):
    """Files longer than one batch: the requested columns, a NaN gap across a batch boundary
    repaired from the previous batch, ids checked across batches, an unknown channel named."""
    import esa_lightning.data.readers.kaggle as kaggle

    monkeypatch.setattr(kaggle, "BATCH_ROWS", 21)
    frame, values, _, _, _ = make_parts()
    frame.loc[[20, 21], "channel_1"] = np.nan  # crosses the batch boundary at 21
    root = write_layout(tmp_path / "kg", frame, 60)
    with pytest.warns(UserWarning, match="repaired 2 NaN/inf"):
        m = read(root, channels=["channel_3", "channel_1"])
    np.testing.assert_array_equal(m.timestamps, np.arange(75))
    np.testing.assert_array_equal(m.values[:, 0], values[:, 2])
    assert m.values[20, 1] == m.values[21, 1] == values[19, 0]
    with pytest.raises(ESAInputError, match="channel_9"):
        read(root, channels=["channel_9"])
    frame.loc[21, "id"] = 20  # a repeated id, the first of the second batch
    write_layout(root, frame, 60)
    with pytest.raises(ESAInputError, match="train.parquet.*increasing"):
        read(root)


# ------------------------------------------------------------------------------ bad input
def test_missing_inputs(tmp_path):
    with pytest.raises(ESAInputError, match="no such"):
        read(tmp_path / "nope")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(ESAInputError, match="no train.parquet"):
        read(tmp_path / "empty_dir")
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    with pytest.raises(ESAInputError, match="bad.parquet"):
        read(bad)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda f: f.drop(columns="id"), "'id'"),
        (lambda f: f.assign(id=f["id"].to_numpy()[::-1].copy()), "increasing"),
        (lambda f: f.assign(id=np.r_[0, np.arange(f.shape[0] - 1)]), "increasing"),
        (lambda f: f.assign(is_anomaly=np.r_[f["is_anomaly"].to_numpy()[:-1], 7]), "0 or 1"),
        (lambda f: f.assign(is_anomaly=np.where(f["id"] == 7, 0.5, 0.0)), "value 0.5.*0 or 1"),
        (lambda f: f.assign(channel_2="x"), "channel_2.*not numeric"),
        (lambda f: f.iloc[:0], "empty"),
    ],
)
def test_bad_train_file(tmp_path, edit, match):
    frame, *_ = make_parts()
    root = write_layout(tmp_path / "kg", frame, 60)
    edit(frame.iloc[:60].copy()).to_parquet(root / "train.parquet", index=False)
    with pytest.raises(ESAInputError, match=match) as info:
        read(root)
    assert "train.parquet" in str(info.value)


def test_test_ids_must_follow_train_ids(tmp_path):
    frame, *_ = make_parts()
    root = write_layout(tmp_path / "kg", frame, 60)
    test = pd.read_parquet(root / "test.parquet")
    test["id"] = np.arange(50, 50 + len(test))
    test.to_parquet(root / "test.parquet", index=False)
    with pytest.raises(ESAInputError, match="test.parquet.*follow the train ids"):
        read(root)


def test_test_part_missing_a_channel(tmp_path):
    frame, *_ = make_parts()
    root = write_layout(tmp_path / "kg", frame, 60)
    test = pd.read_parquet(root / "test.parquet").drop(columns="channel_3")
    test.to_parquet(root / "test.parquet", index=False)
    with pytest.raises(ESAInputError, match="test.parquet.*channel_3"):
        read(root)
    assert read(root, channels=["channel_1"]).values.shape == (75, 1)


def test_unknown_target_channel(tmp_path):
    frame, *_ = make_parts()
    root = write_layout(tmp_path / "kg", frame, 60)
    (root / "target_channels.csv").write_text("target_channels\nchannel_1\nchannel_77\n")
    with pytest.raises(ESAInputError, match="channel_77"):
        read(root)
    # without a header line, a misspelt first channel is named, not dropped as a header
    (root / "target_channels.csv").write_text("chanel_2\nchannel_1\n")
    with pytest.raises(ESAInputError, match=r"did you mean 'channel_2'.*value 'chanel_2'|"
                                            r"value 'chanel_2'.*did you mean 'channel_2'"):
        read(root)
    (root / "target_channels.csv").write_text("channel\nchannel_1\n")  # a header line
    assert read(root).target_channels == ["channel_1"]


@pytest.mark.parametrize("name", ["NA", "null", "nan"])
def test_a_target_channel_named_like_a_missing_value_is_kept(tmp_path, name):
    frame, *_ = make_parts()
    root = write_layout(tmp_path / "kg", frame.rename(columns={"channel_2": name}), 60)
    (root / "target_channels.csv").write_text(f"target_channels\n{name}\nchannel_3\n")
    assert read(root).target_channels == [name, "channel_3"]
    (root / "target_channels.csv").write_text(f"{name}\n")  # no header line
    assert read(root, channels="target").channel_names == [name]


def test_round_trip_through_synthetic_writer(tmp_path):
    writers = pytest.importorskip("esa_lightning.data.readers.layout_writers")
    rng = np.random.default_rng(2)
    n, names = 300, ["channel_1", "channel_2", "channel_3"]
    labels = np.zeros((n, 3), dtype=np.uint8)
    labels[40:50, 1] = 1
    labels[45:52, 2] = 2  # a rare event also counts as is_anomaly = 1
    labels[100:103, 0] = 3  # a gap does not
    table = default_channel_table(names)
    table["Target"] = [True, False, True]
    source = Mission(
        name="tiny",
        values=rng.normal(size=(n, 3)).astype(np.float32),
        timestamps=pd.date_range("2000-01-01", periods=n, freq="30s").values,
        channels=table,
        labels=labels,
        events=empty_events(),
        telecommands=(rng.random((n, 2)) < 0.1).astype(np.float32),
        telecommand_names=["telecommand_1", "telecommand_2"],
        test_start=200,
    )
    root = writers.write_kaggle_layout(source, tmp_path / "kg")
    m = read(root)
    np.testing.assert_array_equal(m.values, source.values)
    np.testing.assert_array_equal(m.telecommands, source.telecommands)
    np.testing.assert_array_equal(m.timestamps, np.arange(n))
    assert m.test_start == 200 and m.meta["test_labeled"] is False
    np.testing.assert_array_equal(m.is_anomaly[:200], source.is_anomaly[:200])
    assert m.target_channels == ["channel_1", "channel_3"]
    assert list(zip(m.events["StartTime"], m.events["EndTime"], strict=True)) == [(40, 51)]


def test_boolean_row_label(tmp_path):
    """A bool ``is_anomaly`` column (pandas' own dtype for a flag) reads as 0/1, as the schema
    check promises, rather than failing as an unreadable parquet file."""
    frame, _, _, row, _ = make_parts()
    root = write_layout(tmp_path / "kg", frame.assign(is_anomaly=row.astype(bool)), 60, True)
    m = read(root)
    np.testing.assert_array_equal(m.is_anomaly, row)
    assert m.meta["train_labeled"] and m.meta["test_labeled"]


def test_ids_beyond_int64_are_refused(tmp_path):
    """uint64 ids above int64's range would wrap to negative ids (and a submission with them):
    an error names the file, the column and the id instead."""
    frame, *_ = make_parts()
    big = np.uint64(2**63) + frame["id"].to_numpy().astype(np.uint64)
    root = write_layout(tmp_path / "kg", frame.assign(id=big), 60)
    with pytest.raises(ESAInputError, match=r"train.parquet.*'id'.*9223372036854775808"):
        read(root)
    small = frame.assign(id=frame["id"].astype(np.uint64))  # uint64 within range: fine
    m = read(write_layout(tmp_path / "ok", small, 60))
    np.testing.assert_array_equal(m.timestamps, np.arange(75))


@pytest.mark.parametrize("code", [2, 3, 4, -1])
def test_row_label_is_zero_or_one(tmp_path, code):
    """Kaggle's is_anomaly is binary: a 3 used to read as an ESA 'communication gap' code, which
    the metrics do not count as an anomaly, so those rows silently scored as nominal."""
    frame, *_ = make_parts()
    row = frame["is_anomaly"].to_numpy().astype(np.int16)
    row[row == 1] = code
    root = write_layout(tmp_path / "kg", frame.assign(is_anomaly=row), 60, test_labels=True)
    with pytest.raises(ESAInputError, match=rf"train.parquet.*'is_anomaly'.*value {code}"):
        read(root)


def test_pandas_index_column_is_not_a_channel(tmp_path):
    """``DataFrame.to_parquet`` keeps a non-range index (rows dropped) as ``__index_level_0__``:
    it was read as one more telemetry channel (the row number), trained on, and made the
    challenge's own test file fail the detector's schema."""
    frame, values, _, row, names = make_parts()
    root = tmp_path / "kg"
    root.mkdir()
    kept = frame.drop(index=[5])  # an Index, not a RangeIndex, any more
    kept.iloc[:59].to_parquet(root / "train.parquet")  # pandas' default: index=True
    kept.iloc[59:].drop(columns="is_anomaly").to_parquet(root / "test.parquet")
    assert "__index_level_0__" in pq.ParquetFile(root / "train.parquet").schema_arrow.names
    m = read(root)
    assert list(m.channels["Channel"]) == names
    np.testing.assert_array_equal(m.values, np.delete(values, 5, axis=0))
    assert list(read(root / "test.parquet").channels["Channel"]) == names


def test_cache_of_an_older_reader_is_not_reused(tmp_path, monkeypatch):
    """Arrays cached by a reader that still read is_anomaly=3 (as an ESA gap code) must not be
    served once the reader refuses it: the cache key carries the reader's version."""
    import esa_lightning.data.readers.kaggle as kaggle

    frame, _, _, row, _ = make_parts()
    root = write_layout(tmp_path / "kg", frame.assign(is_anomaly=row * 3), 60)
    with monkeypatch.context() as old:  # the previous reader: version 2, codes 0..4 accepted
        old.setattr(kaggle, "CACHE_VERSION", 2)
        old.setattr(kaggle, "_row_labels", lambda col, path: col.to_numpy().astype(np.uint8))
        assert read_kaggle(root, cache_dir=tmp_path / "cache").row_labels.max() == 3
    with pytest.raises(ESAInputError, match="is_anomaly.*value 3"):
        read_kaggle(root, cache_dir=tmp_path / "cache")


def test_labeled_test_file_is_the_test_range(tmp_path):
    """The converter writes is_anomaly into test.parquet too. Read on its own (predict.py
    data.root=.../test.parquet), it was taken for training data: an empty test range, and
    predict.py refused with 'no rows to score'. A file named test.parquet is the test part."""
    frame, values, _, row, _ = make_parts()
    root = write_layout(tmp_path / "kg", frame, 60, test_labels=True)
    m = read(root / "test.parquet")
    assert m.test_start == 0 and len(m.test().values) == 15
    np.testing.assert_array_equal(m.test().is_anomaly, row[60:])
    assert m.meta["test_labeled"] is True and len(m.test().events) == 1
    renamed = root / "labeled.parquet"  # any other name: labels make it training data
    (root / "test.parquet").rename(renamed)
    assert read(renamed).test_start == 15


def test_cached_part_follows_the_files_role(tmp_path, monkeypatch):
    """The cache key names each file's part: arrays cached while a labeled test.parquet was read
    as training data are not served once it is read as the test part."""
    import esa_lightning.data.readers.kaggle as kaggle

    frame, *_ = make_parts()
    test_file = write_layout(tmp_path / "kg", frame, 60, test_labels=True) / "test.parquet"
    with monkeypatch.context() as old:  # the previous rule: labeled means training data
        old.setattr(kaggle, "_locate", lambda root, include_test: (root, None, None))
        assert read_kaggle(test_file, cache_dir=tmp_path / "cache").test_start == 15
    assert read_kaggle(test_file, cache_dir=tmp_path / "cache").test_start == 0


def test_partitioned_dataset_folder_is_refused(tmp_path):
    """A test.parquet written as a partitioned dataset (a folder of parts) was skipped as absent:
    training ran without a test range and predict.py found 'no rows to score'."""
    frame, *_ = make_parts()
    root = write_layout(tmp_path / "kg", frame, 60)
    (root / "test.parquet").unlink()
    pq.write_to_dataset(pa.Table.from_pandas(frame.iloc[60:], preserve_index=False),
                        root / "test.parquet")
    with pytest.raises(ESAInputError, match="test.parquet.*a folder, not a parquet file"):
        read(root)


def test_id_as_pandas_range_index_is_named(tmp_path):
    """``df.set_index("id").to_parquet()`` with consecutive ids stores no id column, only pandas
    metadata: the error says so and how to write the file, not just that id is missing."""
    frame, *_ = make_parts()
    root = write_layout(tmp_path / "kg", frame, 60)
    frame.iloc[:60].set_index("id").to_parquet(root / "train.parquet")
    with pytest.raises(ESAInputError, match="train.parquet.*'id'.*pandas index.*reset_index"):
        read(root)



@pytest.mark.parametrize("write", [
    lambda part, path: part.drop(columns="id").to_parquet(path, index=False),
    lambda part, path: part.set_index("id").to_parquet(path),
], ids=["no_id", "id_as_index"])
def test_a_test_file_without_an_id_column_is_named(tmp_path, write):
    """Only the first file's id column was checked: a test.parquet without one (or with id as
    its pandas index) ended in ``KeyError: 'id'``, a traceback from predict.py."""
    frame, *_ = make_parts()
    root = write_layout(tmp_path / "kg", frame, 60)
    write(frame.iloc[60:], root / "test.parquet")
    with pytest.raises(ESAInputError, match=r"test\.parquet: column 'id': "):
        read(root)

def test_whole_number_float_ids_are_read_as_integer_ids(tmp_path):
    """An ``id`` column stored as floats (61.0: pandas writes an integer column a NaN touched
    as float64) holds integer ids: read as int64. Before, the reader refused it ('ids must be
    integers, not double'). An id with a fraction, inf or beyond 2**62 is refused naming the
    file, the column, its row in the file and the value."""
    frame, *_ = make_parts()
    floats = frame.astype({"id": np.float64})
    m = read(write_layout(tmp_path / "kg", floats, 60))
    assert m.timestamps.dtype == np.int64
    np.testing.assert_array_equal(m.timestamps, np.arange(75))
    for value, needle in ((66.5, "value 66.5"), (np.inf, "value inf"), (2.0**70, "value")):
        spoiled = floats.copy()
        spoiled.loc[66, "id"] = value
        root = write_layout(tmp_path / f"bad_{value}", spoiled, 60)
        with pytest.raises(ESAInputError) as info:
            read(root)
        message = str(info.value)
        for part in ("test.parquet", "column 'id'", needle, "at row 6:", "whole number"):
            assert part in message, message


def test_column_names_follow_the_esa_csv_rule(tmp_path):
    """A column named " kanäl " became a channel with the spaces, and one named "" a channel
    without a name, where esa_csv trims names and refuses empty ones: the same rule now holds
    (readers.common.clean_names)."""
    frame, values, _, _, names = make_parts()
    padded = frame.rename(columns={"channel_2": " kanäl ", "id": " id "})
    root = write_layout(tmp_path / "kg", padded, 60)
    m = read(root)
    assert list(m.channels["Channel"]) == ["channel_1", "kanäl", "channel_3", "channel_4"]
    np.testing.assert_array_equal(m.values, values)
    np.testing.assert_array_equal(m.timestamps, np.arange(75))
    picked = read(root / "test.parquet", channels=["kanäl"])
    assert picked.channel_names == ["kanäl"]
    np.testing.assert_array_equal(picked.values[:, 0], values[60:, 1])
    empty = write_layout(tmp_path / "empty", frame.rename(columns={"channel_3": ""}), 60)
    with pytest.raises(ESAInputError, match=r"\.parquet: column 4 .*has no name"):
        read(empty)
    twice = write_layout(tmp_path / "twice", frame.rename(columns={"channel_3": "channel_2 "}), 60)
    with pytest.raises(ESAInputError, match=r"'channel_2'.*duplicate column names"):
        read(twice)


def test_a_named_pandas_index_is_refused_naming_it(tmp_path):
    """``df.set_index("channel_2").to_parquet()`` stores channel_2 as the file's pandas index:
    it was dropped without a word (the unnamed ``__index_level_0__`` is row numbers, this one is
    data). It is refused naming the file and the column."""
    frame, *_ = make_parts()
    root = tmp_path / "kg"
    root.mkdir()
    path = root / "train.parquet"
    frame.iloc[:60].set_index("channel_2").to_parquet(path)
    with pytest.raises(ESAInputError, match="pandas index.*reset_index") as err:
        read(root)
    assert err.value.path == str(path) and err.value.column == "channel_2"


def test_a_channel_without_a_finite_value_is_named_with_the_files_full_path(tmp_path):
    frame, *_ = make_parts()
    root = write_layout(tmp_path / "kg", frame.assign(channel_3=np.nan), 60)
    with pytest.raises(ESAInputError, match="no finite value") as err:
        read(root)
    assert err.value.column == "channel_3"
    assert err.value.path == f"{root / 'train.parquet'}, {root / 'test.parquet'}"


def test_oversized_pandas_metadata_is_refused_before_it_is_parsed(tmp_path, monkeypatch):
    """A parquet file's ``pandas`` schema metadata (JSON; the reader reads its index columns) over
    16 MiB is refused naming the file, before it is parsed: pyarrow lets up to 100 MB through,
    and 50 MiB of ``[{}, {}, ...]`` took 6 s and 973 MB to parse. Padded here with spaces, so
    that it was read before."""

    frame, *_ = make_parts()
    root = tmp_path / "kg"
    write_layout(root, frame, 60)
    path = root / "test.parquet"
    table = pq.read_table(path)
    meta = dict(table.schema.metadata)
    meta[b"pandas"] = meta[b"pandas"] + b" " * (16 * 2**20)
    pq.write_table(table.replace_schema_metadata(meta), path)
    parsed = json_parse_sizes(monkeypatch)
    with pytest.raises(ESAInputError, match="16 MiB") as refused:
        read(path)
    assert str(path) in str(refused.value) and "pandas" in str(refused.value)
    assert not [n for n in parsed if n > 16 * 2**20]


@pytest.mark.parametrize("part", ["train.parquet", "test.parquet"])
def test_a_per_channel_label_column_is_refused_not_read_as_an_input(tmp_path, part):
    """``is_anomaly_channel_1`` (an esa_csv label written into a Kaggle file) was read as a
    channel: the model trained on the labels as an input."""
    frame, *_ = make_parts()
    frame["is_anomaly_channel_1"] = frame["is_anomaly"]
    root = write_layout(tmp_path / "kg", frame, 60)
    if part == "train.parquet":  # only one of the two parts holds it
        frame.iloc[60:].drop(columns=["is_anomaly", "is_anomaly_channel_1"]).to_parquet(
            root / "test.parquet", index=False)
    else:
        frame.iloc[:60].drop(columns="is_anomaly_channel_1").to_parquet(
            root / "train.parquet", index=False)
    with pytest.raises(ESAInputError, match="per-channel label") as info:
        read(root)
    assert part in str(info.value) and info.value.column == "is_anomaly_channel_1"
    assert "esa_csv" in str(info.value) and "drop" in str(info.value)


@pytest.mark.parametrize("lacking", [("train", "test"), ("test",), ("train",)])
def test_channels_asked_for_that_a_file_lacks_name_that_file(tmp_path, lacking):
    """Channels asked for by name (predict.py asks for the detector's) that the files lack:
    the refusal named train.parquet wherever train.parquet lacked them, also where test.parquet
    (the rows predict.py's range=test and the inference container score) lacked them too, and a
    test.parquet lacking them alone got "missing column(s)", not the missing-channel refusal
    predict.py words for the detector. It names the test file where it lacks them, and any other
    file lacking them too."""
    from esa_lightning.artifact.format import missing_trained_channels
    from esa_lightning.data.selection import UnknownChannels

    frame, *_ = make_parts()
    root = tmp_path / "kg"
    root.mkdir()
    for part, rows in (("train", frame.iloc[:60]), ("test", frame.iloc[60:])):
        rows = rows.drop(columns=["channel_3"] if part in lacking else [])
        rows.drop(columns=[] if part == "train" else ["is_anomaly"]).to_parquet(
            root / f"{part}.parquet", index=False
        )
    with pytest.raises(UnknownChannels) as err:
        read(root, channels=["channel_1", "channel_3"])
    named = root / f"{lacking[-1]}.parquet"
    assert err.value.path == str(named) and err.value.names == ["channel_3"]
    text = str(missing_trained_channels(err.value))
    assert text.startswith(f"{named}: missing channel(s) ['channel_3'] the detector was trained on")
    assert ("train.parquet" in text.split(": ", 1)[1]) == (len(lacking) == 2)
    if "test" in lacking:  # the test file read alone is named as well
        with pytest.raises(UnknownChannels) as err:
            read(root / "test.parquet", channels=["channel_3"])
        assert err.value.path == str(root / "test.parquet")
