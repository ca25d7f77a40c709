"""esa_full's combiner closing short gaps between the alarms of its weights
(``combiner.gap_close``), and a combined detector scored in pieces as it is scored whole."""

from __future__ import annotations

import json

import numpy as np
import pytest

from esa_lightning.artifact.detector import Detector
from esa_lightning.artifact.format import mission_schema
from esa_lightning.data.mission import Mission
from esa_lightning.errors import ESAInputError
from esa_lightning.postprocessing.thresholds import event_f05
from esa_lightning.runtime.chunks import score_in_chunks
from esa_lightning.runtime.combiner import HybridCombiner
from tests.helpers import make_mission
from tests.unit.test_chunks import RollingScorer

EVENTS = ((600, 640), (1600, 1640), (2600, 2640), (3600, 3640), (4600, 4640), (5600, 5640),
          (6600, 6640))


class Component(RollingScorer):
    """A RollingScorer a ``Detector`` can hold (it puts its components in eval mode)."""

    def eval(self) -> Component:
        return self


def flickering_mission() -> Mission:
    """Seven events (+8 on channel 0), each followed by three 2-row blips as high, 6-8 rows
    apart, on nominal rows: the weights cannot tell them from the event, so each blip is a false
    alarm interval unless its gap to the event's alarm is closed."""
    mission = make_mission(n_rows=7000, val_start=5000, test_start=6000, anomalies=EVENTS)
    for _, end in EVENTS:
        for offset in (8, 16, 24):
            mission.values[end + offset : end + offset + 2, 0] += 8.0
    return mission


def fitted(gap_close: dict | None, neighbourhood: int = 2) -> tuple[HybridCombiner, dict]:
    components = {"a": Component(half=0)}
    comb = HybridCombiner(neighbourhood=neighbourhood, block_rows=500, threshold_min_events=3,
                          gap_close=gap_close)
    comb.fit(components, flickering_mission().fit_range())
    assert comb.rule == "weights"
    return comb, components


def test_the_combiner_closes_the_gaps_its_folds_say_cost_nothing():
    test = flickering_mission().test()
    off, components = fitted(None)
    on, _ = fitted({"widths": [0, 5, 25, 100], "tolerance": 0.005})
    assert off.gap_width == 0 and on.gap_width >= 25
    assert on.threshold == off.threshold  # the threshold is chosen first, as before
    assert on.context_rows == off.context_rows + on.gap_width
    open_alarm = off.score_rows(components, test).alarm
    closed = on.score_rows(components, test).alarm
    # the blips alarm apart from the event without the rule, and with it as one interval
    event = slice(EVENTS[-1][0] - 6000, EVENTS[-1][1] - 6000 + 40)
    assert np.count_nonzero(np.diff(open_alarm[event].astype(int)) == 1) > 1
    assert np.count_nonzero(np.diff(closed[event].astype(int)) == 1) == 1
    assert event_f05(closed != 0, test) > event_f05(open_alarm != 0, test)


def test_a_combiner_whose_components_alarm_closes_no_gap_of_its_own():
    components = {"a": Component(half=0)}
    comb = HybridCombiner(neighbourhood=2, block_rows=500, threshold_min_events=50,
                          gap_close={"widths": [0, 400], "tolerance": 0.005})
    comb.fit(components, flickering_mission().fit_range())
    assert comb.rule == "any_alarm" and comb.gap_width == 0


def test_a_combined_detector_scored_in_pieces_equals_it_scored_whole():
    # a row's decision reads component scores ``neighbourhood`` (+ the gap width) rows away,
    # each of which reads its own context: the detector's context is their sum, not the larger
    mission = flickering_mission()
    for gap_close in (None, {"widths": [0, 25], "tolerance": 0.005}):
        comb = HybridCombiner(neighbourhood=4, block_rows=500, threshold_min_events=3,
                              gap_close=gap_close)
        components = {"a": Component(half=6)}
        comb.fit(components, mission.fit_range())
        det = Detector(components, mission_schema(mission), combiner=comb)
        assert det.context_rows == 6 + 4 + comb.gap_width
        whole = det.score_rows(mission)
        pieces = score_in_chunks(det, mission, chunk_rows=97)
        np.testing.assert_array_equal(pieces.score, whole.score)
        np.testing.assert_array_equal(pieces.alarm, whole.alarm)


def test_the_gap_width_survives_a_reload_and_older_files_close_none(tmp_path):
    comb, components = fitted({"widths": [0, 25], "tolerance": 0.005})
    comb.save(tmp_path)
    back = HybridCombiner.load(tmp_path)
    assert back.gap_width == comb.gap_width == 25 and back.gap_close == comb.gap_close
    test = flickering_mission().test()
    np.testing.assert_array_equal(back.score_rows(components, test).alarm,
                                  comb.score_rows(components, test).alarm)
    d = json.loads((tmp_path / "combiner.json").read_text())
    for key in ("gap_close", "gap_width"):
        d.pop(key)
    (tmp_path / "combiner.json").write_text(json.dumps(d))
    old = HybridCombiner.load(tmp_path)
    assert old.gap_width == 0 and old.gap_close is None


@pytest.mark.parametrize("key, value", [("gap_width", -1), ("gap_width", 2.5),
                                        ("gap_width", True),
                                        ("gap_close", {"widths": "wide", "tolerance": 0.0})])
def test_a_tampered_gap_setting_is_refused_naming_the_file(tmp_path, key, value):
    comb, _ = fitted({"widths": [0, 25], "tolerance": 0.005})
    comb.save(tmp_path)
    d = json.loads((tmp_path / "combiner.json").read_text())
    d[key] = value
    (tmp_path / "combiner.json").write_text(json.dumps(d))
    with pytest.raises(ESAInputError, match="combiner.json"):
        HybridCombiner.load(tmp_path)


@pytest.mark.parametrize("settings, key", [
    ({"widths": [], "tolerance": 0.005}, "combiner.gap_close.widths"),
    ({"widths": [0, -5]}, "combiner.gap_close.widths"),
    ({"widths": [0, 5], "tolerance": -1}, "combiner.gap_close.tolerance"),
    ({"widths": [0, 5], "width": 5}, "combiner.gap_close.width"),
    ([0, 5], "combiner.gap_close"),
])
def test_bad_gap_settings_are_refused_naming_the_key(settings, key):
    with pytest.raises(ESAInputError, match=key.replace(".", r"\.")):
        HybridCombiner(gap_close=settings)


class AlarmOnlyScorer(RollingScorer):
    """A component whose scores are noise but whose own alarm marks the labeled rows (as a
    post-processed decision can carry what its raw score does not)."""

    def __init__(self) -> None:
        super().__init__(half=0)

    def score_rows(self, mission):
        out = super().score_rows(mission)
        t0 = np.datetime64("2000-01-01T00:00:00", "ns")
        rows = (np.asarray(mission.timestamps) - t0) // np.timedelta64(30, "s")
        out.score = ((rows * 7919) % 1000 / 1000.0).astype(np.float32)
        out.channel_scores = np.repeat(out.score[:, None], 3, axis=1)
        out.alarm = mission.is_anomaly.astype(np.uint8)
        return out


def test_the_components_own_alarms_as_features_let_the_weights_use_them(tmp_path):
    mission = make_mission(n_rows=7000, val_start=5000, test_start=6000, anomalies=EVENTS)
    components = {"a": AlarmOnlyScorer()}
    test = mission.test()
    f05 = {}
    for flag in (False, True):
        comb = HybridCombiner(neighbourhood=2, block_rows=500, threshold_min_events=3,
                              alarm_feature=flag)
        comb.fit(components, mission.fit_range())
        assert comb.rule == "weights" and comb.coef.shape == (5 + flag,)
        f05[flag] = event_f05(comb.score_rows(components, test).alarm != 0, test)
    assert f05[True] == 1.0 and f05[False] < 0.5
    assert HybridCombiner(alarm_feature=True).events_needed(2) == 12
    comb.save(tmp_path)
    back = HybridCombiner.load(tmp_path)
    assert back.alarm_feature
    np.testing.assert_array_equal(back.score_rows(components, test).alarm,
                                  comb.score_rows(components, test).alarm)
    with pytest.raises(ESAInputError, match=r"combiner\.alarm_feature"):
        HybridCombiner(alarm_feature="yes")
