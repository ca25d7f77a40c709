"""The GRU autoencoder with the optional ``gap_close`` rule: fitted last, applied to its row and
channel alarms, kept by the artifact, exact in chunks, enabled from the command line."""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
from types import SimpleNamespace

import numpy as np
import pytest

from esa_lightning.artifact import Detector, mission_schema
from esa_lightning.models.base import piece_bounds, top_channel_alarm
from esa_lightning.models.gru_ae.model import LitGRUAttentionAE
from esa_lightning.postprocessing.gaps import GapClose, close_gaps
from esa_lightning.runtime.chunks import score_in_chunks
from esa_lightning.runtime.evaluation import ScoredRange, report_for
from tests.conftest import compose_config
from tests.helpers import sine_mission, small_gru, trainer, with_events

pytestmark = pytest.mark.usefixtures("one_thread")

RULES = {"threshold": {"kind": "percentile", "q": 99},
         "gap_close": {"kind": "gap_close", "widths": [0, 5, 25]}}


@pytest.fixture(scope="module")
def trained():
    """A small GRU trained on ``sine_mission`` (an event in its training and validation
    ranges each) with the rule, and the log of its fit."""
    m = with_events(sine_mission())
    model, dm = small_gru(m, RULES)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("esa_lightning")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        trainer().fit(model, dm)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return m, model, [r.getMessage() for r in records]


def fragmented(model: LitGRUAttentionAE, m, width: int) -> LitGRUAttentionAE:
    """A copy of ``model`` whose threshold alarms a third of ``m``'s windows (alarms with many
    gaps) and whose rule closes gaps shorter than ``width`` rows."""
    out = copy.deepcopy(model)
    total = out.window_outputs(m).total
    out.threshold_rule.threshold.fill_(float(np.quantile(out.threshold_rule.smoothed(total),
                                                         2 / 3)))
    out.gap_rule.width.fill_(width)
    return out


def test_the_rule_is_fitted_last_on_the_fit_range(trained):
    _, model, log = trained
    rule = model.post_rules["gap_close"]
    assert list(model.post_rules) == ["threshold", "gap_close"]
    assert model.gap_rule is rule and model.configure_callbacks()[-1] is rule
    assert rule.is_fitted and int(rule.width) in (0, 5, 25) and model.is_calibrated
    (line,) = [msg for msg in log if msg.startswith("gap_close:")]
    assert f"width {int(rule.width)}" in line and "0: " in line and "25: " in line


def test_gaps_are_closed_in_the_row_alarms_and_the_channel_alarms_follow(trained):
    m, model, _ = trained
    width = 12
    closing = fragmented(model, m, width)
    closed = closing.score_rows(m)
    closing.gap_rule.width.fill_(0)
    raw = closing.score_rows(m)
    np.testing.assert_array_equal(closed.alarm, close_gaps(raw.alarm, width))
    filled = (closed.alarm == 1) & (raw.alarm == 0)
    assert filled.sum() >= 5  # several gaps were closed
    np.testing.assert_array_equal(closed.score, raw.score)
    np.testing.assert_array_equal(
        closed.channel_alarm, top_channel_alarm(closed.alarm, closed.channel_scores, 3)
    )
    assert closed.channel_alarm[filled].sum(axis=1).min() == 3  # the closed rows name channels
    assert not closed.channel_alarm[closed.alarm == 0].any()


def test_the_artifact_keeps_the_width_and_scores_alike(trained, tmp_path):
    m, model, _ = trained
    closing = fragmented(model, m, 25)  # one of RULES widths
    loaded = Detector.load(Detector({"gru": closing}, mission_schema(m)).save(tmp_path / "det"))
    again = loaded.components["gru"]
    assert isinstance(again.post_rules["gap_close"], GapClose)
    assert int(again.post_rules["gap_close"].width) == 25
    a, b = closing.score_rows(m), again.score_rows(m)
    np.testing.assert_array_equal(a.alarm, b.alarm)
    np.testing.assert_array_equal(a.channel_alarm, b.channel_alarm)


def test_chunked_scoring_equals_whole_scoring_with_gaps_closed(trained):
    m, model, _ = trained
    width = 15
    closing = fragmented(model, m, width)
    det = Detector({"gru": closing}, mission_schema(m))
    assert det.context_rows == fragmented(model, m, 0).context_rows + width
    whole = det.score_rows(m)
    chunked = score_in_chunks(det, m, chunk_rows=37)
    np.testing.assert_array_equal(chunked.alarm, whole.alarm)
    np.testing.assert_array_equal(chunked.channel_alarm, whole.channel_alarm)
    # without the width in the context, a gap across a chunk's edge is left open
    short = score_in_chunks(det, m, chunk_rows=37, context=det.context_rows - width)
    assert (short.alarm != whole.alarm).any()


@pytest.mark.parametrize(("smoothing", "rows", "chunk_rows"), [(0, None, 37), (20, 3000, 500)])
def test_the_fit_scores_the_fit_range_in_pieces_as_it_scores_it_whole(
    trained, smoothing, rows, chunk_rows
):
    """The fit reads the model's row alarms ``chunk_rows`` rows at a time, each piece with its
    context (window, the EWMA's memory of 40 spans, the widest width): the alarms of scoring
    the fit range whole, so the same F0.5 per width and the same width."""
    m, model, _ = trained
    if rows is not None:  # longer than the EWMA's context: the pieces cut it
        m = with_events(sine_mission(T=rows, val_start=rows * 5 // 8, test_start=rows * 4 // 5))
    smooth = copy.deepcopy(model)
    smooth.threshold_rule.score_span.fill_(smoothing)
    closing = fragmented(smooth, m, 0)
    rule, fit_range = closing.gap_rule, m.fit_range()
    assert len(piece_bounds(len(fit_range.values), chunk_rows)) >= 5
    assert closing.context_rows < len(fit_range.values) - chunk_rows  # no piece reads it all
    np.testing.assert_array_equal(closing.provisional_alarm(fit_range, chunk_rows),
                                  closing.provisional_scores(fit_range).alarm)
    fitted = {}
    for chunk in (0, chunk_rows):
        rule.chunk_rows = chunk
        fitted[chunk] = (rule.fit(closing, SimpleNamespace(mission=m)), int(rule.width))
    assert fitted[chunk_rows] == fitted[0]
    assert len(set(fitted[0][0].values())) > 1  # the widths score apart


def test_the_rule_is_on_by_default_and_its_settings_and_null_reach_it(small_mission_dir, tmp_path):
    from esa_lightning.jobs.train import train

    quick = [f"data.root={small_mission_dir}", "data.channels=[channel_1,channel_2,channel_3]",
             "data.period=5min", "datamodule.detrend=null", "model.post_processing.rf_gate=null",
             "model.hidden_size=8", "model.latent_dim=4", "trainer.max_epochs=1",
             "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=2", "logger=none",
             "callbacks.esa_metrics=null", "trainer.enable_progress_bar=false",
             "~callbacks.progress_bar", "~callbacks.lr_monitor", "test=false"]
    default = compose_config("train", quick, tmp_path / "c").model.post_processing.gap_close
    assert default.kind == "gap_close" and list(default.widths) == [0, 5, 25, 100, 400]
    off = compose_config("train", [*quick, "model.post_processing.gap_close=null"], tmp_path / "o")
    assert off.model.post_processing.gap_close is None
    nasa = compose_config("train", ["experiment=gru_ae_nasa"], tmp_path / "n")
    assert nasa.model.post_processing.gap_close is None
    train(compose_config("train", [*quick, "model.post_processing.gap_close.widths=[0,3,7]"],
                         tmp_path / "run"))
    (gru,) = Detector.load(tmp_path / "run" / "detector").components.values()
    rule = gru.post_rules["gap_close"]
    assert rule.widths == [0, 3, 7] and int(rule.width) in (0, 3, 7)
    # applied after the threshold and the gate; only the stuck-channel rule comes after it
    assert list(gru.post_rules)[-2:] == ["gap_close", "frozen"]
    assert "val/EW_F_0.50" in json.loads((tmp_path / "run" / "metrics.json").read_text())


def test_the_fit_scores_each_width_as_the_evaluation_scores_forced_alarms(trained):
    """Readings float32 cannot hold (1e39 in a float64 source) alarm in evaluation whatever the
    model says (``score_in_chunks``); the F0.5 the fit gives each width is the EW_F_0.50 of
    the fit range scored so with that width."""
    m, model, _ = trained
    closing = fragmented(model, m, 0)
    raw = closing.provisional_alarm(m.fit_range())
    quiet = np.flatnonzero((raw == 0) & (m.fit_range().is_anomaly == 0))
    forced = np.zeros(len(m.values), np.uint8)
    forced[quiet[:: max(1, len(quiet) // 6)][:6]] = 1  # six lone readings the model misses
    m = dataclasses.replace(m, unrepresentable=forced)
    fit_range = m.fit_range()
    f = closing.gap_rule.fit(closing, SimpleNamespace(mission=m))
    for width, value in f.items():
        closing.gap_rule.width.fill_(width)
        rs = score_in_chunks(closing, fit_range, chunk_rows=0)
        assert rs.alarm[forced[: len(raw)] == 1].all()
        scored = ScoredRange(fit_range, rs, np.asarray(fit_range.timestamps), fit_range.events)
        assert value == pytest.approx(report_for(scored, "val")["val/EW_F_0.50"], abs=1e-12)
