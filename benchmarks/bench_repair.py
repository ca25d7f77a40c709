"""The readers' repair of non-finite values: one read of the array (three before), then one
pass of row blocks filling every column holding a NaN/inf (a pass per column before).

The readers of rows taken as given (ESA CSV, Kaggle, NASA) find, before filling NaN/inf, the
rows of each channel holding a finite reading (bit-packed), the +-inf cells and the columns
holding a NaN/inf. ``repair_values(..., store=...)`` finds all three in one chunked pass
(``scan_nonfinite``, which packs the bits with a weighted sum of each 8 rows: ``np.packbits``
along the rows of a row-major block was the scans' largest cost). Before, ``finite_rows``,
``unrepresentable_cells`` and ``nonfinite_columns`` each read the whole array; that sequence is
kept below as a plain reference (``previous_scans``). It then forward-fills those columns in
one pass of row blocks (``_fill_rows``, carrying each column's last finite value from block to
block); before, ``forward_fill`` filled one column at a time, and a column of a row-major array
spans all its pages: k bad columns were k reads and writes of the array (``per_column_fill``).
The fills are timed alone and within the whole repair, for each ``--bad-columns`` count. All
run on the same memory-mapped float32 array (in the page cache, under the system temp dir,
deleted after) and must give the same arrays and repaired values.

    PYTHONPATH=. python benchmarks/bench_repair.py --rows 4000000 --channels 87 \
        --bad-columns 3 30 --repeats 3
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import _checkout  # noqa: F401
import numpy as np
from _common import best_of, machine, replace_section

from esa_lightning.data.array_store import ArrayStore, release_pages
from esa_lightning.data.readers.nonfinite import (
    _fill_rows,
    _pack_rows,
    forward_fill,
    nonfinite_columns,
    repair_values,
    scan_nonfinite,
)

HEADER = "## The readers' NaN/inf repair: one read, then one fill pass (bench_repair.py)"
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


def previous_scans_only(values: np.ndarray, store: ArrayStore) -> None:
    previous_scans(values, store)
    nonfinite_columns(values)


# ---------------------------------------------------------------- the fill, before and now
def per_column_fill(values: np.ndarray, cols: np.ndarray) -> None:
    """The fill before: ``forward_fill`` of one column at a time (a pass over the array each)."""
    for j in cols:
        col = values[:, j]
        values[:, j] = forward_fill(col, ~np.isfinite(col))


def repair_before(values: np.ndarray, store: ArrayStore) -> tuple[np.ndarray, np.ndarray]:
    """``repair_values`` before the one-pass fill: ``scan_nonfinite``, then per column."""
    found = scan_nonfinite(values, store)
    per_column_fill(values, np.flatnonzero(found.counts))
    return found.finite, found.cells


def repair_now(values: np.ndarray, store: ArrayStore) -> tuple[np.ndarray, np.ndarray]:
    found = repair_values(values, [f"ch{j}" for j in range(values.shape[1])], source="bench",
                          store=store)
    return found.finite, found.cells


# ------------------------------------------------------------------------------- the timing
def make_values(path: Path, rows: int, channels: int, bad_columns: int, seed: int):
    """A memory-mapped [rows, channels] float32 array, and the NaN/inf to put in ``bad_columns``
    columns (0.05 % of their rows, a few +-inf): (the array, the columns in a random order, the
    bad cells, their values)."""
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
    return values, cols, bad, filler


def digest(values: np.ndarray, cols: np.ndarray) -> str:
    """A hash of the columns ``cols`` of ``values``, read in row blocks."""
    h = hashlib.sha256()
    for start in range(0, len(values), CHUNK):
        h.update(np.ascontiguousarray(values[start : start + CHUNK, np.sort(cols)]).data)
    return h.hexdigest()


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
    parser.add_argument("--bad-columns", type=int, nargs="+", default=[3, 30],
                        help="counts of columns holding NaN/inf, each timed")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    counts = sorted(set(args.bad_columns))
    warnings.simplefilter("ignore")  # the repair's warnings
    with tempfile.TemporaryDirectory(prefix="bench_repair_") as work:
        work = Path(work)
        t0 = time.perf_counter()
        values, cols, bad, filler = make_values(
            work / "values.npy", args.rows, args.channels, counts[-1], args.seed
        )
        make_s = time.perf_counter() - t0
        clean = values[bad[:, 0], bad[:, 1]]
        spoilt = {k: np.isin(bad[:, 1], cols[:k]) for k in counts}

        def spoil(k: int) -> None:  # the bad cells of k columns, written before the clock starts
            values[bad[:, 0], bad[:, 1]] = clean
            values[bad[spoilt[k], 0], bad[spoilt[k], 1]] = filler[spoilt[k]]
            values.flush()

        firsts = {}
        for k in counts:
            spoil(k)
            firsts[k] = scan_nonfinite(values).first[np.sort(cols[:k])]
        variants: list[tuple[str, int, Callable[[], object]]] = [
            ("scans: finite_rows + unrepresentable_cells + nonfinite_columns (3 reads, before)",
             counts[0], lambda: previous_scans_only(values, ArrayStore(work / "a"))),
        ]
        for k in counts:
            variants += [
                ("scans: scan_nonfinite (1 read, now)", k,
                 lambda: scan_nonfinite(values, ArrayStore(work / "b"))),
                ("fill: forward_fill per column (before)", k,
                 lambda k=k: per_column_fill(values, cols[:k])),
                ("fill: _fill_rows, one pass (now)", k,
                 lambda k=k: _fill_rows(values, np.sort(cols[:k]), firsts[k], CHUNK)),
                ("whole repair: scan_nonfinite, then forward_fill per column (before)", k,
                 lambda: repair_before(values, ArrayStore(work / "a"))),
                ("whole repair: repair_values, scan_nonfinite + one fill pass (now)", k,
                 lambda: repair_now(values, ArrayStore(work / "b"))),
            ]
        for folder in ("a", "b"):
            (work / folder).mkdir()
        times: dict[tuple[str, int], list[float]] = {(label, k): [] for label, k, _ in variants}
        results: dict[tuple[str, int], tuple] = {}
        for repeat in range(args.repeats):  # interleaved, so that drift in the load hits both
            for label, k, fn in variants:
                seconds, out = timed(fn, lambda k=k: spoil(k))
                times[label, k].append(seconds)
                if repeat == args.repeats - 1 and not label.startswith("scans"):
                    arrays = tuple(np.array(x) for x in out) if out else ()
                    results[label, k] = (*arrays, digest(values, cols))
        pairs = list(results.values())
        for old, new in zip(pairs[::2], pairs[1::2], strict=True):
            assert len(old) == len(new), "the two repairs differ"
            for a, b in zip(old, new, strict=True):
                same = a == b if isinstance(a, str) else a.dtype == b.dtype and np.array_equal(a, b)
                assert same, "the two repairs differ"
        n_cells = {k: int(spoilt[k].sum()) for k in counts}
        n_inf = {k: int(np.isinf(filler[spoilt[k]]).sum()) for k in counts}
        costs = block_costs(values, args.repeats)
    best = {key: min(ts) for key, ts in times.items()}
    rows = [f"| step | bad columns | best of {args.repeats} (s) | all runs (s) |",
            "|---|---:|---:|---|"]
    for (label, k), ts in times.items():
        shown = ", ".join(f"{t:.2f}" for t in ts)
        rows.append(f"| {label} | {k} | {best[label, k]:.2f} | {shown} |")
    labels = list(dict.fromkeys(label for label, _ in times))
    scan_x = best[labels[0], counts[0]] / best[labels[1], counts[0]]
    fill_x = ", ".join(f"{best[labels[2], k] / best[labels[3], k]:.1f}x with {k}" for k in counts)
    whole_x = ", ".join(f"{best[labels[4], k] / best[labels[5], k]:.1f}x with {k}"
                        for k in counts)
    spoilt_text = "; ".join(f"{n_cells[k]:,} NaN/inf cells in {k} columns ({n_inf[k]} of them "
                            "+-inf)" for k in counts)
    gib = args.rows * args.channels * 4 / 2**30
    body = "\n".join(
        [
            f"Command: `PYTHONPATH=. python benchmarks/bench_repair.py --rows {args.rows} "
            f"--channels {args.channels} --bad-columns {' '.join(map(str, counts))} "
            f"--repeats {args.repeats}`",
            f"Machine: {machine()}",
            "",
            f"A memory-mapped {args.rows:,} x {args.channels} float32 array ({gib:.2f} GiB, in "
            f"the page cache; made in {make_s:.0f} s) with {spoilt_text}; the packed finite "
            "rows go to a memory-mapped file as in a cache entry being built. Each run restores "
            "the NaN/inf cells first (untimed); the variants alternate. The fills alone start "
            "from the columns and first finite rows the scan gives (found untimed); both whole "
            "repairs run today's scan_nonfinite, so they differ by the fill alone. Before and "
            "now gave the same finite rows, +-inf cells and repaired columns (hashed). On a "
            "shared machine (other jobs beside it, see the load average): the numbers are "
            "indicative.",
            "",
            *rows,
            "",
            f"The scans: {scan_x:.1f}x faster; the fill: {fill_x} bad columns; the whole "
            f"repair: {whole_x}.",
            f"Per {CHUNK:,}-row block (ms, best of {args.repeats * 5}): "
            + ", ".join(f"{name} {ms:.2f}" for name, ms in costs.items())
            + ".",
        ]
    )
    replace_section(HEADER, body)
    print(body)


if __name__ == "__main__":
    main()
