"""The GRU's record of its training rows (``train_rows``, ``fit_rows.RecordsRows``): every
training window lies inside one series' training rows, so a loaded ``window`` (with the
``horizon - 1`` rows a forecaster trains on after it) longer than the longest series' training
rows is one training never used. Scoring pads a range shorter than a window up to the window:
an edited window of 10**9 rows loaded and then ran out of memory. A ``detrend`` longer than
those rows is warned of at training (``warn_unspanned_detrend``: no training row's trailing mean
spanned it, each read an expanding mean), not refused: the default day (2880 rows at 30 s) is
longer than a short mission's training range, and such runs trained before."""

from __future__ import annotations

import logging
from typing import Any

from esa_lightning.data.mission import Mission
from esa_lightning.postprocessing.fit_rows import RecordsRows

log = logging.getLogger("esa_lightning")


class TrainRows(RecordsRows):
    """``train_rows`` of a window model (a mixin): set from the training mission, checked at
    load (``fitted_state_problem``); 0 (an artifact written before it): not checked."""

    ROW_RECORDS = ("train_rows",)

    def record_train_rows(self: Any, mission: Mission) -> None:
        """Record the longest training range among ``mission``'s series (its grids)."""
        self.train_rows.fill_(max(int(g.val_start) for g in mission.grids().values()))

    def fitted_state_problem(self: Any) -> str | None:
        """A ``window`` (+ ``horizon`` - 1) longer than the recorded training rows, or None."""
        hp, rows = self.hparams, int(self.train_rows)
        span = int(hp.window) + int(hp.get("horizon", 1)) - 1
        if rows > 0 and span > rows:
            return (f"the window of {hp.window} rows (horizon {hp.get('horizon', 1)}) is longer "
                    f"than the {rows} training rows it was fitted on (train_rows): no training "
                    "window could hold it")
        return None

    def warn_unspanned_detrend(self: Any) -> None:
        """At training, once ``train_rows`` is recorded: warn where ``datamodule.detrend`` is
        longer than the longest series' training rows (every training row then subtracts an
        expanding mean, while scoring a longer range subtracts the full trailing one)."""
        detrend, rows = self.hparams.get("detrend"), int(self.train_rows)
        if detrend and rows > 0 and int(detrend) > rows:
            log.warning("datamodule.detrend=%d is longer than the %d training rows: no training "
                        "row's trailing mean spans it (each subtracts an expanding mean); a "
                        "shorter detrend, or null (off), detrends training and scoring alike",
                        int(detrend), rows)
