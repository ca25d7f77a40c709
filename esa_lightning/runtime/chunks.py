"""Scoring long ranges piece by piece, with results equal to scoring them whole.

A row's score depends on the rows around it (window length, pooling span, peak buffers): the
scorer's ``context_rows``, declared by every ``DetectorModule`` and by the artifact. A piece of
rows [start, stop) is therefore scored together with ``context`` rows on each side and only its
own rows are kept; pooled models also need the piece to begin on their window grid
(``alignment_rows``): ``models.base.iter_pieces``, which the models' own fits use too (the
``gap_close`` rule's provisional alarms, ``DetectorModule.provisional_alarm``). Used by
prediction, by evaluation inside ``train.py`` and by the combiner's fit, so that no step ever
holds per-channel scores of a whole multi-year range.

Per-channel outputs are the largest (float32 scores and uint8 alarms, [T, C]).
``keep_channel_scores`` chooses what survives the pieces: ``"all"``; ``"alarmed"``: scores and
per-channel alarms of the alarmed rows only, which is all the interval report reads (see
``AlarmedRows``); ``"none"``: no per-channel scores (per-channel alarms stay, for the metrics).
``channel_scores_from`` keeps instead the per-channel scores of the rows from that one on:
``train.py`` scores its validation range once, for the metrics (per-channel alarms) and for
the nominal reference (per-channel scores of the range's last rows, ``runtime.calibration``).
The stuck channels (``RowScores.stuck_channels``) are kept on every row with ``"all"``, else on
the rows where a channel is stuck only (an ``AlarmedRows`` reading False elsewhere).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

import numpy as np

from esa_lightning.data.mission import Mission, cells_in, forced_alarm
from esa_lightning.models.base import RowScores, Scorer, iter_pieces, piece_bounds
from esa_lightning.models.raised_by import FORCED

KeepChannelScores = Literal["all", "alarmed", "none"]


class AlarmedRows:
    """A per-channel [T, C] output kept on some rows only (the alarmed ones, or a range's last
    rows: ``channel_scores_from``); other rows read as ``fill``.

    Slicing rows (``x[lo:hi]``) gives a dense block, so the interval report (peak channel scores
    and channels involved over an alarmed interval) reads it like the full array, at a memory
    cost proportional to the alarmed rows instead of all rows. ``np.asarray(x)`` builds the
    dense array (the metrics do, on ranges that carry labels).
    """

    def __init__(self, n_rows: int, rows: np.ndarray, values: np.ndarray, fill: float) -> None:
        self.rows = np.asarray(rows, dtype=np.int64)
        self.values = np.asarray(values)
        self.fill = fill
        self.shape = (int(n_rows), int(self.values.shape[1]))
        self.dtype = self.values.dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: slice) -> np.ndarray:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("AlarmedRows supports contiguous row slices only")
        lo, hi, _ = key.indices(self.shape[0])
        hi = max(lo, hi)
        out = np.full((hi - lo, self.shape[1]), self.fill, dtype=self.dtype)
        a, b = np.searchsorted(self.rows, [lo, hi])
        out[self.rows[a:b] - lo] = self.values[a:b]
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        dense = self[0 : self.shape[0]]
        return dense if dtype is None else dense.astype(dtype)


def force_unrepresentable_alarms(
    rs: RowScores, unrepresentable: np.ndarray | None, cells: np.ndarray | None = None
) -> RowScores:
    """``rs`` with an alarm on every row whose reading float32 could not represent
    (``Mission.unrepresentable``): the model saw a repaired value there, so its own decision
    cannot be trusted, and such a reading is an anomaly by itself. Those rows' score becomes
    float32's largest value: above every real score, finite for the threshold-free metrics,
    and the same whatever the chunking. The channel holding each such reading (``cells``:
    (row, column) pairs, ``Mission.unrepresentable_cells``) alarms on its row, where the
    detector alarms per channel. Those rows are flagged ``forced`` (``RowScores.raised_by``)."""
    if unrepresentable is None:
        return rs
    rows = np.flatnonzero(np.asarray(unrepresentable))
    if not len(rows):
        return rs
    alarm, score = forced_alarm(rs.alarm, unrepresentable), rs.score.copy()
    score[rows] = np.finfo(np.float32).max
    channel_alarm = rs.channel_alarm
    if cells is not None and len(cells) and channel_alarm is not None:
        channel_alarm = np.array(channel_alarm, dtype=np.uint8)  # a copy
        cells = np.asarray(cells, dtype=np.int64).reshape(-1, 2)
        cells = cells[cells[:, 1] < channel_alarm.shape[1]]
        channel_alarm[cells[:, 0], cells[:, 1]] = 1
    raised_by = rs.raised_by
    if raised_by is not None:
        raised_by = np.array(raised_by, dtype=np.uint8)  # a copy
        raised_by[rows] |= np.uint8(FORCED)
    return replace(rs, score=score, alarm=alarm, channel_alarm=channel_alarm, raised_by=raised_by)


def score_in_chunks(
    scorer: Scorer,
    mission: Mission,
    chunk_rows: int,
    context: int | None = None,
    keep_channel_scores: KeepChannelScores = "all",
    first_row: int = 0,
    channel_scores_from: int | None = None,
) -> RowScores:
    """``scorer.score_rows(mission)`` computed ``chunk_rows`` rows at a time (same numbers).

    With ``first_row`` > 0 only rows [first_row, T) are scored and returned, but with the
    rows before them as context (a test range scored with the history its windows and
    detrending need). Rows of unrepresentable readings always alarm, and so do their
    channels (``force_unrepresentable_alarms``). ``channel_scores_from``: the per-channel
    scores kept are those of the returned rows from this one on (an ``AlarmedRows`` reading NaN
    before it), whatever ``keep_channel_scores``; the per-channel alarms follow
    ``keep_channel_scores``."""
    if keep_channel_scores not in ("all", "alarmed", "none"):
        raise ValueError(f"keep_channel_scores must be all, alarmed or none: {keep_channel_scores}")
    if first_row and first_row == len(mission.values):  # nothing to score: no context needed
        mission, first_row = mission.slice(first_row, first_row), 0
    n = len(mission.values) - first_row
    sparse = keep_channel_scores == "alarmed"
    tail = None if channel_scores_from is None else max(0, int(channel_scores_from))
    score, alarm, alarmed_rows, threshold, gate_probability, raised_by = [], [], [], [], [], []
    tail_rows: list[np.ndarray] = []
    stuck: list[np.ndarray | None] = []
    stuck_rows: list[np.ndarray] = []
    channel_alarm: list[np.ndarray | None] = []
    channel_scores: list[np.ndarray | None] = []
    bounds = [(a + first_row, b + first_row) for a, b in piece_bounds(n, chunk_rows)]
    unrepresentable, cells = mission.unrepresentable, mission.unrepresentable_cells
    for start, stop, rs in iter_pieces(scorer, mission, bounds, context):
        start -= first_row
        if unrepresentable is not None:
            rows = unrepresentable[start + first_row : stop]
            rs = force_unrepresentable_alarms(rs, rows, cells_in(cells, start + first_row, stop))
        score.append(rs.score)
        alarm.append(rs.alarm)
        threshold.append(rs.threshold)
        gate_probability.append(rs.gate_probability)
        raised_by.append(rs.raised_by)
        rows = np.flatnonzero(rs.alarm) if sparse else slice(None)
        alarmed_rows.append(rows + start if sparse else None)
        ca, cs = rs.channel_alarm, rs.channel_scores
        channel_alarm.append(None if ca is None else np.asarray(ca[rows]))
        stuck.append(_stuck_rows(rs.stuck_channels, keep_channel_scores, start, stuck_rows))
        if tail is not None:  # a copy: a view would hold the piece's every row
            own = min(len(rs.score), max(0, tail - start))
            tail_rows.append(np.arange(start + own, start + len(rs.score)))
            channel_scores.append(None if cs is None else np.array(cs[own:], dtype=np.float32))
            continue
        keep = cs is not None and keep_channel_scores != "none"
        channel_scores.append(np.asarray(cs[rows], dtype=np.float32) if keep else None)
    kept_scores, kept_alarm = _cat_optional(channel_scores), _cat_optional(channel_alarm)
    kept_stuck = _cat_optional(stuck)
    if kept_stuck is not None and keep_channel_scores != "all":
        kept_stuck = AlarmedRows(n, np.concatenate(stuck_rows), kept_stuck, False)
    if sparse:
        rows = np.concatenate(alarmed_rows)
        if kept_scores is not None and tail is None:
            kept_scores = AlarmedRows(n, rows, kept_scores, np.nan)
        if kept_alarm is not None:
            kept_alarm = AlarmedRows(n, rows, kept_alarm, 0)
    if tail is not None and kept_scores is not None:
        kept_scores = AlarmedRows(n, np.concatenate(tail_rows), kept_scores, np.nan)
    return RowScores(
        score=np.concatenate(score),
        alarm=np.concatenate(alarm),
        channel_scores=kept_scores,
        channel_alarm=kept_alarm,
        threshold=_cat_optional(threshold),
        gate_probability=_cat_optional(gate_probability),
        raised_by=_cat_optional(raised_by),
        stuck_channels=kept_stuck,
    )


def _stuck_rows(
    stuck: np.ndarray | None, keep: KeepChannelScores, start: int, rows: list[np.ndarray]
) -> np.ndarray | None:
    """A piece's ``RowScores.stuck_channels`` as ``score_in_chunks`` keeps it: every row with
    ``keep`` ``all``, else the rows where a channel is stuck only (their numbers, from the
    piece's first row ``start``, appended to ``rows``)."""
    if stuck is None:
        return None
    stuck = np.asarray(stuck, dtype=bool)
    if keep == "all":
        return stuck
    own = np.flatnonzero(stuck.any(axis=1))
    rows.append(own + start)
    return stuck[own]


def _cat_optional(arrays: list[np.ndarray | None]) -> np.ndarray | None:
    if not arrays or any(a is None for a in arrays):
        return None
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
