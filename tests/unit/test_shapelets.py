"""Shapelet responses against a direct dot-product loop; mining on planted shapes; fallback."""

from __future__ import annotations

import numpy as np
import pytest

from esa_lightning.data.transforms.shapelets import (
    mine_shapelets,
    shapelet_features,
)
from esa_lightning.errors import ESAInputError


def direct_response(segment: np.ndarray, kernel: np.ndarray) -> list[float]:
    """dot(kernel, z(sub-window)) / L at every strided position, one position at a time."""
    length = len(kernel)
    out = []
    for p in range(0, len(segment) - length + 1, max(1, int(0.02 * length))):
        sub = segment[p : p + length].astype(np.float64)
        std = sub.std()
        z = (sub - sub.mean()) / std if std > 1e-8 else np.zeros(length)
        out.append(float(np.dot(kernel.astype(np.float64), z) / length))
    return out


def znormed(v: np.ndarray) -> np.ndarray:
    return ((v - v.mean()) / v.std()).astype(np.float32)


def planted_series(seed: int = 0, n: int = 12000, every: int = 1000):
    """Noise + slow drift, with a chirp-like shape planted (and labelled) every ``every``."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.3, n) + np.sin(np.arange(n) / 300.0)
    labels = np.zeros(n, np.uint8)
    shape = 2.5 * np.sin(np.linspace(0, 2 * np.pi, 35) ** 1.5)
    starts = np.arange(every // 2, n - 100, every)
    for s in starts:
        x[s : s + 35] += shape
        labels[s : s + 35] = 1
    return x.astype(np.float32), labels, starts


@pytest.mark.parametrize(("window", "step"), [(50, 10), (120, 13)])
def test_shapelet_features_equal_direct_loop(window: int, step: int) -> None:
    rng = np.random.default_rng(window)
    x = np.cumsum(rng.normal(size=700)).astype(np.float32)
    x[200:320] = 4.0  # flat stretch: z-normalises to zeros
    lengths = [30, 37, 50] + ([100] if window >= 100 else [])  # 100 -> position stride 2
    kernels = [znormed(rng.normal(size=n)) for n in lengths]
    got, names = shapelet_features(x, kernels, window, step)
    assert got.shape == ((700 - window) // step + 1, 2 * len(kernels))
    assert names[:2] == ["shapelet_0_max", "shapelet_0_min"]
    for w, start in enumerate(range(0, 700 - window + 1, step)):
        for k, kernel in enumerate(kernels):
            resp = direct_response(x[start : start + window], kernel)
            assert got[w, 2 * k] == pytest.approx(max(resp), rel=1e-4, abs=1e-6)
            assert got[w, 2 * k + 1] == pytest.approx(min(resp), rel=1e-4, abs=1e-6)


def test_shapelet_features_short_series_and_long_kernel() -> None:
    kernels = [znormed(np.arange(30.0) ** 2)]
    assert shapelet_features(np.ones(20), kernels)[0].shape == (0, 2)
    with pytest.raises(ESAInputError):
        shapelet_features(np.ones(200), [znormed(np.arange(60.0) ** 2)], window=50)


def test_mining_finds_kernels_that_fire_on_anomalies() -> None:
    x, labels, starts = planted_series()
    kernels = mine_shapelets(x, labels, seed=0)
    assert len(kernels) == 10
    assert {len(k) for k in kernels} <= set(range(30, 41))
    assert len({len(k) for k in kernels}) > 1  # new lengths preferred
    for k in kernels:
        assert k.dtype == np.float32
        assert abs(k.mean()) < 1e-4 and abs(k.std() - 1) < 1e-3

    feats, _ = shapelet_features(x, kernels)
    win_start = np.arange(feats.shape[0]) * 10
    on_anomaly = np.isin(win_start // 10, [(s - 5) // 10 for s in starts])  # windows covering one
    far = np.min(np.abs(win_start[:, None] - starts[None, :]), axis=1) > 150
    best_max = feats[:, 0::2]
    assert best_max[on_anomaly].mean() > best_max[far].mean() + 0.15
    # the top kernel matches every planted occurrence well
    assert np.median(best_max[on_anomaly, 0]) > 0.8


def test_mining_is_deterministic_by_seed() -> None:
    x, labels, _ = planted_series(seed=1, n=6000)
    a = mine_shapelets(x, labels, seed=3, max_candidates=500)
    b = mine_shapelets(x, labels, seed=3, max_candidates=500)
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))


def test_fallback_without_anomalies_uses_nominal_allowed_data() -> None:
    x, labels, _ = planted_series(seed=2, n=6000)
    allowed = np.zeros(len(x), bool)
    allowed[:2000] = True
    labels_outside = labels.copy()
    labels_outside[:2000] = 0  # the mask holds no anomaly
    for lab, mask in ((np.zeros_like(labels), None), (labels_outside, allowed)):
        a = mine_shapelets(x, lab, mask, n_kernels=4, seed=7)
        b = mine_shapelets(x, lab, mask, n_kernels=4, seed=7)
        c = mine_shapelets(x, lab, mask, n_kernels=4, seed=8)
        assert len(a) == 4
        assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
        assert not all(len(p) == len(q) and np.array_equal(p, q) for p, q in zip(a, c, strict=True))
        region = x if mask is None else x[:2000]
        for k in a:
            assert 30 <= len(k) <= 40
            # each kernel is a z-normalised piece of the allowed region: it matches it exactly
            assert max(direct_response(region, k)) == pytest.approx(1.0, abs=1e-4)


def test_mining_short_series_does_not_crash() -> None:
    kernels = mine_shapelets(np.arange(10.0), np.ones(10), n_kernels=3)
    assert len(kernels) == 3 and all(np.isfinite(k).all() for k in kernels)


def test_mining_reads_only_anomalies_inside_the_mask() -> None:
    rng = np.random.default_rng(4)
    n = 12000
    x = rng.normal(0, 0.3, n)
    labels = np.zeros(n, np.uint8)
    shape_in = 2.5 * np.sin(np.linspace(0, 2 * np.pi, 35) ** 1.5)
    shape_out = 2.5 * np.sign(np.sin(np.linspace(0, 6 * np.pi, 35)))
    starts_in, starts_out = np.arange(500, 6000, 1000), np.arange(6500, 12000, 1000)
    for starts, shape in ((starts_in, shape_in), (starts_out, shape_out)):
        for s in starts:
            x[s : s + 35] += shape
            labels[s : s + 35] = 1
    allowed = np.arange(n) < 6000
    kernels = mine_shapelets(x, labels, allowed, n_kernels=3, max_candidates=1500)
    for k in kernels:
        on_in = np.mean([max(direct_response(x[s - 10 : s + 45], k)) for s in starts_in])
        on_out = np.mean([max(direct_response(x[s - 10 : s + 45], k)) for s in starts_out])
        assert on_in > on_out + 0.2
