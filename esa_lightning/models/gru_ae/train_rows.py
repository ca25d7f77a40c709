"""The GRU's record of its training rows (``train_rows``, ``fit_rows.RecordsRows``): every
training window lies inside one series' training rows, so a loaded ``window`` (with the
``horizon - 1`` rows a forecaster trains on after it) longer than the longest series' training
rows is one training never used. Scoring pads a range shorter than a window up to the window:
an edited window of 10**9 rows loaded and then ran out of memory. Likewise a ``detrend`` longer
than those rows: no training row's trailing mean spanned it (each read an expanding mean), so
the network never saw inputs detrended so; training refuses it once the rows are known
(``refuse_unused_detrend``), and a loaded one is refused as the window is."""

from __future__ import annotations

from typing import Any

from esa_lightning.data.mission import Mission
from esa_lightning.errors import ESAInputError
from esa_lightning.postprocessing.fit_rows import RecordsRows


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
        return self.detrend_problem()

    def detrend_problem(self: Any) -> str | None:
        """A ``detrend`` longer than the recorded training rows (0: not recorded), or None."""
        detrend, rows = self.hparams.get("detrend"), int(self.train_rows)
        if detrend and rows > 0 and int(detrend) > rows:
            return (f"the detrend of {detrend} rows is longer than the {rows} training rows it "
                    "was fitted on (train_rows): no training row's trailing mean could span it")
        return None

    def refuse_unused_detrend(self: Any) -> None:
        """At training, once ``train_rows`` is recorded: a ``datamodule.detrend`` longer than
        the longest series' training rows, refused naming it (a loaded one is refused the
        same, ``fitted_state_problem``)."""
        problem = self.detrend_problem()
        if problem is not None:
            raise ESAInputError(f"datamodule.detrend={self.hparams.get('detrend')}: {problem}; "
                                f"use at most {int(self.train_rows)} rows, or null (off)")
