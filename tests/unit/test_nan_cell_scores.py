"""A NaN cell that reaches a per-channel baseline's ``score_rows`` (a Mission built by hand or
changed after ``load_mission``: data that did not go through the readers' or
``Detector.predict``'s repair) is no reading, as the window models read it (``scale``: NaN
becomes 0, the median): its channel scores 0, and the row's score is its largest channel score
among the channels that sent one. The robust z-score and GlobalSTD gave the whole row a NaN
score (torch's max propagates NaN), so a NaN on one channel hid an alarm on another, and a NaN
score has no confidence and no interval."""

import numpy as np
import pytest
import torch

from esa_lightning.models.global_std.model import GlobalSTD
from esa_lightning.models.zscore.model import RobustZScore
from tests.helpers import toy_mission


def _fitted(kind: str):
    if kind == "zscore":
        model = RobustZScore(n_channels=3)
        model.median.zero_()
        model.scale.fill_(1.0)
        model.threshold.fill_(4.0)
    else:
        model = GlobalSTD(n_channels=3, n_std=4.0)
        model.mean.zero_()
        model.std.fill_(1.0)
    return model.eval()


def _mission_with_nan():
    values = np.zeros((6, 3), np.float32)
    values[:, 1] = 1.0
    values[1, 0] = np.nan  # one channel silent, the others ordinary
    values[2, 0] = np.nan  # one channel silent, another far out: the row alarms
    values[2, 2] = 9.0
    values[3, :] = np.nan  # no reading at all
    values[4, 2] = -2.0
    return toy_mission(values, val_start=2, test_start=4)


@pytest.mark.parametrize("kind", ["zscore", "global_std"])
def test_a_nan_cell_is_no_reading_when_scored(kind):
    scores = _fitted(kind).score_rows(_mission_with_nan())
    assert np.isfinite(scores.score).all()
    assert np.isfinite(scores.channel_scores).all()
    np.testing.assert_allclose(scores.score, [1.0, 1.0, 9.0, 0.0, 2.0, 1.0])
    assert scores.channel_scores[1, 0] == 0.0 and scores.channel_scores[3].tolist() == [0, 0, 0]
    assert scores.alarm.tolist() == [0, 0, 1, 0, 0, 0]
    assert scores.channel_alarm[2].tolist() == [0, 0, 1]


def test_validation_rows_holding_nan_still_leave_the_threshold_alone(tmp_path):
    """The fit is unchanged: a validation row holding NaN stays out of the percentile."""
    model = _fitted("zscore")
    score, _ = model.row_scores(torch.tensor([[float("nan"), 0.0, 0.0]]))
    assert torch.isnan(score).all()
