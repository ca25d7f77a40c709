"""Same seed and data: identical metrics.json and identical detector scores on CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from esa_lightning.artifact import Detector
from esa_lightning.jobs.common import mission_from_config
from esa_lightning.jobs.train import train
from tests.conftest import compose_config

REPO = Path(__file__).resolve().parents[2]
QUIET = [
    "trainer.enable_progress_bar=false",
    "~callbacks.progress_bar",
    "logger=none",
    "trainer.accelerator=cpu",
]
GRU = [
    "model=gru_ae",
    "datamodule=windows",
    "~callbacks.lr_monitor",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=3",
    "+trainer.limit_val_batches=2",
    # small and few: the test is about equality, not quality
    "model.hidden_size=8",
    "model.latent_dim=4",
    "model.post_processing.rf_gate.n_estimators=5",
    "callbacks.esa_metrics=null",
    "data.channels=[channel_1,channel_2,channel_3]",
]


def train_twice(overrides: list[str], tmp_path: Path) -> list[tuple[bytes, np.ndarray]]:
    results = []
    for run in ("a", "b"):
        cfg = compose_config("train", [*overrides, *QUIET], tmp_path / run)
        train(cfg)
        detector = Detector.load(tmp_path / run / "detector")
        scores = detector.score_rows(mission_from_config(cfg.data).test())
        results.append(((tmp_path / run / "metrics.json").read_bytes(), scores.score))
    return results


def assert_identical(results: list[tuple[bytes, np.ndarray]]) -> None:
    (metrics_a, score_a), (metrics_b, score_b) = results
    assert metrics_a == metrics_b
    assert len(score_a) > 0
    np.testing.assert_array_equal(score_a, score_b)


def test_smoke_training_is_deterministic(small_mission_dir, tmp_path):
    smoke = ["experiment=smoke"]
    assert_identical(train_twice([*smoke, f"data.root={small_mission_dir}"], tmp_path))


@pytest.mark.slow  # ~60 s on 2 cores: scoring the whole val/test range twice
@pytest.mark.skipif(
    not (REPO / "esa_lightning" / "conf" / "model" / "gru_ae.yaml").is_file()
    or not (REPO / "esa_lightning" / "models" / "gru_ae" / "model.py").is_file(),
    reason="the GRU autoencoder is not in this checkout",
)
def test_gru_training_is_deterministic(small_mission_dir, tmp_path):
    assert_identical(train_twice([*GRU, f"data.root={small_mission_dir}"], tmp_path))
