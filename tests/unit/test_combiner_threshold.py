"""The combiner's threshold: on log-odds (no saturation) and stable across folds of the fit range,
not the one that happens to catch one of a validation range's few events."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from esa_lightning.data.mission import Mission, default_channel_table
from esa_lightning.errors import ESAInputError
from esa_lightning.models.base import RowScores
from esa_lightning.postprocessing.thresholds import best_f05_threshold, stable_f05_threshold
from esa_lightning.runtime.combiner import HybridCombiner
from esa_lightning.runtime.combiner_parts import contiguous_folds
from tests.helpers import make_mission
from tests.unit.test_chunks import RollingScorer


def scored_range(scores: np.ndarray, events: list[tuple[int, int]], name: str) -> Mission:
    """A one-channel range whose values are ``scores`` and whose labeled events are ``events``."""
    n = len(scores)
    stamps = pd.date_range("2000-01-01", periods=n, freq="30s").to_numpy()
    labels = np.zeros((n, 1), np.uint8)
    rows = []
    for k, (a, b) in enumerate(events):
        labels[a : b + 1] = 1
        rows.append(
            {
                "ID": f"id_{k}",
                "Channel": "a",
                "StartTime": stamps[a],
                "EndTime": stamps[b],
                "Category": "Anomaly",
            }
        )
    return Mission(
        name,
        scores[:, None].astype(np.float32),
        stamps,
        default_channel_table(["a"]),
        labels,
        pd.DataFrame(rows),
        val_start=n,
        test_start=n,
    )


def test_stable_threshold_is_good_on_every_fold():
    rng = np.random.default_rng(0)
    quiet = 3.0 * rng.random(400)
    quiet[100:105] = 6.0  # fold A: any threshold in [3, 6) is perfect
    busy = 3.0 * rng.random(400)
    busy[100:105] = 6.0
    busy[300] = 5.0  # fold B: a nominal blip at 5, so only [5, 6) is perfect
    a = scored_range(quiet, [(100, 104)], "a")
    b = scored_range(busy, [(100, 104)], "b")
    candidates = np.linspace(0.0, 7.0, 71)
    alone, f_alone, _ = best_f05_threshold(candidates, lambda t: quiet > t, a)
    assert f_alone == 1.0 and alone < 5.0  # chosen on fold A alone: alarms on B's blip
    thr, mean_f, n_folds = stable_f05_threshold(
        candidates, [(a, lambda t: quiet > t), (b, lambda t: busy > t)]
    )
    assert n_folds == 2 and mean_f == 1.0 and 5.0 <= thr < 6.0
    # a fold without an event is left out; none at all gives None
    empty = scored_range(quiet, [], "empty")
    assert stable_f05_threshold(candidates, [(a, quiet.__gt__), (empty, quiet.__gt__)])[2] == 1
    assert stable_f05_threshold(candidates, [(empty, quiet.__gt__)]) is None


def test_contiguous_folds_cut_one_run_and_keep_separate_runs():
    one = contiguous_folds([(0, 100), (100, 200), (200, 300)], n_folds=3)
    assert [r for r, _ in one] == [(0, 100), (100, 200), (200, 300)]
    assert [f for _, f in one] == [(0, 100), (100, 200), (200, 300)]
    sampled = contiguous_folds([(0, 100), (100, 200), (500, 600)], n_folds=3)
    assert sampled == [((0, 200), (0, 200)), ((500, 600), (200, 300))]


def fitted_on_five_events() -> tuple[Mission, dict[str, RollingScorer], HybridCombiner]:
    """A mission of five 20-30-row events (three training, one validation, one test), one
    rolling scorer, and a combiner fitted on its fit range with weights (3 events needed)."""
    mission = make_mission(
        n_rows=6000,
        val_start=4000,
        test_start=5000,
        anomalies=((800, 830), (1900, 1930), (3100, 3130), (4400, 4420), (5400, 5420)),
    )
    components = {"a": RollingScorer(half=3)}
    comb = HybridCombiner(neighbourhood=4, block_rows=500, threshold_min_events=3)
    comb.fit(components, mission.fit_range())
    return mission, components, comb


def test_saturated_probabilities_still_alarm_and_survive_a_reload(tmp_path):
    mission, components, comb = fitted_on_five_events()
    comb.coef = comb.coef * 1000.0  # log-odds in the thousands: float32 probabilities are 1.0
    comb.intercept *= 1000.0
    x = comb.features(components, mission.val())
    comb.threshold = comb.choose_threshold([(mission.val(), comb._logit(x))])
    test = mission.test()
    out = comb.score_rows(components, test)
    assert np.all(out.score[out.alarm > 0] == 1.0)  # saturated, yet the threshold separates
    rows = np.arange(len(out.alarm)) + mission.test_start
    assert out.alarm[(rows >= 5400) & (rows <= 5420)].any()
    assert out.alarm.mean() < 0.05
    comb.save(tmp_path)
    again = HybridCombiner.load(tmp_path)
    np.testing.assert_array_equal(again.score_rows(components, test).alarm, out.alarm)


def test_fit_chooses_over_folds_when_validation_holds_one_event():
    # three training events and a single validation event: the choice uses all four
    mission = make_mission(
        n_rows=6000,
        val_start=4000,
        test_start=5000,
        anomalies=((800, 830), (1900, 1930), (3100, 3130), (4400, 4420), (5400, 5420)),
    )
    comb = HybridCombiner(neighbourhood=4, block_rows=500, threshold_min_events=3)
    comb.fit({"a": RollingScorer(half=3)}, mission.fit_range())
    assert comb.rule == "weights"
    out = comb.score_rows({"a": RollingScorer(half=3)}, mission.test())
    rows = np.arange(len(out.alarm)) + mission.test_start
    assert out.alarm[(rows >= 5400) & (rows <= 5420)].any()
    assert out.alarm[(rows < 5380) | (rows > 5440)].sum() == 0


def saved_one_component_combiner(folder) -> dict:
    """Save a hand-set one-component combiner to ``folder``; return its combiner.json."""
    comb = HybridCombiner()
    comb.names = ["a"]
    comb.mean, comb.std, comb.coef = np.zeros(5), np.ones(5), np.ones(5)
    comb.save(folder)
    return json.loads((folder / "combiner.json").read_text())


def test_artifacts_with_a_probability_threshold_load_as_log_odds(tmp_path):
    old = saved_one_component_combiner(tmp_path)
    del old["threshold_logit"]
    old["threshold"] = 0.75
    (tmp_path / "combiner.json").write_text(json.dumps(old))
    assert HybridCombiner.load(tmp_path).threshold == np.log(3.0)


class SimulatedScorer(RollingScorer):
    """Scores of a component simulated from the labels: ``signal`` x label + uniform noise on
    every row, or (with ``end``) a component that learned its training rows by heart: a perfect
    score before row ``end`` (its in-sample rows) and noise alone after them."""

    def __init__(self, signal: float = 0.0, end: int | None = None, seed: int = 0) -> None:
        super().__init__(half=0)
        self.signal, self.end, self.seed = signal, end, seed

    def score_rows(self, mission):
        out = super().score_rows(mission)
        t0 = np.datetime64("2000-01-01T00:00:00", "ns")
        rows = (np.asarray(mission.timestamps) - t0) // np.timedelta64(30, "s")
        rng = np.random.default_rng([self.seed, int(rows[0])])
        label = mission.is_anomaly.astype(np.float32)
        score = self.signal * label + rng.random(len(rows)).astype(np.float32)
        if self.end is not None:
            score = np.where(rows < self.end, label, score)
        out.score = score.astype(np.float32)
        out.channel_scores = np.repeat(out.score[:, None], 3, axis=1)
        return out


def test_combiner_fits_on_rows_no_component_trained_on():
    mission = make_mission(
        n_rows=8000,
        val_start=6000,
        test_start=7000,
        anomalies=(
            (800, 830),
            (2500, 2530),
            (4400, 4430),
            (5300, 5330),
            (6400, 6430),
            (7400, 7430),
        ),
    )
    components = {
        "honest": SimulatedScorer(signal=0.3, seed=1),
        "leaky": SimulatedScorer(end=5000, seed=2),
    }

    def leaky_share(comb: HybridCombiner) -> float:
        return float(np.abs(comb.coef[5:]).sum() / np.abs(comb.coef).sum())

    naive = HybridCombiner(neighbourhood=4, block_rows=500, threshold_min_events=3).fit(
        components, mission.fit_range()
    )
    honest = HybridCombiner(neighbourhood=4, block_rows=500, few_events="weights").fit(
        components, mission.fit_range(), ranges=[(5000, 7000)]
    )
    # fitted on everything, it leans on the in-sample scores; from row 5000 on, far less
    assert leaky_share(naive) > 2 * leaky_share(honest)


def test_segment_datamodule_names_its_in_sample_rows():
    from esa_lightning.data.transforms.segments import SPLIT_TRAIN
    from tests.helpers import tiny_datamodule

    dm = tiny_datamodule()
    dm.setup()
    end = dm.label_fit_end()
    assert 0 < end <= dm.mission.val_start
    held_out = dm.event_rows.numpy() & (dm.split == SPLIT_TRAIN)
    assert held_out.any() and end <= dm.spans[held_out, 1].max() + 1
    trained = (dm.split == SPLIT_TRAIN) & ~dm.event_rows.numpy()
    assert end == dm.spans[trained, 1].max() + 1


class TrailingMeanScorer(RollingScorer):
    """A component with a long memory (like the GRU autoencoder's ``detrend``): a row's score
    is its distance from the mean of the ``span`` rows up to it."""

    def __init__(self, span: int) -> None:
        super().__init__(half=0)
        self.span = span

    @property
    def context_rows(self) -> int:
        return self.span

    def score_rows(self, mission):
        x = np.asarray(mission.values, dtype=np.float64)
        total = np.concatenate([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])
        hi = np.arange(1, len(x) + 1)
        lo = np.maximum(hi - self.span, 0)
        ch = np.abs(x - (total[hi] - total[lo]) / (hi - lo)[:, None]).astype(np.float32)
        score = ch.max(axis=1)
        return RowScores(score, np.zeros(len(x), np.uint8), ch, None)


def test_combiner_scores_its_fit_ranges_with_the_rows_before_them():
    # a level shift 100 rows before the range the combiner fits on: scored from the range's
    # first row the component forgets it, scored as everywhere else (with its context) it does
    # not, and the combiner must be fitted on the scores it will meet when it predicts
    mission = make_mission(
        n_rows=6000, val_start=5000, test_start=5500,
        anomalies=((1200, 1230), (3300, 3330), (4400, 4430)),
    )
    mission.values[2900:] += 50.0
    component = {"memory": TrailingMeanScorer(span=1000)}
    comb = HybridCombiner(neighbourhood=4, block_rows=500, few_events="weights").fit(
        component, mission.fit_range(), ranges=[(3000, 5500)]
    )
    seen = comb.features(component, mission.fit_range())[3000:5500]
    np.testing.assert_allclose(comb.mean, seen.mean(0), rtol=1e-4)
    np.testing.assert_allclose(comb.std, seen.std(0) + 1e-6, rtol=1e-4)


class InSampleScorer(SimulatedScorer):
    """A supervised component: on its training rows (before ``end``) nominal rows score under
    0.1 and labeled ones 0.2-0.3; elsewhere nominal rows score up to 0.5, labeled ones 0.6-1.0."""

    def score_rows(self, mission):
        out = super().score_rows(mission)
        t0 = np.datetime64("2000-01-01T00:00:00", "ns")
        rows = (np.asarray(mission.timestamps) - t0) // np.timedelta64(30, "s")
        noise = np.random.default_rng([self.seed, int(rows[0])]).random(len(rows))
        label = mission.is_anomaly.astype(np.float64)
        score = np.where(rows < self.end, 0.1 * noise + 0.2 * label, 0.5 * noise + 0.6 * label)
        out.score = score.astype(np.float32)
        out.channel_scores = np.repeat(out.score[:, None], 3, axis=1)
        return out


def test_combiner_threshold_comes_from_rows_no_component_trained_on_when_they_hold_events():
    # three events on the component's training rows, four after them (held out + validation)
    mission = make_mission(
        n_rows=8000,
        val_start=6000,
        test_start=7000,
        anomalies=((500, 530), (1800, 1830), (3000, 3030), (4300, 4330), (5000, 5030),
                   (5600, 5630), (6500, 6530), (7400, 7430)),
    )
    components = {"supervised": InSampleScorer(end=4000, seed=3)}
    test = mission.test()
    rows = np.arange(len(test.values)) + mission.test_start
    nominal = (rows < 7390) | (rows > 7440)
    alarms = {}
    for min_events in (3, 5):  # the label-free rows hold 4 events
        comb = HybridCombiner(neighbourhood=0, block_rows=500, threshold_min_events=min_events,
                              few_events="weights")
        comb.fit(components, mission.fit_range(), ranges=[(4000, 7000)])
        alarms[min_events] = comb.score_rows(components, test).alarm
    # chosen where the component's nominal scores are what they are on new rows: clean
    assert alarms[3][(rows >= 7400) & (rows <= 7430)].any() and not alarms[3][nominal].any()
    # chosen over its training rows too (too few events elsewhere): under its new rows' noise
    assert alarms[5][nominal].mean() > 0.3


def few_event_mission() -> Mission:
    """Four training events, one in the validation range (the only rows no component trained
    on), one in the test range, and a nominal blip on channel 2 at test row 5700."""
    mission = make_mission(
        n_rows=6000, val_start=4000, test_start=5000,
        anomalies=((800, 830), (1900, 1930), (3100, 3130), (3600, 3620), (4400, 4420),
                   (5400, 5420)),
    )
    mission.values[5700, 1] += 5.0
    return mission


def test_too_few_label_free_events_keep_each_components_own_alarms(tmp_path):
    mission = few_event_mission()
    # "wide" averages 13 rows and misses the one-row blip; "raw" alarms on it
    components = {"wide": RollingScorer(half=6, threshold=2.0),
                  "raw": RollingScorer(half=0, threshold=4.0)}
    comb = HybridCombiner(neighbourhood=4, block_rows=500)
    comb.fit(components, mission.fit_range(), ranges=[(4000, 5000)])  # one labeled event there
    assert comb.rule == "any_alarm"
    test = mission.test()
    out = comb.score_rows(components, test)
    own = [c.score_rows(test).alarm.astype(bool) for c in components.values()]
    np.testing.assert_array_equal(out.alarm, (own[0] | own[1]).astype(np.uint8))
    rows = np.arange(len(out.alarm)) + mission.test_start
    assert out.alarm[rows == 5700].all() and out.alarm[(rows >= 5400) & (rows <= 5420)].all()
    assert out.threshold is None and 0.0 <= out.score.min() and out.score.max() <= 1.0
    assert out.score[rows == 5410] > np.median(out.score)  # ranked against the fit range
    comb.save(tmp_path)
    again = HybridCombiner.load(tmp_path)
    reloaded = again.score_rows(components, test)
    np.testing.assert_array_equal(reloaded.alarm, out.alarm)
    np.testing.assert_array_equal(reloaded.score, out.score)
    assert json.loads((tmp_path / "combiner.json").read_text())["rule"] == "any_alarm"
    # the former behaviour on request: weights and a threshold fitted all the same
    weights = HybridCombiner(neighbourhood=4, block_rows=500, few_events="weights")
    weights.fit(components, mission.fit_range(), ranges=[(4000, 5000)])
    assert weights.rule == "weights" and weights.score_rows(components, test).threshold is not None


def test_label_free_alarm_reads_only_the_components_whose_training_read_no_label(
    tmp_path, caplog
):
    mission = few_event_mission()
    # "raw" stands for a supervised component: it alarms on the nominal blip at row 5700
    components = {"wide": RollingScorer(half=6, threshold=2.0),
                  "raw": RollingScorer(half=0, threshold=4.0)}
    comb = HybridCombiner(neighbourhood=4, block_rows=500, few_events="label_free_alarm")
    comb.fit(components, mission.fit_range(), ranges=[(4000, 5000)],
             label_free_components=["wide"])
    assert comb.rule == "any_alarm" and comb.alarm_names == ["wide"]
    assert comb.describe() == "HybridCombiner: alarms where wide alarms"
    test = mission.test()
    out = comb.score_rows(components, test)
    wide = components["wide"].score_rows(test)
    np.testing.assert_array_equal(out.alarm, wide.alarm.astype(np.uint8))
    rows = np.arange(len(out.alarm)) + mission.test_start
    assert not out.alarm[rows == 5700].any() and out.alarm[(rows >= 5400) & (rows <= 5420)].any()
    # its score ranks the label-free component alone: the blip does not stand out in it
    assert out.score[rows == 5700][0] < out.score[rows == 5410][0]
    comb.save(tmp_path)
    again = HybridCombiner.load(tmp_path)
    assert again.alarm_names == ["wide"]
    np.testing.assert_array_equal(again.score_rows(components, test).alarm, out.alarm)
    # no label-free component: every component's alarm counts, as with any_alarm
    with caplog.at_level("WARNING"):
        fallback = HybridCombiner(neighbourhood=4, block_rows=500, few_events="label_free_alarm")
        fallback.fit(components, mission.fit_range(), ranges=[(4000, 5000)])
    assert "no component's training is label-free" in caplog.text
    assert fallback.alarm_names == ["wide", "raw"]
    assert fallback.score_rows(components, test).alarm[rows == 5700].all()
    # a file naming a component it does not hold, or not a list, is refused
    path = tmp_path / "combiner.json"
    good = json.loads(path.read_text())
    for bad in (["ghost"], [], "wide", 3):
        path.write_text(json.dumps({**good, "alarm_names": bad}))
        with pytest.raises(ESAInputError, match="combiner.json"):
            HybridCombiner.load(tmp_path)


def test_a_tampered_any_alarm_combiner_is_refused_naming_its_file(tmp_path):
    mission = few_event_mission()
    components = {"wide": RollingScorer(half=6, threshold=2.0)}
    comb = HybridCombiner(neighbourhood=4, block_rows=500)
    comb.fit(components, mission.fit_range(), ranges=[(4000, 5000)])
    comb.save(tmp_path)
    path = tmp_path / "combiner.json"
    good = json.loads(path.read_text())
    bad_quantiles = list(reversed(good["quantiles"][0]))
    for change in ({"quantiles": None}, {"quantiles": [bad_quantiles]}, {"rule": "majority"}):
        path.write_text(json.dumps({**good, **change}))
        with pytest.raises(ESAInputError, match="combiner.json") as err:
            HybridCombiner.load(tmp_path)
        assert "rule" in str(err.value)
    with pytest.raises(ESAInputError, match="combiner.few_events"):
        HybridCombiner(few_events="majority")
    with pytest.raises(ESAInputError, match="combiner.many_events"):
        HybridCombiner(many_events="majority")


class AlarmingScorer(SimulatedScorer):
    """A simulated component whose own alarm is fixed apart from its score: the labels
    (``alarm="labels"``, a perfect decision whatever the score) or nothing (``"none"``)."""

    def __init__(self, alarm: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.alarm = alarm

    def score_rows(self, mission):
        out = super().score_rows(mission)
        labels = mission.is_anomaly.astype(np.uint8)
        out.alarm = labels if self.alarm == "labels" else np.zeros_like(labels)
        return out


def many_event_mission() -> Mission:
    """Seven events in the training and validation range, spread over its four folds."""
    return make_mission(
        n_rows=8000, val_start=6000, test_start=7000,
        anomalies=((700, 730), (1500, 1530), (2300, 2330), (3400, 3430), (4600, 4630),
                   (5300, 5330), (6500, 6530), (7400, 7430)),
    )


def test_with_enough_events_the_rule_that_holds_out_better_decides(tmp_path):
    mission = many_event_mission()
    test = mission.test()
    rows = np.arange(len(test.values)) + mission.test_start
    event = (rows >= 7400) & (rows <= 7430)
    # its score is noise, its own alarm exact: no weights can learn it, its alarm holds out
    exact_alarm = {"a": AlarmingScorer("labels", signal=0.0, seed=3)}
    cross_fit = {"neighbourhood": 4, "block_rows": 500, "many_events": "cross_fit"}
    comb = HybridCombiner(**cross_fit).fit(exact_alarm, mission.fit_range())
    assert comb.rule == "any_alarm"
    assert comb.held_out["any_alarm"] > 0.9 > comb.held_out["weights"]
    out = comb.score_rows(exact_alarm, test)
    np.testing.assert_array_equal(out.alarm, event.astype(np.uint8))
    assert "held-out" in comb.describe() and "any component alarms" in comb.describe()
    comb.save(tmp_path)
    again = HybridCombiner.load(tmp_path)
    assert again.held_out == comb.held_out and again.many_events == "cross_fit"
    np.testing.assert_array_equal(again.score_rows(exact_alarm, test).alarm, out.alarm)
    # by default (many_events="weights") it keeps the weights whatever the folds say
    kept = HybridCombiner(neighbourhood=4, block_rows=500)
    kept.fit(exact_alarm, mission.fit_range())
    assert kept.rule == "weights" and kept.held_out is None
    # its score carries the labels, its own alarm never fires: the weights hold out better
    exact_score = {"a": AlarmingScorer("none", signal=3.0, seed=3)}
    comb = HybridCombiner(**cross_fit).fit(exact_score, mission.fit_range())
    assert comb.rule == "weights" and comb.held_out["weights"] > comb.held_out["any_alarm"]
    alarm = comb.score_rows(exact_score, test).alarm
    assert alarm[event].any() and not alarm[(rows < 7390) | (rows > 7440)].any()
    forced = HybridCombiner(neighbourhood=4, block_rows=500, many_events="any_alarm")
    assert forced.fit(exact_score, mission.fit_range()).rule == "any_alarm"



def test_with_enough_events_label_free_alarm_reads_the_label_free_components_alone(tmp_path):
    """many_events="label_free_alarm": the weights are not learned even with enough events; a
    row alarms where a component whose training read no label alarms, as with few events."""
    # 12 events in the training and validation range: the 10 weights of two components
    # could be learned
    mission = make_mission(
        n_rows=8000, val_start=6500, test_start=7000,
        anomalies=(*((300 + 500 * k, 320 + 500 * k) for k in range(12)), (7400, 7430)))
    test = mission.test()
    rows = np.arange(len(test.values)) + mission.test_start
    components = {"free": AlarmingScorer("labels", signal=0.0, seed=3),
                  "supervised": AlarmingScorer("none", signal=3.0, seed=4)}
    comb = HybridCombiner(neighbourhood=4, block_rows=500, many_events="label_free_alarm")
    comb.fit(components, mission.fit_range(), label_free_components=["free"])
    assert comb.rule == "any_alarm" and comb.alarm_names == ["free"]
    out = comb.score_rows(components, test)
    own = components["free"].score_rows(test).alarm
    np.testing.assert_array_equal(out.alarm, own.astype(np.uint8))
    assert out.alarm[(rows >= 7400) & (rows <= 7430)].all()
    comb.save(tmp_path)
    again = HybridCombiner.load(tmp_path)
    assert again.many_events == "label_free_alarm" and again.alarm_names == ["free"]
    np.testing.assert_array_equal(again.score_rows(components, test).alarm, out.alarm)
    # the default keeps learning weights there
    assert HybridCombiner(neighbourhood=4, block_rows=500).fit(
        components, mission.fit_range(), label_free_components=["free"]).rule == "weights"

def test_combiners_saved_before_the_cross_fitted_rule_load_as_weights(tmp_path):
    old = saved_one_component_combiner(tmp_path)
    del old["many_events"], old["held_out"]
    (tmp_path / "combiner.json").write_text(json.dumps(old))
    again = HybridCombiner.load(tmp_path)
    assert again.many_events == "weights" and again.held_out is None
    # tampered: an unknown rule, held-out scores that are not a mapping of numbers
    for change in ({"many_events": "majority"}, {"held_out": [1, 2]},
                   {"held_out": {"weights": "high"}}):
        (tmp_path / "combiner.json").write_text(json.dumps({**old, **change}))
        with pytest.raises(ESAInputError, match="combiner.json"):
            HybridCombiner.load(tmp_path)


@pytest.mark.parametrize("c", [0, -1.0, float("inf")])
def test_a_regularisation_strength_sklearn_refuses_is_named_up_front(c):
    """esa_full builds its combiner before training: combiner.c=0 is refused then, not by
    sklearn after both components trained."""
    with pytest.raises(ESAInputError, match="combiner.c"):
        HybridCombiner(c=c)


def twelve_event_mission() -> Mission:
    """12 labeled events in the training and validation range: more than the 10 weights of two
    components, fewer than the 15 of three."""
    return make_mission(n_rows=7000, val_start=6000, test_start=6500,
                        anomalies=tuple((300 + 480 * k, 320 + 480 * k) for k in range(12)))


@pytest.mark.parametrize(("n_components", "setting", "needed"),
                         [(2, None, 10), (3, None, 15), (3, 10, 10), (3, 0, 0)])
def test_the_events_the_weights_need_are_one_per_weight_unless_set(
    n_components, setting, needed, caplog
):
    """esa_full's default (``threshold_min_events: null``) scales with the components: a third
    component needs 15 label-free events, not the two components' 10; a set value wins."""
    mission = twelve_event_mission()
    components = {f"c{k}": RollingScorer(half=k) for k in range(n_components)}
    comb = HybridCombiner(neighbourhood=2, block_rows=500, threshold_min_events=setting)
    assert comb.events_needed(n_components) == needed
    with caplog.at_level("WARNING"):
        comb.fit(components, mission.fit_range())
    assert comb.rule == ("weights" if 12 >= needed else "any_alarm")
    if comb.rule == "any_alarm":
        assert f"fewer than threshold_min_events={needed}" in caplog.text


@pytest.mark.parametrize("bad", [-1, 2.5, "ten", True])
def test_a_bad_event_minimum_is_refused_naming_the_key(bad):
    with pytest.raises(ESAInputError, match="combiner.threshold_min_events"):
        HybridCombiner(threshold_min_events=bad)


def test_the_class_default_is_the_configs_one_event_per_weight():
    """``HybridCombiner()`` needed 3 label-free events where esa_full's config (null) needs one
    per weight: the class built in Python and the one the config builds now agree."""
    from omegaconf import OmegaConf

    import esa_lightning

    conf = Path(esa_lightning.__file__).parent / "conf/experiment/esa_full.yaml"
    configured = OmegaConf.load(conf).combiner.threshold_min_events
    assert configured is None
    assert HybridCombiner().threshold_min_events == configured
    assert HybridCombiner().events_needed(2) == 10


def test_an_old_combiner_json_without_the_event_minimum_loads_as_3(tmp_path):
    """Artifacts saved before ``threshold_min_events`` was written were fitted with 3."""
    old = saved_one_component_combiner(tmp_path)
    del old["threshold_min_events"]
    (tmp_path / "combiner.json").write_text(json.dumps(old))
    loaded = HybridCombiner.load(tmp_path)
    assert loaded.events_needed(1) == loaded.events_needed(2) == 3


def test_a_combiner_json_over_the_size_limit_is_refused_in_one_line_naming_it(tmp_path):
    """Refused by its size before a byte is parsed, as it is (not wrapped in "not a readable
    combiner (ESAInputError: ...)", which named the file twice: so the check before the read
    stays, though ``read_settings_json`` bounds the size too)."""
    from esa_lightning.io import SETTINGS_LIMIT

    path = tmp_path / "combiner.json"
    with open(path, "wb") as f:
        f.truncate(SETTINGS_LIMIT + 1)
    with pytest.raises(ESAInputError) as info:
        HybridCombiner.load(tmp_path)
    message = str(info.value)
    assert message == (f"{path}: {SETTINGS_LIMIT + 1:,} bytes, more than the "
                       f"{SETTINGS_LIMIT >> 20} MiB a settings file may hold; refused"), message


def test_a_reloaded_combiner_scores_rows_bit_for_bit_as_the_fitted_one(tmp_path):
    """``train.py`` scores with the combiner it fitted, ``predict.py`` with the one
    ``combiner.json`` gives back. The fitted one kept its feature means and spreads in the
    features' float32 and the loaded one in float64, so every log-odds differed (by up to about
    1e-8 here): a row at the threshold could alarm in one and not in the other."""
    mission, components, comb = fitted_on_five_events()
    x = comb.features(components, mission.test())
    assert x.dtype == np.float32  # the case: float32 features
    comb.save(tmp_path)
    again = HybridCombiner.load(tmp_path)
    np.testing.assert_array_equal(again._logit(x), comb._logit(x))
