"""Same seed and data: identical metrics.json, detector scores and weights on CPU, also for a
run resumed after an epoch and for a run whose loaders have workers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

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


def trained_weights(run: Path) -> dict[str, torch.Tensor]:
    """The network's tensors of the run's last checkpoint (the post-processing rules' left out:
    they are fitted after training)."""
    state = torch.load(run / "checkpoints" / "gru_ae" / "last.ckpt", weights_only=False)
    return {k: v for k, v in state["state_dict"].items() if not k.startswith("post_rules.")}


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys() and a
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"{len(differ)} of {len(a)} tensors differ: {differ[:3]}"


TWO_EPOCHS = [*GRU, "trainer.max_epochs=2", "test=false", "model.post_processing.rf_gate=null",
              "+trainer.num_sanity_val_steps=1", *QUIET]


@pytest.fixture(scope="module")
def uninterrupted(small_mission_dir, tmp_path_factory) -> Path:
    """``TWO_EPOCHS`` on the small mission, trained once without a break and without loader
    workers: the run the two tests below compare theirs with (they only read its weights)."""
    run = tmp_path_factory.mktemp("uninterrupted") / "run"
    train(compose_config("train", [*TWO_EPOCHS, f"data.root={small_mission_dir}"], run))
    return run


def test_a_run_resumed_after_an_epoch_trains_as_the_uninterrupted_run(small_mission_dir, tmp_path,
                                                                      uninterrupted):
    """Lightning's checkpoints hold no random state: the resumed run's second epoch took the
    batch order the uninterrupted run's first epoch had (RandomState puts the state back)."""
    data = f"data.root={small_mission_dir}"
    cut = tmp_path / "cut"
    train(compose_config("train", [*TWO_EPOCHS, data, "trainer.max_epochs=1"], cut))
    train(compose_config("train", [*TWO_EPOCHS, data, "ckpt_path=last"], cut))
    assert_same_weights(trained_weights(uninterrupted), trained_weights(cut))


def test_loader_workers_do_not_change_the_training(small_mission_dir, tmp_path, uninterrupted):
    """Persistent workers drew no new seed from the global generator after the first epoch,
    so every later epoch's batch order differed from the run without workers."""
    data = f"data.root={small_mission_dir}"
    train(compose_config("train", [*TWO_EPOCHS, data, "datamodule.num_workers=2"],
                         tmp_path / "workers"))
    assert_same_weights(trained_weights(uninterrupted), trained_weights(tmp_path / "workers"))
