"""The z-score's exact order statistics from two passes over batches of rows, without holding
them (``models/zscore/streaming.py``): the same numbers as over the rows held together."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from esa_lightning.models.zscore.model import RobustZScore
from esa_lightning.models.zscore.quantiles import column_statistics
from esa_lightning.models.zscore.streaming import TwoPassStatistics, streaming_column_statistics

Q = [0.75, 0.25]


def awkward_rows(n: int, seed: int = 0) -> np.ndarray:
    """float32 [n, 7]: a normal channel, a constant one, one of many ties, one of +-0.0, one
    near both ends of float32 (and an inf), one of tiny values, one of integers in float32."""
    rng = np.random.default_rng(seed)
    x = np.empty((n, 7), dtype=np.float32)
    x[:, 0] = rng.standard_normal(n)
    x[:, 1] = 3.25
    x[:, 2] = np.round(rng.standard_normal(n))
    x[:, 3] = rng.integers(-1, 2, n) * np.float32(0.0)  # -0.0, 0.0
    x[:, 4] = rng.choice(np.array([-3e38, 3e38, 1.0, -np.inf], dtype=np.float32), n)
    x[:, 5] = rng.standard_normal(n) * 1e-40  # subnormal
    x[:, 6] = rng.integers(-5000, 5000, n)
    return x


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal values (-0.0 equals 0.0), NaN where the other is NaN (inf - inf interpolated)."""
    return torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(), b.nan_to_num())


def batches(x: np.ndarray, size: int):
    return lambda: (torch.from_numpy(x[i : i + size]) for i in range(0, len(x), size))


@pytest.mark.parametrize("n", [1, 2, 3, 10, 11, 1000, 1001, 70_001])
def test_the_statistics_are_those_of_the_rows_held_together(n):
    x = awkward_rows(n, seed=n)
    med, qs = streaming_column_statistics(batches(x, 977), x.shape[1], Q)
    held_med, held_qs = column_statistics(torch.from_numpy(x), Q)
    assert same(med, held_med) and same(qs, held_qs)
    # the lower median (torch.median's), numpy's median where the count is odd
    lower = np.sort(x, axis=0)[(n - 1) // 2]
    np.testing.assert_array_equal(med.numpy(), lower)
    if n % 2:
        np.testing.assert_array_equal(med.numpy(), np.median(x, axis=0))
    finite = x[:, [0, 1, 2, 5, 6]]  # torch itself on the columns it interpolates finitely
    t = torch.from_numpy(finite)
    assert torch.equal(med[[0, 1, 2, 5, 6]], t.median(dim=0).values)
    assert torch.equal(qs[:, [0, 1, 2, 5, 6]], torch.quantile(t, torch.tensor(Q), dim=0))


@pytest.mark.parametrize("n", [2, 501, 1000])
def test_nan_values_are_no_values_in_either_fit(n):
    """A NaN value is no value (as the readers take a NaN sample): each column's statistics are
    those of its other values, held or streamed alike, bit for bit. A column holding one NaN
    gave NaN statistics, and the z-score of its channel was NaN on every row."""
    x = awkward_rows(n, seed=n)
    x[n // 2, 2] = np.nan  # one NaN: the count turns odd / even
    x[::3, 6] = np.nan  # many
    x[:, 1] = np.nan  # nothing but NaN
    med, qs = streaming_column_statistics(batches(x, 100), x.shape[1], Q)
    held_med, held_qs = column_statistics(torch.from_numpy(x), Q)
    assert same(med, held_med) and same(qs, held_qs)
    assert torch.isnan(med[1]) and torch.isnan(qs[:, 1]).all()
    for j in (2, 6):
        values = x[~np.isnan(x[:, j]), j]
        assert med[j] == np.sort(values)[(len(values) - 1) // 2]  # the lower median
        t = torch.from_numpy(values)
        assert torch.equal(qs[:, j], torch.quantile(t, torch.tensor(Q)))
        assert torch.equal(qs[:, j], torch.nanquantile(torch.from_numpy(x[:, j]),
                                                       torch.tensor(Q)))
    keep = [0, 3, 4, 5]  # untouched columns: their statistics as before
    before_med, before_qs = column_statistics(torch.from_numpy(x[:, keep].copy()), Q)
    assert same(med[keep], before_med) and same(qs[:, keep], before_qs)


def test_a_second_pass_over_other_rows_is_refused():
    x = awkward_rows(300)
    stats = TwoPassStatistics(x.shape[1], Q)
    stats.count(x)
    stats.refine(x[::-1].copy())  # the same rows in another order: fine
    stats.result()
    other = TwoPassStatistics(x.shape[1], Q)
    other.count(x)
    y = x.copy()
    y[5, 0] += 1.0
    other.refine(y)
    with pytest.raises(RuntimeError, match="other rows"):
        other.result()


def test_the_model_fits_the_statistics_of_the_batches_its_steps_read(tmp_path):
    """Two passes over the training loader's batches, the first ``limit_train_batches`` of
    them both times: the median and scale of exactly those rows."""
    gen = torch.Generator().manual_seed(0)
    train = 50.0 + 2.0 * torch.randn(5001, 3, generator=gen)
    train[:, 1] = torch.round(train[:, 1])  # ties
    val = 50.0 + 2.0 * torch.randn(700, 3, generator=gen)
    for limit, rows in ((1.0, train), (3, train[:3000])):
        model = RobustZScore(n_channels=3)
        trainer = pl.Trainer(
            max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, num_sanity_val_steps=0, accelerator="cpu",
            default_root_dir=tmp_path, limit_train_batches=limit,
        )
        trainer.fit(model, DataLoader(TensorDataset(train), batch_size=1000),
                    DataLoader(TensorDataset(val), batch_size=1000))
        med, (q75, q25) = column_statistics(rows, Q)
        assert torch.equal(model.median, med)
        assert torch.equal(model.scale, ((q75 - q25) / 1.349).clamp_min(1e-6))
        assert model._fit is None  # nothing held after the fit


class _Recording(RobustZScore):
    """A z-score recording the batches its training steps read (pass 1)."""

    def __init__(self, n_channels: int) -> None:
        super().__init__(n_channels)
        self.seen: list[torch.Tensor] = []

    def training_step(self, batch, batch_idx):
        self.seen.append(batch[0].clone())
        return super().training_step(batch, batch_idx)


def _fit_on(model, loader, val, tmp_path, limit):
    trainer = pl.Trainer(
        max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, accelerator="cpu",
        default_root_dir=tmp_path, limit_train_batches=limit,
    )
    trainer.fit(model, loader, DataLoader(TensorDataset(val), batch_size=1000))


@pytest.mark.parametrize("own_generator", [False, True])
def test_a_shuffled_loader_with_limited_batches_is_fitted_on_the_rows_its_steps_read(
    tmp_path, own_generator
):
    """A shuffled loader drew a new order for the fit's second pass, which then read other rows
    than the steps had with trainer.limit_train_batches: the fit was refused (RuntimeError:
    'the second pass over the rows read other rows'). The sampler's generator is rewound for
    the second pass; the loader is left as found (no generator of the fit's own on it)."""
    gen = torch.Generator().manual_seed(4)
    train = 50.0 + 2.0 * torch.randn(5001, 3, generator=gen)
    train[:, 1] = torch.round(train[:, 1])  # ties
    val = 50.0 + 2.0 * torch.randn(700, 3, generator=gen)
    generator = torch.Generator().manual_seed(9) if own_generator else None
    loader = DataLoader(TensorDataset(train), batch_size=1000, shuffle=True, generator=generator)
    model = _Recording(3)
    _fit_on(model, loader, val, tmp_path, limit=2)
    seen = torch.cat(model.seen)
    assert len(seen) == 2000 and not torch.equal(seen, train[:2000])  # shuffled, limited
    med, (q75, q25) = column_statistics(seen, Q)
    assert torch.equal(model.median, med)
    assert torch.equal(model.scale, ((q75 - q25) / 1.349).clamp_min(1e-6))
    assert loader.sampler.generator is generator


class _Reshuffled(torch.utils.data.Sampler):
    """A sampler drawing its order from numpy, which no fit can rewind."""

    def __init__(self, n: int) -> None:
        self.n, self.rng = n, np.random.default_rng(0)

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        return iter(self.rng.permutation(self.n).tolist())


def test_a_loader_whose_order_cannot_be_rewound_is_refused_saying_what_to_do(tmp_path):
    gen = torch.Generator().manual_seed(5)
    train = torch.randn(3000, 2, generator=gen)
    loader = DataLoader(TensorDataset(train), batch_size=500, sampler=_Reshuffled(3000))
    with pytest.raises(RuntimeError, match=r"other rows.*limit_train_batches=1\.0"):
        _fit_on(RobustZScore(2), loader, torch.randn(700, 2, generator=gen), tmp_path, limit=2)
    model = RobustZScore(2)  # every batch: the same rows, in another order
    _fit_on(model, loader, torch.randn(700, 2, generator=gen), tmp_path, limit=1.0)
    assert torch.equal(model.median, column_statistics(train, Q)[0])
