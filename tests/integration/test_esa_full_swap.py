"""esa_full with a component's model swapped on the command line trains end to end: it was
refused, ``components.channel_ensemble.model.novelty: not an option of RobustZScore``, as
esa_full's settings of the channel ensemble were merged into whatever model the component had.
The detector's config.yaml shows the unused top-level model null."""

import json

import yaml

from esa_lightning.jobs.train import train
from tests.conftest import compose_config

FAST = [
    "data.val_days=7",
    "trainer.enable_progress_bar=false",
    "~callbacks.progress_bar",
    "logger=none",
    "test=false",
    "components.gru_ae.trainer.max_epochs=1",
    "+components.gru_ae.trainer.limit_train_batches=3",
    "+components.gru_ae.trainer.limit_val_batches=2",
    "components.channel_ensemble.trainer.max_epochs=1",
    "components.gru_ae.model.post_processing.rf_gate.n_estimators=10",
    "components.gru_ae.model.hidden_size=16",
]


def test_esa_full_trains_with_its_channel_ensemble_swapped_for_zscore(small_mission_dir,
                                                                     tmp_path):
    from esa_lightning.jobs.component_datamodules import with_component_datamodules

    overrides = ["experiment=esa_full", "model@components.channel_ensemble.model=zscore",
                 f"data.root={small_mission_dir}", *FAST]
    # the datamodule zscore trains on added, as train.py adds it
    cfg = compose_config("train", with_component_datamodules(overrides), tmp_path)
    train(cfg)
    manifest = json.loads((tmp_path / "detector" / "detector.json").read_text())
    assert manifest["components"]["channel_ensemble"]["class"].endswith("RobustZScore")
    saved = yaml.safe_load((tmp_path / "detector" / "config.yaml").read_text())
    assert saved["model"] is None and saved["datamodule"] is None
    assert saved["components"]["channel_ensemble"]["model"]["_target_"].endswith("RobustZScore")
    assert "novelty" not in saved["components"]["channel_ensemble"]["model"]
