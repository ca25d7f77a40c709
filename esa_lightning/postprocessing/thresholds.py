"""Score -> alarm thresholds of window-scoring models, fitted after training (never on test).

Post rules (``PostRule``) writing one threshold per series into a buffer:

- ``percentile``: the q-th percentile of label-free validation window scores (reference
  pipeline B, q=99).
- ``dynamic``: Telemanom's non-parametric dynamic threshold (``telemanom.dynamic_threshold``)
  of the label-free validation window scores; scores are then EWMA-smoothed before comparison.
- ``f05``: uses the validation LABELS (validation is not test): among quantiles of all
  validation window scores, the threshold whose row alarms (the model's own window -> row
  mapping) give the best corrected event-wise F0.5 (``f05_search.best_f05_threshold``) wins,
  the rows of readings float32 cannot hold alarmed on top as scoring forces them
  (``f05_per_candidate``: every F0.5 here is that of the alarms the evaluation scores). A series
  whose validation range holds no labeled event falls back to the ``q``-th percentile (logged).

Each takes ``smoothing``, an EWMA span in rows (``dynamic``: 105, Telemanom's; the others: 0,
unsmoothed): window scores are smoothed before the threshold is fitted to them and before it is
compared with them, so a spike of one window weighs less than a lasting rise.

A series without a label-free validation window is fitted on its training range (logged).
Every rank computes the same number from the same (unsharded) range, so no collective is needed.
The model supplies ``window_totals(mission, series=, chunk_rows=)``, ``window_to_rows`` and
``series_index``; the rule supplies ``smoothed`` and ``window_alarms``. Each takes
``chunk_rows`` (262,144; a runtime setting): the fit's window scores are computed that many
windows at a time (``models.window_pieces``; 0: the whole range at once), the scores of the whole
range, so the same threshold for any value; only the scores [N] are kept, not the per-channel
errors or the scaled inputs of the range. Fitted among its model's rules in order
(``fit_in_order``), an ``f05`` search on the fit range hands the window scores it computed to
the model's random-forest gate, fitted next on the same range (``fit_pass.FitScores``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from esa_lightning.data.mission import Mission
from esa_lightning.data.transforms.windows import labeled_window_mask, nominal_rows
from esa_lightning.errors import ESAInputError
from esa_lightning.postprocessing.base import CHUNK_ROWS, PostRule, check_chunk_rows
from esa_lightning.postprocessing.f05_search import (  # noqa: F401 - where they were imported from
    F05_CATEGORIES,
    best_f05_threshold,
    event_f05,
    f05_candidates,
    f05_per_candidate,
    labeled_event_count,
    stable_f05_threshold,
)
from esa_lightning.postprocessing.fit_pass import FitScores, rule_of_kind
from esa_lightning.postprocessing.telemanom import dynamic_threshold, ewma, z_range_setting

log = logging.getLogger(__name__)


def percentile_threshold(scores: np.ndarray, q: float = 99) -> float:
    """The ``q``-th percentile of finite ``scores``."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    s = s[np.isfinite(s)]
    if len(s) == 0:
        raise ValueError("no finite scores to fit a threshold on")
    return float(np.percentile(s, q))


class WindowThreshold(PostRule):
    """One fitted threshold per series (``threshold`` buffer, NaN until fitted) on window
    scores EWMA-smoothed over ``smoothing`` rows (0 or 1: unsmoothed), the span that fitting
    writes into the ``score_span`` buffer."""

    #: windows its fit scores at a time (memory only: the scores of scoring the range whole)
    RUNTIME_SETTINGS = frozenset({"chunk_rows"})

    def __init__(
        self, n_series: int = 1, q: float = 99, smoothing: float = 0, chunk_rows: int = CHUNK_ROWS
    ) -> None:
        super().__init__()
        try:
            span = float(smoothing)
        except (TypeError, ValueError):
            span = float("nan")
        if not (np.isfinite(span) and span >= 0):
            raise ESAInputError(
                "smoothing must be a finite EWMA span >= 0 (0: unsmoothed)",
                column="smoothing",
                value=smoothing,
            )
        self.q, self.smoothing = float(q), span
        self.chunk_rows = check_chunk_rows(chunk_rows)
        self.register_buffer("threshold", torch.full((int(n_series),), float("nan")))
        self.register_buffer("score_span", torch.zeros(()))
        #: the fit-range window scores this fit computes for the gate, while fitted in order
        self.kept: FitScores | None = None

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], context: Mapping[str, Any]) -> PostRule:
        return cls(n_series=int(context.get("n_series", 1)), **settings)

    @property
    def is_fitted(self) -> bool:
        return bool(torch.isfinite(self.threshold).all())

    def fitted_state_problem(self) -> str | None:
        """A fitted ``score_span`` other than the ``smoothing`` that fitting writes into it
        (``artifact.fitted``: scores smoothed otherwise than the threshold was fitted on, a
        span of 10**9 asked a context of 4·10**10 rows), or None."""
        span = float(self.score_span)
        if span != float(np.float32(self.smoothing)):
            return f"the fitted score_span {span:g} is not the smoothing {self.smoothing:g}"
        return None

    @property
    def context_rows(self) -> int:
        span = float(self.score_span)
        return int(40 * span) if span > 0 else 0

    def smoothed(self, total: np.ndarray) -> np.ndarray:
        """Window scores as thresholded: EWMA-smoothed when the threshold was fitted that way.
        The average skips scores that are not finite, so a window whose error overflowed to
        infinity keeps it: it alarms as it would unsmoothed."""
        span = float(self.score_span)
        out = ewma(total, span)
        if span > 1:
            out[np.isposinf(np.asarray(total))] = np.inf
        return out

    def window_alarms(
        self, total: np.ndarray, series: int, smoothed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(smoothed scores, bool alarms) of window scores ``total`` of series ``series``;
        ``smoothed``: ``smoothed(total)`` when already computed (not computed again)."""
        score_w = self.smoothed(total) if smoothed is None else smoothed
        thr = float(self.threshold[series])
        alarm_w = score_w > thr if not np.isnan(thr) else np.zeros(len(score_w), dtype=bool)
        return score_w, alarm_w

    def fit_in_order(self, model: Any, datamodule: Any) -> None:
        """``fit`` among its model's rules fitted in order: the fit-range window scores the fit
        computes (an ``f05`` search on the fit range) are handed to the model's random-forest
        gate fitted next on the fit range (``RandomForestGate.hand``), which then sends only
        the scoring batches of its gated windows through the network (``fit_pass``)."""
        gate = rule_of_kind(model, "random_forest")
        takes = gate is not None and gate.fit_on == "fit_range"
        self.kept = FitScores(datamodule.mission, model.scoring_key()) if takes else None
        try:
            self.fit(model, datamodule)
        finally:
            kept, self.kept = self.kept, None
        if kept is not None and kept.totals:
            gate.hand(kept)

    def fit(self, model: Any, datamodule: Any) -> None:
        """Write per-series thresholds (and the score smoothing) into the buffers."""
        mission = datamodule.mission
        parts = mission.grids()
        self.score_span.fill_(self.smoothing)
        for name, m in parts.items():
            source, start, stop = "validation", m.val_start, m.test_start
            clean = _clean_windows(model, m, start, stop)
            if not clean.any():
                log.warning(
                    "series %s: no label-free validation window; threshold fitted on the "
                    "training range",
                    name or m.name,
                )
                source, start, stop = "training", 0, m.val_start
                clean = _clean_windows(model, m, start, stop)
            if not clean.any():
                raise ESAInputError("no label-free window to fit a threshold on", path=m.name)
            # scored on the first call only: a search on the fit range reads them as fallback
            scored = functools.cache(functools.partial(
                self._range_scores, model, m, name, start, stop, clean))
            thr, method = self.fit_one(model, m, name, scored, source)
            self.threshold[model.series_index(m, name)] = thr
            log.info("series %s: %s threshold %.6g on %s", name or m.name, method, thr,
                     windows_read(method, source))

    def _range_scores(
        self, model: Any, m: Mission, name: str | None, start: int, stop: int, clean: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(the label-free window scores of rows ``start``..``stop`` a threshold is fitted to,
        every window's smoothed score there, labeled ones included)."""
        total, smoothed = _window_scores(self, model, m, name, start, stop)
        return self.nominal_scores(total, smoothed, clean), smoothed

    def nominal_scores(
        self, total: np.ndarray, smoothed: np.ndarray, clean: np.ndarray
    ) -> np.ndarray:
        """The label-free window scores a threshold is fitted to: the window scores
        ``smoothed`` as scoring smooths them, at their ``clean`` windows (``total``: unsmoothed)."""
        return smoothed[clean]

    def fit_one(
        self,
        model: Any,
        m: Mission,
        name: str | None,
        scored: Callable[[], tuple[np.ndarray, np.ndarray]],
        source: str,
    ) -> tuple[float, str]:
        """(threshold, method name) of one series; ``scored()`` gives its label-free window
        scores and every smoothed window score of the ``source`` range, labeled ones included
        (scored on the first call: a rule that does not read them does not score the range)."""
        raise NotImplementedError


class PercentileThreshold(WindowThreshold):
    """The ``q``-th percentile of label-free validation window scores."""

    kind = "percentile"

    def fit_one(self, model, m, name, scored, source) -> tuple[float, str]:  # noqa: ANN001
        return percentile_threshold(scored()[0], self.q), "percentile"


class DynamicThreshold(WindowThreshold):
    """Telemanom's dynamic threshold of the label-free validation window scores, which are
    EWMA-smoothed (span ``smoothing``) before comparison."""

    kind = "dynamic"

    def __init__(
        self,
        n_series: int = 1,
        q: float = 99,
        smoothing: float = 105,
        z_range: tuple[float, float] | list[float] = (2, 10),
        min_percent_decrease: float = 0.13,
        chunk_rows: int = CHUNK_ROWS,
    ) -> None:
        super().__init__(n_series, q, smoothing, chunk_rows)
        self.z_range = z_range_setting(z_range)
        self.min_percent_decrease = float(min_percent_decrease)

    def nominal_scores(
        self, total: np.ndarray, smoothed: np.ndarray, clean: np.ndarray
    ) -> np.ndarray:
        """Unsmoothed: Telemanom's procedure smooths the label-free scores itself."""
        return total[clean]

    def fit_one(self, model, m, name, scored, source) -> tuple[float, str]:  # noqa: ANN001
        dyn = dynamic_threshold(
            scored()[0],
            smoothing=self.smoothing,
            z_range=self.z_range,
            min_percent_decrease=self.min_percent_decrease,
        )
        return dyn.threshold, "dynamic"


class F05Threshold(WindowThreshold):
    """The threshold with the best corrected event-wise F0.5 on labeled ranges the model did
    not train on (percentile fallback).

    ``fit_on: validation`` searches the validation range alone. ``fit_on: fit_range`` searches
    the training and validation ranges together: a model trained on label-free windows never
    saw the training range's labeled windows, and a mission's validation range often holds a
    handful of events, on which many thresholds tie (the choice is then a coin toss); the
    training range's events make the choice several times better supported.

    ``min_events``: the fewest labeled events (distinct IDs of ``F05_CATEGORIES``) the
    ``fit_on`` range must hold for the search; with fewer (or none) the threshold is the
    ``q``-th percentile of the label-free windows, with a warning.
    """

    kind = "f05"

    def __init__(
        self,
        n_series: int = 1,
        q: float = 99,
        fit_on: str = "validation",
        smoothing: float = 0,
        chunk_rows: int = CHUNK_ROWS,
        min_events: int = 1,
    ) -> None:
        super().__init__(n_series, q, smoothing, chunk_rows)
        if fit_on not in ("validation", "fit_range"):
            raise ESAInputError(
                "fit_on must be 'validation' or 'fit_range'", column="fit_on", value=fit_on
            )
        if isinstance(min_events, bool) or not isinstance(min_events, int) or min_events < 1:
            raise ESAInputError(
                "min_events must be a whole number of at least 1",
                column="min_events",
                value=min_events,
            )
        self.fit_on = fit_on
        self.min_events = min_events

    def fit_one(self, model, m, name, scored, source) -> tuple[float, str]:  # noqa: ANN001
        thr, few = None, ""
        # the fit range's labeled events need no label-free validation window (a validation
        # range labeled throughout has none): only the percentile fallback reads those
        searched = source == "validation" or self.fit_on == "fit_range"
        part = m.fit_range() if self.fit_on == "fit_range" else m.val()
        n_events = labeled_event_count(part) if searched else 0
        if 0 < n_events < self.min_events:
            # an event the scores do not separate is caught best by alarming nearly every row:
            # a one-event mission's GRU (one short epoch) alarmed 97 % of its test rows
            few = f" (fewer than min_events={self.min_events})"
        elif self.fit_on == "fit_range":
            smoothed = None
            if self.kept is not None and len(part.values) >= model.hparams.window:
                total = model.window_totals(part, series=name, chunk_rows=self.chunk_rows)
                self.kept.totals[name], smoothed = total, self.smoothed(total)
                self.kept.smoothed[name] = smoothed  # the gate's cut reads them as they are
            thr = f05_threshold(model, self, part, name, smoothed)
        elif source == "validation":
            thr = f05_threshold(model, self, part, name, scored()[1])
        if thr is not None and n_events < 3:
            log.warning(
                "series %s: f05 threshold %.6g fitted on %d labeled event%s: a threshold that "
                "alarms most rows may catch so few best; min_events=%d in "
                "model.post_processing.threshold uses the %g-th percentile instead",
                name or m.name, thr, n_events, "s" * (n_events > 1), n_events + 1, self.q,
            )
        if thr is None:
            ranges = "training + validation" if self.fit_on == "fit_range" else "validation"
            log.warning(
                "series %s: %s; f05 falls back to the %g-th percentile of nominal windows",
                name or m.name,
                f"{n_events or 'no'} labeled event{'s' * (n_events > 1)} on the {ranges} "
                f"range{few}"
                if searched
                else "no label-free validation window",
                self.q,
            )
            return percentile_threshold(scored()[0], self.q), "percentile"
        return thr, f"f05 ({self.fit_on})"


def windows_read(method: str, source: str) -> str:
    """The windows a threshold of ``method`` (``fit_one``'s) was fitted on, for the log: an F0.5
    search reads every window of its range, labeled ones included (``fit_on: fit_range``: the
    training and validation ranges); the percentile and dynamic rules, and the F0.5
    fallback, read the label-free windows of the ``source`` range (validation, or training
    where the validation range has none)."""
    if method == "f05 (fit_range)":
        return "every training + validation window (labeled ones included)"
    if method == "f05 (validation)":
        return "every validation window (labeled ones included)"
    return f"the label-free {source} windows"


#: the window threshold rules (kinds percentile, dynamic, f05) a window model may list
WINDOW_THRESHOLDS = (PercentileThreshold, DynamicThreshold, F05Threshold)

def _clean_windows(model: Any, m: Mission, start: int, stop: int) -> np.ndarray:
    """bool [N]: the label-free windows of rows ``start``..``stop`` of ``m`` (none when the
    range is shorter than one window); the labels alone, nothing scored."""
    window = model.hparams.window
    if stop - start < window:
        return np.zeros(0, dtype=bool)
    return ~labeled_window_mask(~nominal_rows(m.slice(start, stop)), window)


def _window_scores(
    rule: WindowThreshold, model: Any, m: Mission, name: str | None, start: int, stop: int
) -> tuple[np.ndarray, np.ndarray]:
    """(every window score of rows ``start``..``stop`` of ``m``, the same smoothed by
    ``rule``), a range at least one window long. Scored once (the percentile and the F0.5
    search both read it) and with the ``context_rows`` before ``start``, as prediction scores a
    range: alone, a detrending model's trailing mean, and the EWMA of the scores, would start
    afresh at ``start`` and give scores no later range is scored with. ``rule.chunk_rows``
    windows at a time."""
    lo = max(0, start - int(model.context_rows))
    total = model.window_totals(m.slice(lo, stop), series=name, chunk_rows=rule.chunk_rows)
    smoothed = rule.smoothed(total)[start - lo :]
    return total[start - lo :], smoothed


def f05_threshold(
    model: Any,
    rule: WindowThreshold,
    val: Mission,
    name: str | None = None,
    smoothed: np.ndarray | None = None,
) -> float | None:
    """Threshold maximising corrected event-wise F0.5 on a labeled range ``val`` (the
    validation range, or training + validation), or None.

    Candidates are quantiles of every window score of ``val`` (labeled windows included: they
    are what must rise above it). None when ``val`` holds no event of ``F05_CATEGORIES`` or is
    shorter than one window. ``smoothed``: the window scores of ``val`` as ``rule`` smooths
    them, when already computed (with the rows before ``val`` as the smoothing's context);
    else computed ``rule.chunk_rows`` windows at a time (``window_totals``).
    """
    if len(val.values) < model.hparams.window:
        return None
    if smoothed is None:
        total = model.window_totals(val, series=name, chunk_rows=rule.chunk_rows)
        smoothed = rule.smoothed(total)
    score_w = np.asarray(smoothed, dtype=np.float64)
    n = len(val.values)  # at least one window: no padding

    def alarm_of(thr: float) -> np.ndarray:
        return model.window_to_rows((score_w > thr).astype(np.float32), n) > 0

    found = best_f05_threshold(f05_candidates(score_w), alarm_of, val)
    if found is None:
        return None
    thr, best_f, tied = found
    log.info("f05 threshold %.6g: EW_F_0.50 %.4f on %s (%d tied)", thr, best_f, val.name, tied)
    return thr
