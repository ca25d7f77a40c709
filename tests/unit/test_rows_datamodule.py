"""datamodule=rows (model=zscore, model=global_std): every nominal row of a range is read, in
batches; a bound on the rows is a setting (``datamodule.max_rows``) whose use is logged."""

from __future__ import annotations

import logging

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from esa_lightning.data import mission as mission_module
from esa_lightning.data.mission import nominal_rows
from esa_lightning.data.rows import RowDataModule
from esa_lightning.errors import ESAInputError
from esa_lightning.models.global_std import GlobalSTD
from esa_lightning.models.zscore.model import RobustZScore
from esa_lightning.models.zscore.quantiles import column_statistics
from esa_lightning.settings import check_setting
from tests.helpers import toy_mission


def labeled_mission(n_train: int, n_val: int, n_test: int = 100, seed: int = 0):
    """Two channels whose later rows spread wider than the earlier; every 97th row labeled
    on one channel and far off (never a row to fit on)."""
    rng = np.random.default_rng(seed)
    n = n_train + n_val + n_test
    values = rng.standard_normal((n, 2)).astype(np.float32)
    values[n // 2:] *= np.float32(3.0)
    labels = np.zeros((n, 2), np.uint8)
    labels[::97, 1] = 1
    values[::97, 1] = 1e4
    return toy_mission(values, labels, val_start=n_train, test_start=n_train + n_val)


def fit(model: pl.LightningModule, dm: RowDataModule, tmp_path) -> None:
    trainer = pl.Trainer(
        max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, accelerator="cpu",
        default_root_dir=tmp_path,
    )
    trainer.fit(model, datamodule=dm)


def nominal_values(part) -> np.ndarray:
    return np.asarray(part.values)[nominal_rows(part)]


def test_a_range_beyond_two_million_nominal_rows_is_fitted_on_every_row(tmp_path, caplog):
    """The rows datamodule handed the baselines an even subsample of at most 2,000,000 of a
    range's nominal rows (a default nothing set, logged nowhere; ESA Mission1's training range
    alone holds several times that): zscore's median, scale and threshold percentile and
    global_std's mean and std were those of the subsample, not of the training range."""
    mission = labeled_mission(2_100_000, 2_050_000)
    train, val = nominal_values(mission.train()), nominal_values(mission.val())
    assert len(train) > 2_000_000 and len(val) > 2_000_000

    dm = RowDataModule(mission)
    with caplog.at_level(logging.INFO, logger="esa_lightning"):
        assert len(dm.train_dataloader().dataset) == len(train)
    assert f"every one of its {len(train)} nominal rows (of 2100000)" in caplog.text

    zscore = RobustZScore(n_channels=2, quantile=99.9)
    fit(zscore, dm, tmp_path)
    x = torch.from_numpy(train)
    median = x.median(dim=0).values
    q = torch.tensor([0.75, 0.25])
    q75, q25 = torch.stack([torch.quantile(x[:, j], q) for j in range(2)], 1)
    scale = ((q75 - q25) / 1.349).clamp_min(zscore.hparams.min_scale)
    assert torch.equal(zscore.median, median)
    assert torch.equal(zscore.scale, scale)
    z = zscore.row_scores(torch.from_numpy(val))[0]
    assert torch.equal(zscore.threshold, torch.quantile(z, 0.999))

    std = GlobalSTD(n_channels=2)
    fit(std, RowDataModule(mission), tmp_path)
    exact = train.astype(np.float64)
    np.testing.assert_allclose(std.mean.numpy(), exact.mean(0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(std.std.numpy(), exact.std(0), rtol=1e-12)


def test_max_rows_bounds_each_range_to_an_even_subsample_and_says_so(caplog):
    mission = labeled_mission(3000, 1000)
    train = nominal_values(mission.train())
    dm = RowDataModule(mission, batch_size=256, max_rows=500)
    with caplog.at_level(logging.INFO, logger="esa_lightning"):
        batches = [b[0] for b in dm.train_dataloader()]
    picked = np.linspace(0, len(train) - 1, 500).astype(np.int64)
    np.testing.assert_array_equal(torch.cat(batches).numpy(), train[picked])
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"training range's {len(train)} nominal rows (of 3000)" in warning
    assert "datamodule.max_rows=500" in warning and "subsample of 500" in warning

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="esa_lightning"):
        val_rows = RowDataModule(mission, max_rows=len(train)).val_dataloader().dataset
    assert len(val_rows) == len(nominal_values(mission.val()))  # fewer rows: all of them
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


def test_every_nominal_row_is_read_in_order_a_batch_at_a_time():
    mission = labeled_mission(3000, 1000)
    dm = RowDataModule(mission, batch_size=256)
    batches = [b[0] for b in dm.train_dataloader()]
    assert max(len(b) for b in batches) == 256 and all(b.dtype == torch.float32 for b in batches)
    np.testing.assert_array_equal(torch.cat(batches).numpy(), nominal_values(mission.train()))
    row = dm.val_dataloader().dataset[3]
    np.testing.assert_array_equal(row[0].numpy(), nominal_values(mission.val())[3])


@pytest.mark.parametrize("value", [0, -3, 2.5, True, "all"])
def test_a_bound_that_is_no_row_count_is_refused(value):
    with pytest.raises(ValueError, match="max_rows=.*null \\(every row\\) or a whole number"):
        RowDataModule(labeled_mission(300, 100), max_rows=value)
    if not isinstance(value, str):
        with pytest.raises(ESAInputError, match="datamodule.max_rows=.*: must be null"):
            check_setting("datamodule.max_rows", value)
    check_setting("datamodule.max_rows", None)


def test_nominal_rows_read_in_pieces_are_those_of_the_whole_labels(monkeypatch):
    mission = labeled_mission(300, 100)
    whole = nominal_rows(mission)
    monkeypatch.setattr(mission_module, "NOMINAL_PIECE_ROWS", 7)
    np.testing.assert_array_equal(nominal_rows(mission), whole)
    assert whole.sum() == len(whole) - len(range(0, len(whole), 97))


def test_column_statistics_of_batches_are_those_of_their_rows_together():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(1001, 3, generator=gen)
    parts = list(torch.split(x, 250))
    med, qs = column_statistics(parts, [0.75, 0.25, 0.5])
    med_all, qs_all = column_statistics(x, [0.75, 0.25, 0.5])
    assert torch.equal(med, med_all) and torch.equal(qs, qs_all)
