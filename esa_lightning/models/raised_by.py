"""Which rule raised each alarmed row: ``RowScores.raised_by``, named per interval in the
``raised_by`` column of intervals.csv.

A row's flags are bits of a uint8 (0 on rows that do not alarm):

    score      the detector's own decision on its score: its threshold (fitted, per series or
               online), the channel ensemble's peaks above their height and the rows around them
               (``buffer``), the combiner's threshold where the components' scores alone cross
               it; behind a random-forest gate, only what the gate accepted
    gap_close  a row alarmed only because a gap-closing rule closed the gap it lies in
               (``gap_close``, ``rolling_gbdt``'s ``f05_gap``, the combiner's ``gap_close``)
    frozen     a channel stuck on one value (the stuck-channel rule, ``frozen``)
    forced     a reading float32 cannot hold (inf, or beyond its range): scoring always alarms it.
               Added to the row's other rules, never in their place: a row the detector alarmed
               itself reads ``score;forced`` (both raised it)

The combiner of ``esa_full`` passes its components' rules on where their alarms raised its own:
its ``any_alarm``/``label_free_alarm`` rule, row by row, the rules of the components whose alarms
it reads; its weights with ``alarm_feature``, on a row only the components' alarms lifted over
the threshold, the rules of those (with a positive weight) that alarm there
(``runtime.combiner_parts.weights_raised_by``); its own ``gap_close`` rows ``gap_close``.
"""

from __future__ import annotations

import numpy as np

SCORE, GAP_CLOSE, FROZEN, FORCED = 1, 2, 4, 8
#: (bit, name) in the order an interval names them
RULE_NAMES = ((SCORE, "score"), (GAP_CLOSE, "gap_close"), (FROZEN, "frozen"), (FORCED, "forced"))


def rule_flags(
    decided: np.ndarray, closed: np.ndarray | None = None, stuck: np.ndarray | None = None
) -> np.ndarray:
    """uint8 [T]: ``score`` on the rows the detector's own rule alarmed (``decided``),
    ``gap_close`` on the rows alarmed after closing the gaps (``closed``) that it did not, and
    ``frozen`` on the rows of a stuck channel (``stuck``: [T], or [T, C] any channel)."""
    decided = np.asarray(decided) != 0
    flags = decided.astype(np.uint8) * np.uint8(SCORE)
    if closed is not None:
        flags |= ((np.asarray(closed) != 0) & ~decided).astype(np.uint8) * np.uint8(GAP_CLOSE)
    if stuck is not None:
        stuck = np.asarray(stuck) != 0
        stuck = stuck.any(axis=1) if stuck.ndim == 2 else stuck
        flags |= stuck.astype(np.uint8) * np.uint8(FROZEN)
    return flags


def rule_names(flags: np.ndarray | None) -> str:
    """The rules that raised rows with ``flags`` (any of them), ``;``-joined in ``RULE_NAMES``
    order; empty for None (a detector that does not record them)."""
    if flags is None:
        return ""
    found = int(np.bitwise_or.reduce(np.asarray(flags, dtype=np.uint8))) if len(flags) else 0
    return ";".join(name for bit, name in RULE_NAMES if found & bit)
