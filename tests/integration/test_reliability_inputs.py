"""Round 2 of the adversarial pass, settings and data inputs, grouped by entry point: a bad
setting or file ends in one line naming it (exit code 2), an unrepresentable reading alarms,
and a detector that cannot alarm is never written."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from esa_lightning.data import load_mission
from esa_lightning.data.readers.kaggle import read_kaggle
from esa_lightning.data.readers.synthetic import generate_mission
from esa_lightning.data.windows import WindowDataModule
from esa_lightning.errors import ESAInputError
from esa_lightning.jobs.common import run_or_exit
from esa_lightning.jobs.evaluate import evaluate_predictions
from esa_lightning.jobs.predict import predict
from esa_lightning.jobs.train import train
from tests.conftest import compose_config
from tests.helpers import make_mission, pickled_zip, write_kaggle, write_nasa
from tests.integration.test_reliability_cli import assert_one_line_error, run_entry

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]
SPLIT = "2000-01-06"  # 5 days of training range in the 8-day mission
QUIET = ["logger=none", "trainer.enable_progress_bar=false", "~callbacks.progress_bar"]


@pytest.fixture(scope="module")
def mission_dir(tmp_path_factory) -> Path:
    """An 8-day, 3-channel synthetic mission (raw ESA layout, plus kaggle/)."""
    out = tmp_path_factory.mktemp("inputs") / "mission"
    return generate_mission(
        out, channels=3, groups=1, days=8, n_telecommands=2, seed=0, kaggle=True, split_date=SPLIT
    )


@pytest.fixture(scope="module")
def gru_detector(mission_dir, tmp_path_factory) -> Path:
    """A small GRU autoencoder with a trailing-mean detrend and its random-forest gate."""
    out = tmp_path_factory.mktemp("gru")
    cfg = compose_config(
        "train",
        [
            "experiment=gru_ae",
            f"data.root={mission_dir}",
            "data.val_days=1",
            "trainer.max_epochs=1",
            "+trainer.limit_train_batches=3",
            "+trainer.limit_val_batches=2",
            "datamodule.detrend=60",
            "model.hidden_size=8",
            "model.latent_dim=4",
            "test=false",
            *QUIET,
        ],
        out,
    )
    train(cfg)
    return out / "detector"


def with_channel(mission_dir: Path, dest: Path, channel: str, change) -> Path:
    """A copy of the raw mission whose ``channel`` series went through ``change(frame)``."""
    shutil.copytree(mission_dir, dest, ignore=shutil.ignore_patterns("kaggle"))
    path = dest / "channels" / f"{channel}.zip"
    frame = pd.read_pickle(path, compression="zip")  # the generator's own file
    change(frame)
    path.write_bytes(pickled_zip(frame))
    return dest


def predict_into(out: Path, overrides: list[str]) -> pd.DataFrame:
    predict(compose_config("predict", [*overrides, "max_figures=0"], out))
    return pd.read_csv(out / "submission.csv")


def exits_with_one_line(job, cfg, capsys, *needles: str) -> None:
    """``job(cfg)`` as the entry points run it (``run_or_exit``): exit code 2 and one final
    ``error:`` line holding every needle."""
    with pytest.raises(SystemExit) as stopped:
        run_or_exit(job, cfg)
    assert stopped.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: ") and all(n in last for n in needles), last


# ------------------------------------------------------------------------------------ train.py
def test_train_refuses_validation_that_covers_the_training_range(mission_dir, tmp_path):
    proc = run_entry(
        "train.py",
        ["experiment=smoke", "data=synthetic", f"data.root={mission_dir}", "data.val_days=7"],
        tmp_path,
    )
    assert_one_line_error(proc, "data.val_days=7 covers the whole training range")
    assert not (tmp_path / "run" / "detector").exists()


def test_train_on_a_short_synthetic_mission_scales_validation_or_names_what_fits(
    tmp_path, capsys
):
    """The demo mission shortened to 4 days trains with the default validation (a sixth of
    the mission); a data.val_days given that leaves no training is refused, naming it, the
    mission's length and the values that fit."""
    short = [f"data.root={tmp_path / 'short'}", "data.generate.days=4",
             "data.generate.channels=2", "data.generate.groups=1", "test=false"]
    train(compose_config("train", ["experiment=smoke", *short, *QUIET], tmp_path / "a"))
    assert (tmp_path / "a" / "detector").is_dir()
    cfg = compose_config(
        "train", ["experiment=smoke", *short, "data.val_days=3", *QUIET], tmp_path / "b"
    )
    exits_with_one_line(
        train, cfg, capsys, "data.val_days=3", "data.generate.days=4", "data.val_days=null",
        "under 1.99"
    )
    assert not (tmp_path / "b" / "detector").exists()


def test_train_refuses_a_split_date_before_the_data(mission_dir, tmp_path, capsys):
    cfg = compose_config(
        "train",
        ["experiment=smoke", f"data.root={mission_dir}", "data.split_date=1900-01-01", *QUIET],
        tmp_path,
    )
    exits_with_one_line(train, cfg, capsys, "data.split_date=1900-01-01 is not after")
    assert not (tmp_path / "detector").exists()


def test_train_names_a_bad_setting_on_the_command_line(tmp_path):
    proc = run_entry("train.py", ["experiment=gru_ae", "model.lr=nan"], tmp_path)
    assert_one_line_error(proc, "model.lr=nan:")
    assert not (tmp_path / "datasets").exists()  # refused before any data was read


@pytest.mark.parametrize(
    "override",
    ["data.val_days=-5", "trainer.devices=0", "model.hidden_size=0", "chunk_rows=1",
     # a ZeroDivisionError traceback once the fit began; refused by Lightning after the data
     "trainer.check_val_every_n_epoch=0", "trainer.num_nodes=0"],
)
def test_train_names_a_bad_setting(tmp_path, capsys, override):
    cfg = compose_config("train", ["experiment=gru_ae", override, *QUIET], tmp_path)
    exits_with_one_line(train, cfg, capsys, f"{override}:")
    assert not (tmp_path / "datasets").exists()


@pytest.mark.parametrize(
    ("override", "needles"),
    [
        ("callbacks.model_checkpoint.mode=bogus", ["callbacks.model_checkpoint:", "bogus"]),
        # refused by the settings' check now, before the data are read (test_early_checks.py)
        ("callbacks.esa_metrics.every_n_epochs=0",
         ["callbacks.esa_metrics.every_n_epochs=0:", ">= 1"]),
        ("callbacks.esa_metrics.figure_every_n_epochs=0",
         ["callbacks.esa_metrics.figure_every_n_epochs=0:", ">= 1"]),
        # numpy's ValueError traceback (exit 1) once the first epoch was validated
        ("callbacks.esa_metrics.provisional_percentile=120",
         ["callbacks.esa_metrics:", "provisional_percentile=120", "[0, 100]"]),
    ],
)
def test_train_names_a_callback_setting_it_refuses_and_leaves_no_folder(
    mission_dir, tmp_path, capsys, override, needles
):
    """Lightning's refusal of a callback setting was Hydra's block of lines (exit 1), and the
    ESA metrics every 0 epochs a ZeroDivisionError after the first epoch; both left the run
    folder they made."""
    run = tmp_path / "run"
    cfg = compose_config("train", ["experiment=smoke", f"data.root={mission_dir}", override,
                                   *QUIET], run)
    from esa_lightning.run_folder import make_run_folder

    make_run_folder(run)  # as the run's Hydra callback makes it
    exits_with_one_line(train, cfg, capsys, *needles)
    assert not run.exists()


def test_train_never_writes_a_detector_that_cannot_alarm(mission_dir, tmp_path):
    # an empty validation range leaves the z-score threshold at inf: it would never alarm
    cfg = compose_config(
        "train",
        ["experiment=smoke", f"data.root={mission_dir}", "data.val_days=0", *QUIET],
        tmp_path,
    )
    with pytest.raises(ESAInputError, match="could never alarm") as refused:
        train(cfg)
    assert not (tmp_path / "detector").exists()
    # the fit's checkpoint stays in the run folder: the error says what was not written
    assert (tmp_path / "checkpoints" / "smoke" / "last.ckpt").exists()
    assert "no detector or metrics.json was written" in str(refused.value)


def test_a_run_folder_kept_after_a_refusal_logs_why(mission_dir, tmp_path):
    """Refused after its fit, a run keeps its folder (checkpoints, train.log), but its log
    ended at the fit: the error was on the console only (a sweep job's log held it)."""
    proc = run_entry("train.py", ["experiment=smoke", f"data.root={mission_dir}",
                                  "data.val_days=0", "logger=none"], tmp_path)
    line = assert_one_line_error(proc, "could never alarm")
    log = (tmp_path / "run" / "train.log").read_text()
    assert line in log


def test_a_threshold_fitted_on_a_wholly_anomalous_validation_range_is_named():
    import torch

    from esa_lightning.jobs.train import refuse_detector_that_cannot_alarm

    component = torch.nn.Module()
    component.register_buffer("threshold", torch.tensor([float("inf")]))
    labeled = make_mission(anomalies=((1000, 1499),), val_start=1000, test_start=1500)
    with pytest.raises(ESAInputError, match="all 500 rows of the validation range are labeled"):
        refuse_detector_that_cannot_alarm({"smoke": component}, labeled.val())
    empty = make_mission(anomalies=((1200, 1230),), val_start=1500, test_start=1500)
    with pytest.raises(ESAInputError, match="the validation range is empty"):
        refuse_detector_that_cannot_alarm({"smoke": component}, empty.val())
    component.threshold.fill_(1.0)  # finite: accepted
    refuse_detector_that_cannot_alarm({"smoke": component}, labeled.val())


def test_windows_name_the_setting_that_is_wrong():
    with pytest.raises(ESAInputError, match=r"column 'stride': value 0"):
        WindowDataModule(make_mission(), window=10, stride=0)


# ---------------------------------------------------------------------------------- predict.py
def test_predict_without_a_ckpt(tmp_path):
    proc = run_entry("predict.py", [], tmp_path)
    assert_one_line_error(proc, "ckpt")


@pytest.mark.parametrize("override", ["report_block=0", "max_figures=-1", "chunk_rows=1"])
def test_predict_names_a_bad_setting(tmp_path, capsys, override):
    cfg = compose_config("predict", ["ckpt=anywhere", override], tmp_path)
    exits_with_one_line(predict, cfg, capsys, f"{override}:")


def test_a_huge_spike_alarms_instead_of_crashing_the_forest(gru_detector, mission_dir, tmp_path):
    def spike(frame):
        at = frame.index.searchsorted(pd.Timestamp("2000-01-07"))
        frame.iloc[at : at + 3, 0] = 1e30

    data = with_channel(mission_dir, tmp_path / "spike", "channel_2", spike)
    sub = predict_into(tmp_path / "out", [f"ckpt={gru_detector}", "data=esa", f"data.root={data}"])
    mission = load_mission("esa", data, split_date=SPLIT, cache_dir=None)
    row = int(np.searchsorted(mission.timestamps, np.datetime64("2000-01-07")))
    assert sub.set_index("id")["is_anomaly"].loc[row : row + 3].any()


def test_the_test_range_is_scored_with_its_history(gru_detector, mission_dir, tmp_path):
    # channel_2 jumps to 1e3 where the test range begins and stays there: only the history
    # before the range shows the jump to the detrending
    def step(frame):
        frame.iloc[frame.index.searchsorted(pd.Timestamp(SPLIT)) :, 0] = 1e3

    data = with_channel(mission_dir, tmp_path / "step", "channel_2", step)
    sub = predict_into(tmp_path / "out", [f"ckpt={gru_detector}", "data=esa", f"data.root={data}"])
    assert sub["is_anomaly"].iloc[0] == 1


@pytest.fixture(scope="module")
def kaggle_detector(mission_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("kaggle_smoke")
    cfg = compose_config(
        "train",
        ["experiment=smoke", "data=kaggle", f"data.root={mission_dir / 'kaggle'}", *QUIET],
        out,
    )
    train(cfg)
    return out / "detector"


@pytest.mark.parametrize("value", [np.inf, 1e39])
def test_an_unrepresentable_kaggle_reading_alarms(kaggle_detector, mission_dir, tmp_path, value):
    data = tmp_path / "kaggle"
    shutil.copytree(mission_dir / "kaggle", data)
    table = pq.read_table(data / "test.parquet")
    column = table.column("channel_2").to_numpy().astype(np.float64)
    rows = np.arange(500, 600)
    column[rows] = value
    table = table.set_column(table.schema.get_field_index("channel_2"), "channel_2", [column])
    pq.write_table(table, data / "test.parquet")
    sub = predict_into(
        tmp_path / "out", [f"ckpt={kaggle_detector}", "data=kaggle", f"data.root={data}"]
    )
    assert sub["is_anomaly"].to_numpy()[rows].all()
    # the forced alarms alarm channel_2, which held the reading: intervals.csv names it first
    intervals = pd.read_csv(tmp_path / "out" / "intervals.csv", keep_default_na=False)
    ids = sub["id"].to_numpy()[rows]
    covering = intervals[(intervals["start"] <= ids[-1]) & (intervals["end"] >= ids[0])]
    assert len(covering)
    assert all(c.split(";")[0] == "channel_2" for c in covering["channels"])


# --------------------------------------------------------------------------------- evaluate.py
def test_evaluate_refuses_a_partial_predictions_file(mission_dir, tmp_path):
    mission = load_mission("esa", mission_dir, split_date=SPLIT, cache_dir=None)
    ids = np.arange(mission.test_start, mission.test_start + 100)
    pd.DataFrame({"id": ids, "is_anomaly": 0}).to_csv(tmp_path / "partial.csv", index=False)
    cfg = compose_config(
        "evaluate",
        [
            f"predictions={tmp_path / 'partial.csv'}",
            "data=esa",
            f"data.root={mission_dir}",
            f"data.split_date={SPLIT}",
        ],
        tmp_path,
    )
    missing = mission.n_rows - mission.test_start - 100
    with pytest.raises(ESAInputError, match=f"{missing} rows are missing"):
        evaluate_predictions(cfg)


def test_evaluate_names_a_ragged_csv_and_a_score_that_is_no_number_in_one_line(
    mission_dir, tmp_path
):
    mission = load_mission("esa", mission_dir, split_date=SPLIT, cache_dir=None)
    ids = np.arange(mission.test_start, mission.n_rows)
    frame = pd.DataFrame({"id": ids, "is_anomaly": 0, "score": np.linspace(0, 1, len(ids))})
    esa = ["data=esa", f"data.root={mission_dir}", f"data.split_date={SPLIT}"]
    ragged = tmp_path / "ragged.csv"
    lines = frame.to_csv(index=False).splitlines()
    lines[6] += ",1"
    ragged.write_text("\n".join(lines) + "\n")
    text = tmp_path / "text.csv"
    frame.astype({"score": object}).assign(score=lambda f: f["score"].where(
        f.index != 3, "abc")).to_csv(text, index=False)
    for path, named in ((ragged, "not a readable CSV"), (text, "'abc'")):
        cfg = compose_config("evaluate", [f"predictions={path}", *esa], tmp_path / path.stem)
        with pytest.raises(ESAInputError, match=named) as refused:
            evaluate_predictions(cfg)
        assert "\n" not in str(refused.value)
    frame.to_csv(tmp_path / "fine.csv", index=False)
    cfg = compose_config("evaluate", [f"predictions={tmp_path / 'fine.csv'}", *esa], tmp_path)
    assert 0.0 < evaluate_predictions(cfg)["AUC_PR"] <= 1.0


def test_evaluate_refuses_rows_without_labels_and_writes_nothing(mission_dir, tmp_path):
    """Kaggle's test.parquet has no is_anomaly: its zeros are unknowns, and scoring a
    submission against them gave 0.0 everywhere. A raw-ESA range whose labels hold no event
    is refused too: a range without labels has no metrics, never 0.0."""
    test = pd.read_parquet(mission_dir / "kaggle" / "test.parquet", columns=["id"])
    pd.DataFrame({"id": test["id"], "is_anomaly": 1}).to_csv(tmp_path / "k.csv", index=False)
    kaggle = ["data=kaggle", f"data.root={mission_dir / 'kaggle'}"]
    cfg = compose_config("evaluate", [f"predictions={tmp_path / 'k.csv'}", *kaggle],
                         tmp_path / "k")
    with pytest.raises(ESAInputError, match="no labeled anomaly or rare event") as refused:
        evaluate_predictions(cfg)
    assert "k.csv" in str(refused.value)
    for name in ("evaluation.json", "events.csv"):
        assert not (tmp_path / "k" / name).exists()

    unlabeled = tmp_path / "unlabeled"
    shutil.copytree(mission_dir, unlabeled)
    labels = pd.read_csv(unlabeled / "labels.csv", parse_dates=["StartTime"])
    before = labels["StartTime"].dt.tz_localize(None) < pd.Timestamp(SPLIT)
    labels[before].to_csv(unlabeled / "labels.csv", index=False)  # no test-range event left
    mission = load_mission("esa", unlabeled, split_date=SPLIT, cache_dir=None)
    ids = np.arange(mission.test_start, mission.n_rows)
    pd.DataFrame({"id": ids, "is_anomaly": 0}).to_csv(tmp_path / "e.csv", index=False)
    esa = ["data=esa", f"data.root={unlabeled}", f"data.split_date={SPLIT}"]
    cfg = compose_config("evaluate", [f"predictions={tmp_path / 'e.csv'}", *esa], tmp_path / "e")
    with pytest.raises(ESAInputError, match="nothing to score"):
        evaluate_predictions(cfg)
    labeled = ["data=esa", f"data.root={mission_dir}", f"data.split_date={SPLIT}"]
    cfg = compose_config("evaluate", [f"predictions={tmp_path / 'e.csv'}", *labeled],
                         tmp_path / "e")
    assert "EW_F_0.50" in evaluate_predictions(cfg)  # the same file on the labeled mission


def test_evaluate_refuses_a_range_holding_training_rows_without_labels(tmp_path):
    """A train.parquet without is_anomaly (``train_labeled`` False) beside a labeled
    test.parquet: predictions of the whole mission were scored as if the training rows held no
    anomaly, their alarms counted as false ones. Refused; the test range alone is scored."""
    root = tmp_path / "kg"
    root.mkdir()
    for part, ids in (("train", np.arange(0, 60)), ("test", np.arange(60, 90))):
        cols = {"id": ids, "channel_1": np.sin(ids / 3.0), "channel_2": np.cos(ids / 3.0)}
        if part == "test":
            cols["is_anomaly"] = ((ids >= 70) & (ids < 75)).astype(np.uint8)
        pq.write_table(pa.table(cols), root / f"{part}.parquet")
    kaggle = ["data=kaggle", f"data.root={root}"]
    whole = pd.DataFrame({"id": np.arange(90), "is_anomaly": 1})
    whole.to_csv(tmp_path / "whole.csv", index=False)
    cfg = compose_config("evaluate", [f"predictions={tmp_path / 'whole.csv'}", *kaggle],
                         tmp_path / "whole")
    with pytest.raises(ESAInputError, match="labels are unknown"):
        evaluate_predictions(cfg)
    whole[whole["id"] >= 60].to_csv(tmp_path / "test.csv", index=False)
    cfg = compose_config("evaluate", [f"predictions={tmp_path / 'test.csv'}", *kaggle],
                         tmp_path / "test")
    assert evaluate_predictions(cfg)["EW_recall"] == 1.0


def two_series_submission(tmp_path: Path, written: tuple[str, str]) -> tuple[pd.DataFrame, list]:
    """A NASA mission of two 30-row series, named in labeled_anomalies.csv as ``written``, and a
    submission using those names that catches the first series' event only."""
    rows = [(written[0], "MSL", "[[5, 9]]", "[point]", 30),
            (written[1], "MSL", "[[2, 4]]", "[point]", 30)]
    root = write_nasa(tmp_path / "nasa", rows=rows)
    alarm = np.isin(np.arange(30), np.arange(5, 10)).astype(int)
    sub = pd.DataFrame({"channel": [written[0]] * 30 + [written[1]] * 30, "id": [*range(30)] * 2,
                        "is_anomaly": [*alarm, *np.zeros(30, int)]})
    return sub, ["data=nasa", f"data.root={root}"]


def evaluated(tmp_path: Path, sub: pd.DataFrame, nasa: list, name: str) -> dict:
    """``evaluate.py``'s scores of ``sub`` written as ``<name>.csv``."""
    sub.to_csv(tmp_path / f"{name}.csv", index=False)
    cfg = compose_config("evaluate", [f"predictions={tmp_path / f'{name}.csv'}", *nasa],
                         tmp_path / name)
    return evaluate_predictions(cfg)


@pytest.mark.parametrize("name", ["NA", "None", "nan", "null"])
def test_evaluate_reads_a_nasa_series_named_like_a_missing_value_verbatim(tmp_path, name):
    """A series ``NA`` (the NASA reader keeps such names) was read from the submission as an
    empty cell and refused as 'not a channel of the mission'; an empty cell is still refused."""
    sub, nasa = two_series_submission(tmp_path, (name, "A-1"))
    assert evaluated(tmp_path, sub, nasa, "sub")["EW_recall"] == pytest.approx(0.5)
    events = pd.read_csv(tmp_path / "sub" / "events.csv", keep_default_na=False)
    assert dict(zip(events["series"], events["caught"], strict=True)) == {name: True, "A-1": False}
    sub.loc[3, "channel"] = ""
    with pytest.raises(ESAInputError, match="empty cell in row 4 after the header") as refused:
        evaluated(tmp_path, sub, nasa, "empty")
    assert "empty.csv" in str(refused.value) and "channel" in str(refused.value)


def test_evaluate_reads_nasa_channel_names_as_the_reader_does(tmp_path):
    """labeled_anomalies.csv naming ``" P-1"`` and ``"A-1 "``: the reader strips the names (the
    series are P-1 and A-1), and a submission copying the names from that file was refused as
    'not a channel of the mission', naming neither the file nor the row. evaluate.py strips them
    as the reader does; a name that is no series once stripped names the file, row and value."""
    sub, nasa = two_series_submission(tmp_path, (" P-1", "A-1 "))
    assert evaluated(tmp_path, sub, nasa, "sub")["EW_recall"] == pytest.approx(0.5)
    events = pd.read_csv(tmp_path / "sub" / "events.csv", keep_default_na=False)
    assert dict(zip(events["series"], events["caught"], strict=True)) == {"P-1": True,
                                                                          "A-1": False}
    sub.loc[40, "channel"] = " B-1"
    with pytest.raises(ESAInputError, match="row 41 after the header") as refused:
        evaluated(tmp_path, sub, nasa, "other")
    message = str(refused.value)
    assert "other.csv" in message and "' B-1'" in message and "P-1, A-1" in message, message


# --------------------------------------------------------------------------- the generator CLI
@pytest.mark.parametrize(
    ("args", "named"),
    [(["--channels", "0"], "channels=0"), (["--days", "-1"], "days=-1"), (["FILE"], "afile")],
)
def test_generator_refuses_bad_arguments(tmp_path, args, named):
    target = tmp_path / "afile"
    target.write_text("the user's notes")
    out = ["--out", str(target)] if args == ["FILE"] else ["--out", str(tmp_path / "m"), *args]
    proc = subprocess.run(
        [sys.executable, "-m", "esa_lightning.data.synthetic", *out],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-800:]
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ")
    assert named in proc.stderr
    assert target.read_text() == "the user's notes"


# ------------------------------------------------------------------------------------ readers
def test_kaggle_checks_the_types_of_every_file(tmp_path):
    write_kaggle(tmp_path / "train.parquet")
    table = pq.read_table(write_kaggle(tmp_path / "test.parquet", labels=False))
    table = table.set_column(1, "channel_1", pa.array(["x"] * table.num_rows))
    pq.write_table(table, tmp_path / "test.parquet")
    with pytest.raises(ESAInputError, match=r"test\.parquet: column 'channel_1'"):
        read_kaggle(tmp_path, cache_dir=tmp_path / "cache")


def test_kaggle_names_a_string_label_column(tmp_path):
    table = pq.read_table(write_kaggle(tmp_path / "train.parquet"))
    labels = pa.array([str(v) for v in table.column("is_anomaly").to_pylist()])
    table = table.set_column(table.schema.get_field_index("is_anomaly"), "is_anomaly", labels)
    pq.write_table(table, tmp_path / "train.parquet")
    with pytest.raises(ESAInputError, match="column 'is_anomaly'"):
        read_kaggle(tmp_path, cache_dir=tmp_path / "cache")


def test_load_mission_caches_outside_the_working_directory(tmp_path, monkeypatch):
    source = write_kaggle(tmp_path / "train.parquet")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    load_mission("kaggle", source)
    assert list(work.iterdir()) == []
    assert list((tmp_path / "xdg" / "esa_lightning").iterdir())
