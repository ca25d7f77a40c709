"""The downstream random forest: fit range only, alarms only switched off, saved without pickle."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from esa_lightning.data.windows import WindowDataModule
from esa_lightning.errors import ESAInputError
from esa_lightning.models.gru_ae.model import LitGRUAttentionAE
from esa_lightning.postprocessing.random_forest import RandomForestGate, load_forest, save_forest
from tests.helpers import toy_mission, trainer, with_events

pytestmark = pytest.mark.usefixtures("one_thread")


def make_mission(T=900, val_start=560, test_start=700, labeled=True):
    rng = np.random.default_rng(0)
    t = np.arange(T)[:, None]
    values = (np.sin(t / np.array([4.0, 6.0])) + 0.05 * rng.standard_normal((T, 2))).astype(
        np.float32
    )
    labels = np.zeros((T, 2), np.uint8)
    for s in range(60, T, 90):  # bumps on channel a are labeled anomalies, on b they are not
        c = (s // 90) % 2
        values[s : s + 6, c] += 3
        if labeled and c == 0:
            labels[s : s + 6, 0] = 1
    return toy_mission(values, labels, val_start=val_start, test_start=test_start,
                       channel_names=["a", "b"])


def post_processing(**gate):
    """A 90th-percentile threshold and behind it the random-forest gate ``rf_gate``."""
    return {
        "threshold": {"kind": "percentile", "q": 90},
        "rf_gate": {"kind": "random_forest", **gate},
    }


def spy_on(rule):
    """Record every mission the gate ``rule`` is fitted on (in ``rule.seen``)."""
    fit_parts = rule.fit_parts

    def spy(model, parts, *rest):
        rule.seen = list(parts.values())
        return fit_parts(model, parts, *rest)

    rule.fit_parts = spy
    return rule


def fit(mission, tmp_path=None, spy=False, **gate):
    """Train a small model whose own post rules (threshold, then gate) fit at the end."""
    torch.manual_seed(0)
    dm = WindowDataModule(mission, window=6, batch_size=64)
    dm.setup("fit")
    model = LitGRUAttentionAE(**dm.dims, hidden_size=8, latent_dim=4, lr=3e-3,
                              post_processing=post_processing(**gate))
    if spy:
        spy_on(model.post_rules["rf_gate"])
    fitted = trainer(default_root_dir=tmp_path)
    fitted.fit(model, dm)
    return model, fitted


def test_head_never_sees_test_rows(tmp_path):
    m = make_mission()
    model, _ = fit(m, tmp_path, spy=True, n_estimators=10, gate_factor=0.5)
    head = model.post_rules["rf_gate"]
    assert isinstance(head, RandomForestGate)
    assert head.forest is not None and model.gate is head
    last_fit_time = m.timestamps[m.test_start - 1]
    assert head.seen
    for seen in head.seen:
        assert len(seen.values) <= m.test_start
        assert seen.timestamps.max() <= last_fit_time
    # handed a mission that still holds test rows, it refuses
    with pytest.raises(ValueError, match="test-range rows"):
        head.fit_parts(model, {None: m})


def test_head_fitted_on_training_rows_never_sees_a_validation_row(tmp_path):
    """fit_on=training: the validation range can judge the forest as it judges unseen rows."""
    m = make_mission()
    model, _ = fit(m, tmp_path, spy=True, n_estimators=10, gate_factor=0.5, fit_on="training")
    head = model.post_rules["rf_gate"]
    assert head.forest is not None and head.seen
    for seen in head.seen:
        assert len(seen.values) == m.val_start
        assert seen.timestamps.max() == m.timestamps[m.val_start - 1]
    with pytest.raises(ESAInputError, match="fit_on must be"):
        RandomForestGate(fit_on="validation")


def test_forest_only_switches_alarms_off_and_survives_save_load(tmp_path):
    m = make_mission()
    model, trainer = fit(m, tmp_path, n_estimators=10, gate_factor=0.5)
    head = model.post_rules["rf_gate"]
    forest = head.forest
    with_rf = model.score_rows(m.test())
    head.forest = None
    assert model.gate is None
    without = model.score_rows(m.test())
    head.forest = forest
    assert np.all(with_rf.alarm <= without.alarm)
    # test bumps: rows 780.. (channel a, anomaly) and 870.. (channel b, not labeled as one)
    assert without.alarm[80:86].all() and without.alarm[170:176].all()
    assert with_rf.alarm[80:86].all() and not with_rf.alarm[170:176].any()
    np.testing.assert_array_equal(with_rf.score, without.score)
    # what the report shows: the threshold of every row, the gate's probability where a
    # window crossed it (above 0.5 exactly where the gate kept the alarm)
    assert without.gate_probability is None
    np.testing.assert_array_equal(with_rf.threshold, float(model.threshold_rule.threshold[0]))
    judged = np.isfinite(with_rf.gate_probability)
    np.testing.assert_array_equal(judged, without.alarm == 1)
    assert (with_rf.gate_probability[80:86] > 0.5).all()
    assert (with_rf.gate_probability[170:176] <= 0.5).all()

    # a skops file, loaded with the explicit trusted list
    save_forest(forest, tmp_path / "rf.skops")
    back = load_forest(tmp_path / "rf.skops")
    x = np.random.default_rng(0).random((20, forest.n_features_in_))
    np.testing.assert_array_equal(back.predict(x), forest.predict(x))

    # the artifact hook writes the forest as <rule name>.skops (no pickle) and reads it back
    folder = tmp_path / "component"
    folder.mkdir()
    model.save_extra(folder)
    assert [p.name for p in folder.iterdir()] == ["rf_gate.skops"]
    again = LitGRUAttentionAE(**model.hparams)
    again.load_state_dict(model.state_dict())
    assert again.gate is None  # the forest is no tensor: it is not in the state_dict
    again.load_extra(folder)
    assert again.gate is not None
    np.testing.assert_array_equal(again.score_rows(m.test()).alarm, with_rf.alarm)

    # a Lightning checkpoint loads with weights_only=True (no pickle); the forest comes from
    # the rule's skops file (``load_extra``)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    loaded = LitGRUAttentionAE.load_from_checkpoint(tmp_path / "m.ckpt", weights_only=True)
    torch.testing.assert_close(loaded.threshold_rule.threshold, model.threshold_rule.threshold)
    loaded.load_extra(folder)
    assert loaded.gate is not None
    np.testing.assert_array_equal(loaded.score_rows(m.test()).alarm, with_rf.alarm)


def test_head_is_skipped_without_labels(tmp_path, caplog):
    m = make_mission(labeled=False)
    with caplog.at_level(logging.WARNING):
        model, _ = fit(m, tmp_path, n_estimators=5)
    assert model.post_rules["rf_gate"].forest is None and model.gate is None
    assert "RandomForestGate skipped" in caplog.text
    assert model.is_calibrated  # the threshold alone still scores
    model.score_rows(m.test())


def test_window_features_of_selected_rows_equal_the_gated_full_matrix():
    from esa_lightning.models.gru_ae.model import WindowOutputs
    from esa_lightning.postprocessing.random_forest import window_features

    rng = np.random.default_rng(0)
    n = 50
    wo = WindowOutputs(rng.random(n, dtype=np.float32), rng.random((n, 3), dtype=np.float32),
                       rng.random((n, 4), dtype=np.float32), rng.random((n, 3), dtype=np.float32))
    full = window_features(wo)
    assert full.shape == (n, 1 + 3 + 4 + 3) and full.dtype == np.float32
    gate = rng.random(n) > 0.7
    np.testing.assert_array_equal(window_features(wo, gate), full[gate])
    np.testing.assert_array_equal(window_features(wo, np.flatnonzero(gate)), full[gate])


def test_cross_fit_check_ships_a_forest_that_judges_unseen_windows(tmp_path, caplog):
    """check=cross_fit: labels the features explain (bumps on channel a) survive the check."""
    m = with_events(make_mission())
    with caplog.at_level(logging.INFO):
        model, _ = fit(m, tmp_path, n_estimators=10, gate_factor=0.5, check="cross_fit", folds=3)
    assert model.gate is not None
    assert "cross-fit check over 3 folds" in caplog.text and "not shipped" not in caplog.text
    with pytest.raises(ESAInputError, match="check must be"):
        RandomForestGate(check="holdout")
    with pytest.raises(ESAInputError, match="folds must be"):
        RandomForestGate(folds=1)
