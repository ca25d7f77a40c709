"""Fits that choose a setting by event-wise F0.5 score the alarms the evaluation scores: the
model's alarms with the rows of readings float32 cannot hold (``Mission.unrepresentable``)
alarmed on top, as ``runtime.chunks.score_in_chunks`` forces them.

The scene of each: events A (score 10) and B (score 5) and a nominal blip (score 6) whose
middle row held a reading float32 cannot hold. Read without the forced alarm, alarming B costs
the blip's false alarm, so the best setting alarms A alone; the evaluation alarms the blip's row
whatever the setting, so alarming B costs nothing more and the best setting alarms both."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from esa_lightning.data.mission import Mission
from esa_lightning.models.base import RowScores
from esa_lightning.postprocessing.gaps import fold_width
from esa_lightning.postprocessing.peaks import PeakAlarm, peaks_to_alarm
from esa_lightning.postprocessing.random_forest import GatedPart, gate_check
from esa_lightning.postprocessing.thresholds import F05Threshold, event_f05
from esa_lightning.runtime.chunks import force_unrepresentable_alarms
from esa_lightning.runtime.combiner import HybridCombiner
from esa_lightning.runtime.evaluation import ScoredRange, report_for
from tests.helpers import toy_mission, with_events

A, B, BLIP, LOST = (100, 119), (300, 319), (500, 519), 510


def scene(a: float = 10.0, b: float = 5.0, blip: float = 6.0, val_start: int = 600) -> Mission:
    """1000 rows whose one channel is the score; the fit range is rows 0-899."""
    values = np.zeros((1000, 1), np.float32)
    labels = np.zeros((1000, 1), np.uint8)
    for (first, last), level in ((A, a), (B, b), (BLIP, blip)):
        values[first : last + 1] = level
    for first, last in (A, B):
        labels[first : last + 1] = 1
    m = with_events(toy_mission(values, labels, val_start=val_start, test_start=900))
    m.unrepresentable = np.zeros(1000, np.uint8)
    m.unrepresentable[LOST] = 1
    return m


def reported(part: Mission, alarm: np.ndarray) -> float:
    """``val/EW_F_0.50`` of row ``alarm`` on ``part`` as the evaluation reports it: the forced
    alarms added (``force_unrepresentable_alarms``)."""
    rs = RowScores(score=np.zeros(len(alarm), np.float32), alarm=np.asarray(alarm, np.uint8))
    rs = force_unrepresentable_alarms(rs, part.unrepresentable)
    scored = ScoredRange(part, rs, np.asarray(part.timestamps), part.events)
    return report_for(scored, "val")["val/EW_F_0.50"]


def unforced(part: Mission) -> Mission:
    """``part`` without its unrepresentable readings (what the fits used to score)."""
    return dataclasses.replace(part, unrepresentable=None, unrepresentable_cells=None)


def check_scene(score: np.ndarray, part: Mission, a_only: float, both: float) -> None:
    """The scene decides: A alone is best without the forced alarm, A and B with it; the F0.5
    the fits compute (``event_f05``) is the reported one."""
    for alarm in (score > a_only, score > both):
        assert event_f05(alarm, part) == pytest.approx(reported(part, alarm), abs=1e-12)
    assert event_f05(score > a_only, unforced(part)) > event_f05(score > both, unforced(part))
    assert reported(part, score > both) > reported(part, score > a_only)


class ScoreIsValue:
    """A window model of one-row windows whose window score is the channel's value."""

    hparams = SimpleNamespace(window=1)
    context_rows = 0

    def window_totals(self, mission: Mission, series=None, chunk_rows: int = 0) -> np.ndarray:
        return np.asarray(mission.values[:, 0], np.float32)

    def window_to_rows(self, alarm_w: np.ndarray, n: int) -> np.ndarray:
        return np.asarray(alarm_w)[:n]

    def series_index(self, m: Mission, name) -> int:
        return 0


@pytest.mark.parametrize("fit_on", ["fit_range", "validation"])
def test_the_f05_threshold_scores_the_forced_alarms(fit_on):
    # searching the validation range alone: the scene lies in it (rows 50-899)
    m = scene(val_start=600 if fit_on == "fit_range" else 50)
    part = m.fit_range() if fit_on == "fit_range" else m.val()
    check_scene(np.asarray(part.values[:, 0]), part, a_only=7.0, both=4.0)
    rule = F05Threshold(q=99, fit_on=fit_on)
    rule.fit(ScoreIsValue(), SimpleNamespace(mission=m))
    assert float(rule.threshold[0]) < 5.0  # B alarms: the threshold the evaluation rewards


class Probability:
    """A model whose per-sample probability is the channel's value."""

    def provisional_pieces(self, mission: Mission, chunk_rows: int = 0):
        yield RowScores(score=np.asarray(mission.values[:, 0], np.float32),
                        alarm=np.zeros(len(mission.values), np.uint8))


def test_the_peak_height_scores_the_forced_alarms():
    m = scene(a=0.9, b=0.5, blip=0.6)
    part = m.fit_range()
    prob = np.asarray(part.values[:, 0], np.float64)
    a_only, both = peaks_to_alarm(prob, 0.7, 0), peaks_to_alarm(prob, 0.4, 0)
    assert event_f05(a_only, unforced(part)) > event_f05(both, unforced(part))
    assert reported(part, both) > reported(part, a_only)
    assert event_f05(a_only, part) == pytest.approx(reported(part, a_only), abs=1e-12)
    rule = PeakAlarm(buffer=0, fit=True, folds=1)
    rule.fit(Probability(), SimpleNamespace(mission=m, label_free_ranges=lambda: [(0, 900)]))
    assert float(rule.fitted_height) < 0.5  # B alarms


def test_the_combiner_threshold_scores_the_forced_alarms():
    part = scene().fit_range()
    logit = np.asarray(part.values[:, 0], np.float64)
    check_scene(logit, part, a_only=7.0, both=4.0)
    assert HybridCombiner().choose_threshold([(part, logit)]) < 5.0


def test_the_combiner_gap_width_scores_the_forced_alarms():
    """Two alarmed events 19 rows apart with the lost reading between them: without it no gap
    needs closing and 25 costs; with it 25 turns its lone false alarm into the alarm covering
    both (``gap_close``'s own test scene)."""
    m = with_events(toy_mission(np.zeros((1000, 1), np.float32),
                                np.isin(np.arange(1000), np.r_[100:111, 130:141])[:, None]
                                .astype(np.uint8), val_start=600, test_start=900))
    m.unrepresentable = np.zeros(1000, np.uint8)
    m.unrepresentable[120] = 1
    part = m.fit_range()
    alarm = part.labels[:, 0] == 1
    assert fold_width([0, 5, 25], 0.0, [(unforced(part), alarm)], "combiner") == 5
    assert fold_width([0, 5, 25], 0.0, [(part, alarm)], "combiner") == 25


def test_the_random_forest_gate_check_scores_the_forced_alarms():
    """The gate's check compares the alarms with and without the forest: switching off the
    blip's alarm removes no false alarm the evaluation scores when its row is alarmed anyway."""
    part = scene().fit_range()
    crossing = np.asarray(part.values[:, 0]) > 4.0  # one-row windows: A, B and the blip
    keep = np.ones(len(crossing), bool)
    keep[BLIP[0] : BLIP[1] + 1] = False  # the forest switches the blip off
    gated = GatedPart(part, crossing, crossing)
    with_gate, without = gate_check(ScoreIsValue(), [gated], [keep])
    assert with_gate == pytest.approx(reported(part, crossing & keep), abs=1e-12)
    assert without == pytest.approx(reported(part, crossing), abs=1e-12)
    # read without the forced alarm, the forest looked better than it is
    assert event_f05(crossing & keep, unforced(part)) > with_gate
