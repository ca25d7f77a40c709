"""The trainer settings of a model fitted in one epoch (``trainer_arguments``) draw no note from
Lightning: ``val_check_interval=1.0``, given to validate once at the epoch's end, printed
"`Trainer(val_check_interval=1.0)` was configured so validation will run at the end of the
training epoch.." on every ``experiment=smoke``, ``model=zscore`` and window-baseline run,
though it is what Lightning does unasked."""

from __future__ import annotations

import lightning as L
import pytest

from esa_lightning.models.window_pca.model import WindowPCADetector
from esa_lightning.models.zscore.model import RobustZScore


@pytest.mark.parametrize(
    "make",
    [
        lambda: RobustZScore(n_channels=3),
        lambda: WindowPCADetector(n_inputs=4, n_outputs=3, post_processing={"t": {"kind": "f05"}}),
    ],
    ids=["zscore", "window_pca"],
)
def test_a_one_epoch_model_s_trainer_validates_at_the_epoch_end_without_a_note(make, caplog):
    settings = {"max_epochs": 5, "accelerator": "cpu", "val_check_interval": 0.5}
    args = {**settings, **make().trainer_arguments(settings)}
    with caplog.at_level("INFO", logger="lightning.pytorch"):
        trainer = L.Trainer(**args, logger=False, enable_progress_bar=False)
    assert trainer.val_check_interval == 1.0  # once, at the end of the one epoch
    assert trainer.max_epochs == 1
    assert not [r for r in caplog.records if "val_check_interval" in r.getMessage()]
