"""The report's shading of alarms and labeled events: where each run is drawn, and that a
timeline of thousands of runs is one artist, not one patch per run."""

import io

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from esa_lightning.reporting.figures import _shade_runs, shade_spans  # noqa: E402


def mask_of(n: int, *spans: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    for a, b in spans:
        mask[a : b + 1] = True
    return mask


def test_a_run_is_shaded_over_its_rows_and_half_a_row_either_side():
    left, right = shade_spans(mask_of(200, (10, 19), (100, 100)), lo=1000)
    np.testing.assert_allclose(left, [1009.5, 1099.5])
    np.testing.assert_allclose(right, [1019.5, 1100.5])


def test_a_short_run_on_a_long_range_is_widened_about_its_centre():
    n = 80_000  # 1/400 of the range: 200 rows wide
    left, right = shade_spans(mask_of(n, (40_000, 40_000)), lo=0)
    np.testing.assert_allclose(right - left, [n / 400])
    np.testing.assert_allclose((left + right) / 2, [40_000])


def test_runs_whose_widened_shading_overlaps_are_one_span():
    n = 80_000
    left, right = shade_spans(mask_of(n, (1_000, 1_000), (1_050, 1_050), (9_000, 9_300)), lo=0)
    np.testing.assert_allclose(left, [900, 8_999.5])
    np.testing.assert_allclose(right, [1_150, 9_300.5])


def test_no_run_no_span():
    left, right = shade_spans(np.zeros(50, dtype=bool), lo=0)
    assert len(left) == len(right) == 0


def png_of(shade, mask: np.ndarray) -> np.ndarray:  # noqa: ANN001
    fig, ax = plt.subplots(figsize=(6, 2))
    ax.plot(np.arange(len(mask)), np.sin(np.arange(len(mask)) / 50.0), lw=0.8)
    shade(ax, mask)
    ax.set_xlim(-0.5, len(mask) - 0.5)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=60)
    plt.close(fig)
    return plt.imread(io.BytesIO(buf.getvalue()))


def one_patch_per_run(ax, mask: np.ndarray) -> None:  # noqa: ANN001
    for a, b in zip(*shade_spans(mask, 0), strict=True):
        ax.axvspan(a, b, color="#d62728", alpha=0.35, lw=0)


@pytest.mark.parametrize("n_runs", [1, 7, 3_000])
def test_every_run_is_one_collection_and_draws_as_one_patch_per_run_would(n_runs):
    rng = np.random.default_rng(n_runs)
    n = 400_000
    starts = np.sort(rng.choice(n // 100, n_runs, replace=False)) * 100
    mask = mask_of(n, *[(s, s + int(rng.integers(0, 40))) for s in starts])
    fig, ax = plt.subplots()
    _shade_runs(ax, mask, 0, "#d62728", 0.35)
    assert len(ax.collections) == 1 and not ax.patches
    plt.close(fig)
    ours = png_of(lambda ax, m: _shade_runs(ax, m, 0, "#d62728", 0.35), mask)
    np.testing.assert_array_equal(ours, png_of(one_patch_per_run, mask))
