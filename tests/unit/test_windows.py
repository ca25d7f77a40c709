"""Strided windows, window → sample mapping and the window datamodule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from esa_lightning.data.mission import Mission, default_channel_table, empty_events
from esa_lightning.data.transforms.windows import (
    CLIP_GAP,
    CLIP_REFERENCE,
    SCALED_LIMIT,
    RobustStats,
    detrend_columns,
    detrend_history,
    labeled_window_mask,
    model_inputs,
    scale,
    scaled_window_inputs,
    sliding_windows,
    window_to_sample_scores,
)
from esa_lightning.data.windows import WindowDataModule
from esa_lightning.errors import ESAInputError
from tests.helpers import sine_mission, toy_mission


def make_mission(T=400, C=3, K=2, val_start=250, test_start=330, seed=0, name="toy"):
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((T, C)).astype(np.float32)
    labels = np.zeros((T, C), np.uint8)
    tc = (rng.random((T, K)) < 0.05).astype(np.float32)
    return toy_mission(values, labels, val_start=val_start, test_start=test_start,
                       telecommands=tc, name=name)


@pytest.mark.parametrize("window,stride", [(1, 1), (5, 1), (10, 3), (4, 7)])
def test_sliding_windows_equal_materialised_reference(window, stride):
    a = np.random.default_rng(1).standard_normal((53, 4, 2)).astype(np.float32)
    view = sliding_windows(a, window, stride)
    ref = np.array([a[i : i + window] for i in range(0, len(a) - window + 1, stride)])
    assert view.shape == ref.shape
    np.testing.assert_array_equal(view, ref)
    assert np.shares_memory(view, a)
    assert not view.flags.writeable


def test_sliding_windows_shorter_than_window_is_empty():
    assert sliding_windows(np.zeros((3, 2)), 5).shape == (0, 5, 2)


def _loop_reference(scores, n, window, stride, how):
    out = np.full((n,) + scores.shape[1:], np.nan)
    for t in range(n):
        cover = [i for i in range(len(scores)) if i * stride <= t < i * stride + window]
        if cover:
            sel = scores[cover]
            out[t] = sel.max(axis=0) if how == "max" else sel.mean(axis=0)
    return out


@pytest.mark.parametrize("how", ["max", "mean"])
@pytest.mark.parametrize("window,stride,extra", [(1, 1, 0), (5, 1, 0), (6, 2, 1), (3, 5, 4)])
@pytest.mark.parametrize("channels", [None, 3])
def test_window_to_sample_scores_matches_loop(how, window, stride, extra, channels):
    rng = np.random.default_rng(2)
    n_win = 17
    shape = (n_win,) if channels is None else (n_win, channels)
    scores = rng.standard_normal(shape)
    n = (n_win - 1) * stride + window + extra
    got = window_to_sample_scores(scores, n, window, stride, how=how)
    np.testing.assert_allclose(got, _loop_reference(scores, n, window, stride, how), rtol=1e-5)


def test_labeled_window_mask_matches_loop():
    flags = np.random.default_rng(3).random(60) < 0.05
    got = labeled_window_mask(flags, 7)
    ref = np.array([flags[i : i + 7].any() for i in range(60 - 7 + 1)])
    np.testing.assert_array_equal(got, ref)


def test_scaler_never_sees_labeled_rows():
    m = make_mission()
    clean_median = np.median(m.values[: m.val_start], axis=0)
    # huge values, only inside labeled rows of the training range
    m.values[10:60] = 1e6
    m.labels[10:60, 1] = 1  # a label on ANOTHER channel still excludes the whole row
    m.values[100:120, 2] = -1e6
    m.labels[100:120, 2] = 3  # gaps count as labeled too
    dm = WindowDataModule(m, window=5)
    dm.setup("fit")
    median, iqr = dm.scaler
    keep = np.ones(m.val_start, bool)
    keep[10:60] = keep[100:120] = False
    ref = np.percentile(m.values[: m.val_start][keep], [25, 50, 75], axis=0)
    np.testing.assert_allclose(median[0, :3], ref[1], rtol=1e-5)
    np.testing.assert_allclose(iqr[0, :3], ref[2] - ref[0], rtol=1e-5)
    assert np.abs(median[0, :3] - clean_median).max() < 0.5  # the 1e6 rows did not move it


def test_datamodule_windows_are_label_free_and_stay_in_their_range():
    m = make_mission()
    m.labels[40:45, 0] = 1
    m.labels[280:282, 1] = 2
    dm = WindowDataModule(m, window=8, stride=1, batch_size=16)
    dm.setup("fit")
    assert dm.dims == dict(
        n_inputs=5, n_outputs=3, window=8, inputs="values+telecommands", series=[], detrend=None,
        detrend_stat="mean", horizon=1,
    )
    labeled = (m.labels != 0).any(axis=1)
    tr, va = dm.train_set.starts, dm.val_set.starts
    assert tr.min() >= 0 and tr.max() + 8 <= m.val_start
    assert va.min() >= m.val_start and va.max() + 8 <= m.test_start
    for s in np.concatenate([tr, va]):
        assert not labeled[s : s + 8].any()
    # every clean window is used: nothing silently dropped
    assert len(tr) == sum(not labeled[s : s + 8].any() for s in range(m.val_start - 8 + 1))
    # a batch equals the reference windows of ONE shared scaled array, targets first
    assert dm.train_set.data is dm.val_set.data
    assert dm.train_set.data.shape == (m.test_start, 5)
    x, series = next(iter(dm.val_dataloader()))
    ref = sliding_windows(dm.val_set.data.numpy(), 8)[va[:16]]
    np.testing.assert_array_equal(x.numpy(), ref)
    assert series.tolist() == [0] * 16
    median, iqr = dm.scaler
    np.testing.assert_allclose(
        x[0, :, :3].numpy(), (m.values[va[0] : va[0] + 8] - median[0, :3]) / iqr[0, :3], rtol=1e-5
    )


def test_horizon_lengthens_training_windows_but_not_scoring_windows():
    m = make_mission()
    m.labels[:] = 0
    m.labels[200, 0] = 1
    dm = WindowDataModule(m, window=8, stride=1, batch_size=16, horizon=3)
    dm.setup("fit")
    assert dm.span == 10 and dm.dims["window"] == 8 and dm.dims["horizon"] == 3
    tr, va = dm.train_set.starts, dm.val_set.starts
    assert dm.train_set.window == dm.val_set.window == 10
    assert tr.max() + 10 == m.val_start and va.min() == m.val_start
    assert va.max() + 10 == m.test_start
    # a window is clean only if its rows ahead are too: row 200 rules out starts 191..200
    assert set(range(191, 201)).isdisjoint(tr) and {190, 201} <= set(tr)
    assert len(tr) == (m.val_start - 10 + 1) - 10
    x, _ = next(iter(dm.train_dataloader()))
    assert x.shape[1] == 10
    with pytest.raises(ESAInputError, match="horizon"):
        WindowDataModule(m, window=8, horizon=0)


def test_scaling_none_keeps_the_values_as_they_are():
    m = make_mission()
    m.values[:, 0] *= 1e-4  # a near-constant channel: robust scaling would blow it up
    dm = WindowDataModule(m, window=5, scaling="none")
    dm.setup("fit")
    median, iqr = dm.scaler
    assert not median.any() and (iqr == 1).all()
    x, _ = dm.train_set[0]
    np.testing.assert_array_equal(x[:, :3].numpy(), m.values[:5])
    with pytest.raises(ESAInputError, match="scaling"):
        WindowDataModule(m, scaling="minmax")


def test_values_only_inputs_and_empty_validation():
    m = make_mission(val_start=330, test_start=330)
    dm = WindowDataModule(m, window=5, inputs="values")
    dm.setup("fit")
    assert dm.dims["n_inputs"] == dm.dims["n_outputs"] == 3
    assert dm.val_dataloader() == []
    x, _ = next(iter(dm.train_dataloader()))
    assert x.shape == (256, 5, 3) and x.dtype == torch.float32


def test_multiseries_windows_never_cross_series_borders():
    a = make_mission(T=120, C=1, K=2, val_start=80, test_start=100, seed=4, name="A-1")
    b = make_mission(T=90, C=1, K=3, val_start=60, test_start=70, seed=5, name="B-2")
    b.values += 100.0  # its own scaler must absorb the offset
    multi = Mission(
        "nasa",
        {"A-1": a.values, "B-2": b.values},
        None,
        default_channel_table(["A-1", "B-2"]),
        None,
        empty_events(),
        series={"A-1": a, "B-2": b},
    )
    dm = WindowDataModule(multi, window=6, batch_size=1000, shuffle=False)
    dm.setup("fit")
    assert dm.dims["series"] == ["A-1", "B-2"]
    assert dm.dims["n_inputs"] == 1 + 3  # telecommands padded to the widest series
    x, series = next(iter(dm.train_dataloader()))
    assert len(x) == (80 - 6 + 1) + (60 - 6 + 1)
    assert set(series.tolist()) == {0, 1}
    median, _ = dm.scaler
    assert median[1, 0] > 90 and abs(median[0, 0]) < 1
    # a window of series B holds B's rows only: scaled B values, never A's
    xb = x[series == 1]
    assert abs(float(xb[..., 0].mean())) < 1.5
    starts = dm.train_set.starts[series.numpy() == 1]
    assert starts.min() >= 100 and starts.max() + 6 <= 100 + 60


# ------------------------------------------------------------------------------ detrending
def _detrend_loop(x, span, n_columns, statistic="mean"):
    out = np.array(x, dtype=np.float64)
    for j in range(n_columns):
        for t in range(len(x)):
            past = x[max(0, t - span + 1) : t + 1, j].astype(np.float64)
            past = past[np.isfinite(past)]
            out[t, j] = x[t, j] - (getattr(np, statistic)(past) if len(past) else np.nan)
    return out


@pytest.mark.parametrize("statistic", ["mean", "median"])
@pytest.mark.parametrize("span", [1, 3, 4, 17, 500])
def test_detrend_equals_loop_reference(span, statistic):
    rng = np.random.default_rng(span)
    x = (1e3 + np.cumsum(rng.standard_normal((120, 4)), axis=0)).astype(np.float32)
    x[10:14, 1] = np.nan
    x[:, 2] = np.nan if span == 3 else x[:, 2]  # an all-NaN column stays NaN
    expected = _detrend_loop(x, span, 3, statistic)
    got = detrend_columns(x.copy(), span, 3, statistic=statistic)
    np.testing.assert_allclose(got, expected.astype(np.float32), rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(got[:, 3], x[:, 3])  # columns past n_columns untouched


def test_median_detrend_is_not_offset_after_a_long_event_ended():
    # a level shift of 300 rows in a 1000-row span: for the next 700 rows the trailing mean
    # still holds it, the trailing median does not
    x = np.zeros((2000, 1), dtype=np.float32)
    x[1000:1300, 0] = 10.0
    after = slice(1400, 2000)
    mean = detrend_columns(x.copy(), 1000)
    median = detrend_columns(x.copy(), 1000, statistic="median")
    assert np.abs(mean[after]).min() > 1.0
    np.testing.assert_array_equal(median[after], 0.0)
    with pytest.raises(ESAInputError, match="detrend_stat"):
        detrend_columns(x.copy(), 10, statistic="mode")


def _clipped_mean_loop(x, span, n_columns):
    """Each value clipped to [low - spread, high + spread] of the CLIP_REFERENCE rows ending
    CLIP_GAP rows before it, finite ones only; then the trailing mean of the clipped values."""
    clipped = np.array(x, dtype=np.float64)
    for j in range(n_columns):
        for t in range(len(x)):
            ref = x[max(0, t - CLIP_GAP - CLIP_REFERENCE) : max(0, t - CLIP_GAP), j]
            ref = ref[np.isfinite(ref)].astype(np.float64)
            if len(ref) and np.isfinite(x[t, j]):
                low, high = ref.min(), ref.max()
                clipped[t, j] = min(max(x[t, j], 2 * low - high), 2 * high - low)
    out = np.array(x, dtype=np.float64)
    for j in range(n_columns):
        for t in range(len(x)):
            past = clipped[max(0, t - span + 1) : t + 1, j]
            past = past[np.isfinite(past)]
            out[t, j] = x[t, j] - (past.mean() if len(past) else np.nan)
    return out


@pytest.mark.parametrize("span", [1, 17, 300])
def test_clipped_mean_detrend_equals_loop_reference(span):
    rng = np.random.default_rng(span)
    x = (1e3 + rng.standard_cauchy((400, 4))).astype(np.float32)  # wild readings everywhere
    x[10:14, 1] = np.nan
    x[200:260, 0] += 50  # a lasting step
    expected = _clipped_mean_loop(x, span, 3)
    got = detrend_columns(x.copy(), span, 3, statistic="clipped_mean")
    np.testing.assert_allclose(got, expected.astype(np.float32), rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(got[:, 3], x[:, 3])
    assert detrend_history(span, "clipped_mean") == span - 1 + CLIP_REFERENCE + CLIP_GAP
    assert detrend_history(span, "mean") == span - 1 and detrend_history(None) == 0


def test_clipped_mean_detrend_is_not_offset_after_one_wild_reading():
    # one reading 1e6 in noise of 1: the trailing mean carries it for the whole span, the
    # clipped mean does not; the reading itself still stands out, and a lasting step enters
    # the clipped mean CLIP_GAP + 1 rows late, then as in the mean
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3000, 1)).astype(np.float32)
    x[1000, 0] = 1e6
    x[2000:, 0] += 100.0
    after = slice(1001, 2000)
    mean = detrend_columns(x.copy(), 500)
    clipped = detrend_columns(x.copy(), 500, statistic="clipped_mean")
    assert np.abs(mean[after]).max() > 1000
    assert np.abs(clipped[after]).max() < 6
    assert clipped[1000, 0] > 9e5
    late = slice(2000 + 500 + CLIP_GAP + 1, 3000)
    np.testing.assert_allclose(clipped[late], mean[late], atol=1e-3)


def test_model_inputs_detrend_values_but_not_telecommands():
    m = make_mission()
    m.values[:] += np.linspace(0, 50, len(m.values))[:, None].astype(np.float32)
    before = m.values.copy()
    x = model_inputs(m, "values+telecommands", detrend=25)
    np.testing.assert_array_equal(m.values, before)  # the mission is not modified
    np.testing.assert_array_equal(x[:, 3:], m.telecommands)
    np.testing.assert_allclose(x[:, :3], _detrend_loop(before, 25, 3), atol=1e-4)
    assert np.abs(x[:, :3]).mean() < 5  # the ramp is gone
    np.testing.assert_array_equal(model_inputs(m, "values"), before)


def test_datamodule_detrends_before_fitting_the_scaler():
    m = make_mission()
    m.values[:] += np.linspace(0, 100, len(m.values))[:, None].astype(np.float32)
    dm = WindowDataModule(m, window=5, batch_size=16, detrend=30)
    dm.setup("fit")
    assert dm.dims["detrend"] == 30
    fit = m.fit_range()
    x = model_inputs(fit, "values+telecommands", 2, detrend=30)
    median, iqr = dm.scaler
    np.testing.assert_allclose(median[0], np.median(x[: fit.val_start], axis=0), atol=1e-5)
    np.testing.assert_allclose(dm._fit_data.numpy(), (x - median[0]) / iqr[0], atol=1e-5)
    with pytest.raises(ESAInputError):
        WindowDataModule(m, detrend=0)


def test_datamodule_and_scoring_detrend_by_the_median_alike():
    m = make_mission()
    m.values[:] += np.linspace(0, 100, len(m.values))[:, None].astype(np.float32)
    dm = WindowDataModule(m, window=5, batch_size=16, detrend=30, detrend_stat="median")
    dm.setup("fit")
    assert dm.dims["detrend_stat"] == "median"
    fit = m.fit_range()
    x = model_inputs(fit, "values+telecommands", 2, detrend=30, detrend_stat="median")
    expected = _detrend_loop(fit.values, 30, 3, "median").astype(np.float32)
    np.testing.assert_array_equal(x[:, :3], expected)
    median, iqr = dm.scaler
    np.testing.assert_allclose(dm._fit_data.numpy(), (x - median[0]) / iqr[0], atol=1e-5)
    # scoring reads the statistic from the model's hyper-parameters (older ones: the mean)
    hp = dict(dm.dims, n_outputs=3)
    scored, _ = scaled_window_inputs(fit, hp, median[0], iqr[0])
    np.testing.assert_allclose(scored, (x - median[0]) / iqr[0], atol=1e-5)
    hp.pop("detrend_stat")
    mean_x = model_inputs(fit, "values+telecommands", 2, detrend=30)
    scored, _ = scaled_window_inputs(fit, hp, median[0], iqr[0])
    np.testing.assert_allclose(scored, (mean_x - median[0]) / iqr[0], atol=1e-5)
    with pytest.raises(ESAInputError, match="detrend_stat"):
        WindowDataModule(m, detrend=30, detrend_stat="mode")


@pytest.mark.parametrize("drop_last", [False, True])
def test_series_batches_hold_one_series_each_and_as_many_as_plain_batches(drop_last):
    from torch.utils.data import BatchSampler, RandomSampler

    from esa_lightning.data.windows import SeriesBatchSampler

    series = np.repeat([0, 1, 2], [37, 50, 13])
    sampler = RandomSampler(range(len(series)), generator=torch.Generator().manual_seed(1))
    batches = list(SeriesBatchSampler(sampler, 16, drop_last, series))
    plain = BatchSampler(sampler, 16, drop_last)
    assert len(batches) == len(plain) == len(list(plain))
    drawn = np.concatenate(batches)
    assert len(np.unique(drawn)) == len(drawn) == (96 if drop_last else 100)
    mixed = [b for b in batches if len(set(series[b])) > 1]
    assert len(mixed) <= 2  # only batches across a series border (3 series: 2 borders)
    # the order is the sampler's: not all of series 0 first
    firsts = [series[b[0]] for b in batches]
    assert firsts != sorted(firsts)


def test_series_without_a_training_window_is_refused_by_name():
    """A NASA channel whose training rows were fewer than one window trained nothing: its own
    network (or its series embedding) scored its test rows untrained, pooled into the metrics."""
    a = sine_mission(T=300, C=1, K=2, val_start=160, test_start=200, seed=1, name="A-1")
    b = sine_mission(T=260, C=1, K=2, val_start=7, test_start=180, seed=2, name="B-2")
    for s in (a, b):
        s.labels[: s.test_start] = 0
    multi = Mission("nasa", {"A-1": a.values, "B-2": b.values}, None,
                    default_channel_table(["A-1", "B-2"]), None, empty_events(),
                    series={"A-1": a, "B-2": b})
    with pytest.raises(ESAInputError, match=r"B-2.*no label-free training window of 8 rows "
                       r"in its 7 training rows"):
        WindowDataModule(multi, window=8).setup("fit")
    b.val_start = 8
    WindowDataModule(multi, window=8).setup("fit")


def test_scale_clips_readings_beyond_float32_to_the_limit_and_keeps_the_rest_bit_for_bit():
    """(x - median) / iqr of 1e30 on a channel of IQR 1e-9 is 1e39, beyond float32: the
    division overflowed (numpy's FloatingPointError under ``np.errstate(all="raise")``, else
    inf, whose square made every window error holding it inf). It is the limit now; every value
    within it is the float32 formula's, bit for bit."""
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((1000, 4)) * [1e-9, 1.0, 1e3, 1e9]).astype(np.float32)
    x[::37, 2] = np.nan
    x[10, 0], x[20, 0], x[30, 3] = 1e30, -1e30, 3e38
    median = np.array([0.0, 0.5, -2.0, 1e8], np.float32)
    iqr = np.array([1e-9, 1.3, 700.0, 2e9], np.float32)
    with np.errstate(all="raise"):
        got = scale(x, median, iqr)
        again = scale(x.copy(), median, iqr, in_place=True)
    np.testing.assert_array_equal(got, again)
    assert got.dtype == np.float32 and np.isfinite(got).all()
    assert got[10, 0] == got[30, 3] == SCALED_LIMIT and got[20, 0] == -SCALED_LIMIT
    with np.errstate(over="ignore", invalid="ignore"):
        plain = (x - median) / iqr
    within = np.abs(plain) <= SCALED_LIMIT
    np.testing.assert_array_equal(got[within], plain[within])
    np.testing.assert_array_equal(got[np.isnan(plain)], 0.0)
    assert (~within & ~np.isnan(plain)).sum() == 3  # those three readings only


@pytest.mark.filterwarnings("ignore:All-NaN slice")
def test_robust_stats_of_readings_spanning_float32_are_finite_and_other_columns_unchanged():
    """Quartiles near -3e38 and +3e38: numpy interpolated them in float32, so the median of
    -3e38 and 3e38 overflowed (-inf, stored as float32's lowest) and the IQR's float32 cast
    overflowed (inf, stored as 1); under ``np.errstate(all="raise")`` the fit failed. Such a
    column is computed in float64 now, its IQR float32's largest value; every other column's
    median and IQR are the former float32 formula's, bit for bit."""
    rng = np.random.default_rng(0)
    n = 1000
    x = (rng.standard_normal((n, 5)) * [1.0, 1.0, 1e-6, 1e9, 1.0]).astype(np.float32)
    x[:, 0] = np.where(np.arange(n) < n // 2, -3e38, 3e38)  # quartiles -3e38 / 3e38
    x[5, 1] = 3.3e38  # one reading near float32's top among ordinary ones
    x[::7, 2] = np.nan
    x[:, 4] = np.nan  # no reading at all
    keep = np.arange(n) % 10 != 3  # as many -3e38 as 3e38 kept
    with np.errstate(all="raise"):
        st = RobustStats.fit(x, keep)
    assert st.median.dtype == st.iqr.dtype == np.float32
    assert np.isfinite(st.median).all() and np.isfinite(st.iqr).all()
    big = np.finfo(np.float32).max
    assert st.iqr[0] == big and st.median[0] == 0.0  # midway between -3e38 and 3e38
    ref1 = np.percentile(x[keep, 1].astype(np.float64), [25, 50, 75])
    assert st.median[1] == np.float32(ref1[1]) and st.iqr[1] == np.float32(ref1[2] - ref1[0])
    for j in (2, 3):  # ordinary columns: the float32 interpolation, as before
        col = x[keep, j]
        q25, q50, q75 = np.nanpercentile(col, [25, 50, 75])
        assert st.median[j] == np.float32(q50) and st.iqr[j] == np.float32(q75 - q25)
    assert st.median[4] == 0.0 and st.iqr[4] == 1.0
    with np.errstate(all="raise"):
        scaled = scale(x, st.median, st.iqr)
    assert np.isfinite(scaled).all() and np.abs(scaled[:, 0]).max() < 1.0


@pytest.mark.parametrize("statistic", ["mean", "median", "clipped_mean"])
def test_detrend_beyond_float32_is_its_largest_value_and_the_rest_the_float64_result(statistic):
    """A reading near 3e38 after readings near -3e38 detrends to about 4e38 (trailing mean) or
    6e38 (median), beyond float32: written back into the float32 inputs it was inf (numpy's
    FloatingPointError: overflow encountered in cast, under ``np.errstate(all="raise")``), and a
    detrended value below float32's normal range raised an underflow there. Now a finite value
    beyond float32 is float32's largest of its sign, the smallest ones numpy's cast, and every
    value the float64 computation's cast to float32."""
    rng = np.random.default_rng(3)
    n = 60
    x = (rng.standard_normal((n, 4)) * [1.0, 1.0, 1e3, 1e-38]).astype(np.float32)
    x[:, 0] = np.where(np.arange(n) % 20 < 10, -3e38, 3e38)  # steps between the two ends
    x[::9, 2] = np.nan
    with np.errstate(all="raise"):
        got = detrend_columns(x.copy(), 3, 4, statistic)
    wide = detrend_columns(x.astype(np.float64), 3, 4, statistic)  # float64 throughout
    top = np.finfo(np.float32).max
    assert got.dtype == np.float32 and (np.abs(wide[:, 0]) > top).any()  # the case is there
    with np.errstate(under="ignore"):
        expected = np.clip(wide, -top, top).astype(np.float32)
    np.testing.assert_array_equal(got, expected)
    assert got[10, 0] == top and np.isfinite(got[:, [0, 1, 3]]).all()  # 4e38 or 6e38 there


def test_scale_of_a_reading_far_from_a_median_near_float32s_end_is_its_true_value():
    """A column whose quartiles are -3e38, -3e38 and 3e38: median -3e38, IQR float32's largest
    (``RobustStats.fit``). A reading of 3e38 is (3e38 + 3e38) / 3.4e38, about 1.76 IQRs, but the
    float32 subtraction overflowed (inf), so it was scaled to the limit, 1e12. It is computed in
    float64 now; a value truly beyond the limit is still the limit, every other value the float32
    formula's, bit for bit, in place or not; and a result below float32's normal range is no
    underflow error under ``np.errstate(all="raise")``."""
    n = 1000
    x = np.random.default_rng(4).standard_normal((n, 3)).astype(np.float32)
    x[:, 0] = np.where(np.arange(n) % 10 < 7, -3e38, 3e38)
    st = RobustStats.fit(x, np.ones(n, bool))
    top = np.finfo(np.float32).max
    assert st.median[0] == np.float32(-3e38) and st.iqr[0] == top
    median = np.append(st.median[:2], np.float32(-3e38))
    iqr = np.append(st.iqr[:2], np.float32(1e30))
    x[:, 2] = x[:, 1]
    x[5, 2] = 3e38  # (3e38 + 3e38) / 1e30: 6e8 IQRs, within the limit
    x[6, 2] = 1e-38  # (1e-38 + 3e38) / 1e30: fine
    x[7, 1] = 1e-30
    iqr[1] = np.float32(1e10)  # 1e-30 / 1e10: below float32's normal range
    with np.errstate(all="raise"):
        got = scale(x, median, iqr)
        again = scale(x.copy(), median, iqr, in_place=True)
    np.testing.assert_array_equal(got, again)
    exact = (x.astype(np.float64) - median.astype(np.float64)) / iqr.astype(np.float64)
    far = x[:, 0] > 0
    np.testing.assert_array_equal(got[far, 0], np.float32(exact[far, 0]))
    assert abs(float(got[far, 0][0]) - 6e38 / float(top)) < 1e-6
    assert got[5, 2] == np.float32(exact[5, 2])
    with np.errstate(over="ignore", under="ignore"):
        plain = (x - median) / iqr
    same = np.isfinite(plain)
    assert (~same).sum() == far.sum() + 1  # the float32 formula overflowed there only
    np.testing.assert_array_equal(got[same], plain[same])
    median[2] = 0.0
    iqr[2] = 1e-9
    with np.errstate(all="raise"):
        assert scale(x, median, iqr)[5, 2] == SCALED_LIMIT  # 3e47 IQRs: the limit
