"""NASA -> ESA raw / ESA CSV / Kaggle converter: round trips through the repository's readers."""

from __future__ import annotations

import ast
import json
import os
import shutil
import stat
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from esa_lightning.data import convert, convert_command
from esa_lightning.data.convert import convert_nasa, main
from esa_lightning.data.readers.esa_adb import read_esa_mission
from esa_lightning.data.readers.esa_csv import read_esa_csv
from esa_lightning.data.readers.kaggle import read_kaggle
from esa_lightning.errors import ESAInputError
from esa_lightning.jobs.common import mission_from_config
from tests.conftest import MSL, compose_config
from tests.helpers import write_msl_channels

# (channel, n_train, n_test, sequences, classes): lengths differ so that every arrangement
# places every channel somewhere else; A-1's last sequence ends on its last test row, B-2's is
# one row at its test start
CHANNELS = [
    ("A-1", 50, 40, [[5, 9], [30, 39]], "[point, contextual]"),
    ("B-2", 80, 25, [[0, 0]], "[point]"),
    ("C-3", 30, 60, [[40, 52], [10, 20]], "[contextual, point]"),  # listed out of order
]
START = np.datetime64("2000-01-01T00:00:00", "ns")
PERIOD = np.timedelta64(30, "s")


@pytest.fixture(scope="module")
def nasa(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny telemanom folder: three channels, distinct values, sparse 0/1 commands."""
    rng = np.random.default_rng(7)

    def values(n: int) -> np.ndarray:
        commands = (rng.random((n, 4)) < 0.05).astype(float)
        commands[:, 2] = 0  # a command never sent: not carried
        return np.c_[rng.normal(size=n), commands]

    return write_msl_channels(tmp_path_factory.mktemp("nasa") / "tiny-nasa", CHANNELS, values)


def stretches(arrange: str, lengths: list[tuple[str, int, int]]) -> dict[str, tuple[int, int]]:
    """Documented placement: channel -> (first train row, first test row)."""
    if arrange == "side_by_side":
        split = max(a for _, a, _ in lengths)
        return {c: (split - a, split) for c, a, _ in lengths}
    split = sum(a for _, a, _ in lengths)
    out, tr, te = {}, 0, split
    for c, a, b in lengths:
        out[c] = (tr, te)
        tr, te = tr + a, te + b
    return out


def expected_grid(
    root: Path,
    arrange: str,
    names: list[str] | None = None,
    recordings: str = "both",
    test_share: float = 0.5,
) -> dict:
    """The grid written by hand: values held (first value before a channel's samples, the
    last one after and between), per-channel labels, split row, events (channel, rows); with
    ``recordings="test"`` the test recordings alone, each cut at ``1 - test_share`` of its rows
    (moved past a sequence the cut would split)."""
    listing = pd.read_csv(root / "labeled_anomalies.csv").set_index("chan_id")
    names = names or list(listing.index)
    arrays, cuts = {}, {}
    for c in names:
        train = np.load(root / "train" / f"{c}.npy")
        test = np.load(root / "test" / f"{c}.npy")
        arrays[c], cuts[c] = (train, test), 0
        if recordings == "test":
            cut = round((1 - test_share) * len(test))
            for a, b in ast.literal_eval(listing.loc[c, "anomaly_sequences"]):
                if a < cut <= b:
                    cut = b + 1
            arrays[c], cuts[c] = (test[:cut], test[cut:]), cut
    lengths = [(c, len(arrays[c][0]), len(arrays[c][1])) for c in names]
    place = stretches(arrange, lengths)
    split = place[names[0]][1] if arrange == "side_by_side" else sum(a for _, a, _ in lengths)
    n = max(place[c][1] + len(arrays[c][1]) for c in names)
    values = np.zeros((n, len(names)), dtype=np.float32)
    labels = np.zeros((n, len(names)), dtype=np.uint8)
    events, commands = set(), {}
    for j, c in enumerate(names):
        train, test = arrays[c]
        tr, te = place[c]
        col = np.full(n, np.nan, dtype=np.float32)
        col[tr : tr + len(train)] = train[:, 0]
        col[te : te + len(test)] = test[:, 0]
        col = pd.Series(col).ffill().bfill().to_numpy()
        values[:, j] = col
        for a, b in ast.literal_eval(listing.loc[c, "anomaly_sequences"]):
            # a sequence of the test recording: in its training stretch when before the cut
            first = tr + a if b < cuts[c] else te + a - cuts[c]
            labels[first : first + b - a + 1, j] = 1
            events.add((c, first, first + b - a))
        for k in range(1, train.shape[1]):
            rows = [tr + i for i in np.flatnonzero(train[:, k])]
            rows += [te + i for i in np.flatnonzero(test[:, k])]
            if rows:
                commands[f"telecommand_{c}_{k}"] = rows
    return {
        "values": values,
        "labels": labels,
        "split": split,
        "events": events,
        "names": names,
        "commands": commands,
        "n": n,
    }


def read_back(layout: str, out: Path, cache: Path):
    """The converted folder through the reader its conf/data/*.yaml names."""
    record = json.loads((out / "mission.json").read_text())
    if layout == "esa":
        mission = read_esa_mission(
            out, split_date=record["split_date"], counters=None, lightweight=None, cache_dir=cache
        )
    elif layout == "esa_csv":
        mission = read_esa_csv(out, cache_dir=cache)
    else:
        mission = read_kaggle(out, cache_dir=cache)
    return mission, record


def event_rows(mission, layout: str) -> set:
    ev = mission.events
    if layout == "kaggle":  # ids are grid rows
        return {
            (c, int(a), int(b))
            for c, a, b in zip(ev["Channel"], ev["StartTime"], ev["EndTime"], strict=True)
        }
    start = ((ev["StartTime"].to_numpy() - START) // PERIOD).astype(int)
    end = ((ev["EndTime"].to_numpy() - START) // PERIOD).astype(int)
    return set(zip(ev["Channel"], start.tolist(), end.tolist(), strict=True))


def runs(flags: np.ndarray) -> set:
    edges = np.diff(np.r_[0, flags.astype(int), 0])
    return set(
        zip(
            np.flatnonzero(edges == 1).tolist(),
            (np.flatnonzero(edges == -1) - 1).tolist(),
            strict=True,
        )
    )


@pytest.mark.parametrize("arrange", ["side_by_side", "sequential"])
@pytest.mark.parametrize("layout", ["esa", "esa_csv", "kaggle"])
def test_round_trip_through_the_readers(nasa, tmp_path, layout, arrange):
    out = convert_nasa(nasa, tmp_path / "out", layout=layout, arrange=arrange)
    mission, record = read_back(layout, out, tmp_path / "cache")
    want = expected_grid(nasa, arrange)
    assert mission.channel_names == want["names"]
    np.testing.assert_array_equal(mission.values, want["values"])
    assert mission.test_start == want["split"] == record["split_row"]
    assert mission.telecommand_names == []
    if layout == "kaggle":
        np.testing.assert_array_equal(mission.row_labels, want["labels"].max(axis=1))
        assert {(a, b) for _, a, b in event_rows(mission, layout)} == runs(
            want["labels"].max(axis=1)
        )
        assert mission.meta["test_labeled"]
        assert mission.timestamps.tolist() == list(range(want["n"]))
    else:
        np.testing.assert_array_equal(mission.labels, want["labels"])
        assert event_rows(mission, layout) == want["events"]
        assert mission.timestamps[0] == START
        assert np.all(np.diff(mission.timestamps) == PERIOD)
        split = START + want["split"] * PERIOD
        assert np.datetime64(record["split_date"]) == split
        assert set(mission.events["Category"]) == {"Anomaly"}
    if layout == "esa":  # event IDs and NASA classes kept
        ev = mission.events.set_index("ID")
        assert ev.loc["C-3_0", "Class"] == "contextual" and ev.loc["C-3_1", "Class"] == "point"
        assert ev.loc["B-2_0", "Length"] == "Point" and ev.loc["A-1_1", "Locality"] == "Local"
    else:  # the per-channel events the reader cannot carry are written beside the data
        events = pd.read_csv(out / "events.csv")
        got = set(zip(events["Channel"], events["StartId"], events["EndId"], strict=True))
        assert got == want["events"]


@pytest.mark.parametrize("recordings", ["both", "test"])
def test_layouts_read_back_equal_where_the_source_holds_nan_and_readings_beyond_float32(
    nasa, tmp_path, recordings
):
    # the CSV and Kaggle layouts held the NASA reader's repair (over the training file too,
    # which recordings=test leaves out) and lost the mark of a reading float32 cannot hold
    source = tmp_path / "nasa"
    shutil.copytree(nasa, source)
    for part, chan, rows, value in [
        ("test", "A-1", slice(0, 3), np.nan),  # the test recording's first rows
        ("train", "B-2", slice(10, 11), 1e39),
        ("test", "C-3", slice(5, 6), np.inf),
        ("test", "C-3", slice(30, 31), -1e39),
    ]:
        array = np.load(source / part / f"{chan}.npy")
        array[rows, 0] = value
        np.save(source / part / f"{chan}.npy", array)
    share = 0.5 if recordings == "test" else 1.0
    read = {}
    for layout in ("esa", "esa_csv", "kaggle"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # each read says what it repaired
            out = convert_nasa(source, tmp_path / layout, layout=layout,
                               recordings=recordings, test_share=share)
            read[layout], _ = read_back(layout, out, tmp_path / "cache")
    esa = read["esa"]
    assert np.isfinite(esa.values).all() and esa.unrepresentable.sum() == (
        3 if recordings == "both" else 2)
    for layout in ("esa_csv", "kaggle"):
        np.testing.assert_array_equal(read[layout].values, esa.values, err_msg=layout)
        np.testing.assert_array_equal(read[layout].unrepresentable, esa.unrepresentable)


def test_channel_files_hold_only_real_samples(nasa, tmp_path):
    """ESA raw: each channel file spans its own stretches, float64 as the source."""
    out = convert_nasa(nasa, tmp_path / "out", layout="esa", arrange="sequential")
    frame = pd.read_pickle(out / "channels" / "B-2.zip")
    train, test = np.load(nasa / "train" / "B-2.npy"), np.load(nasa / "test" / "B-2.npy")
    np.testing.assert_array_equal(frame["B-2"].to_numpy(), np.r_[train[:, 0], test[:, 0]])
    place = stretches("sequential", [(c, a, b) for c, a, b, *_ in CHANNELS])["B-2"]
    times = frame.index.to_numpy()
    assert times[0] == START + place[0] * PERIOD and times[80] == START + place[1] * PERIOD
    record = json.loads((out / "mission.json").read_text())
    assert record["channels"]["B-2"] == {
        "train_rows": [50, 129], "val_rows": None, "test_rows": [200, 224]
    }


@pytest.mark.parametrize("recordings", ["both", "test"])
@pytest.mark.parametrize("layout", ["esa", "esa_csv", "kaggle"])
def test_commands_become_telecommand_pulses(nasa, tmp_path, layout, recordings):
    out = convert_nasa(nasa, tmp_path / "out", layout=layout, commands=True,
                       recordings=recordings, test_share=0.5)
    mission, record = read_back(layout, out, tmp_path / "cache")
    want = expected_grid(nasa, "side_by_side", recordings=recordings)
    assert mission.telecommand_names == list(want["commands"])
    assert record["telecommands"] == len(want["commands"]) > 0
    assert not any(name.endswith("_3") for name in mission.telecommand_names)  # never sent
    for k, rows in enumerate(want["commands"].values()):
        expected = np.zeros(want["n"], dtype=np.float32)
        expected[rows] = 1
        np.testing.assert_array_equal(mission.telecommands[:, k], expected)


def test_channel_selection_and_grid_options(nasa, tmp_path, monkeypatch):
    out = convert_nasa(
        nasa,
        tmp_path / "out",
        layout="esa",
        channels="C-3,A-1",
        period="1min",
        start="2001-02-03 04:05:00",
    )
    record = json.loads((out / "mission.json").read_text())
    mission = read_esa_mission(out, period="1min", split_date=record["split_date"], use_cache=False)
    want = expected_grid(nasa, "side_by_side", ["C-3", "A-1"])
    assert mission.channel_names == ["C-3", "A-1"] and mission.test_start == 50
    np.testing.assert_array_equal(mission.values, want["values"])
    assert mission.timestamps[0] == np.datetime64("2001-02-03T04:05:00")
    assert record["split_date"] == "2001-02-03T04:55:00" and record["period"] == "60s"
    # data=esa without data.split_date takes the split the converter recorded in mission.json
    assert read_esa_mission(out, period="1min", use_cache=False).test_start == 50
    assert convert_command.train_command(out, record).endswith(
        "data.split_date=2001-02-03T04:55:00 data.period=60s"
    )
    assert convert_command.train_command(out, record).startswith("python train.py ")  # in a clone
    from esa_lightning import install

    monkeypatch.setattr(install, "running_from_source", lambda: False)  # installed: no train.py
    assert convert_command.train_command(out, record).startswith("esa-train data=esa ")


def test_refuses_bad_options_and_existing_output(nasa, tmp_path):
    listing = sorted((p.relative_to(nasa), p.stat().st_mtime_ns) for p in nasa.rglob("*"))
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    with pytest.raises(ESAInputError, match="not empty"):
        convert_nasa(nasa, taken, layout="kaggle")
    assert [p.name for p in taken.iterdir()] == ["keep.txt"]
    with pytest.raises(ESAInputError, match="inside the source"):
        convert_nasa(nasa, nasa / "converted", layout="esa")
    with pytest.raises(ESAInputError, match="layout"):
        convert_nasa(nasa, tmp_path / "a", layout="parquet")
    with pytest.raises(ESAInputError, match="arrange"):
        convert_nasa(nasa, tmp_path / "a", arrange="interleaved")
    with pytest.raises(ESAInputError, match="whole number of seconds"):
        convert_nasa(nasa, tmp_path / "a", period="1500ms")
    with pytest.raises(ESAInputError, match="on the 7s grid"):
        convert_nasa(nasa, tmp_path / "a", period="7s", start="2000-01-01")
    with pytest.raises(ESAInputError, match="choose an earlier start"):  # 2262: pandas' end
        convert_nasa(nasa, tmp_path / "a", start="2262-04-11 23:47:00")
    with pytest.raises(ESAInputError, match=r"unknown channel\(s\) \['X-9'\]"):
        convert_nasa(nasa, tmp_path / "a", channels=["A-1", "X-9"])
    assert not (tmp_path / "a").exists()
    assert sorted((p.relative_to(nasa), p.stat().st_mtime_ns) for p in nasa.rglob("*")) == listing
    empty = tmp_path / "empty"
    empty.mkdir()
    assert convert_nasa(nasa, empty, layout="kaggle") == empty  # an empty folder is filled
    assert (empty / "train.parquet").is_file()


@pytest.mark.parametrize("target", ["empty", "missing"])
def test_an_output_that_is_a_symbolic_link_is_refused_as_such(nasa, tmp_path, target):
    """A link to an empty folder (or to none) passed the checks, was converted whole, then the
    rename onto the link failed as 'cannot write (Not a directory)'."""
    if target == "empty":
        (tmp_path / target).mkdir()
    link = tmp_path / "link"
    link.symlink_to(tmp_path / target)
    with pytest.raises(ESAInputError, match="symbolic link") as info:
        convert_nasa(nasa, link, layout="esa")
    assert info.value.path == str(link)
    assert link.is_symlink() and sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["link", *(["empty"] if target == "empty" else [])])
    if target == "empty":
        assert not any((tmp_path / "empty").iterdir())


def test_a_failed_write_leaves_nothing(nasa, tmp_path, monkeypatch):
    def full_disk(job, out):
        (out / "half.parquet").write_bytes(b"x")
        raise OSError(28, "No space left on device")

    monkeypatch.setitem(convert._WRITERS, "kaggle", full_disk)
    with pytest.raises(ESAInputError, match="No space left"):
        convert_nasa(nasa, tmp_path / "out", layout="kaggle")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("layout", ["esa", "kaggle"])
def test_files_follow_the_umask(nasa, tmp_path, layout):
    """Not the owner-only modes of the temporary folder and of the atomic file writes."""
    before = os.umask(0o027)
    try:
        out = convert_nasa(nasa, tmp_path / "out", layout=layout)
    finally:
        os.umask(before)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [out, *out.rglob("*")]}
    assert modes.pop("out") == 0o750
    if layout == "esa":
        assert modes.pop("channels") == modes.pop("telecommands") == 0o750
    assert set(modes.values()) == {0o640}


def test_command_line(nasa, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(
        [
            "--source",
            str(nasa),
            "--out",
            str(out),
            "--layout",
            "esa",
            "--arrange",
            "sequential",
            "--channels",
            "B-2,A-1",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "2 channels x 195 rows of 30s" in printed and "test from 2000-01-01T01:05:00" in printed
    assert (
        f"python train.py data=esa data.root={out} data.split_date=2000-01-01T01:05:00" in printed
    )
    code = main(["--source", str(nasa), "--out", str(out), "--layout", "kaggle"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith(f"error: {out}: ")
    # B-2 (80 training rows) then A-1 (50): validation = their last 20 % (16 + 10 rows)
    val = tmp_path / "val"
    code = main(["--source", str(nasa), "--out", str(val), "--layout", "esa", "--arrange",
                 "sequential", "--channels", "B-2,A-1", "--val-share", "0.2"])
    printed = capsys.readouterr().out
    assert code == 0 and "validation from 2000-01-01T00:52:00 (row 104)" in printed
    assert f"data.split_date=2000-01-01T01:05:00 data.val_days={26 * 30 / 86400!r}" in printed


@pytest.mark.skipif(not MSL.is_dir(), reason="the shared NASA MSL data is not present")
def test_real_msl_channels_to_kaggle(tmp_path):
    names = ["T-9", "P-11", "F-8"]  # the shortest; sequences out of order; one ends last row
    out = convert_nasa(MSL, tmp_path / "msl", layout="kaggle", channels=names)
    mission = read_kaggle(out, cache_dir=tmp_path / "cache")
    want = expected_grid(MSL, "side_by_side", names)
    assert mission.channel_names == names and mission.test_start == want["split"] == 3969
    np.testing.assert_array_equal(mission.values, want["values"])
    for j, c in enumerate(names):
        test = np.load(MSL / "test" / f"{c}.npy")[:, 0].astype(np.float32)
        np.testing.assert_array_equal(mission.values[3969 : 3969 + len(test), j], test)
    np.testing.assert_array_equal(mission.row_labels, want["labels"].max(axis=1))
    assert mission.row_labels[3969 + 1950 : 3969 + 2487].all()  # F-8 [1950, 2486]
    events = pd.read_csv(out / "events.csv")
    assert len(events) == 5 and set(events["Channel"]) == set(names)


@pytest.mark.parametrize("layout", ["esa", "kaggle"])
def test_test_share_moves_the_split_so_training_holds_labeled_events(nasa, tmp_path, layout):
    whole = expected_grid(nasa, "side_by_side")
    out = convert_nasa(nasa, tmp_path / "out", layout=layout, test_share=0.5)
    mission, record = read_back(layout, out, tmp_path / "cache")
    split = whole["split"] + round(0.5 * (whole["n"] - whole["split"]))
    assert mission.test_start == record["split_row"] == split
    np.testing.assert_array_equal(mission.values, whole["values"])  # only the split moves
    labels = whole["labels"].max(axis=1)
    assert labels[:split].any() and mission.train().is_anomaly.any()
    assert mission.test().is_anomaly.sum() == labels[split:].sum()
    with pytest.raises(ESAInputError, match="test_share"):
        convert_nasa(nasa, tmp_path / "bad", layout=layout, test_share=0.0)
    # a share too small for one row wrote a mission with an empty test range
    with pytest.raises(ESAInputError, match="test_share.*test range would be empty"):
        convert_nasa(nasa, tmp_path / "tiny", layout=layout, test_share=1e-6)
    assert not (tmp_path / "tiny").exists()


@pytest.mark.parametrize("arrange", ["side_by_side", "sequential"])
@pytest.mark.parametrize("layout", ["esa", "esa_csv", "kaggle"])
def test_test_recordings_alone_put_labeled_and_nominal_rows_of_one_recording_in_training(
    nasa, tmp_path, layout, arrange
):
    # test share 0.25: C-3's cut (row 45 of 60) falls inside its sequence [40, 52] and moves
    # past it, so that sequence lies wholly in the training range
    out = convert_nasa(nasa, tmp_path / "out", layout=layout, arrange=arrange,
                       recordings="test", test_share=0.25)
    mission, record = read_back(layout, out, tmp_path / "cache")
    want = expected_grid(nasa, arrange, recordings="test", test_share=0.25)
    assert mission.test_start == record["split_row"] == want["split"]
    np.testing.assert_array_equal(mission.values, want["values"])
    first = np.load(nasa / "test" / "C-3.npy")[0, 0]  # no NASA training sample anywhere
    assert np.float32(first) in mission.values[:, mission.channel_names.index("C-3")]
    if layout == "kaggle":
        np.testing.assert_array_equal(mission.row_labels, want["labels"].max(axis=1))
    else:
        np.testing.assert_array_equal(mission.labels, want["labels"])
        assert event_rows(mission, layout) == want["events"]
    c3 = record["channels"]["C-3"]
    assert c3["train_rows"][1] - c3["train_rows"][0] + 1 == 53
    assert mission.train().is_anomaly.any() and mission.test().is_anomaly.any()
    assert record["recordings"] == "test"
    with pytest.raises(ESAInputError, match="test_share"):
        convert_nasa(nasa, tmp_path / "bad", layout=layout, recordings="test")


@pytest.mark.parametrize("layout", ["esa", "esa_csv", "kaggle"])
def test_val_share_places_every_channel_in_validation_as_the_printed_command_reads_it(
    nasa, tmp_path, layout
):
    """One after another, the readers' validation would be the last channels' training rows
    alone; with val_share every channel's last quarter of training rows lies there instead, after
    all training stretches, and ``reader_overrides`` reads exactly that range."""
    out = convert_nasa(nasa, tmp_path / "out", layout=layout, arrange="sequential",
                       recordings="test", test_share=0.5, val_share=0.25)
    record = json.loads((out / "mission.json").read_text())
    overrides = convert_command.reader_overrides(out, record)
    cfg = compose_config("train", [*overrides, f"paths.cache_dir={tmp_path / 'cache'}"], tmp_path)
    mission = mission_from_config(cfg.data)
    # A-1's 20 training rows keep 15 (its sequence [5, 9] among them), C-3's cut at 22 of 30
    # leaves its sequence [10, 20] in training; validation = 5 + 3 + 8 rows
    assert mission.test_start == record["split_row"] == 46 + 16
    assert mission.val_start == record["val_row"] == 46
    assert record["val_date"] == str(pd.Timestamp(START + 46 * PERIOD).isoformat())
    for j, name in enumerate(mission.channel_names):
        spans = record["channels"][name]
        train, val, test = (np.arange(a, b + 1) for a, b in spans.values())
        assert train[-1] < record["val_row"] <= val[0] and val[-1] < record["split_row"] <= test[0]
        source = np.load(nasa / "test" / f"{name}.npy")[:, 0].astype(np.float32)
        np.testing.assert_array_equal(mission.values[np.r_[train, val, test], j], source)
    # training stretches from row 0 (A-1 15, B-2 9, C-3 22 rows), test from 62 (20, 13, 30)
    want = {("A-1", 5, 9), ("A-1", 62 + 10, 62 + 19), ("B-2", 15, 15), ("C-3", 24 + 10, 24 + 20),
            ("C-3", 95 + 10, 95 + 22)}
    if layout == "kaggle":
        assert runs(mission.row_labels) == {(a, b) for _, a, b in want}
    else:
        assert event_rows(mission, layout) == want
    with pytest.raises(ESAInputError, match="sequential"):
        convert_nasa(nasa, tmp_path / "side", layout=layout, val_share=0.2)
    with pytest.raises(ESAInputError, match=r"\[0, 0.5\)"):
        convert_nasa(nasa, tmp_path / "half", layout=layout, arrange="sequential", val_share=0.5)
    with pytest.raises(ESAInputError, match="test_share 1"):
        convert_nasa(nasa, tmp_path / "both", layout=layout, arrange="sequential",
                     test_share=0.5, val_share=0.2)
    assert not any((tmp_path / n).exists() for n in ("side", "half", "both"))


def test_a_test_recording_whose_sequence_runs_to_its_end_keeps_test_rows(tmp_path):
    """recordings=test: the cut pushed past a labeled sequence that reaches the recording's last
    row left the channel no test row, and mission.json recorded test_rows [30, 29] (end before
    start) without an error. The cut now goes before the sequence; a recording that is one
    sequence throughout cannot be cut and is refused by name."""
    from tests.helpers import write_nasa

    rows = [("A-1", "SMAP", "[[10, 29]]", "[point]", 30),
            ("B-2", "SMAP", "[[2, 4]]", "[point]", 30)]
    source = write_nasa(tmp_path / "nasa", rows=rows)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = convert_nasa(source, tmp_path / "out", layout="esa", arrange="sequential",
                           recordings="test", test_share=0.5)
    placed = json.loads((out / "mission.json").read_text())["channels"]
    first, last = placed["A-1"]["test_rows"]
    assert last - first + 1 == 20  # the whole sequence, rows 10-29 of the test recording
    everything = [("A-1", "SMAP", "[[0, 29]]", "[point]", 30)]
    with pytest.raises(ESAInputError, match="A-1.*one labeled sequence"):
        convert_nasa(write_nasa(tmp_path / "whole", rows=everything), tmp_path / "out2",
                     layout="esa", recordings="test", test_share=0.5)
    assert not (tmp_path / "out2").exists() or not any((tmp_path / "out2").iterdir())


def test_the_command_line_names_its_options_as_typed(nasa, tmp_path, capsys):
    """The command line said `column 'test_share'` and `test_share < 1` for what it reads as
    --test-share: its errors name the options as the user typed them."""
    code = main(["--source", str(nasa), "--out", str(tmp_path / "o"), "--layout", "esa",
                 "--recordings", "test"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "option --test-share" in err and "needs --test-share < 1" in err
    assert "test_share" not in err
    code = main(["--source", str(nasa), "--out", str(tmp_path / "p"), "--layout", "esa",
                 "--val-share", "0.7"])
    err = capsys.readouterr().err
    assert code == 2 and "option --val-share: value 0.7: --val-share must lie in" in err


def test_a_conversion_cleans_up_after_an_interrupted_one(nasa, tmp_path):
    """A conversion killed half-way left its temporary folder beside the output (15 MB for MSL
    as an ESA CSV), and no later conversion removed it: only the temporaries of this project
    whose process has ended go; a live writer's, and anything else, stay."""
    from tests.helpers import dead_pid, owned_name

    stale = tmp_path / owned_name(".tmp-", dead_pid(), "out.k2x9")
    stale.mkdir()
    (stale / "train.parquet").write_bytes(b"half")
    live = tmp_path / owned_name(".tmp-", os.getpid(), "other.a1b2")
    live.mkdir()
    (tmp_path / ".tmp-notes.txt").write_text("mine")
    convert_nasa(nasa, tmp_path / "out", layout="kaggle")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [".tmp-notes.txt", live.name, "out"]
    )


@pytest.mark.parametrize(
    ("layout", "name"),
    [
        ("esa_csv", "telecommand_1"),  # read back as a telecommand, its labels lost
        ("esa_csv", "is_anomaly_A-1"),  # written, then refused by the reader
        ("esa_csv", "timestamp"),
        ("kaggle", "telecommand_1"),
        ("kaggle", "id"),
        ("kaggle", "is_anomaly"),
        ("kaggle", "is_anomaly_A-1"),  # written, then refused by the reader
    ],
)
def test_a_channel_named_as_a_column_the_layout_reserves_is_refused(tmp_path, layout, name):
    """A NASA channel whose name the chosen layout gives a meaning was written as it is: the
    mission read back with the channel turned into a telecommand (its labels dropped), or the
    reader refused the files the converter had just written (duplicate column names)."""
    from tests.helpers import write_msl_channels

    channels = [("A-1", 20, 20, [[2, 4]], "[point]"), (name, 20, 20, [[5, 9]], "[point]")]
    source = write_msl_channels(
        tmp_path / "nasa", channels, lambda n: np.c_[np.arange(n), np.zeros(n)]
    )
    with pytest.raises(ESAInputError, match="reserves") as err:
        convert_nasa(source, tmp_path / "out", layout=layout)
    assert err.value.value == name
    assert not (tmp_path / "out").exists()
    convert_nasa(source, tmp_path / "esa", layout="esa")  # the raw layout names files by it


@pytest.mark.parametrize("name", ["out ü", "it's here", "a,b", "plain-1.0", "run_${now:%H}",
                                  "x${oc.env:HOME}", "a\\${b}", "end\\", "${"])
def test_the_printed_command_reads_an_output_folder_of_any_name(nasa, tmp_path, name):
    """The printed command held ``data.root=<out>`` as it was: a space split it in the shell,
    and Hydra refused a non-ASCII letter or read a comma as a sweep of two folders; a ``${``
    was an interpolation when the config was composed (``${now:%H}``: the hour)."""
    import shlex

    from hydra.core.override_parser.overrides_parser import OverridesParser

    out = convert_nasa(nasa, tmp_path / name, layout="esa_csv")
    record = json.loads((out / "mission.json").read_text())
    words = shlex.split(convert_command.train_command(out, record))
    roots = [w for w in words if w.startswith("data.root=")]
    assert len(roots) == 1
    OverridesParser.create().parse_override(roots[0])  # a valid override
    overrides = [w for w in words if w.startswith("data")]  # the printed ones, as split
    assert overrides == convert_command.reader_overrides(out, record)
    cfg = compose_config("train", [*overrides, f"paths.cache_dir={tmp_path / 'cache'}"], tmp_path)
    assert cfg.data.root == str(out)
