"""What every datamodule hands the runtime: its mission, the model's dimensions, its kind; and
each process's share of the validation items under DDP (``ValidationShard``)."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sized
from typing import Any, ClassVar

import lightning as L
import numpy as np
import torch
from torch.utils.data import DistributedSampler

from esa_lightning.data.mission import Mission
from esa_lightning.metrics.intervals import runs

log = logging.getLogger("esa_lightning")


class ValidationShard(DistributedSampler):
    """Process ``rank``'s validation items of ``num_replicas``: items ``rank``, ``rank +
    num_replicas``, ... in order, so that every item is validated by exactly one process and
    the sums the models reduce over the processes at the epoch's end (``val/loss``) count it
    once. Lightning's own sampler gives every process as many items, repeating the first ones,
    which those sums counted twice.

    The processes' counts then differ by one item at most, and so may their batch counts:
    nothing collective may run per validation batch (none does: DDP syncs buffers at a
    process's first validation forward only, and the models reduce once, at the epoch's end).
    Every process must still validate a batch to reach those collectives: one left without an
    item (fewer items than processes) validates item ``rank % n`` again, as Lightning's would
    (``repeats``), and hands zeros to the sums (``reduce_validation_sums``), which count it
    once."""

    def __init__(self, dataset: Sized, num_replicas: int, rank: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False)
        n = len(dataset)
        self.items = list(range(rank, n, num_replicas))
        self.repeats = not self.items and n > 0  # another process's item, validated again
        if self.repeats:
            self.items = [rank % n]
            log.warning(
                "%d validation items for %d processes: process %d validates item %d again, "
                "which the validation loss counts once",
                n, num_replicas, rank, rank % n,
            )
        self.num_samples = len(self.items)

    def __iter__(self) -> Iterator[int]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


def reduce_validation_sums(module: L.LightningModule, sums: torch.Tensor) -> torch.Tensor:
    """``sums`` over this process's validation items, added over the processes (the sums all
    ranks get back): a process whose ``ValidationShard`` repeats another's item hands zeros,
    so that every item counts once."""
    loaders = module.trainer.val_dataloaders
    loaders = loaders if isinstance(loaders, list | tuple) else [loaders]
    repeats = any(getattr(getattr(loader, "sampler", None), "repeats", False)
                  for loader in loaders)
    mine = torch.zeros_like(sums) if repeats else sums
    return module.trainer.strategy.reduce(mine, reduce_op="sum")


class MissionDataModule(L.LightningDataModule, ABC):
    """A LightningDataModule over one ``Mission``.

    ``DATAMODULE_KIND`` is the ``conf/datamodule`` option it is (a model names the kind it trains
    on); ``dims`` are the keyword arguments its model is built with; ``feature_names`` name the
    model's input columns (kept in the artifact's schema). Fitted preprocessing (scaler,
    kernels) is exposed by each kind and handed to the model by ``set_preprocessing``.
    """

    DATAMODULE_KIND: ClassVar[str]
    #: the mission it serves (set by the subclass's constructor)
    mission: Mission

    @property
    @abstractmethod
    def dims(self) -> dict[str, Any]:
        """Keyword arguments of the model built on this datamodule."""

    @property
    def feature_names(self) -> list[str]:
        """Names of the model's input columns (empty when they are the mission's channels)."""
        return []

    def validation_sampler(self, dataset: Sized) -> ValidationShard | None:
        """The sampler of a validation loader over ``dataset``: this process's
        ``ValidationShard`` when its trainer runs several processes (Lightning keeps a
        distributed sampler it is given), None (the loader's order) otherwise."""
        ranks = self.trainer.distributed_sampler_kwargs if self.trainer is not None else None
        if not ranks or ranks["num_replicas"] == 1:
            return None
        return ValidationShard(dataset, ranks["num_replicas"], ranks["rank"])

    def label_fit_end(self) -> int:
        """Rows of the mission before this row may have had their labels read by the model's
        training (its in-sample rows); 0 when training reads no label. A stacked model
        (``esa_full``'s combiner) fits on the rows from here on, never on another model's
        in-sample scores."""
        return 0

    def label_free_ranges(self) -> list[tuple[int, int]]:
        """[first, stop) sample ranges of the training and validation ranges whose labels the
        model's training never read: where its post-processing heights and a stacked model
        fit. The rows from ``label_fit_end`` on, unless a datamodule knows better (the channel
        ensemble's held-out block may lie before in-sample rows)."""
        n = int(self.mission.test_start)
        start = min(self.label_fit_end(), n)
        return [(start, n)] if n > start else []


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[first, stop) of every run of True in ``mask``."""
    first, last = runs(mask)
    return [(int(a), int(b) + 1) for a, b in zip(first, last, strict=True)]


def intersect_ranges(range_lists: list[list[tuple[int, int]]], n: int) -> list[tuple[int, int]]:
    """The [first, stop) ranges within [0, n) that lie in every list of ``range_lists``."""
    inside = np.ones(n, dtype=bool)
    for ranges in range_lists:
        mine = np.zeros(n, dtype=bool)
        for a, b in ranges:
            mine[max(0, a) : min(n, b)] = True
        inside &= mine
    return true_runs(inside)
