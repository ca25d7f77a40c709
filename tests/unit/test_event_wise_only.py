"""``event_wise_scores``: the ``EW_*`` keys of ``esa_scores`` without the affiliation, and the
threshold search that reads it (``f05_per_candidate``) scoring every candidate as before."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from esa_lightning.metrics import esa_scores
from esa_lightning.metrics.event_wise import event_wise_scores
from esa_lightning.metrics.truth import read_truth
from esa_lightning.postprocessing.thresholds import F05_CATEGORIES, f05_per_candidate
from tests.helpers import make_mission
from tests.unit.test_metrics_properties import SETTINGS
from tests.unit.test_metrics_reference import CASES, CASES_FILE

N = 150
BETAS = [0.5, 1.0, 2.0]


@st.composite
def labels_and_alarms(draw):
    """Labels on integer times 0..N-1 (segments of one ID on several channels, two categories)
    and a 0/1 series of alarms."""
    rows = []
    for _ in range(draw(st.integers(1, 7))):
        start = draw(st.integers(0, N - 1))
        rows.append(
            {
                "ID": f"id_{draw(st.integers(0, 4))}",
                "Channel": f"channel_{draw(st.integers(1, 3))}",
                "StartTime": start,
                "EndTime": min(start + draw(st.integers(0, 20)), N - 1),
                "Category": draw(st.sampled_from(["Anomaly", "Rare Event"])),
            }
        )
    alarm = np.array(draw(st.lists(st.integers(0, 1), min_size=N, max_size=N)), dtype=np.uint8)
    return pd.DataFrame(rows), alarm


def ew_keys(scores: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in scores.items() if k.startswith("EW_")}


@SETTINGS
@given(
    labels_and_alarms(),
    st.sampled_from([None, {"Category": ["Anomaly"]}]),
    st.sampled_from([None, (0, N - 1), (-10, N + 25)]),
)
def test_the_event_wise_keys_equal_those_of_the_full_suite(case, select, full_range):
    events, alarm = case
    pred = (np.arange(N), alarm)
    kw = dict(betas=BETAS, select_labels=select, full_range=full_range)
    want = ew_keys(esa_scores(events, pred, **kw))
    got = event_wise_scores(events, pred, **kw)
    assert set(got) == {"EW_precision", "EW_recall", "EW_F_0.50", "EW_F_1.00", "EW_F_2.00"}
    assert got == want
    # the labels read once, as a threshold search passes them
    assert event_wise_scores(read_truth(events, select), pred, betas=BETAS,
                             full_range=full_range) == want


def test_no_alarm_scores_zero_and_one_caught_event_scores_its_share():
    events = pd.DataFrame({"ID": ["a", "b"], "StartTime": [10, 60], "EndTime": [20, 70]})
    none = np.zeros(N, dtype=np.uint8)
    assert event_wise_scores(events, (np.arange(N), none), full_range=(0, N - 1)) == {
        "EW_precision": 0.0, "EW_recall": 0.0, "EW_F_0.50": 0.0}
    one = none.copy()
    one[12:15] = 1
    got = event_wise_scores(events, (np.arange(N), one), full_range=(0, N - 1))
    assert got["EW_recall"] == 0.5
    assert got["EW_precision"] == 1.0  # no alarm outside the labels: no correction


@pytest.mark.skipif(not CASES, reason=f"reference cases absent ({CASES_FILE.name})")
def test_the_reference_cases_give_the_full_suites_event_wise_keys():
    for case in CASES:
        events = pd.DataFrame(case["events"])
        prediction = [(pd.Timestamp(t), v) for t, v in case["prediction"]]
        kw = dict(betas=0.5, select_labels=case["select_labels"])
        assert event_wise_scores(events, prediction, **kw) == ew_keys(
            esa_scores(events, prediction, **kw)
        )


def test_the_threshold_search_scores_every_candidate_as_the_full_suite_did():
    m = make_mission(anomalies=((120, 150), (400, 430), (900, 905), (1300, 1340)))
    part = m.fit_range()
    rng = np.random.default_rng(3)
    scores = rng.random(len(part.values))
    scores[part.labels.any(axis=1)] += 0.4  # the events score higher, with overlap
    candidates = np.quantile(scores, np.linspace(0.0, 0.999, 40))

    def alarm_of(thr: float) -> np.ndarray:
        return scores > thr

    times = np.asarray(part.timestamps)
    before = [
        esa_scores(part.events, (times, alarm_of(float(t)).astype(np.uint8)), betas=0.5,
                   select_labels={"Category": F05_CATEGORIES},
                   full_range=(times[0], times[-1]))["EW_F_0.50"]
        for t in candidates
    ]
    got = f05_per_candidate(candidates, alarm_of, part)
    assert got.tolist() == before
    assert len(set(before)) > 5  # the candidates differ: the comparison means something


def test_the_threshold_search_ignores_alarms_in_unscored_events_as_the_reported_metric_does():
    """Alarms inside a labeled event of another category (a communication gap) are neither
    true nor false positives in the reported ``EW_F_0.50`` (``full_report`` selects the
    categories and keeps the others aside); the threshold search scores them alike."""
    from esa_lightning.metrics import full_report

    m = make_mission(anomalies=((120, 150), (900, 905), (1300, 1340)))
    part = m.fit_range()
    times = np.asarray(part.timestamps)
    gap = {"ID": "id_gap", "Channel": "channel_2", "StartTime": times[500],
           "EndTime": times[700], "Category": "Communication Gap"}
    part.events = pd.concat([part.events, pd.DataFrame([gap])], ignore_index=True)
    rng = np.random.default_rng(3)
    scores = rng.random(len(part.values))
    scores[part.labels.any(axis=1)] += 0.4
    scores[500:701] += 0.6  # a gap the detector alarms in
    candidates = np.quantile(scores, np.linspace(0.5, 0.999, 30))

    def alarm_of(thr: float) -> np.ndarray:
        return scores > thr

    reported = [full_report(part.events, times, alarm_of(float(t)).astype(np.uint8))["EW_F_0.50"]
                for t in candidates]
    got = f05_per_candidate(candidates, alarm_of, part)
    assert got.tolist() == pytest.approx(reported)
    assert any(alarm_of(float(t))[500:701].any() and 0 < f < 1
               for t, f in zip(candidates, reported, strict=True))  # the gap matters
