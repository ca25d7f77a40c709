"""intervals.csv ``raised_by``: the rules that raised each alarm (``RowScores.raised_by``), named
without changing which rows alarm."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch

from esa_lightning.models.base import RowScores, per_channel_row_scores
from esa_lightning.models.gru_ae.alarms import row_alarm
from esa_lightning.models.raised_by import FORCED, FROZEN, GAP_CLOSE, SCORE, rule_flags, rule_names
from esa_lightning.models.rolling_gbdt.alarms import GapClosingF05
from esa_lightning.postprocessing.gaps import close_gaps
from esa_lightning.reporting.outputs import INTERVAL_COLUMNS, alarm_intervals, write_intervals
from esa_lightning.runtime.chunks import score_in_chunks
from esa_lightning.runtime.combiner_parts import any_raised_by
from tests.helpers import RawErrorScorer, counter_mission, make_mission

N = 200
WINDOW_ALARM = [(20, 30), (34, 40), (120, 125)]  # the gap 30-34 closes (width 5)
STUCK = (150, 170)
GRID = SimpleNamespace(values=np.zeros(N))  # what row_alarm reads of the mission


def _gru_like(width: int, stuck: np.ndarray | None) -> SimpleNamespace:
    """What ``row_alarm`` reads of a GRU: window values as row values (window 1), a gap rule
    closing gaps up to ``width`` rows and a stuck-channel rule alarming ``stuck`` [T, C]."""
    return SimpleNamespace(
        window_to_rows=lambda values, n: np.asarray(values)[:n],
        gap_rule=SimpleNamespace(apply=lambda a: close_gaps(a, width).astype(np.uint8)),
        frozen_rule=None if stuck is None else SimpleNamespace(alarms=lambda m, s: stuck),
    )


def _window_alarms() -> np.ndarray:
    alarm_w = np.zeros(N, dtype=bool)
    for a, b in WINDOW_ALARM:
        alarm_w[a:b] = True
    return alarm_w


def test_the_gru_rows_name_the_threshold_the_gap_closing_and_the_stuck_channel():
    stuck = np.zeros((N, 2), dtype=bool)
    stuck[STUCK[0] : STUCK[1], 1] = True
    stuck[22:25, 0] = True  # stuck where the score alarms too: both rules raised those rows
    alarm_w = _window_alarms()
    alarm, _, raised = row_alarm(_gru_like(5, stuck), GRID, 0, alarm_w, 0)
    # the alarms are those of the threshold, its gaps closed and the stuck rows
    want = close_gaps(alarm_w, 5).astype(np.uint8) | stuck.any(axis=1)
    np.testing.assert_array_equal(alarm, want)
    assert raised.dtype == np.uint8 and ((raised != 0) == (alarm != 0)).all()
    assert raised[20] == SCORE and raised[23] == SCORE | FROZEN
    assert (raised[30:34] == GAP_CLOSE).all() and raised[36] == SCORE
    assert (raised[STUCK[0] : STUCK[1]] == FROZEN).all()


def test_without_gap_closing_or_stuck_rule_every_gru_alarm_is_the_score():
    model = _gru_like(0, None)
    model.gap_rule = None
    alarm, stuck, raised = row_alarm(model, GRID, 0, _window_alarms(), 0)
    assert stuck is None
    np.testing.assert_array_equal(raised, alarm * SCORE)


def test_interval_names_join_their_rows_rules_in_a_fixed_order():
    assert rule_names(np.array([0, FROZEN, SCORE, GAP_CLOSE], np.uint8)) == (
        "score;gap_close;frozen")
    assert rule_names(np.array([FORCED], np.uint8)) == "forced"
    assert rule_names(None) == "" and rule_names(np.array([], np.uint8)) == ""
    flags = rule_flags(np.array([1, 0, 0]), closed=np.array([1, 1, 0]),
                       stuck=np.array([[0, 0], [0, 1], [1, 0]]))
    np.testing.assert_array_equal(flags, [SCORE, GAP_CLOSE | FROZEN, FROZEN])


def test_rolling_gbdt_flags_its_threshold_and_its_closed_gaps():
    rule = GapClosingF05()
    rule.threshold.fill_(0.5)
    rule.width.fill_(5)
    prob = np.zeros(N)
    prob[[20, 21, 22, 26, 27, 90]] = 0.9
    alarm = rule.alarms(prob)
    raised = rule.raised_by(prob, alarm)
    assert ((raised != 0) == (alarm != 0)).all()
    assert (raised[23:26] == GAP_CLOSE).all() and raised[20] == raised[90] == SCORE


def test_the_combiner_of_component_alarms_joins_their_rules():
    a = RowScores(np.zeros(3), np.array([1, 0, 1], np.uint8),
                  raised_by=np.array([SCORE, 0, FROZEN], np.uint8))
    b = RowScores(np.zeros(3), np.array([1, 1, 0], np.uint8),
                  raised_by=np.array([GAP_CLOSE, SCORE, 0], np.uint8))
    np.testing.assert_array_equal(any_raised_by([a, b]), [SCORE | GAP_CLOSE, SCORE, FROZEN])
    assert any_raised_by([a, RowScores(np.zeros(3), np.zeros(3, np.uint8))]) is None


def test_per_channel_baselines_flag_their_threshold():
    z = torch.tensor([[0.0, 5.0], [1.0, 0.5], [4.0, 0.0]])
    rs = per_channel_row_scores(z, 3.0)
    np.testing.assert_array_equal(rs.raised_by, rs.alarm * SCORE)
    assert rs.alarm.tolist() == [1, 0, 1]


class _FlaggingScorer(RawErrorScorer):
    """``RawErrorScorer`` recording that its threshold raised its alarms."""

    def score_rows(self, mission):
        from dataclasses import replace

        rs = super().score_rows(mission)
        return replace(rs, raised_by=rs.alarm * np.uint8(SCORE))


def test_a_forced_alarm_is_named_forced_and_the_column_is_appended(tmp_path):
    """A reading float32 cannot hold alarms its row (as before) and is named ``forced``; a row
    the threshold alarmed beside it keeps ``score``; a detector that records no rules (a
    stand-in scorer) leaves the column empty. ``raised_by`` comes after the earlier columns."""
    mission = counter_mission("target_b")
    part = mission.test()
    part.unrepresentable = np.zeros(len(part.values), np.uint8)
    part.unrepresentable[[50, 119]] = 1  # alone, and at the edge of the spike's alarm
    flagged = score_in_chunks(_FlaggingScorer(mission, "target_b"), part, 64)
    plain = score_in_chunks(RawErrorScorer(mission, "target_b"), part, 64)
    np.testing.assert_array_equal(flagged.alarm, plain.alarm)
    assert flagged.alarm[50] and flagged.raised_by[50] == FORCED
    stamps = np.asarray(part.timestamps)
    intervals = alarm_intervals(stamps, flagged, part)
    assert intervals["raised_by"].tolist() == ["forced", "score;forced"]
    assert alarm_intervals(stamps, plain, part)["raised_by"].tolist() == ["", ""]
    assert INTERVAL_COLUMNS[-1] == "raised_by" and INTERVAL_COLUMNS[:11] == [
        "start", "end", "channels", "score", "top_channels", "confidence", "threshold", "gate",
        "gate_probability", "series", "deviating_channels"]
    write_intervals(intervals, tmp_path / "intervals.csv")
    written = pd.read_csv(tmp_path / "intervals.csv", keep_default_na=False)
    assert list(written.columns) == INTERVAL_COLUMNS
    assert written["raised_by"].tolist() == ["forced", "score;forced"]


def test_whole_and_chunked_scoring_flag_the_same_rows():
    mission = make_mission(600, 2, anomalies=((300, 330),), val_start=200, test_start=400)
    scorer = _FlaggingScorer(mission, "channel_1", threshold=4.0)
    whole = scorer.score_rows(mission)
    chunked = score_in_chunks(scorer, mission, 97)
    assert whole.alarm.any()
    np.testing.assert_array_equal(chunked.raised_by, whole.raised_by)


def test_a_row_the_detector_and_an_unrepresentable_reading_both_alarm_names_both():
    """``forced`` is added to the rules that raised a row, never put in their place: a row the
    detector's threshold alarmed whose reading float32 cannot hold reads ``score;forced`` (both
    raised it; the detector alarms it without the forcing too), a lone forced row ``forced``,
    and the forcing adds the lone row's alarm only (docs/report.md, ``raised_by``)."""
    from esa_lightning.runtime.chunks import force_unrepresentable_alarms

    part = make_mission(60, 2, anomalies=(), val_start=0, test_start=0)
    alarm = np.zeros(60, np.uint8)
    alarm[10:15] = 1
    rs = RowScores(np.zeros(60, np.float32), alarm, raised_by=alarm * np.uint8(SCORE))
    unrepresentable = np.zeros(60, np.uint8)
    unrepresentable[[12, 40]] = 1
    forced = force_unrepresentable_alarms(rs, unrepresentable)
    np.testing.assert_array_equal(forced.alarm, alarm | unrepresentable)
    assert forced.raised_by[12] == SCORE | FORCED and forced.raised_by[40] == FORCED
    assert (forced.raised_by[[10, 11, 13, 14]] == SCORE).all()
    names = alarm_intervals(np.asarray(part.timestamps), forced, part)["raised_by"].tolist()
    assert names == ["score;forced", "forced"]


def test_the_provisional_percentile_alarm_is_named_score_and_keeps_the_other_outputs():
    """Monitoring's provisional alarm (``callbacks.provisional_alarm``: the validation scores'
    percentile while the model's own threshold is unfitted) is a threshold on the score: its
    rows and intervals say ``score``, as every other detector's threshold does, and it keeps
    what the scores carried (the gate's probability)."""
    from esa_lightning.callbacks import provisional_alarm

    score = np.zeros(N, dtype=np.float32)
    score[40:45] = 5.0
    gate = np.full(N, np.nan, dtype=np.float32)
    gate[40:45] = 0.7
    unfitted = RowScores(score, np.zeros(N, dtype=np.uint8), gate_probability=gate,
                         raised_by=np.zeros(N, dtype=np.uint8))
    rs = provisional_alarm(unfitted, 90.0)
    assert rs.alarm[40:45].all() and rs.alarm.sum() == 5
    assert rs.raised_by is not None
    np.testing.assert_array_equal(rs.raised_by, rs.alarm * np.uint8(SCORE))
    assert rs.threshold is not None and (rs.threshold < 5.0).all() and (rs.threshold >= 0).all()
    np.testing.assert_array_equal(rs.gate_probability, gate)
    ts = pd.date_range("2020-01-01", periods=N, freq="min").values
    intervals = alarm_intervals(ts, rs, make_mission(N, 2, anomalies=(), val_start=0, test_start=0))
    assert list(intervals["raised_by"]) == ["score"]
    assert intervals["threshold"].notna().all()
