"""Live monitoring: the ESA-ADB metrics, score histograms and interval figures in TensorBoard.

The metrics are computed once over the whole validation range on global rank 0 (never per shard:
a distributed sampler splits and pads the series), from the module's own ``score_rows``. Before
a module's threshold is calibrated (it is fitted after training), alarms come from a provisional
percentile of the validation scores. These per-epoch numbers are ``val_provisional/<metric>``;
``val/<metric>`` is the fitted detector's value, logged once at the end of training (the one in
``metrics.json``, which sweeps optimise). A validation range without labels logs no metrics.

Under DDP rank 0 then broadcasts the numbers and every rank logs the same values, so
``ModelCheckpoint`` / ``EarlyStopping`` may monitor ``val_provisional/EW_F_0.50`` on every rank.
Every rank reaches that broadcast: the conditions before it (epoch, sanity check, validation
range) are the same on all ranks. Histograms and figures are built on rank 0 only (the only
TensorBoard writer)."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import lightning as L
import numpy as np
from lightning.pytorch.callbacks import ModelSummary

from esa_lightning.data.datamodule import MissionDataModule
from esa_lightning.data.mission import Mission
from esa_lightning.errors import ESAInputError, quoted
from esa_lightning.metrics.intervals import runs
from esa_lightning.models.base import DetectorModule, RowScores, context_start
from esa_lightning.models.raised_by import SCORE
from esa_lightning.postprocessing.base import align_rule_state
from esa_lightning.runtime.evaluation import ScoredRange, report_for, unscored_reason

log = logging.getLogger("esa_lightning")
# the prefix of the metrics, histogram and figure logged during training
PROVISIONAL = "val_provisional"


def provisional_alarm(rs: RowScores, q: float) -> RowScores:
    """Alarms at the ``q`` percentile of the scores when the module's own threshold is unset:
    a threshold on the score, so its rows' ``threshold`` is that percentile and their
    ``raised_by`` is ``score`` (``models.raised_by``), as a fitted threshold's; the other
    outputs (per-channel scores and alarms, the gate's probability) are kept."""
    if rs.alarm.any() or not len(rs.score):
        return rs
    finite = rs.score[np.isfinite(rs.score)]
    if not len(finite):
        return rs
    level = np.percentile(finite, q)
    alarm = (rs.score > level).astype(np.uint8)
    return dataclasses.replace(rs, alarm=alarm,
                               threshold=np.full(len(alarm), level, dtype=np.float32),
                               raised_by=alarm * np.uint8(SCORE))


def tensorboard_writer(trainer: L.Trainer) -> Any | None:
    from lightning.pytorch.loggers import TensorBoardLogger

    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            return logger.experiment
    return None


def logging_step(trainer: L.Trainer) -> int:
    """The step Lightning logs metrics at when none is given (``LoggerConnector.log_metrics``),
    the horizontal axis of every curve: the training batches that stepped so far. Inside a
    validation run during fitting that is the last training batch's step (one below
    ``trainer.global_step``, which counts that batch already), where ``val/loss`` and
    ``val_provisional/<metric>`` of the epoch are; after fitting, one past the last point. A
    model fitted without gradient steps counts its batches here (its ``global_step`` stays 0)."""
    loop = getattr(trainer, "fit_loop", None)
    step = getattr(getattr(loop, "epoch_loop", None), "_batches_that_stepped", None)
    return int(step) if step is not None else int(trainer.global_step)


class ESAValidationMetrics(L.Callback):
    """Logs ``val_provisional/<ESA metric>`` every ``every_n_epochs`` (none without labels);
    histograms and figures on rank 0: a figure every ``figure_every_n_epochs`` and one of the
    last validated epoch (a run that early stopping ended between figures included).

    ``max_rows``: they are computed from the validation range's last ``max_rows`` rows (its
    context rows before them scored too), bounding each epoch's time and memory; a longer
    range is said once, in one INFO line naming both counts. ``val/<metric>`` reads every row.
    """

    def __init__(
        self,
        every_n_epochs: int = 1,
        figure_every_n_epochs: int = 5,
        n_figure_channels: int = 3,
        provisional_percentile: float = 99.0,
        max_rows: int = 2_000_000,
    ) -> None:
        for key, value in (("every_n_epochs", every_n_epochs),
                           ("figure_every_n_epochs", figure_every_n_epochs)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key}={quoted(value)}: must be a whole number >= 1 (epochs)")
        pct = provisional_percentile
        if isinstance(pct, bool) or not isinstance(pct, int | float) or not 0 <= pct <= 100:
            raise ValueError(f"provisional_percentile={quoted(pct)}: must be a "
                             "percentile in [0, 100]")
        if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
            raise ValueError(f"max_rows={quoted(max_rows)}: must be a whole number >= 1 (rows)")
        self.every_n_epochs = every_n_epochs
        self.figure_every_n_epochs = figure_every_n_epochs
        self.n_figure_channels = n_figure_channels
        self.provisional_percentile = provisional_percentile
        self.max_rows = max_rows
        self._bound_said = False  # the INFO line on a range longer than max_rows: said once
        self._undrawn: tuple[Mission, RowScores, int] | None = None  # the last epoch's, no figure

    def _validation_range(self, trainer: L.Trainer) -> tuple[Mission, int, int] | None:
        """The mission and the rows [start, stop) scored: its validation range's last
        ``max_rows``; None without one."""
        dm = trainer.datamodule
        mission = dm.mission if isinstance(dm, MissionDataModule) else None
        if mission is None or mission.is_multiseries:
            return None
        start, stop = int(mission.val_start), int(mission.test_start)
        if stop <= start:
            return None
        if stop - start > self.max_rows and not self._bound_said and trainer.is_global_zero:
            self._bound_said = True
            log.info("%s/*: computed from the validation range's last %d rows of its %d "
                     "(callbacks.esa_metrics.max_rows); val/<metric> reads every row",
                     PROVISIONAL, self.max_rows, stop - start)
        return mission, max(start, stop - self.max_rows), stop

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        if trainer.sanity_checking or (epoch + 1) % self.every_n_epochs:
            return
        found = self._validation_range(trainer)
        if found is None:
            return
        mission, start, stop = found
        val = mission.slice(start, stop)
        rs, metrics = None, {}
        if trainer.is_global_zero:
            rs = self._score(pl_module, mission, start, stop)
            if unscored_reason(val) is None:  # never 0.0 for a range without labels
                scored = ScoredRange(val, rs, np.asarray(val.timestamps), val.events)
                metrics = _finite(report_for(scored, PROVISIONAL))
        # a collective: every rank gets here (see the module docstring)
        metrics = trainer.strategy.broadcast(metrics, src=0)
        if metrics:  # equal values on every rank: the mean is exact
            pl_module.log_dict(metrics, sync_dist=trainer.world_size > 1)
        writer = tensorboard_writer(trainer) if trainer.is_global_zero else None
        if writer is None or rs is None:
            return
        # at the step of the epoch's scalars (val/loss, val_provisional/<metric>)
        step = logging_step(trainer)
        finite = rs.score[np.isfinite(rs.score)]
        if len(finite):
            writer.add_histogram(f"{PROVISIONAL}/score", finite, global_step=step)
        self._undrawn = (val, rs, step)
        if (epoch + 1) % self.figure_every_n_epochs == 0 or epoch + 1 == trainer.max_epochs:
            self._draw(writer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The last validated epoch's figure, when no figure was due there (early stopping)."""
        writer = tensorboard_writer(trainer) if trainer.is_global_zero else None
        if writer is not None and self._undrawn is not None:
            self._draw(writer)

    def _draw(self, writer: Any) -> None:
        val, rs, step = self._undrawn
        figure = interval_figure(val, rs, self.n_figure_channels)
        writer.add_figure(f"{PROVISIONAL}/intervals", figure, global_step=step, close=True)
        self._undrawn = None

    def _score(self, pl_module: DetectorModule, mission: Mission, start: int, stop: int
               ) -> RowScores:
        """Rows [start, stop) of ``mission`` scored with the module's context rows before
        them, as ``val/`` is scored (``runtime.evaluation.score_range``): a model whose first
        output needs more rows than the range holds (the channel ensemble's pooled rows)
        scores it all the same."""
        lo = context_start(start, int(pl_module.context_rows), int(pl_module.alignment_rows))
        part = mission.slice(lo, stop)
        was_training = pl_module.training
        pl_module.eval()
        if pl_module.is_calibrated:
            rs = pl_module.score_rows(part)
        else:  # thresholds are fitted after training: score with a provisional one
            rs = pl_module.provisional_scores(part)
        pl_module.train(was_training)
        rs = rs.rows(slice(start - lo, None))
        return rs if pl_module.is_calibrated else provisional_alarm(rs, self.provisional_percentile)


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if np.isfinite(v)}


def interval_figure(part: Mission, rs: RowScores, n_channels: int) -> Any:
    """Channels with the most labeled events: values, true intervals (green), alarms (red)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = part.events.groupby("Channel")["ID"].nunique() if len(part.events) else None
    names = list(part.channel_names)
    ranked = [
        c
        for c in (counts.sort_values(ascending=False).index if counts is not None else [])
        if c in names
    ][:n_channels] or names[:n_channels]
    t = np.arange(len(part.values))
    fig, axes = plt.subplots(
        len(ranked) + 1, 1, figsize=(10, 1.6 * (len(ranked) + 1)), sharex=True, squeeze=False
    )
    for ax, name in zip(axes[:-1, 0], ranked, strict=True):
        c = names.index(name)
        ax.plot(t, part.values[:, c], lw=0.6, color="black")
        if part.labels is not None:
            _shade(ax, part.labels[:, c] > 0, "green")
        if rs.channel_alarm is not None:
            _shade(ax, rs.channel_alarm[:, c] > 0, "red")
        ax.set_ylabel(name, fontsize=7)
    ax = axes[-1, 0]
    ax.plot(t, rs.score, lw=0.6)
    _shade(ax, part.is_anomaly > 0, "green")
    _shade(ax, rs.alarm > 0, "red")
    ax.set_ylabel("score", fontsize=7)
    fig.tight_layout()
    return fig


def _shade(ax: Any, mask: np.ndarray, color: str) -> None:
    if not mask.any():
        return
    for first, last in zip(*runs(mask), strict=True):
        ax.axvspan(first, last + 1, color=color, alpha=0.3, lw=0)


class CompactModelSummary(ModelSummary):
    """Lightning's model summary as one log line (``train`` adds it unless a ``ModelSummary`` is
    configured): its table repeats the module names, and its FLOPs are 0 without an example
    input. ``+callbacks.model_summary._target_=lightning.pytorch.callbacks.RichModelSummary``
    brings the table back."""

    @staticmethod
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int,
        **summarize_kwargs: Any,
    ) -> None:
        from lightning.pytorch.utilities.model_summary import get_human_readable_count

        def count(n: int) -> str:  # Lightning pads a count below 1000 for its table ("0  ")
            return get_human_readable_count(n).strip()

        flops = f", {count(total_flops)} FLOPs" if total_flops else ""
        log.info(
            "model: %s trainable parameters of %s (%.2f MB)%s",
            count(trainable_parameters),
            count(total_parameters),
            model_size,
            flops,
        )


class WeightRestorer(L.Callback):
    """A callback that gives the model back its best weights in ``on_train_end``. Lightning runs
    trainer callbacks before the model's own (``configure_callbacks``), so the weights are back
    before any post rule is fitted on them; ``train`` runs it again when a resumed run skips
    training."""


class RestoreBestWeights(WeightRestorer):
    """At the end of training, load the weights of the best checkpoint ``ModelCheckpoint`` kept.

    Early stopping ends training ``patience`` epochs past the best epoch; with this callback the
    heads fitted after training (thresholds, forest) and the saved detector use the best epoch's
    weights instead of the last one's. Without a best checkpoint (no monitor, or no validation
    yet) it logs why and keeps the last weights.

    A fit that took no optimizer step (a family fitted without gradient steps, in its one epoch:
    ``channel_ensemble_gbdt``, ``window_pca``, ``zscore``) has no other weights than its last,
    and no best checkpoint: ``ModelCheckpoint`` saves none before the first step, even when the
    validation logged its monitor. There is nothing to restore, and it says nothing.
    """

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from esa_lightning.run_folder import run_dir_setting
        from esa_lightning.runtime.checkpoints import read_checkpoint

        if trainer.global_step == 0:  # no optimizer step: the last weights are the only ones
            log.debug("no optimizer step taken: %s keeps its fitted weights",
                      type(pl_module).__name__)
            return
        ckpt = trainer.checkpoint_callback
        path = getattr(ckpt, "best_model_path", "") if ckpt is not None else ""
        if not path:
            log.warning("no best checkpoint (monitor unset or never validated): last weights kept")
            return
        # a file of the run folder (a resumed run takes its name from last.ckpt): read safely,
        # and a missing, damaged or foreign one is one error naming it
        # (the best epoch's weights are in no other file: the way out is that file or a new run)
        advice = ("put that file back if you have a copy of it, or start a new run (another "
                  f"{run_dir_setting()}, no ckpt_path)")
        try:
            state = read_checkpoint(path)["state_dict"]
        except ESAInputError as exc:
            raise ESAInputError(f"{exc.reason}; {advice}", path=path) from None
        try:  # a rule the run added on resume keeps its tensors: it is fitted after this
            pl_module.load_state_dict(align_rule_state(state, pl_module.state_dict()))
        except RuntimeError as exc:
            raise ESAInputError(
                "the best epoch's checkpoint does not fit the model "
                f"({' '.join(str(exc).split())[:300]}); {advice}",
                path=path,
            ) from None
        log.info(
            "restored the weights of %s (%s %.6g)", path, ckpt.monitor, float(ckpt.best_model_score)
        )


class SeriesBestWeights(WeightRestorer):
    """Early stopping and best weights per series network, as Telemanom trains and early-stops
    each channel's model alone (``model.per_series=true``); with one shared network, the same
    for that network on the mean validation loss (early stopping + restore, no checkpoint read).

    After every validation epoch each network whose validation loss fell by more than
    ``min_delta`` below its best has its weights copied; training stops once no network has
    improved for ``patience`` epochs; at the end every network gets its own best epoch's
    weights back (``fit_component`` runs this before the other callbacks' ``on_train_end``).
    Under DDP the per-series losses are summed over ranks first, so every rank decides alike.
    The module names its networks and their losses: ``validation_units()``.
    """

    def __init__(self, patience: int = 10, min_delta: float = 0.0003) -> None:
        self.patience, self.min_delta = int(patience), float(min_delta)
        self.best: np.ndarray | None = None
        self.best_epoch: np.ndarray | None = None
        self.wait: np.ndarray | None = None
        self.weights: dict[int, dict[str, Any]] = {}

    @staticmethod
    def _units(pl_module: L.LightningModule) -> tuple[list[Any], np.ndarray | None]:
        if not isinstance(pl_module, DetectorModule):
            raise ESAInputError(
                f"SeriesBestWeights needs a detector family; {type(pl_module).__name__} is not a "
                "DetectorModule",
                column="callbacks",
            )
        return pl_module.validation_units()

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        n = len(self._units(pl_module)[0])
        if self.best is None or len(self.best) != n:
            self.best = np.full(n, np.inf)
            self.best_epoch = np.full(n, -1)
            self.wait = np.zeros(n, dtype=np.int64)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        nets, losses = self._units(pl_module)
        if trainer.sanity_checking or losses is None:
            return
        for s, loss in enumerate(losses):
            if np.isfinite(loss) and loss < self.best[s] - self.min_delta:
                self.best[s], self.best_epoch[s], self.wait[s] = loss, trainer.current_epoch, 0
                self.weights[s] = {k: v.detach().clone() for k, v in nets[s].state_dict().items()}
            else:
                self.wait[s] += 1
        if (self.wait >= self.patience).all():
            trainer.should_stop = True

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        nets = self._units(pl_module)[0]
        for s, state in self.weights.items():
            nets[s].load_state_dict(state)
        if self.weights:
            epochs = self.best_epoch[self.best_epoch >= 0]
            log.info(
                "restored each network's best weights: best epochs %d..%d (median %d) of %d",
                epochs.min(), epochs.max(), int(np.median(epochs)), len(self.weights),
            )
        unjudged = len(nets) - len(self.weights)
        if unjudged:
            log.warning(
                "%d of %d networks never had a validation loss (a series' validation range "
                "shorter than a window, or no validation epoch): their last weights kept",
                unjudged, len(nets),
            )

    def state_dict(self) -> dict[str, Any]:
        """Resumable state, as tensors (checkpoints load with ``weights_only``)."""
        import torch

        if self.best is None:
            return {}
        return dict(
            best=torch.as_tensor(self.best),
            best_epoch=torch.as_tensor(self.best_epoch),
            wait=torch.as_tensor(self.wait),
            weights={str(s): w for s, w in self.weights.items()},
        )

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not state_dict:
            return
        self.best = state_dict["best"].numpy().astype(np.float64)
        self.best_epoch = state_dict["best_epoch"].numpy().astype(np.int64)
        self.wait = state_dict["wait"].numpy().astype(np.int64)
        self.weights = {int(s): w for s, w in state_dict["weights"].items()}
