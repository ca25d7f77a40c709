"""Counts in a detector's hyper-parameters (``detector.json``) that set only how scoring is
batched or pooled, edited with every checksum computed again as a hostile user could: a value the
settings' rules refuse for training is refused at load in one line naming ``detector.json`` and
the key, never loaded to end in a traceback, or in other scores, once scoring began."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from esa_lightning.artifact import Detector
from tests.helpers import manifest_of, tiny_datamodule, write_manifest
from tests.integration import test_artifact_head_features as head_features
from tests.integration.test_artifact_fitted_indices import surrogate
from tests.integration.test_artifact_fitted_rules import gru
from tests.integration.test_artifact_head_features import _refused_at_load, _saved

gbdt_ensemble = head_features.gbdt_ensemble
__all__ = ["gbdt_ensemble", "gru", "surrogate"]  # module fixtures reused


def _with_hparam(saved: Path, tmp_path: Path, name: str, key: str, value: object) -> Path:
    folder = tmp_path / "detector"
    shutil.copytree(saved, folder)
    manifest = manifest_of(folder)
    manifest["components"][name]["hparams"][key] = value
    write_manifest(folder, manifest)
    return folder


@pytest.mark.parametrize("value", [0, -5])
def test_gru_score_batch_size_below_one_is_refused(tmp_path, gru, value):
    """0 loaded and scoring ended in ``ValueError: range() arg 3 must not be zero``; -5 loaded
    and scored other numbers without an error (score sum 1e32 instead of 274, 10 alarms instead
    of 105)."""
    folder = _with_hparam(gru, tmp_path, "gru", "score_batch_size", value)
    _refused_at_load(folder, folder / "detector.json", f"model.score_batch_size={value}")


@pytest.mark.parametrize("key, value", [("score_chunk_rows", -5), ("score_chunk_rows", 7),
                                        ("pool", 0), ("pool", -5)])
def test_network_ensemble_chunk_rows_and_pool_outside_the_rules_are_refused(
    tmp_path, surrogate, key, value
):
    """pool 0 or -5 loaded, and scoring ended in an error naming neither the file nor the key;
    a negative score_chunk_rows in torch's ``ValueError: torch.cat(): expected a non-empty list
    of Tensors`` (no chunk scored). 7 scored as before, but train.py's rule refuses it too."""
    folder = _with_hparam(surrogate, tmp_path, "ce", key, value)
    _refused_at_load(folder, folder / "detector.json", f"model.{key}={value}")


def test_gbdt_ensemble_pool_below_one_is_refused(tmp_path, gbdt_ensemble):
    saved = _saved(gbdt_ensemble, tmp_path / "saved")
    folder = _with_hparam(saved, tmp_path, "gbdt", "pool", 0)
    _refused_at_load(folder, folder / "detector.json", "model.pool=0")


def test_network_ensemble_score_chunk_rows_zero_scores_the_whole_range(tmp_path, surrogate):
    """0 is the rule's "the whole range" (``model.score_chunk_rows=0`` passes train.py's
    settings check), but scoring ended in ``ValueError: range() arg 3 must not be zero``."""
    mission = tiny_datamodule().mission
    expected = Detector.load(surrogate).score_rows(mission).score
    folder = _with_hparam(surrogate, tmp_path, "ce", "score_chunk_rows", 0)
    got = Detector.load(folder).score_rows(mission).score
    np.testing.assert_allclose(got, expected, rtol=1e-6)




@pytest.mark.parametrize("span", [1e9, 5.0])
def test_gru_threshold_score_span_other_than_its_smoothing_is_refused(tmp_path, gru, span):
    """Fitting writes the threshold's ``smoothing`` (0 here) into ``score_span``; 10**9 loaded
    and scored other alarms (112 instead of 105, the score sum 200 instead of 274) and asked a
    context of 4·10**10 rows, 5 smoothed scores the threshold was not fitted on."""
    from tests.integration.test_artifact_fitted_rules import _edited

    folder, weights = _edited(gru, tmp_path, "gru", "post_rules.threshold.score_span",
                              lambda t: t.fill_(span))
    message = _refused_at_load(folder, weights, f"score_span {span:g}")
    assert "post_rules.threshold" in message, message


@pytest.fixture(scope="module")
def telemanom_gru(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small GRU thresholded by Telemanom's online rule (nothing fitted), saved."""
    from esa_lightning.artifact import mission_schema
    from tests.helpers import sine_mission, small_gru

    m = sine_mission()
    model, _ = small_gru(m, {"threshold": {"kind": "telemanom", "smoothing": 5}})
    folder = tmp_path_factory.mktemp("telemanom") / "detector"
    return Detector({"gru": model}, mission_schema(m)).save(folder)


@pytest.mark.parametrize("key, value", [("smoothing", -5), ("error_buffer", -1),
                                        ("warmup", -3), ("error_scale", -0.5),
                                        ("min_error", -1), ("z_step", 0),
                                        ("min_percent_decrease", 2), ("max_sequences", 0)])
def test_telemanom_settings_train_py_refuses_are_refused_at_load(
    tmp_path, telemanom_gru, key, value
):
    """Each loaded: a negative smoothing, error buffer, warmup, error scale or minimum error
    scored as 0 (off) does; z_step 0 ended in a ZeroDivisionError once scoring began."""
    folder = tmp_path / "detector"
    shutil.copytree(telemanom_gru, folder)
    manifest = manifest_of(folder)
    manifest["components"]["gru"]["hparams"]["post_processing"]["threshold"][key] = value
    write_manifest(folder, manifest)
    _refused_at_load(folder, folder / "detector.json",
                     f"model.post_processing.threshold.{key}")


def test_the_unedited_telemanom_gru_loads(telemanom_gru):
    assert Detector.load(telemanom_gru).components["gru"].is_online


@pytest.mark.parametrize("window", [10**9, 381])
def test_a_gru_window_longer_than_its_training_rows_is_refused(tmp_path, gru, window):
    """The fixture trained on 380 training rows. 10**9 loaded, and scoring padded a range
    shorter than the window up to 10**9 rows until memory ran out; no training window could
    hold either window. (Load is refused: nothing here allocates the window.)"""
    folder = _with_hparam(gru, tmp_path, "gru", "window", window)
    message = _refused_at_load(folder, folder / "components/gru/weights.pt",
                               f"window of {window} rows")
    assert "380 training rows" in message, message


def test_a_gru_window_within_its_training_rows_loads(tmp_path, gru):
    folder = _with_hparam(gru, tmp_path, "gru", "window", 380)
    assert Detector.load(folder).components["gru"].hparams.window == 380


def test_a_gru_detrend_longer_than_any_mission_is_refused_by_the_settings_rule(tmp_path, gru):
    """Over the most rows a mission may hold: refused as train.py's rule refuses it, before
    the weights are read."""
    from esa_lightning.settings import MAX_DETREND_ROWS

    folder = _with_hparam(gru, tmp_path, "gru", "detrend", MAX_DETREND_ROWS + 1)
    _refused_at_load(folder, folder / "detector.json", f"model.detrend={MAX_DETREND_ROWS + 1}")


@pytest.mark.parametrize("family", ["pca", "knn"])
def test_a_window_baseline_detrend_longer_than_any_mission_is_refused_at_load(tmp_path, family):
    """The window baselines' ``detrend`` over the settings rule loaded (their constructor did
    not check it); refused at load as the GRU's is."""
    from esa_lightning.artifact import mission_schema
    from esa_lightning.settings import MAX_DETREND_ROWS
    from tests.unit.test_window_baselines import fitted, spiky_mission

    model = fitted(family, max_windows=200)
    saved = Detector({family: model}, mission_schema(spiky_mission())).save(tmp_path / "saved")
    folder = _with_hparam(saved, tmp_path, family, "detrend", MAX_DETREND_ROWS + 1)
    _refused_at_load(folder, folder / "detector.json", f"model.detrend={MAX_DETREND_ROWS + 1}")
    folder = _with_hparam(saved, tmp_path / "within", family, "detrend", 16)
    assert Detector.load(folder).components[family].hparams.detrend == 16


@pytest.mark.parametrize("detrend", [380, 381])
def test_a_gru_detrend_within_the_settings_rule_loads(tmp_path, gru, detrend):
    """Within its 380 training rows or beyond them (as training allows, with a warning)."""
    folder = _with_hparam(gru, tmp_path, "gru", "detrend", detrend)
    assert Detector.load(folder).components["gru"].hparams.detrend == detrend
