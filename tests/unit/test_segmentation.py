"""Window features, pooling and spans against straightforward per-window loops."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import stft

from esa_lightning.data.transforms.segments import (
    FEATURE_NAMES,
    pool_features,
    pool_labels,
    pooled_spans,
    segment_features,
    telecommand_counts,
    window_labels,
    window_starts,
)
from esa_lightning.errors import ESAInputError


def reference_features(x: np.ndarray, window: int, step: int) -> np.ndarray:
    """The 24 features computed one window at a time, the obvious way."""
    rows = []
    stats = []
    for start in range(0, len(x) - window + 1, step):
        w = x[start : start + window].astype(np.float64)
        _, _, z = stft(w, nperseg=min(16, window))
        summed = np.abs(z).sum(axis=0)
        mag = np.abs(np.fft.rfft(w))
        freqs = np.fft.rfftfreq(window)
        stats.append((w.mean(), w.max(), w.min()))
        rows.append(
            [
                w.min(),
                w.max(),
                w.mean(),
                np.std(w),
                np.var(w),
                np.std(summed) / (np.mean(summed) + 1e-6),
                np.sum(freqs * mag) / (np.sum(mag) + 1e-6),
                np.polyfit(np.arange(window), w, 1)[0],
                np.var(np.diff(w)),
            ]
        )
    for i, row in enumerate(rows):
        for lag in range(1, 6):
            for k in range(3):  # mean, max, min
                row.append(stats[i][k] - stats[i - lag][k] if i >= lag else 0.0)
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), 24)


def assert_features_close(got: np.ndarray, want: np.ndarray) -> None:
    scale = max(1.0, float(np.abs(want).max(initial=0.0)))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6 * scale)


def test_feature_names() -> None:
    assert len(FEATURE_NAMES) == 24
    assert len(set(FEATURE_NAMES)) == 24


@pytest.mark.parametrize(
    ("n", "window", "step", "offset"),
    [
        (400, 50, 10, 0.0),
        (397, 50, 10, 1000.0),
        (50, 50, 10, 0.0),
        (59, 50, 10, 0.0),
        (300, 20, 3, -5.0),
        (120, 10, 7, 0.0),
        (64, 2, 1, 0.0),
    ],
)
def test_features_equal_per_window_reference(n: int, window: int, step: int, offset: float):
    rng = np.random.default_rng(n + window)
    x = (offset + np.cumsum(rng.normal(size=n)) + rng.normal(size=n)).astype(np.float32)
    got, names = segment_features(x, window, step)
    assert names == FEATURE_NAMES
    assert got.dtype == np.float32
    assert got.shape == ((n - window) // step + 1, 24)
    assert_features_close(got, reference_features(x, window, step))


def test_constant_and_step_series_are_finite_and_match() -> None:
    for x in (np.full(300, 7.5, np.float32), np.zeros(300, np.float32)):
        got, _ = segment_features(x)
        assert np.isfinite(got).all()
        assert_features_close(got, reference_features(x, 50, 10))
        assert np.all(got[:, 3] == 0) and np.all(got[:, 7] == 0)  # std, slope
    step = np.repeat(np.array([0.0, 3.0], np.float32), 150)
    got, _ = segment_features(step)
    assert_features_close(got, reference_features(step, 50, 10))


@pytest.mark.parametrize("n", [0, 1, 49])
def test_short_series_give_empty_rows(n: int) -> None:
    got, names = segment_features(np.ones(n, np.float32))
    assert got.shape == (0, 24) and len(names) == 24
    pooled, pooled_names = pool_features(got)
    assert pooled.shape == (0, 48) and len(pooled_names) == 48
    assert window_starts(n).shape == (0,)
    assert pooled_spans(n).shape == (0, 2)
    assert window_labels(np.zeros(n, np.uint8)).shape == (0,)


def test_fewer_windows_than_pool_give_empty_pool() -> None:
    feats, _ = segment_features(np.random.default_rng(0).normal(size=1000))
    assert feats.shape[0] < 200
    assert pool_features(feats)[0].shape == (0, 48)
    assert pooled_spans(1000).shape == (0, 2)


def test_bad_window_raises() -> None:
    with pytest.raises(ESAInputError):
        segment_features(np.ones(100), window=1)
    with pytest.raises(ESAInputError):
        segment_features(np.ones(100), step=0)
    with pytest.raises(ESAInputError):
        segment_features(np.ones((100, 2)))


def test_pool_features_equal_loop() -> None:
    rng = np.random.default_rng(3)
    feats = rng.normal(size=(137, 5)).astype(np.float32)
    pooled, names = pool_features(feats, pool=30, stride=7, names=list("abcde"))
    want = [
        np.concatenate([feats[s : s + 30].max(axis=0), feats[s : s + 30].min(axis=0)])
        for s in range(0, 137 - 30 + 1, 7)
    ]
    np.testing.assert_array_equal(pooled, np.asarray(want))
    assert names == [f"{c}_max" for c in "abcde"] + [f"{c}_min" for c in "abcde"]


def test_pooled_spans_match_window_starts_and_labels() -> None:
    n, window, step, pool, stride = 5000, 50, 10, 200, 20
    starts = window_starts(n, window, step)
    assert starts.tolist() == list(range(0, n - window + 1, step))
    spans = pooled_spans(n, window, step, pool, stride)
    assert spans.dtype == np.int64
    assert spans.shape[0] == (len(starts) - pool) // stride + 1
    for p, (first, last) in enumerate(spans):
        assert first == starts[p * stride]
        assert last == starts[p * stride + pool - 1] + window - 1
    assert spans[0].tolist() == [0, 2039] and spans[1, 0] == 200

    labels = np.zeros(n, np.uint8)
    labels[[10, 2600, 4990]] = 1
    pooled = pool_labels(window_labels(labels, window, step), pool, stride)
    direct = [labels[a : b + 1].max() for a, b in spans]
    np.testing.assert_array_equal(pooled, direct)
    assert pooled.any()


def test_window_labels_and_telecommand_counts_equal_loop() -> None:
    rng = np.random.default_rng(5)
    labels = (rng.random(333) < 0.02).astype(np.uint8)
    pulses = (rng.random((333, 3)) < 0.1).astype(np.float32)
    starts = range(0, 333 - 40 + 1, 9)
    np.testing.assert_array_equal(
        window_labels(labels, 40, 9), [labels[s : s + 40].max() for s in starts]
    )
    counts = telecommand_counts(pulses, 40, 9)
    assert counts.dtype == np.float32 and counts.shape == (len(starts), 3)
    np.testing.assert_array_equal(counts, [pulses[s : s + 40].sum(axis=0) for s in starts])
    assert telecommand_counts(pulses[:10], 40, 9).shape == (0, 3)
