"""train() and predict() through Hydra's compose API on a small synthetic mission."""

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from esa_lightning.errors import ESAInputError
from esa_lightning.jobs.container import main as container_main
from esa_lightning.jobs.predict import predict
from esa_lightning.jobs.train import train
from esa_lightning.reporting.outputs import INTERVAL_COLUMNS
from tests.conftest import CONF, MSL, REPO, compose_config
from tests.helpers import checkout_env


@pytest.fixture(scope="module")
def smoke_run(small_mission_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke_run")
    cfg = compose_config("train", ["experiment=smoke", f"data.root={small_mission_dir}",
                                   "trainer.enable_progress_bar=false",
                                   "~callbacks.progress_bar"], out)
    value = train(cfg)
    return out, value


def test_train_writes_metrics_detector_and_tensorboard(smoke_run):
    out, value = smoke_run
    metrics = json.loads((out / "metrics.json").read_text())
    assert value == metrics["val/EW_F_0.50"]
    for key in ("test/EW_F_0.50", "test/AFF_F_0.50", "test/EW_F_0.50_anomaly", "val/AUC_PR"):
        assert 0.0 <= metrics[key] <= 1.0
    assert (out / "detector" / "detector.json").is_file()
    assert list((out / "tensorboard").rglob("events.out.tfevents*"))


def test_predict_writes_every_output(smoke_run, small_mission_dir, tmp_path):
    out, _ = smoke_run
    cfg = compose_config("predict", [f"ckpt={out / 'detector'}", f"data.root={small_mission_dir}",
                                     "chunk_rows=5000", "max_figures=2"], tmp_path)
    metrics = predict(cfg)
    sub = pd.read_csv(tmp_path / "submission.csv")
    assert list(sub.columns) == ["id", "is_anomaly"]
    assert set(sub["is_anomaly"].unique()) <= {0, 1}
    assert sub["id"].is_monotonic_increasing and sub["id"].is_unique
    intervals = pd.read_csv(tmp_path / "intervals.csv")
    assert list(intervals.columns) == INTERVAL_COLUMNS
    report = pd.read_csv(tmp_path / "report.csv")
    assert list(report.columns) == ["range", "status", "indices"]
    assert (tmp_path / "index.html").is_file()
    assert "test/EW_F_0.50" in metrics
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics


def test_container_entrypoint_writes_submission(smoke_run, small_mission_dir, tmp_path):
    out, _ = smoke_run
    data = tmp_path / "data"
    data.mkdir()
    kaggle = small_mission_dir / "kaggle"
    (data / "test.parquet").write_bytes((kaggle / "test.parquet").read_bytes())
    artifacts = tmp_path / "artifacts"
    (out / "detector").rename(artifacts)
    try:
        assert container_main(["--data", str(data), "--artifacts", str(artifacts)]) == 0
    finally:
        artifacts.rename(out / "detector")
    sub = pd.read_csv(data / "submission.csv")
    test_ids = pd.read_parquet(kaggle / "test.parquet", columns=["id"])["id"].to_numpy()
    np.testing.assert_array_equal(sub["id"].to_numpy(), test_ids)
    assert set(sub["is_anomaly"].unique()) <= {0, 1}


def test_container_entrypoint_reports_bad_input_in_one_line_with_code_2(tmp_path, capsys):
    assert container_main(["--data", str(tmp_path), "--artifacts", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {tmp_path / 'test.parquet'}: test file not found"]


def test_predict_refuses_missing_artifact(small_mission_dir, tmp_path):
    cfg = compose_config("predict", [f"ckpt={tmp_path / 'nothing'}",
                                     f"data.root={small_mission_dir}"], tmp_path)
    with pytest.raises(ESAInputError, match="detector.json"):
        predict(cfg)


def test_train_on_independent_series_scores_each_validation_range_once(tmp_path, monkeypatch,
                                                                       one_thread):
    # the artifact's calibration scores each series' validation range; the val/ metrics do not
    # score it again: a NASA validation range (the training file's last rows) holds no label
    from collections import Counter

    from esa_lightning.artifact import Detector
    from esa_lightning.data.readers.nasa import read_nasa
    from tests.helpers import write_nasa

    rows = [(chan, "MSL", "[[5, 9]]", "[point]", 40) for chan in ("A-1", "B-2")]
    root = write_nasa(tmp_path / "msl", n_train=150, rows=rows)
    val = {name: s.timestamps[s.val_start : s.test_start]
           for name, s in read_nasa(root, val_fraction=0.2).series.items()}
    whole_val = Counter()
    score_rows = Detector.score_rows

    def scored(self, mission, *args, **kwargs):
        ts, own = mission.timestamps, val[mission.name]
        whole_val[mission.name] += bool(len(ts) and ts[0] <= own[0] and ts[-1] >= own[-1])
        return score_rows(self, mission, *args, **kwargs)

    monkeypatch.setattr(Detector, "score_rows", scored)
    cfg = compose_config("train", [
        "experiment=gru_ae_nasa", f"data.root={root}", "datamodule.window=10",
        "model.hidden_size=8", "model.latent_dim=4", "trainer.max_epochs=1",
        "trainer.limit_train_batches=2", "logger=none", "trainer.enable_progress_bar=false",
        "~callbacks.progress_bar", "~callbacks.lr_monitor",
    ], tmp_path / "train")
    train(cfg)
    assert whole_val == {"A-1": 1, "B-2": 1}
    metrics = json.loads((tmp_path / "train" / "metrics.json").read_text())
    assert "test/EWraw_F_0.50" in metrics and not any(k.startswith("val/EW") for k in metrics)
    stored = json.loads((tmp_path / "train" / "detector" / "detector.json").read_text())
    assert stored["info"]["calibration"]["source"] == "validation"


@pytest.mark.skipif(not MSL.is_dir(), reason="shared MSL data not present")
def test_gru_ae_nasa_forecaster_runs_on_two_msl_channels_and_predicts(tmp_path, caplog):
    out = tmp_path / "train"
    cfg = compose_config("train", [
        "experiment=gru_ae_nasa", f"data.root={MSL}", "data.channels=[T-13,C-1]",
        "trainer.max_epochs=1", "trainer.limit_train_batches=3", "logger=none",
        "trainer.enable_progress_bar=false", "~callbacks.progress_bar", "~callbacks.lr_monitor",
    ], out)
    with caplog.at_level("WARNING"):
        assert train(cfg) is None  # optimized_metric val/EW_F_0.50: no validation event
    assert "optimized_metric" not in caplog.text  # a plain run: no sweep reads it
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("test/EWraw_F_0.50", "test/EWraw_recall", "test/EW_F_0.50"):
        assert 0.0 <= metrics[key] <= 1.0
    # NASA labels only the test stretches: no labeled validation metric, never a 0.0
    assert not any(k.startswith("val/EW") or k.startswith("val/AFF") for k in metrics)
    assert metrics["val/forecast_MAE"] > 0  # the label-free figure forecasters are chosen by
    hparams = json.loads((out / "detector" / "detector.json").read_text())
    (entry,) = hparams["components"].values()
    threshold = entry["hparams"]["post_processing"]["threshold"]
    assert entry["hparams"]["objective"] == "forecast"
    assert threshold["kind"] == "telemanom" and threshold["error_buffer"] == 100
    # the ablation script re-scores the same detector: its first line is the trained procedure
    script = REPO / "scripts" / "ablate_online_threshold.py"
    lines = subprocess.run(
        [sys.executable, str(script), str(out / "detector"), "--data", str(MSL),
         "--channels", "T-13,C-1"], capture_output=True, text=True, check=True, env=checkout_env(),
    ).stdout.splitlines()
    assert len(lines) == 5 and lines[0].startswith("as trained")
    assert f"F0.5 {metrics['test/EWraw_F_0.50']:.3f}" in lines[0]
    pcfg = compose_config("predict", [f"ckpt={out / 'detector'}", "data=nasa_msl",
                                      f"data.root={MSL}", "data.channels=[T-13,C-1]"],
                          tmp_path / "predict")
    again = predict(pcfg)
    assert again["test/EWraw_F_0.50"] == metrics["test/EWraw_F_0.50"]
    sub = pd.read_csv(tmp_path / "predict" / "submission.csv")
    assert set(sub["channel"]) == {"T-13", "C-1"} and set(sub["is_anomaly"]) <= {0, 1}
    # evaluate.py scores the NASA submission to predict's numbers (it refused NASA before)
    from esa_lightning.jobs.evaluate import evaluate_predictions

    ecfg = compose_config("evaluate", [f"predictions={tmp_path / 'predict' / 'submission.csv'}",
                                       "data=nasa_msl", f"data.root={MSL}",
                                       "data.channels=[T-13,C-1]"], tmp_path / "eval")
    scored = evaluate_predictions(ecfg)
    assert scored["EWraw_F_0.50"] == pytest.approx(metrics["test/EWraw_F_0.50"])
    assert scored["EW_F_0.50"] == pytest.approx(metrics["test/EW_F_0.50"])
    # and lists each series' events as predict.py does, alarms numbered across the series
    mine = pd.read_csv(tmp_path / "eval" / "events.csv", keep_default_na=False)
    theirs = pd.read_csv(tmp_path / "predict" / "events.csv", keep_default_na=False)
    pd.testing.assert_frame_equal(mine, theirs)
    assert set(mine["series"]) == {"T-13", "C-1"}
    # every metric as predict's; AUC_PR ranks rows by a score, which the file does not hold
    assert "AUC_PR" not in scored
    assert scored == pytest.approx({k: metrics[f"test/{k}"] for k in scored}, nan_ok=True)
    # the series in another order: the same numbers (affiliation zones followed file order)
    sub.iloc[::-1].to_csv(tmp_path / "reversed.csv", index=False)
    ecfg.predictions = str(tmp_path / "reversed.csv")
    assert evaluate_predictions(ecfg) == pytest.approx(scored, nan_ok=True)
    rng = np.random.default_rng(0)
    sub.assign(score=rng.random(len(sub))).to_csv(tmp_path / "scored.csv", index=False)
    ecfg.predictions = str(tmp_path / "scored.csv")
    assert 0.0 < evaluate_predictions(ecfg)["AUC_PR"] <= 1.0
    sub.assign(score="abc").to_csv(tmp_path / "text.csv", index=False)
    ecfg.predictions = str(tmp_path / "text.csv")
    with pytest.raises(ESAInputError, match="score"):
        evaluate_predictions(ecfg)
    # a NASA folder whose labels list no sequence: no metrics.json, no events.csv (were 0.0)
    unlabeled = tmp_path / "unlabeled"
    for part in ("train", "test"):
        (unlabeled / part).mkdir(parents=True)
        for chan in ("T-13", "C-1"):
            source = (MSL / part / f"{chan}.npy").read_bytes()
            (unlabeled / part / f"{chan}.npy").write_bytes(source)
    table = pd.read_csv(MSL / "labeled_anomalies.csv")
    table = table[table["chan_id"].isin(["T-13", "C-1"])].assign(anomaly_sequences="[]", **{
        "class": "[]"})
    table.to_csv(unlabeled / "labeled_anomalies.csv", index=False)
    ucfg = compose_config("predict", [f"ckpt={out / 'detector'}", "data=nasa_msl",
                                      f"data.root={unlabeled}", "data.channels=[T-13,C-1]"],
                          tmp_path / "unlabeled_predict")
    assert predict(ucfg) == {}
    written = {p.name for p in (tmp_path / "unlabeled_predict").iterdir()}
    assert "submission.csv" in written and not {"metrics.json", "events.csv"} & written
    sub.loc[0, "channel"] = "X-99"
    sub.to_csv(tmp_path / "bad.csv", index=False)
    ecfg.predictions = str(tmp_path / "bad.csv")
    with pytest.raises(ESAInputError, match="X-99"):
        evaluate_predictions(ecfg)


@pytest.mark.skipif(not MSL.is_dir(), reason="shared MSL data not present")
def test_forecast_search_minimises_the_validation_error_without_scoring_test(tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    overrides = ["hparams_search=optuna_forecast", "experiment=gru_ae_nasa"]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        search = compose("train", overrides).optuna
    assert search.direction == "minimize" and "datamodule.window" in search.params
    cfg = compose_config("train", [
        *overrides, f"data.root={MSL}", "data.channels=[T-13,C-1]", "trainer.max_epochs=1",
        "trainer.limit_train_batches=3", "logger=none", "trainer.enable_progress_bar=false",
        "~callbacks.progress_bar", "~callbacks.lr_monitor",
    ], tmp_path)
    value = train(cfg)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert value == metrics["val/forecast_MAE"] > 0
    assert not any(k.startswith("test/") for k in metrics)


@pytest.mark.skipif(not MSL.is_dir(), reason="shared MSL data not present")
def test_members_train_through_hydra_and_merge_py_merges_runs_of_other_seeds(tmp_path):
    from esa_lightning.artifact import Detector
    from esa_lightning.jobs.merge import merge

    data = [f"data.root={MSL}", "data.channels=[T-13,C-1]"]
    quick = ["experiment=gru_ae_nasa", *data, "trainer.max_epochs=1",
             "trainer.limit_train_batches=2", "logger=none", "test=false",
             "trainer.enable_progress_bar=false", "~callbacks.progress_bar",
             "~callbacks.lr_monitor"]
    train(compose_config("train", [*quick, "model.members=2"], tmp_path / "two"))
    train(compose_config("train", [*quick, "seed=1"], tmp_path / "one"))
    runs = [tmp_path / "two" / "detector", tmp_path / "one" / "detector"]
    assert Detector.load(runs[0]).components["gru_ae_nasa"].hparams.members == 2
    cfg = compose_config("merge", [f"detectors=[{runs[0]},{runs[1]}]", "data=nasa_msl", *data,
                                   "test=false"], tmp_path / "merged")
    maes = merge(cfg)
    assert set(maes) == {f"val/forecast_MAE/{k}" for k in (*map(str, runs), "merged")}
    assert all(v > 0 for v in maes.values())
    merged = Detector.load(tmp_path / "merged" / "detector")
    assert merged.components["gru_ae_nasa"].hparams.members == 3
    assert "members: 3" in (tmp_path / "merged" / "detector" / "config.yaml").read_text()
    scores = predict(compose_config("predict", [f"ckpt={tmp_path / 'merged' / 'detector'}",
                                                "data=nasa_msl", *data], tmp_path / "predict"))
    assert 0.0 <= scores["test/EWraw_F_0.50"] <= 1.0


def test_merge_py_scores_merged_autoencoders_on_validation_and_test(small_mission_dir,
                                                                   tmp_path, capsys):
    """GRU autoencoders (the default gru_ae) have no forecast error: merge.py wrote an empty
    metrics.json and printed only n/a; it scores the merged detector as train.py does."""
    from esa_lightning.jobs.merge import merge

    few_rows = [f"data.root={small_mission_dir}", "data.channels=[channel_1,channel_2,channel_3]",
                "data.period=5min"]
    quick = [*few_rows, "datamodule.detrend=null", "model.post_processing.rf_gate=null",
             "model.hidden_size=8", "model.latent_dim=4", "trainer.max_epochs=1",
             "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=2", "logger=none",
             "callbacks.esa_metrics=null", "trainer.enable_progress_bar=false",
             "~callbacks.progress_bar", "~callbacks.lr_monitor"]
    for seed in (1, 2):
        train(compose_config("train", [*quick, f"seed={seed}"], tmp_path / str(seed)))
    trained = json.loads((tmp_path / "1" / "metrics.json").read_text())
    runs = [tmp_path / str(seed) / "detector" for seed in (1, 2)]
    capsys.readouterr()
    results = merge(compose_config("merge", [f"detectors=[{runs[0]},{runs[1]}]", *few_rows],
                                   tmp_path / "merged"))
    assert json.loads((tmp_path / "merged" / "metrics.json").read_text()) == results
    scored = {k for k in trained if k.startswith(("val/", "test/"))}
    assert scored and set(results) == scored  # the keys train.py wrote for a source
    assert all(0.0 <= results[k] <= 1.0 for k in results if k.endswith("EW_F_0.50"))
    printed = capsys.readouterr().out
    assert "n/a" not in printed and "test/EW_F_0.50" in printed


def test_merge_py_merges_runs_trained_on_the_channels_in_another_order(small_mission_dir,
                                                                      tmp_path):
    """A run trained with data.channels listed in another order was refused ("schema
    differs"); it is merged reading the channels by name: its forecast error on the data in the
    first run's order is the one train.py measured on the data in its own order."""
    from esa_lightning.artifact import Detector
    from esa_lightning.jobs.merge import merge

    data = [f"data.root={small_mission_dir}", "data.period=5min"]
    quick = [*data, "datamodule.detrend=null", "model.post_processing.rf_gate=null",
             "model.objective=forecast", "model.hidden_size=8", "model.latent_dim=4",
             "trainer.max_epochs=1", "+trainer.limit_train_batches=2",
             "+trainer.limit_val_batches=2", "logger=none", "callbacks.esa_metrics=null",
             "trainer.enable_progress_bar=false", "~callbacks.progress_bar",
             "~callbacks.lr_monitor", "test=false"]
    orders = {"1": "[channel_1,channel_2,channel_3]", "2": "[channel_3,channel_1,channel_2]"}
    for seed, order in orders.items():
        train(compose_config("train", [*quick, f"seed={seed}", f"data.channels={order}"],
                             tmp_path / seed))
    runs = [tmp_path / seed / "detector" for seed in orders]
    results = merge(compose_config("merge", [f"detectors=[{runs[0]},{runs[1]}]", *data,
                                             f"data.channels={orders['1']}", "test=false"],
                                   tmp_path / "merged"))
    own = json.loads((tmp_path / "2" / "metrics.json").read_text())["val/forecast_MAE"]
    assert results[f"val/forecast_MAE/{runs[1]}"] == pytest.approx(own, rel=1e-5)
    merged = Detector.load(tmp_path / "merged" / "detector")
    assert merged.schema["channels"] == ["channel_1", "channel_2", "channel_3"]


def test_no_logger_runs_with_the_default_callbacks(small_mission_dir, tmp_path):
    """logger=none with the default callbacks (a learning-rate monitor among them) was refused
    by Lightning for a model without an optimizer."""
    cfg = compose_config("train", [
        "model=global_std", "datamodule=rows", f"data.root={small_mission_dir}", "logger=none",
        "trainer.enable_progress_bar=false", "~callbacks.progress_bar", "test=false",
    ], tmp_path)
    assert "lr_monitor" in cfg.callbacks
    train(cfg)
    assert (tmp_path / "metrics.json").is_file() and (tmp_path / "detector").is_dir()


@pytest.mark.parametrize("sweep", [False, True], ids=["plain", "multirun"])
def test_a_run_without_the_optimized_metric_advises_only_in_a_sweep(sweep, tmp_path, caplog,
                                                                    one_thread):
    # NASA labels only the test files: a window_pca run has test/ metrics and no val/ one. A
    # plain run, which optimises nothing, used to warn that a sweep had nothing to optimise.
    from tests.helpers import write_nasa

    rows = [(chan, "MSL", "[[5, 9]]", "[point]", 40) for chan in ("A-1", "B-2")]
    root = write_nasa(tmp_path / "msl", n_train=150, rows=rows)
    out = tmp_path / "train"
    args = ["model=window_pca", "data=nasa_msl", f"data.root={root}", "trainer.max_epochs=1",
            "logger=none", "trainer.enable_progress_bar=false", "~callbacks.progress_bar",
            "~callbacks.lr_monitor"]
    if sweep:  # a job of a -m sweep (of one job)
        proc = subprocess.run(
            [sys.executable, str(REPO / "train.py"), "-m", *args, f"hydra.sweep.dir={out}",
             f"paths.root_dir={tmp_path}"],
            cwd=tmp_path, capture_output=True, text=True, timeout=300, env=checkout_env(),
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        out, console = out / "0", proc.stdout + proc.stderr
    else:
        cfg = compose_config("train", args, out)
        with caplog.at_level("WARNING"):
            assert train(cfg) is None
        console = caplog.text
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics and not any(k.startswith("val/") for k in metrics)
    advice = [line for line in console.splitlines() if "optimized_metric" in line]
    if not sweep:
        assert advice == []
        return
    assert len(advice) == 1, advice
    named = set(re.findall(r"\b(?:val|test)/[\w.]+", advice[0]))
    assert named - {"val/EW_F_0.50"} <= set(metrics), advice[0]
    assert "no validation (val/) metric" in advice[0]


def test_the_optimized_metric_advice_names_a_validation_metric_the_run_has():
    from esa_lightning.jobs.common import optimized_metric_advice

    metrics = {"val/forecast_MAE": 0.3, "val/loss_x": 1.0, "test/EW_F_0.50": 0.5}
    assert optimized_metric_advice("val/forecast_MAE", metrics) is None
    advice = optimized_metric_advice("val/EW_F_0.50", metrics)
    assert "optimized_metric=val/forecast_MAE" in advice
    assert "test/EW_F_0.50" not in advice
    assert "val/loss_x" in advice  # every validation key it could choose
