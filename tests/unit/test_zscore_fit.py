import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from esa_lightning.models.zscore.model import RobustZScore


def test_threshold_is_a_quantile_of_validation_scores_after_the_fit(tmp_path):
    """Lightning runs the epoch's validation before ``on_train_epoch_end``: the threshold must
    come from z-scores of the fitted median and scale, not of the untouched buffers (0 and 1),
    which put it in raw units and alarmed most rows."""
    gen = torch.Generator().manual_seed(0)
    train = 50.0 + 2.0 * torch.randn(4000, 3, generator=gen)
    val = 50.0 + 2.0 * torch.randn(2000, 3, generator=gen)
    model = RobustZScore(n_channels=3, quantile=99.0)
    trainer = pl.Trainer(
        max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, accelerator="cpu",
        default_root_dir=tmp_path,
    )
    trainer.fit(
        model,
        DataLoader(TensorDataset(train), batch_size=1000),
        DataLoader(TensorDataset(val), batch_size=1000),
    )
    assert torch.allclose(model.median, train.median(0).values)
    expected = torch.quantile(model.row_scores(val)[0], 0.99)
    assert torch.isclose(model.threshold, expected, rtol=1e-4)
