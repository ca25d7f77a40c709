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

The fit reads the training range ``chunk_rows`` windows at a time (262,144; a runtime setting;
0: the whole range at once, ``models.window_pieces``) and keeps, of each piece's per-channel
errors [n, C], only each channel's errors on the windows its statistics are taken over (float32,
filled into arrays of the counts a first pass over the values gives). A median and numpy's
float64 standard deviation, bit for bit, need every one of those errors: at most the range's
windows x channels x 4 bytes stay, not the whole range's scaled inputs and scoring arrays.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from esa_lightning.data.transforms.windows import labeled_window_mask, nominal_rows
from esa_lightning.errors import ESAInputError
from esa_lightning.postprocessing.base import CHUNK_ROWS, PostRule, check_chunk_rows

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
    RUNTIME_SETTINGS = frozenset({"chunk_rows"})

    def __init__(
        self,
        n_series: int = 1,
        n_outputs: int = 1,
        channels: str = "target",
        aggregate: str = "mean",
        min_scale: float = 0.3,
        spread_on: str = "moving",
        chunk_rows: int = CHUNK_ROWS,
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
        self.chunk_rows = check_chunk_rows(chunk_rows)
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
            clean = ~labeled_window_mask(~nominal_rows(part), window)
            if not clean.any():
                clean = np.ones(len(clean), dtype=bool)
            centre, scale = self._spread(self._kept_errors(model, part, name, clean))
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

    def _kept_errors(
        self, model: Any, part: Any, series: str, clean: np.ndarray
    ) -> Iterator[np.ndarray]:
        """Each channel's errors (float32, in window order) on the windows its statistics are
        taken over (``_selected``), the windows scored ``chunk_rows`` at a time: only those
        errors are kept, in arrays of the counts a pass over the values gives first (read
        ``chunk_rows`` rows at a time too)."""
        window, values = model.hparams.window, part.values
        step = self.chunk_rows or len(clean)
        moves, counts = self._counts(values, clean, window, step, model.hparams.n_outputs)
        kept: list[np.ndarray] = []
        filled = np.zeros_like(counts)
        pieces = model.window_pieces(part, series=series, chunk_rows=self.chunk_rows)
        for first, outputs in pieces:
            stop = first + len(outputs.per_channel)
            if stop - first == len(clean):  # the range read whole: its errors are all there
                rows = self._selected(values, clean, window, 0, stop, moves)
                yield from (outputs.per_channel[r, c] for c, r in enumerate(rows))
                return
            kept = kept or [np.empty(n, dtype=np.float32) for n in counts]
            for c, rows in enumerate(self._selected(values, clean, window, first, stop, moves)):
                errors = outputs.per_channel[rows, c]
                kept[c][filled[c] : filled[c] + len(errors)] = errors
                filled[c] += len(errors)
        while kept:  # each channel's errors leave memory once its statistics are taken
            yield kept.pop(0)

    def _counts(
        self, values: np.ndarray, clean: np.ndarray, window: int, step: int, n_channels: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(moves bool [C], counts int64 [C]): whether each channel's statistics are taken over
        its moving ``clean`` windows (``spread_on: moving`` and ``MIN_MOVING_WINDOWS`` of them
        at least), and over how many windows; the values read ``step`` windows' rows at a time."""
        clean_count = np.full(n_channels, int(clean.sum()), dtype=np.int64)
        if self.spread_on != "moving":
            return np.zeros(n_channels, dtype=bool), clean_count
        moving = np.zeros(n_channels, dtype=np.int64)
        every = np.ones(n_channels, dtype=bool)
        for lo in range(0, len(clean), step):
            rows = self._selected(values, clean, window, lo, lo + step, every)
            moving += [r.sum() for r in rows]
        moves = moving >= MIN_MOVING_WINDOWS
        return moves, np.where(moves, moving, clean_count)

    @staticmethod
    def _selected(
        values: np.ndarray, clean: np.ndarray, window: int, lo: int, hi: int, moves: np.ndarray
    ) -> Iterator[np.ndarray]:
        """bool a channel: which of the windows ``lo`` .. ``hi`` (the last one at most) its
        statistics are taken over: the ``clean`` ones, those of them where it moves when
        ``moves``."""
        block = values[lo : hi + window - 1]
        for c, moving in enumerate(moves):
            rows = clean[lo:hi]
            yield rows & moving_windows(np.asarray(block[:, c]), window) if moving else rows

    @staticmethod
    def _spread(columns: Iterator[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(centre, spread) [C]: the median and the standard deviation (float64) of each
        channel's errors (``columns``: one array a channel)."""
        centre, scale = [], []
        for errors in columns:
            centre.append(float(np.median(errors)))
            scale.append(float(errors.std(dtype=np.float64)))
        return np.asarray(centre), np.asarray(scale)

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
