"""What a training run reports: honest metrics (a range without labels is "not scored", never
0.0), provisional and final metrics under separate TensorBoard tags, the HParams tab filled, and
a console that stays short."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from esa_lightning.jobs.train import train
from tests.conftest import REPO, compose_config
from tests.helpers import checkout_env

QUICK = ["trainer.enable_progress_bar=false", "~callbacks.progress_bar"]


@pytest.fixture(scope="module")
def tiny_mission(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 channels, 6 days, with its Kaggle-layout copy (kaggle/)."""
    from esa_lightning.data.readers.synthetic import generate_mission

    out = tmp_path_factory.mktemp("tiny") / "mission"
    return generate_mission(out, channels=4, groups=2, days=6, seed=3, kaggle=True)


def tensorboard_runs(tb: Path) -> dict[str, dict]:
    """Per TensorBoard run (sub-folder): scalar tags -> values, and the HParams plugin data."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    runs = {}
    for folder in sorted({p.parent for p in tb.rglob("events.out.tfevents*")}):
        acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
        acc.Reload()
        scalars = {t: [e.value for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}
        hparams, metric_tags = {}, set()
        try:
            plugin = acc.PluginTagToContent("hparams")
        except KeyError:  # a run without HParams
            plugin = {}
        for content in plugin.values():
            data = plugin_data_pb2.HParamsPluginData.FromString(content)
            if data.HasField("session_start_info"):
                hparams.update(data.session_start_info.hparams)
            if data.HasField("experiment"):
                metric_tags |= {m.name.tag for m in data.experiment.metric_infos}
        runs[folder.relative_to(tb).as_posix()] = dict(
            scalars=scalars, hparams=hparams, metric_tags=metric_tags
        )
    return runs


def test_provisional_and_final_metrics_have_their_own_tags_and_hparams_are_filled(
    tiny_mission, tmp_path
):
    cfg = compose_config(
        "train",
        [
            # a model that trains epoch after epoch (the z-score fits in one pass: one epoch)
            "experiment=gru_ae",
            f"data.root={tiny_mission}",
            "data.val_days=2",
            "trainer.max_epochs=2",
            "datamodule.detrend=null",
            *QUICK,
        ],
        tmp_path,
    )
    train(cfg)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    run = tensorboard_runs(tmp_path / "tensorboard")["gru_ae"]
    scalars = run["scalars"]
    # during training: the provisional threshold's value, one per epoch
    assert len(scalars["val_provisional/EW_F_0.50"]) == 2
    # val/EW_F_0.50 means what metrics.json (and a sweep) means: the fitted detector's, once
    assert scalars["val/EW_F_0.50"] == [pytest.approx(metrics["val/EW_F_0.50"])]
    assert scalars["test/EW_F_0.50"] == [pytest.approx(metrics["test/EW_F_0.50"])]
    # HParams: the run's settings and its final metrics
    assert run["hparams"]["model/hidden_size"].number_value == pytest.approx(64)
    assert run["hparams"]["experiment_name"].string_value == "gru_ae"
    assert {"val/EW_F_0.50", "test/EW_F_0.50"} <= run["metric_tags"]


def write_unlabeled_test(kaggle: Path, out: Path) -> Path:
    """The Kaggle layout with a test.parquet without labels, as the challenge hands it out."""
    out.mkdir()
    for f in kaggle.iterdir():
        (out / f.name).write_bytes(f.read_bytes())
    test = pd.read_parquet(out / "test.parquet")
    test.drop(columns=[c for c in test.columns if c == "is_anomaly"]).to_parquet(
        out / "test.parquet"
    )
    return out


def test_a_range_without_labels_is_not_scored_anywhere(tiny_mission, tmp_path, capsys):
    root = write_unlabeled_test(tiny_mission / "kaggle", tmp_path / "kaggle")
    cfg = compose_config(
        "train",
        [
            "experiment=smoke",
            "data=kaggle",
            f"data.root={root}",
            f"data.cache_dir={tmp_path}",
            *QUICK,
        ],
        tmp_path / "run",
    )
    train(cfg)
    out = capsys.readouterr().out
    assert "test: not scored (no labels)" in out
    assert "test/" not in out
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert "val/EW_F_0.50" in metrics  # validation comes from the labeled train.parquet
    assert not any(k.startswith("test/") for k in metrics)
    tags = {
        t for r in tensorboard_runs(tmp_path / "run" / "tensorboard").values() for t in r["scalars"]
    }
    assert not any(t.startswith("test/") for t in tags)


@pytest.mark.slow
def test_a_train_run_prints_a_short_console_without_the_config(tiny_mission, tmp_path):
    cmd = [
        sys.executable,
        "train.py",
        "experiment=smoke",
        f"data.root={tiny_mission}",
        "data.val_days=2",
        f"paths.root_dir={tmp_path}",
    ]
    proc = subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=300, env=checkout_env()
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    console = (proc.stdout + proc.stderr).splitlines()
    assert len(console) <= 30, "\n".join(console)
    text = "\n".join(console)
    assert "experiment_name:" not in text and "optimized_metric:" not in text  # no config dump
    for noise in ("litlogger", "Total FLOPs", "LeafSpec", "┏"):
        assert noise not in text
    assert "results:" in text and "val/EW_F_0.50" in text


def test_print_config_logs_the_config_on_request(tiny_mission, tmp_path, caplog):
    import logging

    overrides = [
        "experiment=smoke", f"data.root={tiny_mission}", "data.val_days=2", "logger=none", *QUICK
    ]
    for flag, shown in (("false", False), ("true", True)):
        caplog.clear()
        cfg = compose_config("train", [*overrides, f"print_config={flag}"], tmp_path / flag)
        with caplog.at_level(logging.INFO, logger="esa_lightning"):
            train(cfg)
        assert any(r.getMessage().startswith("config:\n") for r in caplog.records) is shown


def test_validation_keeps_its_labels_when_only_the_test_file_has_none(tiny_mission, tmp_path):
    from esa_lightning.data.readers.kaggle import read_kaggle
    from esa_lightning.runtime.evaluation import unscored_reason

    root = write_unlabeled_test(tiny_mission / "kaggle", tmp_path / "kaggle")
    mission = read_kaggle(root, cache_dir=str(tmp_path), val_fraction=0.2)
    assert mission.val().is_anomaly.any()
    assert unscored_reason(mission.val()) is None
    assert unscored_reason(mission.test()) == "no labels"


def test_train_py_with_a_search_space_says_it_runs_one_job(tiny_mission, tmp_path, caplog):
    import logging

    overrides = [
        "experiment=smoke",
        "hparams_search=optuna",
        f"data.root={tiny_mission}",
        "data.val_days=2",
        "logger=none",
        *QUICK,
    ]
    with caplog.at_level(logging.WARNING, logger="esa_lightning"):
        train(compose_config("train", overrides, tmp_path))
    # in a clone the command is `python sweep.py` (installed: `esa-train -m`, 26f5def)
    assert any("search space for python sweep.py hparams_search=" in r.getMessage()
               for r in caplog.records)


@pytest.mark.parametrize(
    ("labels", "reason"),
    [("zero", "no labeled anomaly or rare event"), ("missing", "no labels")],
)
def test_an_all_zero_label_column_is_labels_without_events(tmp_path, capsys, labels, reason):
    # is_anomaly present but all 0 is labels with no event, not a file without labels
    from esa_lightning.jobs.predict import predict
    from tests.helpers import write_kaggle

    root = tmp_path / "kaggle"
    root.mkdir()
    train_file = write_kaggle(root / "train.parquet", n=400)
    frame = pd.read_parquet(train_file)
    if labels == "zero":
        frame["is_anomaly"] = 0
    else:
        frame = frame.drop(columns="is_anomaly")
    frame.to_parquet(train_file, index=False)
    data = ["data=kaggle", f"data.root={root}", f"data.cache_dir={tmp_path / 'cache'}"]
    train(compose_config("train", ["experiment=smoke", *data, "test=false", "logger=none",
                                   *QUICK], tmp_path / "run"))
    assert f"val: not scored ({reason})" in capsys.readouterr().out
    predict(compose_config("predict", [f"ckpt={tmp_path / 'run' / 'detector'}", *data,
                                       "range=val", "max_figures=0"], tmp_path / "predict"))
    assert f"val: not scored ({reason})" in capsys.readouterr().out
    # no metrics.json nor events.csv for either (docs/report.md, docs/prediction.md)
    assert (tmp_path / "predict" / "submission.csv").is_file()
    assert not (tmp_path / "predict" / "metrics.json").exists()
    assert not (tmp_path / "predict" / "events.csv").exists()


def scalar_points(run: Path, tag: str) -> list[tuple[int, float]]:
    """(step, value) of every point of ``tag`` in the TensorBoard run folder ``run``, in the order
    written (event files are named by their start time)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run), size_guidance={"scalars": 0})
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)] if tag in acc.Tags()["scalars"] else []


def test_a_resumed_run_logs_its_final_metrics_after_those_of_the_interrupted_run(
    tiny_mission, tmp_path
):
    """Both runs logged their final metrics at step 0 into the same TensorBoard run: two points
    at one step, only one of them metrics.json's, told apart by wall time only. They are logged
    at the run's last training step: the resumed run's come later, and they are metrics.json's."""
    overrides = [
        "experiment=gru_ae", f"data.root={tiny_mission}", "data.val_days=2",
        "+trainer.limit_train_batches=3", "+trainer.limit_val_batches=2", "model.hidden_size=16",
        "model.post_processing.rf_gate.n_estimators=10", *QUICK,
    ]
    train(compose_config("train", [*overrides, "trainer.max_epochs=1"], tmp_path))
    run = tmp_path / "tensorboard" / "gru_ae"
    [(first_step, _)] = scalar_points(run, "test/EW_F_0.50")
    train_steps = [step for step, _ in scalar_points(run, "train/loss")]
    assert first_step == max(train_steps) + 1  # the steps taken: the end of the curves

    resume = [*overrides, "trainer.max_epochs=2", "ckpt_path=last"]
    train(compose_config("train", resume, tmp_path))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for tag in ("val/EW_F_0.50", "test/EW_F_0.50"):
        points = scalar_points(run, tag)
        steps = [step for step, _ in points]
        assert len(points) == 2 and steps[0] == first_step < steps[1], points
        assert points[-1][1] == pytest.approx(metrics[tag])

    # resumed once more, past max_epochs: no step taken, the same detector at the same step
    train(compose_config("train", resume, tmp_path))
    for tag in ("val/EW_F_0.50", "test/EW_F_0.50"):
        *_, before, again = scalar_points(run, tag)
        assert again == (before[0], pytest.approx(before[1]))


def test_a_model_without_gradient_steps_logs_its_final_metrics_after_its_curves(
    tiny_mission, tmp_path
):
    """window_pca takes no gradient step: its global_step stays 0, and its final val/ and test/
    numbers were logged at step 0, before its val/loss and val_provisional/ points (at its
    training batches' step, where Lightning logs them). They come one past the last point of
    its curves, as a trained network's do."""
    cfg = compose_config(
        "train",
        ["model=window_pca", f"data.root={tiny_mission}", "data.val_days=2",
         "datamodule.batch_size=64", *QUICK],
        tmp_path,
    )
    train(cfg)
    run = tmp_path / "tensorboard" / "window_pca"
    curve_steps = [s for tag in ("val/loss", "val_provisional/AUC_PR")
                   for s, _ in scalar_points(run, tag)]
    assert curve_steps and max(curve_steps) > 0  # several training batches
    for tag in ("val/AUC_PR", "test/AUC_PR"):
        [(step, _)] = scalar_points(run, tag)
        assert step == max(curve_steps) + 1
