"""ESA-ADB's GlobalSTD baseline: a row is anomalous on a channel when it lies more than
``n_std`` standard deviations from that channel's mean.

Mean and standard deviation are fitted per channel on the nominal training rows (one pass, no
gradient steps); the per-channel score of a row is |x - mean| / std, the row score the maximum
over channels. The threshold is the fixed multiple ``n_std`` (no validation quantile, no post
rule), and channel alarms are per channel, as in ESA-ADB where each channel is thresholded alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from esa_lightning.data.mission import Mission
from esa_lightning.models.base import DetectorModule, RowScores, per_channel_row_scores


class GlobalSTD(DetectorModule):
    """Per-channel |x - mean| / std against a fixed ``n_std``; fitted in one epoch."""

    datamodule_kind = "rows"
    needs_float64 = True  # the float64 mean and std

    def __init__(self, n_channels: int, n_std: float = 3.0, min_std: float = 1e-6):
        super().__init__()
        self.save_hyperparameters()
        self.register_buffer("mean", torch.zeros(n_channels, dtype=torch.float64))
        self.register_buffer("std", torch.ones(n_channels, dtype=torch.float64))
        self.register_buffer("n_std", torch.tensor(float(n_std)))
        # running sums (float64) over the training rows: count, sum, sum of squares
        self._count = 0
        self._sum = torch.zeros(n_channels, dtype=torch.float64)
        self._sum_sq = torch.zeros(n_channels, dtype=torch.float64)
        self.automatic_optimization = False

    def fitted_state_problem(self) -> str | None:
        """What in the loaded statistics training never writes (``artifact.fitted``), or None:
        ``n_std`` finite and > 0, ``mean`` finite, ``std`` finite and >= ``min_std`` (else it
        never alarms, or alarms on every sample)."""
        floors = {"n_std": 0.0, "mean": -math.inf, "std": self.hparams.min_std}
        for key, floor in floors.items():
            value = getattr(self, key)
            bad = ~torch.isfinite(value) | (value <= floor if key == "n_std" else value < floor)
            if bool(bad.any()):
                return f"the fitted {key} holds {value[bad].flatten()[0].item()}"
        return None

    def configure_optimizers(self) -> None:
        return None

    def trainer_arguments(self, trainer_config: Mapping[str, Any]) -> dict[str, Any]:
        """One epoch over the training rows is the whole fit."""
        return {**super().trainer_arguments(trainer_config), "max_epochs": 1, "min_epochs": 1}

    def channel_scores(self, x: torch.Tensor) -> torch.Tensor:
        mean = self.mean.to(x.dtype)
        std = self.std.to(x.dtype)
        return (x - mean).abs() / std

    def on_train_epoch_start(self) -> None:
        self._count = 0
        self._sum.zero_()
        self._sum_sq.zero_()

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        x = batch[0].detach().to("cpu", torch.float64)
        self._count += x.shape[0]
        self._sum += x.sum(dim=0)
        self._sum_sq += (x * x).sum(dim=0)

    def on_train_epoch_end(self) -> None:
        # one process (no trainable parameter: DetectorModule.trainer_arguments)
        count = torch.tensor(float(self._count), dtype=torch.float64)
        self.set_statistics(count, self._sum.clone(), self._sum_sq.clone())

    def set_statistics(
        self, count: torch.Tensor, total: torch.Tensor, total_sq: torch.Tensor
    ) -> None:
        """Mean and std (population) from the row count, sums and sums of squares."""
        if count < 1:
            return
        mean = total / count
        var = (total_sq / count - mean * mean).clamp_min(0.0)
        self.mean.copy_(mean)
        self.std.copy_(var.sqrt().clamp_min(self.hparams.min_std))

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        """Nothing to fit on validation: the threshold is the fixed multiple ``n_std``."""

    @property
    def context_rows(self) -> int:
        """Each row is scored alone."""
        return 0

    @torch.no_grad()
    def score_rows(self, mission: Mission) -> RowScores:
        x = torch.as_tensor(np.array(mission.values, dtype=np.float32), device=self.device)
        return per_channel_row_scores(self.channel_scores(x).float(), self.n_std)
