"""The GRU's post-rule fits smooth each fit-range window score once: the threshold smooths the
scores it computes (``WindowThreshold.smoothed``), the random-forest gate's fit tells its gated
windows and the alarms its check judges from those smoothed scores (handed over with the
window scores, ``fit_pass.FitScores``), and the ``gap_close`` fit reads the row alarms of the
gate's smoothed scores (``fit_pass.GatedWindows``), none of them smoothing the same scores
again; scoring the range itself, the gate smooths each piece's scores up to its end once. The
numbers fitted are those of smoothing again: the alarms the check judges are the threshold's
own (``window_alarms``) and both routes fit the same forest and gap width
(``test_gate_handed_scores``, ``test_fit_pass``)."""

from __future__ import annotations

from collections import Counter

import pytest

from esa_lightning.postprocessing import random_forest
from esa_lightning.postprocessing.gaps import GapClose
from esa_lightning.postprocessing.random_forest import RandomForestGate
from esa_lightning.postprocessing.thresholds import WindowThreshold
from tests.integration.test_gate_handed_scores import RULES, one_series, trained, two_series

pytestmark = pytest.mark.usefixtures("one_thread")


def smoothings(model, dm, monkeypatch, handover: bool) -> tuple[Counter, list]:
    """(the scores smoothed during each rule's fit, ``Counter`` by rule kind; the gate's check's
    parts) of ``model.fit_post_processing(dm)``, the gate taking the threshold's window scores
    or (``handover`` False) scoring the fit range itself."""
    calls, current, checked = Counter(), [None], []
    smoothed, check = WindowThreshold.smoothed, random_forest.gate_check

    def counted(self, total):
        calls[current[0]] += 1
        return smoothed(self, total)

    def phase(kind, fit):
        def run(self, *args, **kw):
            current[0] = kind
            try:
                return fit(self, *args, **kw)
            finally:
                current[0] = None
        return run

    with monkeypatch.context() as patch:
        patch.setattr(WindowThreshold, "smoothed", counted)
        patch.setattr(RandomForestGate, "fit", phase("gate", RandomForestGate.fit))
        patch.setattr(GapClose, "fit", phase("gap", GapClose.fit))
        patch.setattr(random_forest, "gate_check",
                      lambda model, gated, accepted: checked.extend(gated)
                      or check(model, gated, accepted))
        if not handover:
            patch.setattr(RandomForestGate, "hand", lambda self, scores: None)
        model.fit_post_processing(dm)
    return calls, checked


@pytest.mark.parametrize("case", ["one_series", "two_series_in_pieces"])
def test_the_gate_and_gap_fits_smooth_no_score_again(case, monkeypatch):
    pieces = case == "two_series_in_pieces"
    m = two_series() if pieces else one_series()
    rules = {**RULES, "rf_gate": {**RULES["rf_gate"], "check": "cross_fit"}}
    if pieces:  # the gate's fit scores its range itself in pieces of 64 windows (2 batches)
        rules["rf_gate"]["chunk_rows"] = 64
    model, dm = trained(m, rules)
    grids = m.grids()
    handed, checked = smoothings(model, dm, monkeypatch, handover=True)
    assert handed["gate"] == 0 and handed["gap"] == 0
    itself, checked_itself = smoothings(model, dm, monkeypatch, handover=False)
    n_pieces = {name: -(-(len(g.fit_range().values) - 7) // 64) if pieces else 1
                for name, g in grids.items()}
    assert itself["gate"] == sum(n_pieces.values())  # each piece's scores up to its end, once
    assert itself["gap"] == 0
    # the alarms the gate's check judges are the threshold's alarms of the fit range's scores
    threshold = model.threshold_rule
    assert len(checked) == len(checked_itself) == len(grids)  # both fits ran the check
    for part, name in zip(checked + checked_itself, [*grids, *grids], strict=True):
        total = model.window_totals(part.mission, series=name)
        expected = threshold.window_alarms(total, model.series_index(part.mission, name))[1]
        assert part.alarm.dtype == expected.dtype
        assert part.alarm.tobytes() == expected.tobytes()
