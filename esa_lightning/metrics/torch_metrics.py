"""torchmetrics wrappers: gather row decisions over a whole pass, score the series once.

Event metrics are not averages of per-batch values: an event spans many batches and a
DistributedSampler shards (and pads with duplicates) the rows. So the metric only collects
(row index, score, alarm[, channel alarms]) with ``dist_reduce_fx="cat"`` states; ``compute()``
sorts by row index, drops duplicated indices and calls :func:`full_report` once.

Use in a LightningModule::

    self.val_metrics = ESAEventMetrics(mission.val().events, mission.val().timestamps)

    def validation_step(self, batch, batch_idx):
        ...
        self.val_metrics.update(batch["row"], score, alarm)

    def on_validation_epoch_end(self):
        values = self.val_metrics.compute()          # same on every rank
        self.log_dict({f"val/{k}": v for k, v in values.items()}, sync_dist=False)
        self.val_metrics.reset()

Row indices are positions in the ``timestamps`` given at construction (0 .. T-1). Call
``update()``, not ``metric(...)``: the forward call would score each batch on its own.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat

from esa_lightning.errors import ESAInputError
from esa_lightning.metrics.report import full_report


class ESAEventMetrics(Metric):
    """Collects a pass over rows; ``compute()`` returns :func:`full_report`'s dict of floats."""

    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    def __init__(
        self,
        events: pd.DataFrame,
        timestamps: np.ndarray,
        *,
        channel_names: Sequence[str] | None = None,
        channels_table: pd.DataFrame | None = None,
        betas: float | Sequence[float] = 0.5,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.events = events
        self.timestamps = np.asarray(timestamps)
        self.channel_names = list(channel_names) if channel_names is not None else None
        self.channels_table = channels_table
        self.betas = betas
        self.add_state("rows", default=[], dist_reduce_fx="cat")
        self.add_state("scores", default=[], dist_reduce_fx="cat")
        self.add_state("alarms", default=[], dist_reduce_fx="cat")
        if self.channel_names is not None:
            self.add_state("channel_alarms", default=[], dist_reduce_fx="cat")

    def update(
        self,
        rows: torch.Tensor,
        score: torch.Tensor,
        alarm: torch.Tensor,
        channel_alarm: torch.Tensor | None = None,
    ) -> None:
        """rows: int [B] row positions; score: float [B]; alarm: 0/1 [B]; channel_alarm [B, C]."""
        rows = torch.as_tensor(rows, device=self.device).reshape(-1).long()
        self.rows.append(rows)
        self.scores.append(torch.as_tensor(score, device=self.device).reshape(-1).float())
        self.alarms.append(torch.as_tensor(alarm, device=self.device).reshape(-1).to(torch.uint8))
        if self.channel_names is not None:
            if channel_alarm is None:
                raise ESAInputError("this metric was built with channel names: pass channel_alarm")
            ca = torch.as_tensor(channel_alarm, device=self.device).to(torch.uint8)
            self.channel_alarms.append(ca.reshape(len(rows), len(self.channel_names)))

    def compute(self) -> dict[str, float]:
        rows = dim_zero_cat(self.rows).cpu().numpy()
        if rows.size == 0:
            raise ESAInputError("no rows were collected before compute()")
        if rows.min() < 0 or rows.max() >= len(self.timestamps):
            raise ESAInputError(
                f"row index out of range 0..{len(self.timestamps) - 1}", value=int(rows.max())
            )
        # first occurrence of each row in index order: padded duplicates carry the same values
        uniq, first = np.unique(rows, return_index=True)
        scores = dim_zero_cat(self.scores).cpu().numpy()[first]
        alarms = dim_zero_cat(self.alarms).cpu().numpy()[first]
        channel_alarm = None
        if self.channel_names is not None:
            channel_alarm = dim_zero_cat(self.channel_alarms).cpu().numpy()[first]
        return full_report(
            self.events,
            self.timestamps[uniq],
            alarms,
            score=scores,
            channel_alarm=channel_alarm,
            channel_names=self.channel_names,
            channels_table=self.channels_table,
            betas=self.betas,
        )
