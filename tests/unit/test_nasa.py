"""NASA telemanom reader: the real MSL release, a SMAP-like folder, and bad input."""

from __future__ import annotations

import ast
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from esa_lightning.data.readers.nasa import read_nasa
from esa_lightning.errors import ESAInputError
from tests.conftest import MSL
from tests.helpers import write_nasa


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


def test_lightweight_without_a_subset_names_the_option_the_reader_has(tmp_path):
    # read_nasa takes no lightweight list: the error points to data.channels=[...], not to
    # data.lightweight=[...], which data=nasa refuses as not an option of read_nasa
    make_smap(tmp_path / "smap")
    with pytest.raises(ESAInputError, match="no lightweight channel subset") as err:
        read_nasa(tmp_path / "smap", channels="lightweight")
    assert "data.channels=[" in str(err.value) and "data.lightweight" not in str(err.value)


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
        # nested beyond json's depth: RecursionError, not ValueError, had escaped
        ("anomaly_sequences", "[" * 100_000 + "]" * 100_000, "P-1.*anomaly_sequences"),
        ("anomaly_sequences", "[[10, 19], [70, 90]]", "inside the test array"),
        # reversed: the message said it did not lie inside the test array (0..89), where it did
        ("anomaly_sequences", "[[19, 10], [70, 70]]", r"\[19, 10\] ends before it starts"),
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


def test_a_reading_beyond_float32_warns_naming_the_files(tmp_path):
    # a float64 reading of 1e300 read as float32 also raised numpy's bare RuntimeWarning
    # "overflow encountered in cast", naming no file, beside the reader's own warnings
    root = tmp_path / "smap"
    arrays = make_smap(root)
    train, test = arrays["A-1"]
    test[5, 0] = 1e300
    np.save(root / "test" / "A-1.npy", test)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = read_nasa(root)
    messages = [str(w.message) for w in caught]
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)], messages
    assert messages and all("A-1.npy" in t for t in messages), messages
    s = m.series["A-1"]
    assert np.isfinite(s.values).all() and s.unrepresentable[s.test_start + 5]


def test_repeated_channel_is_merged(tmp_path):
    # the public csv lists SMAP P-2 twice, with overlapping sequences
    rows = [
        ("P-2", "SMAP", "[[5350, 6575]]", "[contextual]", 7000),
        ("A-1", "SMAP", "[[5, 9]]", "[point]", 60),
        ("P-2", "SMAP", "[[5300, 6420]]", "[contextual]", 7000),
        ("A-1", "SMAP", "[[20, 25], [40, 41]]", "[contextual, point]", 60),
        ("B-1", "SMAP", "[[30, 40]]", "[point]", 60),
        ("B-1", "SMAP", "[[10, 31]]", "[contextual]", 60),
    ]
    root = write_nasa(tmp_path / "smap", n_train=10, rows=rows)
    with pytest.warns(UserWarning) as record:
        m = read_nasa(root)
    messages = [str(w.message) for w in record]
    assert len(messages) == 3
    assert any(
        re.search(
            r"channel P-2 is listed 2 times.*\[\[5350, 6575\]\] \+ \[\[5300, 6420\]\] "
            r"into \[\[5300, 6575\]\]",
            t,
        )
        for t in messages
    )
    assert any("channel A-1 is listed 2 times" in t for t in messages)
    assert any(re.search(r"channel B-1 .*into \[\[10, 40\]\]", t) for t in messages)
    assert list(m.series) == ["P-2", "A-1", "B-1"]
    ev = m.events.set_index("ID")
    assert (ev.loc["P-2_0", "StartTime"], ev.loc["P-2_0", "EndTime"]) == (5300, 6575)
    assert ev.loc["P-2_0", "Class"] == "contextual" and "P-2_1" not in ev.index
    # separate sequences stay separate events, in row order
    a1 = m.events[m.events["Channel"] == "A-1"]
    assert list(zip(a1["StartTime"], a1["EndTime"], strict=True)) == [(5, 9), (20, 25), (40, 41)]
    assert list(a1["Class"]) == ["point", "contextual", "point"]
    b1 = m.events[m.events["Channel"] == "B-1"]
    assert list(zip(b1["StartTime"], b1["EndTime"], b1["Class"], strict=True)) == [
        (10, 40, "contextual/point")
    ]
    s = m.series["P-2"]
    np.testing.assert_array_equal(
        np.flatnonzero(s.labels[s.test_start :, 0]), np.arange(5300, 6576)
    )


def test_repeated_channel_rows_must_agree(tmp_path):
    rows = [
        ("P-2", "SMAP", "[[5, 9]]", "[contextual]", 60),
        ("P-2", "SMAP", "[[7, 12]]", "[contextual]", 61),
    ]
    root = write_nasa(tmp_path / "a", n_train=10, rows=rows)
    with pytest.raises(ESAInputError, match=r"P-2.*num_values.*60, 61"):
        read_nasa(root)
    rows[1] = ("P-2", "MSL", "[[7, 12]]", "[contextual]", 60)
    root = write_nasa(tmp_path / "b", n_train=10, rows=rows)
    with pytest.raises(ESAInputError, match=r"P-2.*spacecraft.*SMAP, MSL"):
        read_nasa(root)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # asked for SMAP: one row, nothing merged
        assert len(read_nasa(root, spacecraft="SMAP").events) == 1
    rows[1] = ("P-2", "SMAP", "[[12, 7]]", "[contextual]", 60)
    root = write_nasa(tmp_path / "c", n_train=10, rows=rows)
    with pytest.raises(ESAInputError, match=r"P-2.*anomaly_sequences"):
        read_nasa(root)


def test_repeated_channel_of_another_spacecraft_is_quiet(tmp_path):
    rows = [
        ("C-1", "MSL", "[[5, 9]]", "[point]", 60),
        ("P-2", "SMAP", "[[5350, 6575]]", "[contextual]", 8209),
        ("P-2", "SMAP", "[[5300, 6420]]", "[contextual]", 8000),
    ]
    root = write_nasa(tmp_path / "msl", n_train=10, rows=rows)
    for part in ("train", "test"):
        (root / part / "P-2.npy").unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list(read_nasa(root).series) == ["C-1"]


def test_published_listing_layout_is_read_as_is(tmp_path):
    # as in the MSL file: P-11's sequences out of order, F-8's ending on the last test row;
    # stray spaces and quoted class names read as plain values; no warning
    rows = [
        ("P-11", " MSL ", "[[40, 49], [12, 20]]", "[ 'point' , contextual]", 60),
        ("F-8", "MSL", "[[50, 59]]", "[contextual]", 60),
    ]
    root = write_nasa(tmp_path / "msl", n_train=10, rows=rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = read_nasa(root, spacecraft="msl")
    ev = m.events
    assert list(ev["ID"]) == ["P-11_0", "P-11_1", "F-8_0"]
    assert list(zip(ev["StartTime"], ev["EndTime"], strict=True)) == [(40, 49), (12, 20), (50, 59)]
    assert list(ev["Class"]) == ["point", "contextual", "contextual"]
    assert m.meta["spacecraft"] == ["MSL"] and m.series["P-11"].meta["spacecraft"] == "MSL"
    f8 = m.series["F-8"]
    assert f8.labels[-10:, 0].all() and f8.labels[:-10].sum() == 0


def test_overlapping_sequences_of_one_row_are_merged(tmp_path):
    """Two overlapping sequences on one row stayed two events on one channel: the converter's
    ESA layout then held 2 events where its CSV and Kaggle layouts (labels per row) held 1."""
    rows = [("C-1", "MSL", "[[5, 20], [15, 30], [40, 45]]", "[point, contextual, point]", 60)]
    root = write_nasa(tmp_path / "msl", n_train=10, rows=rows)
    with pytest.warns(UserWarning, match=r"C-1's anomaly sequences .* merged into "
                      r"\[\[5, 30\], \[40, 45\]\]"):
        m = read_nasa(root)
    ev = m.events
    assert list(zip(ev["StartTime"], ev["EndTime"], strict=True)) == [(5, 30), (40, 45)]
    assert list(ev["Class"]) == ["point/contextual", "point"]


def test_unquoted_sequences_are_refused(tmp_path):
    """Rows with more cells than the header (``[[5, 9]]`` unquoted) were read shifted: pandas
    took the first cells as an index, and the error blamed missing files."""
    root = write_nasa(tmp_path / "smap")
    (root / "labeled_anomalies.csv").write_text(
        "chan_id,spacecraft,anomaly_sequences,class,num_values\nA-1,SMAP,[[5, 9]],[point],30\n"
    )
    with pytest.raises(ESAInputError, match=r"labeled_anomalies\.csv.*more cells than the "
                       r"header's 5 columns .*must be quoted"):
        read_nasa(root)


def test_series_the_detector_never_trained_on_are_refused_by_name(tmp_path):
    """predict.py on a NASA folder with channels the detector never trained on passed the
    schema check, scored the trained ones, then stopped at the first other one with a hint
    (pass series=NAME) predict.py does not take."""
    from esa_lightning.artifact import check_schema, mission_schema

    rows = [(c, "SMAP", "[]", "[]", 30) for c in ("A-1", "B-1", "C-1")]
    root = write_nasa(tmp_path / "smap", rows=rows)
    schema = mission_schema(read_nasa(root, channels=["A-1"]))
    check_schema(schema, read_nasa(root, channels=["A-1"]))
    with pytest.raises(ESAInputError, match=r"channels: extra \['B-1', 'C-1'\] "
                       r".*data\.channels"):
        check_schema(schema, read_nasa(root))
    check_schema(mission_schema(read_nasa(root)), read_nasa(root, channels=["C-1"]))


def test_complex_arrays_are_refused(tmp_path):
    """A complex .npy was read with its imaginary part silently dropped (numpy's cast)."""
    root = write_nasa(tmp_path / "smap")
    np.save(root / "test" / "A-1.npy", np.ones((30, 2)) * (1 + 2j))
    with pytest.raises(ESAInputError, match=r"test/A-1\.npy.*A-1.*not a real-valued array "
                       r"\(complex128\)"):
        read_nasa(root)


def test_reversed_sequence_of_a_repeated_channel_is_named_as_reversed(tmp_path):
    rows = [("A-1", "SMAP", "[[5, 9]]", "[point]", 30),
            ("A-1", "SMAP", "[[25, 20]]", "[point]", 30)]
    root = write_nasa(tmp_path / "smap", rows=rows)
    with pytest.raises(ESAInputError, match=r"A-1: anomaly_sequences.*\[\[25, 20\]\].*"
                       r"\[25, 20\] ends before it starts"):
        read_nasa(root)


def test_training_file_without_a_finite_value_is_refused(tmp_path):
    """A training file of NaN only was 'repaired' from the first test value: the model trained
    on a constant taken from the test rows."""
    root = write_nasa(tmp_path / "smap")
    train = np.zeros((40, 2))
    train[:, 0] = np.nan
    np.save(root / "train" / "A-1.npy", train)
    with pytest.raises(ESAInputError, match=r"train/A-1\.npy.*A-1.*training file holds no "
                       r"finite value in column 0"):
        read_nasa(root)
    train[-1, 0] = 0.5  # one finite training reading: repaired from it, no test row read
    np.save(root / "train" / "A-1.npy", train)
    with pytest.warns(UserWarning, match="repaired 39 NaN/inf"):
        series = read_nasa(root).series["A-1"]
    assert (series.values[: series.test_start, 0] == np.float32(0.5)).all()


def test_channel_files_without_a_row_are_named_in_a_warning(tmp_path):
    """A channel whose row was forgotten was dropped without a word."""
    root = write_nasa(tmp_path / "smap")
    for part in ("train", "test"):
        np.save(root / part / "B-7.npy", np.zeros((40, 2)))
    with pytest.warns(UserWarning, match=r"1 channel\(s\) with files .* no row .*: B-7"):
        m = read_nasa(root, val_fraction=None)
    assert list(m.series) == ["A-1"]


def test_repeated_rows_whose_spacecraft_differs_in_case_only_are_merged(tmp_path):
    """spacecraft=smap matches SMAP, but rows of one channel saying SMAP and smap were refused
    as listing it on two spacecraft."""
    rows = [
        ("A-1", "SMAP", "[[5, 9]]", "[point]", 30),
        ("A-1", "smap", "[[20, 22]]", "[point]", 30),
    ]
    root = write_nasa(tmp_path / "smap", rows=rows)
    with pytest.warns(UserWarning, match="A-1"):
        m = read_nasa(root, val_fraction=None)
    assert len(m.events) == 2 and m.meta["spacecraft"] == ["SMAP"]


@pytest.mark.parametrize("cell", ["", "  "])
def test_a_row_without_a_chan_id_is_refused_naming_its_row(tmp_path, cell):
    """An empty chan_id cell was read as a channel named '' and refused as 'channel listed in
    labeled_anomalies.csv but file missing' for train/.npy, naming no row of the csv."""
    root = write_nasa(tmp_path / "smap")
    csv = root / "labeled_anomalies.csv"
    listing = pd.read_csv(csv, dtype=str)
    blank = listing.iloc[[0]].assign(chan_id=cell)
    pd.concat([listing, blank]).to_csv(csv, index=False)
    with pytest.raises(ESAInputError, match="row 2 after the header") as err:
        read_nasa(root)
    assert err.value.path == str(csv) and err.value.column == "chan_id"


def test_one_grid_of_channels_that_is_no_trained_series_is_refused_before_scoring(tmp_path):
    """predict.py with a NASA detector on single-grid data (data=esa of the converted MSL, or
    the default synthetic mission) scored it, then stopped with a hint predict.py does not
    take (pass series=NAME), or named its telecommands as the mismatch."""
    from dataclasses import replace

    from esa_lightning.artifact import check_schema, mission_schema
    from esa_lightning.data.mission import default_channel_table
    from tests.helpers import make_mission

    rows = [(c, "SMAP", "[]", "[]", 30) for c in ("A-1", "B-1", "C-1")]
    nasa = read_nasa(write_nasa(tmp_path / "smap", rows=rows))
    schema = mission_schema(nasa)
    check_schema(schema, nasa.series["B-1"])  # one trained series alone is scored
    grid = make_mission(n_channels=2)
    for data in (grid, replace(grid, channels=default_channel_table(["A-1", "B-1"]))):
        with pytest.raises(ESAInputError, match=r"independent series .*one at a time.*"
                           r"data=nasa.*data\.channels=\[NAME\]"):
            check_schema(schema, data, source="grid")
    one = make_mission(n_channels=1)
    one = replace(one, channels=default_channel_table(["C-1"]), telecommand_names=[],
                  telecommands=np.zeros((one.n_rows, 0), dtype=np.float32))
    check_schema(schema, one)  # one grid of one trained channel: that series


@pytest.mark.parametrize("name", ["../../nasa/test/A-1", "sub/A-1", "/abs/A-1"])
def test_a_chan_id_naming_a_path_is_refused_and_nothing_is_written(tmp_path, name):
    """A chan_id is the name of its files ``train/<chan_id>.npy``: one holding a path
    separator read files outside ``train/`` and ``test/``, and the converter, which writes
    ``channels/<chan_id>.zip``, wrote ``../../nasa/test/A-1.zip`` into the source folder it
    promises only to read."""
    from esa_lightning.data.convert import convert_nasa

    root = write_nasa(tmp_path / "nasa")
    csv = root / "labeled_anomalies.csv"
    listing = pd.read_csv(csv, dtype=str)
    pd.concat([listing, listing.iloc[[0]].assign(chan_id=name)]).to_csv(csv, index=False)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(ESAInputError, match="row 2 after the header") as err:
        read_nasa(root)
    assert err.value.path == str(csv) and err.value.column == "chan_id"
    assert err.value.value == name
    with pytest.raises(ESAInputError, match="path separator"):
        convert_nasa(root, tmp_path / "out", layout="esa")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
