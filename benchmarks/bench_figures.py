"""What the report's timeline costs with many alarms: its shading as one collection (ours) vs
one ``axvspan`` patch per run (the former code), shaded and rendered to PNG side by side.

    PYTHONPATH=. python benchmarks/bench_figures.py --rows 1000000 --repeats 3
"""

from __future__ import annotations

import argparse
import io
import time

import matplotlib
import numpy as np

matplotlib.use("Agg")
import _checkout  # noqa: E402, F401
import matplotlib.pyplot as plt  # noqa: E402
from _common import machine, replace_section  # noqa: E402

from esa_lightning.metrics.intervals import runs  # noqa: E402
from esa_lightning.reporting.figures import _shade_runs  # noqa: E402


def patch_per_run(ax, mask: np.ndarray, lo: int, colour: str, alpha: float) -> None:  # noqa: ANN001
    """The reference: one ``axvspan`` per run, the same widening, no merging."""
    starts, ends = runs(mask.astype(np.uint8))
    half = max(0.5, len(mask) / 800)
    for a, b in zip(starts, ends, strict=True):
        centre, width = (a + b) / 2, max((b - a) / 2 + 0.5, half)
        ax.axvspan(lo + centre - width, lo + centre + width, color=colour, alpha=alpha, lw=0)


def render(shade, mask: np.ndarray) -> float:  # noqa: ANN001
    """Seconds to shade ``mask`` on a timeline panel and write the PNG."""
    fig, ax = plt.subplots(figsize=(10, 2.6))
    ax.plot([0, len(mask) - 1], [0.0, 1.0], lw=0.8)
    t0 = time.perf_counter()
    shade(ax, mask, 0, "#d62728", 0.35)
    ax.set_xlim(-0.5, len(mask) - 0.5)
    fig.savefig(io.BytesIO(), format="png", dpi=80)
    seconds = time.perf_counter() - t0
    plt.close(fig)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    table = [
        f"| alarm runs | one patch per run, s (best of {args.repeats}) | ours, s | speed-up |",
        "|---:|---:|---:|---:|",
    ]
    for n_runs in (10, 100, 1_000, 10_000):
        mask = np.zeros(args.rows, dtype=bool)
        for start in rng.choice(args.rows - 20, n_runs, replace=False):
            mask[start : start + rng.integers(1, 20)] = True
        reference = min(render(patch_per_run, mask) for _ in range(args.repeats))
        ours = min(render(_shade_runs, mask) for _ in range(args.repeats))
        table.append(f"| {n_runs:,} | {reference:.3f} | {ours:.3f} | {reference / ours:.1f}x |")
    body = "\n".join(
        [
            f"Command: `PYTHONPATH=. python benchmarks/bench_figures.py --rows {args.rows} "
            f"--repeats {args.repeats}`",
            f"Machine: {machine()}",
            "",
            f"One timeline panel of {args.rows:,} rows (10 x 2.6 in, 80 dpi PNG), alarm runs of",
            "1-19 rows at random places, each widened to 1/400 of the range as the report does.",
            "Time to shade and write the PNG. Where widened runs overlap, ours draws their union",
            "once (one shade of red) and the reference stacks them (darker where they overlap);",
            "apart, the two PNGs are equal pixel for pixel (tests/unit/test_figure_shading.py).",
            "",
            *table,
        ]
    )
    replace_section("## Report timeline shading with many alarms (bench_figures.py)", body)
    print(body)


if __name__ == "__main__":
    main()
