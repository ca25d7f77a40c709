"""``model.post_processing.alarm.narrow``: each peak alarm narrowed to the top of its peak (the
averaged pooled-row probability rises and falls over a pooled row's span around a short event)."""

from __future__ import annotations

import numpy as np
import pytest

from esa_lightning.data.transforms.segments import pooled_spans
from esa_lightning.errors import ESAInputError
from esa_lightning.postprocessing.peaks import (
    PeakAlarm,
    narrowed_alarm,
    peaks_to_alarm,
    spread_rows_to_samples,
)


def short_event_probability(n: int = 20_000, event: tuple[int, int] = (10_000, 10_050)):
    spans = pooled_spans(n, window=50, step=10, pool=200, stride=20)
    held = (spans[:, 0] <= event[1]) & (spans[:, 1] >= event[0])
    return spread_rows_to_samples(np.where(held, 0.9, 0.1), spans, n)


def test_narrow_zero_is_the_whole_alarm():
    prob = short_event_probability()
    whole = peaks_to_alarm(prob, 0.5, 100)
    np.testing.assert_array_equal(narrowed_alarm(prob, 0.5, 100, 0.0), whole)


def test_narrowed_alarm_keeps_the_event_and_drops_most_of_the_span():
    prob = short_event_probability()
    whole = peaks_to_alarm(prob, 0.5, buffer=0)
    narrowed = narrowed_alarm(prob, 0.5, buffer=0, narrow=0.5)
    assert narrowed[10_000:10_050].all()
    assert narrowed.sum() < 0.6 * whole.sum()
    assert not (narrowed & ~whole.astype(bool)).any()  # only ever inside the whole alarm


def test_every_alarm_keeps_its_peak_and_the_buffer_widens_the_top():
    prob = np.zeros(1_000)
    prob[100:200] = np.linspace(0.6, 0.9, 100)  # a ramp: its top is its last sample
    prob[500:520] = 0.7  # a plateau: kept whole
    narrowed = narrowed_alarm(prob, 0.5, buffer=5, narrow=0.99)
    assert narrowed[199] and narrowed[194] and not narrowed[150]
    assert narrowed[500:520].all() and narrowed[495] and not narrowed[494]


def test_the_rule_alarms_and_checks_its_narrow_setting():
    prob = short_event_probability()
    rule = PeakAlarm(height=0.5, buffer=0, narrow=0.5)
    np.testing.assert_array_equal(rule.alarm(prob), narrowed_alarm(prob, 0.5, 0, 0.5))
    for bad in (1.0, -0.1, "half"):
        with pytest.raises(ESAInputError, match="narrow"):
            PeakAlarm(narrow=bad)
