"""The ``gap_close`` post rule: its settings, the width it chooses on the fit range, how it
scores a model's alarms and applies the width."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from esa_lightning.data.mission import Mission, default_channel_table
from esa_lightning.errors import ESAInputError
from esa_lightning.models.base import RowScores
from esa_lightning.models.gru_ae.model import LitGRUAttentionAE
from esa_lightning.postprocessing.gaps import GapClose, close_gaps
from esa_lightning.postprocessing.thresholds import event_f05
from esa_lightning.runtime.chunks import force_unrepresentable_alarms
from esa_lightning.runtime.evaluation import ScoredRange, concatenate_series, report_for
from tests.helpers import toy_mission, with_events

PERCENTILE = {"kind": "percentile", "q": 99}


def test_close_gaps_fills_only_short_gaps_between_alarms():
    alarm = np.array([0, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0], dtype=bool)
    np.testing.assert_array_equal(close_gaps(alarm, 0), alarm)
    np.testing.assert_array_equal(
        close_gaps(alarm, 3).astype(int), [0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0]
    )
    np.testing.assert_array_equal(
        close_gaps(alarm, 5).astype(int), [0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0]
    )
    # two series laid end to end, the second from row 6: no gap closed across them
    np.testing.assert_array_equal(
        close_gaps(alarm, 5, starts=np.array([0, 6])).astype(int),
        [0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0],
    )


def gru(**rules) -> LitGRUAttentionAE:
    return LitGRUAttentionAE(
        n_inputs=2, n_outputs=1, window=4, post_processing={"threshold": PERCENTILE, **rules}
    )


@pytest.mark.parametrize(
    ("settings", "key", "value"),
    [
        ({"widths": 5}, "widths", 5),
        ({"widths": []}, "widths", []),
        ({"widths": [0, -5]}, "widths", [0, -5]),
        ({"widths": [0, 2.5]}, "widths", [0, 2.5]),
        ({"widths": [True]}, "widths", [True]),
        ({"tolerance": -0.1}, "tolerance", -0.1),
        ({"tolerance": float("nan")}, "tolerance", float("nan")),
        ({"tolerance": "small"}, "tolerance", "small"),
        ({"tolerance": True}, "tolerance", True),
        ({"chunk_rows": -1}, "chunk_rows", -1),
        ({"chunk_rows": 1.5}, "chunk_rows", 1.5),
    ],
)
def test_a_bad_setting_is_one_error_naming_the_rule_key(settings, key, value):
    with pytest.raises(ESAInputError) as caught:
        gru(closing={"kind": "gap_close", **settings})
    assert caught.value.column == f"model.post_processing.closing.{key}"
    assert "\n" not in str(caught.value)
    assert caught.value.value == value or value != value  # NaN is not equal to itself


def test_an_unknown_setting_is_refused_naming_the_rule():
    with pytest.raises(ESAInputError, match="bad settings for gap_close") as caught:
        gru(gap_close={"kind": "gap_close", "width": 5})
    assert caught.value.column == "model.post_processing.gap_close"


def test_a_second_gap_close_rule_is_refused_naming_both_keys():
    # each would be fitted on the alarms the other closed
    with pytest.raises(ESAInputError) as caught:
        gru(gap_close={"kind": "gap_close"}, closing={"kind": "gap_close", "widths": [0, 5]})
    message = str(caught.value)
    assert "model.post_processing.gap_close" in message
    assert "model.post_processing.closing" in message and "\n" not in message
    gru(gap_close={"kind": "gap_close"}, closing=None)  # one listed, the other switched off


@pytest.mark.parametrize("kind", ["channel_norm", "random_forest"])
def test_a_second_error_scale_or_gate_is_refused_naming_both_keys(kind):
    # the model reads the first one only: the second would be fitted and never used
    with pytest.raises(ESAInputError) as caught:
        gru(first={"kind": kind}, second={"kind": kind})
    message = str(caught.value)
    assert "model.post_processing.first" in message
    assert "model.post_processing.second" in message and "\n" not in message


def test_the_rule_comes_after_the_threshold_and_the_gate_whatever_the_mapping_order():
    model = LitGRUAttentionAE(n_inputs=2, n_outputs=1, window=4, post_processing={
        "gap_close": {"kind": "gap_close"}, "rf_gate": {"kind": "random_forest"},
        "threshold": PERCENTILE})
    assert list(model.post_rules) == ["threshold", "rf_gate", "gap_close"]
    assert model.configure_callbacks()[-1] is model.post_rules["gap_close"]
    rule = model.gap_rule
    assert rule.widths == [0, 5, 25, 100, 400] and rule.tolerance == 0.005
    assert int(rule.width) == -1 and not rule.is_fitted and not model.is_calibrated
    # before fitting: the widest width's context, nothing closed
    without = gru()
    assert model.context_rows == without.context_rows + 400
    np.testing.assert_array_equal(rule.apply(np.array([1, 0, 1], np.uint8)), [1, 0, 1])
    rule.width.fill_(3)
    assert model.context_rows == without.context_rows + 3
    np.testing.assert_array_equal(rule.apply(np.array([1, 0, 1], np.uint8)), [1, 1, 1])


# ------------------------------------------------------------------------ the width choice
def mission_with(events: list[tuple[int, int]], n: int = 1000, test_start: int = 900,
                 name: str = "toy", day: int = 0) -> Mission:
    """One channel of ``n`` rows on a 30 s grid from ``day`` days on, labeled on the rows of
    ``events`` (first, last); validation from two thirds of the rows before the test range."""
    labels = np.zeros((n, 1), np.uint8)
    for a, b in events:
        labels[a : b + 1] = 1
    m = toy_mission(np.zeros((n, 1), np.float32), labels, val_start=test_start * 2 // 3,
                    test_start=test_start, name=name)
    m.timestamps = m.timestamps + np.timedelta64(day, "D")
    return with_events(m)


def rows(n: int, *runs: tuple[int, int]) -> np.ndarray:
    """uint8 [n] alarms on the rows of ``runs`` (first, last)."""
    out = np.zeros(n, np.uint8)
    for a, b in runs:
        out[a : b + 1] = 1
    return out


class FixedAlarms:
    """A model whose row alarms without gap closing are ``alarms`` (full-length, by series
    name, a single grid's under None); it records the rule's width while it scores."""

    def __init__(self, rule: GapClose, alarms: dict[str | None, np.ndarray]) -> None:
        self.rule, self.alarms, self.widths_seen = rule, alarms, []

    def provisional_alarm(self, grid: Mission, chunk_rows: int = 0) -> np.ndarray:
        self.widths_seen.append(int(self.rule.width))
        return self.alarms.get(grid.name, self.alarms.get(None))[: len(grid.values)]


def fit(rule: GapClose, mission: Mission, alarms: dict[str | None, np.ndarray]) -> FixedAlarms:
    model = FixedAlarms(rule, alarms)
    rule.fit(model, SimpleNamespace(mission=mission))
    return model


def test_the_widest_width_within_the_tolerance_of_the_best_is_chosen(caplog):
    m = mission_with([(100, 110)])
    # a gap inside the event, and two false alarms three rows apart: closing 5 merges them
    alarm = rows(1000, (100, 102), (106, 110), (300, 300), (303, 303))
    rule = GapClose(widths=[0, 5, 25], tolerance=0.0)
    rule.width.fill_(400)  # a refit: the alarms are scored with the rule unfitted
    with caplog.at_level(logging.INFO, logger="esa_lightning"):
        model = fit(rule, m, {None: alarm})
    assert model.widths_seen == [-1]  # once, with the rule unfitted
    fit_range = m.fit_range()
    f = {w: event_f05(close_gaps(alarm[:900], w), fit_range) for w in (0, 5, 25)}
    assert f[5] > f[0] and f[25] == f[5]  # 25 closes nothing more: tied with 5
    assert int(rule.width) == 25 and rule.is_fitted and rule.context_rows == 25
    (line,) = [r.getMessage() for r in caplog.records if "gap_close" in r.getMessage()]
    assert "width 25" in line and f"5: {f[5]:.4f}" in line and f"0: {f[0]:.4f}" in line


def test_a_width_that_costs_on_the_fit_range_loses_unless_the_tolerance_covers_it():
    # two events 19 nominal rows apart: closing 25 alarms those rows, a gap of 2 inside the
    # first event costs nothing
    m = mission_with([(100, 110), (130, 140)])
    alarm = rows(1000, (100, 102), (105, 110), (130, 140))
    fit_range = m.fit_range()
    f = {w: event_f05(close_gaps(alarm[:900], w), fit_range) for w in (0, 5, 25)}
    assert f[5] == f[0] and f[25] < f[5]
    cost = f[5] - f[25]
    chosen = {}
    for tolerance in (0.0, cost / 2, 2 * cost):
        rule = GapClose(widths=[0, 5, 25], tolerance=tolerance)
        fit(rule, m, {None: alarm})
        chosen[tolerance] = int(rule.width)
    assert chosen == {0.0: 5, cost / 2: 5, 2 * cost: 25}


def test_without_a_labeled_event_in_the_fit_range_no_gap_is_closed(caplog):
    m = mission_with([(950, 960)])  # the only event is in the test range
    rule = GapClose()
    with caplog.at_level(logging.WARNING, logger="esa_lightning"):
        fit(rule, m, {None: rows(1000, (100, 102), (105, 110))})
    assert int(rule.width) == 0 and rule.is_fitted and rule.context_rows == 0
    assert any("no labeled event" in r.getMessage() for r in caplog.records)


def two_series() -> Mission:
    # on other days, as the recordings of other channels are
    a = mission_with([(50, 60), (150, 165)], n=400, test_start=300, name="A", day=100)
    b = mission_with([(100, 110)], n=350, test_start=250, name="B", day=200)
    events = pd.concat([a.events, b.events], ignore_index=True)
    return Mission("two", {"A": a.values, "B": b.values}, None,
                   default_channel_table(["A", "B"]), None, events, series={"A": a, "B": b})


#: alarms of ``two_series``, each series' row alarms by name, around the end of A's fit range
#: (row 299) and the start of B's: A's last row and B's first alarmed (one run, if it ran on from
#: one series into the next, would be one false alarm less), or 4 rows apart (a gap closed
#: across the two series would alarm them)
JUNCTIONS = {
    "adjacent": ((290, 291), (299, 299), (0, 0), (5, 6)),
    "gap": ((290, 291), (296, 296), (1, 1), (5, 6)),
}


@pytest.mark.parametrize("junction", sorted(JUNCTIONS))
def test_series_are_closed_apart_and_scored_pooled_as_the_evaluation_scores_them(junction):
    m = two_series()
    a_end, a_last, b_first, b_next = JUNCTIONS[junction]
    alarms = {"A": rows(400, (50, 52), (56, 60), (80, 80), (83, 83), (150, 165), a_end, a_last),
              "B": rows(350, b_first, b_next, (100, 110), (200, 200), (209, 209))}
    fit_range = m.fit_range()
    rule = GapClose(widths=[0, 5, 25, 400])
    f = rule.fit_alarms(fit_range, [(g, alarms[n][: len(g.values)])
                                    for n, g in fit_range.grids().items()])
    # every width's F0.5 is the validation EW_F_0.50 that runtime.evaluation reports for the
    # same alarms closed series by series
    for width, value in f.items():
        pieces = [(n, g, RowScores(score=np.zeros(len(g.values), np.float32),
                                   alarm=close_gaps(alarms[n][: len(g.values)], width)))
                  for n, g in fit_range.grids().items()]
        reported = report_for(concatenate_series(fit_range, pieces), "val")
        assert value == pytest.approx(reported["val/EW_F_0.50"], abs=1e-12)
    assert len(set(f.values())) > 1
    # and fit() hands the rule the same alarms, series by series
    again = GapClose(widths=[0, 5, 25, 400])
    fit(again, m, alarms)
    assert int(again.width) == int(rule.width)


def test_a_single_grid_is_scored_as_the_evaluation_scores_it():
    m = mission_with([(100, 110), (130, 140)])
    alarm = rows(1000, (100, 102), (105, 110), (130, 140), (400, 400), (410, 410))
    fit_range = m.fit_range()
    f = GapClose(widths=[0, 5, 25]).fit_alarms(fit_range, [(fit_range, alarm[:900])])
    for width, value in f.items():
        rs = RowScores(score=np.zeros(900, np.float32), alarm=close_gaps(alarm[:900], width))
        scored = ScoredRange(fit_range, rs, np.asarray(fit_range.timestamps), fit_range.events)
        assert value == pytest.approx(report_for(scored, "val")["val/EW_F_0.50"], abs=1e-12)


def test_the_fit_scores_the_alarms_an_unrepresentable_reading_forces():
    """The evaluation alarms every row of a reading float32 cannot hold (a 1e39 in a float64
    source) on top of the model's closed alarms; the fit must score those alarms too. Two
    events 19 nominal rows apart, fully alarmed: without the reading no gap needs closing and
    25 costs; with one between them, width 25 turns its lone false alarm into the alarm
    covering both events."""
    m = mission_with([(100, 110), (130, 140)])
    m.unrepresentable = np.zeros(1000, np.uint8)
    m.unrepresentable[120] = 1
    alarm = rows(1000, (100, 110), (130, 140))
    rule = GapClose(widths=[0, 5, 25], tolerance=0.0)
    fit(rule, m, {None: alarm})
    fit_range = m.fit_range()
    reported = {}
    for width in rule.widths:
        rs = RowScores(score=np.zeros(900, np.float32), alarm=close_gaps(alarm[:900], width))
        rs = force_unrepresentable_alarms(rs, fit_range.unrepresentable)
        scored = ScoredRange(fit_range, rs, np.asarray(fit_range.timestamps), fit_range.events)
        reported[width] = report_for(scored, "val")["val/EW_F_0.50"]
    assert reported[25] > reported[5] == reported[0]  # the forced alarm decides
    assert int(rule.width) == 25
    f = rule.fit_alarms(fit_range, [(fit_range, alarm[:900])])
    assert f == pytest.approx(reported, abs=1e-12)
