"""The forecaster's ``forecast_MAE`` in the data's units (error x IQR) on a channel whose IQR is
near float32's largest value: the float32 product overflowed (inf) and so did the figure."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from esa_lightning.data.windows import WindowDataModule
from esa_lightning.models.gru_ae.alarms import raw_error_sum
from esa_lightning.models.gru_ae.model import LitGRUAttentionAE
from tests.helpers import sine_mission

TOP = np.float32(np.finfo(np.float32).max)


def old_sum(errors: np.ndarray, iqr: np.ndarray) -> float:
    """The sum as ``forecast_mae`` computed it before: float32 products, float64 sum."""
    return float((errors * iqr).sum(dtype=np.float64))


@pytest.mark.parametrize("seed", range(5))
def test_the_sum_is_the_old_one_bit_for_bit_on_ordinary_data(seed):
    rng = np.random.default_rng(seed)
    n, c = rng.integers(1, 3000), rng.integers(1, 90)
    errors = np.abs(rng.standard_normal((n, c)) * 10.0 ** rng.uniform(-3, 3)).astype(np.float32)
    iqr = (10.0 ** rng.uniform(-6, 6, c)).astype(np.float32)
    assert raw_error_sum(errors, iqr) == old_sum(errors, iqr)


def test_a_product_beyond_float32_counts_as_its_float64_value():
    errors = np.array([[2.0, 0.5], [3.0, 0.25]], dtype=np.float32)
    iqr = np.array([TOP, 4.0], dtype=np.float32)
    with np.errstate(over="ignore"):
        assert old_sum(errors, iqr) == np.inf  # what it was
    assert raw_error_sum(errors, iqr) == 5.0 * float(TOP) + 3.0


def forecaster_with_errors(level: float):
    """A forecaster on a sine mission whose channel 0 has an IQR of float32's largest value and
    every validation window a forecast error of ``level`` (scaled units) on every channel."""
    m = sine_mission()
    dm = WindowDataModule(m, window=4)
    dm.setup("fit")
    model = LitGRUAttentionAE(**dm.dims, hidden_size=8, latent_dim=4, objective="forecast",
                              post_processing={"threshold": {"kind": "percentile", "q": 99}})
    median, iqr = (np.array(a) for a in dm.scaler)
    iqr[:, 0] = TOP
    model.set_scaler(median, iqr)
    real = model.window_outputs

    def outputs(*args, **kwargs):
        wo = real(*args, **kwargs)
        return replace(wo, per_channel=np.full_like(wo.per_channel, level))

    model.window_outputs = outputs
    return model, m, iqr[0, : model.hparams.n_outputs].astype(np.float64)


def test_forecast_mae_stays_finite_and_ordered_with_an_iqr_near_float32s_largest():
    """Errors of 2 and 3 IQRs on channel 0 were both inf; now each is its float64 value."""
    figures = []
    for level in (2.0, 3.0):
        model, m, iqr = forecaster_with_errors(level)
        mae = model.forecast_mae(m)
        assert np.isfinite(mae)
        assert mae == pytest.approx(level * iqr.mean(), rel=1e-12)
        figures.append(mae)
    assert figures[0] < figures[1]
