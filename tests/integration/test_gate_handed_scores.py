"""The random-forest gate's fit reads the window scores the ``f05`` threshold's search on the fit
range computed (``fit_pass.FitScores``) and sends through the network only the scoring batches
holding a window above its cut (``WindowPieces.window_batches``), instead of scoring the fit
range again: the forest (every tree), its cross-fit check, the gated windows and their
features, every rule's fitted numbers and the final alarms must be those of the gate scoring
the range itself, bit for bit, with trailing means reaching across batches (``detrend``), the
fit in pieces (``chunk_rows``) and several series; the network must have seen fewer windows."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from esa_lightning.data.mission import Mission, default_channel_table
from esa_lightning.data.transforms.windows import n_windows
from esa_lightning.data.windows import WindowDataModule
from esa_lightning.models.gru_ae.model import LitGRUAttentionAE
from esa_lightning.postprocessing.gaps import GapClose
from esa_lightning.postprocessing.random_forest import RandomForestGate
from tests.helpers import sine_mission, trainer, with_events

pytestmark = pytest.mark.usefixtures("one_thread")

BATCH = 32  # windows per scoring batch: a fit range of 20-odd batches, most without an alarm
RULES = {
    "threshold": {"kind": "f05", "fit_on": "fit_range", "smoothing": 20},
    "channel_norm": {"kind": "channel_norm"},
    "rf_gate": {"kind": "random_forest", "n_estimators": 10, "n_jobs": 1},
    "gap_close": {"kind": "gap_close", "widths": [0, 5, 25]},
}


def one_series() -> Mission:
    return with_events(sine_mission(T=900, val_start=560, test_start=720))


def two_series() -> Mission:
    parts = {}
    for name, seed, n in (("A-1", 1, 900), ("B-2", 2, 820)):
        part = sine_mission(T=n, C=1, K=2, val_start=n - 340, test_start=n - 180, seed=seed,
                            name=name)
        parts[name] = with_events(dataclasses.replace(part, meta={**part.meta, "series": name}))
    events = [p.events.assign(Channel=name) for name, p in parts.items()]
    return Mission("nasa", {k: p.values for k, p in parts.items()}, None,
                   default_channel_table(list(parts)), None,
                   pd.concat(events, ignore_index=True), series=parts)


def trained(m: Mission, rules: dict, detrend: int | None = None) -> tuple:
    torch.manual_seed(0)
    dm = WindowDataModule(m, window=8, batch_size=64, detrend=detrend)
    dm.setup("fit")
    model = LitGRUAttentionAE(**dm.dims, hidden_size=12, latent_dim=6, lr=3e-3,
                              score_batch_size=BATCH, post_processing=rules)
    trainer().fit(model, dm)
    return model, dm


def trees(forest) -> list[np.ndarray]:
    """Every array that makes the forest's decisions (none without a forest)."""
    if forest is None:
        return []
    out = [np.asarray(forest.classes_)]
    for tree in forest.estimators_:
        out += [tree.tree_.feature, tree.tree_.threshold, tree.tree_.value,
                tree.tree_.children_left, tree.tree_.children_right]
    return out


def fit_rules(model, dm, monkeypatch, handover: bool) -> dict:
    """What ``model.fit_post_processing(dm)`` fits, the gate taking the threshold's window
    scores or scoring the fit range itself (the path before the hand-over), with the windows
    the gate's fit sent through the network."""
    seen, passes = [0], []
    scorer, gate_fit, hand = model.window_outputs, RandomForestGate.fit, GapClose.hand

    def window_outputs(*args, **kw):
        out = scorer(*args, **kw)
        seen[0] += len(out.total) if counting[0] else 0
        return out

    counting = [False]

    def counted_fit(self, *args, **kw):
        counting[0] = True
        try:
            return gate_fit(self, *args, **kw)
        finally:
            counting[0] = False

    with monkeypatch.context() as patch:
        patch.setattr(model, "window_outputs", window_outputs)
        patch.setattr(RandomForestGate, "fit", counted_fit)
        patch.setattr(GapClose, "hand", lambda self, p: passes.append(p) or hand(self, p))
        if not handover:
            patch.setattr(RandomForestGate, "hand", lambda self, scores: None)
        model.fit_post_processing(dm)
    assert model.post_rules["rf_gate"].handed is None  # nothing outlives the fit
    (handed,) = passes
    out = {f"{name}.{k}": v.clone() for name, rule in model.post_rules.items()
           for k, v in rule.state_dict().items()}
    for name, grid in dm.mission.grids().items():
        rs = model.score_rows(grid, series=name)
        out[f"alarm.{name}"] = torch.as_tensor(rs.alarm)
        if rs.gate_probability is not None:
            out[f"gate.{name}"] = torch.as_tensor(rs.gate_probability)
        scored = handed.grids[name]
        out[f"scores.{name}"] = torch.as_tensor(scored.total)
        out[f"gated.{name}"] = torch.as_tensor(scored.gate)
        out[f"features.{name}"] = torch.as_tensor(scored.features)
    for i, array in enumerate(trees(model.post_rules["rf_gate"].forest)):
        out[f"tree.{i}"] = torch.as_tensor(np.ascontiguousarray(array))
    return {"fitted": out, "windows": seen[0]}


@pytest.mark.parametrize("case", ["plain", "detrend_pieces", "two_series"])
def test_the_gate_on_handed_scores_fits_what_it_fits_scoring_the_range(case, monkeypatch):
    m = two_series() if case == "two_series" else one_series()
    rules = RULES
    if case == "detrend_pieces":  # pieces of 64 windows (two batches), trailing means of 24
        # rows, the forest judged out of fold first (on the gated windows and their features)
        rules = {**RULES, "threshold": {**RULES["threshold"], "chunk_rows": 100},
                 "rf_gate": {**RULES["rf_gate"], "chunk_rows": 64, "check": "cross_fit"}}
    model, dm = trained(m, rules, detrend=24 if case == "detrend_pieces" else None)
    state = copy.deepcopy(model.state_dict())
    handed = fit_rules(model, dm, monkeypatch, handover=True)
    if case != "detrend_pieces":  # a forest was fitted and shipped (no check to pass)
        assert model.post_rules["rf_gate"].forest is not None
    model.load_state_dict(state)
    itself = fit_rules(model, dm, monkeypatch, handover=False)
    fit_windows = sum(n_windows(len(g.fit_range().values), 8) for g in m.grids().values())
    assert itself["windows"] == fit_windows
    assert 0 < handed["windows"] < fit_windows  # only the batches holding a gated window
    a, b = handed["fitted"], itself["fitted"]
    assert a.keys() == b.keys()
    shipped = model.post_rules["rf_gate"].forest is not None
    assert any(k.startswith("tree.") for k in a) == shipped
    for key in b:
        assert a[key].dtype == b[key].dtype and a[key].shape == b[key].shape, key
        assert a[key].numpy().tobytes() == b[key].numpy().tobytes(), key  # bit for bit


def test_window_batches_give_the_outputs_of_scoring_the_range_whole():
    """Scattered windows, a trailing mean reaching back across batch edges, runs of batches
    bounded by ``chunk_rows``: each batch's outputs those of the whole range, bit for bit."""
    m = one_series()
    model, _ = trained(m, RULES, detrend=24)
    fit = m.fit_range()
    whole = model.window_outputs(fit, features=True)
    n = len(whole.total)
    wanted = np.zeros(n, dtype=bool)
    wanted[[0, 5, 40, 41, 100, 130, 131, 300, n - 1]] = True
    for chunk_rows in (0, 64, 1):
        got = list(model.window_batches(fit, wanted, chunk_rows=chunk_rows, features=True))
        firsts = [first for first, _ in got]
        assert all(first % BATCH == 0 for first in firsts)
        covered = np.zeros(n, dtype=bool)
        for first, wo in got:
            stop = first + len(wo.total)
            assert len(wo.total) <= max(BATCH, chunk_rows - chunk_rows % BATCH or n)
            covered[first:stop] = True
            for part, full in ((wo.total, whole.total), (wo.per_channel, whole.per_channel),
                               (wo.latent, whole.latent),
                               (wo.attention_stats, whole.attention_stats)):
                assert part.tobytes() == full[first:stop].tobytes()
        assert covered[wanted].all()
        # only the batches holding a wanted window
        held = np.unique(np.flatnonzero(wanted) // BATCH)
        assert covered.sum() == sum(min(n, (b + 1) * BATCH) - b * BATCH for b in held)


def test_scores_that_are_not_the_models_are_scored_again(monkeypatch):
    """Window scores handed over that a batch's scoring does not reproduce (scored with other
    weights, say) are not read: the gate scores the fit range itself and fits the same forest;
    a threshold that does not score the fit range hands nothing."""
    m = one_series()
    model, dm = trained(m, RULES)
    gate, threshold = model.post_rules["rf_gate"], model.threshold_rule
    expected = trees(gate.forest)
    total = model.window_totals(m.fit_range())
    model.gap_rule.handed = None
    kept = []
    monkeypatch.setattr(RandomForestGate, "hand", lambda self, scores: kept.append(scores))
    threshold.fit_in_order(model, dm)
    (scores,) = kept
    assert scores.totals[None].tobytes() == total.tobytes()
    cut = float(threshold.threshold[0]) * gate.gate_factor
    first_gated = int(np.flatnonzero(threshold.smoothed(total) > cut)[0])
    scores.totals[None] = total.copy()
    scores.totals[None][first_gated] *= 2  # still gated, its batch scored: not this score
    gate.handed = scores
    with monkeypatch.context() as patch:
        calls = []
        batches = model.window_batches
        patch.setattr(model, "window_batches", lambda *a, **k: calls.append(1) or batches(*a, **k))
        gate.fit(model, dm)
    assert calls  # it read the handed scores, then scored the range again
    assert all(np.array_equal(x, y) for x, y in zip(trees(gate.forest), expected, strict=True))
    threshold.fit_on = "validation"  # its search never scores the fit range
    kept.clear()
    threshold.fit_in_order(model, dm)
    assert kept == [] and threshold.kept is None
