"""The names users rely on, written out literally (the maintainers' interface contract, README
"What a run leaves", docs/report.md, docs/metrics.md): the metric keys of metrics.json, the
same keys as TensorBoard's final tags and, without the range prefix, evaluation.json's, and the
columns of predict.py's and evaluate.py's files. The other tests compare with the code's own
constants (``INTERVAL_COLUMNS``, ``EVENT_COLUMNS``), which a rename would change with them."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from esa_lightning.jobs.evaluate import evaluate_predictions
from esa_lightning.jobs.predict import predict
from esa_lightning.jobs.train import train
from tests.conftest import compose_config
from tests.integration.test_metrics_output import tensorboard_runs

# each with its Anomaly-only twin (<name>_anomaly)
ESA_ADB_KEYS = (
    "EW_precision", "EW_recall", "EW_F_0.50", "alarming_precision", "AFF_precision",
    "AFF_recall", "AFF_F_0.50", "channel_precision", "channel_recall", "channel_F_0.50",
    "subsystem_F_0.50", "ADTQC",
)
OTHER_KEYS = ("kaggle_F_0.50", "EWraw_precision", "EWraw_recall", "EWraw_F_0.50", "AUC_PR")
EVENT_COLUMNS = ["series", "id", "category", "class", "subclass", "start", "end", "channels",
                 "caught", "alarms"]


@pytest.fixture(scope="module")
def run(small_mission_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A smoke training run, its predict.py folder (predict/) and evaluate.py folder (eval/)."""
    out = tmp_path_factory.mktemp("contract")
    quick = ["trainer.enable_progress_bar=false", "~callbacks.progress_bar"]
    train(compose_config("train", ["experiment=smoke", f"data.root={small_mission_dir}",
                                   *quick], out / "train"))
    predict(compose_config("predict", [f"ckpt={out / 'train' / 'detector'}",
                                       f"data.root={small_mission_dir}", "max_figures=1"],
                           out / "predict"))
    evaluate_predictions(compose_config(
        "evaluate", [f"predictions={out / 'predict' / 'submission.csv'}",
                     f"data.root={small_mission_dir}"], out / "eval"))
    return out


def test_metrics_json_holds_the_documented_keys_under_val_and_test(run):
    metrics = json.loads((run / "train" / "metrics.json").read_text())
    for prefix in ("val/", "test/"):
        for name in ESA_ADB_KEYS:
            assert f"{prefix}{name}" in metrics and f"{prefix}{name}_anomaly" in metrics
        for name in OTHER_KEYS:
            assert f"{prefix}{name}" in metrics
    assert all(k.split("/")[0] in ("val", "test") for k in metrics)
    assert all(isinstance(v, float) for v in metrics.values())


def test_tensorboard_final_tags_are_the_metrics_json_keys(run):
    metrics = json.loads((run / "train" / "metrics.json").read_text())
    scalars = tensorboard_runs(run / "train" / "tensorboard")["smoke"]["scalars"]
    # val/threshold: zscore's fitted threshold, a setting, not a metric (docs/metrics_output.md)
    final = {t for t in scalars if t.startswith(("val/", "test/"))} - {"val/loss", "val/threshold"}
    assert final == set(metrics)


def test_predict_and_evaluate_files_have_the_documented_columns(run):
    metrics = json.loads((run / "predict" / "metrics.json").read_text())
    train_metrics = json.loads((run / "train" / "metrics.json").read_text())
    assert metrics == {k: v for k, v in train_metrics.items() if k.startswith("test/")}
    sub = pd.read_csv(run / "predict" / "submission.csv")
    assert list(sub.columns) == ["id", "is_anomaly"]
    assert sub["is_anomaly"].dtype.kind == "i" and set(sub["is_anomaly"]) <= {0, 1}
    intervals = pd.read_csv(run / "predict" / "intervals.csv")
    assert len(intervals) and list(intervals.columns[:5]) == [
        "start", "end", "channels", "score", "top_channels"]
    report = pd.read_csv(run / "predict" / "report.csv", dtype=str, keep_default_na=False)
    assert list(report.columns) == ["range", "status", "indices"]
    for block in report["range"]:  # blocks of 1000 samples by default
        first, last = (int(n) for n in block.split("-"))
        assert last - first + 1 == 1000
    alarmed = report[report["indices"] != ""]
    assert len(alarmed) and all(";" in s or s.isdigit() for s in alarmed["indices"])
    for folder in ("predict", "eval"):
        events = pd.read_csv(run / folder / "events.csv")
        assert list(events.columns) == EVENT_COLUMNS
    # evaluation.json: the names without the range prefix; a submission has no score and no
    # per-channel column, so AUC_PR, channel_* and subsystem_* are left out (docs/report.md)
    scored = json.loads((run / "eval" / "evaluation.json").read_text())
    expected = {k.removeprefix("test/"): v for k, v in metrics.items()
                if not k.startswith(("test/AUC_PR", "test/channel_", "test/subsystem_"))}
    assert scored == pytest.approx(expected)
