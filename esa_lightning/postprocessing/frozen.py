"""A stuck channel: a row alarms where a channel has held one value far longer than it ever did.

A frozen reading (a stuck sensor, a value no longer updated) leaves nothing for a
reconstruction to get wrong: the window is easy to reproduce. ``FrozenValues`` (post rule kind
``frozen``) learns, for each target channel, the longest run of equal consecutive raw values on
the fit range's rows that hold no label in any channel, a run restarting at a row labeled a
communication gap (forward filling a gap holds the value for as long as the gap lasts: the rule
must learn the grid's usual holds, not the gaps). When scoring, a row alarms where a watched
channel's current run (gaps are unknown then, so runs do not restart) is longer than ``factor``
times that longest run, and never shorter than ``min_run`` rows. A channel whose longest run
exceeds ``max_run`` rows holds its values for so long in normal operation that it is not
watched, nor is one that holds one value on every fit row the rule reads (no run of it ends
there to learn a limit from: a limit of ``factor`` times the fit range would alarm it for keeping
that value through a test range longer than half the fit range); ``max_run`` also bounds the
rows of context a chunk needs (a run is decided from at most ``factor * max_run`` rows before
it). Its alarms are added to its model's after gap closing.

A stuck sensor keeps sending one value; a channel that stops sending (a recording that ends, a
unit switched off) is held by forward filling and looks the same on the grid. ``watch``:
``all`` (the class default) watches every row; ``sending`` watches a channel only while it
sends, where the reader records each channel's samples (``Mission.sent_rows``: the ESA raw
layout): on rows at most ``quiet`` rows after its latest sample, ``quiet`` being ``factor``
times the spacing 99.9 % of its samples on the fit range's label-free rows keep, a run
restarting at every row not watched. Data without that record (the Kaggle and CSV layouts,
given on one grid) have no channel watched then: fitted on them, the rule watches none (an info
line, not a warning: ``gru_ae``'s default would warn on every run of the Kaggle layout; the
run's closing summary names it: ``summary_note``); fitted where samples were recorded and
scoring such data (predict.py on a Kaggle parquet, the inference container), it watches none
there and warns once.

``gru_ae``'s default watches sending channels (round F2 on fresh development missions, look ak
on the suite: benchmarks/RESULTS.md, "The stuck-channel rule watching a channel while it
sends"). Watching every row, a channel that stops updating for good reads as stuck to the end of
the range: on the suite's side-by-side MSL conversions that cost more than the rule gained
elsewhere (look ah). The channel ensemble takes the rule too, by default since round F3 (none
in ``esa_full``'s ensemble component), on its one grid (series 0) and its value channels.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch

from esa_lightning.data.mission import CATEGORY_TO_CODE, Mission
from esa_lightning.errors import ESAInputError
from esa_lightning.postprocessing.base import RULE_KEY, PostRule
from esa_lightning.postprocessing.fit_rows import RecordsRows

log = logging.getLogger("esa_lightning")

GAP = CATEGORY_TO_CODE["Communication Gap"]  # its code in Mission.labels
WATCH = ("all", "sending")
SPACING_QUANTILE = 0.999  # the sample spacing a channel keeps while it sends


def run_lengths(values: np.ndarray, restart: np.ndarray | None = None) -> np.ndarray:
    """int64 [T]: at each row, how many rows before it hold the same value without a break (0
    where the value differs from the row before, or is NaN); ``restart`` (bool [T]) breaks a
    run at its rows."""
    x = np.asarray(values)
    same = np.zeros(len(x), dtype=bool)
    same[1:] = x[1:] == x[:-1]
    if restart is not None:
        same &= ~np.asarray(restart, dtype=bool)
    rows = np.arange(len(x))
    last_break = np.maximum.accumulate(np.where(same, 0, rows))
    return rows - last_break


def rows_since_sample(sent: np.ndarray) -> np.ndarray:
    """int64 [T]: at each row, how many rows ago the latest sample came (0 on a row with one;
    beyond any row count before the first)."""
    rows = np.arange(len(sent))
    latest = np.maximum.accumulate(np.where(sent, rows, -(2**40)))
    return rows - latest


def sample_spacing(sent: np.ndarray, rows: np.ndarray) -> int:
    """The spacing (rows from the sample before) that ``SPACING_QUANTILE`` of the samples on
    ``rows`` (bool [T]) keep; 1 with fewer than two samples there."""
    at = np.flatnonzero(sent)
    gaps = np.diff(at)[rows[at[1:]]] if len(at) > 1 else np.zeros(0, dtype=np.int64)
    return max(1, int(np.quantile(gaps, SPACING_QUANTILE, method="higher"))) if len(gaps) else 1


def _setting(value: Any, name: str, low: float, integer: bool) -> float:
    ok = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
    if not ok or value < low or (integer and int(value) != value):
        kind = "an integer" if integer else "a finite number"
        raise ESAInputError(f"must be {kind} >= {low:g}", column=f"{RULE_KEY}.{name}",
                            value=value)
    return float(value)


class FrozenValues(RecordsRows, PostRule):
    """Alarms where a target channel holds one value far longer than on the fit range."""

    kind = "frozen"
    stage = 3  # after gap closing: a stuck channel's alarm is not a gap to close
    single = "each would alarm on the same runs"
    ROW_RECORDS = ("fit_rows",)

    def __init__(
        self,
        n_series: int = 1,
        n_outputs: int = 1,
        factor: float = 1.5,
        min_run: int = 10,
        max_run: int = 10_000,
        watch: str = "all",
    ) -> None:
        super().__init__()
        if watch not in WATCH:
            raise ESAInputError(f"must be one of {list(WATCH)}", column=f"{RULE_KEY}.watch",
                                value=watch)
        self.watch = watch
        self.factor = _setting(factor, "factor", 1.0, integer=False)
        self.min_run = int(_setting(min_run, "min_run", 1, integer=True))
        self.max_run = int(_setting(max_run, "max_run", 1, integer=True))
        # [series, value column]: the run a row must exceed to alarm; 0: not watched; -1: unfitted
        self.register_buffer("limit", torch.full((int(n_series), int(n_outputs)), -1,
                                                 dtype=torch.int64))
        if watch == "sending":  # [series, value column]: the rows after a sample still watched
            self.register_buffer("quiet", torch.zeros((int(n_series), int(n_outputs)),
                                                      dtype=torch.int64))
        # [series]: the fit range's rows (bounds ``quiet``; 0: not recorded, an older artifact)
        self.register_buffer("fit_rows", torch.zeros(int(n_series), dtype=torch.int64))
        self.told_unrecorded = False  # warned of data without a sample record (once)
        self.fitted_unrecorded = False  # the last fit's data recorded no samples (summary_note)

    @classmethod
    def from_settings(cls, settings: Any, context: Any) -> PostRule:
        return cls(n_series=int(context.get("n_series", 1)),
                   n_outputs=int(context.get("n_outputs", 1)), **settings)

    @property
    def is_fitted(self) -> bool:
        return bool((self.limit >= 0).all())

    def fitted_state_problem(self) -> str | None:
        """A loaded ``limit`` or ``quiet`` the fit never writes (``artifact.fitted``), or None: a
        limit is 0 (not watched) or ``factor`` times a run from ``min_run`` to ``max_run``
        (rounded up); ``quiet`` is 0 where the limit is, else at least ``factor`` (rounded up)
        rows after a sample (``factor`` times a spacing of at least one row) and, where the fit
        range's rows were recorded (``fit_rows``), at most ``factor`` times those rows (no
        spacing of its samples is longer)."""
        low = math.ceil(self.factor * self.min_run)
        high = math.ceil(self.factor * max(self.min_run, self.max_run))
        limit = self.limit
        bad = (limit != 0) & ((limit < low) | (limit > high))
        if bool(bad.any()):
            return (f"the fitted limit {int(limit[bad][0])} is neither 0 (not watched) nor "
                    f"from {low} to {high} (factor times min_run to max_run)")
        if self.watch == "sending":
            quiet = self.quiet
            bad = torch.where(limit == 0, quiet != 0, quiet < math.ceil(self.factor))
            if bool(bad.any()):
                return (f"the fitted quiet {int(quiet[bad][0])} is not 0 where the limit is 0, "
                        f"nor at least {math.ceil(self.factor)} rows (factor) where it watches")
            rows = self.fit_rows[:, None].expand_as(quiet)
            bad = (rows > 0) & (quiet > torch.ceil(self.factor * rows.double()))
            if bool(bad.any()):
                return (f"the fitted quiet {int(quiet[bad][0])} exceeds factor times the "
                        f"{int(rows[bad][0])} rows of the fit range (fit_rows)")
        return None

    @property
    def context_rows(self) -> int:
        """A row's run is decided by at most its limit of rows before it, and whether a row is
        watched by at most ``quiet`` rows before it (0 unfitted: it alarms nowhere then)."""
        if not self.is_fitted:
            return 0
        quiet = int(self.quiet.max()) if self.watch == "sending" else 0
        return int(self.limit.max()) + quiet + 1

    def fit(self, model: Any, datamodule: Any) -> None:
        """Each series' limits from its grid's fit range (training and validation rows)."""
        self.fitted_unrecorded = False
        for name, grid in datamodule.mission.fit_range().grids().items():
            s = model.series_index(grid, name)
            limits, quiet = self.limits(grid)
            self.fit_rows[s] = len(grid.values)
            self.limit[s] = torch.as_tensor(limits, dtype=torch.int64)
            if self.watch == "sending":
                self.quiet[s] = torch.as_tensor(quiet, dtype=torch.int64)

    def limits(self, fit_range: Mission) -> tuple[np.ndarray, np.ndarray]:
        """int64 [value columns] twice: each target channel's limit on ``fit_range`` (0 for the
        other columns and for channels not watched) and its ``quiet`` rows (0 where the rule
        watches every row)."""
        columns = fit_range.values.shape[1]
        if self.limit.shape[1] != columns:
            raise ESAInputError(f"has {columns} value columns, the model {self.limit.shape[1]}",
                                path=fit_range.name)
        label_free = fit_range.row_labels == 0
        gap = fit_range.rows_labeled(GAP)
        out, quiet = np.zeros(columns, dtype=np.int64), np.zeros(columns, dtype=np.int64)
        targets = set(fit_range.target_channels)
        if self.watch == "sending" and fit_range.sent is None:
            self.fitted_unrecorded = True  # a default run on the Kaggle layout: said at the end
            log.info("frozen: %s records no samples (values on one grid): no channel watched "
                     "(model.post_processing.frozen.watch=all watches every row)", fit_range.name)
            return out, quiet
        for j, channel in enumerate(fit_range.channel_names):
            if channel not in targets or not label_free.any():
                continue
            watched, after = np.ones(len(label_free), dtype=bool), 0
            if self.watch == "sending":
                sent = fit_range.sent_rows(j)
                after = math.ceil(self.factor * sample_spacing(sent, label_free))
                watched = rows_since_sample(sent) <= after
            rows = label_free & watched
            if not rows.any():
                continue
            held = fit_range.values[rows, j]
            if (held == held[0]).all():  # no run ends there: nothing to learn a limit from
                log.info("frozen: %s holds one value on every fit row the rule reads: not "
                         "watched", channel)
                continue
            longest = int(run_lengths(fit_range.values[:, j], gap | ~watched)[rows].max())
            if longest > self.max_run:
                log.info("frozen: %s holds a value for up to %d rows: not watched", channel,
                         longest)
                continue
            out[j] = math.ceil(self.factor * max(longest, self.min_run))
            quiet[j] = after  # a channel not watched adds no context
        return out, quiet

    def summary_note(self) -> str | None:
        """Fitted with ``watch: sending`` on data that record no samples, no channel watched:
        the run's summary says so (the fit's own line is at info level, as ``gru_ae``'s default
        would log it on every run of the Kaggle layout)."""
        if not self.fitted_unrecorded or bool((self.limit > 0).any()):
            return None
        return ("the stuck-channel rule (frozen, watch: sending) watches no channel: the data "
                "record no samples (values on one grid); model.post_processing.frozen.watch=all "
                "watches every row")

    def alarms(self, mission: Mission, series: int) -> np.ndarray:
        """bool [T, value columns]: where a watched channel's run exceeds its limit; none
        where ``watch: sending`` meets a mission without a sample record (with a warning, once,
        where the fit watched channels)."""
        limit = self.limit[series].cpu().numpy()
        out = np.zeros(mission.values.shape, dtype=bool)
        if self.watch == "sending" and mission.sent is None and (limit > 0).any():
            self._tell_unrecorded(mission, int((limit > 0).sum()))
            return out
        for j in np.flatnonzero(limit > 0):
            watched = self._watched(mission, series, j)
            if watched is None:
                out[:, j] = run_lengths(mission.values[:, j]) > limit[j]
            else:
                out[:, j] = (run_lengths(mission.values[:, j], ~watched) > limit[j]) & watched
        return out

    def _tell_unrecorded(self, mission: Mission, watched: int) -> None:
        """Warn, once, that ``mission`` records no samples, so that the rule, fitted where they
        were recorded, watches none of its ``watched`` channels there."""
        if not self.told_unrecorded:
            log.warning("frozen: %s records no samples (values on one grid: the Kaggle, ESA CSV "
                        "and NASA layouts): the stuck-channel rule, fitted on data that record "
                        "them (the ESA raw layout), watches no channel here (%d watched there)",
                        mission.name, watched)
        self.told_unrecorded = True

    def _watched(self, mission: Mission, series: int, column: int) -> np.ndarray | None:
        """bool [T]: the rows the rule watches the column on (``watch: sending``); None: every
        row. Only for a mission with a sample record (``alarms`` watches none without)."""
        if self.watch == "all":
            return None
        return rows_since_sample(mission.sent_rows(column)) <= int(self.quiet[series, column])

    def __repr__(self) -> str:
        return (f"FrozenValues(factor={self.factor:g}, min_run={self.min_run}, "
                f"max_run={self.max_run}, watch={self.watch!r})")
