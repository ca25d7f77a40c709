"""esa_full's combiner names the stuck channel(s) alone on a row only a component's
stuck-channel rule raised, as its GRU and channel ensemble do; the union with its own top
channels where another rule raised the row too. Which rows alarm does not change."""

from __future__ import annotations

import numpy as np

from esa_lightning.models.base import RowScores
from esa_lightning.models.raised_by import FROZEN, SCORE
from esa_lightning.runtime.combiner import HybridCombiner
from esa_lightning.runtime.combiner_parts import RANK_QUANTILES
from tests.helpers import FixedScores, make_mission

N, C = 200, 3
SPIKE = (20, 30)  # the GRU's threshold alarms
STUCK = (60, 90)  # only its stuck-channel rule alarms: channel 2 stuck
BOTH = (120, 130)  # both: its threshold alarms where channel 2 is stuck


def _components() -> dict[str, FixedScores]:
    # channel 0 scores highest on every row, channel 2 (the stuck one) lowest, in both
    channel = np.tile(np.array([3.0, 2.0, 1.0], np.float32), (N, 1))
    alarm, raised = np.zeros(N, np.uint8), np.zeros(N, np.uint8)
    stuck = np.zeros((N, C), bool)
    for (a, b), flag in ((SPIKE, SCORE), (STUCK, FROZEN), (BOTH, SCORE | FROZEN)):
        alarm[a:b], raised[a:b] = 1, flag
    stuck[STUCK[0] : STUCK[1], 2] = stuck[BOTH[0] : BOTH[1], 2] = True
    score = np.where(raised & SCORE, 5.0, 0.0).astype(np.float32)  # stuck rows score nominal
    gru = RowScores(score, alarm, channel_scores=channel, raised_by=raised, stuck_channels=stuck)
    other = RowScores(np.zeros(N, np.float32), np.zeros(N, np.uint8), channel_scores=channel,
                      raised_by=np.zeros(N, np.uint8))
    return {"gru_ae": FixedScores(gru, N), "channel_ensemble": FixedScores(other, N)}


def _named(comb: HybridCombiner) -> tuple[RowScores, RowScores]:
    components = _components()
    test = make_mission(N, C, anomalies=(), val_start=0, test_start=0)
    return comb.score_rows(components, test), components["gru_ae"].rs


def _check(rs: RowScores, gru: RowScores) -> None:
    named = rs.channel_alarm.astype(bool)
    only_stuck, both = gru.raised_by == FROZEN, gru.raised_by == SCORE | FROZEN
    np.testing.assert_array_equal(named[only_stuck], gru.stuck_channels[only_stuck])
    want_both = np.zeros((both.sum(), C), bool)
    want_both[:, [0, 2]] = True  # its top channel and the stuck one
    np.testing.assert_array_equal(named[both], want_both)
    spike = gru.raised_by == SCORE
    assert named[spike][:, 0].all() and named[spike].sum() == spike.sum()
    assert not named[rs.alarm == 0].any()


def test_default_rule_names_the_stuck_channel_alone_where_only_the_stuck_rule_alarmed():
    """The default rule (``label_free_alarm``: the GRU's alarms): a ``frozen``-only row named
    the combiner's top channel (channel 0, not stuck) instead of the stuck channel 2."""
    comb = HybridCombiner(neighbourhood=0, top_channels=1)
    comb.names, comb.alarm_names, comb.rule = ["gru_ae", "channel_ensemble"], ["gru_ae"], (
        "any_alarm")
    comb.quantiles = np.tile(np.linspace(0.0, 1.0, RANK_QUANTILES), (2, 1))
    rs, gru = _named(comb)
    np.testing.assert_array_equal(rs.alarm, gru.alarm)
    np.testing.assert_array_equal(rs.raised_by, gru.raised_by)
    _check(rs, gru)


def test_weights_reading_the_alarms_name_the_stuck_channel_alone_where_it_lifted_the_row():
    """With ``alarm_feature`` the GRU's stuck-only rows are raised by its alarm (``frozen``)
    and name the stuck channel alone; rows its score lifts alone read ``score``, top channel."""
    comb = HybridCombiner(neighbourhood=0, alarm_feature=True, top_channels=1)
    comb.names, comb.alarm_names, comb.rule = ["gru_ae", "channel_ensemble"], [], "weights"
    width = comb.features_per_component
    comb.mean, comb.std, comb.coef = np.zeros(2 * width), np.ones(2 * width), np.zeros(2 * width)
    comb.coef[[0, width - 1]] = 1.0, 2.0
    comb.intercept, comb.threshold = -1.5, 0.0
    rs, gru = _named(comb)
    np.testing.assert_array_equal(rs.alarm, gru.alarm)
    only_stuck = gru.raised_by == FROZEN
    assert (rs.raised_by[only_stuck] == FROZEN).all()
    named = rs.channel_alarm.astype(bool)
    np.testing.assert_array_equal(named[only_stuck], gru.stuck_channels[only_stuck])
    scored = rs.raised_by == SCORE  # SPIKE and BOTH: the scores alone cross, no frozen flag
    assert named[scored][:, 0].all() and named[scored].sum() == scored.sum()


def test_weights_name_no_stuck_channel_of_a_component_whose_alarm_weighs_against():
    """With ``alarm_feature`` a ``frozen`` row names the stuck channels of the components whose
    alarm has a positive weight only (those ``raised_by`` reads): the channel ensemble's alarm
    weighs against here, so its stuck channel 1 is not named where the GRU's stuck channel 2
    lifted the row (it named both before)."""
    comb = HybridCombiner(neighbourhood=0, alarm_feature=True, top_channels=1)
    comb.names, comb.alarm_names, comb.rule = ["gru_ae", "channel_ensemble"], [], "weights"
    width = comb.features_per_component
    comb.mean, comb.std, comb.coef = np.zeros(2 * width), np.ones(2 * width), np.zeros(2 * width)
    comb.coef[[0, width - 1, 2 * width - 1]] = 1.0, 2.0, -0.25
    comb.intercept, comb.threshold = -1.5, 0.0
    components = _components()
    alarm, stuck = np.zeros(N, np.uint8), np.zeros((N, C), bool)
    alarm[STUCK[0] : STUCK[1]], stuck[STUCK[0] : STUCK[1], 1] = 1, True
    raised = alarm * np.uint8(FROZEN)
    other = components["channel_ensemble"].rs
    components["channel_ensemble"] = FixedScores(RowScores(
        other.score, alarm, channel_scores=other.channel_scores, raised_by=raised,
        stuck_channels=stuck), N)
    test = make_mission(N, C, anomalies=(), val_start=0, test_start=0)
    rs, gru = comb.score_rows(components, test), components["gru_ae"].rs
    only_stuck = gru.raised_by == FROZEN
    assert (rs.alarm[only_stuck] == 1).all() and (rs.raised_by[only_stuck] == FROZEN).all()
    named = rs.channel_alarm.astype(bool)
    np.testing.assert_array_equal(named[only_stuck], gru.stuck_channels[only_stuck])
    comb.coef[2 * width - 1] = 0.5  # now its alarm feeds the rows too: both stuck channels
    rs = comb.score_rows(components, test)
    named = rs.channel_alarm.astype(bool)
    assert named[only_stuck][:, [1, 2]].all() and not named[only_stuck][:, 0].any()
