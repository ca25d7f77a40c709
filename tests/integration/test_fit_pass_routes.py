"""The routes that fit the GRU's rules besides a fresh training give the fitted values of the
``gap_close`` fit scoring the fit range itself, where the random-forest gate hands it its
scoring (``postprocessing.fit_pass``): a resumed run whose training had finished
(``fit_post_processing`` on a checkpoint's weights), a refit of rules fitted already (the stuck
channels' limits then alarm in the alarms the gap width is chosen on), several members, and
several series (one gate and one gap width over two grids). Each is fitted twice from the same
state, with the hand-over and without it (``GapClose.hand`` dropping the pass: the path
before it), and every rule's fitted numbers, the F0.5 of each width and the final alarms must
be equal; the hand-over must have been read (no grid scored by the gap fit)."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from esa_lightning.data.mission import Mission, default_channel_table
from esa_lightning.data.windows import WindowDataModule
from esa_lightning.models.gru_ae.model import LitGRUAttentionAE
from esa_lightning.postprocessing.gaps import GapClose
from tests.helpers import sine_mission, trainer, with_events

pytestmark = pytest.mark.usefixtures("one_thread")

RULES = {
    "threshold": {"kind": "f05", "fit_on": "fit_range", "smoothing": 20},
    "channel_norm": {"kind": "channel_norm"},
    "rf_gate": {"kind": "random_forest", "n_estimators": 10, "n_jobs": 1},
    "gap_close": {"kind": "gap_close", "widths": [0, 5, 25]},
    "frozen": {"kind": "frozen", "min_run": 3},
}


def fitted(model: LitGRUAttentionAE, mission: Mission) -> dict:
    """Every rule's fitted buffers, the forest's judgement and the final row alarms of
    ``mission`` (each grid)."""
    out = {f"{name}.{k}": v.clone() for name, rule in model.post_rules.items()
           for k, v in rule.state_dict().items()}
    for name, grid in mission.grids().items():
        rs = model.score_rows(grid, series=name)
        out[f"alarm.{name}"] = torch.as_tensor(rs.alarm)
        out[f"channel_alarm.{name}"] = torch.as_tensor(np.asarray(rs.channel_alarm))
        if rs.gate_probability is not None:
            out[f"gate.{name}"] = torch.as_tensor(rs.gate_probability)
    return out


def fit_rules(model: LitGRUAttentionAE, dm, monkeypatch, hand: bool) -> tuple[dict, dict, int]:
    """(fitted values, the gap fit's F0.5 per width, the grids the gap fit scored itself) of
    ``model.fit_post_processing(dm)``, the gate handing its scoring over or not."""
    scored, widths = [0], {}
    provisional = model.provisional_alarm

    def counted(*args, **kw):
        scored[0] += 1
        return provisional(*args, **kw)

    gap_fit = GapClose.fit

    def recorded(self, *args, **kw):
        widths.update(gap_fit(self, *args, **kw) or {})
        return widths

    with monkeypatch.context() as patch:
        patch.setattr(model, "provisional_alarm", counted)
        patch.setattr(GapClose, "fit", recorded)
        if not hand:
            patch.setattr(GapClose, "hand", lambda self, scored: None)
        model.fit_post_processing(dm)
    assert model.gap_rule.handed is None  # nothing outlives the fit
    return fitted(model, dm.mission), widths, scored[0]


def same_both_ways(model: LitGRUAttentionAE, dm, monkeypatch) -> dict:
    """Fit ``model``'s rules on ``dm`` with the hand-over, then again from the same state
    without it; assert every fitted value is equal and the first read the gate's scoring."""
    state = copy.deepcopy(model.state_dict())
    handed, f05_handed, scored_handed = fit_rules(model, dm, monkeypatch, hand=True)
    assert model.gate is not None  # a forest judged the alarms the width was chosen on
    model.load_state_dict(state)
    itself, f05_itself, scored_itself = fit_rules(model, dm, monkeypatch, hand=False)
    assert scored_handed == 0 and scored_itself == len(dm.mission.grids())
    assert f05_handed == f05_itself and len(f05_itself) == 3
    assert handed.keys() == itself.keys()
    for key in itself:
        torch.testing.assert_close(handed[key], itself[key], rtol=0, atol=0, equal_nan=True,
                                   msg=key)
    return handed


def test_a_resumed_finished_training_and_a_refit_of_several_members(tmp_path, monkeypatch):
    """``ckpt_path=last`` after the last epoch: Lightning skips ``on_train_end`` and
    ``train.fit_component`` fits the rules with ``fit_post_processing``; then once more, on
    rules fitted already (the stuck channels' limits in the alarms)."""
    m = sine_mission(T=900, val_start=560, test_start=720)
    m.values[400:440, 1] = m.values[400, 1]  # a labeled stuck channel: alarmed once fitted
    m.labels[400:440, 1] = 1
    m = with_events(m)
    rules = {**RULES, "rf_gate": {**RULES["rf_gate"], "chunk_rows": 100},
             "gap_close": {**RULES["gap_close"], "chunk_rows": 150}}
    folder = tmp_path / "checkpoints"

    def run() -> tuple[LitGRUAttentionAE, WindowDataModule, ModelCheckpoint]:
        torch.manual_seed(0)
        dm = WindowDataModule(m, window=8, batch_size=64)
        dm.setup("fit")
        model = LitGRUAttentionAE(**dm.dims, hidden_size=12, latent_dim=6, lr=3e-3, members=2,
                                  post_processing=rules)
        return model, dm, ModelCheckpoint(dirpath=folder, save_last=True)

    model, dm, ckpt = run()
    trainer(enable_checkpointing=True, callbacks=[ckpt]).fit(model, dm)
    resumed, dm, ckpt = run()
    with monkeypatch.context() as patch:  # the rules are fitted below, as fit_component does
        patch.setattr(LitGRUAttentionAE, "configure_callbacks", lambda self: [])
        trainer(enable_checkpointing=True, callbacks=[ckpt]).fit(
            resumed, dm, ckpt_path=str(folder / "last.ckpt"))
    assert not resumed.frozen_rule  # the checkpoint's rules are unfitted
    for a, b in zip(model.net.state_dict().values(), resumed.net.state_dict().values(),
                    strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    first = same_both_ways(resumed, dm, monkeypatch)
    assert resumed.frozen_rule.alarms(m.fit_range(), 0).any()  # in the gap fit's alarms
    again = same_both_ways(resumed, dm, monkeypatch)
    assert (np.diff(again["alarm.None"].numpy().astype(int)) == 1).sum() >= 1
    assert first.keys() == again.keys()


@pytest.mark.parametrize("options", [{}, {"objective": "forecast", "per_series": True,
                                          "members": 2}], ids=["reconstruct", "forecast"])
def test_several_series_share_one_gate_and_one_gap_width(options, monkeypatch):
    """NASA layout: a grid per series, each with its own threshold and fit range, one forest
    and one width fitted over both (the pass keeps each grid by series name); a network per
    series with two members forecasting too."""
    parts = {}
    for name, seed, n in (("A-1", 1, 900), ("B-2", 2, 820)):
        part = sine_mission(T=n, C=1, K=2, val_start=n - 340, test_start=n - 180, seed=seed,
                            name=name)
        parts[name] = with_events(dataclasses.replace(part, meta={**part.meta, "series": name}))
    parts["B-2"].values[:] *= 50.0
    events = [p.events.assign(Channel=name) for name, p in parts.items()]
    m = Mission("nasa", {k: p.values for k, p in parts.items()}, None,
                default_channel_table(list(parts)), None,
                pd.concat(events, ignore_index=True), series=parts)
    torch.manual_seed(0)
    dm = WindowDataModule(m, window=8, batch_size=64, series_batches=bool(options))
    dm.setup("fit")
    model = LitGRUAttentionAE(**dm.dims, hidden_size=12, latent_dim=6, lr=3e-3,
                              post_processing=RULES, **options)
    trainer().fit(model, dm)
    assert model.hparams.series == list(parts)
    fitted_values = same_both_ways(model, dm, monkeypatch)
    assert {"alarm.A-1", "alarm.B-2"} <= fitted_values.keys()
    # the pass is checked against the model's scoring once a gap fit, not once a grid: the
    # key digests every weight (a network per series: 15 million parameters for NASA's 80)
    key, calls = model.scoring_key, []
    model.gate.fit_in_order(model, dm)
    monkeypatch.setattr(model, "scoring_key", lambda: calls.append(1) or key())
    model.gap_rule.fit(model, dm)
    assert len(calls) == 1


def test_a_pass_handed_before_the_rules_changed_gives_the_width_of_scoring_again(monkeypatch):
    """A pass left by a gate fitted in order, then something else before the gap fit, is read
    only where it is still this model's scoring: a threshold changed since applies to the kept
    scores (a lower one alarms windows whose features were not kept: scored again), a refitted
    error normalisation changes the scoring key; a gate fitted on the training rows hands
    nothing."""
    m = with_events(sine_mission(T=900, val_start=560, test_start=720))
    torch.manual_seed(0)
    dm = WindowDataModule(m, window=8, batch_size=64)
    dm.setup("fit")
    model = LitGRUAttentionAE(**dm.dims, hidden_size=12, latent_dim=6, lr=3e-3,
                              post_processing=RULES)
    trainer().fit(model, dm)
    gate, gap, threshold = model.gate, model.gap_rule, model.threshold_rule
    fitted_threshold = threshold.threshold.clone()

    def gap_fit(hand: bool, change) -> tuple[dict | None, int, int]:
        """(F0.5 per width, width, grids the fit scored itself) of the gap rule fitted after
        ``change()``, which follows the gate's fit, handed its pass or not."""
        calls = [0]
        provisional = model.provisional_alarm

        def counted(*args, **kw):
            calls[0] += 1
            return provisional(*args, **kw)

        gap.handed = None
        threshold.threshold.copy_(fitted_threshold)  # the gate fitted behind the same cut
        gate.fit_in_order(model, dm)
        if not hand:
            gap.handed = None
        change()
        with monkeypatch.context() as patch:
            patch.setattr(model, "provisional_alarm", counted)
            f05 = gap.fit(model, dm)
        return f05, int(gap.width), calls[0]

    for factor, read in ((1.5, True), (0.5, False)):  # the threshold moved after the gate's fit

        def moved(factor: float = factor) -> None:
            threshold.threshold.copy_(fitted_threshold * factor)

        handed, itself = gap_fit(True, moved), gap_fit(False, moved)
        assert handed[:2] == itself[:2] and itself[2] == 1
        assert handed[2] == (0 if read else 1)
    norm = model.channel_norm
    state = copy.deepcopy(norm.state_dict())
    refitted = gap_fit(True, lambda: [b.mul_(2.0) for b in norm.buffers()
                                      if b.is_floating_point()])
    norm.load_state_dict(state)
    assert refitted[2] == 1  # another scoring key: scored again
    gate.fit_on = "training"
    gap.handed = None
    gate.fit_in_order(model, dm)
    assert gap.handed is None
