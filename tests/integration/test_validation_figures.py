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


def tiny_gru_run(tmp_path, val_start: int):  # noqa: ANN001, ANN201
    """(datamodule, GRU, TensorBoard logger) of a 900-row sine mission with labeled bumps,
    validation from ``val_start`` to row 800."""
    m = with_events(sine_mission(T=900, val_start=val_start, test_start=800))
    dm = WindowDataModule(m, window=6, batch_size=64, detrend=None)
    dm.setup("fit")
    torch.manual_seed(0)
    model = LitGRUAttentionAE(**dm.dims, hidden_size=8, latent_dim=4,
                              post_processing={"threshold": {"kind": "percentile", "q": 95}})
    model.set_preprocessing(dm)
    return dm, model, TensorBoardLogger(tmp_path, name="tb", version=0)


def test_a_run_stopped_between_figures_still_draws_its_last_validated_epoch(tmp_path):
    """With a figure every 5 epochs, a run that early stopping ended after epoch 2 of 10 left
    TensorBoard without any intervals figure: the last validated epoch's is drawn at the end,
    at that epoch's step, once."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    dm, model, logger = tiny_gru_run(tmp_path, val_start=600)
    run = trainer(max_epochs=10, logger=logger, num_sanity_val_steps=0,
                  callbacks=[ESAValidationMetrics(figure_every_n_epochs=5),
                             StopAfterSecondEpoch()])
    run.fit(model, dm)
    assert run.current_epoch == 2  # stopped after two epochs
    logger.experiment.flush()
    acc = EventAccumulator(str(tmp_path / "tb" / "version_0"),
                           size_guidance={"images": 0, "scalars": 0})
    acc.Reload()
    assert "val_provisional/intervals" in acc.Tags()["images"]
    [figure] = acc.Images("val_provisional/intervals")
    # the step of that epoch's val/loss (the last training batch's)
    assert figure.step == acc.Scalars("val/loss")[-1].step == run.global_step - 1


def test_histograms_and_figures_share_the_step_of_their_epochs_scalars(tmp_path):
    """The score histogram and the intervals figure of an epoch were written at the step after
    the one Lightning logs that epoch's ``val_provisional/`` metrics and ``val/loss`` at: an
    epoch's points sat one step apart, and the last epoch's figure at the step of the final
    ``val/``/``test/`` numbers. They are written at the same step as the scalars."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    # labeled bumps at rows 420 and 520: a scored validation range
    dm, model, logger = tiny_gru_run(tmp_path, val_start=400)
    run = trainer(max_epochs=3, logger=logger, num_sanity_val_steps=0, log_every_n_steps=1,
                  callbacks=[ESAValidationMetrics(figure_every_n_epochs=1)])
    run.fit(model, dm)
    logger.experiment.flush()
    acc = EventAccumulator(str(tmp_path / "tb" / "version_0"),
                           size_guidance={"scalars": 0, "histograms": 0, "images": 0})
    acc.Reload()
    scalar_steps = [e.step for e in acc.Scalars("val_provisional/AUC_PR")]
    assert len(scalar_steps) == 3
    assert [e.step for e in acc.Scalars("val/loss")] == scalar_steps
    assert [e.step for e in acc.Histograms("val_provisional/score")] == scalar_steps
    assert [e.step for e in acc.Images("val_provisional/intervals")] == scalar_steps
    # each epoch's points at its last training step's, on the train/loss axis
    assert scalar_steps[-1] == max(e.step for e in acc.Scalars("train/loss"))
