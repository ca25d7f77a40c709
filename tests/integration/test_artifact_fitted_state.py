"""An artifact's fitted state and recorded reference, edited with every checksum made valid again
(a hostile file can recompute them): refused at load, naming the file, never loaded to score
without alarms or to fail with a traceback while scoring."""

from __future__ import annotations

import math

import pytest
import torch

from tests.helpers import manifest_of, write_manifest
from tests.integration import test_reliability_artifacts as saved
from tests.integration.test_reliability_artifacts import calibration, load_refused, reseal

# the saved detectors (a z-score one, a GRU with a random-forest gate) and a copy to damage
artifacts, copy_of = saved.artifacts, saved.copy_of


def _edit_weights(folder, component: str, key: str, value: float) -> None:
    weights = folder / "components" / component / "weights.pt"
    state = torch.load(weights, weights_only=True)
    assert key in state, sorted(state)
    state[key] = torch.full_like(state[key], value)
    torch.save(state, weights)
    reseal(folder)
    write_manifest(folder, manifest_of(folder))  # the manifest's own checksum, again


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(
    "name, component, key",
    [
        ("zscore", "zscore", "threshold"),
        ("gru", "gru", "post_rules.threshold.threshold"),
    ],
)
def test_a_threshold_that_is_not_finite_is_refused(copy_of, name, component, key, value):
    """A NaN threshold loaded and never alarmed (train.py refuses to write one); a GRU's inf
    threshold loaded too."""
    folder = copy_of(name)
    _edit_weights(folder, component, key, value)
    load_refused(folder, "weights.pt", key, "could never alarm")


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_network_weights_that_are_not_finite_are_refused(copy_of, value):
    """NaN network weights loaded: every score NaN, no alarm ever."""
    folder = copy_of("gru")
    state = torch.load(folder / "components/gru/weights.pt", weights_only=True)
    key = next(k for k, v in state.items() if k.startswith("net.") and v.is_floating_point())
    _edit_weights(folder, "gru", key, value)
    load_refused(folder, "weights.pt", key, "not a finite number")


def test_a_score_span_that_is_not_finite_is_refused(copy_of):
    """An inf ``score_span`` (the threshold's smoothing) was an OverflowError traceback."""
    folder = copy_of("gru")
    _edit_weights(folder, "gru", "post_rules.threshold.score_span", math.inf)
    load_refused(folder, "weights.pt", "score_span", "not a finite number")


@pytest.mark.parametrize(
    "edit, needle",
    [
        (lambda c, n: {**c, "reference_scores": [math.nan, 0.5, 2.0]}, "reference_scores"),
        (lambda c, n: {**c, "reference_scores": [0.1, 0.5, math.inf]}, "reference_scores"),
        (lambda c, n: {**c, "values": {**c["values"], "spread": [math.nan] * n}}, "values"),
        (lambda c, n: {**c, "values": {**c["values"], "spread": [-1.0] * n}}, "values"),
        (lambda c, n: {**c, "channel_scores": {**c["channel_scores"], "centre": [math.inf] * n}},
         "channel_scores"),
    ],
)
def test_a_calibration_of_numbers_no_training_writes_is_refused(copy_of, edit, needle):
    """The nominal reference (``confidence`` is a position among the sorted reference scores)
    held NaN, inf or a spread <= 0 (training writes finite numbers and floors spreads above 0):
    it loaded, and confidences and deviations were measured against it."""
    folder = copy_of("zscore")
    manifest = manifest_of(folder)
    n = len(manifest["schema"]["channels"])
    manifest["info"]["calibration"] = edit(calibration(n), n)
    write_manifest(folder, manifest)
    load_refused(folder, "detector.json", "info.calibration: ", needle)


def test_a_forest_head_of_another_feature_count_is_named_when_scoring(copy_of):
    """A random forest of the right type fitted on 3 features as ``rf_gate.skops`` (checksums
    computed again) loaded, and predict.py ended in scikit-learn's ``ValueError: X has 14
    features, but RandomForestClassifier is expecting 3`` traceback once every row was scored."""
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier

    from esa_lightning.artifact import Detector
    from esa_lightning.errors import ESAInputError
    from esa_lightning.postprocessing.random_forest import save_forest
    from tests.integration.test_rf_head import make_mission

    folder = copy_of("gru")
    head = folder / "components/gru/rf_gate.skops"
    rows = np.random.default_rng(0).random((40, 3))
    save_forest(RandomForestClassifier(n_estimators=2, random_state=0).fit(rows, [0, 1] * 20), head)
    reseal(folder)
    write_manifest(folder, manifest_of(folder))
    detector = Detector.load(folder)
    with pytest.raises(ESAInputError) as info:
        detector.score_rows(make_mission())
    message = str(info.value)
    assert str(head) in message and "3 features" in message and "\n" not in message, message
