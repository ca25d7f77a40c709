"""GRU + attention autoencoder (reference pipeline B) as a plain network and its LightningModule.

The network reconstructs the value channels of a window from the window (values + telecommands);
the reconstruction error is the anomaly score. Everything fitted after training (scaler median /
IQR, per-series thresholds, the score smoothing span) is a registered buffer, so the module alone
scores raw missions and all of it travels in ``state_dict`` and checkpoints. The optional random
forest head (``heads.random_forest``) is an sklearn object kept in ``rf_head``; it goes into
checkpoints as skops bytes (never pickle) and has its own ``save_rf_head`` / ``load_rf_head``.

Drift: with the hyper-parameter ``detrend`` (set from the datamodule's ``dims``) scoring first
subtracts each value column's trailing mean over ``detrend`` rows (``windows.model_inputs``,
the datamodule's own transform), so ``context_rows`` includes those rows of history.

Several independent series (NASA channels): one shared network with a learned series embedding,
or, with ``per_series=True``, one network per series (``SeriesNetworks``), as Telemanom trains
one model per channel; ``callbacks.SeriesBestWeights`` then early-stops and restores each
series' network on its own validation loss (``series_val_loss``, kept every validation epoch).

A deep ensemble (``members=N``): each network above becomes N networks of the same shape
(``MemberMean``), each trained on its own loss, scoring with their mean output; runs trained
apart merge into one afterwards (``ensemble.merge_detectors``, ``merge.py``).

Threshold modes (hyper-parameter ``threshold_mode``, so it travels in the artifact):

- ``calibrated``: a fixed per-series threshold fitted after training on label-free validation
  windows (``thresholds.ThresholdCalibration``).
- ``dynamic_online``: Telemanom's manner (Hundman et al. 2018): the non-parametric dynamic
  threshold with pruning (``thresholds.dynamic_threshold``) is applied to the smoothed errors of
  the very stream being scored. It uses no labels, so it is legitimate on a test range, but a
  row's alarm then depends on the whole scored stream (or its ``online_window`` chunk): chunked
  prediction (``predict.py`` on a long file) is only approximate in this mode, and scoring a
  range alone differs from scoring it inside a longer one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch import nn

from esa_lightning.data.mission import Mission
from esa_lightning.data.transforms.windows import (
    model_inputs,
    n_windows,
    scale,
    window_to_sample_scores,
)
from esa_lightning.errors import ESAInputError
from esa_lightning.models.base import RowScores

log = logging.getLogger(__name__)

THRESHOLD_MODES = ("calibrated", "dynamic_online")
OBJECTIVES = ("reconstruct", "forecast")


class AEOutput(NamedTuple):
    reconstruction: torch.Tensor  # [B, L, n_outputs]
    latent: torch.Tensor  # [B, latent_dim]
    attention: torch.Tensor  # [B, L], sums to 1 over L


class WindowErrors(NamedTuple):
    total: torch.Tensor  # [B] mean squared error over steps and channels
    per_channel: torch.Tensor  # [B, C] mean squared error over steps


class WindowNetwork(nn.Module):
    """What every window network shares: targets and errors. Subclasses set ``n_outputs``,
    ``forecast`` (with ``history`` and ``horizon``) and implement
    ``forward(x, series) -> AEOutput``."""

    n_outputs: int
    forecast: bool
    # forecasting: rows read (None: all but the last) and rows forecast after them
    history: int | None = None
    horizon: int = 1

    def history_rows(self, x: torch.Tensor) -> int:
        return x.shape[1] - 1 if self.history is None else self.history

    def targets(self, x: torch.Tensor) -> torch.Tensor:
        """What ``forward(x).reconstruction`` is compared with: the window's value channels, or
        the rows after the history when forecasting (``horizon`` rows in a training window, the
        one row after the history in a scoring window of ``history + 1`` rows)."""
        if not self.forecast:
            return x[..., : self.n_outputs]
        start = self.history_rows(x)
        return x[:, start : start + self.horizon, : self.n_outputs]

    def prediction_pairs(self, out: AEOutput, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(prediction, target) of equal shape: a forecast is cut to the rows the window holds."""
        y = self.targets(x)
        return out.reconstruction[:, : y.shape[1]], y

    def window_errors(self, out: AEOutput, x: torch.Tensor) -> WindowErrors:
        """Per-window errors: squared reconstruction errors, or the absolute error of the
        forecast of the first row after the history (as Telemanom scores its predictions)."""
        if self.forecast:
            prediction, y = self.prediction_pairs(out, x)
            per_channel = (prediction - y).abs()[:, 0]
            return WindowErrors(per_channel.mean(dim=1), per_channel)
        return self.reconstruction_errors(out.reconstruction, self.targets(x))

    @staticmethod
    def reconstruction_errors(reconstruction: torch.Tensor, y: torch.Tensor) -> WindowErrors:
        per_channel = (reconstruction - y).pow(2).mean(dim=1)
        return WindowErrors(per_channel.mean(dim=1), per_channel)

    def training_loss(
        self, x: torch.Tensor, series: torch.Tensor | None, loss_fn: nn.Module
    ) -> torch.Tensor:
        """``loss_fn`` (reduced to a mean) of the prediction pairs of windows ``x``."""
        return loss_fn(*self.prediction_pairs(self(x, series), x))

    def errors(
        self, x: torch.Tensor, y: torch.Tensor | None = None, series: torch.Tensor | None = None
    ) -> WindowErrors:
        """Errors of windows ``x``: against targets ``y`` [B, L, n_outputs] when given (a
        reconstruction network), else against ``targets(x)``."""
        out = self(x, series)
        if y is None:
            return self.window_errors(out, x)
        return self.reconstruction_errors(out.reconstruction, y)


CELLS = {"gru": nn.GRU, "lstm": nn.LSTM}


class GRUAttentionAE(WindowNetwork):
    """Encoder GRU → attention pooling → latent → GRU decoder (see esa-reference §5).

    With ``n_series > 1`` a learned series embedding is appended to every input step, so one
    network serves many independent series (NASA telemanom channels). ``cell="lstm"`` swaps both
    recurrent layers for LSTMs (Telemanom's cell). Forecasting reads the first ``history`` rows
    of a window (None: all but the last) and predicts the ``horizon`` rows after them
    (Telemanom trains on 10 and scores the first).
    """

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        hidden_size: int = 64,
        latent_dim: int = 32,
        num_layers: int = 1,
        dropout: float = 0.0,
        n_series: int = 1,
        series_embedding_dim: int = 4,
        forecast: bool = False,
        history: int | None = None,
        horizon: int = 1,
        cell: str = "gru",
    ) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ESAInputError(f"cell must be one of {tuple(CELLS)}", column="cell", value=cell)
        if horizon < 1 or (horizon > 1 and not forecast):
            raise ESAInputError(
                "horizon must be >= 1, and above 1 only when forecasting",
                column="horizon",
                value=horizon,
            )
        self.n_outputs = n_outputs
        self.forecast = bool(forecast)
        self.history = None if history is None else int(history)
        self.horizon = int(horizon)
        self.embedding = nn.Embedding(n_series, series_embedding_dim) if n_series > 1 else None
        extra = series_embedding_dim if self.embedding is not None else 0
        gru_dropout = dropout if num_layers > 1 else 0.0
        rnn = CELLS[cell]
        self.encoder = rnn(
            n_inputs + extra, hidden_size, num_layers, batch_first=True, dropout=gru_dropout
        )
        self.attention = nn.Linear(hidden_size, 1)
        self.to_latent = nn.Linear(hidden_size, latent_dim)
        self.from_latent = nn.Linear(latent_dim, hidden_size)
        self.decoder = rnn(
            hidden_size, hidden_size, num_layers, batch_first=True, dropout=gru_dropout
        )
        self.output = nn.Linear(hidden_size, n_outputs)
        # forecasting: the next rows' outputs from the last encoder step and the latent
        self.next_step = (
            nn.Linear(hidden_size + latent_dim, n_outputs * self.horizon) if forecast else None
        )

    def forward(self, x: torch.Tensor, series: torch.Tensor | None = None) -> AEOutput:
        """x: [B, L, n_inputs]; series: [B] series indices (only with a series embedding).

        Reconstruction: ``reconstruction`` is [B, L, n_outputs]. Forecasting: the encoder reads
        the first ``history`` rows (None: L - 1) and ``reconstruction`` is the forecast of the
        ``horizon`` rows after them, [B, horizon, n_outputs]; latent and attention then cover
        the history rows.
        """
        if self.forecast:
            x = x[:, : self.history_rows(x)]
        if self.embedding is not None:
            if series is None:
                raise ValueError("this network was built for several series: pass `series`")
            emb = self.embedding(series.to(x.device))[:, None, :].expand(-1, x.shape[1], -1)
            x = torch.cat([x, emb], dim=-1)
        steps, _ = self.encoder(x)  # [B, L, H]
        attention = torch.softmax(self.attention(steps).squeeze(-1), dim=1)  # [B, L]
        context = torch.einsum("bl,blh->bh", attention, steps)
        latent = self.to_latent(context)
        if self.forecast:
            forecast = self.next_step(torch.cat([steps[:, -1], latent], dim=-1))
            return AEOutput(forecast.view(len(x), self.horizon, self.n_outputs), latent, attention)
        h = self.from_latent(latent)  # [B, H]
        h0 = h.unsqueeze(0).repeat(self.decoder.num_layers, 1, 1)
        state = (h0, torch.zeros_like(h0)) if isinstance(self.decoder, nn.LSTM) else h0
        decoded, _ = self.decoder(h.unsqueeze(1).expand(-1, x.shape[1], -1).contiguous(), state)
        return AEOutput(self.output(decoded), latent, attention)


class MemberMean(WindowNetwork):
    """Networks of one shape, each trained on its own loss from its own initialisation, that
    score with the mean of their outputs: a deep ensemble (Lakshminarayanan et al. 2017). Its
    forecast varies less from one training to the next than a single network's. Latent and
    attention are the first member's (the members' latent spaces differ)."""

    def __init__(self, members: list[WindowNetwork]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        first = members[0]
        self.n_outputs, self.forecast = first.n_outputs, first.forecast
        self.history, self.horizon = first.history, first.horizon

    def forward(self, x: torch.Tensor, series: torch.Tensor | None = None) -> AEOutput:
        outs = [m(x, series) for m in self.members]
        mean = torch.stack([o.reconstruction for o in outs]).mean(dim=0)
        return AEOutput(mean, outs[0].latent, outs[0].attention)

    def training_loss(
        self, x: torch.Tensor, series: torch.Tensor | None, loss_fn: nn.Module
    ) -> torch.Tensor:
        """The mean of the members' own losses: each member learns apart from the others."""
        return torch.stack([m.training_loss(x, series, loss_fn) for m in self.members]).mean()


def members_of(net: nn.Module) -> list[nn.Module]:
    """The networks a ``MemberMean`` averages, or ``[net]``."""
    return list(net.members) if isinstance(net, MemberMean) else [net]


class SeriesNetworks(WindowNetwork):
    """One network per series, as Telemanom trains one model per channel, behind the shared
    network's interface. A batch may mix series: each window goes through its own series'
    network (a batch of one series, as ``WindowDataModule(series_batches=True)`` makes them,
    costs one call)."""

    def __init__(self, nets: list[WindowNetwork]) -> None:
        super().__init__()
        self.nets = nn.ModuleList(nets)
        self.n_outputs = nets[0].n_outputs
        self.forecast = nets[0].forecast
        self.history, self.horizon = nets[0].history, nets[0].horizon

    @staticmethod
    def _routes(x: torch.Tensor, series: torch.Tensor | None) -> list[tuple[int, torch.Tensor]]:
        """(series index, its rows of the batch) for each series present in ``series``."""
        if series is None:
            raise ValueError("one network per series: pass `series`")
        series = series.to(x.device)
        return [
            (s, torch.nonzero(series == s, as_tuple=True)[0])
            for s in torch.unique(series).tolist()
        ]

    def forward(self, x: torch.Tensor, series: torch.Tensor | None = None) -> AEOutput:
        routes = self._routes(x, series)
        if len(routes) == 1:
            return self.nets[routes[0][0]](x)
        parts = [(rows, self.nets[s](x[rows])) for s, rows in routes]
        merged = []
        for field in zip(*(out for _, out in parts), strict=True):
            full = field[0].new_empty((len(x), *field[0].shape[1:]))
            for (rows, _), value in zip(parts, field, strict=True):
                full[rows] = value
            merged.append(full)
        return AEOutput(*merged)

    def training_loss(
        self, x: torch.Tensor, series: torch.Tensor | None, loss_fn: nn.Module
    ) -> torch.Tensor:
        """Each series' windows scored by its own network's ``training_loss``, weighted by
        their share of the batch (the mean over the batch, as one network would give)."""
        routes = self._routes(x, series)
        if len(routes) == 1:
            return self.nets[routes[0][0]].training_loss(x, None, loss_fn)
        total = x.new_zeros(())
        for s, rows in routes:
            total = total + self.nets[s].training_loss(x[rows], None, loss_fn) * len(rows)
        return total / len(x)


@dataclass
class WindowOutputs:
    """Per-window results of one pass over a single-series range (stride 1)."""

    total: np.ndarray  # float32 [N]
    per_channel: np.ndarray  # float32 [N, C]
    latent: np.ndarray | None = None  # float32 [N, D]
    attention_stats: np.ndarray | None = None  # float32 [N, 3]: max, entropy, argmax position
    pad: int = 0  # rows repeated in front because the range was shorter than a window
    targets: np.ndarray | None = None  # float32 [N]: the scaled value each window ends on


def ewma(x: np.ndarray, span: float) -> np.ndarray:
    """Exponentially weighted moving average along time (Telemanom's error smoothing)."""
    if span is None or span <= 1 or len(x) == 0:
        return np.asarray(x, dtype=np.float32)
    return pd.Series(x).ewm(span=span).mean().to_numpy(dtype=np.float32)


class LitGRUAttentionAE(L.LightningModule):
    """Trains ``GRUAttentionAE`` on label-free windows and scores raw missions row by row."""

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
        threshold_mode: str = "calibrated",
        online_smoothing: float = 105.0,
        online_z_range: tuple[float, float] | list[float] = (2.5, 12.0),
        online_z_step: float = 0.5,
        online_min_percent_decrease: float = 0.13,
        online_window: int | None = None,
        detrend: int | None = None,
        objective: str = "reconstruct",
        online_step: int | None = None,
        online_error_buffer: int = 0,
        online_max_sequences: int | None = None,
        online_error_scale: float = 0.0,
        online_min_error: float = 0.0,
        online_inverse: bool = False,
        online_warmup: int = 0,
        per_series: bool = False,
        horizon: int = 1,
        cell: str = "gru",
        members: int = 1,
    ) -> None:
        super().__init__()
        if int(members) < 1:
            raise ESAInputError("members must be >= 1", column="members", value=members)
        if objective not in OBJECTIVES:
            raise ESAInputError(
                f"objective must be one of {OBJECTIVES}", column="objective", value=objective
            )
        if detrend is not None and int(detrend) < 1:
            raise ESAInputError(
                "detrend must be null or >= 1 rows", column="detrend", value=detrend
            )
        if loss not in ("smooth_l1", "mse"):
            raise ESAInputError("loss must be 'smooth_l1' or 'mse'", column="loss", value=loss)
        if threshold_mode not in THRESHOLD_MODES:
            raise ESAInputError(
                f"threshold_mode must be one of {THRESHOLD_MODES}",
                column="threshold_mode",
                value=threshold_mode,
            )
        if len(online_z_range) != 2 or online_z_range[0] > online_z_range[1]:
            raise ESAInputError(
                "online_z_range must be [low, high]", column="online_z_range", value=online_z_range
            )
        if (online_error_scale > 0 or online_min_error > 0) and int(n_outputs) != 1:
            raise ESAInputError(
                "the error-scale check compares errors with the one value they forecast: it "
                "needs a model with one output channel",
                column="online_error_scale",
                value=online_error_scale,
            )
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
                threshold_mode=str(threshold_mode),
                online_smoothing=float(online_smoothing),
                online_z_range=[float(z) for z in online_z_range],
                online_z_step=float(online_z_step),
                online_min_percent_decrease=float(online_min_percent_decrease),
                online_window=None if online_window is None else int(online_window),
                detrend=None if detrend is None else int(detrend),
                objective=str(objective),
                online_step=None if online_step is None else int(online_step),
                online_error_buffer=int(online_error_buffer),
                online_max_sequences=None if online_max_sequences is None
                else int(online_max_sequences),
                online_error_scale=float(online_error_scale),
                online_min_error=float(online_min_error),
                online_inverse=bool(online_inverse),
                online_warmup=int(online_warmup),
                per_series=bool(per_series),
                horizon=int(horizon),
                cell=str(cell),
                members=int(members),
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
        self.register_buffer("threshold", torch.full((n_series,), float("nan")))
        self.register_buffer("score_span", torch.zeros(()))
        self.rf_head = None  # sklearn classifier fitted by heads.random_forest.RandomForestHead

    # ------------------------------------------------------------------------- training
    def setup(self, stage: str) -> None:
        """Copy the datamodule's fitted scaler into the buffers (so scoring needs no datamodule)."""
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if stage == "fit" and dm is not None and hasattr(dm, "scaler"):
            dm.setup(stage)
            self.set_scaler(*dm.scaler)

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
        sums = self.trainer.strategy.reduce(self._val_sums, reduce_op="sum")
        total, count = sums.sum(dim=1)
        if count == 0:
            return
        self.val_loss = float(total / count)
        self.log("val/loss", total / count, prog_bar=True)
        per_series = sums[0] / sums[1]  # nan for a series without validation windows
        self.series_val_loss = per_series.cpu().numpy()
        if isinstance(self.net, SeriesNetworks):
            for name, value in zip(self.hparams.series, per_series, strict=True):
                if torch.isfinite(value):
                    self.log(f"val/series_loss/{name}", value)

    def predict_step(self, batch, batch_idx: int) -> dict[str, torch.Tensor]:
        x, series = batch
        err = self.net.errors(x, series=series)
        return {"total": err.total, "per_channel": err.per_channel, "series": series}

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

    @property
    def has_unused_parameters(self) -> bool:
        """Whether a training step leaves some parameters without gradient, as DDP must be told
        (``fit_component`` then picks ``ddp_find_unused_parameters_true``): one network per
        series (a batch of one series gives the others none), or a forecaster (its
        reconstruction decoder stays unused)."""
        return isinstance(self.net, SeriesNetworks) or self.hparams.objective == "forecast"

    # ------------------------------------------------------------------------- scoring
    def series_index(self, mission: Mission, series: str | None = None) -> int:
        """Which series' scaler / threshold / embedding applies to a single-grid ``mission``."""
        names = self.hparams.series
        if not names:
            return 0
        candidates = [series] if series is not None else []
        candidates += [mission.meta.get("series"), mission.name]
        if len(mission.channel_names) == 1:
            candidates.append(mission.channel_names[0])
        for c in candidates:
            if c is not None and str(c) in names:
                return names.index(str(c))
        raise ESAInputError(
            f"cannot tell which of the trained series {names[:5]}... this mission is; "
            "pass series=NAME",
            path=mission.name,
        )

    @torch.no_grad()
    def window_outputs(
        self, mission: Mission, series: str | None = None, features: bool = False
    ) -> WindowOutputs:
        """Errors (and RF features) of every stride-1 window of a single-grid ``mission``.

        Detrends (hyper-parameter ``detrend``, the datamodule's transform: ``model_inputs``) and
        scales with the module's own buffers; batched so that a million rows fit anywhere. A
        range shorter than one window is padded in front by repeating its first row.
        """
        if mission.is_multiseries:
            raise TypeError("window_outputs() takes one series: use mission.series[name]")
        s = self.series_index(mission, series)
        hp = self.hparams
        x = model_inputs(mission, hp.inputs, hp.n_inputs - hp.n_outputs, hp.get("detrend"))
        if x.shape[1] != hp.n_inputs:
            raise ESAInputError(
                f"mission has {x.shape[1]} input columns, the model expects {hp.n_inputs}",
                path=mission.name,
            )
        median, iqr = self.scaler_median[s].cpu().numpy(), self.scaler_iqr[s].cpu().numpy()
        x = scale(x, median, iqr, in_place=not np.shares_memory(x, mission.values))
        pad = max(0, hp.window - len(x)) if len(x) else 0
        if pad:
            x = np.concatenate([np.repeat(x[:1], pad, axis=0), x])
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
        targets = x[hp.window - 1 :, 0].copy() if self.checks_error_scale else None
        return WindowOutputs(total, per_channel, latent, att, pad, targets)

    def forecast_mae(self, mission: Mission) -> float | None:
        """Mean absolute forecast error over the validation rows, in the data's own units.

        Every validation row is forecast from the rows before it (the training range's last
        rows included), so forecasters with different window lengths are compared on the same
        rows; errors are unscaled with each output's IQR. A label-free figure to choose
        forecasters by. None for a reconstruction network or without validation rows.
        """
        hp = self.hparams
        if hp.get("objective", "reconstruct") != "forecast":
            return None
        parts = dict(mission.series) if mission.is_multiseries else {None: mission}
        total, count = 0.0, 0
        for name, m in parts.items():
            if m.test_start <= m.val_start:
                continue
            lo = max(0, m.val_start - (hp.window - 1))
            part = m.slice(lo, m.test_start)
            wo = self.window_outputs(part, series=name)
            rows = lo + np.arange(len(wo.total)) + hp.window - 1 - wo.pad
            iqr = self.scaler_iqr[self.series_index(part, name), : hp.n_outputs].cpu().numpy()
            err = wo.per_channel[rows >= m.val_start] * iqr
            total, count = total + float(err.sum(dtype=np.float64)), count + err.size
        return total / count if count else None

    def smoothed(self, total: np.ndarray) -> np.ndarray:
        """Window scores as thresholded: EWMA-smoothed when the threshold was fitted that way."""
        return ewma(total, float(self.score_span))

    @property
    def is_online(self) -> bool:
        """Whether alarms come from the dynamic threshold of the scored stream itself."""
        return self.hparams.get("threshold_mode", "calibrated") == "dynamic_online"

    @property
    def checks_error_scale(self) -> bool:
        """Whether online alarms need the forecast values (Telemanom's error-scale check)."""
        hp = self.hparams
        limits = (hp.get("online_error_scale", 0.0), hp.get("online_min_error", 0.0))
        return self.is_online and max(limits) > 0

    def online_alarms(
        self, total: np.ndarray, targets: np.ndarray | None = None, series: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """(smoothed scores, bool alarms) of window errors under the Telemanom dynamic threshold;
        ``targets`` (the scaled values the windows forecast) for the error-scale check."""
        from esa_lightning.postprocessing.thresholds import ErrorScale, dynamic_threshold

        hp = self.hparams
        if len(total) == 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=bool)
        scale = None
        if targets is not None:
            # errors are in scaled units: the minimum error (in the value's units) is too
            min_error = hp.get("online_min_error", 0.0) / float(self.scaler_iqr[series, 0])
            scale = ErrorScale(targets, hp.online_error_scale, min_error)
        dyn = dynamic_threshold(
            total,
            window=hp.online_window,
            smoothing=hp.online_smoothing,
            z_range=tuple(hp.online_z_range),
            z_step=hp.online_z_step,
            min_percent_decrease=hp.online_min_percent_decrease,
            step=hp.get("online_step"),
            error_buffer=hp.get("online_error_buffer", 0),
            max_sequences=hp.get("online_max_sequences"),
            scale=scale,
            inverse=hp.get("online_inverse", False),
            warmup=hp.get("online_warmup", 0),
        )
        return dyn.smoothed.astype(np.float32), dyn.alarm

    @property
    def is_calibrated(self) -> bool:
        return bool(torch.isfinite(self.threshold).all())

    @property
    def context_rows(self) -> int:
        """Rows on each side that influence a row's result (window, EWMA memory, detrend span).

        In ``dynamic_online`` mode the whole scored stream influences every row; this is then
        only the local context and chunked prediction is approximate.
        """
        span = float(self.hparams.online_smoothing) if self.is_online else float(self.score_span)
        detrend = int(self.hparams.get("detrend") or 0)
        return int(self.hparams.window + detrend + (40 * span if span > 0 else 0))

    def save_extra(self, folder: Path) -> None:
        """Artifact hook: the random forest head (skops, no pickle)."""
        if self.rf_head is not None:
            self.save_rf_head(Path(folder) / "rf_head.skops")

    def load_extra(self, folder: Path) -> None:
        path = Path(folder) / "rf_head.skops"
        if path.is_file():
            self.load_rf_head(path)

    def score_rows(
        self, mission: Mission, series: str | None = None, require_threshold: bool = True
    ) -> RowScores:
        """Per-row score, 0/1 alarm and per-channel scores of ``mission`` (labels unused).

        A window alarms when its (smoothed) error exceeds the series threshold (``calibrated``) or
        the dynamic threshold of this stream's errors (``dynamic_online``) and the random forest
        head, if fitted, accepts it; a row alarms when any window covering it does.
        A multi-series mission gives its series' rows one after another, in ``mission.series``
        order (see ``score_series`` for a dict).
        """
        if mission.is_multiseries:
            parts = list(self.score_series(mission).values())
            cat = lambda f: np.concatenate([getattr(p, f) for p in parts])  # noqa: E731
            return RowScores(cat("score"), cat("alarm"), cat("channel_scores"))
        s = self.series_index(mission, series)
        thr = float(self.threshold[s])
        if np.isnan(thr) and require_threshold and not self.is_online:
            raise RuntimeError(
                "threshold not calibrated: train with the ThresholdCalibration callback or call "
                "ThresholdCalibration.calibrate(model, mission)"
            )
        wo = self.window_outputs(mission, series, features=self.rf_head is not None)
        n = len(mission.values) + wo.pad
        if self.is_online:
            score_w, alarm_w = self.online_alarms(wo.total, wo.targets, s)
        else:
            score_w = self.smoothed(wo.total)
            alarm_w = score_w > thr if not np.isnan(thr) else np.zeros(len(score_w), dtype=bool)
        if self.rf_head is not None and alarm_w.any():
            from esa_lightning.postprocessing.random_forest import rf_accepts

            alarm_w[alarm_w] = rf_accepts(self.rf_head, wo, alarm_w)
        to_rows = self.window_to_rows
        score = to_rows(score_w, n)[wo.pad :]
        alarm = to_rows(alarm_w.astype(np.float32), n)[wo.pad :]
        channel = to_rows(wo.per_channel, n)[wo.pad :]
        return RowScores(score=score, alarm=(alarm > 0).astype(np.uint8), channel_scores=channel)

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
        if not mission.is_multiseries:
            return {mission.name: self.score_rows(mission)}
        return {name: self.score_rows(m, series=name) for name, m in mission.series.items()}

    # ------------------------------------------------------------------ random forest head
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.rf_head is not None:
            from esa_lightning.postprocessing.random_forest import forest_to_bytes

            checkpoint["rf_head_skops"] = forest_to_bytes(self.rf_head)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "rf_head_skops" in checkpoint:
            from esa_lightning.postprocessing.random_forest import forest_from_bytes

            self.rf_head = forest_from_bytes(checkpoint["rf_head_skops"])

    def save_rf_head(self, path) -> None:
        from esa_lightning.postprocessing.random_forest import save_forest

        if self.rf_head is None:
            raise RuntimeError("no random forest head fitted")
        save_forest(self.rf_head, path)

    def load_rf_head(self, path) -> None:
        from esa_lightning.postprocessing.random_forest import load_forest

        self.rf_head = load_forest(path)
