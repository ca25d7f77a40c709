"""The readers' repair of non-finite values: one read of the array vs the three it took before.

The readers of rows taken as given (ESA CSV, Kaggle, NASA) find, before filling NaN/inf, the
rows of each channel holding a finite reading (bit-packed), the +-inf cells and the columns
holding a NaN/inf. ``repair_values(..., store=...)`` finds all three in one chunked pass
(``scan_nonfinite``, which packs the bits with a weighted sum of each 8 rows: ``np.packbits``
along the rows of a row-major block was the scans' largest cost), then forward-fills those
columns. Before, ``finite_rows``,
``unrepresentable_cells`` and ``nonfinite_columns`` each read the whole array; that sequence is
kept below as a plain reference (``previous``). Both run on the same memory-mapped float32
array (in the page cache, under the system temp dir, deleted after) and must give the same
arrays and repaired values.

    PYTHONPATH=. python benchmarks/bench_repair.py --rows 4000000 --channels 87 --repeats 3
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _common import best_of, machine, replace_section

from esa_lightning.data.array_store import ArrayStore, release_pages
from esa_lightning.data.readers.common import (
    _pack_rows,
    forward_fill,
    nonfinite_columns,
    repair_values,
    scan_nonfinite,
)

HEADER = "## The readers' NaN/inf repair: one read instead of three (bench_repair.py)"
CHUNK = 65536


# ----------------------------------------------------------- the previous three-read sequence
def previous_scans(values: np.ndarray, store: ArrayStore) -> tuple[np.ndarray, np.ndarray]:
    """``finite_rows`` then ``unrepresentable_cells`` as they were: a read each."""
    finite = store.empty("finite_rows", (values.shape[1], (len(values) + 7) // 8), np.uint8)
    for start in range(0, len(values), CHUNK):
        block = values[start : start + CHUNK]
        finite[:, start // 8 : (start + len(block) + 7) // 8] = np.packbits(
            np.isfinite(block), axis=0
        ).T
        release_pages(block)
    found = [np.zeros((0, 2), dtype=np.int64)]
    for start in range(0, len(values), CHUNK):
        block = values[start : start + CHUNK]
        cells = np.argwhere(np.isinf(block)).astype(np.int64)
        cells[:, 0] += start
        found.append(cells)
        release_pages(block)
    return finite, np.concatenate(found)


def previous(values: np.ndarray, store: ArrayStore) -> tuple[np.ndarray, np.ndarray]:
    """The readers' sequence before: the two reads above, then ``forward_fill_nonfinite``
    (``nonfinite_columns``, a third read, then the fill of each column holding a NaN/inf)."""
    finite, cells = previous_scans(values, store)
    for j in nonfinite_columns(values):
        col = values[:, j]
        ok = np.isfinite(col)
        values[:, j] = forward_fill(col, ~ok)
    return finite, cells


def now(values: np.ndarray, store: ArrayStore) -> tuple[np.ndarray, np.ndarray]:
    found = repair_values(values, [f"ch{j}" for j in range(values.shape[1])], source="bench",
                          store=store)
    return found.finite, found.cells


def previous_scans_only(values: np.ndarray, store: ArrayStore) -> None:
    previous_scans(values, store)
    nonfinite_columns(values)


# ------------------------------------------------------------------------------- the timing
def make_values(path: Path, rows: int, channels: int, bad_columns: int, seed: int):
    """A memory-mapped [rows, channels] float32 array with NaN in ``bad_columns`` columns
    (0.05 % of their rows) and a few +-inf: (the array, the bad cells, their values)."""
    rng = np.random.default_rng(seed)
    values = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, channels))
    for start in range(0, rows, 1 << 20):
        stop = min(rows, start + (1 << 20))
        values[start:stop] = rng.standard_normal((stop - start, channels), dtype=np.float32)
    cols = rng.choice(channels, size=bad_columns, replace=False)
    cells = [(r, j) for j in cols for r in rng.choice(rows, size=max(1, rows // 2000))]
    bad = np.array(cells, dtype=np.int64)
    filler = np.full(len(bad), np.nan, dtype=np.float32)
    filler[:: max(1, len(bad) // 20)] = np.inf  # a few beyond float32's range
    filler[1 :: max(1, len(bad) // 5)] = -np.inf
    values.flush()
    return values, bad, filler


def block_costs(values: np.ndarray, repeats: int) -> dict[str, float]:
    """Milliseconds (best of ``repeats``) of each step on the first ``CHUNK``-row block."""
    block = np.array(values[:CHUNK])
    ok = np.isfinite(block)
    steps = {
        "np.isfinite": lambda: np.isfinite(block),
        "np.packbits(axis=0) (before)": lambda: np.packbits(ok, axis=0),
        "_pack_rows (now)": lambda: _pack_rows(ok),
        "np.argwhere(np.isinf(block)) (before)": lambda: np.argwhere(np.isinf(block)),
    }
    return {name: best_of(repeats * 5, fn)[0] * 1e3 for name, fn in steps.items()}


def timed(fn: Callable[[], object], before: Callable[[], None]) -> tuple[float, object]:
    before()
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--channels", type=int, default=87)
    parser.add_argument("--bad-columns", type=int, default=3, help="columns holding NaN/inf")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # the repair's warnings
    with tempfile.TemporaryDirectory(prefix="bench_repair_") as work:
        work = Path(work)
        t0 = time.perf_counter()
        values, bad, filler = make_values(
            work / "values.npy", args.rows, args.channels, args.bad_columns, args.seed
        )
        make_s = time.perf_counter() - t0
        bad_cols = np.unique(bad[:, 1])

        def spoil() -> None:  # the bad cells again, written out before the clock starts
            values[bad[:, 0], bad[:, 1]] = filler
            values.flush()

        variants = {
            "previous: finite_rows + unrepresentable_cells + nonfinite_columns (3 reads)":
                lambda: previous_scans_only(values, ArrayStore(work / "a")),
            "now: scan_nonfinite (1 read)": lambda: scan_nonfinite(values, ArrayStore(work / "b")),
            "previous: the whole repair (3 reads + fill)":
                lambda: previous(values, ArrayStore(work / "a")),
            "now: repair_values(store=...) (1 read + the same fill)":
                lambda: now(values, ArrayStore(work / "b")),
        }
        for folder in ("a", "b"):
            (work / folder).mkdir()
        times: dict[str, list[float]] = {label: [] for label in variants}
        results = {}
        for _ in range(args.repeats):  # interleaved, so that drift in the load hits both
            for label, fn in variants.items():
                seconds, out = timed(fn, spoil)
                times[label].append(seconds)
                if "whole" in label or "repair_values" in label:
                    results[label] = (*(np.array(x) for x in out), values[:, bad_cols].copy())
        old, new = results.values()
        for a, b in zip(old, new, strict=True):
            assert a.dtype == b.dtype and np.array_equal(a, b), "the two repairs differ"
        n_inf = int(np.isinf(filler).sum())
        costs = block_costs(values, args.repeats)
    rows = [f"| step | best of {args.repeats} (s) | all runs (s) |", "|---|---:|---|"]
    for label, ts in times.items():
        rows.append(f"| {label} | {min(ts):.2f} | {', '.join(f'{t:.2f}' for t in ts)} |")
    labels = list(times)
    scan_x = min(times[labels[0]]) / min(times[labels[1]])
    whole_x = min(times[labels[2]]) / min(times[labels[3]])
    gib = args.rows * args.channels * 4 / 2**30
    body = "\n".join(
        [
            f"Command: `PYTHONPATH=. python benchmarks/bench_repair.py --rows {args.rows} "
            f"--channels {args.channels} --bad-columns {args.bad_columns} "
            f"--repeats {args.repeats}`",
            f"Machine: {machine()}",
            "",
            f"A memory-mapped {args.rows:,} x {args.channels} float32 array ({gib:.2f} GiB, in "
            f"the page cache; made in {make_s:.0f} s) with {len(bad):,} NaN/inf cells in "
            f"{len(bad_cols)} columns ({n_inf} of them +-inf); the packed finite rows go to a "
            "memory-mapped file as in a cache entry being built. Each run restores the NaN/inf "
            "cells first (untimed); the variants alternate. Both repairs gave the same finite "
            "rows, +-inf cells and repaired values. On a shared machine (another job beside "
            "it): the numbers are indicative.",
            "",
            *rows,
            "",
            f"The scans: {scan_x:.1f}x faster; the whole repair: {whole_x:.1f}x (the fill of "
            "each column holding a NaN/inf, unchanged, reads that column across the array).",
            f"Per {CHUNK:,}-row block (ms, best of {args.repeats * 5}): "
            + ", ".join(f"{name} {ms:.2f}" for name, ms in costs.items())
            + ".",
        ]
    )
    replace_section(HEADER, body)
    print(body)


if __name__ == "__main__":
    main()
