"""The window threshold's, the random-forest gate's and the per-channel error normalisation's
fits read their range in pieces (``chunk_rows`` windows at a time, ``models.window_pieces``):
the outputs, thresholds, forests and scales of reading it whole, with no scoring call over more
than a piece and its history."""

from __future__ import annotations

import copy
import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from esa_lightning.data.windows import WindowDataModule
from esa_lightning.errors import ESAInputError
from esa_lightning.models.base import piece_bounds
from esa_lightning.models.gru_ae.model import LitGRUAttentionAE
from esa_lightning.postprocessing.channel_norm import ChannelNorm
from esa_lightning.postprocessing.random_forest import RandomForestGate, window_features
from esa_lightning.postprocessing.thresholds import (
    DynamicThreshold,
    F05Threshold,
    PercentileThreshold,
)
from tests.helpers import sine_mission, with_events

pytestmark = pytest.mark.usefixtures("one_thread")

WINDOW, DETREND, BATCH, CHUNK = 6, 40, 32, 96  # CHUNK: three scoring batches a piece
RULES = {
    "threshold": {"kind": "f05", "fit_on": "fit_range", "smoothing": 5},
    "rf_gate": {"kind": "random_forest", "n_estimators": 10, "gate_factor": 0.7,
                "check": "cross_fit", "folds": 3},
}


@pytest.fixture(scope="module")
def fitted():
    """An untrained small GRU (detrend 40 rows, 32 windows a scoring batch) whose threshold and
    gate are fitted whole on a 1,600-row mission with labeled bumps in every range."""
    m = with_events(sine_mission(T=1600, val_start=1000, test_start=1300))
    values, labels = m.values.copy(), m.labels.copy()
    for s in range(160, 1260, 120):  # more events: the F0.5 search and the forest need them
        values[s : s + 6, s % 3] += 3
        labels[s : s + 6, s % 3] = 1
    m = with_events(dataclasses.replace(m, values=values, labels=labels))
    dm = WindowDataModule(m, window=WINDOW, batch_size=64, detrend=DETREND)
    dm.setup("fit")
    torch.manual_seed(0)
    model = LitGRUAttentionAE(**dm.dims, hidden_size=8, latent_dim=4, score_batch_size=BATCH,
                              post_processing=copy.deepcopy(RULES))
    model.set_preprocessing(dm)
    refit(model, m, 0)
    assert model.gate is not None  # a forest was fitted (both classes above the gate)
    return m, model


def refit(model: LitGRUAttentionAE, m, chunk_rows: int) -> None:
    """Fit ``model``'s threshold, then its gate, reading ``chunk_rows`` windows at a time."""
    for rule in model.post_rules.values():
        rule.chunk_rows = chunk_rows
        rule.fit(model, SimpleNamespace(mission=m))


def test_window_pieces_give_the_outputs_of_the_whole_range_bit_for_bit(fitted):
    """Each piece reads the detrend rows before it and starts on a whole scoring batch (a
    chunk of 100 windows is read as 96), so every output equals scoring the range whole."""
    m, model = fitted
    part = m.fit_range()
    whole = model.window_outputs(part, features=True)
    pieces = list(model.window_pieces(part, chunk_rows=100, features=True))
    assert [first for first, _ in pieces] == list(range(0, len(whole.total), CHUNK))
    for field in ("total", "per_channel", "latent", "attention_stats"):
        got = np.concatenate([getattr(wo, field) for _, wo in pieces])
        np.testing.assert_array_equal(got, getattr(whole, field), err_msg=field)
    np.testing.assert_array_equal(model.window_totals(part, chunk_rows=100), whole.total)


def test_window_pieces_read_the_rows_a_clipped_mean_clips_by(fitted):
    """``detrend_stat=clipped_mean`` clips each value by the rows before it: a piece reads those
    too, so pieces still equal the whole range on heavy-tailed values clipped all the time."""
    m, _ = fitted
    rng = np.random.default_rng(3)
    values = m.values + rng.standard_cauchy(m.values.shape).astype(np.float32)
    m = dataclasses.replace(m, values=values)
    dm = WindowDataModule(m, window=WINDOW, batch_size=64, detrend=DETREND,
                          detrend_stat="clipped_mean")
    dm.setup("fit")
    torch.manual_seed(0)
    model = LitGRUAttentionAE(**dm.dims, hidden_size=8, latent_dim=4, score_batch_size=BATCH,
                              post_processing={"threshold": RULES["threshold"]})
    model.set_preprocessing(dm)
    part = m.fit_range()
    whole = model.window_outputs(part, features=True)
    got = np.concatenate([wo.total for _, wo in model.window_pieces(part, chunk_rows=CHUNK)])
    np.testing.assert_array_equal(got, whole.total)
    assert model.context_rows > model.hparams.window + DETREND


@pytest.mark.parametrize("rule", [
    F05Threshold(fit_on="fit_range", smoothing=5),
    F05Threshold(fit_on="validation", smoothing=5),
    PercentileThreshold(q=95),
    DynamicThreshold(smoothing=20),
], ids=["f05_fit_range", "f05_validation", "percentile", "dynamic"])
def test_every_window_threshold_fits_alike_whole_and_in_pieces(fitted, rule):
    m, model = fitted
    thresholds = {}
    for chunk in (0, CHUNK):
        rule.chunk_rows = chunk
        rule.threshold.fill_(float("nan"))
        rule.fit(model, SimpleNamespace(mission=m))
        thresholds[chunk] = rule.threshold.clone()
    assert torch.isfinite(thresholds[0]).all()
    assert torch.equal(thresholds[CHUNK], thresholds[0])


def test_the_threshold_and_the_gate_fit_alike_whole_and_in_pieces(fitted):
    """Thresholds, forests and alarms: the same read whole and in pieces of 96 windows."""
    m, whole = fitted
    fit_range = m.fit_range()
    assert len(piece_bounds(len(fit_range.values), CHUNK)) >= 10
    pieces = copy.deepcopy(whole)
    pieces.post_rules["threshold"].threshold.fill_(float("nan"))
    pieces.post_rules["rf_gate"].forest = None
    refit(pieces, m, CHUNK)
    assert torch.equal(pieces.threshold_rule.threshold, whole.threshold_rule.threshold)
    x = window_features(whole.window_outputs(m, features=True))
    np.testing.assert_array_equal(pieces.gate.forest.predict_proba(x),
                                  whole.gate.forest.predict_proba(x))
    a, b = pieces.score_rows(m), whole.score_rows(m)
    np.testing.assert_array_equal(a.alarm, b.alarm)
    np.testing.assert_array_equal(a.gate_probability, b.gate_probability)


def spy_on_window_outputs(model) -> list[int]:
    """The rows of every ``model.window_outputs`` call from now on (the list fills as it is
    called)."""
    seen: list[int] = []
    window_outputs = model.window_outputs

    def spy(mission, *args, **kwargs):
        seen.append(len(mission.values))
        return window_outputs(mission, *args, **kwargs)

    model.window_outputs = spy
    return seen


def test_no_scoring_call_of_the_fits_covers_more_than_a_piece_and_its_history(fitted):
    """The fits read at most ``chunk_rows`` windows a call: a piece's rows, the window's last
    rows and the detrend rows before it. They read the whole fit range in one call before
    (1,300 rows)."""
    m, fitted_model = fitted
    model = copy.deepcopy(fitted_model)
    seen = spy_on_window_outputs(model)
    refit(model, m, CHUNK)
    assert max(seen) <= CHUNK + (WINDOW - 1) + (DETREND - 1)
    assert model.gate is not None and len(seen) >= 10


@pytest.mark.parametrize("make", [F05Threshold, PercentileThreshold, DynamicThreshold,
                                  RandomForestGate, ChannelNorm])
@pytest.mark.parametrize("value", [-1, 1.5, True])
def test_a_bad_chunk_rows_is_refused_naming_it(make, value):
    with pytest.raises(ESAInputError, match=r"chunk_rows.*integer >= 0|integer >= 0.*chunk_rows"):
        make(chunk_rows=value)


def held_channels(m):
    """``m`` with channel 1 held for 25 rows at a time (it moves in some windows only) and
    channel 2 held through the training range (too few moving windows: all of them count)."""
    values = m.values.copy()
    values[:, 1] = values[np.arange(len(values)) // 25 * 25, 1]
    values[: m.val_start, 2] = values[0, 2]
    return dataclasses.replace(m, values=values)


def fit_norm(model, m, chunk_rows: int, spread_on: str = "moving") -> ChannelNorm:
    rule = ChannelNorm(n_outputs=model.hparams.n_outputs, spread_on=spread_on)
    rule.chunk_rows = chunk_rows  # set as a resumed run sets it: after the rule is built
    rule.fit(model, SimpleNamespace(mission=m))
    return rule


@pytest.mark.parametrize("spread_on", ["moving", "all"])
@pytest.mark.parametrize("chunk", [CHUNK, 100, 5000])
def test_channel_norm_fits_the_same_centres_and_scales_whole_and_in_pieces(
    fitted, spread_on, chunk
):
    """Pieces of 96 windows (100: read as 96; 5000: one piece), channels that move on some
    windows or on too few: each channel's median and spread of the windows it keeps, bit for
    bit."""
    m, model = fitted
    m = held_channels(m)
    whole, pieces = fit_norm(model, m, 0, spread_on), fit_norm(model, m, chunk, spread_on)
    assert whole.is_fitted
    assert torch.equal(pieces.centre, whole.centre)
    assert torch.equal(pieces.scale, whole.scale)
    if spread_on == "moving":  # channel 1's spread is taken over its moving windows only
        assert not torch.equal(whole.scale, fit_norm(model, m, 0, "all").scale)


def test_no_scoring_call_of_the_channel_norm_fit_covers_more_than_a_piece_and_its_history(
    fitted,
):
    """It read the whole training range (1,000 rows) in one call before."""
    m, fitted_model = fitted
    model = copy.deepcopy(fitted_model)
    seen = spy_on_window_outputs(model)
    assert fit_norm(model, held_channels(m), CHUNK).is_fitted
    assert max(seen) <= CHUNK + (WINDOW - 1) + (DETREND - 1)
    assert len(seen) >= 10
