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


def test_a_one_row_alarm_is_shaded_visibly_in_its_own_figure(monkeypatch):
    """An alarm's figure plots 200 rows either side: a one-row alarm shaded over its row alone
    was about 1.5 pixels wide at a quarter opacity, under the green of the event it caught,
    and could not be seen; it is widened about its row to 1/100 of the plotted rows."""
    from esa_lightning.models.base import RowScores
    from esa_lightning.reporting import figures
    from esa_lightning.reporting.outputs import alarm_intervals
    from tests.helpers import make_mission

    part = make_mission(n_rows=1000, n_channels=2, anomalies=((500, 520),),
                        val_start=600, test_start=800)
    n = len(part.values)
    alarm = np.zeros(n, dtype=np.uint8)
    alarm[510] = 1
    score = alarm.astype(np.float32)
    scores = RowScores(score=score, alarm=alarm, threshold=np.full(n, 0.5, dtype=np.float32))
    stamps = np.asarray(part.timestamps)
    grid = figures.ScoredGrid("m", part, scores, stamps, alarm_intervals(stamps, scores, part))
    drawn = []
    monkeypatch.setattr(figures, "_png", lambda fig: drawn.append(fig) or b"")
    figures.alarm_png(grid, 0)
    (fig,) = drawn
    red = matplotlib.colors.to_rgb(figures.ALARM_COLOUR)
    for ax in fig.axes:
        spans = [p for p in ax.patches if matplotlib.colors.to_rgb(p.get_facecolor()) == red]
        assert len(spans) == 1
        left, width = spans[0].get_x(), spans[0].get_width()
        assert width > 4.0, width  # 1/100 of rows 310-710 plotted: 4.01
        assert left + width / 2 == pytest.approx(510)
    plt.close(fig)
