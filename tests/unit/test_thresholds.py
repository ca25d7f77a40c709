"""Percentile and Telemanom dynamic thresholds; the threshold post rules of a model."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from esa_lightning.data.mission import Mission, default_channel_table, empty_events
from esa_lightning.data.transforms.windows import labeled_window_mask, nominal_rows
from esa_lightning.errors import ESAInputError
from esa_lightning.metrics import intervals
from esa_lightning.models.gru_ae.model import LitGRUAttentionAE
from esa_lightning.postprocessing.telemanom import (
    ErrorScale,
    chunk_bounds,
    dynamic_threshold,
    ewma,
    prune,
)
from esa_lightning.postprocessing.thresholds import percentile_threshold
from tests.helpers import toy_mission


def test_percentile_threshold_leaves_q_percent_above():
    s = np.random.default_rng(0).random(10_000)
    thr = percentile_threshold(np.append(s, np.nan), q=99)
    assert 0.985 < thr < 0.995
    assert abs((s > thr).mean() - 0.01) < 0.002


def runs(mask):
    """int [K, 2]: (first, last) inclusive of each run of True (``intervals.runs`` stacked)."""
    return np.stack(intervals.runs(mask), axis=1)


def test_runs():
    np.testing.assert_array_equal(
        runs(np.array([1, 1, 0, 0, 1, 0, 1, 1, 1], bool)), [[0, 1], [4, 4], [6, 8]]
    )
    assert runs(np.zeros(4, bool)).shape == (0, 2)


def test_prune_keeps_everything_above_the_last_big_drop():
    # sorted maxima 10, 9.5 (5 % drop), 5 (47 % drop), 4.8 (4 %), then non-anomalous max 4.5 (6 %):
    # the last big drop is 9.5 -> 5, so 10 and 9.5 stay (as in Telemanom), 5 and 4.8 go
    keep = prune(np.array([5.0, 10.0, 4.8, 9.5]), 4.5, 0.13)
    np.testing.assert_array_equal(keep, [False, True, False, True])
    assert not prune(np.array([4.6]), 4.5, 0.13).any()
    assert prune(np.array([4.6]), 4.5, 0.0).all()


def test_dynamic_threshold_finds_a_spike_and_prunes_a_weak_one():
    rng = np.random.default_rng(0)
    base = np.abs(0.1 + 0.02 * rng.standard_normal(20_000))
    base[5000:5050] = 3.0  # the planted spike
    e = base.copy()
    for _ in range(3):  # place a weak sequence just above ε and a nominal peak just below it
        eps = dynamic_threshold(e, smoothing=1).threshold
        e = base.copy()
        e[12000:12002] = 1.05 * eps
        e[15000] = 0.95 * eps
    unpruned = dynamic_threshold(e, smoothing=1, min_percent_decrease=0.0)
    assert e[15000] < unpruned.threshold < e[12000]  # the scene is what the test means
    np.testing.assert_array_equal(runs(unpruned.alarm), [[5000, 5049], [12000, 12001]])
    pruned = dynamic_threshold(e, smoothing=1, min_percent_decrease=0.13)
    np.testing.assert_array_equal(runs(pruned.alarm), [[5000, 5049]])
    assert 2.0 <= pruned.z <= 10.0


def test_dynamic_threshold_smooths_and_handles_flat_errors():
    r = dynamic_threshold(np.ones(50), smoothing=10)
    assert not r.alarm.any() and r.threshold == pytest.approx(1.0)
    noisy = np.random.default_rng(1).random(500)
    r = dynamic_threshold(noisy, smoothing=20, window=100)
    assert r.smoothed.std() < noisy.std()
    assert r.alarm.shape == (500,)


def test_error_buffer_spreads_an_alarm_to_its_neighbours():
    rng = np.random.default_rng(2)
    e = np.abs(0.1 + 0.01 * rng.standard_normal(3000))
    e[1500] = 5.0
    plain = dynamic_threshold(e, smoothing=1)
    np.testing.assert_array_equal(runs(plain.alarm), [[1500, 1500]])
    wide = dynamic_threshold(e, smoothing=1, error_buffer=10)
    np.testing.assert_array_equal(runs(wide.alarm), [[1491, 1509]])


def test_sliding_chunks_find_a_local_spike_a_global_threshold_misses():
    rng = np.random.default_rng(3)
    e = np.abs(np.concatenate([0.1 + 0.01 * rng.standard_normal(2000),
                               1.0 + 0.5 * rng.standard_normal(2000)]))
    e[500:505] = 0.6  # big in the quiet half, ordinary beside the noisy half
    whole = dynamic_threshold(e, smoothing=1)
    assert not whole.alarm[500:505].any()
    sliding = dynamic_threshold(e, smoothing=1, window=400, step=100)
    assert sliding.alarm[500:505].all()
    assert not sliding.alarm[:450].any()


def test_max_sequences_refuses_thresholds_that_leave_many_sequences():
    rng = np.random.default_rng(4)
    e = np.abs(0.1 + 0.01 * rng.standard_normal(5000))
    e[100:4900:400] = 1.0  # twelve equal spikes: every z below them leaves 12 sequences
    opts = dict(smoothing=1, min_percent_decrease=0.0, z_range=(2.0, 40.0))
    free = dynamic_threshold(e, **opts)
    assert free.z < 40.0 and len(runs(free.alarm)) == 12
    # no z qualifies: Telemanom's fallback, the largest z of the range
    assert dynamic_threshold(e, max_sequences=5, **opts).z == 40.0


@pytest.mark.parametrize(
    "n, window, step", [(5000, 2100, 70), (2000, 2100, 70), (1000, 300, None), (950, 300, 100)]
)
def test_chunks_judge_every_error_exactly_once(n, window, step):
    bounds = chunk_bounds(n, window, step)
    judged = np.zeros(n, int)
    for lo, hi, first in bounds:
        assert lo <= first <= hi and hi - lo <= max(window, n if step is None else window + step)
        judged[first:hi] += 1
    np.testing.assert_array_equal(judged, 1)
    assert bounds[-1][1] == n


def test_sliding_chunks_judge_an_error_from_the_past_only():
    """Telemanom judges each error in the chunk it is the newest part of: what comes after a
    chunk cannot change its alarms (before, the alarms of every chunk holding an error were
    united, so a later quiet stretch flagged an ordinary error of a noisy past)."""
    rng = np.random.default_rng(5)
    e = np.abs(np.concatenate([1.0 + 0.5 * rng.standard_normal(350),
                               0.1 + 0.01 * rng.standard_normal(1650)]))
    e[470:475] = 1.5  # ordinary beside the noisy past, big beside the quiet future
    opts = dict(smoothing=1, window=400, step=100)
    alarm = dynamic_threshold(e, **opts).alarm
    assert not alarm[470:475].any()
    changed = e.copy()
    changed[600:] *= 50  # the future after the chunk [100, 500) that judges rows 400..499
    np.testing.assert_array_equal(dynamic_threshold(changed, **opts).alarm[:500], alarm[:500])


def test_error_scale_skips_errors_small_against_the_values():
    rng = np.random.default_rng(6)
    e = np.abs(0.01 + 0.001 * rng.standard_normal(3000))
    e[1500:1510] = 0.05
    opts = dict(smoothing=1, window=1000, step=100)
    assert dynamic_threshold(e, **opts).alarm[1500:1510].all()
    swinging = np.sin(np.arange(3000) / 20.0) * 10  # values swinging over +-10: errors tiny
    assert not dynamic_threshold(e, scale=ErrorScale(swinging), **opts).alarm.any()
    flat = 0.001 * rng.standard_normal(3000)
    assert dynamic_threshold(e, scale=ErrorScale(flat), **opts).alarm[1500:1510].all()
    # ... unless the largest error is under the least error that counts
    assert not dynamic_threshold(e, scale=ErrorScale(flat, min_error=0.06), **opts).alarm.any()


def test_inverse_flags_unusually_small_errors():
    rng = np.random.default_rng(7)
    e = np.abs(1.0 + 0.05 * rng.standard_normal(3000))
    e[1500:1520] = 0.0  # the model suddenly forecasts perfectly (a frozen sensor, say)
    assert not dynamic_threshold(e, smoothing=1).alarm[1500:1520].any()
    inverse = dynamic_threshold(e, smoothing=1, inverse=True).alarm
    assert inverse[1500:1520].all() and not inverse[:1400].any()


def test_warmup_leaves_the_first_errors_unjudged():
    rng = np.random.default_rng(8)
    e = np.abs(0.1 + 0.01 * rng.standard_normal(3000))
    e[300:305] = 2.0
    e[2000:2005] = 3.0  # above the unjudged spike, which still counts as the largest nominal error
    plain = dynamic_threshold(e, smoothing=1).alarm
    warm = dynamic_threshold(e, smoothing=1, warmup=250).alarm
    assert plain[300:305].all() and plain[2000:2005].all()
    assert not warm[:500].any() and warm[2000:2005].all()  # 2 x 250 on a 3000-error stream


def make_mission(T=300, val_start=200, test_start=260):
    rng = np.random.default_rng(0)
    values = rng.standard_normal((T, 2)).astype(np.float32)
    values[test_start:] = 1e4  # a threshold fitted on test rows would explode
    labels = np.zeros((T, 2), np.uint8)
    labels[220:225, 0] = 1
    return toy_mission(values, labels, val_start=val_start, test_start=test_start,
                       channel_names=["a", "b"])


def small_model(window, **threshold):
    """A tiny untrained model whose one post rule is the threshold ``threshold``."""
    return LitGRUAttentionAE(n_inputs=2, n_outputs=2, window=window, hidden_size=8, latent_dim=4,
                             post_processing={"threshold": threshold})


def fit_threshold(model, mission):
    """Fit the model's threshold rule on ``mission`` (what ``on_train_end`` does)."""
    rule = model.post_rules["threshold"]
    rule.fit(model, SimpleNamespace(mission=mission))
    return rule


def test_calibration_uses_nominal_validation_windows_only():
    torch.manual_seed(0)
    m = make_mission()
    model = small_model(6, kind="percentile", q=90)
    rule = fit_threshold(model, m)
    val = m.val()
    total = model.window_outputs(val).total
    clean = ~labeled_window_mask(~nominal_rows(val), 6)
    assert float(rule.threshold[0]) == pytest.approx(np.percentile(total[clean], 90), rel=1e-5)
    assert float(rule.threshold[0]) < 100  # no test row (1e4) went in
    assert model.threshold_rule is rule and model.is_calibrated


def test_calibration_falls_back_to_training_range(caplog):
    m = make_mission(val_start=260, test_start=260)
    model = small_model(6, kind="dynamic", smoothing=3)
    with caplog.at_level(logging.WARNING):
        model.fit_post_processing(SimpleNamespace(mission=m))
    assert "training range" in caplog.text
    rule = model.threshold_rule
    assert np.isfinite(float(rule.threshold[0])) and float(rule.threshold[0]) < 100
    assert float(rule.score_span) == 3


# ------------------------------------------------------------------------------ f05 method
def planted_mission(with_event=True, at=270):
    """Noise with a planted spike at row ``at`` (in the validation range by default), labeled
    as an event."""
    T, val_start, test_start = 400, 200, 340
    rng = np.random.default_rng(1)
    values = (0.1 * rng.standard_normal((T, 2))).astype(np.float32)
    labels = np.zeros((T, 2), np.uint8)
    ts = pd.date_range("2000-01-01", periods=T, freq="30s").to_numpy()
    events = empty_events()
    if with_event:
        values[at : at + 6, 0] += 25.0
        labels[at : at + 6, 0] = 1
        events = pd.DataFrame(
            {
                "ID": ["id_1"],
                "Channel": ["a"],
                "StartTime": [ts[at]],
                "EndTime": [ts[at + 5]],
                "Category": ["Anomaly"],
            }
        )
    return Mission(
        "toy",
        values,
        ts,
        default_channel_table(["a", "b"]),
        labels,
        events,
        val_start=val_start,
        test_start=test_start,
    )


def test_f05_threshold_separates_a_planted_anomaly():
    torch.manual_seed(0)
    m = planted_mission()
    model = small_model(4, kind="f05", q=50)
    rule = fit_threshold(model, m)
    val = m.val()
    total = model.window_outputs(val).total
    labeled = labeled_window_mask(~nominal_rows(val), 4)
    thr = float(rule.threshold[0])
    # q=50 of nominal windows would alarm half the range; f05 sits between the two populations
    assert total[~labeled].max() <= thr < total[labeled].max()
    alarm = model.score_rows(val).alarm.astype(bool)
    rows = np.arange(len(alarm)) + m.val_start
    assert alarm[(rows >= 270) & (rows < 276)].any()
    assert not alarm[(rows < 270 - 4) | (rows >= 276 + 4)].any()


def test_f05_falls_back_to_percentile_without_validation_events(caplog):
    torch.manual_seed(0)
    m = planted_mission(with_event=False)
    model = small_model(4, kind="f05", q=90)
    with caplog.at_level(logging.WARNING):
        rule = fit_threshold(model, m)
    assert "falls back" in caplog.text
    total = model.window_outputs(m.val()).total
    assert float(rule.threshold[0]) == pytest.approx(np.percentile(total, 90), rel=1e-5)


def test_f05_on_the_fit_range_searches_it_when_every_validation_row_is_labeled(caplog):
    """A validation range labeled throughout has no label-free window: the fit range's events
    (here a spike in the training range) still choose the threshold; it used to fall back to
    the percentile with a warning that the fit range held no labeled event."""
    torch.manual_seed(0)
    m = planted_mission(at=100)  # the spike lies in the training range
    ts = np.asarray(m.timestamps)
    m.labels[m.val_start : m.test_start] = 1
    whole_val = {"ID": "id_2", "Channel": "b", "StartTime": ts[m.val_start],
                 "EndTime": ts[m.test_start - 1], "Category": "Anomaly"}
    m.events = pd.concat([m.events, pd.DataFrame([whole_val])], ignore_index=True)
    model = small_model(4, kind="f05", q=50, fit_on="fit_range")
    with caplog.at_level(logging.WARNING):
        rule = fit_threshold(model, m)
    assert "falls back" not in caplog.text
    train = m.slice(0, m.val_start)
    total = model.window_outputs(train).total
    labeled = labeled_window_mask(~nominal_rows(train), 4)
    # q=50 of the nominal training windows would alarm half of them
    assert total[~labeled].max() <= float(rule.threshold[0]) < total[labeled].max()


def test_f05_smoothing_thresholds_the_ewma_of_window_scores():
    torch.manual_seed(0)
    m = planted_mission()
    model = small_model(4, kind="f05", q=50, fit_on="validation", smoothing=5)
    rule = fit_threshold(model, m)
    assert float(rule.score_span) == 5 and rule.context_rows == 200
    val = m.val()
    total = model.window_outputs(val).total
    smoothed = ewma(total, 5)
    assert not np.allclose(smoothed, total)
    score_w, alarm_w = rule.window_alarms(total, 0)
    np.testing.assert_allclose(score_w, smoothed, rtol=1e-6)
    np.testing.assert_array_equal(alarm_w, smoothed > float(rule.threshold[0]))
    # the smoothed spike still stands out: the planted event alarms, the far rows do not
    alarm = model.score_rows(val).alarm.astype(bool)
    rows = np.arange(len(alarm)) + m.val_start
    assert alarm[(rows >= 270) & (rows < 276)].any()
    assert not alarm[rows < 270 - 4].any()


@pytest.mark.parametrize("kind", ["f05", "percentile", "dynamic"])
@pytest.mark.parametrize("smoothing", [-1, float("nan"), float("inf"), "fast", None])
def test_window_thresholds_refuse_a_bad_smoothing(kind, smoothing):
    with pytest.raises(ESAInputError, match="smoothing"):
        small_model(4, kind=kind, smoothing=smoothing)


def smoothed_as_scored(model, m, start, stop, span):
    """The window scores of rows ``start``..``stop`` of ``m`` EWMA-smoothed as prediction
    smooths them: the rows from 0 scored too, so the average does not start afresh at
    ``start`` (more than ``context_rows`` of them: the same to float precision)."""
    total = model.window_outputs(m.slice(0, stop)).total
    return ewma(total, span)[start:]


def test_percentile_smoothing_takes_the_percentile_of_smoothed_nominal_scores():
    torch.manual_seed(0)
    m = make_mission()
    model = small_model(6, kind="percentile", q=90, smoothing=4)
    rule = fit_threshold(model, m)
    val = m.val()
    smoothed = smoothed_as_scored(model, m, m.val_start, m.test_start, 4)
    assert not np.allclose(smoothed, model.window_outputs(val).total)
    clean = ~labeled_window_mask(~nominal_rows(val), 6)
    assert float(rule.score_span) == 4
    assert float(rule.threshold[0]) == pytest.approx(np.percentile(smoothed[clean], 90), rel=1e-5)


@pytest.mark.parametrize("kind", ["percentile", "f05"])
def test_smoothed_validation_scores_are_fitted_with_the_rows_before_them(kind):
    """The fit smooths the validation range's window scores with the training rows before it,
    as prediction does: the average does not start afresh at the range's first window, whose
    score would then weigh as if nothing came before it (f05: its percentile fallback, on a
    validation range without an event)."""
    torch.manual_seed(0)
    m = planted_mission(with_event=False)
    m.values[185:200] += 8.0  # unlabeled training rows just before the validation range
    extra = {"fit_on": "validation"} if kind == "f05" else {}
    model = small_model(6, kind=kind, q=90, smoothing=4, **extra)
    rule = fit_threshold(model, m)
    val = m.val()
    as_scored = smoothed_as_scored(model, m, m.val_start, m.test_start, 4)
    afresh = ewma(model.window_outputs(val).total, 4)
    # the scene is what the test means: the first windows differ by far more than float noise
    assert abs(as_scored[0] - afresh[0]) > 0.1 * abs(afresh[0])
    clean = ~labeled_window_mask(~nominal_rows(val), 6)
    thr = float(rule.threshold[0])
    assert thr == pytest.approx(np.percentile(as_scored[clean], 90), rel=1e-5)
    assert thr != pytest.approx(np.percentile(afresh[clean], 90), rel=1e-5)


@pytest.mark.parametrize("kind", ["f05", "percentile", "dynamic"])
def test_a_window_whose_error_overflowed_alarms_through_the_smoothing(kind):
    torch.manual_seed(0)
    model = small_model(4, kind=kind, smoothing=20)
    rule = fit_threshold(model, planted_mission())
    total = np.ones(200, dtype=np.float32)
    total[100:103] = np.inf  # an input of 1e30 overflows the window error
    score_w, alarm_w = rule.window_alarms(total, 0)
    assert np.isposinf(score_w[100:103]).all() and alarm_w[100:103].all()
    assert np.isfinite(score_w[103:]).all()  # the rows after it are not swept up



@pytest.mark.parametrize("z_range", [[-3, -1], [0, 2], [3, 1], ["a", 2], [1, float("inf")], [1]])
@pytest.mark.parametrize("kind", ["telemanom", "dynamic"])
def test_a_z_range_not_above_the_mean_is_refused_naming_the_setting(kind, z_range):
    """``dynamic`` took any z_range: [-3, -1] put the threshold below the mean (every window
    of a spiky stream alarmed: 3000 of 3000 errors)."""
    from esa_lightning.postprocessing.telemanom import TelemanomOnline
    from esa_lightning.postprocessing.thresholds import DynamicThreshold

    rule = {"telemanom": TelemanomOnline, "dynamic": DynamicThreshold}[kind]
    with pytest.raises(ESAInputError, match=r"z_range.*0 < low <= high"):
        rule(z_range=z_range)


def test_f05_with_fewer_events_than_min_events_falls_back_and_says_so(caplog):
    """One labeled event is caught best by alarming nearly every row where the scores do not
    separate it (a one-event mission's GRU alarmed 97 % of its test rows, logged at info):
    the fit now warns, and ``min_events`` sends it to the percentile instead."""
    torch.manual_seed(0)
    m = planted_mission()
    with caplog.at_level(logging.WARNING):
        fit_threshold(small_model(4, kind="f05", q=90), m)
    assert "fitted on 1 labeled event:" in caplog.text and "min_events=2" in caplog.text
    caplog.clear()
    model = small_model(4, kind="f05", q=90, min_events=2)
    with caplog.at_level(logging.WARNING):
        rule = fit_threshold(model, m)
    assert "1 labeled event on the validation range (fewer than min_events=2)" in caplog.text
    val = m.val()
    total = model.window_outputs(val).total
    clean = ~labeled_window_mask(~nominal_rows(val), 4)
    assert float(rule.threshold[0]) == pytest.approx(np.percentile(total[clean], 90), rel=1e-5)


@pytest.mark.parametrize("min_events", [0, 1.5, True])
def test_f05_refuses_a_bad_min_events(min_events):
    with pytest.raises(ESAInputError, match="min_events"):
        small_model(4, kind="f05", min_events=min_events)


@pytest.mark.parametrize(
    ("threshold", "with_event", "read"),
    [
        ({"kind": "f05", "fit_on": "fit_range"}, True,
         "f05 (fit_range) threshold {} on every training + validation window (labeled ones "
         "included)"),
        ({"kind": "f05", "fit_on": "validation"}, True,
         "f05 (validation) threshold {} on every validation window (labeled ones included)"),
        ({"kind": "f05", "fit_on": "fit_range"}, False,
         "percentile threshold {} on the label-free validation windows"),
        ({"kind": "percentile"}, True, "percentile threshold {} on the label-free validation "
                                       "windows"),
    ],
)
def test_the_threshold_fit_logs_the_windows_it_read(caplog, threshold, with_event, read):
    """The F0.5 search with ``fit_on: fit_range`` (the default) reads the training and
    validation ranges' windows, labeled ones included, yet the fit's line said ``on validation
    windows``: it names what each rule read."""
    torch.manual_seed(0)
    m = planted_mission(with_event=with_event)
    model = small_model(4, q=50, **threshold)
    with caplog.at_level(logging.INFO, logger="esa_lightning"):
        rule = fit_threshold(model, m)
    line = f"series toy: {read.format(f'{float(rule.threshold[0]):.6g}')}"
    assert line in caplog.messages
