"""``close_gaps``: short gaps between alarms closed."""

from __future__ import annotations

import numpy as np

from esa_lightning.postprocessing.gaps import close_gaps


def test_close_gaps_fills_only_short_gaps_between_alarms():
    alarm = np.array([0, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0], dtype=bool)
    np.testing.assert_array_equal(close_gaps(alarm, 0), alarm)
    np.testing.assert_array_equal(
        close_gaps(alarm, 3).astype(int), [0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0]
    )
    np.testing.assert_array_equal(
        close_gaps(alarm, 5).astype(int), [0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]
    )
