"""The downstream random forest: fit range only, alarms only switched off, saved without pickle."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from esa_lightning.data.windows import WindowDataModule
from esa_lightning.models.gru_ae.model import LitGRUAttentionAE
from esa_lightning.postprocessing.random_forest import RandomForestHead, load_forest, save_forest
from esa_lightning.postprocessing.thresholds import ThresholdCalibration
from tests.helpers import toy_mission, trainer

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


class SpyHead(RandomForestHead):
    """Records every mission the head scores."""

    seen: list

    def fit(self, model, parts):
        self.seen = list(parts.values())
        return super().fit(model, parts)


def fit(mission, head, tmp_path=None, **trainer_kw):
    torch.manual_seed(0)
    dm = WindowDataModule(mission, window=6, batch_size=64)
    dm.setup("fit")
    model = LitGRUAttentionAE(**dm.dims, hidden_size=8, latent_dim=4, lr=3e-3)
    fitted = trainer(
        callbacks=[ThresholdCalibration(q=90), head], default_root_dir=tmp_path, **trainer_kw
    )
    fitted.fit(model, dm)
    return model, fitted


def test_head_never_sees_test_rows(tmp_path):
    m = make_mission()
    head = SpyHead(n_estimators=10, gate_factor=0.5)
    model, _ = fit(m, head, tmp_path)
    assert model.rf_head is not None
    last_fit_time = m.timestamps[m.test_start - 1]
    for seen in head.seen:
        assert len(seen.values) <= m.test_start
        assert seen.timestamps.max() <= last_fit_time
    # handed a mission that still holds test rows, it refuses
    with pytest.raises(ValueError, match="test-range rows"):
        head.fit(model, {None: m})


def test_forest_only_switches_alarms_off_and_survives_save_load(tmp_path):
    m = make_mission()
    model, trainer = fit(m, RandomForestHead(n_estimators=10, gate_factor=0.5), tmp_path)
    forest = model.rf_head
    with_rf = model.score_rows(m.test())
    model.rf_head = None
    without = model.score_rows(m.test())
    model.rf_head = forest
    assert np.all(with_rf.alarm <= without.alarm)
    # test bumps: rows 780.. (channel a, anomaly) and 870.. (channel b, not labeled as one)
    assert without.alarm[80:86].all() and without.alarm[170:176].all()
    assert with_rf.alarm[80:86].all() and not with_rf.alarm[170:176].any()
    np.testing.assert_array_equal(with_rf.score, without.score)

    # a skops file, loaded with the explicit trusted list
    save_forest(forest, tmp_path / "rf.skops")
    back = load_forest(tmp_path / "rf.skops")
    x = np.random.default_rng(0).random((20, forest.n_features_in_))
    np.testing.assert_array_equal(back.predict(x), forest.predict(x))

    # inside a Lightning checkpoint, loadable with weights_only=True (no pickle)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    loaded = LitGRUAttentionAE.load_from_checkpoint(tmp_path / "m.ckpt", weights_only=True)
    assert loaded.rf_head is not None
    np.testing.assert_array_equal(loaded.score_rows(m.test()).alarm, with_rf.alarm)


def test_head_is_skipped_without_labels(tmp_path, caplog):
    m = make_mission(labeled=False)
    with caplog.at_level(logging.WARNING):
        model, _ = fit(m, RandomForestHead(n_estimators=5), tmp_path)
    assert model.rf_head is None
    assert "RandomForestHead skipped" in caplog.text


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
