"""The ``frozen`` post rule: run lengths, the limits it learns on the fit range, its settings."""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from esa_lightning.errors import ESAInputError
from esa_lightning.models.gru_ae.model import LitGRUAttentionAE
from esa_lightning.postprocessing.frozen import (
    FrozenValues,
    rows_since_sample,
    run_lengths,
    sample_spacing,
)
from tests.helpers import toy_mission


def test_run_lengths_count_the_equal_rows_before_each_row_and_restart_where_told():
    x = np.array([1, 1, 1, 2, 2, np.nan, np.nan, 3, 3, 3, 3])
    np.testing.assert_array_equal(run_lengths(x), [0, 1, 2, 0, 1, 0, 0, 0, 1, 2, 3])
    restart = np.zeros(len(x), bool)
    restart[9] = True
    np.testing.assert_array_equal(run_lengths(x, restart), [0, 1, 2, 0, 1, 0, 0, 0, 1, 0, 1])


def held_mission(n: int = 3000, test_start: int = 2400):
    """Three channels sampled every 4 rows and held between samples; channel 2 is not a target;
    channel 1 is held through a 300-row communication gap in the training range; channel 0
    never changes in the training range after row 500 (a status held for days)."""
    rng = np.random.default_rng(0)
    samples = rng.standard_normal((n // 4 + 1, 3)).astype(np.float32)
    values = np.repeat(samples, 4, axis=0)[:n]
    values[500:, 0] = 1.0
    labels = np.zeros((n, 3), np.uint8)
    values[1000:1300, 1] = values[999, 1]
    labels[1000:1300, :] = 3  # a gap: every channel held
    values[1000:1300, 2] = values[999, 2]
    m = toy_mission(values, labels, val_start=test_start * 3 // 4, test_start=test_start)
    m.channels.loc[m.channels["Channel"] == "channel_2", "Target"] = False
    return m


def test_the_limit_is_the_longest_label_free_run_with_gaps_restarted_times_the_factor():
    m = held_mission()
    assert m.target_channels == ["channel_0", "channel_1"]
    rule = FrozenValues(n_outputs=3, factor=1.5, min_run=2, max_run=1000)
    limits, quiet = rule.limits(m.fit_range())
    assert not quiet.any()  # watch: all
    # channel 0 holds one value for 1900 rows: longer than max_run, not watched
    assert limits[0] == 0
    # channel 1: samples held 4 rows (runs of 3 equal rows after the first), the gap restarted
    longest = int(run_lengths(m.fit_range().values[:, 1], m.fit_range().labels[:, 1] == 3)[
        m.fit_range().row_labels == 0].max())
    assert 3 <= longest < 20
    assert limits[1] == math.ceil(1.5 * longest)
    assert limits[2] == 0  # not a target channel
    # without the gap's restart the 300 held rows would have been learned as normal
    assert run_lengths(m.fit_range().values[:, 1]).max() >= 299


def test_min_run_floors_the_limit_and_alarms_start_past_it():
    m = held_mission()
    rule = FrozenValues(n_outputs=3, factor=1.5, min_run=10, max_run=1000)
    rule.limit[0] = rule.limit.new_tensor(rule.limits(m.fit_range())[0])
    assert int(rule.limit[0, 1]) == 15
    values = m.values.copy()
    values[2600:2700, 1] = values[2600, 1]  # stuck for 100 rows in the test range
    stuck = rule.alarms(type(m)(**{**m.__dict__, "values": values}), 0)
    rows = np.flatnonzero(stuck[:, 1])
    # the training range's gap alarms too when scored: gaps are unknown when scoring
    assert set(rows[rows < 2400]) <= set(range(1000, 1300))
    test = rows[rows >= 2400]
    assert test.min() == 2600 + 16 and test.max() == 2699
    assert not stuck[:, [0, 2]].any()
    assert rule.context_rows == 16


@pytest.mark.parametrize(("setting", "value"), [("factor", 0.5), ("factor", float("inf")),
                                                ("min_run", 0), ("min_run", 2.5),
                                                ("max_run", True), ("factor", "long"),
                                                ("watch", "some")])
def test_a_bad_setting_is_refused_naming_the_rule_key(setting, value):
    with pytest.raises(ESAInputError, match=f"model.post_processing.frozen.{setting}"):
        LitGRUAttentionAE(n_inputs=2, n_outputs=1, window=4, post_processing={
            "threshold": {"kind": "percentile", "q": 99},
            "frozen": {"kind": "frozen", setting: value}})


def test_an_unfitted_rule_alarms_nowhere_and_adds_no_context():
    model = LitGRUAttentionAE(n_inputs=2, n_outputs=1, window=4, post_processing={
        "threshold": {"kind": "percentile", "q": 99}, "frozen": {"kind": "frozen"}})
    rule = model.post_rules["frozen"]
    assert not rule.is_fitted and rule.context_rows == 0 and model.frozen_rule is None
    assert list(model.post_rules) == ["threshold", "frozen"]


def test_rows_since_sample_and_the_spacing_samples_keep():
    sent = np.array([0, 1, 0, 0, 1, 1, 0, 0, 0, 0, 1], dtype=bool)
    since = rows_since_sample(sent)
    assert since[0] > len(sent)  # before the first sample
    np.testing.assert_array_equal(since[1:], [0, 1, 2, 0, 0, 1, 2, 3, 4, 0])
    everywhere = np.ones(len(sent), dtype=bool)
    assert sample_spacing(sent, everywhere) == 5  # spacings 3, 1, 5: the 99.9 % quantile
    rows = everywhere.copy()
    rows[10] = False  # the sample ending the 5-row silence lies on a row not counted
    assert sample_spacing(sent, rows) == 3
    assert sample_spacing(np.zeros(4, dtype=bool), everywhere) == 1


def sent_every(n: int, step: int, channels: int = 3) -> np.ndarray:
    """``Mission.sent`` with every channel sending on every ``step``-th row."""
    bits = np.zeros((n, 8), dtype=bool)
    bits[::step, :channels] = True
    return np.packbits(bits, axis=1)


def fitted(rule: FrozenValues, m) -> FrozenValues:
    limits, quiet = rule.limits(m.fit_range())
    rule.limit[0] = rule.limit.new_tensor(limits)
    if rule.watch == "sending":
        rule.quiet[0] = rule.quiet.new_tensor(quiet)
    return rule


def test_watching_sending_channels_alarms_a_stuck_sensor_but_not_one_that_stopped_sending():
    """A sensor stuck on one value keeps sending it; a channel whose recording ends is held by
    the grid. Watching every row, both read as stuck (look ah); watching while channels send,
    only the first."""
    base = held_mission()
    n = len(base.values)
    values = base.values.copy()
    values[2500:2600, 1] = values[2500, 1]  # stuck for 100 rows, still sending
    values[2800:, 1] = values[2800, 1]  # the recording ends at row 2800: held to the end
    sent = sent_every(n, 4)
    sent[2801:, 0] &= np.uint8(0b10111111)  # channel 1 sends nothing after row 2800
    m = replace(base, values=values, sent=sent)
    assert m.sent_rows(1)[2796:2806].tolist() == [1, 0, 0, 0, 1, 0, 0, 0, 0, 0]
    everything = fitted(FrozenValues(n_outputs=3, min_run=10, max_run=1000), m)
    sending = fitted(FrozenValues(n_outputs=3, min_run=10, max_run=1000, watch="sending"), m)
    assert int(sending.quiet[0, 1]) == 6  # samples 4 rows apart, times the factor
    assert int(sending.quiet[0, 0]) == 0 and int(sending.quiet[0, 2]) == 0  # not watched
    assert int(sending.limit[0, 1]) == int(everything.limit[0, 1]) == 15
    held = np.flatnonzero(everything.alarms(m, 0)[2400:, 1]) + 2400
    assert held.max() == n - 1  # to the end of the range
    alarms = sending.alarms(m, 0)
    test = np.flatnonzero(alarms[2400:, 1]) + 2400
    assert test.min() == 2500 + 16 and test.max() == 2599
    assert sending.context_rows == 15 + 6 + 1
    # a chunk scored with its context alarms as the whole range does
    start = 2550
    part = sending.alarms(m.slice(start - sending.context_rows, n), 0)
    np.testing.assert_array_equal(part[sending.context_rows :], alarms[start:])


def test_watching_sending_channels_watches_none_without_a_sample_record():
    m = held_mission()
    assert m.sent is None
    rule = fitted(FrozenValues(n_outputs=3, min_run=10, max_run=1000, watch="sending"), m)
    assert not rule.limit.any() and not rule.alarms(m, 0).any()
    # fitted where samples are recorded, a mission without the record alarms nowhere
    rule = fitted(rule, replace(m, sent=sent_every(len(m.values), 4)))
    assert rule.limit[0, 1] > 0
    values = m.values.copy()
    values[2500:2700, 1] = values[2500, 1]
    assert not rule.alarms(replace(m, values=values), 0).any()


def test_a_rule_fitted_on_a_sample_record_warns_once_where_the_data_record_none(caplog):
    """A detector trained on the ESA raw layout scoring data on one grid (predict.py on a
    Kaggle parquet or an ESA CSV, the inference container): its rule watches no channel there,
    which a user is told once, not once per chunk."""
    m = held_mission()
    rule = fitted(FrozenValues(n_outputs=3, min_run=10, max_run=1000, watch="sending"),
                  replace(m, sent=sent_every(len(m.values), 4)))
    assert rule.limit[0, 1] > 0
    with caplog.at_level(logging.WARNING, logger="esa_lightning"):
        for lo in (0, 1000, 2000):  # chunks of one range
            assert not rule.alarms(m.slice(lo, lo + 1000), 0).any()
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(said) == 1
    assert m.name in said[0] and "records no samples" in said[0] and "no channel" in said[0]
    caplog.clear()
    unfitted_there = fitted(FrozenValues(n_outputs=3, watch="sending"), m)  # fitted on one grid
    with caplog.at_level(logging.WARNING, logger="esa_lightning"):
        assert not unfitted_there.alarms(m, 0).any()
    assert not caplog.records  # it watched none when fitted, as the fit's log said


@pytest.mark.parametrize("watch", ["all", "sending"])
def test_a_channel_that_never_changed_on_the_fit_range_is_not_watched(watch):
    """A status that held one value through every fit row, sending all along, shows no run the
    rule could learn a limit from: its limit would be 1.5 x the fit range, and a mission split
    in halves (as ESA Mission1) would see it alarm through the last quarter of its test range
    for keeping the value it always had. Under max_run (short missions) it was watched."""
    n, test_start = 6000, 3000
    base = held_mission(n, test_start)
    values = base.values.copy()
    values[:, 0] = 1.0  # one value from the first row to the last
    values[4000:4100, 1] = values[4000, 1]  # channel 1 stuck for 100 rows in the test range
    m = replace(base, values=values, sent=sent_every(n, 4))
    rule = fitted(FrozenValues(n_outputs=3, min_run=10, max_run=10_000, watch=watch), m)
    assert int(rule.limit[0, 0]) == 0 and int(rule.limit[0, 1]) == 15
    if watch == "sending":
        assert int(rule.quiet[0, 0]) == 0  # not watched: adds no context
    alarms = rule.alarms(m, 0)
    assert not alarms[:, 0].any()
    stuck = np.flatnonzero(alarms[test_start:, 1]) + test_start
    assert stuck.min() == 4000 + 16 and stuck.max() == 4099


def test_a_rule_that_watches_no_channel_is_named_in_the_run_summary(tmp_path, capsys, caplog):
    """``watch: sending`` fitted on data on one grid (the Kaggle layout, gru_ae's default) will
    never alarm; that was said only by an info line of the fit. It stays info (every default run
    on the Kaggle layout would warn) and the run's closing summary now names it."""
    from esa_lightning.jobs.run_logs import print_summary

    m = held_mission()
    with caplog.at_level(logging.INFO, logger="esa_lightning"):
        rule = fitted(FrozenValues(n_outputs=3, min_run=10, max_run=1000, watch="sending"), m)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "no channel watched" in caplog.text
    note = rule.summary_note()
    assert note is not None and "watches no channel" in note and "watch=all" in note
    recorded = fitted(FrozenValues(n_outputs=3, min_run=10, max_run=1000, watch="sending"),
                      replace(m, sent=sent_every(len(m.values), 4)))
    every_row = fitted(FrozenValues(n_outputs=3, min_run=10, max_run=1000), m)
    assert recorded.summary_note() is None and every_row.summary_note() is None
    assert fitted(rule, replace(m, sent=sent_every(len(m.values), 4))).summary_note() is None
    rule = fitted(rule, m)  # fitted again on one grid
    print_summary({"val/EW_F_0.50": 0.5}, {}, tmp_path,
                  {"gru_ae": SimpleNamespace(post_rules={"frozen": rule}),
                   "other": SimpleNamespace(post_rules={"frozen": recorded})})
    out = capsys.readouterr().out
    assert f"note: gru_ae: {note}" in out and "other" not in out
    assert out.index("val/EW_F_0.50") < out.index("note:") < out.index("outputs:")


def test_a_channel_ensemble_interval_only_the_stuck_rule_raised_reads_as_documented():
    """docs/report.md: an interval raised by the stuck-channel rule alone (the channel ensemble's
    peaks alarm none of its rows) has its peak score below the height, the height as its
    ``threshold`` (it was empty: the ensemble reported no threshold), ``raised_by`` ``frozen``,
    and names the stuck channel, whatever its own score there; an interval of the peaks reads
    ``score`` above the same height. The alarms are those of the peaks and the rule."""
    from esa_lightning.models.channel_ensemble.model import rows_to_scores, with_stuck_channels
    from esa_lightning.postprocessing.peaks import PeakAlarm, peaks_to_alarm
    from esa_lightning.reporting.outputs import alarm_intervals

    m = held_mission()
    rule = FrozenValues(n_outputs=3, factor=1.5, min_run=10, max_run=1000)
    rule.limit[0] = rule.limit.new_tensor(rule.limits(m.fit_range())[0])
    values = m.values.copy()
    values[2600:2700, 1] = values[2600, 1]  # channel_1 stuck in the test range
    m = type(m)(**{**m.__dict__, "values": values})
    n = len(m.values)
    rng = np.random.default_rng(1)
    spans = np.stack([np.arange(n), np.arange(n)], axis=1)
    alarm_rule = PeakAlarm(height=0.5, buffer=5)
    prob = 0.3 + 0.1 * rng.random(n)
    prob[2800:2810] = 0.9  # one peak above the height, away from the stuck run
    scores = rows_to_scores(prob, rng.random((3, n)), spans, n, alarm_rule, top_channels=1)
    assert scores.alarm[:2700].sum() == 0  # the peaks alarm nothing where the channel is stuck
    stuck = rule.alarms(m, 0).any(axis=1)
    scores = with_stuck_channels(scores, rule, m)
    peaks = peaks_to_alarm(scores.score, height=0.5, buffer=5)
    np.testing.assert_array_equal(scores.alarm, peaks | stuck)  # the decisions are unchanged
    np.testing.assert_array_equal(scores.stuck_channels, rule.alarms(m, 0))  # esa_full reads it
    part = m.test()
    start = len(m.values) - len(part.values)
    intervals = alarm_intervals(np.asarray(part.timestamps), scores.rows(slice(start, None)), part)
    assert len(intervals) == 2
    row, peak = intervals.iloc[0], intervals.iloc[1]
    assert row["score"] < alarm_rule.height
    assert row["threshold"] == alarm_rule.height and row["raised_by"] == "frozen"
    assert row["channels"] == "channel_1"
    assert row["top_channels"].split("=")[0] == "channel_1"
    assert peak["score"] > peak["threshold"] == alarm_rule.height
    assert peak["raised_by"] == "score"


def test_a_gru_row_only_the_stuck_rule_raised_names_the_stuck_channel_alone():
    """A row the GRU's stuck-channel rule alarmed and its threshold did not names the stuck
    channel alone, as the channel ensemble's does (it named the row's ``top_channels``
    highest-error channels besides, which the channel-aware metrics counted as wrong); a row
    its threshold alarmed still names those, and the stuck channel where it is stuck there.
    The alarms are unchanged."""
    import torch

    from esa_lightning.models.raised_by import FROZEN

    m = held_mission()
    values = m.values.copy()
    values[2600:2700, 1] = values[2600, 1]  # channel_1 stuck in the test range
    m = type(m)(**{**m.__dict__, "values": values})
    torch.manual_seed(0)
    gru = LitGRUAttentionAE(
        n_inputs=3, n_outputs=3, window=5, hidden_size=8, latent_dim=4, top_channels=1,
        post_processing={"threshold": {"kind": "percentile", "q": 99},
                         "frozen": {"kind": "frozen", "min_run": 10, "max_run": 1000}})
    gru.fit_post_processing(SimpleNamespace(mission=m))
    assert gru.frozen_rule is not None
    rows = gru.score_rows(m.test())
    raised, named = rows.raised_by, rows.channel_alarm.astype(bool)
    stuck = gru.frozen_rule.alarms(m.test(), 0)
    only_stuck = raised == FROZEN
    assert only_stuck.sum() > 20 and stuck[only_stuck, 1].all()
    np.testing.assert_array_equal(rows.stuck_channels, stuck)  # what esa_full's combiner names
    np.testing.assert_array_equal(named[only_stuck], stuck[only_stuck])
    own = (rows.alarm != 0) & ~only_stuck
    assert own.any()  # the threshold alarms elsewhere: its rows name their top channel
    top = np.eye(3, dtype=bool)[rows.channel_scores.argmax(axis=1)]
    np.testing.assert_array_equal(named[own], top[own] | stuck[own])
    assert not named[rows.alarm == 0].any()
    np.testing.assert_array_equal(rows.alarm != 0, own | stuck.any(axis=1))
