"""Piece-wise scoring: equal to whole-range scoring, with bounded per-channel outputs."""

import numpy as np
import pandas as pd
import pytest
from scipy.ndimage import uniform_filter1d

from esa_lightning.jobs.train import evaluate
from esa_lightning.models.base import RowScores, top_channel_alarm
from esa_lightning.models.raised_by import FROZEN, SCORE
from esa_lightning.reporting.outputs import alarm_intervals
from esa_lightning.reporting.reference import nominal_reference, reference_start
from esa_lightning.runtime.chunks import AlarmedRows, score_in_chunks
from esa_lightning.runtime.combiner import HybridCombiner, component_features
from esa_lightning.runtime.evaluation import score_range
from tests.helpers import make_mission


class RollingScorer:
    """A scorer whose row scores depend on 2 * half + 1 neighbouring rows (like a window)."""

    def __init__(self, half: int = 6, threshold: float = 2.0) -> None:
        self.half, self.threshold = half, threshold

    @property
    def context_rows(self) -> int:
        return self.half

    @property
    def alignment_rows(self) -> int:  # chunks may start on any row
        return 1

    def score_rows(self, mission) -> RowScores:
        x = np.abs(np.asarray(mission.values, dtype=np.float64))
        ch = uniform_filter1d(x, size=2 * self.half + 1, axis=0, mode="nearest")
        ch = ch.astype(np.float32)
        score = ch.max(axis=1)
        alarm = (score > self.threshold).astype(np.uint8)
        return RowScores(score, alarm, ch, top_channel_alarm(alarm, ch, 1))


class StuckScorer(RollingScorer):
    """``RollingScorer`` with a stuck-channel rule: a channel whose reading has not changed for
    ``run`` rows is stuck, its row alarms and names it alone where the score does not alarm
    (``RowScores.stuck_channels``, as the GRU's ``frozen`` rule)."""

    run = 20

    @property
    def context_rows(self) -> int:
        return max(self.half, self.run)

    def score_rows(self, mission) -> RowScores:
        rs = super().score_rows(mission)
        values = np.asarray(mission.values)
        same = np.vstack([np.zeros((1, values.shape[1]), bool), values[1:] == values[:-1]])
        held = np.zeros(same.shape, np.int64)  # rows the reading has been held for
        for i in range(1, len(same)):
            held[i] = np.where(same[i], held[i - 1] + 1, 0)
        stuck = held >= self.run
        frozen = stuck.any(axis=1)
        named = np.where(rs.alarm[:, None] != 0, rs.channel_alarm, 0) | stuck.astype(np.uint8)
        raised = rs.alarm * np.uint8(SCORE) | frozen.astype(np.uint8) * np.uint8(FROZEN)
        return RowScores(rs.score, (rs.alarm | frozen).astype(np.uint8), rs.channel_scores,
                         named, raised_by=raised, stuck_channels=stuck)


@pytest.mark.parametrize("keep", ["all", "alarmed", "none"])
def test_a_channel_stuck_across_a_chunk_edge_chunked_and_whole(keep):
    """Channel 2 held over rows 700-899, across the edge at row 813: the chunks' joined output
    carries the stuck channels scoring whole gives (it dropped them: None), and the interval
    report (intervals.csv's channel columns) is that of one piece."""
    mission = make_mission(n_rows=3000, test_start=1000)
    mission.values[700:900, 2] = mission.values[700, 2]
    scorer = StuckScorer()
    whole = scorer.score_rows(mission)
    assert whole.stuck_channels[720:900, 2].all() and whole.stuck_channels.sum() == 180
    chunked = score_in_chunks(scorer, mission, chunk_rows=271, keep_channel_scores=keep)
    one = score_in_chunks(scorer, mission, chunk_rows=0, keep_channel_scores=keep)
    for out in (chunked, one):
        assert out.stuck_channels is not None
        np.testing.assert_array_equal(np.asarray(out.stuck_channels), whole.stuck_channels)
        np.testing.assert_array_equal(np.asarray(out.channel_alarm), whole.channel_alarm)
        np.testing.assert_array_equal(out.raised_by, whole.raised_by)
    if keep != "all":  # kept on the stuck rows only
        np.testing.assert_array_equal(chunked.stuck_channels.rows, np.arange(720, 900))
    reference = nominal_reference(scorer, mission)
    stamps = np.asarray(mission.timestamps)
    a = alarm_intervals(stamps, one, mission, reference)
    b = alarm_intervals(stamps, chunked, mission, reference)
    stuck_only = a[a["raised_by"] == "frozen"]
    assert len(stuck_only) == 1 and stuck_only["channels"].tolist() == ["channel_3"]
    pd.testing.assert_frame_equal(a, b)


def test_alarmed_channel_scores_slice_like_the_dense_array_on_alarmed_rows():
    rng = np.random.default_rng(0)
    dense = rng.random((50, 4)).astype(np.float32)
    rows = np.array([3, 4, 5, 20, 49])
    sparse = AlarmedRows(50, rows, dense[rows], np.nan)
    assert sparse.shape == (50, 4)
    block = sparse[2:21]
    np.testing.assert_array_equal(block[[1, 2, 3, 18]], dense[[3, 4, 5, 20]])
    assert np.isnan(block[0]).all() and np.isnan(block[5:18]).all()
    np.testing.assert_array_equal(sparse[49:], dense[49:])
    with pytest.raises(TypeError):
        sparse[[1, 2]]
    full = np.asarray(AlarmedRows(50, rows, dense[rows], 0.0))
    assert full.shape == (50, 4) and full[3].tolist() == dense[3].tolist() and not full[6].any()


@pytest.mark.parametrize("keep", ["all", "alarmed", "none"])
def test_piecewise_scores_equal_whole_range_scores(keep):
    mission = make_mission(n_rows=3000, test_start=1000)
    scorer = RollingScorer()
    whole = scorer.score_rows(mission)
    pieces = score_in_chunks(scorer, mission, chunk_rows=271, keep_channel_scores=keep)
    np.testing.assert_array_equal(whole.score, pieces.score)
    np.testing.assert_array_equal(whole.alarm, pieces.alarm)
    np.testing.assert_array_equal(whole.channel_alarm, np.asarray(pieces.channel_alarm))
    if keep == "none":
        assert pieces.channel_scores is None
    elif keep == "all":
        np.testing.assert_array_equal(whole.channel_scores, pieces.channel_scores)
    else:
        rows = np.flatnonzero(whole.alarm)
        assert 0 < len(rows) < 3000  # the planted anomalies alarm, the rest does not
        assert isinstance(pieces.channel_scores, AlarmedRows)
        np.testing.assert_array_equal(pieces.channel_scores.rows, rows)


@pytest.mark.parametrize("keep", ["all", "alarmed", "none"])
def test_channel_scores_from_a_row_keep_exactly_those_rows_scores(keep):
    mission = make_mission(n_rows=3000, test_start=1000)
    scorer = RollingScorer()
    whole = scorer.score_rows(mission)
    pieces = score_in_chunks(scorer, mission, chunk_rows=271, keep_channel_scores=keep,
                             first_row=500, channel_scores_from=1700)
    np.testing.assert_array_equal(whole.score[500:], pieces.score)
    np.testing.assert_array_equal(whole.channel_alarm[500:], np.asarray(pieces.channel_alarm))
    assert isinstance(pieces.channel_scores, AlarmedRows)
    np.testing.assert_array_equal(pieces.channel_scores.rows, np.arange(1700, 2500))
    np.testing.assert_array_equal(pieces.channel_scores[1700:], whole.channel_scores[2200:])
    assert np.isnan(pieces.channel_scores[:1700]).all()


@pytest.mark.parametrize("max_rows", [300, 10_000])
def test_the_reference_from_scored_validation_rows_is_the_one_scored_on_its_own(max_rows):
    # train.py scores the validation range once, for its metrics and for this reference
    mission = make_mission(n_rows=3000, val_start=1000, test_start=2000,
                           anomalies=((1200, 1230), (1900, 1920)))
    scorer = RollingScorer()
    first = reference_start(mission, max_rows) - mission.val_start
    val = score_range(scorer, mission.val(), chunk_rows=123, keep_channel_scores="none",
                      within=mission, channel_scores_from=first)
    own = nominal_reference(scorer, mission, chunk_rows=123, max_rows=max_rows)
    read = nominal_reference(scorer, mission, max_rows=max_rows, val_scores=val.scores)
    assert own.rows == read.rows and 0 < read.rows < min(max_rows, 1000)  # labeled rows out
    np.testing.assert_array_equal(own.scores, read.scores)
    np.testing.assert_array_equal(own.channel_scores.centre, read.channel_scores.centre)
    np.testing.assert_array_equal(own.channel_scores.spread, read.channel_scores.spread)


def test_intervals_from_alarmed_channel_scores_equal_those_from_all_scores():
    mission = make_mission(n_rows=3000, test_start=1000)
    scorer = RollingScorer()
    whole = scorer.score_rows(mission)
    sparse = score_in_chunks(scorer, mission, chunk_rows=400, keep_channel_scores="alarmed")
    reference = nominal_reference(scorer, mission)  # attribution reads per-channel scores
    stamps = np.asarray(mission.timestamps)
    a = alarm_intervals(stamps, whole, mission, reference)
    b = alarm_intervals(stamps, sparse, mission, reference)
    assert len(a) > 0
    pd.testing.assert_frame_equal(a, b)


def test_chunked_evaluation_gives_the_metrics_of_whole_range_scoring():
    mission = make_mission(n_rows=3000, val_start=1000, test_start=1500,
                           anomalies=((1200, 1230), (1700, 1720), (2500, 2540)))
    scorer = RollingScorer()
    parts = {"val": mission.val(), "test": mission.test()}
    whole = evaluate(scorer, mission, parts, chunk_rows=0)
    chunked = evaluate(scorer, mission, parts, chunk_rows=123)
    assert whole["test/EW_recall"] > 0
    assert whole == chunked


def test_combiner_block_features_equal_whole_range_features():
    mission = make_mission(n_rows=3000, test_start=2500, val_start=2000)
    comb = HybridCombiner(neighbourhood=4, block_rows=97)
    comb.names = ["a", "b"]
    components = {"a": RollingScorer(half=3), "b": RollingScorer(half=9)}
    train = mission.train()
    whole = np.hstack([component_features(components[n].score_rows(train), 4)
                       for n in comb.names])
    np.testing.assert_array_equal(comb.features(components, train), whole)
    blocks = [(0, 97), (485, 582), (1940, 2000)]
    part = comb._block_features(components, train, blocks)
    np.testing.assert_array_equal(part, np.vstack([whole[a:b] for a, b in blocks]))


def test_combiner_fit_scores_a_bounded_sample_that_keeps_the_labeled_blocks():
    mission = make_mission(n_rows=6000, val_start=5000, test_start=5500,
                           anomalies=((1200, 1230), (3700, 3720), (5200, 5220)))
    # its fit range holds 3 events: weights are learned from them
    comb = HybridCombiner(max_rows=1000, block_rows=100, seed=3, threshold_min_events=3)
    blocks = comb.fit_blocks(mission.train())
    assert sum(b - a for a, b in blocks) <= 1000
    assert (1200, 1300) in blocks and (3700, 3800) in blocks
    assert blocks == sorted(blocks)
    comb.fit({"a": RollingScorer()}, mission.fit_range())
    assert comb.rule == "weights"
    assert comb.coef is not None and np.isfinite(comb.coef).all()
    small = HybridCombiner(max_rows=10_000, block_rows=100)
    assert len(small.fit_blocks(mission.train())) == 50  # everything when it fits


def test_channel_aware_metrics_are_left_out_where_labels_are_broadcast():
    from dataclasses import replace

    from esa_lightning.runtime.evaluation import ScoredRange, report_for

    mission = make_mission(n_rows=3000, test_start=1000)
    scores = RollingScorer().score_rows(mission)
    stamps = np.asarray(mission.timestamps)
    own = report_for(ScoredRange(mission, scores, stamps, mission.events), "test")
    kaggle_like = replace(mission, meta={**mission.meta, "labels_broadcast": True})
    broadcast = report_for(ScoredRange(kaggle_like, scores, stamps, mission.events), "test")
    channel_keys = set(own) - set(broadcast)
    assert channel_keys and all(k.startswith(("test/channel_", "test/subsystem_"))
                                for k in channel_keys)
    assert own["test/EW_F_0.50"] == broadcast["test/EW_F_0.50"]


def test_a_range_without_a_labeled_event_has_no_metric_keys():
    """MSL's validation range holds no event: its val/EW_* keys came out as 0.0."""
    mission = make_mission(n_rows=3000, val_start=1000, test_start=2000,
                           anomalies=((2200, 2230),))
    metrics = evaluate(RollingScorer(), mission, {"val": mission.val(), "test": mission.test()})
    assert not any(k.startswith("val/") for k in metrics)
    assert metrics["test/EW_recall"] > 0


def test_the_combiner_s_slow_scoring_says_what_it_counts(caplog, monkeypatch):
    """Off a terminal a slow step logs a progress line at most every 30 s: the combiner's read
    "combiner: gru_ae: 3/4" (an esa_full run), not saying what was counted."""
    import io
    import itertools
    import logging

    from esa_lightning import progress as module

    mission = make_mission(n_rows=3000, test_start=2500, val_start=2000)
    comb = HybridCombiner(neighbourhood=4, block_rows=500)
    comb.names = ["a"]
    ticks = (i * 31.0 for i in itertools.count())  # each block takes 31 s
    monkeypatch.setattr(module.time, "monotonic", lambda: next(ticks))
    monkeypatch.setattr(module.sys, "stderr", io.StringIO())  # not a terminal
    with caplog.at_level(logging.INFO, logger="esa_lightning"):
        comb._block_features({"a": RollingScorer()}, mission.train(), [(0, 500), (500, 1000)])
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("combiner")]
    assert lines == ["combiner: scoring a's blocks: 1/2", "combiner: scoring a's blocks: 2/2"]


def test_a_gru_s_slow_window_scoring_says_what_it_counts(caplog, monkeypatch):
    """Off a terminal the GRU's scoring of its windows piece by piece logged "window pieces:
    4/4" (``python train.py`` on a busy machine): a noun, not the step it counts."""
    import io
    import itertools
    import logging

    from esa_lightning import progress as module
    from tests.helpers import small_gru

    mission = make_mission()
    model, dm = small_gru(mission, {"t": {"kind": "percentile", "q": 99.0}})
    model.set_preprocessing(dm)
    ticks = (i * 31.0 for i in itertools.count())  # each piece takes 31 s
    monkeypatch.setattr(module.time, "monotonic", lambda: next(ticks))
    monkeypatch.setattr(module.sys, "stderr", io.StringIO())  # not a terminal
    with caplog.at_level(logging.INFO, logger="esa_lightning"):
        list(model._pieces(mission, None, [(0, 64), (64, 128)]))
    lines = [r.getMessage() for r in caplog.records if "pieces" in r.getMessage()]
    assert lines == ["scoring window pieces: 1/2", "scoring window pieces: 2/2"]
