"""The live validation figures (``callbacks.ESAValidationMetrics``) in TensorBoard."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from esa_lightning.callbacks import ESAValidationMetrics
from esa_lightning.data.windows import WindowDataModule
from esa_lightning.models.gru_ae.model import LitGRUAttentionAE
from tests.helpers import sine_mission, trainer, with_events


class StopAfterSecondEpoch(L.Callback):
    """What early stopping does: end the run after a validation, before max_epochs."""

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == 1:
            trainer.should_stop = True


def test_a_run_stopped_between_figures_still_draws_its_last_validated_epoch(tmp_path):
    """With a figure every 5 epochs, a run that early stopping ended after epoch 2 of 10 left
    TensorBoard without any intervals figure: the last validated epoch's is drawn at the end,
    at that epoch's step, once."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    m = with_events(sine_mission(T=900, val_start=600, test_start=800))
    dm = WindowDataModule(m, window=6, batch_size=64, detrend=None)
    dm.setup("fit")
    torch.manual_seed(0)
    model = LitGRUAttentionAE(**dm.dims, hidden_size=8, latent_dim=4,
                              post_processing={"threshold": {"kind": "percentile", "q": 95}})
    model.set_preprocessing(dm)
    logger = TensorBoardLogger(tmp_path, name="tb", version=0)
    run = trainer(max_epochs=10, logger=logger, num_sanity_val_steps=0,
                  callbacks=[ESAValidationMetrics(figure_every_n_epochs=5),
                             StopAfterSecondEpoch()])
    run.fit(model, dm)
    assert run.current_epoch == 2  # stopped after two epochs
    logger.experiment.flush()
    acc = EventAccumulator(str(tmp_path / "tb" / "version_0"), size_guidance={"images": 0})
    acc.Reload()
    assert "val_provisional/intervals" in acc.Tags()["images"]
    [figure] = acc.Images("val_provisional/intervals")
    assert figure.step == run.global_step
