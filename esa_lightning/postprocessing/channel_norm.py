"""Per-channel error normalisation of window-scoring models, fitted before their threshold.

A reconstruction or forecast error is in each channel's own units of difficulty: a noisy or
hard-to-predict channel (a differenced counter, a mode flag) has errors ten or a hundred times
those of a smooth one, and a plain sum of errors is then that channel's error alone. This rule
measures each channel's error on the label-free windows of the training range (centre: median,
scale: standard deviation, per series) and turns a window's errors into

    z_c = (error_c - centre_c) / scale_c        (the per-channel scores it reports)
    total = mean or max of z_c over the scored channels

A channel that barely moved while the network learnt (held at one value, or far smoother than
the rest) has an error spread next to nothing, and any later wobble is then a normalised error
in the thousands that takes the max over channels on its own; so no channel's scale is below
``min_scale`` of the median channel's (0.3; how it was chosen: ``conf/model/gru_ae.yaml``
and benchmarks/RESULTS.md).

``spread_on: moving`` (the default) measures each channel's centre and spread on the windows
where its value moves (not held at one value through the window), ``all`` on every label-free
window. A channel held between its samples (a zero-order-held raw channel, a mode flag, a
channel live in one stretch of the mission) has an error of nothing on its held windows; over
all windows its spread is mostly those, far below its spread while it moves, and every later
move then scores as an anomaly. A channel with fewer than ``MIN_MOVING_WINDOWS`` such windows
(one held throughout training) keeps the spread of all its windows, and the floor above.

The scored channels are the mission's target channels (``channels: target``, the channels
ESA-ADB evaluates; every channel when the mission marks none) or all of them
(``channels: all``); the others stay inputs of the network. Fitted on training rows only, before
the threshold (``stage`` -1), so the threshold and the gate see the normalised scores.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from esa_lightning.data.transforms.windows import labeled_window_mask, nominal_rows
from esa_lightning.errors import ESAInputError
from esa_lightning.postprocessing.base import PostRule

log = logging.getLogger(__name__)

CHANNELS = ("target", "all")
AGGREGATES = ("mean", "max")
SPREAD_ON = ("moving", "all")
# fewer moving label-free training windows than this: the channel's spread is over all of them
MIN_MOVING_WINDOWS = 20


def moving_windows(values: np.ndarray, window: int) -> np.ndarray:
    """bool [T - window + 1]: whether ``values`` [T] (one channel) changes within each window of
    ``window`` rows (stride 1): a window of ``window - 1`` row-to-row changes holding one; every
    window when ``window`` is 1 (one row shows no movement)."""
    if window == 1:
        return np.ones(len(values), dtype=bool)
    return labeled_window_mask(np.diff(values) != 0, window - 1)


class ChannelNorm(PostRule):
    """Per-series, per-channel centre and scale of training window errors (buffers)."""

    kind = "channel_norm"
    stage = -1
    single = "its model reads the first one only: the second would be fitted and never used"

    def __init__(
        self,
        n_series: int = 1,
        n_outputs: int = 1,
        channels: str = "target",
        aggregate: str = "mean",
        min_scale: float = 0.3,
        spread_on: str = "moving",
    ) -> None:
        super().__init__()
        if not 0.0 < float(min_scale) <= 1.0:
            raise ESAInputError("min_scale must be in (0, 1]", column="min_scale", value=min_scale)
        self.min_scale = float(min_scale)
        if channels not in CHANNELS:
            raise ESAInputError(
                f"channels must be one of {CHANNELS}", column="channels", value=channels
            )
        if aggregate not in AGGREGATES:
            raise ESAInputError(
                f"aggregate must be one of {AGGREGATES}", column="aggregate", value=aggregate
            )
        if spread_on not in SPREAD_ON:
            raise ESAInputError(
                f"spread_on must be one of {SPREAD_ON}", column="spread_on", value=spread_on
            )
        self.channels, self.aggregate, self.spread_on = channels, aggregate, spread_on
        shape = (int(n_series), int(n_outputs))
        self.register_buffer("centre", torch.zeros(shape))
        self.register_buffer("scale", torch.full(shape, float("nan")))
        self.register_buffer("weight", torch.ones(int(n_outputs)))

    @classmethod
    def from_settings(cls, settings: Any, context: Any) -> PostRule:
        return cls(
            n_series=int(context.get("n_series", 1)),
            n_outputs=int(context.get("n_outputs", 1)),
            **settings,
        )

    @property
    def is_fitted(self) -> bool:
        return bool(torch.isfinite(self.scale).all())

    def fit(self, model: Any, datamodule: Any) -> None:
        """Centre and scale of each channel's error on label-free training windows (those
        where it moves, with ``spread_on: moving``)."""
        mission = datamodule.mission
        self.weight.copy_(torch.as_tensor(self.scored_channels(mission, model.hparams.n_outputs)))
        self.scale.fill_(float("nan"))  # unfitted: window_outputs gives raw errors
        window = model.hparams.window
        for name, m in mission.grids().items():
            part = m.train()
            if len(part.values) < window:
                raise ESAInputError("training range shorter than one window", path=m.name)
            per_channel = model.window_outputs(part, series=name).per_channel
            clean = ~labeled_window_mask(~nominal_rows(part), window)
            if not clean.any():
                clean = np.ones(len(per_channel), dtype=bool)
            centre, scale = self._spread(per_channel, clean, part.values, window)
            # no channel counts as more predictable than min_scale of the median channel
            floor = max(float(np.median(scale)) * self.min_scale, 1e-12)
            s = model.series_index(m, name)
            self.centre[s] = torch.as_tensor(centre, dtype=torch.float32)
            self.scale[s] = torch.as_tensor(np.maximum(scale, floor), dtype=torch.float32)
        log.info(
            "channel_norm: %s of %d/%d channels' normalised errors",
            self.aggregate,
            int(self.weight.sum()),
            len(self.weight),
        )

    def _spread(
        self, per_channel: np.ndarray, clean: np.ndarray, values: np.ndarray, window: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(centre, spread) [C] of each channel's errors on the ``clean`` windows, or on those
        of them where its value moves (``spread_on: moving``, when there are enough)."""
        n_channels = per_channel.shape[1]
        centre, scale = np.empty(n_channels), np.empty(n_channels)
        for c in range(n_channels):
            rows = clean
            if self.spread_on == "moving":
                moving = clean & moving_windows(np.asarray(values[:, c]), window)
                if moving.sum() >= MIN_MOVING_WINDOWS:
                    rows = moving
            errors = per_channel[rows, c]
            centre[c], scale[c] = np.median(errors), errors.std(dtype=np.float64)
        return centre, scale

    def scored_channels(self, mission: Any, n_outputs: int) -> np.ndarray:
        """float32 [n_outputs] 0/1: the channels whose errors make the total."""
        if self.channels == "all" or mission.is_multiseries:
            return np.ones(n_outputs, dtype=np.float32)
        target = mission.channels["Target"].astype(bool).to_numpy()[:n_outputs]
        if len(target) != n_outputs or not target.any():
            return np.ones(n_outputs, dtype=np.float32)
        return target.astype(np.float32)

    def scored_mask(self) -> np.ndarray:
        """bool [n_outputs]: the channels whose normalised errors make the total."""
        return self.weight.cpu().numpy() > 0

    def apply(self, per_channel: np.ndarray, series: int) -> tuple[np.ndarray, np.ndarray]:
        """(total [N], normalised per-channel [N, C]) of raw per-channel errors, in place."""
        per_channel -= self.centre[series].cpu().numpy()
        per_channel /= self.scale[series].cpu().numpy()
        scored = per_channel[:, self.scored_mask()]
        total = scored.max(axis=1) if self.aggregate == "max" else scored.mean(axis=1)
        return total.astype(np.float32), per_channel
