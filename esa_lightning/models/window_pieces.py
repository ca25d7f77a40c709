"""The window outputs of a long range in pieces, for the post rules' fits.

A threshold's and a gate's fit read the window scores (and the gate the features of a few
windows) of a whole fit range: millions of windows at full mission scale, whose per-channel
errors [N, C] and scaled inputs [T, C] a single ``window_outputs`` call holds at once.
``WindowPieces`` gives a window model (``window_outputs(mission, series=, history=)``, the
hyper-parameters ``window``, ``detrend`` and ``score_batch_size``) the same outputs a few
hundred thousand windows at a time. Each piece is scored from the rows its trailing means reach
back to (``detrend``), which only give its rows their means (``history``); its first window is
a multiple of ``score_batch_size``, so each batch the network sees is one of scoring the range
whole: the outputs are those of scoring it whole, bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from esa_lightning.data.array_store import release_pages
from esa_lightning.data.mission import Mission
from esa_lightning.data.transforms.windows import detrend_history, n_windows
from esa_lightning.models.base import context_start, piece_bounds
from esa_lightning.progress import progress


@dataclass
class WindowOutputs:
    """Per-window results of one pass over a single-series range (stride 1)."""

    total: np.ndarray  # float32 [N]
    per_channel: np.ndarray  # float32 [N, C]
    latent: np.ndarray | None = None  # float32 [N, D]
    attention_stats: np.ndarray | None = None  # float32 [N, 3]: max, entropy, argmax position
    pad: int = 0  # rows repeated in front because the range was shorter than a window
    targets: np.ndarray | None = None  # float32 [N]: the scaled value each window ends on


class WindowPieces:
    """``window_pieces``, ``window_batches`` and ``window_totals`` of a window model (a
    mixin)."""

    def window_pieces(
        self, mission: Mission, series: str | None = None, chunk_rows: int = 0, **options: Any
    ) -> Iterator[tuple[int, Any]]:
        """``(first window, outputs)`` of a single-grid ``mission``'s stride-1 windows,
        ``chunk_rows`` windows at a time (rounded down to whole scoring batches, one at least;
        0, or no more windows than that: all at once): ``window_outputs(**options)`` of each
        piece's windows, equal to theirs in ``window_outputs`` of the whole ``mission``."""
        hp = self.hparams
        window, batch = int(hp.window), max(1, int(hp.get("score_batch_size") or 1))
        n = n_windows(len(mission.values), window)
        step = max(batch, chunk_rows - chunk_rows % batch) if chunk_rows > 0 else 0
        bounds = piece_bounds(n, step)
        if len(bounds) == 1:  # a range shorter than a window (padded) included
            yield 0, self.window_outputs(mission, series=series, **options)
            return
        yield from self._pieces(mission, series, bounds, **options)

    def window_batches(
        self,
        mission: Mission,
        windows: np.ndarray,
        series: str | None = None,
        chunk_rows: int = 0,
        **options: Any,
    ) -> Iterator[tuple[int, Any]]:
        """``(first window, outputs)`` of the scoring batches of a single-grid ``mission`` (at
        least one window long) that hold one of ``windows`` (bool [N], N its stride-1 windows),
        consecutive ones together, ``chunk_rows`` windows at most (whole batches, one at
        least; 0: no bound): ``window_outputs(**options)`` of their windows. Each batch is one
        of scoring the range whole (the network's float32 outputs of a window depend on the
        batch it is in), so the outputs are those of ``window_outputs`` of the whole
        ``mission``, bit for bit, for the windows of the batches only."""
        hp = self.hparams
        window, batch = int(hp.window), max(1, int(hp.get("score_batch_size") or 1))
        n = n_windows(len(mission.values), window)
        if len(windows) != n or n == 0:
            raise ValueError(f"{len(windows)} windows given for a range of {n} windows")
        held = np.flatnonzero(np.logical_or.reduceat(windows, np.arange(0, n, batch)))
        most = max(1, chunk_rows // batch) if chunk_rows > 0 else len(held) or 1
        bounds: list[tuple[int, int]] = []
        for i, b in enumerate(held):  # runs of consecutive batches, ``most`` at a time
            if i and b == held[i - 1] + 1 and bounds[-1][1] - bounds[-1][0] < most * batch:
                bounds[-1] = (bounds[-1][0], min(n, (b + 1) * batch))
            else:
                bounds.append((b * batch, min(n, (b + 1) * batch)))
        yield from self._pieces(mission, series, bounds, **options)

    def _pieces(
        self, mission: Mission, series: str | None, bounds: list[tuple[int, int]], **options: Any
    ) -> Iterator[tuple[int, Any]]:
        """``(first, outputs)`` of windows ``first``..``stop`` of each of ``bounds`` (their
        first windows multiples of ``score_batch_size``), each scored from the rows its
        trailing means reach back to."""
        hp = self.hparams
        window = int(hp.window)
        # the rows before a row that its detrended value reads
        history = detrend_history(hp.get("detrend"), hp.get("detrend_stat", "mean"))
        for first, stop in progress(bounds, description="scoring window pieces", total=len(bounds)):
            lo, hi = context_start(first, history), stop + window - 1
            piece = mission.slice(lo, hi)
            yield first, self.window_outputs(piece, series=series, history=first - lo, **options)
            release_pages(mission.values[lo:hi])  # a memory-mapped input's pages (array_store)
            release_pages(mission.telecommands[lo:hi])

    def window_totals(
        self, mission: Mission, series: str | None = None, chunk_rows: int = 0
    ) -> np.ndarray:
        """float32 [N]: the window scores (``window_outputs(...).total``) of a single-grid
        ``mission``, computed ``chunk_rows`` windows at a time (``window_pieces``)."""
        totals = [wo.total for _, wo in self.window_pieces(mission, series, chunk_rows)]
        return totals[0] if len(totals) == 1 else np.concatenate(totals)
