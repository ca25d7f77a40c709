"""``metrics.label_channels`` through the jobs: train.py, predict.py, evaluate.py and merge.py on
a small ESA raw mission holding one test-range anomaly annotated only on a non-target channel,
a resume with another setting, and NASA series (each its own target channel)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from esa_lightning.errors import ESAInputError
from esa_lightning.jobs.evaluate import evaluate_predictions
from esa_lightning.jobs.predict import predict
from esa_lightning.jobs.train import train
from tests.conftest import TrainedRun, compose_config
from tests.helpers import write_nasa

FAST = ["experiment=smoke", "logger=none", "trainer.enable_progress_bar=false",
        "~callbacks.progress_bar"]
SCORED = {"Anomaly", "Rare Event"}  # the categories EW_recall counts


@pytest.fixture(scope="module")
def mission(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A 4-channel synthetic mission (channel_1 and channel_2 not target channels,
    channel_3 and channel_4 target ones) whose first test-range anomaly is moved onto
    channel_1 alone; the folder and that event's ID."""
    from esa_lightning.data.readers.synthetic import generate_mission

    root = generate_mission(tmp_path_factory.mktemp("lc") / "m", channels=4, groups=2, days=8,
                            seed=3)
    channels = pd.read_csv(root / "channels.csv")
    assert list(channels.loc[channels["Target"] == "NO", "Channel"]) == ["channel_1",
                                                                          "channel_2"]
    labels = pd.read_csv(root / "labels.csv")
    types = pd.read_csv(root / "anomaly_types.csv").set_index("ID")
    split = pd.Timestamp(json.loads((root / "mission.json").read_text())["split_date"], tz="UTC")
    in_test = pd.to_datetime(labels["StartTime"], format="ISO8601") >= split
    anomaly = labels["ID"].map(types["Category"]) == "Anomaly"
    moved = labels.loc[in_test & anomaly, "ID"].iloc[0]
    labels.loc[labels["ID"] == moved, "Channel"] = "channel_1"
    labels.drop_duplicates(["ID", "Channel"]).to_csv(root / "labels.csv", index=False)
    return root, moved


@pytest.fixture(scope="module")
def trained_target(mission, tmp_path_factory) -> TrainedRun:
    """``FAST`` on the mission with ``metrics.label_channels=target``, trained once; each test
    starts from a fresh copy of its folder."""
    folder = tmp_path_factory.mktemp("trained") / "train"
    train(compose_config("train", [*FAST, f"data.root={mission[0]}",
                                   "metrics.label_channels=target"], folder))
    return TrainedRun(folder).keep()


def test_train_predict_and_evaluate_score_the_target_channels_labels(mission, trained_target,
                                                                     tmp_path):
    """Trained with ``target``, the detector predicted and its submission evaluated under
    both settings: ``target`` drops the moved event (on channel_1 only) and nothing else, and
    the three jobs agree on the numbers of each setting."""
    root, moved = mission
    data = [f"data.root={root}"]
    trained_folder = trained_target.fresh()  # FAST, data, label_channels=target trained there
    trained = json.loads((trained_folder / "metrics.json").read_text())
    detector = trained_folder / "detector"
    predicted, evaluated, events = {}, {}, {}
    for setting in ("all", "target"):
        lc = f"metrics.label_channels={setting}"
        predicted[setting] = predict(compose_config(
            "predict", [f"ckpt={detector}", *data, lc], tmp_path / f"predict_{setting}"))
        submission = tmp_path / "predict_all" / "submission.csv"  # the same alarms
        evaluated[setting] = evaluate_predictions(compose_config(
            "evaluate", [f"predictions={submission}", *data, lc], tmp_path / f"eval_{setting}"))
        events[setting] = pd.read_csv(tmp_path / f"eval_{setting}" / "events.csv",
                                      keep_default_na=False)
        # evaluate.py scores the submission to predict.py's numbers of the same setting
        assert evaluated[setting] == pytest.approx(
            {k: predicted[setting][f"test/{k}"] for k in evaluated[setting]}, nan_ok=True)
        pd.testing.assert_frame_equal(
            events[setting],
            pd.read_csv(tmp_path / f"predict_{setting}" / "events.csv", keep_default_na=False))
    # train.py's test report is predict.py's under the setting it was trained with
    assert predicted["target"] == pytest.approx(
        {k: v for k, v in trained.items() if k.startswith("test/")}, nan_ok=True)
    # the events: every test-range event with a segment on a target channel, and under "all"
    # the moved one besides (its only segment is on channel_1)
    every, target = events["all"], events["target"]
    assert set(every["id"]) == set(target["id"]) | {moved} and moved not in set(target["id"])
    assert set(every.loc[every["id"] == moved, "channels"]) == {"channel_1"}
    # EW_recall: the caught scored events over the scored events; the moved anomaly is one
    # more event under "all", caught or not as the same alarms catch it
    n = int(target["category"].isin(SCORED).sum())
    caught = int(target.loc[target["category"].isin(SCORED), "caught"].sum())
    moved_caught = int(every.loc[every["id"] == moved, "caught"].iloc[0])
    assert n >= 1
    assert evaluated["target"]["EW_recall"] == pytest.approx(caught / n)
    assert evaluated["all"]["EW_recall"] == pytest.approx((caught + moved_caught) / (n + 1))
    assert evaluated["all"]["EW_recall"] != evaluated["target"]["EW_recall"]


def test_a_resume_with_another_label_channels_is_refused(mission, trained_target):
    """train.py's threshold fits and the provisional validation metrics that early stopping
    and the best checkpoint may follow read the events the setting keeps: a resume with the
    other setting went on, mixing the two in one run. It is refused as another data setting
    is, naming both values; the same setting resumes."""
    root, _ = mission
    run = [*FAST, f"data.root={root}", "metrics.label_channels=target"]
    tmp_path = trained_target.fresh()  # run trained there
    with pytest.raises(ESAInputError, match=r"trained with metrics\.label_channels=target, "
                                            r"this run asks metrics\.label_channels=all"):
        train(compose_config("train", [*run, "metrics.label_channels=all", "ckpt_path=last"],
                             tmp_path))
    assert train(compose_config("train", [*run, "ckpt_path=last"], tmp_path)) is not None


def test_merge_py_reports_and_refits_under_label_channels(mission, tmp_path):
    """merge.py fits the merged detector's gap closing again on the events (an F0.5 search)
    and scores it as train.py does: it had no ``metrics.label_channels`` (the override was
    refused; read from the config but not applied, its test/EW_recall was 0.25 where
    predict.py of the merged detector said 0.2857: the moved event counted)."""
    from esa_lightning.jobs.merge import merge

    root, _ = mission
    data = [f"data.root={root}", "data.period=5min"]
    quick = [*data, "datamodule.detrend=null", "model.post_processing.rf_gate=null",
             "model.hidden_size=8", "model.latent_dim=4", "trainer.max_epochs=1",
             "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=2", "logger=none",
             "callbacks.esa_metrics=null", "trainer.enable_progress_bar=false",
             "~callbacks.progress_bar", "~callbacks.lr_monitor"]
    for seed in (1, 2):
        train(compose_config("train", [*quick, f"seed={seed}"], tmp_path / str(seed)))
    runs = ",".join(str(tmp_path / str(seed) / "detector") for seed in (1, 2))
    lc = "metrics.label_channels=target"
    merged = merge(compose_config("merge", [f"detectors=[{runs}]", *data, lc],
                                  tmp_path / "merged"))
    again = predict(compose_config("predict", [f"ckpt={tmp_path / 'merged' / 'detector'}",
                                               *data, lc], tmp_path / "predict"))
    assert any(k.startswith("test/") for k in merged)
    assert {k: v for k, v in merged.items() if k.startswith("test/")} == pytest.approx(
        again, nan_ok=True)


def test_nasa_series_are_each_their_own_target_channel(tmp_path):
    """NASA series: each series' one channel is its target channel, so ``target`` scores the
    same events as ``all`` in train.py, predict.py and evaluate.py."""
    n_test = 60

    def values(n: int) -> np.ndarray:
        level = np.zeros(n)
        if n == n_test:  # a test file: a level shift on the labeled rows
            level[20:30] = 5.0
        return np.column_stack([np.sin(np.arange(n) / 3.0) + level, np.zeros(n)])

    rows = [(c, "SMAP", "[[20, 29]]", "[point]", n_test) for c in ("A-1", "B-1")]
    root = write_nasa(tmp_path / "smap", n_train=150, rows=rows, values=values)
    data = ["data=nasa", f"data.root={root}"]
    base = ["model=window_pca", "datamodule=windows", "logger=none",
            "trainer.enable_progress_bar=false", "~callbacks.progress_bar"]
    results = {}
    for setting in ("all", "target"):
        lc = f"metrics.label_channels={setting}"
        out = tmp_path / setting
        train(compose_config("train", [*base, *data, lc], out / "train"))
        trained = json.loads((out / "train" / "metrics.json").read_text())
        predicted = predict(compose_config(
            "predict", [f"ckpt={out / 'train' / 'detector'}", *data, lc], out / "predict"))
        evaluated = evaluate_predictions(compose_config(
            "evaluate", [f"predictions={out / 'predict' / 'submission.csv'}", *data, lc],
            out / "eval"))
        assert predicted == pytest.approx(
            {k: v for k, v in trained.items() if k.startswith("test/")}, nan_ok=True)
        assert evaluated == pytest.approx({k: predicted[f"test/{k}"] for k in evaluated},
                                          nan_ok=True)
        events = pd.read_csv(out / "eval" / "events.csv", keep_default_na=False)
        assert set(events["series"]) == {"A-1", "B-1"}
        results[setting] = (predicted, evaluated, events)
    assert results["target"][0] == results["all"][0]
    assert results["target"][1] == results["all"][1]
    pd.testing.assert_frame_equal(results["target"][2], results["all"][2])
    assert results["all"][0]["test/EW_recall"] > 0  # events were scored, some caught


def test_a_mission_labeled_on_non_target_channels_only_says_why_it_is_not_scored(
        tmp_path, capsys):
    """Every label on channel_1 (no target channel): under ``target`` train.py's summary said
    ``val: not scored (no labeled anomaly or rare event)`` of a mission with labels there, not
    why. It names the events set aside on each range and the setting; ``predict.py`` alike."""
    from esa_lightning.data.readers.synthetic import generate_mission

    root = generate_mission(tmp_path / "m", channels=4, groups=2, days=8, seed=3)
    labels = pd.read_csv(root / "labels.csv").assign(Channel="channel_1")
    labels.drop_duplicates(["ID", "Channel"]).to_csv(root / "labels.csv", index=False)
    types = pd.read_csv(root / "anomaly_types.csv").set_index("ID")["Category"]
    mission = json.loads((root / "mission.json").read_text())
    starts = pd.to_datetime(labels.drop_duplicates("ID").set_index("ID")["StartTime"],
                            format="ISO8601")
    in_test = starts >= pd.Timestamp(mission["split_date"], tz="UTC")
    n_test = int((in_test & starts.index.map(types).isin(SCORED)).sum())
    assert n_test >= 1
    data = [f"data.root={root}", "metrics.label_channels=target"]
    train(compose_config("train", [*FAST, *data], tmp_path / "train"))
    printed = capsys.readouterr().out
    assert json.loads((tmp_path / "train" / "metrics.json").read_text()) == {}
    why = ("no labeled anomaly or rare event on the target channels: {} labeled event(s) on "
           "non-target channels only set aside by metrics.label_channels=target")
    assert f"  test: not scored ({why.format(n_test)})" in printed.splitlines()
    assert "  val: not scored (no labeled anomaly or rare event" in printed
    predict(compose_config("predict", [f"ckpt={tmp_path / 'train' / 'detector'}", *data],
                           tmp_path / "predict"))
    assert f"  test: not scored ({why.format(n_test)})" in capsys.readouterr().out.splitlines()
    # evaluate.py refused the submission saying only that the rows hold no labeled event
    submission = f"predictions={tmp_path / 'predict' / 'submission.csv'}"
    with pytest.raises(ESAInputError, match=rf"no labeled anomaly or rare event on the target "
                                            rf"channels \({n_test} labeled event\(s\) on "
                                            r"non-target channels only set aside by "
                                            r"metrics\.label_channels=target\): nothing to "
                                            r"score; score them with metrics\.label_channels=all"):
        evaluate_predictions(compose_config("evaluate", [submission, *data], tmp_path / "ev"))


def test_evaluate_says_when_target_set_every_event_of_its_rows_aside(tmp_path):
    """evaluate.py alone, no detector: a submission of the test range of a mission whose every
    label lies on channel_1 (no target channel). Under ``target`` the refusal names the events
    set aside and the setting (it said only that the rows hold no labeled event), and writes
    nothing; under ``all`` the same file is scored."""
    from esa_lightning.data.readers.synthetic import generate_mission
    from esa_lightning.jobs.common import mission_from_config

    root = generate_mission(tmp_path / "m", channels=4, groups=2, days=8, seed=3)
    labels = pd.read_csv(root / "labels.csv").assign(Channel="channel_1")
    labels.drop_duplicates(["ID", "Channel"]).to_csv(root / "labels.csv", index=False)
    types = pd.read_csv(root / "anomaly_types.csv").set_index("ID")["Category"]
    split = pd.Timestamp(json.loads((root / "mission.json").read_text())["split_date"], tz="UTC")
    spans = labels.assign(
        StartTime=pd.to_datetime(labels["StartTime"], format="ISO8601"),
        EndTime=pd.to_datetime(labels["EndTime"], format="ISO8601"),
    ).groupby("ID").agg(StartTime=("StartTime", "min"), EndTime=("EndTime", "max"))
    assert not ((spans["StartTime"] < split) & (spans["EndTime"] >= split)).any()  # none across
    n_test = int(((spans["StartTime"] >= split) & spans.index.map(types).isin(SCORED)).sum())
    assert n_test >= 1

    def config(setting: str, folder: str):
        return compose_config("evaluate", [f"predictions={tmp_path / 'submission.csv'}",
                                           f"data.root={root}",
                                           f"metrics.label_channels={setting}"],
                              tmp_path / folder)

    mission = mission_from_config(config("all", "ev_all").data)
    ids = np.arange(mission.test_start, mission.n_rows)
    alarms = (ids % 50 == 0).astype(np.uint8)
    pd.DataFrame({"id": ids, "is_anomaly": alarms}).to_csv(tmp_path / "submission.csv",
                                                           index=False)
    why = (rf"no labeled anomaly or rare event on the target channels \({n_test} labeled "
           r"event\(s\) on non-target channels only set aside by metrics\.label_channels="
           r"target\): nothing to score; score them with metrics\.label_channels=all")
    with pytest.raises(ESAInputError, match=why) as refused:
        evaluate_predictions(config("target", "ev_target"))
    assert "submission.csv" in str(refused.value) and "\n" not in str(refused.value)
    assert not (tmp_path / "ev_target" / "evaluation.json").exists()
    assert "EW_F_0.50" in evaluate_predictions(config("all", "ev_all"))
