"""A per-channel robust z-score detector: the baseline every learned model must beat.

Score of a row = max over channels of |x - median| / IQR-scale, with median and scale fitted on
nominal training rows and the alarm threshold set to a percentile of the validation scores.
It is a LightningModule so that it runs through the same trainer, callbacks and artifact code as
the learned models; fitting is one pass over the training rows, with nothing to optimise.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from esa_lightning.data.mission import Mission
from esa_lightning.models.base import DetectorModule, RowScores, per_channel_row_scores
from esa_lightning.models.zscore.quantiles import column_statistics, quantile

log = logging.getLogger("esa_lightning")


class RobustZScore(DetectorModule):
    """Robust per-channel z-scores; its threshold (a quantile of validation scores) is fitted
    in the validation loop, so it needs no post rule. Having no trainable parameter, it is
    fitted in one process (``DetectorModule.trainer_arguments``)."""

    datamodule_kind = "rows"

    def __init__(self, n_channels: int, quantile: float = 99.9, min_scale: float = 1e-6):
        super().__init__()
        self.save_hyperparameters()
        self.register_buffer("median", torch.zeros(n_channels))
        self.register_buffer("scale", torch.ones(n_channels))
        self.register_buffer("threshold", torch.tensor(float("inf")))
        self._train_rows: list[torch.Tensor] = []
        self._val_scores: list[torch.Tensor] = []
        self.automatic_optimization = False

    def configure_optimizers(self) -> None:
        return None

    def trainer_arguments(self, trainer_config: Mapping[str, Any]) -> dict[str, Any]:
        """One epoch over the training rows is the whole fit: every further epoch fitted the
        same median, scale and threshold again from the same rows (``trainer.max_epochs``, 5
        by default, times the time of the one pass, outside ``experiment=smoke``)."""
        return {**super().trainer_arguments(trainer_config), "max_epochs": 1, "min_epochs": 1}

    def row_scores(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = (x - self.median).abs() / self.scale
        return z.max(dim=1).values, z

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self._train_rows.append(batch[0].detach().cpu())

    def on_validation_epoch_start(self) -> None:
        # Lightning validates an epoch before on_train_epoch_end: fit first, so that the
        # threshold is a quantile of the fitted z-scores, not of the unscaled values
        if not self.trainer.sanity_checking:
            self.fit_rows()

    def on_train_epoch_end(self) -> None:
        self.fit_rows()  # a run without validation

    def fit_rows(self) -> None:
        """Median and scale from the training rows collected this epoch (once): the rows are
        held once, as the batches came, and read one column at a time (``torch.cat`` of them
        was a second copy of every training row)."""
        if not self._train_rows:
            return
        # over every row: torch.quantile refuses long inputs, and its first 1,000,000 rows
        # alone (the earliest months of a long mission) once gave the scale
        med, (q75, q25) = column_statistics(self._train_rows, [0.75, 0.25])
        self._train_rows.clear()
        self.median.copy_(med)
        self.scale.copy_(((q75 - q25) / 1.349).clamp_min(self.hparams.min_scale))

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        score, _ = self.row_scores(batch[0])
        self._val_scores.append(score.detach().cpu())

    def on_validation_epoch_end(self) -> None:
        if not self._val_scores:
            return
        s = torch.cat(self._val_scores)
        self._val_scores.clear()
        if self.trainer.sanity_checking or not len(s):
            return
        # a z-score beyond float32 (a value 1e35 away from a channel constant in training, whose
        # scale is min_scale) is inf, and torch.quantile interpolating to an inf neighbour gave
        # a NaN threshold: the run was refused as fitted on no usable rows. Held at the largest
        # float, such a row still lies above any finite threshold; finite scores are unchanged
        finite = s.clamp_max(torch.finfo(s.dtype).max)  # every row, as the fit (quantiles.py)
        self.threshold.copy_(quantile(finite, self.hparams.quantile / 100))
        self.warn_few_validation_rows(len(s))
        self.log("val/threshold", self.threshold, rank_zero_only=True)

    def warn_few_validation_rows(self, n: int) -> None:
        """A percentile q of fewer than 100 / (100 - q) scores lies between the two largest:
        the threshold is then about the largest validation score, whatever q says (99.9 of
        the 6 rows of a validation range of 3 minutes)."""
        q = float(self.hparams.quantile)
        needed = math.ceil(round(100 / (100 - q), 6)) if q < 100 else None
        if needed is not None and n < needed:
            log.warning(
                "zscore: its threshold, the %gth percentile of %d validation rows' scores, is "
                "about their largest (the percentile needs %d rows at least): give a longer "
                "validation range (data.val_days) or a lower model.quantile", q, n, needed,
            )

    @property
    def is_calibrated(self) -> bool:
        """Whether the threshold is fitted: until then monitoring alarms at its provisional
        percentile. Lightning runs the callbacks' ``on_validation_epoch_end`` before this
        module's, so the first epoch's ``val_provisional/`` metrics are computed before it is."""
        return bool(torch.isfinite(self.threshold))

    @property
    def context_rows(self) -> int:
        """Each row is scored alone."""
        return 0

    @torch.no_grad()
    def score_rows(self, mission: Mission) -> RowScores:
        x = torch.as_tensor(np.array(mission.values, dtype=np.float32), device=self.device)
        return per_channel_row_scores(self.row_scores(x)[1], self.threshold)
