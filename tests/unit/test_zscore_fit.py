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


def test_monitoring_before_the_threshold_is_fitted_alarms_at_the_provisional_percentile():
    """Lightning calls the callbacks' ``on_validation_epoch_end`` before the module's, where the
    threshold is fitted: the ESA metrics callback scored the first validation epoch against the
    unfitted (inf) threshold, so ``experiment=smoke``'s val_provisional/ metrics were those of no
    alarm at all (EW_recall 0.0) instead of the provisional percentile's."""
    import numpy as np

    from esa_lightning.callbacks import ESAValidationMetrics
    from tests.helpers import make_mission

    mission = make_mission()
    train = torch.as_tensor(np.asarray(mission.train().values))
    model = RobustZScore(n_channels=train.shape[1])
    model.median.copy_(train.median(0).values)
    model.scale.copy_(train.std(0))
    monitor = ESAValidationMetrics(provisional_percentile=99.0)
    start, stop = int(mission.val_start), int(mission.test_start)

    unfitted = monitor._score(model, mission, start, stop)
    score = np.asarray(unfitted.score)
    provisional = score > np.percentile(score, 99.0)
    assert provisional.any()
    assert np.array_equal(np.asarray(unfitted.alarm) > 0, provisional)

    model.threshold.fill_(float(np.median(score)))  # fitted: the model's own alarms
    fitted = monitor._score(model, mission, start, stop)
    assert np.array_equal(np.asarray(fitted.alarm) > 0, score > np.median(score))


def test_a_trainer_given_several_epochs_fits_the_z_score_once(tmp_path):
    """Every epoch after the first fitted the same median, scale and threshold again from the
    same rows: ``model=zscore`` (trainer.max_epochs 5 by default) took five passes where
    global_std, fitted the same way, takes one."""
    gen = torch.Generator().manual_seed(0)
    train = 50.0 + 2.0 * torch.randn(4000, 3, generator=gen)
    val = 50.0 + 2.0 * torch.randn(2000, 3, generator=gen)
    model = RobustZScore(n_channels=3)
    settings = {"max_epochs": 5, "min_epochs": 1, "accelerator": "cpu"}
    trainer = pl.Trainer(
        **{**settings, **model.trainer_arguments(settings)}, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        num_sanity_val_steps=0, default_root_dir=tmp_path,
    )
    fits = []
    fit_rows = model.fit_rows
    model.fit_rows = lambda: (fits.append(1), fit_rows())[1]
    trainer.fit(
        model,
        DataLoader(TensorDataset(train), batch_size=1000),
        DataLoader(TensorDataset(val), batch_size=1000),
    )
    assert trainer.current_epoch == 1 and len(fits) >= 1
    assert torch.allclose(model.median, train.median(0).values)


def test_a_percentile_of_too_few_validation_rows_is_warned_about(tmp_path, caplog):
    """The 99.9th percentile of a handful of validation rows is their largest score: a short
    validation range set the threshold without a word."""
    gen = torch.Generator().manual_seed(0)
    train = torch.randn(4000, 3, generator=gen)
    said = {}
    for n_val in (6, 2000):
        model = RobustZScore(n_channels=3, quantile=99.9)
        trainer = pl.Trainer(
            max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, num_sanity_val_steps=0, accelerator="cpu",
            default_root_dir=tmp_path,
        )
        caplog.clear()
        with caplog.at_level("WARNING", logger="esa_lightning"):
            trainer.fit(model, DataLoader(TensorDataset(train), batch_size=1000),
                        DataLoader(TensorDataset(torch.randn(n_val, 3, generator=gen)),
                                   batch_size=1000))
        messages = [r.getMessage() for r in caplog.records]
        said[n_val] = [m for m in messages if "validation rows" in m]
    assert len(said[6]) == 1 and "99.9th percentile of 6 validation rows" in said[6][0]
    assert "1000 rows at least" in said[6][0]
    assert said[2000] == []


def test_z_scores_beyond_float32_on_validation_leave_a_finite_threshold(tmp_path):
    """A channel constant in training (its scale the min_scale floor) that moves by 1e35 on
    validation has z-scores beyond float32 (inf): torch.quantile interpolating to an inf
    neighbour made the threshold NaN, and the run was refused as fitted on no usable rows."""
    import numpy as np

    from tests.helpers import toy_mission

    gen = torch.Generator().manual_seed(0)
    train = torch.randn(4000, 2, generator=gen)
    train[:, 1] = 1e35
    val = torch.randn(600, 2, generator=gen)
    val[:, 1] = 1e35
    val[-20:, 1] = 2e35
    model = RobustZScore(n_channels=2, quantile=99.9)
    trainer = pl.Trainer(
        max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, accelerator="cpu",
        default_root_dir=tmp_path,
    )
    trainer.fit(model, DataLoader(TensorDataset(train), batch_size=1000),
                DataLoader(TensorDataset(val), batch_size=1000))
    assert torch.isfinite(model.threshold) and model.is_calibrated
    values = torch.cat([train, val]).numpy().astype(np.float32)
    out = model.score_rows(toy_mission(values, val_start=4000, test_start=4600))
    assert out.alarm[-20:].all() and not out.alarm[4000:4580].any()
