"""The combiner logs how many labeled events it counted against ``threshold_min_events`` and
where: it said so only when they were too few, so a run whose count differed from its
validation range's events (the channel ensemble's held-out fold and the training rows after
its last in-sample row count too) could not be explained."""

from __future__ import annotations

import logging

import pytest

from esa_lightning.runtime.combiner import HybridCombiner
from tests.helpers import make_mission
from tests.unit.test_chunks import RollingScorer


@pytest.mark.parametrize(("needed", "rule"), [(2, "any_alarm"), (5, "any_alarm"),
                                              (2, "weights")])
def test_the_combiner_logs_its_event_count_and_the_rows_it_counted_in(needed, rule, caplog):
    """Events at rows 300 (training), 1500 (training) and 2600 (validation); the rows no
    component trained on: 250-399 and 1400-2799. Enough events (2) with
    ``many_events=label_free_alarm`` (esa_full's) logged no count at all; too few (5) and the
    weights say it as before, with the rows now."""
    m = make_mission(3000, 2, anomalies=((300, 320), (1500, 1520), (2600, 2620)),
                     val_start=2500, test_start=2800)
    many = "weights" if rule == "weights" else "label_free_alarm"
    comb = HybridCombiner(neighbourhood=2, block_rows=500, threshold_min_events=needed,
                          many_events=many)
    with caplog.at_level(logging.INFO, logger="esa_lightning"):
        comb.fit({"a": RollingScorer(half=0), "b": RollingScorer(half=2)}, m.fit_range(),
                 ranges=[(250, 400), (1400, 2800)], label_free_components=["a"])
    assert comb.rule == rule
    assert (
        "combiner: 3 labeled event(s) (distinct anomaly and rare event IDs, counted in each "
        "range they touch) in the rows no component's training read the labels of, against "
        f"threshold_min_events={needed}: training rows 250-399: 1; training rows 1400-2499 + "
        "validation rows 2500-2799: 2 (1 in the validation rows)"
    ) in caplog.messages


def test_the_rows_are_named_by_range():
    from esa_lightning.runtime.combiner_events import rows_named

    assert rows_named(0, 100, 100) == "training rows 0-99"
    assert rows_named(100, 150, 100) == "validation rows 100-149"
    assert rows_named(90, 150, 100) == "training rows 90-99 + validation rows 100-149"
