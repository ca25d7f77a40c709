"""Edge cases of the ESA-ADB reference metrics that the reference cases file does not hold.

``metric_cases.json`` (test_metrics_reference.py) has no communication gap, no two events with
one start, no channel-aware or ADTQC score and only change-point predictions. Every expected
value below is worked out by hand from the reference's definitions (kplabs-pl/ESA-ADB,
``timeeval/metrics``), as the comment beside it shows.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from esa_lightning.metrics import esa_scores
from esa_lightning.metrics.adtqc import adtqc
from esa_lightning.metrics.channel_aware import channel_aware_scores

T0 = pd.Timestamp("2020-01-01")
BOTH = {"Category": ["Anomaly", "Rare Event"]}


def at(seconds: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(seconds=seconds)


def labels(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"ID": i, "Channel": c, "StartTime": at(a), "EndTime": at(b), "Category": k}
            for i, c, a, b, k in rows
        ]
    )


def test_communication_gap_is_neither_nominal_time_nor_a_false_positive():
    # ESA_ADB_metrics.ESAScores.score: events_gt holds every label row (the gap too), so the
    # interval [45, 55) touching the gap [40, 50] is no FP, and nominal time is
    # [0, 100] - [10, 20] - [40, 50] = 80 s. TP 1 ([12, 15) hits A), FP 0: P = 1; predicted
    # nominal time = (50, 55) = 5 s, TNR = 1 - 5/80 = 0.9375; R = 1;
    # F0.5 = 1.25 * 0.9375 / (0.25 * 0.9375 + 1) = 0.949367...
    events = labels([("A", "c1", 10, 20, "Anomaly"), ("G", "c1", 40, 50, "Communication Gap")])
    pred = [(at(0), 0), (at(12), 1), (at(15), 0), (at(45), 1), (at(55), 0)]
    got = esa_scores(events, pred, select_labels=BOTH, full_range=(at(0), at(100)))
    assert got["EW_precision"] == pytest.approx(0.9375, abs=1e-9)
    assert got["EW_recall"] == 1.0
    assert got["EW_F_0.50"] == pytest.approx(1.25 * 0.9375 / (0.25 * 0.9375 + 1), abs=1e-9)


def test_row_alarms_cover_closed_rows_where_the_reference_run_reaches_the_next_row():
    # ESA-ADB's TimeEval run (core/experiments.py, Experiment.evaluate) gives ESAScores one
    # (timestamp, 0/1) change point per row, so a run of rows 40..49 on a 30 s grid covers
    # [t40, t50) (utils.convert_time_series_to_events). Label [t40, t49], range [t0, t99]:
    # nominal 2970 - 270 = 2700 s, the run's nominal part (t49, t50) 30 s:
    # P = 1 - 30/2700, F0.5 = 1.25 P / (0.25 P + 1). The samples form (what the reports
    # use, docs/metrics.md) covers the closed rows [t40, t49]: no nominal time, P = 1.
    times = T0 + pd.to_timedelta(np.arange(100) * 30, unit="s")
    events = pd.DataFrame(
        [{"ID": "A", "StartTime": times[40], "EndTime": times[49], "Category": "Anomaly"}]
    )
    alarm = np.zeros(100, dtype=int)
    alarm[40:50] = 1
    rng = (times[0], times[-1])
    per_row = esa_scores(events, list(zip(times, alarm, strict=True)), select_labels=BOTH,
                         full_range=rng)
    samples = esa_scores(events, (times, alarm), select_labels=BOTH, full_range=rng)
    p = 1 - 30 / 2700
    assert per_row["EW_precision"] == pytest.approx(p, abs=1e-9)
    assert per_row["EW_F_0.50"] == pytest.approx(1.25 * p / (0.25 * p + 1), abs=1e-9)
    assert samples["EW_precision"] == 1.0


def test_adtqc_events_sharing_a_start_both_take_the_first_event_alpha():
    # latency_metrics.ADTQC.score: start_times.index(start) finds the first of equal starts,
    # so A [10, 20] and B [10, 30] both sit at index 0: alpha = their own length. The alarm
    # [12, 13) gives x = 2 for both: A 1 / (1 + (2/8)^e), B 1 / (1 + (2/18)^e), both after.
    events = labels([("A", "c1", 10, 20, "Anomaly"), ("B", "c1", 10, 30, "Anomaly")])
    pred = [(at(0), 0), (at(12), 1), (at(13), 0)]
    got = adtqc(events, pred, select_labels=BOTH, full_range=(at(0), at(100)))
    want = (1 / (1 + (2 / 8) ** math.e) + 1 / (1 + (2 / 18) ** math.e)) / 2
    assert got["ADTQC"] == pytest.approx(want, abs=1e-12)
    assert (got["ADTQC_before"], got["ADTQC_after"]) == (0, 2)


def test_channel_aware_on_the_reference_modules_own_example():
    # ranking_metrics.py's __main__ example. S(id_0) = [01-01, 01-06], S(id_1) = [01-04, 01-09].
    # id_0: ch1 annotated, alarmed in S: TP; ch2 annotated, silent: FN; ch3 not annotated,
    # alarmed in S but on id_1's ch3 annotation: excused; ch4's alarm starts after S; an alarm
    # on ch5 (no event at all) inside S is an FP: P 1/2, R 1/2, F 1/2.
    # id_1: ch1, ch3, ch4 annotated and alarmed in S: P = R = F = 1.
    # channel: P 0.75, R 0.75, F 0.75. Subsystems s1 {ch1, ch2}, s2 {ch3, ch4}, s3 {ch5}:
    # id_0 s1 TP, s2 excused, s3 FP: P 1/2, R 1, F 1.25/2.25; id_1 s1, s2 TP: 1, 1, 1.
    d = pd.to_datetime
    events = pd.DataFrame(
        [
            ["id_0", "ch1", d("2015-01-01"), d("2015-01-06"), "Anomaly"],
            ["id_0", "ch2", d("2015-01-01"), d("2015-01-03"), "Anomaly"],
            ["id_1", "ch1", d("2015-01-05"), d("2015-01-09"), "Anomaly"],
            ["id_1", "ch3", d("2015-01-04"), d("2015-01-09"), "Anomaly"],
            ["id_1", "ch4", d("2015-01-07"), d("2015-01-09"), "Anomaly"],
        ],
        columns=["ID", "Channel", "StartTime", "EndTime", "Category"],
    )
    preds = {
        "ch1": [[d("2015-01-01"), 1], [d("2015-01-05 12:00"), 0]],
        "ch2": [[d("2015-01-01"), 0]],
        "ch3": [[d("2015-01-01"), 0], [d("2015-01-04"), 1], [d("2015-01-08"), 0]],
        "ch4": [[d("2015-01-01"), 0], [d("2015-01-08"), 1]],
        "ch5": [[d("2015-01-01"), 0], [d("2015-01-02"), 1], [d("2015-01-02 06:00"), 0]],
    }
    table = pd.DataFrame(
        {"Channel": ["ch1", "ch2", "ch3", "ch4", "ch5"],
         "Subsystem": ["s1", "s1", "s2", "s2", "s3"]}
    )
    got = channel_aware_scores(events, preds, table)
    assert (got["channel_precision"], got["channel_recall"]) == (0.75, 0.75)
    assert got["channel_F_0.50"] == pytest.approx(0.75, abs=1e-12)
    assert (got["subsystem_precision"], got["subsystem_recall"]) == (0.75, 1.0)
    assert got["subsystem_F_0.50"] == pytest.approx((1.25 / 2.25 + 1) / 2, abs=1e-12)
