"""What the window baselines (``window_pca``, ``window_knn``) share: fitted without gradient
steps on a bounded sample of nominal training windows, scored window by window.

A family supplies a ``WindowScorer`` (a plain ``nn.Module``): ``fit(windows)`` on flattened
training windows [N, L * n_inputs] and ``forward(windows)``, the per-feature residual of each
window (its reconstruction error, or its difference to a neighbour). The module here does the
rest, as the GRU autoencoder does: training windows of the ``windows`` datamodule (scaled,
detrended, label-free) are sampled in ``training_step`` (a seeded bottom-k sample of at most
``max_windows``: uniform, bounded memory), the scorer is fitted once they are all seen; scoring
scales and detrends with the module's own buffers, so it needs no datamodule.

The residual is judged on the value channels only (the first ``n_outputs`` input columns):
telecommand pulses, when they are inputs, condition the fit but are not anomalies themselves.
A window's per-channel score is the mean squared residual of that channel over the window, its
score the mean over channels. Rows take the max over the windows covering them
(``window_to_sample_scores``); the row alarm is the fitted threshold rule's (``f05`` by
default), and per-channel alarms name the ``top_channels`` highest channels of an alarmed row.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

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
    top_channel_alarm,
)
from esa_lightning.models.raised_by import rule_flags
from esa_lightning.models.window_pieces import WindowPieces
from esa_lightning.postprocessing.base import plain_spec
from esa_lightning.postprocessing.thresholds import WINDOW_THRESHOLDS, WindowThreshold
from esa_lightning.settings import check_setting

log = logging.getLogger(__name__)


class WindowScorer(nn.Module, ABC):
    """Fitted on flattened windows [N, D]; gives the per-feature residual of windows [B, D].

    Fitted state is buffers whose first dimension is only known after fitting (named in
    ``FITTED_ROWS``); loading a ``state_dict`` (artifact, Lightning checkpoint) resizes them to
    the saved shapes first. An artifact may store those buffers with other rows only: any other
    shape is refused when it is loaded (``artifact.parts``).
    """

    #: buffers whose first dimension (rows) fitting sets: any other dimension is fixed
    FITTED_ROWS: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def fit(self, windows: torch.Tensor) -> None:
        """Fit on training windows [N, D] (float32, on the module's device)."""

    @abstractmethod
    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        """Residual [B, D] of windows [B, D]; its squares are the window's errors."""

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:  # noqa: ANN001
        for name, own in list(self._buffers.items()):
            saved = state_dict.get(prefix + name)
            if own is not None and saved is not None and saved.shape != own.shape:
                self._buffers[name] = own.new_empty(saved.shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class WindowSample:
    """A uniform random sample of at most ``size`` windows from batches seen one by one.

    Bottom-k sampling: each window gets a seeded uniform key and the ``size`` smallest keys are
    kept (merged once ``size`` new windows wait, so memory stays within ``2 * size`` windows and
    copying is linear in the windows seen). The result keeps the windows in arrival order.
    """

    def __init__(self, size: int, seed: int) -> None:
        self.size = int(size)
        self.generator = torch.Generator().manual_seed(int(seed))
        self.seen = 0
        self._keys: list[torch.Tensor] = []
        self._windows: list[torch.Tensor] = []
        self._order: list[torch.Tensor] = []
        self._waiting = 0

    def add(self, windows: torch.Tensor) -> None:
        n = len(windows)
        self._keys.append(torch.rand(n, generator=self.generator, dtype=torch.float64))
        self._order.append(torch.arange(self.seen, self.seen + n))
        self._windows.append(windows)
        self.seen += n
        self._waiting += n
        if self._waiting >= self.size:
            self._merge()

    def _merge(self) -> None:
        keys, order = torch.cat(self._keys), torch.cat(self._order)
        windows = torch.cat(self._windows)
        if len(keys) > self.size:
            keep = torch.topk(keys, self.size, largest=False).indices
            keep = keep[torch.argsort(order[keep])]  # arrival order, whatever topk returned
            keys, order, windows = keys[keep], order[keep], windows[keep]
        self._keys, self._order, self._windows = [keys], [order], [windows]
        self._waiting = 0

    def windows(self) -> torch.Tensor:
        """The sampled windows [min(seen, size), D] in arrival order."""
        if not self._windows:
            return torch.zeros(0, 0)
        self._merge()
        return self._windows[0]


@dataclass
class WindowScores:
    """Window errors of one single-series range (stride 1), what threshold rules read."""

    total: np.ndarray  # float32 [N]: mean over value channels of per_channel
    per_channel: np.ndarray  # float32 [N, C]: mean squared residual over the window's rows
    pad: int = 0  # rows repeated in front because the range was shorter than a window


class WindowBaseline(WindowPieces, GridScoring, DetectorModule):
    """A window detector fitted in one epoch without gradient steps (module docstring)."""

    datamodule_kind = "windows"
    needs_float64 = True  # the PCA fit and the validation sums
    #: windows per scoring pass (each window's error is its own: ``window_outputs``)
    RUNTIME_SETTINGS = frozenset({"score_batch_size"})
    POST_RULES = WINDOW_THRESHOLDS

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        family: Mapping[str, Any],
        window: int = 10,
        inputs: str = "values+telecommands",
        series: list[str] | None = None,
        detrend: int | None = None,
        detrend_stat: str = "mean",
        horizon: int = 1,
        max_windows: int = 20000,
        seed: int = 0,
        top_channels: int = 3,
        score_batch_size: int = 4096,
        post_processing: Mapping[str, Any] | None = None,
    ) -> None:
        """``family``: the family's own hyper-parameters (saved with the others); a family's
        constructor takes them and passes every other option through."""
        super().__init__()
        if int(horizon) != 1:
            raise ESAInputError(
                "a window baseline reconstructs whole windows: datamodule.horizon must be 1",
                column="horizon",
                value=horizon,
            )
        for key, value in (
            ("max_windows", max_windows),
            ("top_channels", top_channels),
            ("score_batch_size", score_batch_size),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ESAInputError(f"{key} must be an integer >= 1", column=key, value=value)
        check_setting("model.detrend", detrend)  # as the GRU: an edited detector.json too
        series = [str(s) for s in (series or [])]
        self.save_hyperparameters(
            dict(
                n_inputs=int(n_inputs),
                n_outputs=int(n_outputs),
                window=int(window),
                inputs=str(inputs),
                series=series,
                detrend=None if detrend is None else int(detrend),
                detrend_stat=check_detrend_stat(detrend_stat),
                horizon=int(horizon),
                max_windows=int(max_windows),
                seed=int(seed),
                top_channels=int(top_channels),
                score_batch_size=int(score_batch_size),
                post_processing=plain_spec(post_processing),
                **family,
            )
        )
        n_series = max(1, len(series))
        self.register_buffer("scaler_median", torch.zeros(n_series, int(n_inputs)))
        self.register_buffer("scaler_iqr", torch.ones(n_series, int(n_inputs)))
        # training windows the scorer was fitted on (0: not fitted yet)
        self.register_buffer("n_fit_windows", torch.zeros((), dtype=torch.long))
        self.scorer = self.build_scorer()
        self.post_rules = self.build_post_rules(self.hparams.post_processing, n_series=n_series)
        rules = list(self.post_rules.values())
        if len(rules) != 1:
            raise ESAInputError(
                "post_processing: a window baseline takes exactly one threshold rule "
                "(percentile, f05 or dynamic)",
                column="post_processing",
                value=[type(r).kind for r in rules],
            )
        self._sample: WindowSample | None = None
        self._val_sum = self._val_count = 0.0
        self.automatic_optimization = False

    @abstractmethod
    def build_scorer(self) -> WindowScorer:
        """The family's scorer, built from ``self.hparams``."""

    @property
    def n_features(self) -> int:
        """Length of a flattened window: ``window * n_inputs``."""
        return self.hparams.window * self.hparams.n_inputs

    @property
    def threshold_rule(self) -> WindowThreshold:
        return next(iter(self.post_rules.values()))

    @property
    def is_fitted(self) -> bool:
        return int(self.n_fit_windows) > 0

    def fitted_state_problem(self) -> str | None:
        """A loaded ``n_fit_windows`` the fit never writes (``artifact.fitted``): from 1 to
        ``max_windows``; or None."""
        count = int(self.n_fit_windows)
        if 1 <= count <= self.hparams.max_windows:
            return None
        return (f"the fitted n_fit_windows {count} is outside 1 to {self.hparams.max_windows} "
                "(max_windows)")

    # ------------------------------------------------------------------------- training
    def configure_optimizers(self) -> None:
        return None

    def trainer_arguments(self, trainer_config: Mapping[str, Any]) -> dict[str, Any]:
        """One epoch over the training windows is the whole fit, validated once at its end
        (``val_check_interval`` None: Lightning's default, as 1.0 is without its note)."""
        return {
            **super().trainer_arguments(trainer_config),
            "max_epochs": 1,
            "min_epochs": 1,
            "val_check_interval": None,
        }

    def set_preprocessing(self, datamodule: Any) -> None:
        """Copy the datamodule's fitted scaler into the buffers (scoring needs no datamodule)."""
        for buffer, value in zip(
            (self.scaler_median, self.scaler_iqr), datamodule.scaler, strict=True
        ):
            buffer.copy_(torch.as_tensor(np.asarray(value, np.float32)).reshape_as(buffer))

    def on_train_epoch_start(self) -> None:
        self._sample = WindowSample(self.hparams.max_windows, self.hparams.seed)

    def training_step(self, batch: Any, batch_idx: int) -> None:
        x = batch[0]
        self._sample.add(x.detach().reshape(len(x), -1).to("cpu", torch.float32))

    def finish_fit(self) -> None:
        """Fit the scorer on the sampled training windows (once, when they have all been seen:
        before the epoch's validation, or at the epoch's end without validation)."""
        sample, self._sample = self._sample, None
        if sample is None:
            return
        windows = sample.windows()
        if not len(windows):
            raise ESAInputError("no training window to fit on", column="datamodule")
        self.scorer.fit(windows.to(self.device))
        self.n_fit_windows.fill_(len(windows))
        summary = self.fit_summary()
        log.info(
            "%s fitted on %d of %d training windows%s",
            type(self).__name__,
            len(windows),
            sample.seen,
            f": {summary}" if summary else "",
        )

    def fit_summary(self) -> str:
        """What the fit found, for the log (e.g. the components kept)."""
        return ""

    def on_validation_epoch_start(self) -> None:
        if not self.trainer.sanity_checking:
            self.finish_fit()
        self._val_sum = self._val_count = 0.0

    def on_train_epoch_end(self) -> None:
        self.finish_fit()

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        """Sums the validation windows' errors: ``val/loss`` is their mean."""
        if not self.is_fitted:
            return
        x = batch[0]
        total, _ = self.window_errors(x.reshape(len(x), -1).to(self.device))
        self._val_sum += float(total.double().sum())
        self._val_count += len(total)

    def on_validation_epoch_end(self) -> None:
        if self._val_count and not self.trainer.sanity_checking:
            # several processes fit it unwrapped, each validating every window: equal values,
            # which sync_dist averages exactly (and Lightning stops warning)
            self.log("val/loss", self._val_sum / self._val_count, prog_bar=True, sync_dist=True)

    # ------------------------------------------------------------------------- scoring
    def window_errors(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(total [B], per_channel [B, C]) of flattened windows [B, D]."""
        hp = self.hparams
        residual = self.scorer(windows).view(len(windows), hp.window, hp.n_inputs)
        per_channel = residual[..., : hp.n_outputs].pow(2).mean(dim=1)
        return per_channel.mean(dim=1), per_channel

    def series_index(self, mission: Mission, series: str | None = None) -> int:
        """Which series' scaler and threshold apply to a single-grid ``mission``."""
        return series_position(self.hparams.series, mission, series)

    @torch.no_grad()
    def window_outputs(
        self, mission: Mission, series: str | None = None, history: int = 0
    ) -> WindowScores:
        """Errors of every stride-1 window of a single-grid ``mission`` but for its first
        ``history`` rows (they only give the later rows their trailing means), scaled and
        detrended with the module's buffers, ``score_batch_size`` windows at a time. A range
        shorter than one window is padded in front by repeating its first row."""
        if mission.is_multiseries:
            raise TypeError("window_outputs() takes one series: use mission.series[name]")
        if not self.is_fitted:
            raise RuntimeError(f"{type(self).__name__} is not fitted: train it first")
        s = self.series_index(mission, series)
        hp = self.hparams
        median, iqr = self.scaler_median[s].cpu().numpy(), self.scaler_iqr[s].cpu().numpy()
        x, pad = scaled_window_inputs(mission, hp, median, iqr, history)
        data = torch.from_numpy(x)
        n = n_windows(len(x), hp.window)
        total = np.empty(n, dtype=np.float32)
        per_channel = np.empty((n, hp.n_outputs), dtype=np.float32)
        steps = torch.arange(hp.window)
        for lo in range(0, n, hp.score_batch_size):
            hi = min(n, lo + hp.score_batch_size)
            xb = data[torch.arange(lo, hi)[:, None] + steps].reshape(hi - lo, -1)
            t, c = self.window_errors(xb.to(self.device))
            total[lo:hi], per_channel[lo:hi] = t.cpu().numpy(), c.cpu().numpy()
        return WindowScores(total, per_channel, pad)

    def window_to_rows(self, window_values: np.ndarray, n_rows: int) -> np.ndarray:
        """Per-window values as per-row values: the max over the windows covering a row."""
        return window_to_sample_scores(window_values, n_rows, self.hparams.window)

    @property
    def context_rows(self) -> int:
        """The window, the detrending history and the threshold's smoothing memory."""
        hp = self.hparams
        detrend = detrend_history(hp.detrend, hp.get("detrend_stat", "mean"), row=True)
        return int(self.hparams.window + detrend + self.threshold_rule.context_rows)

    def _score_grid(self, mission: Mission, series: str | None) -> RowScores:
        s = self.series_index(mission, series)
        wo = self.window_outputs(mission, series)
        n = len(mission.values) + wo.pad
        score_w, alarm_w = self.threshold_rule.window_alarms(wo.total, s)
        score = self.window_to_rows(score_w, n)[wo.pad :]
        alarm = (self.window_to_rows(alarm_w.astype(np.float32), n)[wo.pad :] > 0).astype(np.uint8)
        channel = self.window_to_rows(wo.per_channel, n)[wo.pad :]
        return RowScores(
            score=score,
            alarm=alarm,
            channel_scores=channel,
            channel_alarm=top_channel_alarm(alarm, channel, self.hparams.top_channels),
            threshold=np.full(len(score), float(self.threshold_rule.threshold[s]), np.float32),
            raised_by=rule_flags(alarm),
        )
