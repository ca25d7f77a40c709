"""GRU + attention autoencoder (reference pipeline B) as a ``DetectorModule``.

The network (``network.py``) reconstructs the value channels of a window from the window (values
+ telecommands), or forecasts its last row (``objective=forecast``); the error is the anomaly
score. Everything fitted (scaler median / IQR, per-series thresholds, the score smoothing span)
is a registered buffer, so the module alone scores raw missions and all of it travels in
``state_dict`` and checkpoints.

Its post-processing is the nested ``post_processing`` node of its config, built into
``post_rules`` (``postprocessing.base``): a ``threshold`` rule (``percentile``, ``f05``,
``dynamic`` fitted on validation windows, or ``telemanom``: Telemanom's dynamic threshold on the
scored stream itself), optionally a ``random_forest`` gate that switches false alarms off, and
a ``gap_close`` rule (on by default; at most one) that closes short gaps between the row alarms
(``postprocessing.gaps``: the width chosen on the fit range), fitted and applied last.

Drift: with the hyper-parameter ``detrend`` (set from the datamodule's ``dims``) scoring first
subtracts each value column's trailing mean over ``detrend`` rows (``windows.model_inputs``,
the datamodule's own transform), so ``context_rows`` includes those rows of history.

Several independent series (NASA channels): one shared network with a learned series embedding,
or, with ``per_series=True``, one network per series (``SeriesNetworks``), as Telemanom trains
one model per channel; ``callbacks.SeriesBestWeights`` then early-stops and restores each
series' network on its own validation loss (``series_val_loss``, kept every validation epoch).
A deep ensemble (``members=N``): each network becomes N networks of the same shape
(``MemberMean``), each trained on its own loss, scoring with their mean output.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from esa_lightning.data.datamodule import reduce_validation_sums
from esa_lightning.data.mission import Mission
from esa_lightning.data.transforms.windows import (
    check_detrend_stat,
    detrend_history,
    n_windows,
    scaled_window_inputs,
    window_to_sample_scores,
)
from esa_lightning.errors import ESAInputError
from esa_lightning.models.base import (
    DetectorModule,
    GridScoring,
    RowScores,
    series_position,
    top_channels_setting,
)
from esa_lightning.models.gru_ae.alarms import (
    forecast_mae,
    handed_alarm,
    named_channels,
    row_alarm,
    scoring_key,
    window_alarms,
)
from esa_lightning.models.gru_ae.network import (
    OBJECTIVES,
    AEOutput,
    GRUAttentionAE,
    MemberMean,
    SeriesNetworks,
    WindowNetwork,
)
from esa_lightning.models.gru_ae.train_rows import TrainRows
from esa_lightning.models.processes import runs_ddp
from esa_lightning.models.window_pieces import WindowOutputs, WindowPieces
from esa_lightning.postprocessing.base import fitted_rule, plain_spec
from esa_lightning.postprocessing.channel_norm import ChannelNorm
from esa_lightning.postprocessing.frozen import FrozenValues
from esa_lightning.postprocessing.gaps import GapClose
from esa_lightning.postprocessing.random_forest import RandomForestGate
from esa_lightning.postprocessing.telemanom import TelemanomOnline
from esa_lightning.postprocessing.thresholds import WINDOW_THRESHOLDS, WindowThreshold
from esa_lightning.settings import check_setting

log = logging.getLogger(__name__)


class LitGRUAttentionAE(TrainRows, WindowPieces, GridScoring, DetectorModule):
    """Trains ``GRUAttentionAE`` on label-free windows and scores raw missions row by row."""

    datamodule_kind = "windows"
    #: windows per scoring forward pass (each window is scored on its own, in eval mode)
    RUNTIME_SETTINGS = frozenset({"score_batch_size"})
    POST_RULES = (ChannelNorm, *WINDOW_THRESHOLDS, TelemanomOnline, RandomForestGate, GapClose,
                  FrozenValues)

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        window: int = 10,
        inputs: str = "values+telecommands",
        series: list[str] | None = None,
        hidden_size: int = 64,
        latent_dim: int = 32,
        num_layers: int = 1,
        dropout: float = 0.0,
        series_embedding_dim: int = 4,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        loss: str = "smooth_l1",
        score_batch_size: int = 4096,
        detrend: int | None = None,
        detrend_stat: str = "mean",
        objective: str = "reconstruct",
        per_series: bool = False,
        horizon: int = 1,
        cell: str = "gru",
        members: int = 1,
        top_channels: int = 3,
        post_processing: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        for key, value in (("members", members), ("window", window), ("detrend", detrend),
                           ("score_batch_size", score_batch_size)):
            check_setting(f"model.{key}", value)  # a 0 batch: range()'s traceback
        if objective not in OBJECTIVES:
            raise ESAInputError(f"objective must be one of {OBJECTIVES}", column="objective",
                                value=objective)
        if loss not in ("smooth_l1", "mse"):
            raise ESAInputError("loss must be 'smooth_l1' or 'mse'", column="loss", value=loss)
        series = [str(s) for s in (series or [])]
        self.save_hyperparameters(
            dict(
                n_inputs=int(n_inputs),
                n_outputs=int(n_outputs),
                window=int(window),
                inputs=str(inputs),
                series=series,
                hidden_size=int(hidden_size),
                latent_dim=int(latent_dim),
                num_layers=int(num_layers),
                dropout=float(dropout),
                series_embedding_dim=int(series_embedding_dim),
                lr=float(lr),
                weight_decay=float(weight_decay),
                loss=str(loss),
                score_batch_size=int(score_batch_size),
                detrend=None if detrend is None else int(detrend),
                detrend_stat=check_detrend_stat(detrend_stat),
                objective=str(objective),
                per_series=bool(per_series),
                horizon=int(horizon),
                cell=str(cell),
                members=int(members),
                top_channels=top_channels_setting(top_channels),
                post_processing=plain_spec(post_processing),
            )
        )
        n_series = max(1, len(series))

        def network(embedded: int) -> GRUAttentionAE:
            return GRUAttentionAE(
                n_inputs,
                n_outputs,
                hidden_size,
                latent_dim,
                num_layers,
                dropout,
                n_series=embedded,
                series_embedding_dim=series_embedding_dim,
                forecast=objective == "forecast",
                # a scoring window is the history and the one row forecast from it
                history=int(window) - 1 if objective == "forecast" else None,
                horizon=horizon,
                cell=cell,
            )

        def build(embedded: int) -> WindowNetwork:
            if int(members) == 1:
                return network(embedded)
            return MemberMean([network(embedded) for _ in range(int(members))])

        # several series: one shared network with a series embedding, or one network each
        self.net: WindowNetwork = (
            SeriesNetworks([build(1) for _ in range(n_series)])
            if per_series and n_series > 1
            else build(n_series)
        )
        self.loss_fn = nn.SmoothL1Loss() if loss == "smooth_l1" else nn.MSELoss()
        self.window_loss_fn = type(self.loss_fn)(reduction="none")
        # validation loss of each series in the last validation epoch (SeriesBestWeights)
        self.series_val_loss: np.ndarray | None = None
        self.val_loss: float | None = None
        self._val_sums: torch.Tensor | None = None
        # fitted post-processing: travels in state_dict / checkpoints
        self.register_buffer("scaler_median", torch.zeros(n_series, n_inputs))
        self.register_buffer("scaler_iqr", torch.ones(n_series, n_inputs))
        self.register_buffer("train_rows", torch.zeros((), dtype=torch.int64))  # TrainRows
        self.post_rules = self.build_post_rules(
            self.hparams.post_processing, n_series=n_series, n_outputs=int(n_outputs)
        )
        self._check_post_rules()

    def _check_post_rules(self) -> None:
        rules = list(self.post_rules.values())
        thresholds = [r for r in rules if isinstance(r, WindowThreshold | TelemanomOnline)]
        if len(thresholds) != 1:
            raise ESAInputError(
                "post_processing: a GRU-attention model needs exactly one threshold rule "
                "(percentile, f05, dynamic or telemanom)",
                column="post_processing",
                value=[type(r).kind for r in rules],
            )
        online = isinstance(thresholds[0], TelemanomOnline)
        gates = [k for k, r in self.post_rules.items() if isinstance(r, RandomForestGate)]
        if online and gates:  # its fit reads a fitted window threshold, which telemanom has not
            raise ESAInputError(
                "the random-forest gate learns from the windows above a fitted window threshold "
                "(percentile, f05, dynamic); telemanom thresholds the scored stream itself: set "
                f"model.post_processing.{gates[0]}=null",
                column=f"post_processing.{gates[0]}",
                value="random_forest",
            )
        if online and thresholds[0].checks_error_scale and self.hparams.n_outputs != 1:
            raise ESAInputError(
                "the error-scale check compares errors with the one value they forecast: it "
                "needs a model with one output channel",
                column="post_processing.threshold.error_scale",
                value=thresholds[0].error_scale,
            )

    @property
    def threshold_rule(self) -> WindowThreshold | TelemanomOnline:
        """The rule that turns window errors into alarms (stage 0: fitted before the gate)."""
        return next(
            r for r in self.post_rules.values() if isinstance(r, WindowThreshold | TelemanomOnline)
        )

    @property
    def channel_norm(self) -> ChannelNorm | None:
        """The fitted per-channel error normalisation, when configured and fitted."""
        return fitted_rule(self.post_rules.values(), ChannelNorm)

    @property
    def gate(self) -> RandomForestGate | None:
        """The fitted random-forest gate, when configured and fitted."""
        rule = next((r for r in self.post_rules.values() if isinstance(r, RandomForestGate)), None)
        return rule if rule is not None and rule.forest is not None else None

    @property
    def gap_rule(self) -> GapClose | None:
        """The rule closing short gaps between the row alarms (at most one: ``single``), when
        configured; before it is fitted it closes nothing."""
        return next((r for r in self.post_rules.values() if isinstance(r, GapClose)), None)

    @property
    def frozen_rule(self) -> FrozenValues | None:
        """The fitted rule alarming on stuck channels (``postprocessing.frozen``), if any."""
        return fitted_rule(self.post_rules.values(), FrozenValues)

    # ------------------------------------------------------------------------- training
    def set_preprocessing(self, datamodule: Any) -> None:
        """Copy the datamodule's fitted scaler into the buffers (scoring needs no datamodule)."""
        self.set_scaler(*datamodule.scaler)
        self.record_train_rows(datamodule.mission)
        self.warn_unspanned_detrend()

    def set_scaler(self, median: np.ndarray, iqr: np.ndarray) -> None:
        median = torch.as_tensor(np.asarray(median, dtype=np.float32)).reshape_as(self.scaler_iqr)
        iqr = torch.as_tensor(np.asarray(iqr, dtype=np.float32)).reshape_as(self.scaler_iqr)
        self.scaler_median.copy_(median)
        self.scaler_iqr.copy_(iqr)

    def forward(self, x: torch.Tensor, series: torch.Tensor | None = None) -> AEOutput:
        return self.net(x, series)

    def _loss(self, batch) -> torch.Tensor:
        x, series = batch
        return self.net.training_loss(x, series, self.loss_fn)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch[0]))
        return loss

    def on_validation_epoch_start(self) -> None:
        self._val_sums = torch.zeros(2, max(1, len(self.hparams.series)), device=self.device)

    def validation_step(self, batch, batch_idx: int) -> None:
        """Sums each series' window losses; ``val/loss`` is their mean over all windows."""
        x, series = batch
        pairs = self.net.prediction_pairs(self.net(x, series), x)
        losses = self.window_loss_fn(*pairs).flatten(1).mean(1)
        index = series.to(self.device)
        self._val_sums[0].index_add_(0, index, losses.detach().float())
        self._val_sums[1].index_add_(0, index, torch.ones_like(losses, dtype=torch.float32))

    def on_validation_epoch_end(self) -> None:
        sums = reduce_validation_sums(self, self._val_sums)
        total, count = sums.sum(dim=1)
        if count == 0:
            return
        self.val_loss = float(total / count)
        # the sums are every rank's already: equal values, which sync_dist averages exactly (and
        # Lightning stops warning that a monitored value may be one rank's)
        self.log("val/loss", total / count, prog_bar=True, sync_dist=True)
        per_series = sums[0] / sums[1]  # nan for a series without validation windows
        self.series_val_loss = per_series.cpu().numpy()
        if isinstance(self.net, SeriesNetworks):
            for name, value in zip(self.hparams.series, per_series, strict=True):
                if torch.isfinite(value):
                    self.log(f"val/series_loss/{name}", value, sync_dist=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(
            self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay
        )

    def validation_units(self) -> tuple[list[nn.Module], np.ndarray | None]:
        """The networks early-stopped apart (``SeriesBestWeights``) and their losses of the last
        validation epoch: one per series with ``per_series``, else the one network."""
        if isinstance(self.net, SeriesNetworks):
            return list(self.net.nets), self.series_val_loss
        return [self.net], None if self.val_loss is None else np.array([self.val_loss])

    def trainer_arguments(self, trainer_config: Mapping[str, Any]) -> dict[str, Any]:
        """DDP must be told when a training step leaves parameters without gradient: one
        network per series (a batch of one series gives the others none), or a forecaster (its
        reconstruction decoder stays unused)."""
        unused = isinstance(self.net, SeriesNetworks) or self.hparams.objective == "forecast"
        if unused and runs_ddp(trainer_config):  # strategy ddp, or auto over several devices
            return {"strategy": "ddp_find_unused_parameters_true"}
        return {}

    # ------------------------------------------------------------------------- scoring
    def series_index(self, mission: Mission, series: str | None = None) -> int:
        """Which series' scaler / threshold / embedding applies to a single-grid ``mission``."""
        return series_position(self.hparams.series, mission, series)

    @torch.no_grad()
    def window_outputs(
        self,
        mission: Mission,
        series: str | None = None,
        features: bool = False,
        raw: bool = False,
        history: int = 0,
    ) -> WindowOutputs:
        """Errors (and RF features) of every stride-1 window of a single-grid ``mission``, but
        for its first ``history`` rows; normalised by the fitted ``channel_norm`` rule unless
        ``raw``.

        Detrends (hyper-parameter ``detrend``, the datamodule's transform: ``model_inputs``) and
        scales with the module's own buffers; ``history`` rows only give the later rows their
        trailing means, no window holds them. Batched so that a million rows fit anywhere. A
        range shorter than one window is padded in front by repeating its first row.
        """
        if mission.is_multiseries:
            raise TypeError("window_outputs() takes one series: use mission.series[name]")
        s = self.series_index(mission, series)
        hp = self.hparams
        median, iqr = self.scaler_median[s].cpu().numpy(), self.scaler_iqr[s].cpu().numpy()
        x, pad = scaled_window_inputs(mission, hp, median, iqr, history)
        data = torch.from_numpy(x)
        n = n_windows(len(x), hp.window)
        total = np.empty(n, dtype=np.float32)
        per_channel = np.empty((n, hp.n_outputs), dtype=np.float32)
        latent = np.empty((n, hp.latent_dim), dtype=np.float32) if features else None
        att = np.empty((n, 3), dtype=np.float32) if features else None
        steps = torch.arange(hp.window)
        was_training = self.training
        self.eval()
        try:
            for lo in range(0, n, hp.score_batch_size):
                hi = min(n, lo + hp.score_batch_size)
                xb = data[torch.arange(lo, hi)[:, None] + steps].to(self.device)
                sb = torch.full((hi - lo,), s, dtype=torch.long, device=self.device)
                out = self.net(xb, sb)
                err = self.net.window_errors(out, xb)
                total[lo:hi] = err.total.float().cpu().numpy()
                per_channel[lo:hi] = err.per_channel.float().cpu().numpy()
                if features:
                    a = out.attention.float()
                    entropy = -(a * a.clamp_min(1e-12).log()).sum(dim=1)
                    pos = a.argmax(dim=1).float() / max(1, a.shape[1] - 1)
                    att[lo:hi] = torch.stack([a.max(dim=1).values, entropy, pos], 1).cpu().numpy()
                    latent[lo:hi] = out.latent.float().cpu().numpy()
        finally:
            self.train(was_training)
        norm = None if raw else self.channel_norm
        if norm is not None:
            total, per_channel = norm.apply(per_channel, s)
        online = self.threshold_rule
        checks = isinstance(online, TelemanomOnline) and online.checks_error_scale
        targets = x[hp.window - 1 :, 0].copy() if checks else None
        return WindowOutputs(total, per_channel, latent, att, pad, targets)

    def label_free_metrics(self, mission: Mission) -> dict[str, float]:
        """``forecast_MAE`` of a forecaster (see ``forecast_mae``)."""
        mae = self.forecast_mae(mission)
        return {} if mae is None else {"forecast_MAE": mae}

    def forecast_mae(self, mission: Mission) -> float | None:
        """Mean absolute forecast error over the validation rows, in the data's own units
        (``alarms.forecast_mae``); None for a reconstruction network or without them."""
        return forecast_mae(self, mission)

    def handed_alarm(self, grid: Mission, name: str | None, scored: Any) -> np.ndarray | None:
        """The row alarms of a fit-range ``grid`` from scores the gate's fit kept
        (``alarms.handed_alarm``), or None where they do not suffice."""
        return handed_alarm(self, grid, name, scored)

    def scoring_key(self) -> str:
        """Digest of what window scores are made of (``alarms.scoring_key``)."""
        return scoring_key(self)

    @property
    def is_online(self) -> bool:
        """Whether alarms come from the dynamic threshold of the scored stream itself."""
        return isinstance(self.threshold_rule, TelemanomOnline)

    @property
    def context_rows(self) -> int:
        """Rows on each side that influence a row's result (window, EWMA memory, detrend span,
        the gap-closing width).

        With the ``telemanom`` rule the whole scored stream influences every row; this is then
        only the local context and chunked prediction is approximate.
        """
        hp = self.hparams
        detrend = detrend_history(hp.get("detrend"), hp.get("detrend_stat", "mean"), row=True)
        closing = 0 if self.gap_rule is None else self.gap_rule.context_rows
        frozen = 0 if self.frozen_rule is None else self.frozen_rule.context_rows
        window = self.hparams.window + detrend + self.threshold_rule.context_rows + closing
        return int(max(window, frozen))

    def _score_grid(self, mission: Mission, series: str | None) -> RowScores:
        """One grid's rows (``GridScoring``): a window alarms when its (smoothed) error exceeds
        the series threshold or the dynamic threshold of this stream's errors (``telemanom``)
        and the random-forest gate, if fitted, accepts it; a row alarms when any window covering
        it does, or when it lies in a gap the ``gap_close`` rule, if fitted, closes, or where a
        channel is stuck (``frozen``); the channels an alarmed row names: ``named_channels``."""
        s = self.series_index(mission, series)
        gate = self.gate
        wo = self.window_outputs(mission, series, features=gate is not None)
        n = len(mission.values) + wo.pad
        score_w, alarm_w = window_alarms(self, wo.total, wo.targets, s)
        threshold = None
        if not self.is_online:
            threshold = np.full(len(mission.values), float(self.threshold_rule.threshold[s]),
                                dtype=np.float32)
        probability = None
        if gate is not None:
            alarm_w, probability_w = gate.judge(wo, alarm_w)
            probability = self.window_to_rows(probability_w, n)[wo.pad :]
        score = self.window_to_rows(score_w, n)[wo.pad :]
        channel = self.window_to_rows(wo.per_channel, n)[wo.pad :]
        alarm, stuck, raised = row_alarm(self, mission, s, alarm_w, wo.pad)
        return RowScores(
            score=score,
            alarm=alarm,
            channel_scores=channel,
            channel_alarm=named_channels(self, channel, stuck, raised),
            threshold=threshold,
            gate_probability=probability,
            raised_by=raised,
            stuck_channels=None if stuck is None else stuck[:, : channel.shape[1]],
        )

    def _value_unit(self, series: int) -> float:
        """One unit of the (first) value column in scaled units' terms: its IQR."""
        return float(self.scaler_iqr[series, 0])

    def window_to_rows(self, window_values: np.ndarray, n_rows: int) -> np.ndarray:
        """Per-window values as per-row values: the max over the windows covering a row
        (reconstruction), or a forecast on the row it forecasts, the window's last (the first
        ``window - 1`` rows, with no history, get 0)."""
        w = self.hparams.window
        if self.hparams.get("objective", "reconstruct") != "forecast":
            return window_to_sample_scores(window_values, n_rows, w)
        out = np.zeros((n_rows, *window_values.shape[1:]), dtype=np.float32)
        out[w - 1 : w - 1 + len(window_values)] = window_values
        return out

    def score_series(self, mission: Mission) -> dict[str, RowScores]:
        """``score_rows`` of every series of a multi-series mission, keyed by series name."""
        grids = mission.grids().items()
        return {name or mission.name: self.score_rows(m, series=name) for name, m in grids}
