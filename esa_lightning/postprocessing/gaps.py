"""Short gaps between alarms closed, and what several rules share to choose and apply it.

``close_gaps`` switches on every run of non-alarmed rows shorter than a width that lies between
two alarmed rows (``rolling_gbdt``'s ``f05_gap`` rule chooses it with its threshold; the
``gap_close`` rule here after a model's own alarms). ``pooled_range`` lays independent series
end to end on one shifted timeline, as the evaluation pools them, so that a choice made on
their rows counts events over every series as the reported metrics do.

``GapClose`` (post rule kind ``gap_close``, settings ``widths``, ``tolerance`` and
``chunk_rows``) comes last (``stage`` 2: after a threshold and a gate judging its alarms), one
per model (``single``). Fitted on the model's final row alarms over the fit range (training +
validation rows; with the rule still unfitted, so no gap closed: ``provisional_alarm``, each
grid scored ``chunk_rows`` rows at a time with its context, keeping the row alarms only; or,
behind a gate fitted on the fit range just before, the alarms of the gate's own scoring of it,
handed over for this fit only: ``fit_pass``), it
scores each width's closed alarms, with the alarms scoring forces on the rows of readings
float32 cannot hold (``Mission.unrepresentable``) added as the evaluation adds them, by
corrected event-wise F0.5 (``f05_search.event_f05``, what
the reported ``EW_F_0.50`` counts) and keeps the WIDEST width within ``tolerance`` of the best:
gaps are closed unless the labeled fit range says it costs. Without a labeled event there:
width 0 (nothing closed), logged. The width is a buffer (int64, -1 until fitted) that travels in
the model's ``state_dict``.

Order at scoring: the rule closes the gaps between its model's own alarms (inside
``score_rows``), then ``runtime.chunks.score_in_chunks`` forces the alarms of unrepresentable
readings on top. A forced alarm is never gap-closed: it marks exactly the rows whose reading
was lost, the same rows whatever the detector, and closing from it would alarm up to W - 1
rows that neither the model nor the data called anomalous. The fit scores that order.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from esa_lightning.data.mission import (
    Mission,
    default_channel_table,
    one_timeline,
    series_spans,
)
from esa_lightning.errors import ESAInputError
from esa_lightning.postprocessing.base import CHUNK_ROWS, RULE_KEY, PostRule, check_chunk_rows
from esa_lightning.postprocessing.f05_search import event_f05
from esa_lightning.postprocessing.fit_pass import FitPass

log = logging.getLogger(__name__)


def close_gaps(alarm: np.ndarray, width: int, starts: np.ndarray | None = None) -> np.ndarray:
    """bool [T]: ``alarm`` with every run of non-alarmed rows shorter than ``width`` rows that
    lies between two alarmed rows switched on (``width`` 0 or 1: unchanged). ``starts``: the
    first row of each independent series laid end to end in ``alarm`` (``series_starts``): no
    gap is closed from one series into the next."""
    out = np.asarray(alarm, dtype=bool).copy()
    idx = np.flatnonzero(out)
    if width <= 1 or len(idx) < 2:
        return out
    gaps = np.diff(idx) - 1
    fill = (gaps > 0) & (gaps < width)
    if starts is not None:
        series = np.searchsorted(starts, idx, side="right")
        fill &= series[:-1] == series[1:]
    edges = np.zeros(len(out) + 1, dtype=np.int64)
    np.add.at(edges, idx[:-1][fill] + 1, 1)
    np.add.at(edges, idx[1:][fill], -1)
    out |= np.cumsum(edges[:-1]) > 0
    return out


def check_int_list(values: Any, key: str, low: int) -> list[int]:
    """The sorted distinct entries of a config list of integers >= ``low``, or a one-line error
    naming ``key``."""
    items = list(values) if isinstance(values, list | tuple) else None
    if not items or not all(isinstance(v, int) and not isinstance(v, bool) for v in items):
        raise ESAInputError("must be a non-empty list of integers", column=key, value=values)
    if min(items) < low:
        raise ESAInputError(f"every entry must be >= {low}", column=key, value=values)
    return sorted(set(items))


def pooled_range(
    mission: Mission, parts: list[tuple[Mission, np.ndarray]], what: str
) -> tuple[np.ndarray, Mission]:
    """(row values, the range they lie on) of ``parts``: (range, its row values) pairs cut from
    ``mission``'s grids. A single grid's one part as it is; independent series' parts laid end
    to end on one shifted timeline (``one_timeline``), named ``what`` of every series, their
    spans in its ``meta["segments"]`` (``series_spans``), their rows of readings float32
    cannot hold in its ``unrepresentable``."""
    if not mission.is_multiseries:
        ((part, values),) = parts
        return values, part
    stamps, events, kept = one_timeline([part for part, _ in parts])
    pooled = Mission(
        name=f"{mission.name} ({what} of every series)",
        values=np.zeros((len(stamps), 0), dtype=np.float32),
        timestamps=stamps,
        channels=default_channel_table([]),
        labels=None,
        events=mission.events.iloc[:0] if events is None else events,
        meta={"segments": series_spans(stamps, [len(parts[i][1]) for i in kept])},
        unrepresentable=pooled_unrepresentable([parts[i][0] for i in kept]),
    )
    return np.concatenate([parts[i][1] for i in kept]), pooled


def pooled_unrepresentable(parts: list[Mission]) -> np.ndarray | None:
    """uint8: the ``unrepresentable`` rows of single-grid ``parts`` laid end to end; None when
    none of them marks any."""
    if all(part.unrepresentable is None for part in parts):
        return None
    return np.concatenate([np.zeros(len(part.values), np.uint8) if part.unrepresentable is None
                           else np.asarray(part.unrepresentable, np.uint8) for part in parts])


def series_starts(part: Mission) -> np.ndarray | None:
    """The first row of each series on a range ``pooled_range`` laid end to end (from its
    ``segments``); None for a single grid."""
    segments = part.meta.get("segments")
    if segments is None:
        return None
    return np.searchsorted(np.asarray(part.timestamps), [first for first, _ in segments])


def widest_within(f05: Mapping[int, float], tolerance: float) -> int:
    """The widest width whose F0.5 is within ``tolerance`` of the best of ``f05``."""
    best = max(f05.values())
    return max(w for w, f in f05.items() if f >= best - tolerance - 1e-12)


def gap_settings(widths: Any, tolerance: Any, key: str) -> tuple[list[int], float]:
    """(sorted distinct widths, tolerance) of a gap-closing rule's settings under ``key``, or
    a one-line error naming the setting."""
    checked = check_int_list(widths, f"{key}.widths", 0)
    number = isinstance(tolerance, int | float) and not isinstance(tolerance, bool)
    if not number or not math.isfinite(tolerance) or tolerance < 0:
        raise ESAInputError("must be a number >= 0", column=f"{key}.tolerance", value=tolerance)
    return checked, float(tolerance)


def fold_width(
    widths: list[int], tolerance: float, folds: list[tuple[Mission, np.ndarray]], who: str
) -> int:
    """The widest of ``widths`` whose closed alarms score a mean corrected event-wise F0.5
    over ``folds`` ((range, its bool row alarms) pairs; a range without a labeled event is left
    out) within ``tolerance`` of the best; 0 (nothing closed, logged for ``who``) when no fold
    holds an event."""
    f05 = {}
    for width in widths:
        scores = [event_f05(close_gaps(alarm, width), part) for part, alarm in folds]
        kept = [f for f in scores if f is not None]
        if not kept:
            log.warning("%s: no labeled event to choose the gap width on; no gap closed", who)
            return 0
        f05[width] = float(np.mean(kept))
    width = widest_within(f05, tolerance)
    log.info("%s: gap width %d (mean EW_F_0.50 over %d fold(s) per width: %s; tolerance %g)",
             who, width, len(kept), ", ".join(f"{w}: {f:.4f}" for w, f in f05.items()),
             tolerance)
    return width


def width_problem(width: torch.Tensor, widths: list[int]) -> str | None:
    """What a loaded fitted gap ``width`` holds that a fit never writes (one of ``widths``, or 0
    without a labeled event to choose on), or None."""
    if int(width) in {0, *widths}:
        return None
    return f"the fitted width {int(width)} is neither 0 nor one of the widths {list(widths)}"


class GapClose(PostRule):
    """Closes gaps shorter than a width between its model's final alarms (``apply``); the
    width is the widest of ``widths`` within ``tolerance`` of the best fit-range F0.5."""

    kind = "gap_close"
    stage = 2
    single = "each would be fitted on the alarms the other closed"
    #: rows its fit scores at a time (memory only: the alarms are those of scoring whole)
    RUNTIME_SETTINGS = frozenset({"chunk_rows"})

    def __init__(
        self,
        widths: list[int] | tuple[int, ...] = (0, 5, 25, 100, 400),
        tolerance: float = 0.005,
        chunk_rows: int = CHUNK_ROWS,
    ) -> None:
        super().__init__()
        self.widths, self.tolerance = gap_settings(widths, tolerance, RULE_KEY)
        self.chunk_rows = check_chunk_rows(chunk_rows)
        self.register_buffer("width", torch.tensor(-1, dtype=torch.int64))
        #: the gate's scoring of the fit range, handed over for the next fit only (``hand``)
        self.handed: FitPass | None = None

    @property
    def is_fitted(self) -> bool:
        return int(self.width) >= 0

    @property
    def context_rows(self) -> int:
        """A gap is closed from the alarms at most ``width`` rows away on either side."""
        return int(self.width) if self.is_fitted else max(self.widths)

    def fitted_state_problem(self) -> str | None:
        """A loaded width the fit never writes (``artifact.fitted``), or None."""
        return width_problem(self.width, self.widths)

    def apply(self, alarm: np.ndarray) -> np.ndarray:
        """uint8 [T]: row ``alarm`` with its gaps shorter than the fitted width closed
        (unchanged before fitting)."""
        return close_gaps(alarm, max(0, int(self.width))).astype(np.uint8)

    def fit(self, model: Any, datamodule: Any) -> dict[int, float] | None:
        """Choose the width on the fit range of ``datamodule.mission`` from the model's alarms
        without gap closing (``model.provisional_alarm`` of every grid, ``chunk_rows`` rows at
        a time); returns ``fit_alarms``' F0.5 of each width. A grid the gate's fit scored just
        before (``hand``) is not scored again: its alarms come from the gate's window scores and
        gated windows' features (``FitPass.alarm``), the alarms of scoring it whole."""
        handed, self.handed = self.handed, None  # for this fit only
        self.width.fill_(-1)  # unfitted: the model's alarms leave every gap open
        mission = datamodule.mission
        if handed is not None and not handed.holds(model, mission):
            handed = None  # another mission or scoring: each grid scored as without a gate
        fit_range = mission.fit_range()
        parts = []
        for name, grid in fit_range.grids().items():
            alarm = None if handed is None else handed.alarm(model, name, grid)
            if alarm is None:
                alarm = model.provisional_alarm(grid, self.chunk_rows)
            parts.append((grid, alarm))
        del handed
        return self.fit_alarms(fit_range, parts)

    def fit_alarms(
        self, mission: Mission, parts: list[tuple[Mission, np.ndarray]]
    ) -> dict[int, float] | None:
        """Choose the width for ``parts``: each grid of ``mission`` with its row alarms. Gaps
        are closed grid by grid (never across two series) and scored pooled as the evaluation
        pools series (no alarm running from one series into the next), the rows of readings
        float32 cannot hold alarmed on top (``event_f05`` adds them from the pooled range's
        ``unrepresentable``: the alarms the evaluation scores); returns the F0.5 of each width
        (None: no labeled event)."""
        f05 = {}
        for width in self.widths:
            closed = [(part, close_gaps(alarm, width)) for part, alarm in parts]
            alarm, pooled = pooled_range(mission, closed, "fit range")
            f05[width] = event_f05(alarm, pooled, pooled.meta.get("segments"))
        if any(f is None for f in f05.values()):
            log.warning("gap_close: no labeled event on %s; no gap closed (width 0)", mission.name)
            self.width.fill_(0)
            return None
        width = widest_within(f05, self.tolerance)
        self.width.fill_(width)
        log.info(
            "gap_close: width %d (fit-range EW_F_0.50 per width: %s; tolerance %g)",
            width,
            ", ".join(f"{w}: {f:.4f}" for w, f in f05.items()),
            self.tolerance,
        )
        return f05
