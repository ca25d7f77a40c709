"""Hand cases for channel/subsystem-aware scores, ADTQC and the Kaggle sample-based F0.5."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from esa_lightning.errors import ESAInputError
from esa_lightning.metrics import adtqc, auc_pr, channel_aware_scores, kaggle_f05
from esa_lightning.metrics.adtqc import timing_curve
from esa_lightning.metrics.kaggle import kaggle_scores


def labels(rows) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["ID", "Channel", "StartTime", "EndTime"])
    df["Category"] = "Anomaly"
    return df


def samples(n: int, *runs: tuple[int, int]):
    b = np.zeros(n, dtype=np.uint8)
    for i, j in runs:
        b[i : j + 1] = 1
    return np.arange(n), b


TABLE = pd.DataFrame({"Channel": ["c1", "c2", "c3", "c4"], "Subsystem": ["s1", "s1", "s2", "s2"]})


def test_channel_aware_fp_exception_for_detection_on_another_events_annotation():
    y = labels(
        [
            ("a", "c1", 10, 60),
            ("a", "c2", 10, 30),
            ("b", "c1", 50, 90),
            ("b", "c3", 40, 90),
            ("b", "c4", 70, 90),
        ]
    )
    preds = {
        "c1": samples(100, (10, 54)),
        "c2": samples(100),
        "c3": samples(100, (40, 79)),  # inside S(a) = [10, 60] but on b's c3 annotation
        "c4": samples(100, (80, 99)),
    }
    s = channel_aware_scores(y, preds, TABLE)
    # a: c1 TP, c2 FN, c3 excused -> P 1, R 0.5; b: c1, c3, c4 TP -> P 1, R 1
    assert s["channel_precision"] == 1.0
    assert s["channel_recall"] == pytest.approx(0.75)
    f_a = 1.25 * 0.5 / (0.25 + 0.5)
    assert s["channel_F_0.50"] == pytest.approx((f_a + 1.0) / 2)
    assert s["subsystem_precision"] == 1.0 and s["subsystem_recall"] == 1.0


def test_channel_aware_counts_fp_without_other_annotation():
    y = labels([("a", "c1", 10, 60), ("a", "c2", 10, 30)])
    preds = {"c1": samples(100, (12, 14)), "c2": samples(100), "c3": samples(100, (20, 22))}
    s = channel_aware_scores(y, preds, TABLE)
    # c1 TP, c2 FN, c3 FP -> P 1/2, R 1/2
    assert s["channel_precision"] == 0.5 and s["channel_recall"] == 0.5
    # subsystems: s1 TP, s2 FP
    assert s["subsystem_precision"] == 0.5 and s["subsystem_recall"] == 1.0


def test_channel_aware_needs_channel_column():
    with pytest.raises(ESAInputError, match="Channel"):
        channel_aware_scores(
            labels([("a", "c1", 1, 2)]).drop(columns="Channel"), {"c1": samples(5)}
        )


# ------------------------------------------------------------------------------------ ADTQC
def test_timing_curve_branches():
    e = math.e
    assert timing_curve(-30, 20, 20) == 0.0  # x <= -alpha
    assert timing_curve(-5, 20, 20) == pytest.approx(0.75**e)  # early
    assert timing_curve(0, 20, 20) == 1.0
    assert timing_curve(5, 20, 10) == pytest.approx(0.5)  # x / (beta - x) = 1
    assert timing_curve(2, 20, 10) == pytest.approx(1 / (1 + (2 / 8) ** e))
    assert timing_curve(10, 20, 10) == 0.0  # x >= beta
    assert timing_curve(0, 0, 0) == 1.0  # point event hit at its start
    assert timing_curve(-1, 0, 5) == 0.0


def test_adtqc_counts_and_alpha_from_previous_event():
    y = labels(
        [
            ("e1", "c1", 100, 120),  # first event: alpha = beta = 20
            ("e2", "c1", 200, 210),  # alpha = min(10, 100) = 10
            ("e3", "c2", 215, 245),  # alpha = min(30, 215 - 200) = 15
            ("e4", "c1", 400, 420),  # never detected
        ]
    )
    # first alarms: e1 at 95 (x = -5), e2 and e3 share the alarm starting at 205
    s = adtqc(y, samples(500, (95, 101), (205, 216)))
    e = math.e
    expected = [0.75**e, 1 / (1 + (5 / 5) ** e), (5 / 15) ** e]
    assert s["ADTQC"] == pytest.approx(np.mean(expected))
    assert s["ADTQC_before"] == 2 and s["ADTQC_after"] == 1
    assert s["ADTQC_after_rate"] == pytest.approx(1 / 3)


def test_adtqc_without_detection():
    s = adtqc(labels([("e1", "c1", 10, 20)]), samples(50, (30, 31)))
    assert s["ADTQC"] == 0.0 and s["ADTQC_before"] == 0 and s["ADTQC_after"] == 0


# ------------------------------------------------------------------------------------ Kaggle
def test_kaggle_f05_hand_case():
    y_true = np.array([0, 0, 1, 1, 0, 0, 0, 1, 0, 0])
    y_pred = np.array([0, 0, 0, 1, 0, 1, 0, 0, 0, 0])
    # events [2,3], [7]; predictions [3] (TP), [5] (FP); 1 of 7 nominal samples predicted
    p, r = 0.5 * (1 - 1 / 7), 0.5
    assert kaggle_f05(y_true, y_pred) == pytest.approx(1.25 * p * r / (0.25 * p + r))
    s = kaggle_scores(y_true, y_pred)
    assert s["precision"] == pytest.approx(p) and s["recall"] == r


def test_kaggle_edge_cases():
    y = np.array([0, 1, 1, 0, 0])
    assert kaggle_f05(y, np.ones(5)) == 0.0  # always positive
    assert kaggle_f05(y, np.zeros(5)) == 0.0  # nothing predicted
    assert kaggle_f05(y, y) == 1.0
    with pytest.raises(ESAInputError):
        kaggle_f05(y, np.array([0, 2, 0, 0, 0]))


def test_auc_pr():
    assert auc_pr(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert auc_pr(np.zeros(4), np.arange(4.0)) == 0.0
    nan_last = auc_pr(np.array([0, 1]), np.array([np.nan, 1.0]))
    assert nan_last == 1.0


def test_average_precision_matches_sklearn_with_ties():
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.2
    s = np.round(rng.random(500) + 0.5 * y, 1)  # many ties
    assert auc_pr(y, s) == pytest.approx(average_precision_score(y, s), rel=1e-12)


def test_auc_pr_ranks_inf_scores_above_every_finite_one_without_a_warning():
    """+inf (a detector scoring a 1e38 reading) is the highest score, above 1e300: mapped to
    the largest finite score + 1 it tied with 1e300, and the positive at inf scored 0.5."""
    import warnings

    labels = np.array([0, 1, 0, 0, 0])
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        assert auc_pr(labels, np.array([1e300, np.inf, 0.2, 0.1, 0.3])) == 1.0
        assert auc_pr(labels, np.array([np.inf, 1e300, 0.2, 0.1, 0.3])) == 0.5
        assert auc_pr(labels, np.array([np.inf, np.inf, 0.2, 0.1, 0.3])) == 0.5  # tied
        # NaN and -inf rank last
        assert auc_pr(labels, np.array([np.nan, 0.1, -np.inf, 0.0, 0.3])) == 0.5
        assert auc_pr(labels, np.array([0.2, -np.inf, np.nan, 0.1, 0.3])) == pytest.approx(0.2)
