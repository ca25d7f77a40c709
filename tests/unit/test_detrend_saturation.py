"""Why a detrended reading beyond float32's range may be stored as float32's largest value
(``detrend_columns``) rather than refused: the readings themselves are float32 (the readers
replace and report any beyond it), and the model reads the detrended value scaled by its
column's IQR and clipped to ``SCALED_LIMIT`` IQRs, where the stored value and the true one give
the same input unless the column's IQR exceeds float32's largest / ``SCALED_LIMIT`` (3.4e26);
even then the input keeps its sign and order and is off by less than a factor 2."""

from __future__ import annotations

import numpy as np
import pytest

from esa_lightning.data.transforms.windows import SCALED_LIMIT, detrend_columns, scale

TOP = float(np.finfo(np.float32).max)


def stepping_column(n: int = 80) -> np.ndarray:
    """float32 [n, 2]: readings stepping between -3e38 and +3e38 (and back), then a sine."""
    x = np.empty((n, 2), dtype=np.float32)
    x[:, 0] = np.where(np.arange(n) % 20 < 10, -3e38, 3e38)
    x[1::7, 0] = np.float32(-1e38)
    x[:, 1] = np.sin(np.arange(n) / 5.0)
    return x


@pytest.mark.parametrize("statistic", ["mean", "median", "clipped_mean"])
@pytest.mark.parametrize("iqr0", [1.0, 1e20, TOP / SCALED_LIMIT * 0.99])
def test_the_model_input_is_the_true_one_where_the_iqr_keeps_it_within_the_limit(
    statistic, iqr0
):
    x = stepping_column()
    stored = detrend_columns(x.copy(), 3, 2, statistic)
    true = detrend_columns(x.astype(np.float64), 3, 2, statistic)
    beyond = np.abs(true) > TOP
    assert beyond[:, 0].any()  # the case is there
    np.testing.assert_array_equal(stored[~beyond], true[~beyond].astype(np.float32))
    median, iqr = np.zeros(2, np.float32), np.array([iqr0, 1.0], np.float32)
    expected = np.clip(true / iqr.astype(np.float64), -SCALED_LIMIT, SCALED_LIMIT)
    np.testing.assert_array_equal(scale(stored, median, iqr)[beyond], np.float32(expected[beyond]))


@pytest.mark.parametrize("statistic", ["mean", "median", "clipped_mean"])
def test_with_an_iqr_near_float32s_largest_the_input_keeps_sign_and_order(statistic):
    x = stepping_column()
    stored = detrend_columns(x.copy(), 3, 2, statistic)
    true = detrend_columns(x.astype(np.float64), 3, 2, statistic)[:, 0]
    got = scale(stored, np.zeros(2, np.float32), np.array([TOP, 1.0], np.float32))[:, 0]
    exact = true / TOP
    assert (np.abs(exact) > 1.0).any()  # some inputs are moved by the saturation
    assert (np.sign(got) == np.sign(exact)).all()
    order = np.argsort(exact, kind="stable")
    assert (np.diff(got[order]) >= 0).all()  # never reversed
    moved = np.abs(exact) > 1.0
    assert (np.abs(exact[moved]) / np.abs(got[moved]) < 2.0).all()
