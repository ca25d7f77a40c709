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
from esa_lightning.data.frame import InputWarning
from esa_lightning.data.readers.esa_csv import read_esa_csv
from esa_lightning.data.readers.kaggle import read_kaggle
from esa_lightning.errors import ESAInputError
from tests.helpers import write_esa_csv, write_kaggle
from tests.integration.test_python_api import predict_quietly, zscore_detector

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
    given), not the detector's: for a mission of one's own without ``data=`` the error named
    only the channels the generated mission lacked. It now also names the data= and data.root=
    of the training run; new data of the training layout lacking a channel does not get it."""
    frame = pd.read_csv(write_esa_csv(tmp_path / "plain.csv", n=300))
    own = tmp_path / "own.csv"
    frame.rename(columns=lambda c: c.replace("channel_", "bus_")).to_csv(own, index=False)
    run = esa_lightning.train(
        ["experiment=smoke", "data=esa_csv", f"data.root={own}", "logger=none", "test=false"],
        output_dir=tmp_path / "run",
        root_dir=tmp_path,
    )
    messages = {}
    for name, data in (("default", []), ("same_layout", ["data=esa_csv",
                                                          f"data.root={tmp_path / 'plain.csv'}"])):
        with pytest.raises(ESAInputError) as caught:
            esa_lightning.predict(run.output_dir / "detector", [*data, "range=all"],
                                  output_dir=tmp_path / name, root_dir=tmp_path)
        messages[name] = str(caught.value)
    assert "missing channel(s) ['bus_1', 'bus_2']" in messages["default"], messages
    assert not (tmp_path / "datasets" / "synthetic_default").exists()  # refused, not generated
    assert f"trained on data=esa_csv data.root={own};" in messages["default"], messages
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
