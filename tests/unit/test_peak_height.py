"""The channel ensemble's alarm height fitted over folds of the fit range (``peaks`` with
``fit: true``) instead of a fixed 0.5 that alarms nowhere, or everywhere, on real data."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from esa_lightning.models.base import RowScores
from esa_lightning.postprocessing.peaks import PeakAlarm
from tests.helpers import make_mission

ANOMALIES = ((500, 520), (1300, 1320), (2100, 2120), (2700, 2720), (3500, 3520))


class ShiftedProbability:
    """A model whose per-row probability is ``base`` + noise, ``peak`` on labeled rows."""

    def __init__(self, base: float, peak: float) -> None:
        self.base, self.peak = base, peak

    def score_rows(self, mission) -> RowScores:
        rng = np.random.default_rng(len(mission.values))
        prob = self.base + 0.05 * rng.random(len(mission.values))
        prob[mission.is_anomaly > 0] = self.peak
        return RowScores(prob.astype(np.float32), np.zeros(len(prob), np.uint8))


@pytest.mark.parametrize("base, peak", [(0.05, 0.3), (0.6, 0.95)])
def test_fitted_height_separates_where_a_fixed_one_does_not(base, peak):
    mission = make_mission(n_rows=4000, val_start=2400, test_start=3200, anomalies=ANOMALIES)
    model = ShiftedProbability(base, peak)
    test_prob = model.score_rows(mission.test()).score
    fixed = PeakAlarm(height=0.5, buffer=2)
    fixed.fit(model, SimpleNamespace(mission=mission))
    fixed_alarm = fixed.alarm(test_prob)
    assert fixed_alarm.all() or not fixed_alarm.any()  # everything, or nothing

    rule = PeakAlarm(height=0.5, buffer=2, fit=True)
    assert not rule.is_fitted and not rule.alarm(test_prob).any()
    rule.fit(model, SimpleNamespace(mission=mission))
    assert rule.is_fitted and base + 0.04 <= rule.current_height < peak
    alarm = rule.alarm(test_prob).astype(bool)
    labeled = mission.test().is_anomaly > 0
    assert alarm[labeled].all() and alarm.sum() <= labeled.sum() + 4


def test_fitted_height_travels_in_the_state_dict():
    rule = PeakAlarm(fit=True)
    rule.fitted_height.fill_(0.37)
    again = PeakAlarm(fit=True)
    again.load_state_dict(rule.state_dict())
    assert again.current_height == pytest.approx(0.37)
    assert PeakAlarm().state_dict() == {}  # a fixed height keeps old artifacts loadable
