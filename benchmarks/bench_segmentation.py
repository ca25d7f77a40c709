"""Window features per second: vectorised ``segment_features`` vs a per-window Python loop.

Both compute the same 24 features (see ``data.transforms.segments``). The loop is timed
on the first ``--loop-windows`` windows and extrapolated to the whole series; outputs are
compared on those windows (relative 1e-4). Writes its section of benchmarks/RESULTS.md.

    python benchmarks/bench_segmentation.py [--samples 1000000] [--loop-windows 5000]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import _checkout  # noqa: F401
import numpy as np
from _common import machine, write_section
from scipy.signal import stft

from esa_lightning.data.transforms.segments import segment_features

HEADER = "## Segmentation window features (bench_segmentation.py)"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def loop_features(x: np.ndarray, window: int = 50, step: int = 10) -> np.ndarray:
    """The plain reference: one window at a time with numpy / scipy calls."""
    rows, stats = [], []
    t = np.arange(window)
    freqs = np.fft.rfftfreq(window)
    for start in range(0, len(x) - window + 1, step):
        w = x[start : start + window].astype(np.float64)
        _, _, z = stft(w, nperseg=min(16, window))
        summed = np.abs(z).sum(axis=0)
        mag = np.abs(np.fft.rfft(w))
        row = [
            w.min(),
            w.max(),
            w.mean(),
            w.std(),
            w.var(),
            summed.std() / (summed.mean() + 1e-6),
            np.sum(freqs * mag) / (np.sum(mag) + 1e-6),
            np.polyfit(t, w, 1)[0],
            np.var(np.diff(w)),
        ]
        i = len(rows)
        for lag in range(1, 6):
            for k, value in enumerate((row[2], row[1], row[0])):
                row.append(value - stats[i - lag][k] if i >= lag else 0.0)
        stats.append((row[2], row[1], row[0]))
        rows.append(row)
    return np.asarray(rows, dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--loop-windows", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    x = 100 + np.cumsum(rng.normal(size=args.samples)) * 0.1 + rng.normal(size=args.samples)
    x = x.astype(np.float32)

    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        fast, _ = segment_features(x)
        times.append(time.perf_counter() - t0)
    t_fast = min(times)
    n_w = fast.shape[0]

    sub_windows = min(args.loop_windows, n_w)
    sub = x[: (sub_windows - 1) * 10 + 50]
    t0 = time.perf_counter()
    slow = loop_features(sub)
    t_loop_sub = time.perf_counter() - t0
    t_loop = t_loop_sub * n_w / sub_windows

    want = slow.astype(np.float64)
    scale = np.maximum(np.abs(want).max(axis=0), 1.0)
    err = np.abs(fast[:sub_windows] - want) / (np.abs(want) + 1e-6 * scale)
    max_rel = float(err.max())
    ok = np.allclose(fast[:sub_windows], want, rtol=1e-4, atol=1e-6 * scale)

    text = f"""{HEADER}

Command: `python benchmarks/bench_segmentation.py --samples {args.samples} \
--loop-windows {args.loop_windows}`
Machine: {machine()}

Series of {args.samples:,} float32 samples (random walk + noise around 100), window 50,
step 10 -> {n_w:,} windows x 24 features.

| implementation | time for the whole series | windows / s |
|---|---:|---:|
| `segment_features` (vectorised, best of {args.repeats}) | {t_fast:.3f} s | {n_w / t_fast:,.0f} |
| per-window loop (timed on {sub_windows:,} windows, extrapolated) | {t_loop:.1f} s \
| {sub_windows / t_loop_sub:,.0f} |

Speed-up: **{t_loop / t_fast:.0f}x**. Outputs on the looped windows equal to rtol 1e-4
(atol 1e-6 x column scale): {"yes" if ok else "NO"} (max relative difference {max_rel:.2e}).
"""
    print(text)
    if not ok:
        raise SystemExit("vectorised features differ from the loop")
    if not args.no_write:
        write_section(text)


if __name__ == "__main__":
    main()
