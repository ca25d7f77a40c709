"""Rows of the training range, for detectors that fit statistics rather than windows."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from esa_lightning.data.datamodule import MissionDataModule
from esa_lightning.data.mission import Mission, nominal_rows
from esa_lightning.errors import ESAInputError


class RowDataModule(MissionDataModule):
    """Rows of the training range, for detectors that fit statistics rather than windows."""

    DATAMODULE_KIND = "rows"

    def __init__(self, mission: Mission, batch_size: int = 65536, max_rows: int = 2_000_000):
        super().__init__()
        if mission.is_multiseries:
            raise ESAInputError(
                "datamodule=rows pools the rows of one shared grid by column; this mission "
                "holds independent series (e.g. NASA), whose columns are different channels: "
                "use a per-series model (model=window_pca, experiment=gru_ae_nasa)",
                value=mission.name,
            )
        self.mission = mission
        self.batch_size = batch_size
        self.max_rows = max_rows

    @property
    def dims(self) -> dict:
        return {"n_channels": len(self.mission.channel_names)}

    def _rows(self, part: Mission) -> TensorDataset:
        x = np.asarray(part.values, dtype=np.float32)[nominal_rows(part)]
        if len(x) > self.max_rows:  # a uniform subsample is enough for medians and quantiles
            x = x[np.linspace(0, len(x) - 1, self.max_rows).astype(np.int64)]
        return TensorDataset(torch.from_numpy(np.ascontiguousarray(x)))

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self._rows(self.mission.train()), batch_size=self.batch_size)

    def val_dataloader(self) -> DataLoader:
        rows = self._rows(self.mission.val())
        return DataLoader(rows, batch_size=self.batch_size, sampler=self.validation_sampler(rows))
