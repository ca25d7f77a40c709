"""Hand-computed cases for the corrected event-wise, alarming and affiliation scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from esa_lightning.errors import ESAInputError
from esa_lightning.metrics import esa_scores, telemanom_scores
from esa_lightning.metrics.affiliation import affiliation_per_zone
from esa_lightning.metrics.intervals import Intervals, merge, samples_to_intervals

ANOMALY = {"Category": ["Anomaly"]}


def labels(*rows) -> pd.DataFrame:
    """rows: (ID, start, end[, category[, channel]])."""
    out = []
    for r in rows:
        r = list(r) + [None] * (5 - len(r))
        out.append(
            {
                "ID": r[0],
                "StartTime": r[1],
                "EndTime": r[2],
                "Category": r[3] or "Anomaly",
                "Channel": r[4] or "ch1",
            }
        )
    return pd.DataFrame(out)


def series(n: int, *runs: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Samples form over times 0..n-1 with 1s on the given inclusive runs."""
    b = np.zeros(n, dtype=np.uint8)
    for i, j in runs:
        b[i : j + 1] = 1
    return np.arange(n), b


def test_samples_map_to_closed_intervals():
    iv = samples_to_intervals(np.array([0, 10, 20, 30, 40]), np.array([0, 1, 1, 0, 1]))
    assert iv.start.tolist() == [10, 40] and iv.end.tolist() == [20, 40]


def test_change_points_hold_until_next_point_and_extend_to_range():
    y_true = labels(("a", 10, 20))
    # 1 from 10 to 15 (exclusive), then 0; the range runs to 100
    cp = np.array([[0, 0], [10, 1], [15, 0]])
    same = series(101, (10, 14))
    a = esa_scores(y_true, cp, full_range=(0, 100))
    b = esa_scores(y_true, same, full_range=(0, 100))
    assert a == pytest.approx(b)
    # the last value holds to the end of the range: always-on from 90 -> predicted nominal time
    late = esa_scores(y_true, np.array([[0, 0], [90, 1]]), full_range=(0, 100))
    assert late["EW_precision"] == 0.0 and late["EW_recall"] == 0.0


def test_interval_hitting_only_unselected_event_is_neither_tp_nor_fp():
    y_true = labels(("a", 10, 20), ("r", 40, 50, "Rare Event"))
    both = esa_scores(y_true, series(100, (12, 14), (42, 44)), select_labels=ANOMALY)
    assert both["EW_precision"] == 1.0  # TP 1, FP 0 and no predicted nominal time
    assert both["EW_recall"] == 1.0 and both["EW_F_0.50"] == 1.0
    only_rare = esa_scores(y_true, series(100, (42, 44)), select_labels=ANOMALY)
    assert only_rare["EW_precision"] == 0.0 and only_rare["EW_recall"] == 0.0
    # without the rare-event label, the same interval is a false positive in nominal time
    alone = esa_scores(labels(("a", 10, 20)), series(100, (12, 14), (42, 44)))
    tnr = 1 - 2 / (99 - 10)
    assert alone["EW_precision"] == pytest.approx(0.5 * tnr)


def test_tnr_correction_value():
    y_true = labels(("a", 10, 20))
    s = esa_scores(y_true, series(101, (15, 18), (50, 59)), full_range=(0, 100))
    p = 0.5 * (1 - 9 / 90)  # TP 1, FP 1; 9 time units predicted inside 90 nominal
    assert s["EW_precision"] == pytest.approx(p)
    assert s["EW_recall"] == 1.0
    assert s["EW_F_0.50"] == pytest.approx(1.25 * p / (0.25 * p + 1))


def test_redundant_detections_lower_alarming_precision():
    # event a: two channels, segments merge into [10, 30]; three predictions hit it
    y_true = labels(("a", 10, 20, None, "ch1"), ("a", 15, 30, None, "ch2"), ("b", 60, 70))
    s = esa_scores(y_true, series(100, (11, 12), (14, 16), (25, 26), (65, 66)))
    assert s["EW_recall"] == 1.0
    assert s["alarming_precision"] == pytest.approx(2 / (2 + 2))
    one_each = esa_scores(y_true, series(100, (11, 12), (65, 66)))
    assert one_each["alarming_precision"] == 1.0


def test_always_positive_scores_zero_precision():
    y_true = labels(("a", 10, 20), ("b", 50, 55))
    s = esa_scores(y_true, series(100, (0, 99)))
    assert s["EW_recall"] == 1.0
    assert s["EW_precision"] == 0.0 and s["EW_F_0.50"] == 0.0
    cp = esa_scores(y_true, np.array([[0, 1]]), full_range=(0, 99))
    assert cp["EW_precision"] == 0.0


def test_empty_prediction_scores_zero():
    s = esa_scores(labels(("a", 10, 20)), series(100))
    assert all(v == 0.0 for v in s.values())


def test_datetimes_and_timezones_give_the_same_scores_as_numbers():
    t0 = pd.Timestamp("2007-01-01")
    step = pd.Timedelta("30s")
    times = t0 + step * np.arange(100)
    y_num = labels(("a", 10, 20), ("b", 50, 60))
    y_dt = y_num.assign(
        StartTime=(t0 + step * y_num["StartTime"]).dt.tz_localize("UTC"),
        EndTime=(t0 + step * y_num["EndTime"]).dt.tz_localize("UTC"),
    )
    _, b = series(100, (12, 13), (30, 33), (55, 70))
    got, want = esa_scores(y_dt, (times, b)), esa_scores(y_num, (np.arange(100), b))
    # AFF_* repeat the reference's float64 arithmetic on epoch nanoseconds (~1e18): its
    # rounding differs from that on small numbers by ~1e-4; every other key is exact
    exact = {k: v for k, v in got.items() if not k.startswith("AFF_")}
    assert exact == pytest.approx({k: want[k] for k in exact})
    assert {k: got[k] for k in got if k.startswith("AFF_")} == pytest.approx(
        {k: want[k] for k in got if k.startswith("AFF_")}, abs=1e-3
    )


def test_the_reference_recall_of_a_short_event_on_datetimes_can_exceed_one():
    """docs/metrics.md's example: AFF_* repeat the reference's recall integrals, which square
    epoch nanoseconds (~1e36 in 2007), so a 10-second event (1e20 squared) is lost in their
    rounding: one event 00:00:40-00:00:50 on a 1 s grid, alarmed 00:00:42-00:00:47."""
    t0, step = pd.Timestamp("2007-01-01"), pd.Timedelta("1s")
    y = labels(("a", t0 + 40 * step, t0 + 50 * step))
    s = esa_scores(y, (t0 + step * np.arange(100), series(100, (42, 47))[1]))
    assert s["AFF_recall"] > 1.0
    assert 0.0 < s["AFFpaper_recall"] < 1.0
    on_numbers = esa_scores(labels(("a", 40, 50)), series(100, (42, 47)))
    assert on_numbers["AFF_recall"] == pytest.approx(s["AFFpaper_recall"], abs=1e-9)


def test_a_one_row_alarm_weighs_one_tick_a_whole_sample_of_sample_numbers():
    """docs/metrics.md: a span of no length gets one tick, 1 ns of a datetime but a whole step
    of sample numbers, so a one-row alarm scores as a two-row one there, and the paper
    affiliation keys of sample numbers and datetimes differ beyond rounding."""
    t0, step = pd.Timestamp("2007-01-01"), pd.Timedelta("30s")
    times = t0 + step * np.arange(2000)
    y_num = labels(("a", 565, 614), ("b", 884, 962))
    y_dt = y_num.assign(StartTime=t0 + step * y_num["StartTime"],
                        EndTime=t0 + step * y_num["EndTime"])
    one, two = series(2000, (1512, 1512))[1], series(2000, (1512, 1513))[1]
    key = "AFFpaper_precision"
    on_numbers = esa_scores(y_num, (np.arange(2000), one))[key]
    assert on_numbers == pytest.approx(esa_scores(y_num, (np.arange(2000), two))[key], abs=1e-12)
    on_times = esa_scores(y_dt, (times, one))[key]
    assert on_times - on_numbers > 1e-4  # the point lies 550 rows out: a shorter span scores more
    assert esa_scores(y_dt, (times, two))[key] == pytest.approx(on_numbers, abs=1e-12)


def test_several_betas_and_key_names():
    s = esa_scores(labels(("a", 10, 20)), series(100, (12, 14)), betas=[0.5, 1.0])
    assert {"EW_F_0.50", "EW_F_1.00", "AFF_F_0.50", "AFF_F_1.00"} <= set(s)


def test_missing_column_is_named():
    with pytest.raises(ESAInputError, match="StartTime"):
        esa_scores(pd.DataFrame({"ID": ["a"], "EndTime": [3]}), series(10, (1, 2)))
    with pytest.raises(ESAInputError, match="Category"):
        esa_scores(labels(("a", 1, 2)).drop(columns="Category"), series(10), select_labels=ANOMALY)


def test_telemanom_raw_scores_have_no_time_correction():
    y_true = labels(("a", 10, 20), ("b", 60, 70))
    s = telemanom_scores(y_true, series(100, (0, 15), (30, 40)))
    assert s["EWraw_precision"] == 0.5 and s["EWraw_recall"] == 0.5


# ----------------------------------------------------------------------------- affiliation
def test_affiliation_zone_without_detection_gets_precision_half():
    y_true = labels(("a", 10, 20), ("b", 80, 90))
    s = esa_scores(y_true, series(101, (10, 20)), full_range=(0, 100))
    for key in ("AFF", "AFFpaper"):  # one prediction per zone: both definitions agree
        assert s[f"{key}_precision"] == pytest.approx((1.0 + 0.5) / 2)
        assert s[f"{key}_recall"] == pytest.approx((1.0 + 0.0) / 2)


def test_perfect_prediction_scores_affiliation_one():
    y_true = labels(("a", 10, 20), ("b", 80, 90), ("b", 85, 95, None, "ch2"))
    s = esa_scores(y_true, series(101, (10, 20), (80, 95)), full_range=(0, 100))
    for key in ("AFF", "AFFpaper"):
        assert s[f"{key}_precision"] == pytest.approx(1.0)
        assert s[f"{key}_recall"] == pytest.approx(1.0)
        assert s[f"{key}_F_0.50"] == pytest.approx(1.0)


def test_reference_and_paper_affiliation_differ_as_documented():
    # J = [40, 60] alone in [0, 100]; predictions [10, 12] and [50, 52] share its zone.
    # Paper: J's points are measured to the nearer prediction ([50, 52]) -> high recall.
    # Reference: the cell of [10, 12] ends at 31 < 40 and is dropped, so J (all in the cell
    # of [50, 52]) is paired with the first prediction, [10, 12] -> much lower recall.
    y_true = labels(("a", 40, 60), ("a", 45, 55, None, "ch2"))
    s = esa_scores(y_true, series(101, (10, 12), (50, 52)), full_range=(0, 100))
    assert s["AFFpaper_recall"] > 0.9
    assert s["AFF_recall"] < 0.7
    assert s["AFF_precision"] == pytest.approx(s["AFFpaper_precision"])
    # every zone deselected: the reference gives NaN, the paper keys 0
    rare = labels(("r", 40, 60, "Rare Event"))
    s = esa_scores(rare, series(101, (50, 52)), select_labels=ANOMALY, full_range=(0, 100))
    assert np.isnan(s["AFF_precision"]) and np.isnan(s["AFF_F_0.50"])
    assert s["AFFpaper_precision"] == 0.0 and s["AFFpaper_F_0.50"] == 0.0


def test_affiliation_hand_case():
    # zone of J = [6, 7] is [5, 14] (neighbour ends at 4); prediction [5, 8] inside it
    pred = Intervals(np.array([5.0]), np.array([8.0]))
    truth = Intervals(np.array([3.0, 6.0]), np.array([4.0, 7.0]))
    p, r = affiliation_per_zone(pred, truth, (0.0, 14.0))
    # precision: 1 inside J, and twice the integral over d in [0, 1] of 1 - (1 + 2d) / 9
    assert p[1] == pytest.approx((1 + 2 * (7 / 9)) / 3)
    assert r[1] == pytest.approx(1.0)
    assert p[0] == 0.5 and r[0] == 0.0


def _brute_affiliation(pred, truth, lo, hi, grid=400_000):
    """Direct numerical integration of the definitions, zone by zone."""
    xs = np.linspace(lo, hi, grid, endpoint=False) + (hi - lo) / grid / 2
    mids = (truth.end[:-1] + truth.start[1:]) / 2
    left, right = np.r_[lo, mids], np.r_[mids, hi]
    in_pred = np.zeros_like(xs, dtype=bool)
    for s, e in zip(pred.start, pred.end, strict=True):
        in_pred |= (xs >= s) & (xs <= e)
    ps, rs = [], []
    for k in range(len(truth)):
        js, je, el, er = truth.start[k], truth.end[k], left[k], right[k]
        w = er - el
        zone = (xs >= el) & (xs < er)
        d_to_j = np.maximum(np.maximum(js - xs, xs - je), 0)
        fbar = 1 - (je - js + np.minimum(d_to_j, js - el) + np.minimum(d_to_j, er - je)) / w
        fbar[(xs >= js) & (xs <= je)] = 1.0  # P(d(X, J) >= 0) = 1 inside J
        sel = zone & in_pred
        ps.append(fbar[sel].mean() if sel.any() else 0.5)
        ys = xs[(xs >= js) & (xs <= je)]
        # distance from each true point to the prediction clipped to the zone
        clipped = [(max(a, el), min(b, er)) for a, b in zip(pred.start, pred.end, strict=True)]
        clipped = [(a, b) for a, b in clipped if b > a]
        if not clipped:
            rs.append(0.0)
            continue
        d = np.min([np.maximum(np.maximum(a - ys, ys - b), 0) for a, b in clipped], axis=0)
        rs.append(np.mean(1 - (np.minimum(d, ys - el) + np.minimum(d, er - ys)) / w))
    return np.array(ps), np.array(rs)


@pytest.mark.parametrize("seed", range(4))
def test_affiliation_matches_numerical_integration(seed):
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(1, 100), size=12, replace=False)).astype(float)
    truth = Intervals(np.array([cuts[1], cuts[5], cuts[9]]), np.array([cuts[2], cuts[6], cuts[10]]))
    pred = Intervals(
        np.array([cuts[0], cuts[3], cuts[8]]) + 0.3, np.array([cuts[1], cuts[4], cuts[9]]) + 0.7
    )
    pred = merge(pred.start, pred.end)
    p, r = affiliation_per_zone(pred, truth, (0.0, 100.0))
    bp, br = _brute_affiliation(pred, truth, 0.0, 100.0)
    assert p == pytest.approx(bp, abs=2e-3)
    assert r == pytest.approx(br, abs=2e-3)


def test_affiliation_keeps_one_sample_events_and_predictions():
    """A one-sample label hit by a one-sample prediction is a perfect affiliation match.

    Before the fix, the zero-length interval [t, t] divided by zero (NaN recall) and the
    one-sample prediction was dropped.
    """
    import warnings

    import numpy as np
    import pandas as pd

    from esa_lightning.metrics import esa_scores

    y_true = pd.DataFrame({"ID": ["a"], "StartTime": [50], "EndTime": [50],
                           "Category": ["Anomaly"]})
    alarm = np.zeros(100, dtype=np.uint8)
    alarm[50] = 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = esa_scores(y_true, (np.arange(100), alarm))
    assert scores["AFF_precision"] == pytest.approx(1.0, abs=1e-6)
    assert scores["AFF_recall"] == pytest.approx(1.0, abs=1e-6)


def test_a_label_time_that_is_no_time_is_refused_in_one_line_naming_it():
    """pandas' advice on a time it cannot parse runs over several lines."""
    y_true = labels(("a", "2000-01-01 00:00:00", "2000-01-01 00:01:00"),
                    ("b", "garbage", "2000-01-01 00:03:00"))
    times = pd.date_range("2000-01-01", periods=10, freq="30s")
    with pytest.raises(ESAInputError) as refused:
        esa_scores(y_true, (times, np.zeros(10, dtype=np.uint8)))
    message = str(refused.value)
    assert "\n" not in message, message
    assert "StartTime" in message and "'garbage'" in message, message
