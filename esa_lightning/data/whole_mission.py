"""The whole mission, labels and every range, for detectors that fit from it directly."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, TensorDataset

from esa_lightning.data.datamodule import MissionDataModule
from esa_lightning.data.mission import Mission
from esa_lightning.errors import ESAInputError


class WholeMissionDataModule(MissionDataModule):
    """Hands its model the ``mission`` itself (``trainer.datamodule.mission``): the model fits
    from it in one epoch, reading what it needs (labels, training and validation ranges). The
    training loader holds one empty batch, so Lightning runs that epoch without copying rows;
    there is no validation loop."""

    DATAMODULE_KIND = "mission"

    def __init__(self, mission: Mission) -> None:
        super().__init__()
        self.mission = mission

    @property
    def dims(self) -> dict:
        """``n_channels`` of each grid and the names of the independent series (or none)."""
        grids = self.mission.grids()
        counts = {len(g.channel_names) for g in grids.values()}
        if len(counts) != 1:
            raise ESAInputError(
                f"series with different channel counts {sorted(counts)}: one model cannot "
                "score them all",
                path=self.mission.name,
            )
        series = [str(name) for name in grids] if self.mission.is_multiseries else []
        return {"n_channels": counts.pop(), "series": series}

    def label_fit_end(self) -> int:
        """The model may read every training label (``rolling_gbdt`` fits its classifier on
        them): its scores of the training rows are in sample, those of validation are not. For
        independent series, 0: they are never stacked."""
        return 0 if self.mission.is_multiseries else int(self.mission.val_start)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(torch.zeros(1, 0)), batch_size=1)
