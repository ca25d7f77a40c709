"""Alarm attribution, confidence and the random-forest gate's decision in intervals.csv."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier

from esa_lightning.postprocessing.confidence import confidence
from esa_lightning.postprocessing.random_forest import RandomForestGate
from esa_lightning.reporting.outputs import INTERVAL_COLUMNS, alarm_intervals, write_intervals
from esa_lightning.reporting.reference import nominal_reference, reference_for, reference_record
from tests.helpers import RawErrorScorer, counter_mission


def _intervals(mission, scorer, reference=True):
    part = mission.test()
    scores = scorer.score_rows(part)
    ref = nominal_reference(scorer, mission) if reference else None
    return alarm_intervals(np.asarray(part.timestamps), scores, part, ref)


def test_attribution_names_the_spiked_target_channel_not_the_counter():
    mission = counter_mission("target_b")
    scorer = RawErrorScorer(mission, "target_b")
    # the counter's raw error dwarfs the spike's inside the alarm: ranking raw errors names it
    part = mission.test()
    raw = scorer.score_rows(part).channel_scores[100:120]
    assert raw[:, 2].max() > raw[:, 1].max()
    intervals = _intervals(mission, scorer)
    assert len(intervals) == 1
    row = intervals.iloc[0]
    assert row["channels"] == "target_b"
    ranked = [item.split("=")[0] for item in row["top_channels"].split(";")]
    assert ranked[0] == "target_b" and "counter_c" not in ranked and "mode_d" not in ranked
    assert row["channels"] != row["top_channels"]  # drivers vs ranked contributions


def test_attribution_from_raw_values_when_the_detector_has_no_channel_scores():
    mission = counter_mission("target_a")
    scorer = RawErrorScorer(mission, "target_a", channel_scores=False)
    for reference in (True, False):  # against validation rows, or the scored range itself
        (row,) = _intervals(mission, scorer, reference).itertuples(index=False)
        assert row.channels == "target_a"


def test_a_counter_is_named_when_it_truly_drives_the_alarm():
    mission = counter_mission("counter_c", spike=1000.0)
    scorer = RawErrorScorer(mission, "counter_c", threshold=200.0)
    (row,) = _intervals(mission, scorer).itertuples(index=False)
    assert row.channels.split(";")[0] == "counter_c"


def test_confidence_is_the_fraction_of_nominal_scores_below():
    reference = np.array([0.0, 1.0, 2.0, 3.0])  # sorted, as NominalReference keeps them
    got = confidence(np.array([-1.0, 1.5, 3.0, 10.0, np.nan]), reference)
    np.testing.assert_array_equal(got[:4], [0.0, 0.5, 0.75, 1.0])
    assert np.isnan(got[4])
    assert np.isnan(confidence(np.array([1.0]), np.array([]))).all()


def test_intervals_carry_confidence_threshold_and_their_columns(tmp_path):
    mission = counter_mission("target_b")
    intervals = _intervals(mission, RawErrorScorer(mission, "target_b"))
    row = intervals.iloc[0]
    assert row["threshold"] == 3.0
    assert row["score"] > 7 and row["confidence"] == 1.0  # above every nominal score
    assert row["gate"] == "" and np.isnan(row["gate_probability"])  # no gate
    write_intervals(intervals, tmp_path / "intervals.csv")
    written = pd.read_csv(tmp_path / "intervals.csv")
    assert list(written.columns) == INTERVAL_COLUMNS
    assert INTERVAL_COLUMNS[:5] == ["start", "end", "channels", "score", "top_channels"]


def test_gate_reports_its_decision_and_probability():
    rng = np.random.default_rng(0)
    n, c = 60, 2
    wo = SimpleNamespace(
        total=rng.random(n).astype(np.float32),
        per_channel=rng.random((n, c)).astype(np.float32),
        latent=rng.random((n, 3)).astype(np.float32),
        attention_stats=rng.random((n, 3)).astype(np.float32),
    )
    features = np.concatenate([wo.total[:, None], wo.per_channel, wo.latent, wo.attention_stats], 1)
    y = (wo.total > 0.5).astype(int)
    gate = RandomForestGate(n_estimators=10)
    gate.forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(features, y)
    alarm_w = np.arange(n) % 3 == 0
    kept, probability = gate.judge(wo, alarm_w)
    assert np.isnan(probability[~alarm_w]).all()
    expected = gate.forest.predict_proba(features[alarm_w])[:, 1]
    np.testing.assert_allclose(probability[alarm_w], expected, rtol=1e-6)
    np.testing.assert_array_equal(kept[alarm_w], gate.forest.predict(features[alarm_w]) == 1)
    assert not kept[~alarm_w].any()
    np.testing.assert_array_equal(gate.accepts(wo, alarm_w), kept)

    mission = counter_mission("target_b")
    part = mission.test()
    scores = RawErrorScorer(mission, "target_b").score_rows(part)
    scores.gate_probability = np.where(scores.alarm == 1, 0.8, np.nan).astype(np.float32)
    (row,) = alarm_intervals(np.asarray(part.timestamps), scores, part).itertuples(index=False)
    assert row.gate == "accepted" and row.gate_probability == np.float32(0.8)


class CollateralScorer(RawErrorScorer):
    """Its error on the flat categorical channel is tiny when nominal and soars inside every
    alarm (a network whose whole reconstruction degrades), while the channel stays flat."""

    def score_rows(self, mission):
        rs = super().score_rows(mission)
        rs.channel_scores[:, 3] = 1e-3 + 50.0 * rs.alarm
        return rs


def test_a_flat_channel_with_collateral_error_is_not_named():
    mission = counter_mission("target_b")
    (row,) = _intervals(mission, CollateralScorer(mission, "target_b")).itertuples(index=False)
    assert row.channels == "target_b"
    assert "mode_d" not in row.top_channels


def test_an_artifact_reference_is_used_as_stored():
    """predict.py reads the artifact's reference (written at training) like the Python API:
    its scores give the confidence; with the per-channel spreads too, nothing is re-scored."""
    mission = counter_mission("target_b")
    scorer = RawErrorScorer(mission, "target_b")
    computed = nominal_reference(scorer, mission)
    stored_scores = np.linspace(0.0, 100.0, 101)  # a reference other than the re-scored one
    only_scores = {"calibration": {"reference_scores": stored_scores.tolist()}}
    mixed = reference_for(scorer, mission, info=only_scores)
    np.testing.assert_array_equal(mixed.scores, stored_scores)
    np.testing.assert_array_equal(mixed.values.spread, computed.values.spread)

    whole = {
        "calibration": {
            "reference_scores": stored_scores.tolist(),
            "n_rows": 7,
            **reference_record(computed),
        }
    }
    never = SimpleNamespace(context_rows=0, alignment_rows=1, score_rows=None)  # not callable
    back = reference_for(never, mission, info=whole)
    assert back.rows == 7
    np.testing.assert_array_equal(back.channel_scores.spread, computed.channel_scores.spread)
    part = mission.test()
    (row,) = alarm_intervals(
        np.asarray(part.timestamps), scorer.score_rows(part), part, back
    ).itertuples(index=False)
    assert row.channels == "target_b"
    assert row.confidence == confidence(np.array([row.score]), stored_scores)[0]


def test_channels_that_contributed_nothing_are_not_all_named_drivers():
    """Where the top contribution is 0 (a zero share of nothing), every channel at 0 passed the
    driver rule: intervals.csv named them all (top_channels channel_3=0;channel_4=0). A channel
    at 0 did not push the score up: none is named (the first was, before the rule below)."""
    from esa_lightning.reporting.attribution import attribute

    names = ["a", "b", "c"]
    nothing = attribute(np.zeros(3), names, set())
    assert nothing.drivers == [] and nothing.ranked == [] and nothing.top_channels == ""
    some = attribute(np.array([0.0, 2.0, 1.5]), names, set())
    assert some.drivers == ["b", "c"]  # the rule itself is unchanged above 0


def test_channels_that_did_not_push_the_score_up_are_not_ranked():
    """A z-score channel that stayed at or below its nominal median inside the alarm has a
    contribution of 0 or less: top_channels listed it (channel_0=-0.0221;channel_2=-0.106)
    beside the channel that drove the alarm."""
    from esa_lightning.reporting.attribution import attribute
    from tests.helpers import fitted_zscore, toy_mission

    found = attribute(np.array([-0.5, 2.0, 0.0, np.nan, 0.3]), list("abcde"), set())
    assert found.ranked == [("b", 2.0), ("e", 0.3)] and found.drivers == ["b"]

    rng = np.random.default_rng(0)
    values = rng.standard_normal((3000, 3)).astype(np.float32)
    values[2500:2503, 1] += 10.0
    mission = toy_mission(values, val_start=1500, test_start=2000)
    (row,) = _intervals(mission, fitted_zscore(mission)).itertuples(index=False)
    ranked = dict(item.split("=") for item in row.top_channels.split(";"))
    assert "channel_1" in ranked and all(float(v) > 0 for v in ranked.values())


def test_zscore_alarm_names_the_channel_that_spiked_downward():
    """The robust z-score's per-channel score is |x - median| / scale: a channel that drops
    far below its median drives the alarm and is the one named, with a positive contribution;
    the channels that stayed nominal are not drivers."""
    from tests.helpers import fitted_zscore, toy_mission

    rng = np.random.default_rng(0)
    t = np.arange(3000)
    values = np.stack([np.sin(t / 20) + 0.05 * rng.standard_normal(3000),
                       0.3 * rng.standard_normal(3000),
                       5 + 0.01 * rng.standard_normal(3000)], axis=1).astype(np.float32)
    values[2500:2503, 1] -= 3.0  # ten standard deviations below
    mission = toy_mission(values, val_start=1500, test_start=2000)
    model = fitted_zscore(mission)
    part = mission.test()
    scores = model.score_rows(part)
    (row,) = _intervals(mission, model).itertuples(index=False)
    peak = 500 + int(np.argmax(scores.score[500:503]))
    assert int(np.argmax(scores.channel_scores[peak])) == 1  # what drove the row's score
    assert row.channels == "channel_1"
    name, value = row.top_channels.split(";")[0].split("=")
    assert name == "channel_1" and float(value) > 1.0


class TopChannelScorer(RawErrorScorer):
    """``RawErrorScorer`` alarming per channel as the row-deciding detectors do
    (``top_channel_alarm``): an alarmed row alarms its ``k`` channels of highest raw error,
    which include the noisy counter whose raw error dwarfs the others'."""

    def __init__(self, mission, alarm_channel, k=2, **kwargs):
        super().__init__(mission, alarm_channel, **kwargs)
        self.k = k

    def score_rows(self, mission):
        from esa_lightning.models.base import top_channel_alarm

        rs = super().score_rows(mission)
        rs.channel_alarm = top_channel_alarm(rs.alarm, rs.channel_scores, self.k)
        return rs


def _alarmed_in(scores, row, names):
    block = np.asarray(scores.channel_alarm)[row.start_index : row.end_index + 1]
    return {names[j] for j in np.flatnonzero(block.any(axis=0))}


def test_intervals_name_the_channels_the_detector_alarmed():
    """intervals.csv named the attribution's drivers (target_b), while the per-channel alarms
    the channel_* metrics score were target_b and counter_c on the same rows: ``channels`` is
    the channels alarmed inside the interval, ``top_channels`` ranks those, and the attribution
    over all channels has a column of its own (``deviating_channels``)."""
    mission = counter_mission("target_b")
    scorer = TopChannelScorer(mission, "target_b")
    part = mission.test()
    scores = scorer.score_rows(part)
    intervals = _intervals(mission, scorer)
    assert len(intervals) == 1
    row = intervals.iloc[0]
    alarmed = _alarmed_in(scores, row, part.channel_names)
    assert {"target_b", "counter_c"} <= alarmed  # what the channel metrics score
    assert set(row["channels"].split(";")) == alarmed
    ranked = [item.split("=") for item in row["top_channels"].split(";")]
    assert {name for name, _ in ranked} == alarmed
    values = [float(v) for _, v in ranked]
    assert values == sorted(values, reverse=True)  # ranked by contribution
    assert row["channels"].split(";") == [name for name, _ in ranked]  # in the same order
    assert ranked[0][0] == "target_b"  # the spike outweighs the counter's ordinary noise
    deviating = [item.split("=")[0] for item in row["deviating_channels"].split(";")]
    assert deviating[0] == "target_b" and "counter_c" not in deviating


def test_every_interval_names_exactly_its_alarmed_channels():
    """A z-score detector alarming each channel above the threshold, over several alarms:
    each interval's ``channels`` is the union of the channels alarmed on its rows."""
    from tests.helpers import fitted_zscore, toy_mission

    rng = np.random.default_rng(1)
    values = rng.standard_normal((3000, 4)).astype(np.float32)
    values[2100:2104, 0] += 9.0
    values[2102:2106, 2] += 7.0
    values[2500:2503, 3] -= 12.0
    values[2800:2802, [1, 3]] += 8.0
    mission = toy_mission(values, val_start=1500, test_start=2000)
    model = fitted_zscore(mission)
    part = mission.test()
    scores = model.score_rows(part)
    intervals = _intervals(mission, model)
    assert len(intervals) >= 3
    for row in intervals.itertuples(index=False):
        alarmed = _alarmed_in(scores, row, part.channel_names)
        assert set(filter(None, row.channels.split(";"))) == alarmed
        top = {item.split("=")[0] for item in row.top_channels.split(";") if item}
        assert top <= alarmed and len(top) == min(len(alarmed), 5)


def test_a_channels_spread_of_inf_scores_is_the_largest_float_without_a_warning():
    """Nominal channel scores that are +inf (a 1e38 reading) on 2 of 100 rows: their 99th
    percentile lies between two infs, which numpy's quantile made inf - inf (NaN, "invalid
    value encountered in subtract"), then a spread of the 1e-6 floor. The deviation there is
    +inf, the highest: the spread is the largest float; another channel keeps its own."""
    import warnings

    from esa_lightning.reporting.reference import channel_spread

    x = np.array([[np.inf, 1.0]] * 2 + [[0.5, 2.0]] * 98)
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        for two_sided in (False, True):
            spread = channel_spread(x, two_sided)
            assert spread.spread[0] == np.finfo(np.float64).max
            assert spread.spread[1] == channel_spread(x[:, 1:], two_sided).spread[0]
            assert spread.normalise(np.array([[np.inf, 2.0]]))[0, 0] == np.inf
