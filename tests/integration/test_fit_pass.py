"""The GRU's post-rule fits score each fit-range window once per rule that needs it: the
threshold's search reads the fit range without scoring the validation range beside it, and the
``gap_close`` fit reads the alarms of the gate's scoring (``postprocessing.fit_pass``) instead
of scoring the range again, with the width and F0.5 per width of scoring it itself."""

from __future__ import annotations

import copy
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from esa_lightning.data.transforms.windows import n_windows
from tests.helpers import sine_mission, small_gru, trainer, with_events

pytestmark = pytest.mark.usefixtures("one_thread")

RULES = {
    "threshold": {"kind": "f05", "fit_on": "fit_range", "smoothing": 20},
    "channel_norm": {"kind": "channel_norm"},
    "rf_gate": {"kind": "random_forest", "n_estimators": 10, "n_jobs": 1},
    "gap_close": {"kind": "gap_close", "widths": [0, 5, 25]},
}


def counting(model):
    """Wrap ``model.window_outputs`` and each rule's ``fit``: the windows scored during each
    rule's fit (``Counter`` by rule name)."""
    counts, current = Counter(), [None]
    scorer = model.window_outputs

    def window_outputs(*args, **kw):
        out = scorer(*args, **kw)
        counts[current[0]] += len(out.total)
        return out

    model.window_outputs = window_outputs
    for name, rule in model.post_rules.items():
        def fit(*args, _fit=rule.fit, _name=name, **kw):
            current[0] = _name
            try:
                return _fit(*args, **kw)
            finally:
                current[0] = None
        rule.fit = fit
    return counts


@pytest.fixture(scope="module")
def fitted():
    """A small GRU trained with the rules (fitted at the end of training) and the windows its
    rules' fits scored."""
    m = with_events(sine_mission(T=900, val_start=560, test_start=720))
    model, dm = small_gru(m, RULES)
    counts = counting(model)
    trainer().fit(model, dm)
    uncounted(model)
    return m, model, counts


def uncounted(model):
    """``model`` without ``counting``'s wrappers (a deep copy would call the original's)."""
    del model.window_outputs
    for rule in model.post_rules.values():
        del rule.fit


def test_each_fit_range_window_is_scored_once_per_rule_that_reads_scores(fitted):
    m, model, counts = fitted
    assert model.gate is not None  # the gate was fitted: the gap fit reads its judgements
    n_fit = n_windows(len(m.fit_range().values), model.hparams.window)
    n_train = n_windows(len(m.train().values), model.hparams.window)
    assert counts["channel_norm"] == n_train  # raw errors, before the normalisation exists
    assert counts["threshold"] == n_fit  # the search's fit range, not the validation too
    # handed the search's scores, the gate scores only the batches holding a gated window:
    # here one batch of 4,096 holds the whole range (test_gate_handed_scores: several)
    assert counts["rf_gate"] == n_fit
    assert counts["gap_close"] == 0  # handed the gate's scoring
    assert model.gap_rule.handed is None  # dropped after the fit
    assert model.post_rules["rf_gate"].handed is None  # the search's scores too


def gap_fit(model, m, handed=None):
    """(F0.5 per width, width) of fitting the model's gap rule on ``m``, handed ``handed``."""
    rule = model.gap_rule
    if handed is not None:
        rule.hand(handed)
    f05 = rule.fit(model, SimpleNamespace(mission=m))
    return f05, int(rule.width)


def handed_pass(model, m):
    """The gate's scoring of ``m``'s fit range, as its fit hands it to the gap rule."""
    model.gap_rule.handed = None
    model.gate.fit_in_order(model, SimpleNamespace(mission=m))
    handed = model.gap_rule.handed
    assert handed is not None and set(handed.grids) == {None}
    return handed


def test_the_handed_scores_give_the_gap_fit_of_scoring_the_range_itself(fitted):
    m, trained, _ = fitted
    model = copy.deepcopy(trained)
    rule = model.threshold_rule  # alarms a third of the windows: alarms with many gaps
    total = model.window_outputs(m.fit_range()).total
    rule.threshold.fill_(float(np.quantile(rule.smoothed(total), 2 / 3)))
    for chunk_rows in (0, 100):  # the range whole and in pieces with their context
        model.gap_rule.chunk_rows = chunk_rows
        scored = handed_pass(model, m)  # the forest refitted on this threshold's alarms
        assert model.gate is not None
        model.gap_rule.handed = None
        itself = gap_fit(model, m)
        handed = gap_fit(model, m, scored)
        assert handed == itself
    scored = handed_pass(model, m)
    assert scored.holds(model, m)
    alarm = scored.alarm(model, None, m.fit_range())
    np.testing.assert_array_equal(alarm, model.provisional_alarm(m.fit_range()))
    assert (np.diff(alarm.astype(int)) == 1).sum() > 1  # alarms with gaps between them


def test_a_handed_pass_made_otherwise_is_not_read(fitted):
    m, trained, _ = fitted
    model = copy.deepcopy(trained)
    counts = counting(model)
    handed = handed_pass(model, m)
    other = copy.deepcopy(m)  # another mission object: its rows may differ
    counts.clear()
    gap_fit(model, other, handed)
    assert counts["gap_close"] > 0
    with torch.no_grad():  # weights changed after the gate's scoring
        next(model.net.parameters()).add_(0.01)
    counts.clear()
    assert not handed.holds(model, m)
    gap_fit(model, m, handed)
    assert counts["gap_close"] > 0
    model.gap_rule.hand(handed)  # a pass not read is dropped all the same
    model.gap_rule.fit(model, SimpleNamespace(mission=m))
    assert model.gap_rule.handed is None


def test_a_gate_fitted_alone_or_a_failed_ordered_fit_leaves_no_pass(fitted, monkeypatch):
    """Only the rules' ordered fit hands the gate's scoring over (a gap fit follows there): a
    gate fitted alone hands nothing, and an ordered fit that fails before the gap fit reads it
    drops it all the same (``fit_rules``; training's callbacks: ``on_exception``)."""
    m, trained, _ = fitted
    model = copy.deepcopy(trained)
    dm = SimpleNamespace(mission=m)
    model.gap_rule.handed = None
    assert model.gate.fit(model, dm) is not None  # a forest fitted on the fit range
    assert model.gap_rule.handed is None and not model.gate.handing

    def broken(*args, **kw):
        raise RuntimeError("a later fit failed")

    monkeypatch.setattr(model.gap_rule, "fit", broken)
    with pytest.raises(RuntimeError, match="a later fit failed"):
        model.fit_post_processing(dm)
    assert model.gap_rule.handed is None
    model.gate.fit_in_order(model, dm)
    assert model.gap_rule.handed is not None
    model.gap_rule.on_exception(None, model, RuntimeError())
    assert model.gap_rule.handed is None
