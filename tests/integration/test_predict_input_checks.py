"""``predict.py`` checks the rows it scores as ``Detector.predict(df)`` checks a DataFrame: the
same warning for keys missing from the grid or the id sequence (rows scored as given), with the
file named instead of ``DataFrame``."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import esa_lightning
from esa_lightning.data import READERS
from esa_lightning.data.frame import InputWarning
from esa_lightning.data.readers.esa_csv import read_esa_csv
from esa_lightning.data.readers.kaggle import read_kaggle
from esa_lightning.errors import ESAInputError
from tests.conftest import TrainedRun
from tests.helpers import write_esa_csv, write_kaggle
from tests.integration.test_python_api import predict_quietly, zscore_detector
from tests.integration.test_reliability_cli import assert_one_line_error, run_entry

GAP = range(100, 121)  # the rows dropped: 21 keys missing


def predicted(detector: Path, overrides: list[str], tmp_path: Path) -> list[str]:
    """The input warnings of ``predict.py ckpt=detector overrides`` (range=all)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        esa_lightning.predict(
            detector,
            [*overrides, "range=all", "max_figures=0"],
            output_dir=tmp_path / "out",
            root_dir=tmp_path,
        )
    return [str(w.message) for w in caught if issubclass(w.category, InputWarning)]


def api_message(detector, frame: pd.DataFrame) -> str:
    """The API's warning about the missing keys or the rows off the grid, without its
    ``DataFrame: `` source."""
    _, messages = predict_quietly(detector, frame)
    [message] = [m for m in messages if "missing" in m or "off the grid" in m]
    return message.removeprefix("DataFrame: ")


def test_esa_csv_rows_missing_from_the_grid_are_warned_about_as_the_api_does(tmp_path):
    whole = write_esa_csv(tmp_path / "whole.csv", n=300)
    det = zscore_detector(read_esa_csv(whole, cache_dir=tmp_path / "c1"), tmp_path / "det", 4.0)
    frame = pd.read_csv(whole)
    path = tmp_path / "gap.csv"
    frame.drop(index=GAP).to_csv(path, index=False)

    messages = predicted(tmp_path / "det", ["data=esa_csv", f"data.root={path}"], tmp_path)
    expected = api_message(det, frame.drop(index=GAP).set_index(
        pd.DatetimeIndex(pd.to_datetime(frame["timestamp"].drop(index=GAP)))
    ).drop(columns="timestamp"))
    assert f"{path}: {expected}" in messages, messages
    assert "21 timestamp(s) of the grid missing" in expected


def test_kaggle_ids_missing_are_warned_about_as_the_api_does(tmp_path):
    root = tmp_path / "kaggle"
    root.mkdir()
    write_kaggle(root / "train.parquet", n=300)
    test = pd.read_parquet(write_kaggle(tmp_path / "test.parquet", n=300, labels=False))
    test = test.assign(id=test["id"] + 300).drop(index=GAP)
    test.to_parquet(root / "test.parquet", index=False)
    det = zscore_detector(read_kaggle(root, cache_dir=tmp_path / "c1"), tmp_path / "det", 4.0)

    messages = predicted(tmp_path / "det", ["data=kaggle", f"data.root={root}"], tmp_path)
    expected = api_message(det, test)
    assert f"{root}: {expected}" in messages, messages
    assert "21 id(s) missing" in expected


def test_predict_py_s_log_holds_the_input_warnings_it_printed(tmp_path):
    """``predict.log`` in the run folder held the logged lines (the stuck-channel rule's) but
    not the input warnings (ids missing, NaN cells repaired, readings beyond float32): an
    operator reading the folder later could not see why such rows alarmed. Now each warning
    printed is in the log too, once."""
    root = tmp_path / "kaggle"
    root.mkdir()
    write_kaggle(root / "train.parquet", n=300)
    test = pd.read_parquet(write_kaggle(tmp_path / "test.parquet", n=300, labels=False))
    test.assign(id=test["id"] + 300).drop(index=GAP).to_parquet(root / "test.parquet",
                                                                index=False)
    zscore_detector(read_kaggle(root, cache_dir=tmp_path / "c1"), tmp_path / "det", 4.0)

    proc = run_entry("predict.py", [f"ckpt={tmp_path / 'det'}", "data=kaggle",
                                    f"data.root={root}", "max_figures=0"], tmp_path,
                     PYTHONWARNINGS="default")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "21 id(s) missing" in proc.stderr
    log = (tmp_path / "run" / "predict.log").read_text()
    assert log.count("21 id(s) missing") == 1, log
    assert "InputWarning" in log


def test_rows_without_a_missing_key_are_not_warned_about(tmp_path):
    path = write_esa_csv(tmp_path / "whole.csv", n=300)
    zscore_detector(read_esa_csv(path, cache_dir=tmp_path / "c1"), tmp_path / "det", 4.0)
    messages = predicted(tmp_path / "det", ["data=esa_csv", f"data.root={path}"], tmp_path)
    assert not [m for m in messages if "missing" in m], messages


def test_a_single_missing_row_is_counted(tmp_path):
    whole = write_esa_csv(tmp_path / "whole.csv", n=300)
    zscore_detector(read_esa_csv(whole, cache_dir=tmp_path / "c1"), tmp_path / "det", 4.0)
    path = tmp_path / "gap.csv"
    pd.read_csv(whole).drop(index=150).to_csv(path, index=False)
    messages = predicted(tmp_path / "det", ["data=esa_csv", f"data.root={path}"], tmp_path)
    assert any(m.startswith(f"{path}: 1 timestamp(s) of the grid missing") for m in messages)


def irregular_csv(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """A CSV sampled irregularly (steps of 40, 20, 50 and 10 s: none skips a whole time of its
    median grid) and its frame."""
    frame = pd.read_csv(write_esa_csv(tmp_path / "whole.csv", n=300))
    jitter = pd.to_timedelta([0, 10, 0, 20] * 75, unit="s")  # steps 40, 20, 50, 10 s
    frame["timestamp"] = (pd.to_datetime(frame["timestamp"]) + jitter).dt.strftime(
        "%Y-%m-%d %H:%M:%S"
    )
    path = tmp_path / "irregular.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_irregular_timestamps_are_named_as_off_the_grid_not_as_zero_missing(tmp_path):
    """A CSV sampled irregularly is scored as given: the warning says its rows are off the
    grid, never that 0 timestamps are missing."""
    path, frame = irregular_csv(tmp_path)
    mission = read_esa_csv(path, cache_dir=tmp_path / "c1")
    det = zscore_detector(mission, tmp_path / "det", 4.0)

    messages = predicted(tmp_path / "det", ["data=esa_csv", f"data.root={path}"], tmp_path)
    times = pd.DatetimeIndex(pd.to_datetime(frame["timestamp"]))
    expected = api_message(det, frame.set_index(times).drop(columns="timestamp"))
    assert f"{path}: {expected}" in messages, messages
    assert not any("0 timestamp(s)" in m for m in messages), messages
    off = np.flatnonzero(np.diff(times) % mission.period != pd.Timedelta(0))
    assert 0 < len(off) < len(times) - 1  # some steps are whole periods, most are not
    assert expected.startswith(
        f"{len(off)} step(s) between rows are not a whole number of grid periods "
        f"({mission.period}): the rows are off the grid (first after "
        f"{times[off[0]].strftime('%Y-%m-%dT%H:%M:%S')}"
    ), expected


def test_data_lacking_the_trained_channels_names_the_data_the_detector_was_trained_on(tmp_path):
    """``predict.py ckpt=DET`` reads the data it is given (``data=synthetic`` when none is
    given), not the detector's: for a mission of one's own with ``data=synthetic`` the error
    named only the channels the generated mission lacked. It now also names the data= and
    data.root= of the training run; new data of the training layout lacking a channel does not
    get it. Without ``data=`` it is refused before that (a detector trained on other data than
    the default), naming the data too. From ``esa_lightning.predict`` the hint was worded for
    the command line ("python predict.py reads the data= ... it is given"); it names the API."""
    frame = pd.read_csv(write_esa_csv(tmp_path / "plain.csv", n=300))
    own = tmp_path / "own.csv"
    frame.rename(columns=lambda c: c.replace("channel_", "bus_")).to_csv(own, index=False)
    run = esa_lightning.train(
        ["experiment=smoke", "data=esa_csv", f"data.root={own}", "logger=none", "test=false"],
        output_dir=tmp_path / "run",
        root_dir=tmp_path,
    )
    messages = {}
    for name, data in (("default", []), ("synthetic", ["data=synthetic"]),
                       ("same_layout", ["data=esa_csv", f"data.root={tmp_path / 'plain.csv'}"])):
        with pytest.raises(ESAInputError) as caught:
            esa_lightning.predict(run.output_dir / "detector", [*data, "range=all"],
                                  output_dir=tmp_path / name, root_dir=tmp_path)
        messages[name] = str(caught.value)
    assert "missing channel(s) ['bus_1', 'bus_2']" in messages["synthetic"], messages
    assert not (tmp_path / "datasets" / "synthetic_default").exists()  # refused, not generated
    assert f"trained on data=esa_csv data.root={own};" in messages["synthetic"], messages
    # in the API's words: its overrides give the data, not predict.py's command line
    assert "; esa_lightning.predict reads the data= and data.root= of its overrides, " \
        "data=synthetic without them)" in messages["synthetic"], messages
    assert f"trained on other data: data=esa_csv data.root={own};" in messages["default"]
    assert messages["same_layout"].endswith("['bus_1', 'bus_2'] the detector was trained on")


def test_predict_warns_once_about_rows_off_the_grid(tmp_path):
    """The reader warns about rows off the grid at every read (so training does), and
    predict.py about the rows it scores, in ``Detector.predict``'s words: predict.py gave both
    for the same rows. It gives its own, once; a read of the same file still warns."""
    path, frame = irregular_csv(tmp_path)
    with pytest.warns(UserWarning, match="off the grid"):
        mission = read_esa_csv(path, cache_dir=tmp_path / "c1")
    zscore_detector(mission, tmp_path / "det", 4.0)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        esa_lightning.predict(
            tmp_path / "det",
            ["data=esa_csv", f"data.root={path}", "range=all", "max_figures=0"],
            output_dir=tmp_path / "out",
            root_dir=tmp_path,
        )
    [said] = [w for w in caught if "off the grid" in str(w.message)]
    assert issubclass(said.category, InputWarning), said
    off = np.diff(pd.to_datetime(frame["timestamp"])) % mission.period != pd.Timedelta(0)
    assert str(said.message).startswith(f"{path}: {off.sum()} step(s) "), said.message


def test_rows_off_the_grid_only_in_the_context_are_said_to_be_context_not_scored(tmp_path):
    """The test range is scored with the rows before it as its first windows' context. Rows
    off the grid among those only were not said at all (the reader's warning is left out of
    predict.py's read, its own looked at the rows scored): the warning now says where they are,
    the context read before the range, not scored; rows off the grid in the range get the
    warning of the rows scored, as before."""
    frame = pd.read_csv(write_esa_csv(tmp_path / "whole.csv", n=400))
    times = pd.to_datetime(frame["timestamp"])
    split = times[300]  # the test range: rows 300-399
    for name, row in (("context", 297), ("scored", 350)):
        jittered = frame.copy()
        jittered.loc[row, "timestamp"] = (times[row] + pd.Timedelta("10s")).strftime(
            "%Y-%m-%d %H:%M:%S")
        jittered.to_csv(tmp_path / f"{name}.csv", index=False)
    data = ["data=esa_csv", f"data.split_date={split}"]
    esa_lightning.train(["model=window_pca", "datamodule=windows", "datamodule.detrend=null",
                         *data, f"data.root={tmp_path / 'context.csv'}", "test=false",
                         "logger=none"], output_dir=tmp_path / "train", root_dir=tmp_path)
    detector = tmp_path / "train" / "detector"
    context = esa_lightning.Detector.load(detector).context_rows
    assert 3 <= context < 300  # row 297 is read as context, row 0 is not

    said = {}
    for name in ("context", "scored"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            esa_lightning.predict(detector, [*data, f"data.root={tmp_path / name}.csv",
                                             "range=test", "max_figures=0"],
                                  output_dir=tmp_path / name, root_dir=tmp_path)
        said[name] = [str(w.message) for w in caught if "off the grid" in str(w.message)]
    first, period = times[296].strftime("%Y-%m-%dT%H:%M:%S"), pd.Timedelta("30s")
    [message] = said["context"]
    assert message.startswith(f"{tmp_path / 'context.csv'}: 2 step(s) between rows are not a "
                              f"whole number of grid periods ({period}): the rows are off the "
                              f"grid (first after {first}"), message
    assert "the context read before the test range, not scored" in message, message
    [message] = said["scored"]
    assert "(first after " + times[349].strftime("%Y-%m-%dT%H:%M:%S") in message, message
    assert "rows are scored as given" in message and "context" not in message, message


def refused(detector: Path, overrides: list[str], tmp_path: Path) -> ESAInputError:
    """The error ``predict.py ckpt=detector overrides`` stops with; it writes no folder."""
    with pytest.raises(ESAInputError) as caught:
        esa_lightning.predict(detector, [*overrides, "max_figures=0"],
                              output_dir=tmp_path / "refused", root_dir=tmp_path)
    assert not (tmp_path / "refused").exists()
    return caught.value


def scored(detector: Path, overrides: list[str], tmp_path: Path) -> None:
    """``predict.py ckpt=detector overrides`` scores and writes its submission."""
    out = tmp_path / "scored"
    esa_lightning.predict(detector, [*overrides, "max_figures=0"], output_dir=out,
                          root_dir=tmp_path)
    assert (out / "submission.csv").is_file()


def test_a_channel_without_a_reading_in_the_range_scored_is_refused_as_the_api_does(tmp_path):
    """A dead sensor: a test file whose channel_2 is NaN throughout. predict.py scored it as
    the training file's last reading, held (a warning counted the repaired cells), while
    ``Detector.predict`` refuses the same rows. Both refuse it now, naming the channel; the
    ranges where it has readings are scored."""
    frame = pd.read_csv(write_esa_csv(tmp_path / "whole.csv", n=300))
    det = zscore_detector(read_esa_csv(tmp_path / "whole.csv", cache_dir=tmp_path / "c1"),
                          tmp_path / "det", 4.0)
    root = tmp_path / "m"
    root.mkdir()
    frame.iloc[:200].to_csv(root / "m.train.csv", index=False)
    test = frame.iloc[200:].assign(channel_2=np.nan)
    test.to_csv(root / "m.test.csv", index=False)

    data = ["data=esa_csv", f"data.root={root}"]
    error = refused(tmp_path / "det", [*data, "range=test"], tmp_path)
    assert (error.path, error.column) == (str(root), "channel_2"), error
    assert "no finite value in the test range" in error.reason, error
    times = pd.DatetimeIndex(pd.to_datetime(test.pop("timestamp")))
    with pytest.raises(ESAInputError, match="channel holds no finite value") as api:
        det.predict(test.set_index(times))
    assert api.value.column == "channel_2"
    for name in ("val", "all"):  # readings in the range: scored
        scored(tmp_path / "det", [*data, f"range={name}"], tmp_path)


def test_a_split_file_and_a_kaggle_test_part_without_a_reading_are_refused(tmp_path):
    """The range scored need not be a file: a single ESA CSV split at data.split_date (the
    test range begins within a byte of the readers' record), or its validation range; and a
    Kaggle test.parquet."""
    frame = pd.read_csv(write_esa_csv(tmp_path / "whole.csv", n=301))
    det = tmp_path / "det"
    zscore_detector(read_esa_csv(tmp_path / "whole.csv", cache_dir=tmp_path / "c1"), det, 4.0)
    split = frame["timestamp"][203]  # row 203: the test range starts mid-byte
    dead = tmp_path / "dead_test.csv"
    frame.assign(channel_1=frame["channel_1"].where(frame.index < 203)).to_csv(dead, index=False)
    data = ["data=esa_csv", f"data.split_date='{split}'", "data.val_fraction=0.2"]
    error = refused(det, [*data, f"data.root={dead}", "range=test"], tmp_path)
    assert error.column == "channel_1" and "in the test range" in error.reason, error
    mission = read_esa_csv(dead, split_date=split, val_fraction=0.2, use_cache=False)
    assert mission.test_start == 203 and mission.val_start % 8  # neither on a byte's edge
    dead_val = tmp_path / "dead_val.csv"
    in_val = (frame.index >= mission.val_start) & (frame.index < mission.test_start)
    frame.assign(channel_2=frame["channel_2"].mask(in_val)).to_csv(dead_val, index=False)
    error = refused(det, [*data, f"data.root={dead_val}", "range=val"], tmp_path)
    assert error.column == "channel_2" and "in the val range" in error.reason, error
    scored(det, [*data, f"data.root={dead_val}", "range=test"], tmp_path)  # readings there

    kaggle = tmp_path / "kaggle"
    kaggle.mkdir()
    write_kaggle(kaggle / "train.parquet", n=300)
    kdet = zscore_detector(read_kaggle(kaggle, cache_dir=tmp_path / "c2"), tmp_path / "kdet", 4.0)
    test = pd.read_parquet(write_kaggle(tmp_path / "test.parquet", n=100, labels=False))
    test.assign(id=test["id"] + 300, channel_2=np.nan).to_parquet(kaggle / "test.parquet")
    error = refused(tmp_path / "kdet", ["data=kaggle", f"data.root={kaggle}"], tmp_path)
    assert (error.path, error.column) == (str(kaggle), "channel_2"), error
    with pytest.raises(ESAInputError, match="channel holds no finite value"):
        kdet.predict(test.assign(channel_2=np.nan))


@pytest.fixture(scope="module")
def nasa_trained(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    """A folder holding a small NASA-layout mission of two series, A-1 and B-1, in ``smap``
    and a detector trained on it (its root_dir) into ``train/detector``, trained once; each
    test starts from a fresh copy at the same path (``nasa_detector``)."""
    from tests.helpers import write_nasa

    folder = tmp_path_factory.mktemp("nasa_trained") / "root"
    rows = [(c, "SMAP", "[[5, 9]]", "[point]", 30) for c in ("A-1", "B-1")]
    root = write_nasa(folder / "smap", n_train=120, rows=rows)
    esa_lightning.train(["model=window_pca", "datamodule=windows", "data=nasa",
                         f"data.root={root}", "test=false", "logger=none"],
                        output_dir=folder / "train", root_dir=folder)
    return TrainedRun(folder).keep()


def nasa_detector(trained: TrainedRun) -> tuple[Path, Path]:
    """(the test's folder, the data folder of the NASA mission in it): the folder holds the
    mission and a detector trained on it into ``train/detector``, as ``nasa_trained`` left
    them; it is the training run's root_dir, so the test uses it as its own."""
    folder = trained.fresh()
    return folder, folder / "smap"


def test_a_nasa_series_without_a_reading_in_its_test_file_is_refused(nasa_trained):
    """NASA's series are scored each on its own: one whose test file is NaN throughout (the
    telemetry column) was scored as its last training reading, held. It is refused, named;
    the validation range (training rows) is scored."""
    tmp_path, root = nasa_detector(nasa_trained)
    test = np.load(root / "test" / "B-1.npy")
    test[:, 0] = np.nan
    np.save(root / "test" / "B-1.npy", test)

    data = ["data=nasa", f"data.root={root}"]
    error = refused(tmp_path / "train" / "detector", [*data, "range=test"], tmp_path)
    assert (error.path, error.column) == (str(root), "B-1"), error
    assert "no finite value in the test range (0 to 29)" in error.reason, error
    scored(tmp_path / "train" / "detector", [*data, "range=val"], tmp_path)


def test_a_nasa_detector_without_data_is_refused_before_the_default_mission_is_made(nasa_trained):
    """A detector of independent series (NASA) scores one grid only as one of its trained
    series. ``predict.py ckpt=DET`` without ``data=`` reads the default synthetic mission: it
    was generated (and read, its cache written) before that refusal. It is now refused before
    anything is generated, read or written, naming the data the detector was trained on;
    so is a synthetic channel chosen that is no trained series."""
    tmp_path, root = nasa_detector(nasa_trained)
    data_dir = tmp_path / "datasets"  # paths.data_dir: the default mission's and cache's home
    before = sorted(data_dir.rglob("*"))
    for overrides in ([], ["data.channels=[channel_1]"], ["data.channels=[channel_1,A-1]"]):
        error = refused(tmp_path / "train" / "detector", overrides, tmp_path)
        assert sorted(data_dir.rglob("*")) == before, overrides  # nothing generated or cached
        assert "the detector scores independent series (NASA layout: A-1, B-1)" in str(error)
        assert f"trained on data=nasa data.root={root};" in str(error), error
        assert error.path == str(data_dir / "synthetic_default"), error


def test_a_nasa_detector_given_grid_data_is_refused_before_it_is_read(nasa_trained):
    """Of the grid readers only ``data=synthetic`` was refused for a NASA detector before it
    was read: ``data=esa_csv``, ``data=kaggle`` and ``data=esa`` were read (their caches
    written) and then refused as one grid of N channels, without the data= given or the data
    the detector was trained on. They are refused before the reader runs, as the synthetic
    mission is; a grid named as a trained series, or one series chosen, is left to the read."""
    from esa_lightning.data.readers.synthetic import generate_mission

    tmp_path, root = nasa_detector(nasa_trained)
    detector = tmp_path / "train" / "detector"
    kaggle = tmp_path / "kaggle"
    kaggle.mkdir()
    write_kaggle(kaggle / "train.parquet", n=300)
    sources = {"esa_csv": write_esa_csv(tmp_path / "plain.csv", n=300), "kaggle": kaggle,
               "esa": generate_mission(tmp_path / "esa", channels=2, days=2)}
    data_dir = tmp_path / "datasets"  # paths.data_dir: the readers' caches
    before = sorted(data_dir.rglob("*"))
    for kind, source in sources.items():
        error = refused(detector, [f"data={kind}", f"data.root={source}"], tmp_path)
        assert sorted(data_dir.rglob("*")) == before, kind  # nothing read into a cache
        assert "the detector scores independent series (NASA layout: A-1, B-1)" in str(error)
        assert f"and the data is one grid of channels (data={kind})" in str(error), error
        assert f"trained on data=nasa data.root={root};" in str(error), error
        assert error.path == str(source), error
    from esa_lightning.jobs.predict_data import refuse_other_layout

    schema = esa_lightning.Detector.load(detector).schema
    for options in ({"root": str(tmp_path / "A-1.csv")},
                    {"root": str(sources["esa_csv"]), "channels": ["B-1"]}):
        refuse_other_layout({"_target_": READERS["esa_csv"], **options}, schema, "")


def test_a_grid_detector_given_nasa_data_is_refused_before_it_is_read(tmp_path, monkeypatch):
    """The reverse: a detector of one grid given ``data=nasa`` read every series and was
    refused with the channels it missed and the series it did not know. It is refused before
    the reader runs, naming the layouts."""
    from tests.helpers import write_nasa

    det = tmp_path / "det"
    zscore_detector(read_esa_csv(write_esa_csv(tmp_path / "whole.csv", n=300),
                                 cache_dir=tmp_path / "c1"), det, 4.0)
    nasa = write_nasa(tmp_path / "smap")

    def not_read(*args, **kwargs):
        raise AssertionError("the NASA folder was read")

    monkeypatch.setattr("esa_lightning.data.readers.nasa.read_nasa", not_read)
    error = refused(det, ["data=nasa", f"data.root={nasa}"], tmp_path)
    assert "the detector scores one grid of channels (channel_1, channel_2)" in str(error)
    assert "data=nasa reads independent series" in str(error), error
    assert error.path == str(nasa), error


#: the smoke run on the default mission generated for 3 days (in the root_dir's datasets/)
SMOKE_3_DAYS = ["experiment=smoke", "data.generate.days=3", "logger=none", "test=false"]


@pytest.fixture(scope="module")
def smoke_3_days(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    """A root_dir whose default mission (``datasets/synthetic_default``, 3 days) was generated
    by ``SMOKE_3_DAYS`` trained into its ``run``, once; each test starts from a fresh copy of
    the whole folder at the same path, as if it had trained the run there itself."""
    folder = tmp_path_factory.mktemp("smoke_3_days") / "root"
    esa_lightning.train(SMOKE_3_DAYS, output_dir=folder / "run", root_dir=folder)
    return TrainedRun(folder).keep()


def test_predict_without_data_refuses_a_detector_trained_on_other_data(tmp_path, smoke_3_days):
    """A detector trained on a Kaggle export of the synthetic mission has the default
    mission's channels and telecommands: ``predict.py ckpt=DET`` without ``data=`` generated
    the default synthetic mission and scored it without a word. It is refused before anything
    is generated or read, naming the data the detector was trained on; the data given with
    ``data=`` is scored as before."""
    from esa_lightning.data.readers.synthetic import generate_mission

    small = generate_mission(tmp_path / "small", days=3, kaggle=True)
    # not tmp_path / "run": run_entry predicts into that folder, refused as a training run's
    run = esa_lightning.train(["experiment=smoke", "data=kaggle", f"data.root={small / 'kaggle'}",
                               "logger=none", "test=false"],
                              output_dir=tmp_path / "trained", root_dir=tmp_path)
    detector = run.output_dir / "detector"
    error = refused(detector, [], tmp_path)
    assert not (tmp_path / "datasets" / "synthetic_default").exists()  # nor generated
    assert "no data= among the overrides" in str(error), error  # the API's words
    assert f"trained on other data: data=kaggle data.root={small / 'kaggle'};" in str(error)
    proc = run_entry("predict.py", [f"ckpt={detector}"], tmp_path)  # the command line's own
    assert_one_line_error(proc, "no data= given", f"data=kaggle data.root={small / 'kaggle'};")
    scored(detector, ["data=synthetic", f"data.root={small}"], tmp_path)

    # the default mission itself, split as the default splits it: scored (in the root_dir it
    # was trained in); split otherwise, refused, naming the setting
    same = smoke_3_days.fresh()
    scored(same / "run" / "detector", [], same)
    run = esa_lightning.train([*SMOKE_3_DAYS, "data.val_days=0.5"],
                              output_dir=tmp_path / "other", root_dir=tmp_path)
    error = refused(run.output_dir / "detector", [], tmp_path)
    assert "trained on other data: data=synthetic data.root=" in str(error), error
    assert "data.val_days=0.5 (the default: None);" in str(error), error


def test_predict_without_data_refuses_a_detector_trained_on_another_generated_mission(
    smoke_3_days,
):
    """A detector trained on the default data.root's mission generated with other settings
    (``data.generate.days=3``): once that folder was gone, ``predict.py ckpt=DET`` without
    ``data=`` generated the default mission (42 days) there and scored it without a word (the
    generator's settings were not compared). It is refused before anything is generated, naming
    the setting, both values and the override that generates the trained mission again; while
    the folder holds that mission it is scored, and one generated there otherwise since is
    refused, naming what its mission.json records."""
    import shutil

    from esa_lightning.data.readers.synthetic import generate_mission

    tmp_path = smoke_3_days.fresh()  # SMOKE_3_DAYS trained into tmp_path / "run"
    detector = tmp_path / "run" / "detector"
    default = tmp_path / "datasets" / "synthetic_default"
    scored(detector, [], tmp_path)  # the folder holds the mission it was trained on
    shutil.rmtree(default)
    error = str(refused(detector, [], tmp_path))
    assert not default.exists()  # nor generated
    assert "no data= among the overrides" in error and "trained on other data: " \
        "data=synthetic data.root=" \
        f"{default}, data.generate.days=3 (the default: 42);" in error, error
    assert '["data.generate.days=3"] to generate the mission it was trained on)' in error, error
    scored(detector, ["data.generate.days=3"], tmp_path)  # the override named
    scored(detector, [], tmp_path)  # the folder holds that mission again

    shutil.rmtree(default)
    generate_mission(default, days=2, start="2000-02-01")
    error = str(refused(detector, [], tmp_path))
    assert "data.generate.days=3 (the default data.root's mission: 2), data.generate.start=" \
        "2000-01-01 (the default data.root's mission: 2000-02-01);" in error, error
    assert '["data.generate.days=3", "data.root=<a folder without a mission>"] to generate ' \
        "the mission it was trained on)" in error, error

    # a config built in Python does not say whether its data were given: the job checks them
    # only against the overrides it was composed with ([]: none), else scores them as given
    from esa_lightning.api.training import compose_job
    from esa_lightning.jobs.predict import predict

    cfg = compose_job("predict", ["max_figures=0"], output_dir=tmp_path / "api",
                      root_dir=tmp_path)
    cfg.ckpt = str(detector)
    with pytest.raises(ESAInputError, match="data.generate.days=3 .the default data.root's"):
        predict(cfg, [])
    predict(cfg)
    assert (tmp_path / "api" / "submission.csv").is_file()


def test_predict_without_data_compares_the_mission_read_not_the_config(tmp_path):
    """Training that reused a synthetic folder generated otherwise than its ``data.generate``
    (the reader warns and reads the folder as it was generated: 3 days, asked 4) recorded
    only the settings asked for: ``predict.py ckpt=DET`` without ``data=`` on that very folder
    was refused (4 asked, 3 in the folder), and one holding the 4-day mission since was scored.
    The detector records the settings of the mission it read (``info.generator``), which are
    compared: the same folder is scored; one generated otherwise, or none there, is refused,
    naming the overrides that generate the mission it was trained on."""
    import shutil

    from esa_lightning.data.readers.synthetic import generate_mission

    default = tmp_path / "datasets" / "synthetic_default"
    generate_mission(default, days=3)
    with pytest.warns(UserWarning, match="reusing the existing synthetic mission"):
        run = esa_lightning.train(["experiment=smoke", f"data.root={default}",
                                   "data.generate.days=4", "logger=none", "test=false"],
                                  output_dir=tmp_path / "run", root_dir=tmp_path)
    detector = run.output_dir / "detector"
    assert esa_lightning.Detector.load(detector).info["generator"]["days"] == 3
    scored(detector, [], tmp_path)  # the folder it was trained on, unchanged

    shutil.rmtree(default)
    generate_mission(default, days=4)  # what its config asked for, not what it read
    error = str(refused(detector, [], tmp_path))
    assert "data.generate.days=3 (the default data.root's mission: 4);" in error, error
    shutil.rmtree(default)
    error = str(refused(detector, [], tmp_path))
    assert not default.exists()  # nor generated
    assert "data.generate.days=3 (the default: 42);" in error, error
    assert '["data.generate.days=3"] to generate the mission it was trained on)' in error, error
    scored(detector, ["data.generate.days=3"], tmp_path)  # the override named


def test_a_kaggle_folder_without_data_kaggle_names_the_data_to_give(tmp_path):
    """``predict.py ckpt=DET data.root=<a Kaggle folder>`` (and ``train.py`` alike) without
    ``data=kaggle`` read it with the synthetic reader: 'folder exists but holds no mission (no
    channels.csv)', which does not say what to give. The error names the layout and the data=."""
    root = tmp_path / "kaggle"
    root.mkdir()
    write_kaggle(root / "train.parquet", n=300)
    zscore_detector(read_kaggle(root, cache_dir=tmp_path / "c1"), tmp_path / "det", 4.0)
    error = refused(tmp_path / "det", [f"data.root={root}"], tmp_path)
    assert "the Kaggle layout" in str(error) and "read it with data=kaggle " in str(error), error
    with pytest.raises(ESAInputError, match="read it with data=kaggle "):
        esa_lightning.train(["experiment=smoke", f"data.root={root}", "logger=none"],
                            output_dir=tmp_path / "run", root_dir=tmp_path)
    assert sorted(p.name for p in root.iterdir()) == ["train.parquet"]
