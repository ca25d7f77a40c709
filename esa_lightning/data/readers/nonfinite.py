"""The readers' repair of non-finite readings: one chunked pass over a [T, C] float32 array
finds its NaN/inf cells, the cells float32 cannot represent and the rows holding a finite
reading (``scan_nonfinite``); ``repair_values`` warns about them and forward-fills the NaN/inf in
a second pass; telecommands' NaN/inf become 0 (``zero_nonfinite``); ``ranges_without_reading``
names the channels without a finite reading in a scored range."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from esa_lightning.data.array_store import ArrayStore, release_pages
from esa_lightning.errors import ESAInputError, user_stacklevel


def nonfinite_columns(values: np.ndarray, chunk_rows: int = 65536) -> np.ndarray:
    """Indices of the columns holding NaN/inf, checked in row chunks (no [T, C] temporary)."""
    bad = np.zeros(values.shape[1], dtype=bool)
    for start in range(0, len(values), chunk_rows):
        block = values[start : start + chunk_rows]
        bad |= ~np.isfinite(block).all(axis=0)
        release_pages(block)  # a memory-mapped cache being built stays out of RAM
    return np.flatnonzero(bad)


def forward_fill(values: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """The 1-D ``values`` with each ``bad`` entry replaced by the last good one before it;
    entries before the first good one take that one. ``bad`` must hold a False."""
    idx = np.where(bad, 0, np.arange(len(values)))
    np.maximum.accumulate(idx, out=idx)
    first = int(np.argmax(~bad))
    idx[:first] = first
    return values[idx]


def ranges_without_reading(
    finite: np.ndarray, names: Sequence[str], val_start: int, test_start: int, stop: int
) -> dict[str, list[str]]:
    """``Mission.meta[common.WITHOUT_READING]``: the ``names`` of the channels without a finite
    reading (``NonFinite.finite``) in the validation rows [val_start, test_start) and in the test
    rows [test_start, stop): the fill would score them as a reading from outside it, held."""
    ranges = {"val": (val_start, test_start), "test": (test_start, stop)}
    return {
        key: [name for j, name in enumerate(names) if not _has_reading(finite[j], lo, hi)]
        for key, (lo, hi) in ranges.items()
        if lo < hi
    }


def _has_reading(bits: np.ndarray, start: int, stop: int) -> bool:
    """Whether a bit of rows [start, stop) of the packed ``bits`` is set."""
    first, end = start // 8, (stop + 7) // 8
    if bits[first + 1 : end - 1].any():  # a whole byte inside the range
        return True
    return bool(np.unpackbits(bits[first:end])[start - 8 * first : stop - 8 * first].any())


_BIT_WEIGHTS = np.array([128, 64, 32, 16, 8, 4, 2, 1], dtype=np.uint8)  # np.packbits' order


class NonFinite(NamedTuple):
    """What ``scan_nonfinite`` finds in float32 ``values`` [T, C] (before ``repair_values``)."""

    # int64 [N, 2]: (row, column) of each +-inf, row order: ``Mission.unrepresentable_cells``.
    # Such a reading cannot be represented: it was infinite, or finite beyond float32's range
    # (the cast made it inf). It is replaced for the models like any NaN, but its row must
    # alarm, naming its channel, never be hidden by the repair. NaN is a missing reading.
    cells: np.ndarray
    counts: np.ndarray  # int64 [C]: the NaN/inf cells of each column
    # uint8 [C, ceil(T / 8)]: the rows of each column holding a finite reading, bit-packed
    # (``np.packbits``), for ``ranges_without_reading``; None where no store was given
    finite: np.ndarray | None
    first: np.ndarray  # int64 [C]: each column's first row holding a finite reading, -1: none


def scan_nonfinite(
    values: np.ndarray, store: ArrayStore | None = None, chunk_rows: int = 65536
) -> NonFinite:
    """One pass over ``values`` [T, C] in row chunks (no [T, C] temporary; the pages of a
    memory-mapped array are let go chunk by chunk): its ``NonFinite``, the packed finite rows
    (array ``finite_rows`` of ``store``) only where a ``store`` is given. ``chunk_rows``: a
    multiple of 8."""
    n_rows, n_cols = values.shape
    finite = None
    if store is not None:
        finite = store.empty("finite_rows", (n_cols, (n_rows + 7) // 8), np.uint8)
    counts = np.zeros(n_cols, dtype=np.int64)
    first = np.full(n_cols, -1, dtype=np.int64)
    found = [np.zeros((0, 2), dtype=np.int64)]
    for start in range(0, n_rows, chunk_rows):
        block = values[start : start + chunk_rows]
        ok = np.isfinite(block)
        if finite is not None:
            finite[:, start // 8 : (start + len(block) + 7) // 8] = _pack_rows(ok)
        unseen = np.flatnonzero(first < 0)  # after the first chunk, as a rule, none
        if len(unseen):
            seen = np.take(ok, unseen, axis=1)
            hit = seen.any(axis=0)
            first[unseen[hit]] = start + np.argmax(seen[:, hit], axis=0)
        cols = np.flatnonzero(~ok.all(axis=0))
        if len(cols):  # np.take: a few times faster than block[:, cols] for many columns
            part = np.take(block, cols, axis=1)
            counts[cols] += np.count_nonzero(~np.isfinite(part), axis=0)
            inf = np.isinf(part)
            if inf.any():
                cells = np.argwhere(inf).astype(np.int64)
                cells[:, 0] += start
                cells[:, 1] = cols[cells[:, 1]]
                found.append(cells)
        release_pages(block)
    return NonFinite(np.concatenate(found), counts, finite, first)


def _pack_rows(ok: np.ndarray) -> np.ndarray:
    """``np.packbits(ok, axis=0).T`` of a bool [T, C] block, each 8 rows weighted 128..1 and
    summed: packbits along the rows of a row-major block is many times slower."""
    if len(ok) % 8:  # the last byte's rows beyond the block: 0, as packbits pads
        ok = np.concatenate([ok, np.zeros((8 - len(ok) % 8, ok.shape[1]), dtype=bool)])
    by_eight = ok.view(np.uint8).reshape(len(ok) // 8, 8, ok.shape[1])
    return np.einsum("ikc,k->ci", by_eight, _BIT_WEIGHTS)


def repair_values(
    values: np.ndarray,
    names: Sequence[str],
    *,
    source: str,
    store: ArrayStore | None = None,
    chunk_rows: int = 65536,
) -> NonFinite:
    """Every reader's repair of its float32 channel ``values`` (in place), after one pass over
    them (``scan_nonfinite``, which it returns): the rows holding a reading float32 cannot
    represent are counted in a warning, then NaN/inf are forward-filled in the columns holding
    one (``_fill_rows``, a second pass), with a warning counting the repaired cells. A column
    without any finite value is an error naming it, before anything is filled. ``chunk_rows``:
    the passes' row blocks, a multiple of 8."""
    found = scan_nonfinite(values, store, chunk_rows)
    n_marked = len(np.unique(found.cells[:, 0]))
    if n_marked:
        warnings.warn(
            f"{source}: {n_marked} row(s) hold a reading beyond float32's range (inf or "
            f"|x| > {np.finfo(np.float32).max:.3g}): they are replaced for the model and "
            "always alarm",
            stacklevel=user_stacklevel(),
        )
    bad_cols = np.flatnonzero(found.counts)
    dead = bad_cols[found.first[bad_cols] < 0]
    if len(dead):
        raise ESAInputError("channel holds no finite value", path=source, column=names[dead[0]])
    if len(bad_cols):
        _fill_rows(values, bad_cols, found.first[bad_cols], chunk_rows)
        warnings.warn(
            f"{source}: repaired {int(found.counts.sum())} NaN/inf value(s) in "
            f"{len(bad_cols)} channel(s) by forward fill",
            stacklevel=user_stacklevel(),
        )
    return found


def _fill_rows(values: np.ndarray, cols: np.ndarray, first: np.ndarray, chunk_rows: int) -> None:
    """Replace each NaN/inf of the columns ``cols`` of ``values`` [T, C] (in place) by the last
    finite value before it, in one pass of row blocks (a column of a row-major array spans all
    its pages) that carries each column's last finite value into the next block; the rows
    before a column's first finite value (at row ``first``) take that one. Only the NaN/inf
    cells are written."""
    last = values[first, cols]
    for start in range(0, len(values), chunk_rows):
        block = values[start : start + chunk_rows]
        # a row per column: its last finite value so far, then its values in the block
        part = np.concatenate([last[:, None], np.take(block, cols, axis=1).T], axis=1)
        bad = np.flatnonzero(~np.isfinite(part))  # runs, each after a finite value in its row
        if len(bad):
            run_start = np.diff(bad, prepend=-1) > 1
            part.flat[bad] = part.flat[np.maximum.accumulate(np.where(run_start, bad - 1, 0))]
            at, row = np.divmod(bad, part.shape[1])
            block[row - 1, cols[at]] = part.flat[bad]
        last = part[:, -1]
        release_pages(block)


def zero_nonfinite(commands: np.ndarray, *, source: str) -> int:
    """Telecommand cells that are NaN/inf become 0 (no pulse), with a warning."""
    n = 0
    for j in nonfinite_columns(commands):
        bad = ~np.isfinite(commands[:, j])
        n += int(bad.sum())
        commands[bad, j] = 0
    if n:
        warnings.warn(f"{source}: set {n} NaN/inf telecommand value(s) to 0",
                      stacklevel=user_stacklevel())
    return n
