"""The DataFrame path's check of counters (``data.frame``): a counter the detector differences
must arrive cumulative, a channel it takes as it is must not arrive cumulative."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from esa_lightning.data.preprocessing import Preprocessing

MIN_CHANGES = 10  # changes a column needs before its monotonic behaviour is judged
DIFFERENCED_SHARE = 0.2  # a raw counter decreases (resets) in fewer of its changes than this
COUNTER_SPAN = 10.0  # a monotonic column spanning this many training ranges looks cumulative


def check_counters(
    columns: dict[str, np.ndarray],
    names: list[str],
    prep: Preprocessing,
    ranges: dict[str, list[float]],
    warn: Callable[..., None],
) -> None:
    """A counter the detector differences must arrive cumulative (it rarely decreases); a
    channel it takes as it is must not arrive cumulative when training saw it differenced.
    ``warn(reason, column=...)`` is the frame's ``InputCheck.warn``."""
    counters = set(prep.counters)
    for name in names:
        raw = columns[name]
        raw = raw[np.isfinite(raw)]
        step = np.diff(raw)
        changes = step[step != 0]
        if len(changes) < MIN_CHANGES:
            continue
        falling = int((changes < 0).sum())
        if name in counters and falling > DIFFERENCED_SHARE * len(changes):
            warn(
                f"the detector differences this counter itself, but it decreases in {falling} "
                f"of its {len(changes)} changes: it looks already differenced; pass the raw "
                "cumulative counter",
                column=name,
            )
        elif name not in counters and falling == 0 and name in ranges:
            lo, hi = ranges[name]
            span, trained = float(raw[-1] - raw[0]), max(float(hi - lo), 1e-12)
            if span > COUNTER_SPAN * trained:
                warn(
                    f"rises monotonically by {span:.6g}, {span / trained:.0f} times the range "
                    f"seen in training [{lo:.6g}, {hi:.6g}]: it looks like an undifferenced "
                    "counter, while the detector was trained on its differences; difference it "
                    "first",
                    column=name,
                )
