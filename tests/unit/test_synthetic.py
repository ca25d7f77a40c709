"""The synthetic mission generator: ESA layout, labels that survive the reader, other layouts."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from esa_lightning.data.readers.esa_adb import read_esa_mission
from esa_lightning.data.readers.esa_csv import read_esa_csv
from esa_lightning.data.readers.kaggle import read_kaggle
from esa_lightning.data.readers.nasa import read_nasa
from esa_lightning.data.readers.synthetic import generate_mission, load_synthetic, main
from esa_lightning.data.safe_pickle import read_pickled_frame
from esa_lightning.data.selection import VAL_DAYS_NULL, UnknownChannels
from esa_lightning.errors import ESAInputError
from tests.helpers import write_nasa

SMALL = {"channels": 8, "groups": 2, "days": 6, "n_telecommands": 6}


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    return generate_mission(
        tmp_path_factory.mktemp("syn") / "m", seed=1, kaggle=True, csv=True, **SMALL
    )


def _read(root: Path, **kw):
    info = json.loads((root / "mission.json").read_text())
    kw.setdefault("counters", info["counters"])
    kw.setdefault("split_date", info["split_date"])
    return read_esa_mission(root, use_cache=False, **kw)


def test_raw_layout(small):
    for name in ("channels.csv", "telecommands.csv", "labels.csv", "anomaly_types.csv"):
        assert (small / name).is_file()
    chans = pd.read_csv(small / "channels.csv")
    assert list(chans.columns) == [
        "Channel",
        "Subsystem",
        "Physical Unit",
        "Group",
        "Target",
        "Categorical",
    ]
    assert len(chans) == 8 and set(chans["Target"]) <= {"YES", "NO"}
    rates = []
    for name in chans["Channel"]:
        frame = read_pickled_frame(small / "channels" / f"{name}.zip")
        assert list(frame.columns) == [name] and isinstance(frame.index, pd.DatetimeIndex)
        assert frame.index.is_monotonic_increasing and frame.index.is_unique
        rates.append(np.median(np.diff(frame.index.asi8)))
    assert len(set(rates)) > 1  # rates differ by channel
    steps = np.diff(read_pickled_frame(small / "channels/channel_1.zip").index.asi8)
    assert steps.std() > 0  # irregular
    tcs = pd.read_csv(small / "telecommands.csv")
    assert set(tcs["Priority"]) <= {0, 1, 2, 3} and (tcs["Priority"] == 3).sum() >= 2
    info = json.loads((small / "mission.json").read_text())
    assert info["counters"] and set(info["lightweight"]) <= set(chans["Channel"])
    for c in info["counters"]:
        assert (np.diff(read_pickled_frame(small / "channels" / f"{c}.zip").iloc[:, 0]) >= 0).all()


def test_labels_read_back_equal_generated(small):
    m = _read(small)
    raw = pd.read_csv(small / "labels.csv")
    types = pd.read_csv(small / "anomaly_types.csv")
    assert set(raw["ID"]) == set(types["ID"]) == set(m.events["ID"])
    start = pd.to_datetime(raw["StartTime"], utc=True).dt.tz_localize(None)
    end = pd.to_datetime(raw["EndTime"], utc=True).dt.tz_localize(None)
    ev = m.events.sort_values(["ID", "Channel"]).reset_index(drop=True)
    ref = raw.assign(StartTime=start, EndTime=end).merge(types, on="ID")
    ref = ref.sort_values(["ID", "Channel"]).reset_index(drop=True)
    for col in ("ID", "Channel", "StartTime", "EndTime", "Category", "Locality", "Length"):
        assert (ev[col].to_numpy() == ref[col].to_numpy()).all(), col
    # masks: floor the start, ceil the end, lower code wins
    codes = {"Anomaly": 1, "Rare Event": 2, "Communication Gap": 3}
    grid = pd.DatetimeIndex(m.timestamps)
    expected = np.zeros_like(np.asarray(m.labels))
    names = m.channel_names
    for _, r in ref.sort_values("Category", key=lambda s: -s.map(codes)).iterrows():
        a = grid.searchsorted(r["StartTime"].floor("30s"))
        b = grid.searchsorted(r["EndTime"].ceil("30s"), side="right")
        expected[a:b, names.index(r["Channel"])] = codes[r["Category"]]
    np.testing.assert_array_equal(np.asarray(m.labels), expected)
    # every event marks at least one grid point on each of its channels
    for _, r in ref.iterrows():
        a = grid.searchsorted(r["StartTime"].floor("30s"))
        assert expected[a, names.index(r["Channel"])] > 0


def test_every_event_kind_in_train_and_test(small):
    m = _read(small)
    first = m.events.groupby("ID").first()
    kinds = set(zip(first["Category"], first["Locality"], first["Length"], strict=True))
    assert ("Anomaly", "Global", "Point") in kinds and ("Anomaly", "Local", "Point") in kinds
    assert ("Anomaly", "Global", "Subsequence") in kinds
    assert ("Anomaly", "Local", "Subsequence") in kinds
    assert {"Rare Event", "Communication Gap"} <= set(first["Category"])
    assert {"Univariate", "Multivariate"} <= set(first["Dimensionality"])
    multi = m.events.groupby("ID")["Channel"].nunique()
    assert (multi > 1).any()
    split = m.timestamps[m.test_start]
    for part in (first[first["StartTime"] < split], first[first["StartTime"] >= split]):
        assert {"Anomaly", "Rare Event"} <= set(part["Category"])


def test_anomalies_change_the_signal(small):
    """A level shift moves its segment's mean away from the surrounding data."""
    m = _read(small)
    first = m.events.groupby("ID").first()
    grid = pd.DatetimeIndex(m.timestamps)
    moved = []
    for eid in first.index[first["Length"] == "Subsequence"]:
        seg = m.events[m.events["ID"] == eid].iloc[0]
        if first.loc[eid, "Category"] == "Communication Gap":
            continue
        c = m.channel_names.index(seg["Channel"])
        a, b = grid.searchsorted(seg["StartTime"]), grid.searchsorted(seg["EndTime"])
        if b - a < 5:
            continue
        inside = np.asarray(m.values[a:b, c])
        around = np.asarray(m.values[max(0, a - (b - a)) : a, c])
        if len(around) > 5:
            moved.append(
                abs(inside.mean() - around.mean()) / (around.std() + 1e-9)
                + abs(np.log((inside.std() + 1e-9) / (around.std() + 1e-9)))
            )
    assert np.median(moved) > 0.3


def test_deterministic_by_seed(tmp_path):
    args = {"channels": 4, "groups": 2, "days": 2, "n_telecommands": 4}
    a = generate_mission(tmp_path / "a", seed=5, **args)
    b = generate_mission(tmp_path / "b", seed=5, **args)
    c = generate_mission(tmp_path / "c", seed=6, **args)
    for name in ("labels.csv", "anomaly_types.csv", "channels.csv", "telecommands.csv"):
        assert (a / name).read_text() == (b / name).read_text()
    fa = read_pickled_frame(a / "channels/channel_3.zip")
    pd.testing.assert_frame_equal(fa, read_pickled_frame(b / "channels/channel_3.zip"))
    fc = read_pickled_frame(c / "channels/channel_3.zip")
    assert len(fa) != len(fc) or not np.array_equal(fa.to_numpy(), fc.to_numpy())


def test_kaggle_layout(small):
    m = _read(small)
    out = small / "kaggle"
    train = pq.read_table(out / "train.parquet").to_pandas()
    test = pq.read_table(out / "test.parquet").to_pandas()
    values = [*m.channel_names, *m.telecommand_names]
    assert list(train.columns) == ["id", *values, "is_anomaly"]
    assert list(test.columns) == ["id", *values]
    assert train["id"].tolist() == list(range(m.test_start))
    assert test["id"].tolist() == list(range(m.test_start, m.n_rows))
    np.testing.assert_array_equal(train["is_anomaly"], m.is_anomaly[: m.test_start])
    np.testing.assert_array_equal(test[m.channel_names].to_numpy(), m.values[m.test_start :])
    targets = pd.read_csv(out / "target_channels.csv").iloc[:, 0].tolist()
    assert targets == m.target_channels


def test_esa_csv_layout(small):
    m = _read(small)
    train = pd.read_csv(small / "csv/synthetic.train.csv")
    test = pd.read_csv(small / "csv/synthetic.test.csv")
    values = [*m.channel_names, *m.telecommand_names]
    assert list(train.columns) == ["timestamp", *values, *[f"is_anomaly_{c}" for c in values]]
    assert len(train) == m.test_start and len(test) == m.n_rows - m.test_start
    assert train["timestamp"].iloc[0] == pd.Timestamp(m.timestamps[0]).strftime("%Y-%m-%d %H:%M:%S")
    labels = train[[f"is_anomaly_{c}" for c in m.channel_names]].to_numpy()
    np.testing.assert_array_equal(labels, np.asarray(m.labels)[: m.test_start])
    np.testing.assert_allclose(
        test[m.channel_names].to_numpy(), m.values[m.test_start :], rtol=1e-6
    )


@pytest.mark.parametrize("reader", [load_synthetic, read_esa_mission])
def test_data_of_another_layout_names_the_data_to_read_it_with(small, tmp_path, reader):
    """``train.py``/``predict.py data.root=<a Kaggle folder>`` without ``data=kaggle`` reads it
    with the synthetic reader (the default ``data=``): 'folder exists but holds no mission (no
    channels.csv)', a parquet file a NotADirectoryError; ``data=esa`` said 'channels.csv: file
    not found'. A folder or file of another known layout is named so, with the ``data=`` that
    reads it; nothing is generated or cached."""
    layouts = [
        (small / "kaggle", "kaggle"),
        (small / "kaggle" / "test.parquet", "kaggle"),
        (small / "csv", "esa_csv"),  # its channels.csv beside the CSV files
        (small / "csv" / "synthetic.train.csv", "esa_csv"),
        (write_nasa(tmp_path / "nasa"), "nasa"),
    ]
    for root, kind in layouts:
        with pytest.raises(ESAInputError) as caught:
            reader(root, cache_dir=tmp_path / "cache")
        assert caught.value.path == str(root), caught.value
        assert f"read it with data={kind} " in str(caught.value), caught.value
    assert not (tmp_path / "cache").exists()
    assert sorted(p.name for p in (small / "kaggle").iterdir()) == [
        "target_channels.csv", "test.parquet", "train.parquet"
    ]


@pytest.mark.parametrize(
    ("reader", "reads"), [(read_kaggle, "kaggle"), (read_esa_csv, "esa_csv"), (read_nasa, "nasa")]
)
def test_a_reader_given_another_layout_names_the_data_to_read_it_with(
    small, tmp_path, reader, reads
):
    """data=kaggle given an ESA mission folder said only 'no train.parquet or test.parquet in
    the folder' (data=esa_csv: 'need exactly one *.train.csv', data=nasa: 'labeled_anomalies.csv:
    no such file'); a file of another layout gave a parquet or CSV parse error. Each reader
    names the layout it found and the data= that reads it, before anything is cached."""
    layouts = [
        (small, "esa"),  # channels.csv beside channels/
        (small / "kaggle", "kaggle"),
        (small / "kaggle" / "test.parquet", "kaggle"),
        (small / "csv", "esa_csv"),
        (small / "csv" / "synthetic.train.csv", "esa_csv"),
        (write_nasa(tmp_path / "nasa"), "nasa"),
    ]
    options = {} if reads == "nasa" else {"cache_dir": tmp_path / "cache"}
    for root, kind in layouts:
        if kind == reads:
            continue
        with pytest.raises(ESAInputError) as caught:
            reader(root, **options)
        assert caught.value.path == str(root), caught.value
        assert f"read it with data={kind} and the same data.root" in str(caught.value), caught.value
    with pytest.raises(ESAInputError) as caught:  # the NASA listing is no ESA CSV file
        reader(tmp_path / "nasa" / "labeled_anomalies.csv", **options)
    assert "data=esa_csv" not in str(caught.value), caught.value
    assert not (tmp_path / "cache").exists()


def test_load_synthetic_says_where_it_generates_a_mission(tmp_path, caplog):
    """A data.root with no mission (a mistyped path too) was filled with a generated mission
    without a word: predict.py data.root=<typo> scored that mission."""
    import logging

    root = tmp_path / "typo"
    gen = {"channels": 2, "groups": 1, "days": 1, "seed": 0}
    with caplog.at_level(logging.INFO, logger="esa_lightning"):
        load_synthetic(root, generate=gen, use_cache=False)
    said = [r.getMessage() for r in caplog.records if str(root) in r.getMessage()]
    assert len(said) == 1 and "generating" in said[0], caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="esa_lightning"):
        load_synthetic(root, generate=gen, use_cache=False)  # read, not generated again
    assert not [r for r in caplog.records if "generating" in r.getMessage()]


def test_load_synthetic_generates_once(tmp_path):
    root = tmp_path / "data" / "synthetic"
    m = load_synthetic(
        root,
        generate={"channels": 5, "groups": 2, "days": 3, "seed": 2},
        cache_dir=tmp_path / "cache",
        val_days=1,
    )
    info = json.loads((root / "mission.json").read_text())
    assert m.channel_names == [f"channel_{i}" for i in range(1, 6)]
    assert m.meta["counters"] == info["counters"]
    assert m.timestamps[m.test_start] == np.datetime64(pd.Timestamp(info["split_date"]), "ns")
    assert m.val_start < m.test_start
    assert not [p for p in (tmp_path / "data").iterdir() if p.name != "synthetic"]
    stamp = (root / "labels.csv").stat().st_mtime_ns
    m2 = load_synthetic(root, cache_dir=tmp_path / "cache", val_days=1)
    assert (root / "labels.csv").stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(m.values, m2.values)


def test_validation_by_default_is_the_last_sixth_of_the_mission(tmp_path):
    """val_days unset (``data.val_days: null``): the default 42-day mission keeps its 7 days,
    a shorter mission gets the same share of its days; a val_days given is kept."""
    gen = {"channels": 2, "groups": 1, "n_telecommands": 0}
    default = load_synthetic(tmp_path / "d42", generate={**gen, "days": 42}, use_cache=False)
    seven = load_synthetic(tmp_path / "d42", val_days=7, use_cache=False)
    assert (default.val_start, default.test_start) == (seven.val_start, seven.test_start)
    short = load_synthetic(tmp_path / "d4", generate={**gen, "days": 4}, use_cache=False)
    sixth = load_synthetic(tmp_path / "d4", val_days=4 / 6, use_cache=False)
    assert 0 < short.val_start < short.test_start
    assert (short.val_start, short.test_start) == (sixth.val_start, sixth.test_start)
    given = load_synthetic(tmp_path / "d4", val_days=1, use_cache=False)
    assert given.val_start < short.val_start
    # a folder whose mission.json records no generator: a sixth of the mission's span
    shutil.copytree(tmp_path / "d4", tmp_path / "other")
    record = json.loads((tmp_path / "other" / "mission.json").read_text())
    del record["generator"]
    (tmp_path / "other" / "mission.json").write_text(json.dumps(record))
    other = load_synthetic(tmp_path / "other", use_cache=False)
    assert other.test_start == short.test_start
    assert abs(other.val_start - short.val_start) <= 4  # the span: 4 days less a few minutes
    assert other.meta[VAL_DAYS_NULL]["set_by"].startswith("the mission's span")


def test_a_validation_range_without_training_rows_names_data_synthetics_default(small):
    """data=synthetic's val_days null is a sixth of the mission: require_training_rows names it
    (the reader records it in the mission's meta), and names no such default for the ESA
    reader, whose val_days null means no validation range."""
    from esa_lightning.data.selection import require_training_rows

    def refusal(mission, val_days, **data):
        with pytest.raises(ESAInputError) as err:
            require_training_rows(mission, {"val_days": val_days, **data})
        return str(err.value)

    early = "2000-01-01T12:00"  # half a day of training; a sixth of the mission is a day
    null = load_synthetic(small, generate=SMALL, split_date=early, use_cache=False)
    assert refusal(null, None, generate=SMALL) == (
        "data.val_days=null (a sixth of the mission) covers the whole training range (1440 "
        "rows over 0.50 days): no training rows are left; choose data.val_days under 0.49 "
        "(under 0.24 keeps more training than validation)"
    )
    given = load_synthetic(small, generate=SMALL, val_days=5, use_cache=False)
    fits = "choose data.val_days under 3.99 (under 1.99 keeps more training than validation)"
    assert refusal(given, 5, generate=SMALL) == (
        "data.val_days=5 covers the whole training range (11520 rows over 4.00 days): no "
        f"training rows are left; {fits}, or data.val_days=null: a sixth of the mission "
        "(data.generate.days=6)"
    )
    esa = _read(small, val_days=5)
    assert refusal(esa, 5).endswith(f"no training rows are left; {fits}")


@pytest.mark.parametrize("days", [1, 0.5])
def test_a_mission_of_a_day_or_less_has_training_and_test_rows(tmp_path, days):
    """The test range started at 60 % of the days rounded to a whole day: day 0 for a mission
    under 0.84 days (no training row), day 1 for a one-day mission (no test row). Where the whole
    day leaves a range empty, the split is 60 % into the mission on its row grid."""
    gen = {"channels": 2, "groups": 1, "n_telecommands": 0, "days": days}
    m = load_synthetic(tmp_path / "m", generate=gen, use_cache=False)
    assert 0 < m.val_start < m.test_start < m.n_rows
    assert m.test_start == pytest.approx(0.6 * m.n_rows, abs=2)


@pytest.mark.parametrize(("days", "split"), [(42, "2000-01-26"), (3, "2000-01-03"),
                                             (1.5, "2000-01-02")])
def test_the_split_is_a_whole_day_where_that_leaves_both_ranges(tmp_path, days, split):
    root = generate_mission(tmp_path / "m", channels=1, groups=1, days=days, n_telecommands=0)
    assert json.loads((root / "mission.json").read_text())["split_date"] == split


def test_channels_the_mission_to_generate_lacks_are_refused_before_generating_it(tmp_path):
    """Channels asked for by name that the mission to be generated would not have (predict.py
    reading a detector's channels from the default data=synthetic) were refused only once the
    mission was generated: the folder was written for nothing. The same error now comes first;
    channels it has are read."""
    root = tmp_path / "data" / "synthetic"
    options = {"channels": 5, "groups": 2, "days": 3, "seed": 2}
    with pytest.raises(UnknownChannels, match=r"unknown channel\(s\) \['bus_1'\]") as caught:
        load_synthetic(root, generate=options, channels=["channel_1", "bus_1"], use_cache=False)
    assert caught.value.names == ["bus_1"]
    assert not root.exists()
    m = load_synthetic(root, generate=options, channels=["channel_5", "channel_2"], val_days=1,
                       use_cache=False)
    assert m.channel_names == ["channel_5", "channel_2"]


def test_two_runs_generating_the_default_at_once_both_read_the_first_ones(tmp_path, monkeypatch):
    """Two runs on first use (a parallel sweep, two shells) both generate the mission; the one
    that finishes second read the other's instead of failing on the folder it found there."""
    import esa_lightning.data.readers.synthetic as synthetic

    root = tmp_path / "data" / "synthetic"
    options = {"channels": 5, "groups": 2, "days": 3, "seed": 2}
    real = synthetic.generate_mission

    def while_another_run_finishes(out, **kw):
        real(root, **kw)  # the other run renamed its mission onto root meanwhile
        real(out, **kw)

    monkeypatch.setattr(synthetic, "generate_mission", while_another_run_finishes)
    m = load_synthetic(root, generate=options, cache_dir=tmp_path / "cache", val_days=1)
    assert m.channel_names == [f"channel_{i}" for i in range(1, 6)]
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["synthetic"]


def test_a_mission_generated_otherwise_warns_only_for_settings_asked_for(tmp_path):
    """data.root=<a mission the user generated> with the config's generator settings (the
    generator's defaults) warned 'requested {channels: 16, days: 42, ...}' on every run."""
    import warnings

    root = generate_mission(tmp_path / "own", channels=5, groups=2, days=3, seed=2)
    config_defaults = {"channels": 16, "groups": None, "days": 42, "seed": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_synthetic(root, generate=config_defaults, cache_dir=tmp_path / "cache", val_days=1)
    with pytest.warns(UserWarning, match=r"requested \{'channels': 7\}"):
        load_synthetic(root, generate={**config_defaults, "channels": 7},
                       cache_dir=tmp_path / "cache", val_days=1)


def test_cli(tmp_path, capsys):
    main(
        [
            "--out",
            str(tmp_path / "cli"),
            "--channels",
            "3",
            "--groups",
            "1",
            "--days",
            "1",
            "--seed",
            "4",
        ]
    )
    assert (tmp_path / "cli/channels/channel_3.zip").is_file()
    assert "3 channels" in capsys.readouterr().out


def test_documented_module_command(tmp_path):
    """``python -m esa_lightning.data.synthetic`` still runs the generator."""
    out = tmp_path / "cmd"
    args = ["--out", str(out), "--channels", "2", "--groups", "1", "--days", "1", "--seed", "1"]
    done = subprocess.run(
        [sys.executable, "-m", "esa_lightning.data.synthetic", *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert (out / "channels/channel_2.zip").is_file()
    assert "2 channels" in done.stdout


@pytest.mark.parametrize(
    ("option", "value"),
    [("--start", "2000-13-45"), ("--period", "abc"), ("--split-date", "soon")],
)
def test_cli_refuses_a_bad_date_or_period_in_one_line_before_writing(
    tmp_path, capsys, option, value
):
    """A date or period the generator cannot read is one line naming it, and ``--out`` stays
    unmade, so the corrected command can write there."""
    out = tmp_path / "bad"
    with pytest.raises(SystemExit) as stop:
        main(["--out", str(out), "--channels", "2", "--groups", "1", "--days", "1",
              "--kaggle", option, value])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and value in err, err
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--channels", "2", "--groups", "5"], ["groups=5", "channels (2)"]),
        (["--channels", "4", "--groups", "2", "--subsystems", "3"],
         ["subsystems=3", "groups (2)"]),
        (["--channels", "4", "--groups", "2", "--subsystems", "0"], ["subsystems=0"]),
    ],
)
def test_cli_refuses_more_groups_than_channels_in_one_line_before_writing(
    tmp_path, capsys, args, needles
):
    """--groups 5 with --channels 2 made 2 groups while mission.json recorded groups: 5 (and
    --subsystems beyond the groups fewer subsystems than recorded)."""
    out = tmp_path / "bad"
    with pytest.raises(SystemExit) as stop:
        main(["--out", str(out), "--days", "1", *args])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    assert not out.exists()


def test_cli_without_groups_makes_at_most_one_group_a_channel_and_records_it(tmp_path):
    out = tmp_path / "two"
    main(["--out", str(out), "--channels", "2", "--days", "1"])
    recorded = json.loads((out / "mission.json").read_text())["generator"]
    groups = pd.read_csv(out / "channels.csv")["Group"].nunique()
    assert recorded["groups"] == groups == 2


def test_cli_help_says_groups_are_at_most_the_channels(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "at most --channels" in help_text and "at most --groups" in help_text


def test_a_data_folder_that_cannot_be_made_is_one_error_naming_it(tmp_path):
    """``paths.data_dir`` under a file (or a folder the user cannot write): generating the
    default mission there is a user error naming the folder, not an ``OSError``."""
    in_the_way = tmp_path / "notes.txt"
    in_the_way.write_text("mine")
    root = in_the_way / "synthetic_default"
    with pytest.raises(ESAInputError, match=r"notes\.txt.*: cannot write \("):
        load_synthetic(root, generate={"channels": 2, "groups": 1, "days": 1},
                       cache_dir=tmp_path / "cache", val_days=0.2)
    assert in_the_way.read_text() == "mine"


def test_fewer_channels_than_the_default_groups_need_no_groups_setting(tmp_path):
    """``data.generate.channels=2`` alone (the config's other generator settings as they are)
    was refused with 'groups=4: must be at most the channels (2)', naming a setting the user
    never gave; groups left unset are 4, or the channels when fewer, as on the command line."""
    import yaml

    from esa_lightning.install import config_dir

    config = yaml.safe_load((config_dir() / "data" / "synthetic.yaml").read_text())["generate"]
    gen = {**config, "channels": 2, "days": 1, "n_telecommands": 0}
    m = load_synthetic(tmp_path / "m", generate=gen, use_cache=False)
    assert m.channel_names == ["channel_1", "channel_2"]
    assert json.loads((tmp_path / "m" / "mission.json").read_text())["generator"]["groups"] == 2
    # a groups value given is checked as before
    with pytest.raises(ESAInputError, match="groups=3: must be at most the channels"):
        load_synthetic(tmp_path / "n", generate={**gen, "groups": 3}, use_cache=False)


def test_the_validation_share_names_the_recorded_days_of_a_mission_read_as_generated(tmp_path):
    """An existing mission generated with other days than ``data.generate.days`` is read as it
    was generated: its validation share comes from the recorded days, and the meta that
    require_training_rows quotes names them, not the config's days that decided nothing."""
    from esa_lightning.data.selection import require_training_rows

    gen = {"channels": 2, "groups": 1, "n_telecommands": 0}
    root = generate_mission(tmp_path / "m", days=3, **gen)
    with pytest.warns(UserWarning, match="reusing the existing synthetic mission"):
        mission = load_synthetic(root, generate={**gen, "days": 4}, val_days=5, use_cache=False)
    set_by = mission.meta[VAL_DAYS_NULL]["set_by"]
    assert "days=3" in set_by and "mission.json" in set_by and "data.generate" not in set_by
    with pytest.raises(ESAInputError) as err:
        require_training_rows(mission, {"val_days": 5})
    assert str(err.value).endswith(f"data.val_days=null: a sixth of the mission ({set_by})")


def test_cli_stopped_half_way_leaves_no_half_written_mission(tmp_path, monkeypatch):
    """The command line generated straight into --out: stopped half-way (here while writing the
    Kaggle copy; Ctrl-C, a full disk) it left a mission without its Kaggle test file, or without
    mission.json, which load_synthetic then read; now it writes into a temporary folder renamed
    to --out once complete, and one left by a killed run is removed by the next."""
    import esa_lightning.data.readers.synthetic as synthetic
    from esa_lightning import io

    out = tmp_path / "mission"
    stale = tmp_path / f"{io.TMP_PREFIX}{io.OWNER_MARK}.{io._host()}.999999999.mission.abc"
    (stale / "channels").mkdir(parents=True)  # a killed generation's (pid 999999999 ended)

    def stop(mission, folder):
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic, "write_kaggle_layout", stop)
    with pytest.raises(KeyboardInterrupt):
        main(["--out", str(out), "--channels", "2", "--groups", "1", "--days", "1", "--kaggle"])
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    monkeypatch.undo()
    main(["--out", str(out), "--channels", "2", "--groups", "1", "--days", "1", "--kaggle"])
    assert (out / "mission.json").is_file() and (out / "kaggle" / "test.parquet").is_file()
    assert oct(out.stat().st_mode & 0o777) == oct(0o777 & ~io.current_umask())


def test_a_series_file_holds_one_member_named_after_its_file(tmp_path):
    """The zip of a written series holds one pickle named as ESA-ADB's are (``channel_1.zip``
    holds ``channel_1``), not after the temporary name it was written under (which carried the
    machine's host name and a process id)."""
    import zipfile

    from esa_lightning.data.readers.synthetic import _write_series

    path = tmp_path / "channel_1.zip"
    _write_series(path, "channel_1", np.arange(3, dtype=np.int64) * 30 * 10**9, np.ones(3))
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist() == ["channel_1"]
    assert pd.read_pickle(path)["channel_1"].tolist() == [1.0, 1.0, 1.0]
