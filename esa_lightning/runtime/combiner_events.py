"""The labeled events ``HybridCombiner.fit`` counts against ``threshold_min_events``: those in
the rows no component's training read the labels of, logged with the ranges they lie in, so
the count can be checked (it is not the validation range's alone: the channel ensemble's
held-out fold and the training rows after its last in-sample row count too)."""

from __future__ import annotations

import logging

from esa_lightning.data.mission import Mission
from esa_lightning.runtime.combiner_parts import scored_events

log = logging.getLogger("esa_lightning")


def label_free_events(fit_range: Mission, ranges: list[tuple[int, int]], needed: int) -> int:
    """The labeled events (``scored_events``: distinct anomaly and rare event IDs) in
    ``ranges`` ([first, stop) rows of ``fit_range``), counted range by range and summed, as
    the combiner's rule compares them with ``needed`` (``threshold_min_events``). Logged at
    INFO, with each range's rows, the training and validation rows among them and its count."""
    counts = [scored_events(fit_range.slice(a, b)) for a, b in ranges]
    events = sum(counts)
    val_start = int(fit_range.val_start)
    pieces = []
    for (a, b), count in zip(ranges, counts, strict=True):
        piece = f"{rows_named(a, b, val_start)}: {count}"
        if a < val_start < b:  # how many of them the validation rows hold
            piece += f" ({scored_events(fit_range.slice(val_start, b))} in the validation rows)"
        pieces.append(piece)
    log.info(
        "combiner: %d labeled event(s) (distinct anomaly and rare event IDs, counted in each "
        "range they touch) in the rows no component's training read the labels of, against "
        "threshold_min_events=%d: %s", events, needed, "; ".join(pieces) or "no such rows",
    )
    return events


def rows_named(a: int, b: int, val_start: int) -> str:
    """Rows ``a``..``b - 1`` of a fit range, named by the training and validation ranges."""
    if b <= val_start:
        return f"training rows {a}-{b - 1}"
    if a >= val_start:
        return f"validation rows {a}-{b - 1}"
    return f"training rows {a}-{val_start - 1} + validation rows {val_start}-{b - 1}"
