"""The windows models' detrending: the trailing mean (cumulative sums), the trailing mean of
clipped values (``datamodule.detrend_stat=clipped_mean``) and the trailing median
(``median``, pandas' rolling median), each beside a plain pandas reference doing the same work,
on random-walk columns with level shifts and wild readings; with each one's peak temporary
memory (tracemalloc, one call, beyond its input and output).

``detrend_columns`` must give what the reference gives (checked); the table gives the best of
``--repeats`` wall times and the seconds per million rows and column, extrapolated to ESA
Mission1 (14.7 M rows x 87 value columns) for one pass (training reads the fit range once;
scoring and prediction each read the rows they score plus a span of context).

    PYTHONPATH=. python benchmarks/bench_detrend.py --rows 2000000 --columns 8 --span 2880
"""

from __future__ import annotations

import argparse
import tracemalloc

import _checkout  # noqa: F401
import numpy as np
import pandas as pd
from _common import best_of, machine, write_section

from esa_lightning.data.transforms.windows import (
    CLIP_GAP,
    CLIP_REFERENCE,
    CLIP_WIDEN,
    detrend_columns,
)

HEADER = "## Detrending: trailing mean, clipped mean and median (bench_detrend.py)"
MISSION1 = (14_700_000, 87)


def reference(x: np.ndarray, span: int, stat: str) -> np.ndarray:
    """Plain pandas: each column minus its rolling mean / median (float64); ``clipped_mean``:
    minus the rolling mean of the values clipped to the widened span of the rows before them."""
    frame = pd.DataFrame(x.astype(np.float64))
    source = frame
    if stat == "clipped_mean":
        near = frame.rolling(CLIP_REFERENCE, min_periods=1)
        high, low = near.max().shift(CLIP_GAP + 1), near.min().shift(CLIP_GAP + 1)
        spread = CLIP_WIDEN * (high - low)
        source = frame.clip(lower=low - spread, upper=high + spread, axis=None)
    rolled = getattr(source.rolling(span, min_periods=1), stat.removeprefix("clipped_"))()
    return (frame - rolled).to_numpy()


def peak_mib(fn) -> float:
    """Peak traced allocation of one ``fn()`` call, MiB."""
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--columns", type=int, default=8)
    ap.add_argument("--span", type=int, default=2880)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.standard_normal((args.rows, args.columns)), axis=0).astype(np.float32)
    for j in range(args.columns):  # a few long level shifts per column
        for start in rng.integers(0, args.rows - 1000, 5):
            x[start : start + 1000, j] += 10.0
        x[rng.integers(0, args.rows, 20), j] += 1e6  # wild readings
    rows = []
    for stat in ("mean", "clipped_mean", "median"):
        ours_s, ours = best_of(args.repeats, lambda s=stat: detrend_columns(x.copy(), args.span,
                                                                           statistic=s))
        out = x.copy()
        peak = peak_mib(lambda s=stat, o=out: detrend_columns(o, args.span, statistic=s))
        ref_s, ref = best_of(args.repeats, lambda s=stat: reference(x, args.span, s))
        err = float(np.nanmax(np.abs(ours - ref) / np.maximum(1.0, np.abs(ref))))
        if err > 1e-5:
            raise SystemExit(f"{stat}: detrend_columns differs from the reference by {err}")
        per = ours_s / (args.rows / 1e6) / args.columns
        rows.append(f"| {stat} | detrend_columns | {ours_s:.2f} | {per:.3f} | "
                    f"{per * MISSION1[0] / 1e6 * MISSION1[1] / 60:.1f} | {peak:.0f} |")
        per_ref = ref_s / (args.rows / 1e6) / args.columns
        rows.append(f"| {stat} | pandas rolling (reference) | {ref_s:.2f} | "
                    f"{per_ref:.3f} | {per_ref * MISSION1[0] / 1e6 * MISSION1[1] / 60:.1f} | – |")
    command = (f"PYTHONPATH=. python benchmarks/bench_detrend.py --rows {args.rows} "
               f"--columns {args.columns} --span {args.span} --repeats {args.repeats}")
    text = "\n".join([
        HEADER, "", f"Command: `{command}`", f"Machine: {machine()}", "",
        f"{args.rows:,} rows x {args.columns} float32 random-walk columns with level shifts and "
        f"20 readings 1e6 off per column, span {args.span} rows; best of {args.repeats}. Ours and "
        "the reference agree (max difference under 1e-5 of max(1, |value|), float32 against "
        "float64). The one-pass "
        "column extrapolates linearly to Mission1's 14.7 M rows x 87 value columns; peak MiB is "
        "the temporary memory of one call (tracemalloc), beyond the array it detrends in place "
        "(one column at a time: it grows with the rows, not the columns).", "",
        "| statistic | code | wall (s) | s per M rows per column | one Mission1 pass (min) | "
        "peak MiB |", "|---|---|---:|---:|---:|---:|", *rows, ""])
    write_section(text)
    print(text)


if __name__ == "__main__":
    main()
