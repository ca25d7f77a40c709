"""The combiner counts the events its threshold search scores: under
``metrics.label_channels=target`` an event labeled on a non-target channel only is no event to
the search (``Mission.events`` drops it), so it does not count towards ``threshold_min_events``
either, though the label arrays (what the components learn from) still hold its rows."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from esa_lightning.data.label_channels import with_label_channels
from esa_lightning.runtime.combiner import HybridCombiner
from tests.helpers import make_mission
from tests.unit.test_chunks import RollingScorer


def target_and_other_events_mission():
    """3000 rows, channel_1 a target channel, channel_2 not: three events on channel_1 (from
    ``make_mission``) and three more labeled on channel_2 only."""
    m = make_mission(3000, 2, anomalies=((300, 320), (900, 920), (1500, 1520)),
                     val_start=2500, test_start=2800)
    channels = m.channels.copy()
    channels["Target"] = [True, False]
    stamps, labels, rows = m.timestamps, m.labels.copy(), []
    for k, (a, b) in enumerate(((600, 620), (1200, 1220), (1800, 1820))):
        labels[a : b + 1, 1] = 1
        rows.append({"ID": f"other_{k}", "Channel": "channel_2", "StartTime": stamps[a],
                     "EndTime": stamps[b], "Category": "Anomaly"})
    events = pd.concat([m.events, pd.DataFrame(rows)], ignore_index=True)
    return dataclasses.replace(m, channels=channels, events=events, labels=labels)


@pytest.mark.parametrize(("label_channels", "events", "rule"),
                         [("all", 6, "weights"), ("target", 3, "any_alarm")])
def test_the_combiner_counts_the_events_its_threshold_search_scores(
    label_channels, events, rule, caplog
):
    mission = with_label_channels(target_and_other_events_mission(), label_channels)
    assert mission.is_anomaly.sum() == 6 * 21  # the label arrays are the same under both
    components = {"a": RollingScorer(half=0), "b": RollingScorer(half=2)}
    comb = HybridCombiner(neighbourhood=2, block_rows=500, threshold_min_events=4,
                          few_events="any_alarm")
    with caplog.at_level("INFO"):
        comb.fit(components, mission.fit_range())
    assert comb.rule == rule
    if rule == "any_alarm":
        assert f"{events} labeled event(s) in the rows no component trained on" in caplog.text
    else:
        assert f"({events} labeled events in " in caplog.text
