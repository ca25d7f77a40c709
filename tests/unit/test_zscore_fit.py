import os

import lightning.pytorch as pl
import torch
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler, TensorDataset

from esa_lightning.models.zscore.model import RobustZScore


def _nominal_rows() -> tuple[torch.Tensor, torch.Tensor]:
    """4000 training and 2000 validation rows of 3 nominal channels (50 +- 2), seeded."""
    gen = torch.Generator().manual_seed(0)
    train = 50.0 + 2.0 * torch.randn(4000, 3, generator=gen)
    return train, 50.0 + 2.0 * torch.randn(2000, 3, generator=gen)


def test_threshold_is_a_quantile_of_validation_scores_after_the_fit(tmp_path):
    """Lightning runs the epoch's validation before ``on_train_epoch_end``: the threshold must
    come from z-scores of the fitted median and scale, not of the untouched buffers (0 and 1),
    which put it in raw units and alarmed most rows."""
    train, val = _nominal_rows()
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
    train, val = _nominal_rows()
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


def _batches(x: torch.Tensor, batch_size: int) -> DataLoader:
    """``DataLoader(TensorDataset(x), batch_size=batch_size)``'s batches, each read as one slice
    of ``x`` rather than row by row and stacked: the same [rows, channels] tensors in the same
    order (1,300,000 rows took some 12 s a pass the row-by-row way, and the fit reads its
    training rows twice)."""
    in_order = BatchSampler(SequentialSampler(range(len(x))), batch_size, drop_last=False)
    return DataLoader(TensorDataset(x), batch_size=None, sampler=in_order)


def _fit(train: torch.Tensor, val: torch.Tensor, tmp_path, batch_size: int) -> RobustZScore:
    model = RobustZScore(n_channels=train.shape[1], quantile=99.9)
    trainer = pl.Trainer(
        max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, accelerator="cpu",
        default_root_dir=tmp_path,
    )
    trainer.fit(model, _batches(train, batch_size), _batches(val, batch_size))
    return model


def _torch_fit(train: torch.Tensor, val: torch.Tensor, model: RobustZScore):
    """median, scale and threshold as torch computes them over every row (column by column:
    each stays within torch.quantile's limit of 2**24 values)."""
    median = train.median(dim=0).values
    q = torch.tensor([0.75, 0.25])
    q75, q25 = torch.stack([torch.quantile(train[:, j], q) for j in range(train.shape[1])], 1)
    scale = ((q75 - q25) / 1.349).clamp_min(model.hparams.min_scale)
    z = ((val - median).abs() / scale).max(dim=1).values
    threshold = torch.quantile(z.clamp_max(torch.finfo(z.dtype).max), 0.999)
    return median, scale, threshold


def test_the_fit_uses_every_row_beyond_the_first_million(tmp_path):
    """The IQR scale and the threshold percentile came from the first 1,000,000 training and
    validation rows only (torch.quantile refuses long inputs): on a long mission the earliest
    months, here rows whose spread is a tenth of the later ones'."""
    gen = torch.Generator().manual_seed(0)
    n, early = 1_300_000, 1_000_000
    train = torch.randn(n, 2, generator=gen)
    train[early:] *= 10.0
    val = torch.randn(n, 2, generator=gen)
    val[early:] *= 30.0
    model = _fit(train, val, tmp_path, batch_size=260_000)
    median, scale, threshold = _torch_fit(train, val, model)
    assert torch.equal(model.median, median)
    assert torch.equal(model.scale, scale)
    assert torch.equal(model.threshold, threshold)
    truncated = torch.quantile(train[:early, 0], torch.tensor([0.75, 0.25]))
    assert not torch.isclose(model.scale[0], (truncated[0] - truncated[1]) / 1.349, rtol=1e-3)
    z = model.row_scores(val[:early])[0]
    assert not torch.isclose(model.threshold, torch.quantile(z, 0.999), rtol=1e-3)


def test_a_short_range_fits_the_numbers_torch_gives(tmp_path):
    """On at most 1,000,000 rows the fit is torch's own median (the lower middle value of an
    even count), linear quantiles and threshold, bit for bit."""
    gen = torch.Generator().manual_seed(1)
    train = torch.randn(4000, 4, generator=gen) * torch.tensor([1e-3, 1.0, 50.0, 1e4])
    train[:, 1] = train[:, 1].round()  # ties
    val = torch.randn(3001, 4, generator=gen) * torch.tensor([1e-3, 1.0, 50.0, 1e4])
    model = _fit(train, val, tmp_path, batch_size=1000)
    median, scale, threshold = _torch_fit(train, val, model)
    assert torch.equal(model.median, median)
    assert torch.equal(model.scale, scale)
    assert torch.equal(model.threshold, threshold)
    assert torch.equal(model.threshold, torch.quantile(model.row_scores(val)[0], 0.999))


def test_a_nan_sample_is_no_sample_in_the_fit(tmp_path):
    """A channel holding a NaN training value had a NaN median and scale (its z-score NaN on
    every row), and a validation row holding one made the threshold NaN: the run was refused
    as fitted on no usable rows. A NaN sample is no sample, as the readers take it: the
    channel's median and scale are those of its other values, the same streamed or held, and
    the NaN-score row is left out of the percentile."""
    gen = torch.Generator().manual_seed(2)
    train = torch.randn(4000, 3, generator=gen)
    val = torch.randn(2001, 3, generator=gen)
    train[17, 2] = train[1234, 2] = float("nan")
    val[5, 0] = float("nan")
    model = _fit(train, val, tmp_path, batch_size=1000)
    kept = train[:, 2][~train[:, 2].isnan()]
    assert model.median[2] == kept.sort().values[(len(kept) - 1) // 2]  # the lower median
    q75, q25 = torch.quantile(kept, torch.tensor([0.75, 0.25]))
    assert model.scale[2] == ((q75 - q25) / 1.349).clamp_min(model.hparams.min_scale)
    clean = torch.cat([val[:5], val[6:]])
    assert torch.isfinite(model.threshold)
    assert model.threshold == torch.quantile(model.row_scores(clean)[0], 0.999)


def test_a_channel_of_nan_only_is_refused_naming_it(tmp_path):
    """No value to fit its median and scale on: refused, not a NaN z-score on every row."""
    import pytest

    from esa_lightning.errors import ESAInputError

    gen = torch.Generator().manual_seed(3)
    train = torch.randn(3000, 3, generator=gen)
    train[:, 1] = float("nan")
    with pytest.raises(ESAInputError, match="column 'column 1 of the rows'.*no training value"):
        _fit(train, torch.randn(1000, 3, generator=gen), tmp_path, batch_size=1000)


def test_a_channel_of_nan_only_is_named_by_the_missions_channel_name(tmp_path):
    import numpy as np
    import pytest

    from esa_lightning.data.rows import RowDataModule
    from esa_lightning.errors import ESAInputError
    from tests.helpers import toy_mission

    values = np.random.default_rng(0).standard_normal((900, 3)).astype(np.float32)
    values[:600, 2] = np.nan  # every training row
    mission = toy_mission(values, val_start=600, test_start=800,
                          channel_names=["speed", "temp", "volts"])
    model = RobustZScore(n_channels=3)
    trainer = pl.Trainer(
        max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, accelerator="cpu",
        default_root_dir=tmp_path,
    )
    with pytest.raises(ESAInputError, match="column 'volts'.*no training value"):
        trainer.fit(model, datamodule=RowDataModule(mission, batch_size=256))


def test_a_validation_within_the_epoch_does_not_split_the_fit(tmp_path):
    """trainer.val_check_interval=0.5: the validation in the middle of the epoch fitted on the
    batches read so far, then the end's fit counted the later batches but read the loader's
    first ones again, and stopped ('the second pass over the rows read other rows'). The model
    is validated once, at the end of its one epoch, and fitted on every training row."""
    from esa_lightning.models.zscore.quantiles import column_statistics

    gen = torch.Generator().manual_seed(6)
    train = torch.randn(6000, 3, generator=gen)
    val = torch.randn(1000, 3, generator=gen)
    model = RobustZScore(n_channels=3)
    settings = {"max_epochs": 1, "accelerator": "cpu", "val_check_interval": 0.5}
    trainer = pl.Trainer(
        **{**settings, **model.trainer_arguments(settings)}, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        num_sanity_val_steps=0, default_root_dir=tmp_path,
    )
    trainer.fit(model, DataLoader(TensorDataset(train), batch_size=1000),
                DataLoader(TensorDataset(val), batch_size=1000))
    assert torch.equal(model.median, column_statistics(train, [0.5])[0])


def test_the_threshold_logged_in_a_process_group_draws_no_sync_dist_warning(tmp_path, monkeypatch):
    """A z-score trained after a DDP component (esa_full's) is fitted on every rank on all the
    rows (``UnwrappedDDPStrategy``): ``val/threshold`` is the same on every rank, yet Lightning
    warned on every such run that it was logged without ``sync_dist=True``. The value logged is
    the fitted threshold, bit for bit. A process group of one rank (gloo) is up, as there."""
    import warnings

    import torch.distributed as dist
    from lightning.pytorch.trainer.connectors.logger_connector import result

    from esa_lightning.models.processes import UnwrappedDDPStrategy

    # Lightning's launcher sets these for the processes it starts: put back after the test
    for name in ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE"):
        unset = name not in os.environ
        monkeypatch.setenv(name, os.environ.get(name, "0"))  # recorded: restored (or unset)
        if unset:
            monkeypatch.delenv(name)
    monkeypatch.setattr(result, "warning_cache", type(result.warning_cache)())  # not said yet
    train, val = _nominal_rows()
    model = RobustZScore(n_channels=3, quantile=99.0)
    trainer = pl.Trainer(
        max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, accelerator="cpu", devices=1,
        strategy=UnwrappedDDPStrategy(), use_distributed_sampler=False,
        default_root_dir=tmp_path,
    )
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer.fit(model, DataLoader(TensorDataset(train), batch_size=1000),
                        DataLoader(TensorDataset(val), batch_size=1000))
    finally:
        dist.destroy_process_group()
    assert [str(w.message) for w in caught if "sync_dist" in str(w.message)] == []
    assert torch.isfinite(model.threshold)
    assert torch.equal(trainer.callback_metrics["val/threshold"], model.threshold)
