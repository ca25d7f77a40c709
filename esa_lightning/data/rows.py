"""Rows of the training range, for detectors that fit statistics rather than windows.

Each range's loader hands every nominal row (``nominal_rows``) of the range, in order, a batch of
``batch_size`` rows at a time, read from the mission's values when the batch is asked for: the
range is never copied whole (the values may be a memory-mapped cache), so the loader's memory is
one batch and the index of the nominal rows (8 bytes a row). ``max_rows`` (null by default)
bounds the rows read per range to an even subsample, logged with its row counts when it applies.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from esa_lightning.data.datamodule import MissionDataModule
from esa_lightning.data.mission import Mission, nominal_rows
from esa_lightning.errors import ESAInputError, quoted

log = logging.getLogger("esa_lightning")


class NominalRows(Dataset):
    """The rows ``index`` of ``values`` [T, C] as float32, item ``i`` being row ``index[i]``; a
    batch of items is read at once (``__getitems__``), as one [batch, C] tensor."""

    def __init__(self, values: np.ndarray, index: np.ndarray) -> None:
        self.values = values
        self.index = index

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> tuple[torch.Tensor]:
        return (self.__getitems__([item])[0],)

    def __getitems__(self, items: list[int]) -> torch.Tensor:
        rows = self.index[np.asarray(items, dtype=np.int64)]
        x = np.asarray(self.values[rows], dtype=np.float32)
        return torch.from_numpy(np.ascontiguousarray(x))


def as_batch(rows: torch.Tensor) -> list[torch.Tensor]:
    """The loader's batch of the rows ``NominalRows.__getitems__`` read: ``[x]``, as a loader
    over a ``TensorDataset`` of them gives it."""
    return [rows]


class RowDataModule(MissionDataModule):
    """Rows of the training range, for detectors that fit statistics rather than windows: every
    nominal row of each range, or an even subsample of ``max_rows`` of them when given."""

    DATAMODULE_KIND = "rows"

    def __init__(
        self, mission: Mission, batch_size: int = 65536, max_rows: int | None = None
    ) -> None:
        super().__init__()
        if mission.is_multiseries:
            raise ESAInputError(
                "datamodule=rows pools the rows of one shared grid by column; this mission "
                "holds independent series (e.g. NASA), whose columns are different channels: "
                "use a per-series model (model=window_pca, experiment=gru_ae_nasa)",
                value=mission.name,
            )
        whole = isinstance(max_rows, int) and not isinstance(max_rows, bool)
        if max_rows is not None and not (whole and max_rows >= 1):
            raise ValueError(f"max_rows={quoted(max_rows)}: must be null (every row) or a "
                             "whole number >= 1")
        self.mission = mission
        self.batch_size = batch_size
        self.max_rows = max_rows

    @property
    def dims(self) -> dict:
        return {"n_channels": len(self.mission.channel_names)}

    def _rows(self, part: Mission, name: str) -> NominalRows:
        index = np.flatnonzero(nominal_rows(part))
        n = len(index)
        if self.max_rows is not None and n > self.max_rows:
            index = index[np.linspace(0, n - 1, self.max_rows).astype(np.int64)]
            log.warning(
                "datamodule=rows: the %s range's %d nominal rows (of %d) are more than "
                "datamodule.max_rows=%d: the model reads an even subsample of %d of them "
                "(datamodule.max_rows=null: every row)",
                name, n, len(part.values), self.max_rows, len(index),
            )
        else:
            log.info("datamodule=rows: the %s range: every one of its %d nominal rows (of %d)",
                     name, n, len(part.values))
        return NominalRows(part.values, index)

    def _loader(self, rows: NominalRows, **kwargs: object) -> DataLoader:
        return DataLoader(rows, batch_size=self.batch_size, collate_fn=as_batch, **kwargs)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self._rows(self.mission.train(), "training"))

    def val_dataloader(self) -> DataLoader:
        rows = self._rows(self.mission.val(), "validation")
        return self._loader(rows, sampler=self.validation_sampler(rows))
