"""The Python API: ``Detector.load(path).predict(df)`` on DataFrames in raw units equals
``predict.py`` on the same data; bad frames are named; ``esa_lightning.train`` returns a
detector that predicts, writing nothing into the working directory."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import esa_lightning
from esa_lightning.data.frame import InputWarning
from esa_lightning.data.readers.esa_adb import read_esa_mission
from esa_lightning.data.readers.esa_adb_grid import read_raw_series
from esa_lightning.errors import ESAInputError
from tests.helpers import checkout_env

INTERVAL_COLUMNS = ["start", "end", "channels", "score", "top_channels"]


@pytest.fixture(scope="module")
def trained(small_mission_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """A smoke detector trained through ``esa_lightning.train`` from an empty working folder."""
    work = tmp_path_factory.mktemp("notebook")
    before = Path.cwd()
    os.chdir(work)
    try:
        run = esa_lightning.train(
            [
                "experiment=smoke",
                "data=esa",
                f"data.root={small_mission_dir}",
                "logger=none",
                "test=false",
            ],
            root_dir=work / "root",
        )
    finally:
        os.chdir(before)
    return run, work


@pytest.fixture(scope="module")
def reader_mission(small_mission_dir: Path):
    """The mission as ``predict.py data=esa`` reads it (counters from mission.json)."""
    return read_esa_mission(small_mission_dir, counters=None, lightweight=None, cache_dir=None)


def raw_frame(root: Path, channels: list[str], telecommands: list[str]) -> pd.DataFrame:
    """Every raw channel and telecommand file of an ESA folder joined on their timestamps (NaN
    where a file has no sample): what a user gets from the raw files with pandas."""
    columns = {}
    for folder, names in (("channels", channels), ("telecommands", telecommands)):
        for name in names:
            ts, values = read_raw_series(root / folder / f"{name}.zip", name)
            columns[name] = pd.Series(values, index=pd.DatetimeIndex(ts))
    return pd.concat(columns, axis=1, sort=True)


def grid_frame(mission, raw_counters: bool = True) -> pd.DataFrame:
    """The reader's grid as a DataFrame; counters cumulative again (raw units) by default."""
    frame = pd.DataFrame(
        np.asarray(mission.values, dtype=np.float64),
        index=pd.DatetimeIndex(mission.timestamps),
        columns=mission.channel_names,
    )
    if raw_counters:
        for name in mission.meta["counters"]:
            frame[name] = 1000.0 + frame[name].cumsum()
    for j, name in enumerate(mission.telecommand_names):
        frame[name] = mission.telecommands[:, j]
    return frame


def predict_quietly(detector, frame, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = detector.predict(frame, **kw)
    return result, [str(w.message) for w in caught if issubclass(w.category, InputWarning)]


def test_public_names_import_lazily():
    """``import esa_lightning`` stays cheap; the API names load on first use."""
    code = "import sys, esa_lightning; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, env=checkout_env())
    from esa_lightning import Detector, load_mission, predict, train

    assert callable(Detector.predict) and callable(load_mission)
    assert callable(train) and callable(predict)


def test_train_returns_a_detector_and_writes_nothing_in_cwd(trained):
    run, work = trained
    assert sorted(p.name for p in work.iterdir()) == ["root"]
    assert run.output_dir.parent.parent == work / "root" / "outputs"
    assert (run.output_dir / "detector" / "detector.json").is_file()
    assert isinstance(run.detector, esa_lightning.Detector)
    assert "val/EW_F_0.50" in run.metrics
    assert run.detector.schema["preprocessing"]["counters"] == ["channel_2"]
    assert run.detector.info["calibration"]["source"] == "validation"


def test_raw_frame_equals_predict_py(trained, small_mission_dir, reader_mission):
    """Raw irregular samples in a DataFrame give predict.py's grid, scores, alarms and
    intervals: the detector repeats the reader's resampling, differencing and pulses."""
    from esa_lightning.runtime.chunks import score_in_chunks

    run, work = trained
    det = run.detector
    frame = raw_frame(small_mission_dir, det.schema["channels"], det.schema["telecommands"])
    result, messages = predict_quietly(det, frame)
    assert messages == []
    np.testing.assert_array_equal(result.mission.values, reader_mission.values)
    np.testing.assert_array_equal(result.mission.telecommands, reader_mission.telecommands)
    np.testing.assert_array_equal(result.rows.index.to_numpy(), reader_mission.timestamps)
    reader_scores = score_in_chunks(det, reader_mission, 1_000_000)
    np.testing.assert_array_equal(result.rows["score"].to_numpy(), reader_scores.score)

    job = esa_lightning.predict(
        run.output_dir / "detector",
        ["data=esa", f"data.root={small_mission_dir}", "range=all", "max_figures=1"],
        output_dir=work / "predict",
        root_dir=work / "root",
    )
    submission = pd.read_csv(job.output_dir / "submission.csv")
    np.testing.assert_array_equal(submission["is_anomaly"], result.rows["alarm"])
    assert result.rows["alarm"].sum() > 0
    written = pd.read_csv(job.output_dir / "intervals.csv")
    assert list(written.columns[: len(INTERVAL_COLUMNS)]) == INTERVAL_COLUMNS
    # through CSV as intervals.csv went (empty cells, timestamps as text)
    mine = pd.read_csv(io.StringIO(result.intervals[list(written.columns)].to_csv(index=False)))
    pd.testing.assert_frame_equal(
        mine.reset_index(drop=True), written, check_dtype=False, check_exact=False, rtol=1e-6
    )
    conf = result.rows["confidence"]
    assert conf.between(0, 1).all() and conf[result.rows["alarm"] == 1].mean() > conf.mean()


def test_grid_frame_with_raw_counter_gives_the_reader_mission(trained, reader_mission):
    """The issue's case: a frame on the grid carrying the raw (cumulative) counter is
    differenced by the detector itself, so it scores like the reader's data."""
    det = trained[0].detector
    result, messages = predict_quietly(det, grid_frame(reader_mission))
    assert messages == []
    np.testing.assert_array_equal(result.mission.values, reader_mission.values)


def test_nan_gap_and_grid_hole_are_named_and_filled(trained, reader_mission):
    det = trained[0].detector
    frame = grid_frame(reader_mission)
    frame.iloc[500:600, frame.columns.get_loc("channel_3")] = np.nan
    frame = frame.drop(frame.index[700])
    result, messages = predict_quietly(det, frame)
    assert any("'channel_3'" in m and "100 NaN" in m and "previous value" in m for m in messages)
    assert any("1 grid timestamp(s) missing" in m for m in messages)
    assert len(result.rows) == len(reader_mission.values)  # the hole is a grid row again
    held = result.mission.values[500:600, reader_mission.channel_names.index("channel_3")]
    assert (
        held == reader_mission.values[499, reader_mission.channel_names.index("channel_3")]
    ).all()
    with pytest.raises(ESAInputError, match="channel_3"):
        det.predict(frame, strict=True)


def test_intervals_name_the_channels_the_detector_alarmed(trained, reader_mission):
    """Each interval's ``channels`` is the union of the per-channel alarms on its rows (what
    the channel_* metrics score), ``top_channels`` the first of them; the attribution over all
    channels is ``deviating_channels``."""
    from esa_lightning.jobs.predict import score_part

    det = trained[0].detector
    result, _ = predict_quietly(det, grid_frame(reader_mission))
    scores = score_part(det, result.mission, 1_000_000)
    names = result.mission.channel_names
    assert len(result.intervals)
    for row in result.intervals.itertuples(index=False):
        block = np.asarray(scores.channel_alarm[row.start_index : row.end_index + 1])
        alarmed = [names[j] for j in np.flatnonzero(block.any(axis=0))]
        named = [c for c in row.channels.split(";") if c]
        assert sorted(named) == sorted(alarmed)
        top = [item.split("=")[0] for item in row.top_channels.split(";") if item]
        assert top == named[:5]
        assert isinstance(row.deviating_channels, str)


def test_readings_beyond_float32_always_alarm_as_in_the_readers(trained, reader_mission):
    """A reading float32 cannot hold (inf, 1e39) is replaced for the model and alarms, never
    hidden by the repair: the API marks it as the readers do (``Mission.unrepresentable``)."""
    det = trained[0].detector
    frame = grid_frame(reader_mission)
    column = frame.columns.get_loc("channel_3")
    frame.iloc[300:310, column] = np.inf
    frame.iloc[900, column] = 1e39
    result, messages = predict_quietly(det, frame)
    # one warning, naming the column; it said the 10 inf cells were "held at the channel's
    # previous value" and, in another warning naming no column, that 11 rows always alarm
    beyond = [m for m in messages if "beyond float32's range" in m]
    assert len(beyond) == 1 and "'channel_3'" in beyond[0] and "11 reading(s)" in beyond[0]
    assert "always alarm" in beyond[0]
    assert not any("previous value" in m for m in messages)
    marked = np.zeros(len(result.rows), dtype=bool)
    marked[300:310] = marked[900] = True
    np.testing.assert_array_equal(result.mission.unrepresentable.astype(bool), marked)
    cells = result.mission.unrepresentable_cells  # the channel holding each reading
    assert cells[:, 0].tolist() == np.flatnonzero(marked).tolist()
    assert set(cells[:, 1]) == {result.mission.channel_names.index("channel_3")}
    assert (result.rows["alarm"].to_numpy()[marked] == 1).all()
    for row in result.intervals.itertuples(index=False):  # the alarms over them name it
        if marked[row.start_index : row.end_index + 1].any():
            assert "channel_3" in row.channels.split(";")
    assert np.isfinite(result.mission.values).all()


def test_inf_in_a_raw_frame_is_one_input_warning_naming_the_column(trained, small_mission_dir):
    """inf readings of a raw ESA-layout frame give one warning, the ``InputWarning`` naming the
    column, not that beside the reader's plain ``UserWarning`` about the same repair."""
    det = trained[0].detector
    frame = raw_frame(small_mission_dir, det.schema["channels"], det.schema["telecommands"])
    rows = np.flatnonzero(frame["channel_3"].notna().to_numpy())[100:105]
    frame.iloc[rows, frame.columns.get_loc("channel_3")] = np.inf
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        det.predict(frame)
    user = [w for w in caught if issubclass(w.category, UserWarning)]
    assert [(w.category, "'channel_3'" in str(w.message)) for w in user] == [(InputWarning, True)]
    assert "5 reading(s) beyond float32's range" in str(user[0].message)


def test_counters_differenced_the_wrong_way_are_named(trained, reader_mission):
    det = trained[0].detector
    already = grid_frame(reader_mission, raw_counters=False)
    _, messages = predict_quietly(det, already)
    assert any("'channel_2'" in m and "already differenced" in m for m in messages)

    cumulative = grid_frame(reader_mission)
    cumulative["channel_1"] = np.cumsum(np.abs(cumulative["channel_1"]) + 1.0)
    _, messages = predict_quietly(det, cumulative)
    assert any("'channel_1'" in m and "undifferenced counter" in m for m in messages)


def test_unknown_columns_are_ignored_with_a_note_and_labels_silently(trained, reader_mission):
    det = trained[0].detector
    frame = grid_frame(reader_mission).iloc[:200].assign(notes=1.0, is_anomaly_channel_3=0)
    result, messages = predict_quietly(det, frame, strict=True)
    assert messages == ["DataFrame: ignored 1 column(s) the detector was not trained on: 'notes'"]
    assert result.warnings == messages


@pytest.mark.parametrize(
    "spoil, column, reason",
    [
        (lambda f: f.drop(columns="channel_5"), "channel_5", "missing 1 column"),
        (lambda f: f.assign(channel_4=["x"] * len(f)), "channel_4", "not a number"),
        (lambda f: f.assign(channel_6=pd.Timestamp("2000-01-01")), "channel_6", "wrong dtype"),
        (lambda f: f.reset_index(drop=True), "index", "time-indexed"),
        (lambda f: f.iloc[::-1], "index", "unsorted"),
        (lambda f: f.assign(channel_7=np.nan), "channel_7", "no finite value"),
    ],
)
def test_bad_frames_raise_errors_naming_the_column(trained, reader_mission, spoil, column, reason):
    det = trained[0].detector
    frame = spoil(grid_frame(reader_mission).iloc[:200])
    with pytest.raises(ESAInputError, match=reason) as caught:
        det.predict(frame)
    assert f"column {column!r}" in str(caught.value)


def zscore_detector(mission, folder: Path, threshold: float, record: bool = True):
    """A robust z-score detector fitted by hand on ``mission``'s training rows, saved and
    loaded back (with the reader's preprocessing recorded as training records it)."""
    from esa_lightning.api import Detector
    from esa_lightning.artifact import mission_schema
    from esa_lightning.jobs.train import record_for_api
    from esa_lightning.models.zscore.model import RobustZScore

    model = RobustZScore(len(mission.channel_names))
    train = np.asarray(mission.train().values)
    model.median.copy_(torch.as_tensor(np.median(train, axis=0)))
    model.scale.copy_(torch.as_tensor(np.maximum(train.std(axis=0), 1e-6)))
    model.threshold.fill_(threshold)
    det = Detector({"z": model}, mission_schema(mission))
    if record:
        record_for_api(det, mission, 100_000)
    det.save(folder)
    return Detector.load(folder)


def test_kaggle_frame_equals_predict_py(small_mission_dir, tmp_path):
    """id-indexed data (Kaggle layout): rows taken as given, NaN forward-filled as the reader
    does, with a warning naming the column."""
    from esa_lightning.data.readers.kaggle import read_kaggle

    root = small_mission_dir / "kaggle"
    mission = read_kaggle(root, cache_dir=tmp_path / "cache")
    det = zscore_detector(mission, tmp_path / "detector", threshold=4.0)

    frame = pd.read_parquet(root / "test.parquet")
    result, messages = predict_quietly(det, frame)
    assert messages == []
    job = esa_lightning.predict(
        tmp_path / "detector",
        ["data=kaggle", f"data.root={root}", "max_figures=1"],
        output_dir=tmp_path / "out",
        root_dir=tmp_path,
    )
    submission = pd.read_csv(job.output_dir / "submission.csv")
    np.testing.assert_array_equal(submission["id"], result.rows.index)
    np.testing.assert_array_equal(submission["is_anomaly"], result.rows["alarm"])
    assert result.rows["alarm"].sum() > 0

    gap = frame.copy()
    gap.loc[10:19, "channel_3"] = np.nan
    filled, messages = predict_quietly(det, gap)
    assert any("'channel_3'" in m and "10 NaN" in m and "forward-filled" in m for m in messages)
    column = mission.channel_names.index("channel_3")
    assert (filled.mission.values[10:20, column] == frame["channel_3"].iloc[9]).all()
    nullable = frame.astype({"id": "Int64"})
    nullable.loc[3, "id"] = pd.NA
    with pytest.raises(ESAInputError, match="'id'.*empty id"):  # was a raw ValueError
        det.predict(nullable)
    with pytest.raises(ESAInputError, match="id-indexed"):
        det.predict(
            frame.drop(columns="id").set_index(
                pd.date_range("2000", periods=len(frame), freq="30s")
            )
        )


def test_the_api_takes_the_run_folder_from_the_overrides_as_train_py_does(tmp_path):
    from esa_lightning.api.training import compose_job

    root = compose_job("train", ["experiment=smoke", f"paths.root_dir={tmp_path / 'r'}"])
    run_dir = Path(root.paths.output_dir)
    assert Path(root.paths.root_dir) == tmp_path / "r"
    assert run_dir.parent == tmp_path / "r" / "outputs" / "smoke"
    # to the microsecond, as train.py: two runs started in the same second get two folders
    assert re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d\.\d{6}", run_dir.name)
    for key in ("paths.output_dir", "hydra.run.dir"):
        cfg = compose_job("train", [f"{key}={tmp_path / 'run'}"], root_dir=tmp_path)
        assert Path(cfg.paths.output_dir) == tmp_path / "run"
    with pytest.raises(ESAInputError, match="paths.root_dir"):
        compose_job("train", [f"paths.root_dir={tmp_path / 'r'}"], root_dir=tmp_path / "other")
    # interpolations resolve in the config, as on train.py's command line
    cfg = compose_job("train", [f"paths.root_dir={tmp_path}/${{experiment_name}}",
                                "paths.output_dir=${paths.root_dir}/run"])
    assert Path(cfg.paths.root_dir) == tmp_path / "gru_ae"
    assert Path(cfg.paths.output_dir) == tmp_path / "gru_ae" / "run"


def test_processes_another_launcher_started_need_the_run_folder_given(
    small_mission_dir, tmp_path, monkeypatch
):
    """torchrun starts every rank itself (``WORLD_SIZE`` 2, no ``$ESA_LIGHTNING_RUN_DIR``): each
    named a time-stamped folder of its own, to the microsecond, so the ranks wrote to two
    folders. Without an output_dir that is refused on every rank, before anything is written; a
    process Lightning's own launcher started joins the folder it was handed."""
    from esa_lightning.api.ranks import RUN_DIR_ENV, join_launching_run
    from esa_lightning.api.training import compose_job

    smoke = ["experiment=smoke", f"data.root={small_mission_dir}", "logger=none"]
    monkeypatch.delenv(RUN_DIR_ENV, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank in ("0", "1"):
        monkeypatch.setenv("RANK", rank)
        monkeypatch.setenv("LOCAL_RANK", rank)
        with pytest.raises(ESAInputError, match="WORLD_SIZE=2.*output_dir"):
            esa_lightning.train(smoke, root_dir=tmp_path / "root")
    assert not (tmp_path / "root").exists()
    monkeypatch.setenv(RUN_DIR_ENV, str(tmp_path / "launcher's"))  # Lightning's launcher
    cfg = compose_job("train", smoke, root_dir=tmp_path / "root")
    join_launching_run(cfg, folder_given=False)
    assert Path(cfg.paths.output_dir) == tmp_path / "launcher's"


@pytest.mark.parametrize("rank", [{"RANK": "1", "WORLD_SIZE": "2"},
                                  {"SLURM_PROCID": "1", "SLURM_NTASKS": "2"}])
def test_predict_runs_on_global_rank_0_only(tmp_path, monkeypatch, rank):
    """``esa_lightning.predict`` under torchrun (or srun) ran on every rank: each scored the
    whole range and wrote the same output folder. As predict.py, a rank above 0 leaves it to
    rank 0: it returns None with a warning naming its rank, reading and writing nothing."""
    from esa_lightning.data.readers.esa_csv import read_esa_csv
    from esa_lightning.run_folder import RANK_VARIABLES
    from tests.helpers import write_esa_csv

    path = write_esa_csv(tmp_path / "mission.csv", n=60)
    zscore_detector(read_esa_csv(path, cache_dir=tmp_path / "cache"), tmp_path / "detector",
                    threshold=1.0)
    for name in (*RANK_VARIABLES, "WORLD_SIZE", "SLURM_NTASKS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in rank.items():
        monkeypatch.setenv(name, value)
    with pytest.warns(UserWarning, match="global rank 0.*{}={}".format(*next(iter(rank.items())))):
        job = esa_lightning.predict(
            tmp_path / "detector", ["data=esa_csv", f"data.root={path}", "range=all"],
            output_dir=tmp_path / "out", root_dir=tmp_path,
        )
    assert job is None
    assert not (tmp_path / "out").exists()


def test_esa_csv_frame_equals_predict_py(tmp_path):
    """Preprocessed ESA CSV data (a ``timestamp`` column): rows taken as given, a missing grid
    row named but not filled, as the CSV reader does."""
    from esa_lightning.data.readers.esa_csv import read_esa_csv
    from tests.helpers import write_esa_csv

    path = write_esa_csv(tmp_path / "mission.csv", n=60)
    mission = read_esa_csv(path, cache_dir=tmp_path / "cache")
    det = zscore_detector(mission, tmp_path / "detector", threshold=1.0)
    frame = pd.read_csv(path)
    result, messages = predict_quietly(det, frame)
    assert messages == []
    job = esa_lightning.predict(
        tmp_path / "detector",
        ["data=esa_csv", f"data.root={path}", "range=all", "max_figures=1"],
        output_dir=tmp_path / "out",
        root_dir=tmp_path,
    )
    submission = pd.read_csv(job.output_dir / "submission.csv")
    np.testing.assert_array_equal(submission["is_anomaly"], result.rows["alarm"])
    assert 0 < result.rows["alarm"].sum() < len(frame)

    holed, messages = predict_quietly(det, frame.drop(index=30))
    assert any("1 timestamp(s) of the grid missing" in m for m in messages)
    assert len(holed.rows) == len(frame) - 1


def test_detector_without_a_preprocessing_record_says_so(small_mission_dir, tmp_path):
    """An artifact trained before the record existed: the frame is taken as preprocessed, with
    a warning; no reference scores, so the confidence is NaN."""
    from esa_lightning.data.readers.kaggle import read_kaggle

    root = small_mission_dir / "kaggle"
    mission = read_kaggle(root, cache_dir=tmp_path / "cache")
    det = zscore_detector(mission, tmp_path / "detector", threshold=4.0, record=False)
    result, messages = predict_quietly(det, pd.read_parquet(root / "test.parquet"))
    assert any("records no preprocessing" in m for m in messages)
    assert result.rows["confidence"].isna().all()


def test_the_api_checks_settings_as_train_py_does(small_mission_dir, tmp_path):
    """A value train.py refuses by name is refused by ``esa_lightning.train`` too, before any
    training (it had trained a channel ensemble whose alarms a negative buffer shrinks)."""
    with pytest.raises(ESAInputError, match=r"^model\.post_processing\.alarm\.buffer=-1:"):
        esa_lightning.train(
            ["experiment=channel_ensemble", f"data.root={small_mission_dir}",
             "model.post_processing.alarm.buffer=-1", "trainer.max_epochs=1", "logger=none",
             "trainer.enable_progress_bar=false", "~callbacks.progress_bar"],
            output_dir=tmp_path / "run", root_dir=tmp_path,
        )
    assert not (tmp_path / "run" / "detector").exists()
    with pytest.raises(ESAInputError, match=r"^max_figures=-1:"):
        esa_lightning.predict(tmp_path / "no_detector", ["max_figures=-1"],
                              output_dir=tmp_path / "predict", root_dir=tmp_path)


def test_rows_and_intervals_come_back_in_the_frames_time_zone(tmp_path):
    """A frame with times in a time zone was scored in UTC and its rows and intervals came back
    as naive UTC times: ``df.join(result.rows)`` raised "Cannot join tz-naive with tz-aware",
    and alarm times read an hour or two off local time. They now come back in the frame's zone."""
    from esa_lightning.data.readers.esa_csv import read_esa_csv
    from tests.helpers import write_esa_csv

    path = write_esa_csv(tmp_path / "mission.csv", n=60)
    det = zscore_detector(read_esa_csv(path, cache_dir=tmp_path / "c"), tmp_path / "d", 1.0)
    naive = pd.read_csv(path, parse_dates=["timestamp"]).set_index("timestamp")
    expected, _ = predict_quietly(det, naive)
    assert expected.rows.index.tz is None and len(expected.intervals)
    local = naive.tz_localize("UTC").tz_convert("Europe/Berlin")
    for frame in (local, local.reset_index()):  # the index, or a 'timestamp' column
        result, _ = predict_quietly(det, frame)
        assert result.rows.index.equals(local.index)
        np.testing.assert_array_equal(result.rows["score"], expected.rows["score"])
        assert local.join(result.rows)["alarm"].notna().all()
        for column in ("start", "end"):
            assert str(result.intervals[column].dt.tz) == "Europe/Berlin"
            np.testing.assert_array_equal(
                result.intervals[column].dt.tz_convert("UTC").dt.tz_localize(None),
                expected.intervals[column],
            )


def test_one_override_string_instead_of_a_list_is_named(tmp_path):
    """``esa_lightning.predict(path, "data=kaggle")`` (a string where a list is expected) was
    split into letters and failed in Hydra's parser with "Error parsing override 'd'"; it is
    now one error saying to pass a list, before anything is read or written."""
    for call in (
        lambda: esa_lightning.predict(tmp_path / "detector", "data=kaggle", root_dir=tmp_path),
        lambda: esa_lightning.train("experiment=smoke", root_dir=tmp_path),
    ):
        with pytest.raises(ESAInputError, match=r"overrides must be a list .*\['(data|exp)"):
            call()
    assert list(tmp_path.iterdir()) == []


def test_an_override_that_does_not_compose_is_one_input_error(tmp_path):
    """The API passed Hydra's own exceptions through (ConfigCompositionException: several
    lines, search path included) where train.py prints one line: an unknown group option or
    key is an ESAInputError naming it, before anything is written."""
    for overrides, named in ((["experiment=nope"], "nope"), (["model.foo=1"], "foo")):
        with pytest.raises(ESAInputError, match=named) as info:
            esa_lightning.train(overrides, root_dir=tmp_path)
        assert "\n" not in str(info.value) and "search path" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


DDP_SCRIPT = """
import gc, os, subprocess, sys
import esa_lightning
from esa_lightning.errors import ESAInputError

rank = os.environ.get("LOCAL_RANK", "0")
print(f"rank {rank} calls train()", flush=True)
overrides = sys.argv[2:]
run = esa_lightning.train(overrides, root_dir=sys.argv[1])
print(f"rank {rank} got {run.output_dir} detector={run.detector is not None} "
      f"metrics={'val/EW_F_0.50' in run.metrics}", flush=True)
for child in [o for o in gc.get_objects() if type(o) is subprocess.Popen]:  # Lightning's
    print(f"extra process exit {child.wait(timeout=60)}", flush=True)
try:
    esa_lightning.train(overrides, root_dir=sys.argv[1])
except ESAInputError as exc:
    print(f"second train() refused: {exc}", flush=True)
"""


@pytest.mark.slow
def test_train_on_two_devices_from_a_script_trains_in_one_run_folder(tmp_path):
    """Lightning re-runs the user's script for rank 1 (``python script.py``): its ``train()``
    named a run folder of its own, left it empty and failed to load a detector from it; Lightning
    then kills rank 0 (exit 137) unless it is done by then. Now both ranks train in rank 0's
    folder; rank 1's ``train()`` ends its process with exit 0 (as train.py's extra processes
    end), so the script after ``train()`` runs once, on rank 0, which gets the detector and
    metrics."""
    from esa_lightning.data.readers.synthetic import generate_mission

    mission = tmp_path / "mission"
    generate_mission(mission, channels=4, groups=2, days=8, seed=3)
    script = tmp_path / "script.py"
    script.write_text(DDP_SCRIPT)
    overrides = [
        f"data.root={mission}", "data.val_days=2", "test=false", "logger=none",
        "trainer.max_epochs=1", "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=2",
        "model.hidden_size=16", "model.post_processing.rf_gate.n_estimators=10",
        "trainer.enable_progress_bar=false", "~callbacks.progress_bar",
        "trainer.devices=2", "trainer.accelerator=cpu", "trainer.strategy=ddp",
    ]
    root = tmp_path / "root"
    proc = subprocess.run(
        [sys.executable, str(script), str(root), *overrides], cwd=tmp_path, env=checkout_env(),
        capture_output=True, text=True, timeout=600,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    runs = list((root / "outputs").glob("*/*"))
    assert len(runs) == 1, runs  # no empty folder of rank 1's own
    run_dir = runs[0]
    assert (run_dir / "detector" / "detector.json").is_file()
    assert "rank 1 calls train()" in log  # Lightning did start a second process
    got = f"rank 0 got {run_dir} detector=True metrics=True"
    assert re.findall(r"rank \d got .*", log) == [got]  # the script goes on on rank 0 only
    assert re.findall(r"extra process exit -?\d+", log) == ["extra process exit 0"]
    # the second process ended with the first train(): a second one on two devices is refused
    assert "second train() refused: " in log and "only the first train()" in log
    assert list((root / "outputs").glob("*/*")) == [run_dir]
