"""NASA telemanom reader: the real MSL release, a SMAP-like folder, and bad input."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from esa_lightning.data.readers.nasa import read_nasa
from esa_lightning.errors import ESAInputError
from tests.conftest import MSL


def listed_sequences(text: str) -> list[list[int]]:
    return ast.literal_eval(text)


@pytest.mark.skipif(not MSL.is_dir(), reason="the shared NASA MSL data is not present")
def test_reads_the_msl_release():
    listing = pd.read_csv(MSL / "labeled_anomalies.csv")
    m = read_nasa(MSL, val_fraction=0.1)
    assert m.is_multiseries and len(m.series) == 27
    assert set(m.series) == set(listing["chan_id"])
    assert m.timestamps is None and m.labels is None
    per_channel = m.events.groupby("Channel").size()
    for _, row in listing.iterrows():
        chan = row["chan_id"]
        s = m.series[chan]
        seqs = listed_sequences(row["anomaly_sequences"])
        test = np.load(MSL / "test" / f"{chan}.npy")
        train = np.load(MSL / "train" / f"{chan}.npy")
        assert len(s.values) - s.test_start == row["num_values"] == len(test)
        assert per_channel[chan] == len(seqs)
        assert s.values.shape == (len(train) + len(test), 1) and s.values.dtype == np.float32
        assert s.telecommands.shape == (len(s.values), 54)
        np.testing.assert_array_equal(s.values[s.test_start :, 0], test[:, 0].astype(np.float32))
        np.testing.assert_array_equal(m.values[chan], s.values[:, 0])
        expected = np.zeros(len(test), dtype=np.uint8)
        for a, b in seqs:
            expected[a : b + 1] = 1
        np.testing.assert_array_equal(s.labels[s.test_start :, 0], expected)
        assert not s.labels[: s.test_start].any()
        assert s.timestamps[s.test_start] == 0 and s.timestamps[0] == -len(train)
        assert s.val_start == len(train) - round(0.1 * len(train))
    assert set(m.channels["Subsystem"]) == {c.split("-")[0] for c in listing["chan_id"]}


@pytest.mark.skipif(not MSL.is_dir(), reason="the shared NASA MSL data is not present")
def test_msl_channel_selection():
    m = read_nasa(MSL, channels=["T-13", "C-1"], spacecraft="msl")
    assert list(m.series) == ["T-13", "C-1"]
    assert set(m.events["Channel"]) == {"T-13", "C-1"}


def make_smap(root: Path, seed: int = 0) -> dict:
    """A SMAP-like folder: two SMAP channels with files; the csv also lists MSL channels."""
    rng = np.random.default_rng(seed)
    (root / "train").mkdir(parents=True)
    (root / "test").mkdir()
    arrays = {}
    for chan, n_train, n_test in (("P-1", 120, 90), ("A-1", 80, 60)):
        train = np.c_[rng.normal(size=n_train), rng.integers(0, 2, (n_train, 24))]
        test = np.c_[rng.normal(size=n_test), rng.integers(0, 2, (n_test, 24))]
        np.save(root / "train" / f"{chan}.npy", train)
        np.save(root / "test" / f"{chan}.npy", test)
        arrays[chan] = (train, test)
    rows = [
        ("P-1", "SMAP", "[[10, 19], [70, 70]]", "[contextual, point]", 90),
        ("A-1", "SMAP", "[[0, 5]]", "[point]", 60),
        ("C-1", "MSL", "[[550, 750]]", "[point]", 2264),
        ("T-9", "MSL", "[[780, 810], [890, 970]]", "[point, point]", 1096),
    ]
    cols = ["chan_id", "spacecraft", "anomaly_sequences", "class", "num_values"]
    pd.DataFrame(rows, columns=cols).to_csv(root / "labeled_anomalies.csv", index=False)
    return arrays


def test_smap_like_folder(tmp_path):
    arrays = make_smap(tmp_path / "smap")
    m = read_nasa(tmp_path / "smap", val_fraction=0.25)
    assert list(m.series) == ["P-1", "A-1"]  # the MSL rows have no files here
    assert list(m.channels["Subsystem"]) == ["P", "A"]
    assert list(m.channels["Group"]) == ["P-1", "A-1"]
    assert m.channels["Target"].all() and not m.channels["Categorical"].any()
    p1 = m.series["P-1"]
    train, test = arrays["P-1"]
    np.testing.assert_array_equal(p1.values[:, 0], np.r_[train[:, 0], test[:, 0]].astype("f4"))
    np.testing.assert_array_equal(p1.telecommands, np.r_[train[:, 1:], test[:, 1:]])
    assert p1.telecommand_names == [f"cmd_{i}" for i in range(1, 25)]
    assert (p1.test_start, p1.val_start) == (120, 90)
    np.testing.assert_array_equal(p1.timestamps, np.arange(-120, 90))
    labeled = np.flatnonzero(p1.labels[:, 0])
    np.testing.assert_array_equal(p1.timestamps[labeled], np.r_[np.arange(10, 20), 70])
    ev = m.events
    assert list(ev["ID"]) == ["P-1_0", "P-1_1", "A-1_0"]
    assert list(ev["Class"]) == ["contextual", "point", "point"]
    assert list(ev["StartTime"]) == [10, 70, 0] and list(ev["EndTime"]) == [19, 70, 5]
    assert set(ev["Category"]) == {"Anomaly"}
    # the test split of each series holds exactly its events
    assert len(p1.test().events) == 2 and p1.test().labels.sum() == 11
    assert read_nasa(tmp_path / "smap", spacecraft="SMAP").channel_names == ["P-1", "A-1"]


def test_spacecraft_without_files_is_an_error(tmp_path):
    make_smap(tmp_path / "smap")
    with pytest.raises(ESAInputError, match=r"C-1\.npy"):
        read_nasa(tmp_path / "smap", spacecraft="MSL")
    with pytest.raises(ESAInputError, match="spacecraft"):
        read_nasa(tmp_path / "smap", spacecraft="Voyager")


def _edit_csv(root: Path, chan: str, column: str, value) -> None:
    listing = pd.read_csv(root / "labeled_anomalies.csv")
    listing[column] = listing[column].astype(object)
    listing.loc[listing["chan_id"] == chan, column] = value
    listing.to_csv(root / "labeled_anomalies.csv", index=False)


@pytest.mark.parametrize(
    ("column", "value", "match"),
    [
        ("num_values", 91, r"P-1.*test/P-1\.npy|test/P-1\.npy.*P-1"),
        ("num_values", "many", "num_values"),
        ("anomaly_sequences", "[[10, 19], [70]]", "P-1.*anomaly_sequences"),
        ("anomaly_sequences", "10-19", "P-1.*anomaly_sequences"),
        ("anomaly_sequences", "[[10, 19], [70, 90]]", "inside the test array"),
        ("anomaly_sequences", "[[19, 10], [70, 70]]", "inside the test array"),
        ("class", "[point]", "2 anomaly sequences"),
    ],
)
def test_bad_listing(tmp_path, column, value, match):
    root = tmp_path / "smap"
    make_smap(root)
    _edit_csv(root, "P-1", column, value)
    with pytest.raises(ESAInputError, match=match):
        read_nasa(root)


def test_missing_test_file_of_present_spacecraft(tmp_path):
    root = tmp_path / "smap"
    make_smap(root)
    (root / "test" / "A-1.npy").unlink()
    with pytest.raises(ESAInputError, match=re.escape(str(Path("test") / "A-1.npy"))):
        read_nasa(root)


def test_missing_folder_csv_and_columns(tmp_path):
    with pytest.raises(ESAInputError, match="no such"):
        read_nasa(tmp_path / "nope")
    root = tmp_path / "smap"
    make_smap(root)
    listing = pd.read_csv(root / "labeled_anomalies.csv")
    listing.drop(columns="num_values").to_csv(root / "labeled_anomalies.csv", index=False)
    with pytest.raises(ESAInputError, match="num_values"):
        read_nasa(root)
    (root / "labeled_anomalies.csv").unlink()
    with pytest.raises(ESAInputError, match="labeled_anomalies.csv"):
        read_nasa(root)


def test_mismatched_columns_and_bad_arrays(tmp_path):
    root = tmp_path / "smap"
    arrays = make_smap(root)
    train, _ = arrays["A-1"]
    np.save(root / "train" / "A-1.npy", train[:, :10])
    with pytest.raises(ESAInputError, match="A-1.*columns"):
        read_nasa(root)
    np.save(root / "train" / "A-1.npy", np.zeros(5))
    with pytest.raises(ESAInputError, match="2-D"):
        read_nasa(root)
    (root / "train" / "A-1.npy").write_text("junk")
    with pytest.raises(ESAInputError, match=r"A-1\.npy"):
        read_nasa(root)


def test_nan_repair(tmp_path):
    root = tmp_path / "smap"
    arrays = make_smap(root)
    train, test = arrays["A-1"]
    test[[3, 4], 0] = np.nan
    test[7, 0] = np.inf
    np.save(root / "test" / "A-1.npy", test)
    with pytest.warns(UserWarning, match="repaired 3 NaN/inf"):
        m = read_nasa(root)
    s = m.series["A-1"]
    col = s.values[s.test_start :, 0]
    assert col[3] == col[4] == np.float32(test[2, 0])
    assert col[7] == np.float32(test[6, 0])
    assert np.isfinite(m.values["A-1"]).all()
