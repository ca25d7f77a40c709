"""``val_provisional/<metric>`` (which early stopping and checkpoints may monitor) is computed from
the validation range's last ``callbacks.esa_metrics.max_rows`` rows: a longer range says so in
one INFO line naming both counts (it said nothing), once a fit, not once an epoch."""

from __future__ import annotations

import logging

import lightning as L
import pytest

from esa_lightning.callbacks import ESAValidationMetrics
from esa_lightning.data.rows import RowDataModule
from esa_lightning.models.zscore.model import RobustZScore
from tests.helpers import sine_mission, trainer, with_events


class _Epochs(L.Callback):
    def __init__(self) -> None:
        self.validated = 0

    def on_validation_epoch_end(self, trainer, pl_module):  # noqa: ANN001, ANN201
        self.validated += 1


def _fit(max_rows: int, caplog, tmp_path) -> list[str]:  # noqa: ANN001
    mission = with_events(sine_mission())  # 100 validation rows (380-480)
    dm = RowDataModule(mission, batch_size=64)
    model = RobustZScore(n_channels=len(mission.channel_names))
    epochs = _Epochs()
    with caplog.at_level(logging.INFO, logger="esa_lightning"):
        trainer(max_epochs=3, num_sanity_val_steps=0, default_root_dir=tmp_path,
                callbacks=[ESAValidationMetrics(max_rows=max_rows), epochs]).fit(model, dm)
    assert epochs.validated >= 2  # said once a fit, not once an epoch
    return [r.getMessage() for r in caplog.records if "val_provisional/" in r.getMessage()]


def test_a_validation_range_longer_than_max_rows_is_said_once_with_both_counts(caplog,
                                                                               tmp_path):
    lines = _fit(40, caplog, tmp_path)
    assert len(lines) == 1
    assert "last 40 rows of its 100" in lines[0]
    assert "callbacks.esa_metrics.max_rows" in lines[0]


def test_a_range_within_max_rows_says_nothing(caplog, tmp_path):
    assert _fit(100, caplog, tmp_path) == []


@pytest.mark.parametrize("value", [0, -5, 1.5, None, True])
def test_max_rows_must_be_a_whole_number_of_rows(value):
    with pytest.raises(ValueError, match="max_rows=.*must be a whole number >= 1"):
        ESAValidationMetrics(max_rows=value)
