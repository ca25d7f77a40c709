"""The channel ensemble's alarm height fitted over folds of the fit range (``peaks`` with
``fit: true``) instead of a fixed 0.5 that alarms nowhere, or everywhere, on real data."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from esa_lightning.models.base import RowScores
from esa_lightning.postprocessing.peaks import PeakAlarm, fold_pieces
from tests.helpers import make_mission

ANOMALIES = ((500, 520), (1300, 1320), (2100, 2120), (2700, 2720), (3500, 3520))


def rows_of(mission, ranges):
    """A datamodule stand-in whose label-free rows are ``ranges``."""
    return SimpleNamespace(mission=mission, label_free_ranges=lambda: list(ranges))


class ShiftedProbability:
    """A model whose per-row probability is ``base`` + noise, ``peak`` on labeled rows."""

    def provisional_pieces(self, mission, chunk_rows):  # scored whole: one piece
        yield self.score_rows(mission)

    def __init__(self, base: float, peak: float) -> None:
        self.base, self.peak = base, peak

    def score_rows(self, mission) -> RowScores:
        rng = np.random.default_rng(len(mission.values))
        prob = self.base + 0.05 * rng.random(len(mission.values))
        prob[mission.is_anomaly > 0] = self.peak
        return RowScores(prob.astype(np.float32), np.zeros(len(prob), np.uint8))


@pytest.mark.parametrize("base, peak", [(0.05, 0.3), (0.6, 0.95)])
def test_fitted_height_separates_where_a_fixed_one_does_not(base, peak):
    mission = make_mission(n_rows=4000, val_start=2400, test_start=3200, anomalies=ANOMALIES)
    model = ShiftedProbability(base, peak)
    test_prob = model.score_rows(mission.test()).score
    fixed = PeakAlarm(height=0.5, buffer=2)
    fixed.fit(model, rows_of(mission, [(0, 3200)]))
    fixed_alarm = fixed.alarm(test_prob)
    assert fixed_alarm.all() or not fixed_alarm.any()  # everything, or nothing

    rule = PeakAlarm(height=0.5, buffer=2, fit=True)
    assert not rule.is_fitted and not rule.alarm(test_prob).any()
    rule.fit(model, rows_of(mission, [(0, 3200)]))
    assert rule.is_fitted and base + 0.04 <= rule.current_height < peak
    alarm = rule.alarm(test_prob).astype(bool)
    labeled = mission.test().is_anomaly > 0
    assert alarm[labeled].all() and alarm.sum() <= labeled.sum() + 4


def test_fitted_height_travels_in_the_state_dict():
    rule = PeakAlarm(fit=True)
    rule.fitted_height.fill_(0.37)
    again = PeakAlarm(fit=True)
    again.load_state_dict(rule.state_dict())
    assert again.current_height == pytest.approx(0.37)
    assert PeakAlarm().state_dict() == {}  # a fixed height keeps old artifacts loadable


class InSampleProbability:
    """Probabilities of a model that learned its training rows by heart: on rows ``start`` to
    ``end`` anomalies score 0.99 and nominal rows up to 0.9; elsewhere, anomalies 0.6 and
    nominal rows at most 0.3."""

    provisional_pieces = ShiftedProbability.provisional_pieces

    def __init__(self, end: int, start: int = 0) -> None:
        self.start, self.end = start, end

    def score_rows(self, mission) -> RowScores:
        t0 = np.datetime64("2000-01-01T00:00:00", "ns")
        rows = (np.asarray(mission.timestamps) - t0) // np.timedelta64(30, "s")
        rng = np.random.default_rng(int(rows[0]))
        inside = (rows >= self.start) & (rows < self.end)
        prob = np.where(inside, 0.9, 0.3) * rng.random(len(rows))
        anomalous = mission.is_anomaly > 0
        prob[anomalous] = np.where(inside[anomalous], 0.99, 0.6)
        return RowScores(prob.astype(np.float32), np.zeros(len(prob), np.uint8))


def test_height_is_fitted_on_rows_the_model_did_not_learn():
    mission = make_mission(n_rows=4000, val_start=2400, test_start=3200, anomalies=ANOMALIES)
    model = InSampleProbability(end=1800)
    test_prob = model.score_rows(mission.test()).score
    labeled = mission.test().is_anomaly > 0
    for end, catches in ((0, False), (1800, True)):
        rule = PeakAlarm(buffer=2, fit=True)
        rule.fit(model, rows_of(mission, [(end, 3200)]))
        alarm = rule.alarm(test_prob).astype(bool)
        assert alarm[labeled].any() == catches, (end, rule.current_height)


def test_height_is_fitted_on_held_out_rows_before_in_sample_ones():
    # the held-out block lies before the learners' last rows (folds.outer_end): the height is
    # fitted on it and on the rows after the in-sample ones, never on the in-sample rows
    mission = make_mission(n_rows=4000, val_start=2400, test_start=3200, anomalies=ANOMALIES)
    model = InSampleProbability(start=600, end=2400)
    test_prob = model.score_rows(mission.test()).score
    labeled = mission.test().is_anomaly > 0
    for ranges, catches in (([(0, 3200)], False), ([(0, 600), (2400, 3200)], True)):
        rule = PeakAlarm(buffer=2, fit=True)
        rule.fit(model, rows_of(mission, ranges))
        alarm = rule.alarm(test_prob).astype(bool)
        assert alarm[labeled].any() == catches, (ranges, rule.current_height)


def test_without_a_labeled_event_the_log_says_only_what_was_tried(caplog):
    """Fitted over the whole fit range already, it said "trying all rows" before giving up."""
    mission = make_mission(n_rows=4000, val_start=2400, test_start=3200, anomalies=())
    rule = PeakAlarm(height=0.4, buffer=2, fit=True)
    with caplog.at_level("WARNING", logger="esa_lightning"):
        rule.fit(ShiftedProbability(0.05, 0.3), rows_of(mission, [(0, 3200)]))
    assert rule.current_height == pytest.approx(0.4)
    assert "trying all rows" not in caplog.text
    assert "no labeled event before the test range" in caplog.text


def test_fold_pieces_cut_folds_over_ranges_taken_one_after_another():
    assert fold_pieces([(10, 40)], 3) == [(10, 20), (20, 30), (30, 40)]
    # 30 rows in two ranges: the second fold crosses from one range into the next
    assert fold_pieces([(0, 15), (100, 115)], 3) == [(0, 10), (10, 15), (100, 105), (105, 115)]
    assert fold_pieces([(5, 5)], 3) == [] and fold_pieces([], 2) == []


def test_a_height_that_catches_no_labeled_event_is_not_kept(caplog):
    """One labeled event that scores below every nominal row: every candidate height had F0.5
    0, and the median tied one (about the nominal level) was kept, alarming most rows."""
    mission = make_mission(n_rows=4000, val_start=2400, test_start=3200, anomalies=((500, 520),))
    model = ShiftedProbability(0.6, 0.1)
    rule = PeakAlarm(height=0.9, buffer=0, fit=True)
    with caplog.at_level("WARNING", logger="esa_lightning"):
        rule.fit(model, rows_of(mission, [(0, 3200)]))
    assert rule.current_height == pytest.approx(0.9)
    assert not rule.alarm(model.score_rows(mission.test()).score).any()
    assert "no height catches a labeled event before the test range" in caplog.text
