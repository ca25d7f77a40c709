"""The rolling-statistics gradient-boosting baseline: exact features, fit, alarms, persistence,
chunked scoring, independent series and one-line config errors."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from esa_lightning.artifact import Detector, mission_schema
from esa_lightning.data.mission import Mission, default_channel_table
from esa_lightning.data.whole_mission import WholeMissionDataModule
from esa_lightning.errors import ESAInputError
from esa_lightning.models.base import RowScores
from esa_lightning.models.rolling_gbdt import RollingGBDT
from esa_lightning.models.rolling_gbdt.alarms import GapClosingF05, pooled_validation
from esa_lightning.models.rolling_gbdt.features import (
    feature_names,
    iter_feature_blocks,
    rolling_features,
    scale_values,
    window_std,
)
from esa_lightning.models.rolling_gbdt.model import CHECKPOINT_KEY
from esa_lightning.models.rolling_gbdt.scaling import training_rows
from esa_lightning.postprocessing.gaps import close_gaps
from esa_lightning.runtime.chunks import force_unrepresentable_alarms, score_in_chunks
from esa_lightning.runtime.evaluation import (
    ScoredRange,
    concatenate_series,
    report_for,
    score_range,
)
from tests.helpers import check_fit_held_once
from tests.unit.test_gap_close import mission_with

RULE = {"alarm": {"kind": "f05_gap"}}
SPIKE, SHIFT = 1, 2  # channels of the two kinds of anomaly


def labeled_mission(seed: int = 0, name: str = "spiky", level: float = 0.0) -> Mission:
    """Three noisy sines, 9000 rows; spikes (+6 for 15 rows on channel 1) and level shifts (+3
    for 80 rows on channel 2) in every range, each labeled and listed as an event.
    Train [0, 5000), validation [5000, 6500), test [6500, 9000)."""
    rng = np.random.default_rng(seed)
    n, t = 9000, np.arange(9000)
    values = np.stack(
        [np.sin(2 * np.pi * t / p) + 0.1 * rng.standard_normal(n) for p in (60, 97, 150)], axis=1
    )
    values = (values * (1 + level) + level).astype(np.float32)
    labels = np.zeros(values.shape, dtype=np.uint8)
    stamps = np.datetime64("2000-01-01", "ns") + t * np.timedelta64(30, "s")
    names = [f"channel_{c}" for c in range(3)]
    spikes = [500, 1500, 2500, 3500, 4500, 5300, 7000]
    shifts = [1000, 2000, 3000, 4000, 5900, 8000]
    events = []
    for channel, starts, length, height in ((SPIKE, spikes, 15, 6.0), (SHIFT, shifts, 80, 3.0)):
        for s in starts:
            values[s : s + length, channel] += height * (1 + level)
            labels[s : s + length, channel] = 1
            events.append(
                {
                    "ID": f"{name}_{channel}_{s}",
                    "Channel": names[channel],
                    "StartTime": stamps[s],
                    "EndTime": stamps[s + length - 1],
                    "Category": "Anomaly",
                }
            )
    return Mission(
        name=name,
        values=values,
        timestamps=stamps,
        channels=default_channel_table(names),
        labels=labels,
        events=pd.DataFrame(events),
        val_start=5000,
        test_start=6500,
    )


def fitted(mission: Mission, **options) -> RollingGBDT:
    dims = WholeMissionDataModule(mission).dims
    model = RollingGBDT(**dims, post_processing=RULE, max_iter=50, **options)
    model.fit(mission)
    model.fit_post_processing(WholeMissionDataModule(mission))
    return model


@pytest.fixture(scope="module")
def mission() -> Mission:
    return labeled_mission()


@pytest.fixture(scope="module")
def model(mission) -> RollingGBDT:
    return fitted(mission, top_channels=1)


# ------------------------------------------------------------------------------ features
def pandas_reference(x: np.ndarray, windows: list[int]) -> np.ndarray:
    """The features as plain pandas computes them, float32 [T, C * F]."""
    frame = pd.DataFrame(x)
    cols = {"value": frame, "diff": frame.diff()}
    for w in windows:
        roll = frame.rolling(w, center=True, min_periods=1)
        cols[f"median_{w}"] = roll.median()
        cols[f"std_{w}"] = roll.std(ddof=0)
        cols[f"range_{w}"] = roll.max() - roll.min()
        cols[f"dev_{w}"] = frame - roll.median()
    stacked = np.stack([c.to_numpy() for c in cols.values()], axis=2)  # [T, C, F]
    return stacked.reshape(len(x), -1).astype(np.float32)


def test_features_equal_a_plain_pandas_reference():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 2)).cumsum(axis=0) + 50.0
    windows = [2, 5, 8, 25]
    got = rolling_features(x, windows, block=1024)
    ref = pandas_reference(x, windows)
    assert got.shape == ref.shape == (300, 2 * (2 + 4 * 4))
    assert len(feature_names(["a", "b"], windows)) == got.shape[1]
    std = np.array(["std_" in n for n in feature_names(["a", "b"], windows)])
    np.testing.assert_array_equal(got[:, ~std], ref[:, ~std])  # order statistics: exact
    np.testing.assert_allclose(got[:, std], ref[:, std], rtol=2e-6, atol=2e-6)


def test_window_std_across_prefix_blocks_equals_pandas():
    x = np.random.default_rng(2).standard_normal((100, 3)) * 3 + 1e4  # large level, small spread
    for w in (1, 4, 7, 8):
        ref = pd.DataFrame(x).rolling(w, center=True, min_periods=1).std(ddof=0).to_numpy()
        np.testing.assert_allclose(window_std(x, w, block=8), ref, rtol=1e-6, atol=1e-6)


def test_feature_blocks_equal_whole_features_and_aligned_slices_agree():
    rng = np.random.default_rng(3)  # heavy tails: rounding shows if the prefix grid moves
    values = rng.standard_normal((5000, 2)) * np.exp(3 * rng.standard_normal((5000, 2)))
    values = values.astype(np.float32)
    values[100, 1] = np.nan  # read as the median
    windows, center, scale = [5, 25, 100, 400], np.array([1.0, -2.0]), np.array([2.0, 0.5])
    x = scale_values(values, center, scale)
    assert x[100, 1] == 0.0
    whole = rolling_features(x, windows, block=1024)
    blocks = iter_feature_blocks(values, windows, center, scale, rows=1024)
    np.testing.assert_array_equal(np.concatenate([f for _, _, f in blocks]), whole)
    part = rolling_features(x[2048:], windows, block=1024)  # starts on the prefix-sum grid
    np.testing.assert_array_equal(part[200:], whole[2048 + 200 :])


# -------------------------------------------------------------------------- alarms, rows
def test_training_rows_keep_every_anomaly_and_a_seeded_subsample():
    y = np.zeros(10_000, dtype=bool)
    y[100:400] = True
    pick = training_rows(y, 2000, seed=0)
    assert len(pick) == 2000 and y[pick].sum() == 300
    np.testing.assert_array_equal(pick, training_rows(y, 2000, seed=0))
    assert not np.array_equal(pick, training_rows(y, 2000, seed=1))
    y[:] = True
    y[:50] = False
    many = training_rows(y, 1000, seed=0)
    assert len(many) == 1000 and (~y[many]).sum() == 50  # anomalies capped, all others kept


# ---------------------------------------------------------------------- fit and scoring
def test_fit_detects_the_spike_and_the_level_shift_of_the_test_range(mission, model):
    test = mission.test()
    out = model.score_rows(test)
    assert out.score.dtype == np.float32 and out.alarm.dtype == np.uint8
    assert model.is_calibrated and 0 <= int(model.alarm_rule.width) <= 100
    spike, shift = slice(500, 515), slice(1500, 1580)  # 7000 and 8000 in mission rows
    assert out.alarm[spike].mean() > 0.8 and out.alarm[shift].mean() > 0.8
    truth = test.is_anomaly.astype(bool)
    assert out.alarm[~truth].mean() < 0.01
    # the channel an alarmed row names is the one that moved
    assert out.channel_alarm[spike][out.alarm[spike] > 0, SPIKE].all()
    assert out.channel_alarm[shift][out.alarm[shift] > 0, SHIFT].all()
    assert (out.channel_alarm.sum(axis=1) == out.alarm).all()  # top_channels=1
    # intervals.csv's threshold column: the fitted threshold each row's probability met
    assert out.threshold is not None and out.threshold.dtype == np.float32
    np.testing.assert_array_equal(out.threshold, np.float32(float(model.alarm_rule.threshold)))
    crossed = out.score.astype(np.float64) > float(model.alarm_rule.threshold)
    assert (out.alarm[crossed] == 1).all()  # gap closing only adds alarms


def test_scoring_ignores_labels(mission, model):
    test = mission.test()
    relabeled = dataclasses.replace(test, labels=np.ones_like(test.labels))
    a, b = model.score_rows(test), model.score_rows(relabeled)
    np.testing.assert_array_equal(a.score, b.score)
    np.testing.assert_array_equal(a.alarm, b.alarm)


def test_chunked_scoring_equals_whole_scoring(mission, model):
    part = mission.slice(3000, 9000)
    rng = np.random.default_rng(6)  # heavy tails: rounding shows if the prefix grid moves
    wild = rng.standard_normal(part.values.shape) * np.exp(3 * rng.standard_normal((6000, 3)))
    for scored in (part, dataclasses.replace(part, values=wild.astype(np.float32))):
        whole = model.score_rows(scored)
        assert whole.alarm.any()
        for chunk in (1000, 2048):
            chunked = score_in_chunks(model, scored, chunk_rows=chunk)
            for field in ("score", "alarm", "channel_scores", "channel_alarm"):
                np.testing.assert_array_equal(getattr(chunked, field), getattr(whole, field))


def test_saved_and_loaded_detector_scores_identically(mission, model, tmp_path):
    detector = Detector({"rolling_gbdt": model}, mission_schema(mission))
    detector.save(tmp_path / "detector")
    assert (tmp_path / "detector" / "components" / "rolling_gbdt" / "classifier.skops").is_file()
    loaded = Detector.load(tmp_path / "detector")
    (again,) = loaded.components.values()
    assert float(again.alarm_rule.threshold) == float(model.alarm_rule.threshold)
    test = mission.test()
    a, b = model.score_rows(test), loaded.score_rows(test)
    for field in ("score", "alarm", "channel_scores", "channel_alarm"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    (tmp_path / "detector" / "components" / "rolling_gbdt" / "classifier.skops").write_bytes(b"x")
    with pytest.raises(ESAInputError, match=r"classifier\.skops: changed since the artifact"):
        Detector.load(tmp_path / "detector")


def test_checkpoint_carries_the_classifier(mission, model):
    checkpoint: dict = {}
    model.on_save_checkpoint(checkpoint)
    fresh = RollingGBDT(**WholeMissionDataModule(mission).dims, post_processing=RULE)
    fresh.load_state_dict(model.state_dict())
    fresh.on_load_checkpoint(checkpoint)
    test = mission.test()
    np.testing.assert_array_equal(fresh.score_rows(test).alarm, model.score_rows(test).alarm)


def test_artifact_holds_the_classifier_once_and_older_ones_still_load(mission, model, tmp_path):
    """The classifier is in classifier.skops only: the Lightning checkpoint of the one-epoch fit
    without gradient steps (one more copy of it) stays in the run folder. An artifact written
    with it loads and scores the same, and saves again without it."""
    check_fit_held_once(model, CHECKPOINT_KEY, mission, tmp_path)


def test_without_validation_events_the_threshold_falls_back(mission, model):
    quiet = dataclasses.replace(mission, events=mission.events.iloc[:0]).val()
    rule = GapClosingF05(fallback_threshold=0.7)
    rule.fit_scores(model.row_probability(quiet).astype(np.float64), quiet)
    assert float(rule.threshold) == 0.7 and int(rule.width) == 0


def test_validation_rows_are_scored_with_the_training_rows_before_them(mission, model):
    """The evaluation scores the validation range with the rows before it as context (its
    centred windows reach 200 rows back into training); the fit must choose on those scores,
    not on the range scored alone, whose first rows' windows stop at its edge."""
    score, part = pooled_validation(model, mission)
    evaluated = score_range(model, mission.val(), within=mission).scores.score
    assert len(score) == len(part.values) == 1500
    np.testing.assert_array_equal(score, evaluated.astype(np.float64))
    # the rows it reads: what scores the validation range alone differs there
    alone = model.row_probability(mission.val())
    assert (alone[:200] != evaluated[:200]).any()
    np.testing.assert_array_equal(alone[250:], evaluated[250:])


def test_each_series_validation_is_scored_alone_as_the_evaluation_scores_it(two_series):
    """Independent series (NASA): the evaluation scores each series' validation rows alone
    (the Telemanom protocol scores each recording so), and the fit does too."""
    both, model = two_series
    score, part = pooled_validation(model, both)
    evaluated = score_range(model, both.val(), within=both)
    assert part.meta["segments"] == evaluated.segments
    np.testing.assert_array_equal(score, evaluated.scores.score.astype(np.float64))


def test_the_fit_scores_the_alarms_an_unrepresentable_reading_forces():
    """The evaluation alarms every row of a reading float32 cannot hold, after the threshold
    and the gap closing; the fit must score those alarms too. Two validation events 19 rows
    apart, both above the threshold: without the reading no gap needs closing (the narrowest
    width wins the tie); one between them is a false alarm unless width 25 closes over it."""
    m = mission_with([(650, 660), (680, 690)])  # validation [600, 900)
    val = m.val()
    val.unrepresentable = np.zeros(300, np.uint8)
    val.unrepresentable[70] = 1  # row 670
    score = np.full(300, 0.1)
    score[50:61], score[80:91] = 0.9, 0.9
    rule = GapClosingF05(widths=[0, 5, 25], n_candidates=4)
    rule.fit_scores(score, val)
    assert int(rule.width) == 25
    forced = force_unrepresentable_alarms(
        RowScores(score=score.astype(np.float32), alarm=close_gaps(score > 0.5, 25)),
        val.unrepresentable)
    scored = ScoredRange(val, forced, np.asarray(val.timestamps), val.events)
    best = max(f for f, _, _ in rule.f05_table(score, val))
    assert best == pytest.approx(report_for(scored, "val")["val/EW_F_0.50"], abs=1e-12)


def test_pooled_series_are_scored_per_candidate_as_the_evaluation_reports_them():
    """Two series' validation ranges pooled on one timeline: a run of high scores from A's last
    validation rows into B's first (one alarm, if it ran on from one series into the next), and
    high scores 3 rows apart across the junction (a gap closed across it would alarm the rows
    between); a reading float32 cannot hold in B (scoring forces its alarm). Every (width,
    threshold) the rule tries scores the validation EW_F_0.50 that runtime.evaluation reports
    for the same alarms, thresholded, closed and forced series by series."""
    a = mission_with([(220, 230)], n=400, test_start=300, name="A", day=100)  # val [200, 300)
    b = mission_with([(200, 210)], n=350, test_start=250, name="B", day=200)  # val [166, 250)
    b.unrepresentable = np.zeros(350, np.uint8)
    b.unrepresentable[166 + 38] = 1  # between B's high scores 34 and 40
    both = Mission("two", {"A": a.values, "B": b.values}, None, default_channel_table(["A", "B"]),
                   None, pd.concat([a.events, b.events], ignore_index=True),
                   series={"A": a, "B": b})
    scores = {"A": np.full(100, 0.1), "B": np.full(84, 0.1)}  # validation rows of each
    scores["A"][[20, 22, 25, 28, 30, 96]] = 0.9  # the event, and a high score near the end
    scores["A"][[60, 98, 99]] = 0.6
    scores["B"][[0, 1]], scores["B"][[3, 34, 40, 44]] = 0.6, 0.9  # B's event: rows 34-44
    model = SimpleNamespace(row_probability=lambda grid: scores[grid.name])
    score, part = pooled_validation(model, both)
    rule = GapClosingF05(widths=[0, 5, 25], n_candidates=4)
    table = rule.f05_table(score, part)
    val = both.val()
    reported = {}  # (width, alarms) -> the reported validation EW_F_0.50
    for _, width, thr in table:
        pieces = [(n, g, force_unrepresentable_alarms(RowScores(
            score=scores[n].astype(np.float32),
            alarm=close_gaps(scores[n] > thr, width).astype(np.uint8)), g.unrepresentable))
                  for n, g in val.grids().items()]
        key = (width, thr, np.concatenate([p[2].alarm for p in pieces]).tobytes())
        if key[::2] not in reported:
            scored = concatenate_series(val, pieces)
            reported[key[::2]] = report_for(scored, "val")["val/EW_F_0.50"]
        reported[key[:2]] = reported[key[::2]]
    got = {(w, t): f for f, w, t in table}
    assert sorted(set(got.values())) != [0.0]
    np.testing.assert_allclose([got[k] for k in got], [reported[k] for k in got], atol=1e-12)


@pytest.fixture(scope="module")
def two_series() -> tuple[Mission, RollingGBDT]:
    """Two independent series (the NASA layout) and the model fitted on them."""
    a, b = labeled_mission(seed=4, name="A"), labeled_mission(seed=5, name="B", level=40.0)
    both = Mission(
        "two",
        {"A": a.values, "B": b.values},
        None,
        default_channel_table(["A", "B"]),
        None,
        pd.concat([a.events, b.events]),
        series={"A": a, "B": b},
    )
    return both, fitted(both)


def test_independent_series_are_scaled_and_featurised_apart(two_series):
    both, model = two_series
    a, b = both.series["A"], both.series["B"]
    assert WholeMissionDataModule(both).dims == {"n_channels": 3, "series": ["A", "B"]}
    assert model.center[1, 0] > model.center[0, 0] + 30  # each series its own median
    for grid in (a, b):
        test = grid.test()
        alone = model.score_rows(test)
        assert alone.alarm[500:515].mean() > 0.8 and alone.alarm[1500:1580].mean() > 0.8
    with pytest.raises(ESAInputError, match="which of the trained series"):
        model.score_rows(dataclasses.replace(a.test(), name="C"))


# -------------------------------------------------------------------------- bad config
@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"windows": [0, 5]}, "model.windows"),
        ({"windows": "5"}, "model.windows"),
        ({"max_rows": 0}, "model.max_rows"),
        ({"top_channels": 0}, "model.top_channels"),
        ({"learning_rate": 0}, "model.learning_rate"),
        # scikit-learn's InvalidParameterError traceback once the fit began
        ({"l2_regularization": -1.0}, "model.l2_regularization"),
        ({"l2_regularization": float("inf")}, "model.l2_regularization"),
        ({"post_processing": {}}, "model.post_processing"),
        ({"post_processing": {"alarm": {"kind": "f05_gap", "widths": [-1]}}},
         "model.post_processing.alarm.widths"),
    ],
)
def test_bad_options_are_one_line_errors_naming_the_key(options, key):
    with pytest.raises(ESAInputError, match=key.replace(".", r"\.")):
        RollingGBDT(n_channels=3, **{"post_processing": RULE, **options})


def test_a_training_range_without_anomalies_is_refused(mission):
    clean = dataclasses.replace(mission, labels=np.zeros_like(mission.labels))
    with pytest.raises(ESAInputError, match="needs both anomalous"):
        RollingGBDT(n_channels=3, post_processing=RULE).fit(clean)


def test_the_rule_is_built_from_its_kind():
    assert isinstance(RollingGBDT(n_channels=3, post_processing=RULE).alarm_rule, GapClosingF05)


def test_a_stacked_model_never_fits_on_the_classifiers_training_rows(mission):
    # the classifier reads every training label: its scores there are in sample, so a combiner
    # stacked on it (MissionDataModule.label_fit_end) starts at the validation range
    assert WholeMissionDataModule(mission).label_fit_end() == mission.val_start


def test_window_std_of_a_window_longer_than_the_rows_allocates_for_the_rows():
    """A ``windows`` entry of 10**9 in an edited detector.json loaded (only entries below 2
    are refused) and scoring ended in a ``MemoryError``: the prefix sums were padded to two
    blocks of the window's grid, not the rows (600 rows, a block of 2**20: 250 MB). Windows
    longer than the rows are truncated to them, so one block of the rows gives the same
    numbers."""
    import tracemalloc

    x = np.random.default_rng(0).standard_normal((600, 3))
    tracemalloc.start()
    try:
        got = window_std(x, 10**6, 2**20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5 * 2**20, peak
    np.testing.assert_array_equal(got, window_std(x, 10**6, 1024))
