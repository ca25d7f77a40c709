"""esa_full's combiner names the components' rules (``raised_by``) where their alarms are what
raised its own, without changing which rows alarm."""

from __future__ import annotations

import tracemalloc

import numpy as np

from esa_lightning.models.base import RowScores
from esa_lightning.models.raised_by import FROZEN, GAP_CLOSE, SCORE
from esa_lightning.reporting.outputs import alarm_intervals
from esa_lightning.runtime.combiner import HybridCombiner
from esa_lightning.runtime.combiner_parts import RANK_QUANTILES, log_odds, weights_raised_by
from tests.helpers import FixedScores, make_mission

N = 300
SPIKE = (40, 46)  # the GRU's score alarms: high enough for the scores alone
STUCK = (100, 130)  # its stuck-channel rule alarms, its score nominal
CLOSED = (200, 204)  # its gap-closing rule alarms between two score alarms
EDGES = ((196, 200), (204, 208))
QUIET_ALARM = (250, 260)  # the second component alarms by its threshold, score nominal


def _components() -> dict[str, FixedScores]:
    score, alarm, raised = np.zeros(N, np.float32), np.zeros(N, np.uint8), np.zeros(N, np.uint8)
    score[SPIKE[0] : SPIKE[1]] = 5.0
    for (a, b), flag in ((SPIKE, SCORE), (STUCK, FROZEN), (CLOSED, GAP_CLOSE), *(
            (edge, SCORE) for edge in EDGES)):
        alarm[a:b], raised[a:b] = 1, flag
    gru = RowScores(score, alarm, raised_by=raised)
    other_alarm = np.zeros(N, np.uint8)
    other_alarm[QUIET_ALARM[0] : QUIET_ALARM[1]] = 1
    other = RowScores(np.zeros(N, np.float32), other_alarm, raised_by=other_alarm * SCORE)
    return {"gru_ae": FixedScores(gru, N), "channel_ensemble": FixedScores(other, N)}


def _weights_combiner(ensemble_alarm_weight: float) -> HybridCombiner:
    """Weights as a fit could leave them: each component's score (first column) and own alarm
    (last) raise the log-odds; a score of 5 crosses the threshold alone, an alarm of the GRU
    alone too, the ensemble's alarm with ``ensemble_alarm_weight``."""
    comb = HybridCombiner(neighbourhood=0, alarm_feature=True)
    comb.names, comb.alarm_names, comb.rule = ["gru_ae", "channel_ensemble"], [], "weights"
    width = comb.features_per_component
    comb.mean, comb.std = np.zeros(2 * width), np.ones(2 * width)
    comb.coef = np.zeros(2 * width)
    comb.coef[[0, width - 1, 2 * width - 1]] = 1.0, 2.0, ensemble_alarm_weight
    comb.intercept, comb.threshold = -1.5, 0.0
    return comb


def test_weights_reading_the_components_alarms_name_the_rules_that_raised_them():
    """With ``alarm_feature`` a row only a component's alarm lifted over the threshold names
    that alarm's rules (``frozen``, ``gap_close``), where it read ``score`` before; rows the
    scores alone alarm stay ``score``, and which rows alarm is what the log-odds decide."""
    comb, components = _weights_combiner(2.0), _components()
    test = make_mission(N, 2, anomalies=(), val_start=0, test_start=0)
    rs = comb.score_rows(components, test)
    gru = components["gru_ae"].rs
    want_alarm = (gru.alarm != 0) | (components["channel_ensemble"].rs.alarm != 0)
    np.testing.assert_array_equal(rs.alarm != 0, want_alarm)
    assert ((rs.raised_by != 0) == (rs.alarm != 0)).all()
    assert (rs.raised_by[SPIKE[0] : SPIKE[1]] == SCORE).all()  # the scores alone: 5 - 1.5 > 0
    assert (rs.raised_by[STUCK[0] : STUCK[1]] == FROZEN).all()
    assert (rs.raised_by[CLOSED[0] : CLOSED[1]] == GAP_CLOSE).all()
    assert (rs.raised_by[QUIET_ALARM[0] : QUIET_ALARM[1]] == SCORE).all()  # its own threshold
    names = alarm_intervals(np.asarray(test.timestamps), rs, test)["raised_by"].tolist()
    assert names == ["score", "frozen", "score;gap_close", "score"]


def test_a_component_alarm_with_no_positive_weight_feeds_no_alarm():
    """An alarm whose weight lowers the log-odds raises nothing: the GRU's frozen rows alarm
    by its own alarm's weight and name only its rule, not the ensemble's."""
    comb, components = _weights_combiner(-0.1), _components()
    ensemble = components["channel_ensemble"].rs
    ensemble.alarm[STUCK[0] : STUCK[0] + 5] = 1
    ensemble.raised_by[STUCK[0] : STUCK[0] + 5] = GAP_CLOSE
    test = make_mission(N, 2, anomalies=(), val_start=0, test_start=0)
    rs = comb.score_rows(components, test)
    assert not rs.alarm[QUIET_ALARM[0] : QUIET_ALARM[1]].any()  # -1.5 - 0.1 < 0
    assert (rs.raised_by[STUCK[0] : STUCK[1]] == FROZEN).all()


def test_weights_without_the_alarm_feature_read_no_component_rule():
    """Without ``alarm_feature`` the weights read the scores only: every alarm of theirs is
    their own decision, ``score`` (the GRU's frozen rows, scored nominal, do not alarm)."""
    comb, components = _weights_combiner(2.0), _components()
    comb.alarm_feature = False
    width = comb.features_per_component
    comb.mean, comb.std = np.zeros(2 * width), np.ones(2 * width)
    comb.coef = np.zeros(2 * width)
    comb.coef[0] = 1.0
    rs = comb.score_rows(components, make_mission(N, 2, anomalies=(), val_start=0, test_start=0))
    assert rs.alarm[SPIKE[0] : SPIKE[1]].all() and not rs.alarm[STUCK[0] : STUCK[1]].any()
    np.testing.assert_array_equal(rs.raised_by, rs.alarm * SCORE)


def test_esa_full_default_rule_names_the_label_free_components_rules():
    """esa_full's default rule (``label_free_alarm``: the GRU's own alarms) names the GRU's
    rules row by row: its stuck-channel and closed-gap rows read ``frozen`` and ``gap_close``."""
    comb, components = _weights_combiner(2.0), _components()
    comb.rule, comb.alarm_names = "any_alarm", ["gru_ae"]
    comb.quantiles = np.tile(np.linspace(0.0, 1.0, RANK_QUANTILES), (2, 1))
    rs = comb.score_rows(components, make_mission(N, 2, anomalies=(), val_start=0, test_start=0))
    gru = components["gru_ae"].rs
    np.testing.assert_array_equal(rs.alarm, gru.alarm)
    np.testing.assert_array_equal(rs.raised_by, gru.raised_by)


def _silenced_log_odds(x, mean, std, coef, intercept, columns):
    """The log-odds of ``x`` with ``columns`` set to 0 on a copy (``weights_raised_by``'s
    "as though no component alarmed" before it stopped copying the features)."""
    silent = np.array(x, copy=True)
    silent[:, columns] = 0.0
    return ((silent - mean) / std) @ coef + intercept


def test_log_odds_of_silenced_columns_are_those_of_a_zeroed_copy_bit_for_bit():
    """``log_odds(..., silent=columns)`` reads those columns as 0 without copying or changing
    ``x``: the very float64 numbers of zeroing them on a copy, for float32 and float64
    features and weights, whatever the silenced columns held (NaN, inf included)."""
    rng = np.random.default_rng(0)
    columns = np.array([5, 11])
    for x_type in (np.float32, np.float64):
        for w_type in (np.float32, np.float64):
            x = rng.normal(size=(500, 12)).astype(x_type)
            x[:, columns] = rng.integers(0, 2, size=(500, 2))
            x[0, 5], x[1, 11], x[2, 3] = np.nan, np.inf, -np.inf
            before = x.copy()
            mean, std = x[3:].mean(0).astype(w_type), (x[3:].std(0) + 1e-6).astype(w_type)
            coef, intercept = rng.normal(size=12), -0.7
            got = log_odds(x, mean, std, coef, intercept, silent=columns)
            want = _silenced_log_odds(x, mean, std, coef, intercept, columns)
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes()
            plain = log_odds(x, mean, std, coef, intercept)
            assert plain.tobytes() == (((x - mean) / std) @ coef + intercept).tobytes()
            assert x.tobytes() == before.tobytes()  # x read, not written


def test_weights_raised_by_holds_no_copy_of_the_features():
    """The rows the scores alone raise are told without a copy of the features ``x`` [T, F]
    (float32, a test range's rows x the components' columns) under float64 weights (as
    ``combiner.json`` loads them): one float64 standardised copy of them is held (2 x the
    features' bytes), not that beside a copy and a second standardised one (5 x), and ``x``
    is left as it was."""
    rng = np.random.default_rng(1)
    t, f = 200_000, 12
    x = rng.random((t, f), dtype=np.float32)
    x[:, [5, 11]] = rng.integers(0, 2, size=(t, 2))
    before = x.copy()
    weights = (x.mean(0, dtype=np.float64), x.std(0, dtype=np.float64) + 1e-6,
               rng.normal(size=f), 0.1)
    logit = log_odds(x, *weights)
    decided = logit > 0.0
    outputs = [RowScores(np.zeros(t, np.float32), x[:, c].astype(np.uint8)) for c in (5, 11)]
    tracemalloc.start()
    try:
        flags = weights_raised_by(decided, x, outputs, weights, 0.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * x.nbytes  # not a copy of x beside its standardised values
    assert x.tobytes() == before.tobytes()
    alone = _silenced_log_odds(x, *weights, np.array([5, 11])) > 0.0
    assert (flags[decided & alone] == SCORE).all()  # the scores alone raise these
    assert ((flags != 0) == decided).all()
