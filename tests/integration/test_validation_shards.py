"""Validation under DDP: every validation item is validated by exactly one process, so the
sums reduced over the processes at the epoch's end (``val/loss`` and its parts, the per-series
losses) equal one device's.

The processes are simulated in this one: each rank's loader is the one Lightning hands that rank
in ``fit`` (its sampler injection, with the rank set), the ranks validate one after another, and
``strategy.reduce(sum)`` adds what the ranks before handed it (the last rank's call returns the
total, as every rank's call does under DDP).
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.trainer.states import RunningStage
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from esa_lightning.data.rows import RowDataModule
from esa_lightning.data.windows import WindowDataModule
from esa_lightning.models.channel_ensemble.gbdt import GBDTChannelEnsemble
from esa_lightning.models.channel_ensemble.model import LitChannelEnsemble
from esa_lightning.models.gru_ae.model import LitGRUAttentionAE
from esa_lightning.models.processes import UnwrappedDDPStrategy
from tests.helpers import (
    make_tiny_mission,
    sine_mission,
    tiny_datamodule,
    trainer,
    two_series_mission,
)

pytestmark = pytest.mark.usefixtures("one_thread")

ALARM = {"alarm": {"kind": "peaks", "height": 0.5, "buffer": 100}}


def rank_loaders(
    datamodule: L.LightningDataModule, world_size: int, strategy: str | type = "ddp",
    **trainer: Any,
) -> list:
    """The validation loader each of ``world_size`` DDP processes gets in ``fit``
    (``strategy``, a name or a class, and ``trainer`` settings: those the model asks for,
    ``trainer_arguments``).

    Setting a rank also sets Lightning's process-wide ``rank_zero_only.rank``, which silences
    every rank-zero-only step (metrics.json, printed metrics) of later tests in this process: it
    is put back."""
    loaders = []
    rank_before = rank_zero_only.rank
    try:
        for rank in range(world_size):
            chosen = strategy() if isinstance(strategy, type) else strategy
            ddp = L.Trainer(accelerator="cpu", devices=world_size, strategy=chosen,
                            logger=False, **trainer)
            ddp.strategy.cluster_environment.set_global_rank(rank)
            datamodule.trainer = ddp
            loader = datamodule.val_dataloader()
            loaders.append(
                ddp._data_connector._prepare_dataloader(loader, False, RunningStage.VALIDATING)
            )
    finally:
        rank_zero_only.rank = rank_before
        datamodule.trainer = None
    return loaders


def validated_items(loaders: list) -> np.ndarray:
    """The dataset positions the ranks validate, all ranks together."""
    return np.concatenate([np.concatenate(list(loader.batch_sampler)) for loader in loaders])


def validate_over_ranks(model: L.LightningModule, loaders: list) -> dict[str, float]:
    """What ``model`` logs when each of ``loaders`` is one rank's (module docstring)."""
    handed: list[torch.Tensor] = []

    def reduce(tensor: torch.Tensor, group=None, reduce_op="mean") -> torch.Tensor:
        assert reduce_op == "sum"
        if tensor.ndim == 0:  # Lightning's own: the length of the rank's loader
            return tensor
        handed.append(tensor.clone())
        return torch.stack(handed).sum(0)

    for loader in loaders:
        one_rank = trainer()
        one_rank.strategy.reduce = reduce
        [logged] = one_rank.validate(model, dataloaders=loader, verbose=False)
    assert len(handed) == len(loaders)  # the model reduced its sums once per rank
    return logged


def segments():
    dm = tiny_datamodule(make_tiny_mission(), batch_rows=40)
    assert len(dm.monitor_rows()) % 2 == 1  # odd: two ranks do not share it evenly
    return dm


def windows():
    dm = WindowDataModule(two_series_mission(), window=8, batch_size=64, eval_batch_size=50)
    dm.setup("fit")
    return dm


def rows():
    return RowDataModule(sine_mission(), batch_size=16)


@pytest.mark.parametrize("make", [segments, windows, rows], ids=["segments", "windows", "rows"])
@pytest.mark.parametrize("world_size", [2, 3, 4])
def test_every_validation_item_is_validated_by_exactly_one_process(make, world_size):
    """Lightning's own sampler gives every rank as many items, repeating the first ones (with
    66 windows on 4 ranks, windows 0 and 1 twice); the sums then counted them twice."""
    dm = make()
    n = len(dm.val_dataloader().dataset)
    loaders = rank_loaders(dm, world_size)
    np.testing.assert_array_equal(np.sort(validated_items(loaders)), np.arange(n))
    sizes = [len(loader.sampler) for loader in loaders]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


def test_a_model_fitted_unwrapped_validates_every_item_on_every_rank():
    """A model without gradient steps in DDP's processes (after a DDP component, or under
    torchrun) fits on all the data on every rank, unwrapped, as one process would, but
    validated its rank's shard only: window_pca's val/loss, which it does not reduce over the
    ranks, was then rank 0's half of the windows."""
    dm = windows()
    n = len(dm.val_dataloader().dataset)
    loaders = rank_loaders(dm, 2, UnwrappedDDPStrategy, use_distributed_sampler=False)
    for loader in loaders:
        np.testing.assert_array_equal(np.sort(validated_items([loader])), np.arange(n))


def test_a_process_without_its_own_item_validates_one_again_and_says_so(caplog):
    """Fewer items than processes: every process must still validate a batch (it reaches the
    epoch end's reduction only then): the one left without an item repeats one, as Lightning's
    sampler does, and the log says which."""
    dm = windows()
    dm.val_set.starts = dm.val_set.starts[:2]
    with caplog.at_level(logging.WARNING, logger="esa_lightning"):
        loaders = rank_loaders(dm, 3)
    assert [list(loader.sampler) for loader in loaders] == [[0], [1], [0]]
    assert "2 validation items for 3 processes" in caplog.text


def ensemble_case():
    dm = segments()
    model = LitChannelEnsemble(**dm.dims, hidden=8, post_processing=ALARM)
    model.set_preprocessing(dm)
    return model, dm, 2, ["val/loss", "val/event_bce", "val/channel_bce"]


def gru_case():
    dm = windows()
    model = LitGRUAttentionAE(
        **dm.dims, hidden_size=12, latent_dim=6, objective="forecast", per_series=True,
        post_processing={"threshold": {"kind": "percentile", "q": 99}},
    )
    model.set_preprocessing(dm)
    return model, dm, 4, ["val/loss", "val/series_loss/A-1", "val/series_loss/B-2"]


@pytest.mark.parametrize("case", [ensemble_case, gru_case], ids=["channel_ensemble", "gru_ae"])
def test_the_validation_losses_over_ranks_are_one_device_s(case):
    """Over the ranks, the channel ensemble's val/loss of 95 rows on 2 ranks was 1.381728
    against one device's 1.381791 (row 0 counted twice); a per-series GRU's of 66 windows on 4
    ranks 0.170099 against 0.163544, its series A-1's 0.234917 against 0.225737 (windows 0 and
    1, both of A-1, counted twice)."""
    torch.manual_seed(0)
    model, datamodule, world_size, keys = case()
    [one] = trainer().validate(model, datamodule=datamodule, verbose=False)
    ranks = validate_over_ranks(model, rank_loaders(datamodule, world_size))
    for key in keys:
        assert ranks[key] == pytest.approx(one[key], rel=1e-6), key


def fewer_items(case):
    """``case`` with two validation items (windows, pooled rows) on three ranks."""
    model, dm, _, keys = case()
    if isinstance(dm, WindowDataModule):
        dm.val_set.starts = dm.val_set.starts[:2]
    else:
        first = dm.monitor_rows()[:2]
        dm.monitor_rows = lambda: first
    return model, dm, 3, keys


@pytest.mark.parametrize("case", [ensemble_case, gru_case], ids=["channel_ensemble", "gru_ae"])
def test_an_item_validated_again_by_a_process_without_one_counts_once(case):
    """With fewer validation items than processes, the process left without one validates an
    item again (it must reach the epoch end's reduction): the sums counted that item twice (two
    items on three ranks: the channel ensemble's val/loss 1.386613 against one device's
    1.392030, the GRU's 0.366310 against 0.386394). That process now hands zeros: the losses
    over the ranks are one device's."""
    torch.manual_seed(0)
    model, datamodule, world_size, keys = fewer_items(case)
    [one] = trainer().validate(model, datamodule=datamodule, verbose=False)
    ranks = validate_over_ranks(model, rank_loaders(datamodule, world_size))
    for key in [k for k in keys if k in one]:
        assert ranks[key] == pytest.approx(one[key], rel=1e-6), key


def test_the_gbdt_ensemble_logs_the_validation_loss_of_every_rank_s_rows():
    """The GBDT ensemble's val/loss is the surrogate's: the event and channel BCE summed over
    every rank's rows, reduced at the epoch's end. It logged its batches' mean, left to
    Lightning's ``sync_dist`` to average over the ranks (rank by rank here: the last rank's
    rows alone, 0.450 against 0.469), reducing no sum."""
    dm = segments()
    gbdt = GBDTChannelEnsemble(**dm.dims, max_iter=5, n_threads=1, post_processing=ALARM)
    gbdt.fit(dm)
    [one] = trainer().validate(gbdt, datamodule=dm, verbose=False)
    ranks = validate_over_ranks(gbdt, rank_loaders(dm, 2))
    for key in ("val/loss", "val/event_bce", "val/channel_bce"):
        assert ranks[key] == pytest.approx(one[key], rel=1e-6), key
