"""The raw ESA-ADB reader on tiny hand-made missions, and the safe pickle loader."""

from __future__ import annotations

import os
import pickle
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from esa_lightning.data.readers.esa_adb import read_esa_mission
from esa_lightning.data.safe_pickle import read_pickled_frame
from esa_lightning.errors import ESAInputError

T0 = pd.Timestamp("2000-01-01")


def _series(path: Path, name: str, times: list, values: list) -> None:
    idx = pd.DatetimeIndex([T0 + pd.Timedelta(t) for t in times])
    pd.DataFrame({name: values}, index=idx).to_pickle(path)


def make_mission(root: Path) -> Path:
    """Two channels, two telecommands, three labels; grid 00:00..00:02:00 at 30 s (5 rows)."""
    (root / "channels").mkdir(parents=True)
    (root / "telecommands").mkdir()
    _series(root / "channels/channel_1.zip", "channel_1", ["10s", "40s", "90s"], [1.0, 2.0, 3.0])
    _series(root / "channels/channel_2.zip", "channel_2", ["5s", "120s"], [10.0, 20.0])
    _series(
        root / "telecommands/telecommand_1.zip", "telecommand_1", ["30s", "31s", "300s"], [1, 1, 1]
    )
    _series(root / "telecommands/telecommand_2.zip", "telecommand_2", ["60s"], [1])
    pd.DataFrame(
        {
            "Channel": ["channel_1", "channel_2"],
            "Subsystem": ["subsystem_1", "subsystem_1"],
            "Physical Unit": ["V", "count"],
            "Group": ["group_1", "group_1"],
            "Target": ["YES", "NO"],
            "Categorical": ["NO", "NO"],
        }
    ).to_csv(root / "channels.csv", index=False)
    pd.DataFrame({"Telecommand": ["telecommand_1", "telecommand_2"], "Priority": [3, 1]}).to_csv(
        root / "telecommands.csv", index=False
    )
    pd.DataFrame(
        {
            "ID": ["id_1", "id_2", "id_3"],
            "Channel": ["channel_1", "channel_1", "channel_2"],
            # id_1 lasts 4 s (shorter than the grid); id_2 overlaps it; id_3 carries a timezone
            "StartTime": [
                "2000-01-01 00:00:41",
                "2000-01-01 00:00:50",
                "2000-01-01T01:01:30+01:00",
            ],
            "EndTime": ["2000-01-01 00:00:45", "2000-01-01 00:01:30", "2000-01-01T01:01:30+01:00"],
        }
    ).to_csv(root / "labels.csv", index=False)
    pd.DataFrame(
        {
            "ID": ["id_1", "id_2", "id_3"],
            "Class": ["a", "b", "c"],
            "Subclass": ["x", "y", "z"],
            "Category": ["Anomaly", "Rare Event", "Communication Gap"],
            "Dimensionality": ["Univariate"] * 3,
            "Locality": ["Local"] * 3,
            "Length": ["Subsequence"] * 3,
        }
    ).to_csv(root / "anomaly_types.csv", index=False)
    return root


@pytest.fixture
def mission_dir(tmp_path: Path) -> Path:
    return make_mission(tmp_path / "M")


def read(root: Path, **kw):
    kw.setdefault("use_cache", False)
    return read_esa_mission(root, **kw)


def test_zero_order_hold_values(mission_dir):
    m = read(mission_dir)
    grid = pd.date_range(T0, periods=5, freq="30s").to_numpy()
    np.testing.assert_array_equal(m.timestamps, grid)
    assert m.values.dtype == np.float32
    np.testing.assert_array_equal(m.values[:, 0], [1, 1, 2, 3, 3])  # 00:00 back-filled
    np.testing.assert_array_equal(m.values[:, 1], [10, 10, 10, 10, 20])
    assert m.channels["Target"].tolist() == [True, False]
    assert m.channels["Categorical"].dtype == bool


def test_the_rows_each_channel_sent_a_sample_on(mission_dir):
    """A sample counts on the grid row its hold starts on (the first at or after it); rows the
    grid fills from an earlier sample, or back-fills before the first, are no samples."""
    m = read(mission_dir)
    assert m.sent.shape == (5, 1)
    assert m.sent_rows(0).tolist() == [0, 1, 1, 1, 0]  # samples at 10 s, 40 s, 90 s
    assert m.sent_rows(1).tolist() == [0, 1, 0, 0, 1]  # samples at 5 s, 120 s
    part = read(mission_dir, start="2000-01-01 00:00:45", end="2000-01-01 00:01:40")
    for column in (0, 1):  # a time range reads what the whole read's rows hold
        assert part.sent_rows(column).tolist() == m.sent_rows(column)[1:4].tolist()
        assert m.slice(1, 4).sent_rows(column).tolist() == m.sent_rows(column)[1:4].tolist()


@pytest.mark.parametrize("cached", [False, True])
def test_a_reading_beyond_float32_is_warned_about_as_the_other_readers_do(mission_dir, tmp_path,
                                                                          cached, monkeypatch):
    """A channel file's 1e300 (or inf) is replaced and its row always alarms; the raw reader
    said only 'repaired non-finite values', for a value that was finite, where the CSV, Kaggle
    and NASA readers name the rows beyond float32's range and that they always alarm."""
    _series(mission_dir / "channels/channel_2.zip", "channel_2", ["5s", "70s", "120s"],
            [10.0, 1e300, 20.0])
    options = {"cache_dir": tmp_path / "cache", "use_cache": True} if cached else {}
    monkeypatch.chdir(mission_dir.parent)
    # a read from the cache gives the same warnings, naming the file as that read spells it
    for root in [mission_dir, Path(mission_dir.name)] if cached else [mission_dir]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            m = read(root, **options)
        beyond = [str(w.message) for w in caught if "beyond float32's range" in str(w.message)]
        assert len(beyond) == 1, [str(w.message) for w in caught]
        assert "1 row(s)" in beyond[0] and "always alarm" in beyond[0]
        # named by its channel file, as the repair warning is: it named the channel only
        file = root / "channels" / "channel_2.zip"
        assert f"in channel file(s) ['{file}']:" in beyond[0], beyond[0]
    assert np.isfinite(m.values).all() and m.unrepresentable.tolist() == [0, 0, 0, 1, 0]


def test_a_nan_sample_is_no_reading_as_in_a_frame(mission_dir):
    """A channel file's NaN sample is held over (forward fill) and is no sample: the reader
    records the rows a channel sent on as ``Detector.predict`` does for the same samples given
    as a frame, where a NaN cell is no reading (what ``frozen.watch: sending`` reads)."""
    from esa_lightning.data.frame import frame_to_mission
    from esa_lightning.data.preprocessing import record_input

    _series(mission_dir / "channels/channel_1.zip", "channel_1", ["10s", "40s", "90s"],
            [1.0, np.nan, 3.0])
    with pytest.warns(UserWarning, match="repaired non-finite values"):
        m = read(mission_dir)
    np.testing.assert_array_equal(m.values[:, 0], [1, 1, 1, 3, 3])
    assert m.sent_rows(0).tolist() == [0, 1, 0, 1, 0]  # the NaN sample at 40 s lands on row 2
    files = [read_pickled_frame(mission_dir / f"channels/channel_{k}.zip") for k in (1, 2)]
    frame = pd.concat(files, axis=1)  # joined on the union of their times, as documented
    schema = {"channels": m.channel_names, "telecommands": [], "preprocessing": record_input(m)}
    framed, _ = frame_to_mission(frame, schema)
    for column in (0, 1):
        assert framed.sent_rows(column).tolist() == m.sent_rows(column).tolist()


def test_labels_floor_ceil_overlap_and_timezone(mission_dir):
    m = read(mission_dir)
    # id_1 (4 s, anomaly) -> rows 1..2; id_2 (rare event) rows 1..3; anomaly wins the overlap
    np.testing.assert_array_equal(m.labels[:, 0], [0, 1, 1, 2, 0])
    # id_3 at 01:01:30+01:00 = 00:01:30 UTC, a gap of zero length on a grid point
    np.testing.assert_array_equal(m.labels[:, 1], [0, 0, 0, 3, 0])
    ev = m.events.set_index("ID")
    assert ev.loc["id_3", "StartTime"] == pd.Timestamp("2000-01-01 00:01:30")
    assert ev["StartTime"].dtype == "datetime64[ns]"
    assert ev.loc["id_2", "Category"] == "Rare Event" and ev.loc["id_1", "Class"] == "a"
    assert set(m.events.columns) >= {"Dimensionality", "Locality", "Length", "Subclass"}


def test_telecommand_pulses_and_priority(mission_dir):
    m = read(mission_dir)
    assert m.telecommand_names == ["telecommand_1"]
    # 00:00:30 lands on row 1, 00:00:31 on the next grid point (row 2), 00:05:00 is after the end
    np.testing.assert_array_equal(m.telecommands[:, 0], [0, 1, 1, 0, 0])
    m1 = read(mission_dir, telecommand_priority=1)
    assert m1.telecommand_names == ["telecommand_1", "telecommand_2"]
    np.testing.assert_array_equal(m1.telecommands[:, 1], [0, 0, 1, 0, 0])


def test_counters_differenced(mission_dir):
    m = read(mission_dir, counters=["channel_2"])
    np.testing.assert_array_equal(m.values[:, 1], [0, 0, 0, 0, 10])
    np.testing.assert_array_equal(m.values[:, 0], [1, 1, 2, 3, 3])


def test_channel_selection_and_split(mission_dir):
    m = read(mission_dir, channels="target")
    # the grid spans the selected channels only: 00:00 .. 00:01:30
    assert m.channel_names == ["channel_1"] and m.values.shape == (4, 1)
    assert set(m.events["Channel"]) == {"channel_1"}
    m = read(mission_dir, channels=["channel_2", "channel_1"])
    np.testing.assert_array_equal(m.values[:, 0], [10, 10, 10, 10, 20])
    m = read(mission_dir, channels="lightweight", lightweight=["channel_2"])
    assert m.channel_names == ["channel_2"]
    m = read(mission_dir, split_date="2000-01-01 00:01:00", val_days=30 / 86400)
    assert (m.val_start, m.test_start) == (1, 2)


def test_start_end_selection(mission_dir):
    m = read(mission_dir, start="2000-01-01 00:00:45", end="2000-01-01 00:01:40")
    # start floors to 00:00:30; the last grid point at or before the end is 00:01:30
    np.testing.assert_array_equal(
        m.timestamps, pd.date_range(T0 + pd.Timedelta("30s"), periods=3, freq="30s").to_numpy()
    )
    np.testing.assert_array_equal(m.values[:, 0], [1, 2, 3])
    np.testing.assert_array_equal(m.telecommands[:, 0], [1, 1, 0])


@pytest.mark.parametrize(
    ("start", "end"), [(None, "1999-12-31"), ("2000-01-02", None), ("1999-01-01", "1999-02-01")]
)
def test_a_time_range_without_any_sample_is_refused(mission_dir, start, end):
    # it was read as one row holding each channel's first (or last) value
    with pytest.raises(ESAInputError, match="no sample of any chosen channel"):
        read(mission_dir, start=start, end=end)


@pytest.mark.parametrize("priority", ["high", None, True])
def test_a_telecommand_priority_that_is_no_number_is_named(mission_dir, priority):
    with pytest.raises(ESAInputError, match="telecommand_priority"):
        read(mission_dir, telecommand_priority=priority)


@pytest.mark.parametrize(
    "period,start,end",
    [
        ("37s", None, None),
        ("30s", None, None),
        ("30s", "2000-01-01 01:00:00", None),
        ("45s", None, "2000-01-01 04:00:07"),
        ("10s", "2000-01-01 00:30:00", "2000-01-01 03:00:00"),
    ],
)
def test_matches_pandas_reference_on_irregular_data(tmp_path, period, start, end):
    """Random irregular channels with different ranges (the grid grows as channels come in)."""
    root = make_mission(tmp_path / "R")
    rng = np.random.default_rng(3)
    frames = {}
    for name, (lo, hi) in {"channel_1": (5000, 8000), "channel_2": (0, 20000)}.items():
        t = np.sort(rng.choice(np.arange(lo, hi), 300, replace=False))
        idx = pd.DatetimeIndex(T0 + pd.to_timedelta(t, unit="s"))
        frames[name] = pd.Series(rng.normal(size=300).cumsum(), index=idx)
        frames[name].to_frame(name).to_pickle(root / "channels" / f"{name}.zip")
    (root / "labels.csv").unlink()
    m = read(root, period=period, start=start, end=end, counters=["channel_2"])
    first = pd.Timestamp(start) if start else min(f.index[0] for f in frames.values())
    last = pd.Timestamp(end) if end else max(f.index[-1] for f in frames.values())
    grid = pd.date_range(first.floor(period), last.floor(period), freq=period)
    np.testing.assert_array_equal(m.timestamps, grid.to_numpy())
    # zero-order hold; before the first sample the channel's first raw value
    f1, f2 = frames["channel_1"], frames["channel_2"]
    ref1 = f1.reindex(grid, method="ffill").fillna(f1.iloc[0]).to_numpy(np.float32)
    np.testing.assert_array_equal(m.values[:, 0], ref1)
    ref2 = f2.reindex(grid, method="ffill").fillna(f2.iloc[0]).diff().fillna(0.0)
    np.testing.assert_allclose(m.values[:, 1], ref2.to_numpy(np.float32), atol=1e-5)
    assert m.labels.sum() == 0 and len(m.events) == 0


def test_nan_values_repaired_with_warning(mission_dir):
    _series(
        mission_dir / "channels/channel_1.zip",
        "channel_1",
        ["10s", "40s", "90s"],
        [np.nan, 2.0, np.inf],
    )
    with pytest.warns(UserWarning, match="channel_1.zip': 2"):
        m = read(mission_dir)
    np.testing.assert_array_equal(m.values[:, 0], [2, 2, 2, 2, 2])


@pytest.mark.parametrize("cached", [False, True])
def test_the_repair_warning_names_the_channel_files(mission_dir, tmp_path, cached):
    """docs/data.md says such warnings name the files: it named the channel only."""
    _series(mission_dir / "channels/channel_2.zip", "channel_2", ["5s", "70s", "120s"],
            [10.0, np.nan, 20.0])
    options = {"cache_dir": tmp_path / "cache", "use_cache": True} if cached else {}
    for _ in range(2 if cached else 1):  # a read from the cache names them too
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            read(mission_dir, **options)
        said = [str(w.message) for w in caught if "repaired non-finite" in str(w.message)]
        assert said == ["repaired non-finite values (forward fill) per channel file: "
                        f"{{'{mission_dir / 'channels' / 'channel_2.zip'}': 1}}"]


def test_cache_reused_and_invalidated(mission_dir, tmp_path):
    cache = tmp_path / "cache"
    a = read_esa_mission(mission_dir, cache_dir=cache)
    b = read_esa_mission(mission_dir, cache_dir=cache)
    assert isinstance(b.values, np.memmap) and a.meta["cache_key"] == b.meta["cache_key"]
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 1  # + digests.json
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.labels, b.labels)
    # an option change gives another entry
    c = read_esa_mission(mission_dir, cache_dir=cache, counters=["channel_2"])
    assert c.meta["cache_key"] != a.meta["cache_key"]
    # a changed source file is never served from the old entry
    path = mission_dir / "channels/channel_1.zip"
    _series(path, "channel_1", ["10s", "40s", "90s"], [7.0, 8.0, 9.0])
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    d = read_esa_mission(mission_dir, cache_dir=cache)
    assert d.meta["cache_key"] != a.meta["cache_key"]
    np.testing.assert_array_equal(d.values[:, 0], [7, 7, 8, 9, 9])
    assert not any(p.name.startswith(".tmp") for p in cache.iterdir())
    read_esa_mission(mission_dir, cache_dir=tmp_path / "nocache", use_cache=False)
    assert not (tmp_path / "nocache").exists()


# ----------------------------------------------------------------------------- bad inputs
def _break(root: Path, what: str) -> str:
    """Damage the mission; return the file name the error must mention."""
    ch1 = root / "channels/channel_1.zip"
    if what == "missing folder":
        import shutil

        shutil.rmtree(root)
        return root.name
    if what == "missing channels.csv":
        (root / "channels.csv").unlink()
        return "channels.csv"
    if what == "missing channel file":
        ch1.unlink()
        return "channel_1.zip"
    if what == "missing anomaly_types.csv":
        (root / "anomaly_types.csv").unlink()
        return "anomaly_types.csv"
    if what == "missing telecommand file":
        (root / "telecommands/telecommand_1.zip").unlink()
        return "telecommand_1.zip"
    if what == "channels.csv column":
        pd.read_csv(root / "channels.csv").drop(columns="Group").to_csv(
            root / "channels.csv", index=False
        )
        return "channels.csv"
    if what == "labels.csv column":
        pd.read_csv(root / "labels.csv").drop(columns="EndTime").to_csv(
            root / "labels.csv", index=False
        )
        return "labels.csv"
    if what == "telecommands.csv column":
        pd.DataFrame({"Telecommand": ["telecommand_1"]}).to_csv(
            root / "telecommands.csv", index=False
        )
        return "telecommands.csv"
    if what == "bad YES/NO":
        t = pd.read_csv(root / "channels.csv")
        t.loc[0, "Target"] = "MAYBE"
        t.to_csv(root / "channels.csv", index=False)
        return "channels.csv"
    if what == "non-numeric":
        _series(ch1, "channel_1", ["10s", "40s"], ["1.5", "abc"])
        return "channel_1.zip"
    if what == "unsorted":
        _series(ch1, "channel_1", ["40s", "10s"], [1.0, 2.0])
        return "channel_1.zip"
    if what == "duplicate":
        _series(ch1, "channel_1", ["10s", "10s"], [1.0, 2.0])
        return "channel_1.zip"
    if what == "empty channel":
        _series(ch1, "channel_1", [], [])
        return "channel_1.zip"
    if what == "not a datetime index":
        pd.DataFrame({"channel_1": [1.0, 2.0]}).to_pickle(ch1)
        return "channel_1.zip"
    if what == "corrupt zip":
        ch1.write_bytes(b"PK\x03\x04 not really a zip")
        return "channel_1.zip"
    if what == "unknown label channel":
        t = pd.read_csv(root / "labels.csv")
        t.loc[0, "Channel"] = "channel_99"
        t.to_csv(root / "labels.csv", index=False)
        return "labels.csv"
    if what == "label ends before start":
        t = pd.read_csv(root / "labels.csv")
        t.loc[0, "EndTime"] = "1999-12-31 00:00:00"
        t.to_csv(root / "labels.csv", index=False)
        return "labels.csv"
    if what == "bad label time":
        t = pd.read_csv(root / "labels.csv")
        t.loc[0, "StartTime"] = "yesterday"
        t.to_csv(root / "labels.csv", index=False)
        return "labels.csv"
    if what == "unknown category":
        t = pd.read_csv(root / "anomaly_types.csv")
        t.loc[0, "Category"] = "Glitch"
        t.to_csv(root / "anomaly_types.csv", index=False)
        return "anomaly_types.csv"
    if what == "label ID without type":
        t = pd.read_csv(root / "anomaly_types.csv")
        t.iloc[1:].to_csv(root / "anomaly_types.csv", index=False)
        return "anomaly_types.csv"
    raise AssertionError(what)


BAD = [
    "missing folder",
    "missing channels.csv",
    "missing channel file",
    "missing anomaly_types.csv",
    "missing telecommand file",
    "channels.csv column",
    "labels.csv column",
    "telecommands.csv column",
    "bad YES/NO",
    "non-numeric",
    "unsorted",
    "duplicate",
    "empty channel",
    "not a datetime index",
    "corrupt zip",
    "unknown label channel",
    "label ends before start",
    "bad label time",
    "unknown category",
    "label ID without type",
]


@pytest.mark.parametrize("what", BAD)
def test_bad_input_names_the_file(mission_dir, what):
    name = _break(mission_dir, what)
    with pytest.raises(ESAInputError) as info:
        read(mission_dir)
    assert name in str(info.value)


def test_bad_options(mission_dir):
    with pytest.raises(ESAInputError, match="counters"):
        read(mission_dir, counters=["channel_9"])
    with pytest.raises(ESAInputError, match="period"):
        read(mission_dir, period="soon")
    with pytest.raises(ESAInputError, match="channel_7"):
        read(mission_dir, channels=["channel_7"])


# ----------------------------------------------------------------------------- safe pickle
class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_refused_and_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "channel_1.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("channel_1", pickle.dumps(_Evil(marker)))
    with pytest.raises(ESAInputError, match=r"channel_1\.zip.*(posix|os)\.system"):
        read_pickled_frame(path)
    assert not marker.exists()


def test_getattr_gadget_refused(tmp_path):
    """getattr is only served for the zoneinfo gadget, not for walking to eval."""

    class Gadget:
        def __reduce__(self):
            return (getattr, (pd.DataFrame, "__init__"))

    path = tmp_path / "g.pkl"
    path.write_bytes(pickle.dumps(Gadget()))
    with pytest.raises(ESAInputError, match="g.pkl"):
        read_pickled_frame(path)


@pytest.mark.parametrize("protocol", [2, 4, 5])
@pytest.mark.parametrize("tz", [None, "UTC", "Europe/Berlin"])
def test_legit_frames_load(tmp_path, protocol, tz):
    idx = pd.date_range("2000-01-01", periods=4, freq="45s", tz=tz)
    df = pd.DataFrame({"channel_1": np.arange(4, dtype=np.int64)}, index=idx)
    zpath, ppath = tmp_path / "c.zip", tmp_path / "c.pkl"
    df.to_pickle(zpath, protocol=protocol)
    df.to_pickle(ppath, protocol=protocol)
    pd.testing.assert_frame_equal(read_pickled_frame(zpath), df)
    pd.testing.assert_frame_equal(read_pickled_frame(ppath), df)


def test_a_stale_counter_in_mission_json_names_the_record(mission_dir):
    # mission.json still lists a counter the user removed from channels.csv; data.counters unset
    (mission_dir / "mission.json").write_text('{"counters": ["channel_9"]}')
    with pytest.raises(ESAInputError) as info:
        read(mission_dir, counters=None)
    message = str(info.value)
    assert "channel_9" in message and "mission.json" in message and "channels.csv" in message
    with pytest.raises(ESAInputError) as info:
        read(mission_dir, counters=["channel_8"])
    assert "data.counters" in str(info.value) and "mission.json" not in str(info.value)


@pytest.mark.parametrize(
    ("table", "column"),
    [("labels.csv", "ID"), ("labels.csv", "Channel"), ("anomaly_types.csv", "ID"),
     ("channels.csv", "Channel"), ("telecommands.csv", "Telecommand")],
)
def test_an_empty_name_cell_is_named(mission_dir, table, column):
    # an empty ID next to an unknown one used to crash sorting str against float NaN
    df = pd.read_csv(mission_dir / table)
    df[column] = df[column].astype(object)
    df.loc[1, column] = None
    if table == "labels.csv":
        df.loc[0, "ID"] = "id_unknown"
    df.to_csv(mission_dir / table, index=False)
    with pytest.raises(ESAInputError) as info:
        read(mission_dir)
    message = str(info.value)
    assert table in message and repr(column) in message and "row 2" in message


def test_a_stale_lightweight_list_in_mission_json_names_the_record(mission_dir):
    (mission_dir / "mission.json").write_text('{"lightweight": ["channel_1", "channel_9"]}')
    with pytest.raises(ESAInputError) as info:
        read(mission_dir, channels="lightweight", lightweight=None)
    message = str(info.value)
    assert "channel_9" in message and "mission.json" in message and "lightweight" in message
    # the stale entry matters only to the lightweight selection
    assert read(mission_dir, lightweight=None).channel_names == ["channel_1", "channel_2"]


@pytest.mark.parametrize("name", ["NA", "nan", "None", "null", "NaN", "<NA>"])
def test_names_pandas_reads_as_missing_are_kept_verbatim(mission_dir, name):
    # a channel, telecommand and event ID spelt like a missing value are names, not empty cells
    renames = {"channel_2": name, "telecommand_1": name, "id_3": name}
    for table in ("channels.csv", "telecommands.csv", "labels.csv", "anomaly_types.csv"):
        df = pd.read_csv(mission_dir / table)
        df.replace(renames).to_csv(mission_dir / table, index=False)
    for folder, old in (("channels", "channel_2"), ("telecommands", "telecommand_1")):
        # its value column named after it, as ESA-ADB's files are (another name is refused)
        frame = read_pickled_frame(mission_dir / folder / f"{old}.zip").rename(columns={old: name})
        frame.to_pickle(mission_dir / folder / f"{name}.zip")
        (mission_dir / folder / f"{old}.zip").unlink()
    m = read(mission_dir)
    assert m.channel_names == ["channel_1", name]
    assert m.telecommand_names == [name]
    event = m.events.set_index("ID").loc[name]
    assert event["Channel"] == name and event["Category"] == "Communication Gap"
    np.testing.assert_array_equal(m.labels[:, 1], [0, 0, 0, 3, 0])


def test_a_header_only_labels_csv_needs_no_anomaly_types(mission_dir):
    labeled = make_mission(mission_dir.parent / "L")
    columns = list(read(labeled).events.columns)
    # labels.csv with its header and no label: a mission without events, no anomaly types needed
    pd.read_csv(mission_dir / "labels.csv").iloc[:0].to_csv(mission_dir / "labels.csv", index=False)
    (mission_dir / "anomaly_types.csv").unlink()
    m = read(mission_dir)
    assert len(m.events) == 0 and not m.labels.any() and list(m.events.columns) == columns
    # with labels, anomaly_types.csv is still required, and the error says which file needs it
    (labeled / "anomaly_types.csv").unlink()
    with pytest.raises(ESAInputError, match=r"anomaly_types\.csv.*labels\.csv"):
        read(labeled)


@pytest.mark.parametrize(
    ("table", "header"),
    [("labels.csv", "ID,Channel,StartTime,EndTime"), ("anomaly_types.csv", "ID,Category"),
     ("telecommands.csv", "Telecommand,Priority"), ("channels.csv", "Channel")],
)
def test_a_table_of_zero_bytes_is_refused_naming_the_header_it_needs(mission_dir, table, header):
    # it said pandas' "cannot parse CSV: No columns to parse from file"; a mission without
    # events is a labels.csv of its header line alone (or no labels.csv: unlabeled)
    (mission_dir / table).write_bytes(b"")
    with pytest.raises(ESAInputError, match="empty file") as info:
        read(mission_dir)
    assert info.value.path == str(mission_dir / table) and header in str(info.value)


def test_a_folder_without_labels_csv_reads_as_unlabeled_not_as_no_event(mission_dir):
    # new telemetry scored with predict.py often comes without labels.csv: its rows' labels are
    # unknown ("no labels"), where a header-only labels.csv says "no labeled event"
    from esa_lightning.runtime.evaluation import NO_LABELED_EVENT, unscored_reason

    (mission_dir / "labels.csv").unlink()
    assert unscored_reason(read(mission_dir)) == "no labels"
    make_mission(mission_dir.parent / "H")
    header_only = mission_dir.parent / "H"
    pd.read_csv(header_only / "labels.csv").iloc[:0].to_csv(header_only / "labels.csv", index=False)
    assert unscored_reason(read(header_only)) == NO_LABELED_EVENT


def test_labels_wholly_outside_the_grid_are_warned_about(mission_dir):
    """A label off the grid was dropped without a word: one whose zone offset moves it an
    hour before the data (00:00:50+01:00 is 23:00:50 UTC the day before) and one a year late."""
    labels = pd.read_csv(mission_dir / "labels.csv")
    extra = pd.DataFrame({"ID": ["id_4", "id_5"], "Channel": ["channel_1", "channel_2"],
                          "StartTime": ["2000-01-01T00:00:50+01:00", "2001-01-01 00:00:00"],
                          "EndTime": ["2000-01-01T00:01:00+01:00", "2001-01-01 00:01:00"]})
    pd.concat([labels, extra]).to_csv(mission_dir / "labels.csv", index=False)
    types = pd.read_csv(mission_dir / "anomaly_types.csv")
    more = types.iloc[:2].assign(ID=["id_4", "id_5"])
    pd.concat([types, more]).to_csv(mission_dir / "anomaly_types.csv", index=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = read(mission_dir)
    said = [str(w.message) for w in caught if "outside the grid" in str(w.message)]
    assert len(said) == 1, [str(w.message) for w in caught]
    assert str(mission_dir / "labels.csv") in said[0]
    assert "['id_4', 'id_5']" in said[0] and "id_1" not in said[0]
    assert "2000-01-01T00:00:00" in said[0] and "2000-01-01T00:02:00" in said[0]
    assert sorted(m.events["ID"]) == ["id_1", "id_2", "id_3"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the labels on the grid: no warning
        read(make_mission(mission_dir.parent / "N"))


@pytest.mark.parametrize("cached", [False, True])
def test_labels_cut_out_by_start_or_end_are_not_warned_about(mission_dir, tmp_path, cached):
    """data.start / data.end cut labeled events out on purpose: the warning about events
    wholly outside the grid fired for those too. It names only the events outside the range
    the channel files span (here one a year late), with that range."""
    labels = pd.read_csv(mission_dir / "labels.csv")
    late = pd.DataFrame({"ID": ["id_5"], "Channel": ["channel_2"],
                         "StartTime": ["2001-01-01 00:00:00"], "EndTime": ["2001-01-01 00:01:00"]})
    pd.concat([labels, late]).to_csv(mission_dir / "labels.csv", index=False)
    types = pd.read_csv(mission_dir / "anomaly_types.csv")
    pd.concat([types, types.iloc[:1].assign(ID=["id_5"])]).to_csv(
        mission_dir / "anomaly_types.csv", index=False)
    options = {"cache_dir": tmp_path / "cache", "use_cache": True} if cached else {}
    # 00:01:00 .. keeps id_1 (00:00:41-45: in the period its first row owns) on that row;
    # .. 00:00:30 cuts every label out (each starts after the last row)
    for cut in ({"start": "2000-01-01 00:01:00"}, {"end": "2000-01-01 00:00:30"}):
        for _ in range(2 if cached else 1):  # a read from the cache too
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                m = read(mission_dir, **cut, **options)
            said = [str(w.message) for w in caught if "outside the grid" in str(w.message)]
            assert len(said) == 1, [str(w.message) for w in caught]
            assert "['id_5']" in said[0] and "id_1" not in said[0] and "id_2" not in said[0]
            assert "2000-01-01T00:00:00" in said[0] and "2000-01-01T00:02:00" in said[0]
            assert "id_5" not in set(m.events["ID"])
    assert sorted(read(mission_dir, start="2000-01-01 00:01:00").events["ID"]) == [
        "id_1", "id_2", "id_3"]
