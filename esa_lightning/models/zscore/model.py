"""A per-channel robust z-score detector: the baseline every learned model must beat.

Score of a row = max over channels of |x - median| / IQR-scale, with median and scale fitted on
nominal training rows and the alarm threshold set to a percentile of the validation scores. The
median is the lower of the two middle values for an even count (``torch.median``'s), the IQR's
quartiles are linearly interpolated (``torch.quantile``'s). A NaN sample is no sample (as the
readers take it): a channel's median and scale are those of its other training values, a
validation row whose score is NaN is left out of the percentile, and a channel with no training
value but NaN is refused, naming it.
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
from esa_lightning.errors import ESAInputError
from esa_lightning.models.base import DetectorModule, RowScores, per_channel_row_scores
from esa_lightning.models.zscore.quantiles import quantile
from esa_lightning.models.zscore.replay import SameOrder
from esa_lightning.models.zscore.streaming import OtherRows, TwoPassStatistics

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
        self._fit: TwoPassStatistics | None = None  # pass 1 over this epoch's training rows
        self._fit_batches = 0
        self._order: SameOrder | None = None  # a shuffled loader's order, for pass 2
        self._val_scores: list[torch.Tensor] = []
        self.automatic_optimization = False

    def configure_optimizers(self) -> None:
        return None

    def trainer_arguments(self, trainer_config: Mapping[str, Any]) -> dict[str, Any]:
        """One epoch over the training rows is the whole fit: every further epoch fitted the
        same median, scale and threshold again from the same rows (``trainer.max_epochs``, 5
        by default, times the time of the one pass, outside ``experiment=smoke``). Validated
        once, at its end: a validation within the epoch (``val_check_interval`` < 1) fitted on
        the batches read so far, and the fit at the end read the loader's first batches again
        for the later ones' counts (refused as other rows). ``val_check_interval`` None is
        Lightning's default, once at the epoch's end, as 1.0 is without its note saying so."""
        return {**super().trainer_arguments(trainer_config), "max_epochs": 1, "min_epochs": 1,
                "val_check_interval": None}

    def row_scores(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = (x - self.median).abs() / self.scale
        return z.max(dim=1).values, z

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        x = batch[0].detach().cpu().float()
        if self._fit is None:
            self._fit = TwoPassStatistics(x.shape[1], [0.75, 0.25])
        self._fit.count(x)  # pass 1: counters only, the rows are not kept
        self._fit_batches += 1

    def on_train_epoch_start(self) -> None:
        # before the epoch's loader draws its order: pass 2 draws it again (replay.py)
        self.release_order()
        self._order = SameOrder(self.trainer.train_dataloader)

    def release_order(self) -> None:
        if self._order is not None:
            self._order.release()
            self._order = None

    def on_validation_epoch_start(self) -> None:
        # Lightning validates an epoch before on_train_epoch_end: fit first, so that the
        # threshold is a quantile of the fitted z-scores, not of the unscaled values
        if not self.trainer.sanity_checking:
            self.fit_rows()

    def on_train_epoch_end(self) -> None:
        self.fit_rows()  # a run without validation

    def fit_rows(self) -> None:
        """Median and scale of the training rows this epoch's steps read (once), exact, over
        every row (torch.quantile refuses long inputs; its first 1,000,000 rows alone once gave
        the scale), without holding them: the steps counted them (pass 1), the same batches
        of the training loader are read again here (pass 2, ``streaming.TwoPassStatistics``;
        a shuffled loader's random sampler draws the order of pass 1 again, ``replay.py``).
        The rows were once held, 4 bytes x rows x channels (3.5 GB for 10 M x 87)."""
        if self._fit is None:
            self.release_order()
            return
        stats, n = self._fit, self._fit_batches
        self._fit, self._fit_batches = None, 0
        try:
            if self._order is not None:
                self._order.rewind()
            for i, batch in enumerate(self.trainer.train_dataloader):
                if i == n:
                    break
                stats.refine(batch[0].detach().cpu().float())
        finally:
            self.release_order()
        try:
            med, (q75, q25) = stats.result()
        except OtherRows as exc:
            raise OtherRows(
                f"zscore: {exc}. Its training loader gave other batches the second time: "
                "give it every training batch (trainer.limit_train_batches=1.0) or a loader "
                "that gives the same batches twice: shuffle=False (datamodule=rows reads its "
                "rows in order), or a torch random sampler in a loader without workers "
                "(num_workers=0), whose generator the fit rewinds"
            ) from None
        self.refuse_channels_without_values(stats.counts)
        self.median.copy_(med)
        self.scale.copy_(((q75 - q25) / 1.349).clamp_min(self.hparams.min_scale))

    def refuse_channels_without_values(self, counts: np.ndarray) -> None:
        """A channel whose training rows hold NaN only has no median or scale to fit (a NaN
        sample is no sample): refused, naming it (by the datamodule's mission's channel names
        where it has them, else by its column)."""
        empty = np.flatnonzero(np.asarray(counts) == 0)
        if not len(empty):
            return
        mission = getattr(self.trainer.datamodule, "mission", None)
        names = list(getattr(mission, "channel_names", None) or [])
        j = int(empty[0])
        name = str(names[j]) if len(names) == len(counts) else f"column {j} of the rows"
        raise ESAInputError(
            f"{len(empty)} channel(s) hold no training value but NaN (a NaN sample is no "
            "sample): the z-score has no median or scale to fit for it; repair or drop the "
            "channel (the readers forward-fill NaN and refuse a channel of NaN only)",
            column=name,
        )

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
        finite = s.clamp_max(torch.finfo(s.dtype).max)
        # every row but those of a NaN score (holding a NaN sample), as the fit (quantiles.py)
        self.threshold.copy_(quantile(finite, self.hparams.quantile / 100))
        self.warn_few_validation_rows(int((~s.isnan()).sum()))
        # every rank of a DDP run fits the same threshold on all the rows (unwrapped, no
        # distributed sampler: base.trainer_arguments): synced, Lightning does not warn it was
        # logged unsynced; their max is that value exactly (a mean divides a sum)
        self.log("val/threshold", self.threshold, sync_dist=True, reduce_fx="max")

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
