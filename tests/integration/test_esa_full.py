"""esa_full end to end on a small mission: train, save, load, predict in chunks, evaluate."""

import json

import numpy as np
import pandas as pd
import pytest

from esa_lightning.artifact import Detector
from esa_lightning.jobs.evaluate import evaluate_predictions
from esa_lightning.jobs.predict import predict
from esa_lightning.jobs.train import train
from esa_lightning.runtime.chunks import score_in_chunks
from tests.conftest import compose_config

FAST = [
    "data.val_days=7",  # the split the tests read back with load_mission(..., val_days=7)
    "trainer.enable_progress_bar=false",
    "~callbacks.progress_bar",
    "components.gru_ae.trainer.max_epochs=1",
    "+components.gru_ae.trainer.limit_train_batches=3",
    "+components.gru_ae.trainer.limit_val_batches=2",
    "components.channel_ensemble.trainer.max_epochs=2",
    "components.gru_ae.model.post_processing.rf_gate.n_estimators=10",
    "components.gru_ae.model.hidden_size=16",
]


@pytest.fixture(scope="module")
def full_run(small_mission_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("esa_full")
    cfg = compose_config("train", ["experiment=esa_full", f"data.root={small_mission_dir}", *FAST],
                         out)
    train(cfg)
    return out


def test_esa_full_writes_both_components_and_the_combiner(full_run):
    manifest = json.loads((full_run / "detector" / "detector.json").read_text())
    assert set(manifest["components"]) == {"gru_ae", "channel_ensemble"}
    assert manifest["combiner"]["class"].endswith("HybridCombiner")
    features = manifest["schema"]["features"]
    assert len(features["channel_ensemble"]) == 2 * (24 + 2 * 10)
    assert features["gru_ae"][: len(manifest["schema"]["channels"])] == manifest["schema"][
        "channels"
    ]
    for name in ("gru_ae", "channel_ensemble"):
        assert (full_run / "detector" / "components" / name / "lightning.ckpt").is_file()
    metrics = json.loads((full_run / "metrics.json").read_text())
    for key in ("test/EW_F_0.50", "test/AFF_F_0.50", "test/channel_F_0.50", "val/EW_F_0.50"):
        assert 0.0 <= metrics[key] <= 1.0


def test_loaded_detector_scores_identically_and_chunks_equal_the_whole(full_run,
                                                                       small_mission_dir):
    from esa_lightning.data import load_mission

    mission = load_mission("synthetic", small_mission_dir, val_days=7, use_cache=False)
    test = mission.test()
    det = Detector.load(full_run / "detector")
    whole = det.score_rows(test)
    again = Detector.load(full_run / "detector").score_rows(test)
    np.testing.assert_array_equal(whole.score, again.score)
    chunked = score_in_chunks(det, test, chunk_rows=len(test.values) // 3 + 7)
    np.testing.assert_allclose(chunked.score, whole.score, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(chunked.alarm, whole.alarm)


def test_predict_then_evaluate_the_submission(full_run, small_mission_dir, tmp_path, capsys):
    pred_dir = tmp_path / "predict"
    cfg = compose_config("predict", [f"ckpt={full_run / 'detector'}",
                                     f"data.root={small_mission_dir}", "max_figures=1"], pred_dir)
    metrics = predict(cfg)
    sub = pd.read_csv(pred_dir / "submission.csv")
    assert sub["id"].is_unique and set(sub["is_anomaly"].unique()) <= {0, 1}
    # evaluate.py scores the same predictions to the same numbers
    frame = sub.rename(columns={"id": "id"})
    frame.to_csv(tmp_path / "pred.csv", index=False)
    eval_cfg = compose_config("evaluate", [f"predictions={tmp_path / 'pred.csv'}",
                                           f"data.root={small_mission_dir}"], tmp_path / "eval")
    results = evaluate_predictions(eval_cfg)
    assert results["EW_F_0.50"] == pytest.approx(metrics["test/EW_F_0.50"])
    printed = capsys.readouterr().out
    # both rankings: {Anomaly, Rare Event} and Anomaly only (the second was missing before)
    assert "{Anomaly, Rare Event}:" in printed and "Anomaly only:" in printed
    assert printed.count("EW_F_0.50") >= 2
    assert (tmp_path / "eval" / "evaluation.json").is_file()


def test_a_combiner_with_too_few_label_free_events_predicts_any_components_alarm(
    full_run, small_mission_dir, tmp_path
):
    # the same components, the combiner fitted again as if the rows no component trained on held
    # fewer events than it needs: saved, loaded, predicted in chunks, reported by its rule
    from esa_lightning.data import load_mission
    from esa_lightning.runtime.combiner import HybridCombiner

    mission = load_mission("synthetic", small_mission_dir, val_days=7, use_cache=False)
    det = Detector.load(full_run / "detector")
    # esa_full's rule where those rows hold enough events (this mission's do): the label-free
    # GRU's own alarms, not learned weights (combiner.many_events=label_free_alarm)
    assert det.combiner.describe() == "HybridCombiner: alarms where gru_ae alarms"
    assert det.combiner.many_events == "label_free_alarm" and det.combiner.alarm_names == [
        "gru_ae"
    ]
    det.combiner = HybridCombiner(threshold_min_events=1000).fit(det.components,
                                                                 mission.fit_range())
    det.save(tmp_path / "detector")
    test = mission.test()
    loaded = Detector.load(tmp_path / "detector")
    out = loaded.score_rows(test)
    own = np.any([m.score_rows(test).alarm != 0 for m in loaded.components.values()], axis=0)
    np.testing.assert_array_equal(out.alarm, own.astype(np.uint8))
    chunked = score_in_chunks(loaded, test, chunk_rows=len(test.values) // 3 + 7)
    np.testing.assert_array_equal(chunked.alarm, out.alarm)
    np.testing.assert_allclose(chunked.score, out.score)
    cfg = compose_config("predict", [f"ckpt={tmp_path / 'detector'}",
                                     f"data.root={small_mission_dir}", "max_figures=1"],
                         tmp_path / "predict")
    predict(cfg)
    page = (tmp_path / "predict" / "index.html").read_text()
    assert "HybridCombiner: alarms where any component alarms" in page


def test_with_too_few_label_free_events_train_alarms_with_the_label_free_gru_alone(
    small_mission_dir, tmp_path
):
    # train.py tells the combiner which components read no label: the GRU, not the ensemble
    cfg = compose_config("train", ["experiment=esa_full", f"data.root={small_mission_dir}",
                                   "combiner.threshold_min_events=1000", "test=false", *FAST],
                         tmp_path)
    train(cfg)
    saved = json.loads((tmp_path / "detector" / "combiner" / "combiner.json").read_text())
    assert saved["rule"] == "any_alarm" and saved["few_events"] == "label_free_alarm"
    assert saved["alarm_names"] == ["gru_ae"]
    det = Detector.load(tmp_path / "detector")
    assert det.combiner.describe() == "HybridCombiner: alarms where gru_ae alarms"
    from esa_lightning.data import load_mission

    val = load_mission("synthetic", small_mission_dir, val_days=7, use_cache=False).val()
    gru = det.components["gru_ae"].score_rows(val).alarm
    np.testing.assert_array_equal(det.score_rows(val).alarm, (gru != 0).astype(np.uint8))


def test_train_builds_each_datamodule_once_and_scores_the_validation_range_once(
    small_mission_dir, tmp_path, monkeypatch
):
    # the components' datamodules built for the checks before any fit are the ones trained on,
    # and the validation range is scored once for both its metrics and the nominal reference
    import functools
    from collections import Counter

    from esa_lightning.data import load_mission
    from esa_lightning.data.segment_datamodule import SegmentDataModule
    from esa_lightning.data.windows import WindowDataModule

    built = Counter()
    for cls in (WindowDataModule, SegmentDataModule):
        # wraps: the options check reads the datamodule's signature through the counter
        @functools.wraps(cls.__init__)
        def counted(self, *args, _init=cls.__init__, _name=cls.__name__, **kwargs):
            built[_name] += 1
            _init(self, *args, **kwargs)

        monkeypatch.setattr(cls, "__init__", counted)
    val = load_mission("synthetic", small_mission_dir, val_days=7, use_cache=False).val()
    first, last = val.timestamps[0], val.timestamps[-1]
    whole_val = []
    score_rows = Detector.score_rows

    def scored(self, mission, *args, **kwargs):
        ts = mission.timestamps
        whole_val.append(len(ts) > 0 and ts[0] <= first and ts[-1] >= last)
        return score_rows(self, mission, *args, **kwargs)

    monkeypatch.setattr(Detector, "score_rows", scored)
    cfg = compose_config("train", ["experiment=esa_full", f"data.root={small_mission_dir}",
                                   "test=false", *FAST], tmp_path)
    train(cfg)
    assert built == {"WindowDataModule": 1, "SegmentDataModule": 1}
    assert sum(whole_val) == 1
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert "val/EW_F_0.50" in metrics
    # the nominal reference read from that one scoring is the one it scores on its own (the
    # loaded detector's scores match the trained one's to float32 rounding)
    from esa_lightning.runtime.calibration import calibration_record

    stored = json.loads((tmp_path / "detector" / "detector.json").read_text())["info"]
    stored = stored["calibration"]
    mission = load_mission("synthetic", small_mission_dir, val_days=7, use_cache=False)
    fresh = calibration_record(Detector.load(tmp_path / "detector"), mission)
    assert fresh["source"] == stored["source"] == "validation"
    assert fresh["n_rows"] == stored["n_rows"]
    np.testing.assert_allclose(fresh["reference_scores"], stored["reference_scores"],
                               rtol=1e-5, atol=1e-6)
    for part in ("channel_scores", "values"):
        for key in ("centre", "spread"):
            np.testing.assert_allclose(fresh[part][key], stored[part][key], rtol=1e-5, atol=1e-6)
