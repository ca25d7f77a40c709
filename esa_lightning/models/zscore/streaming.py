"""``column_statistics`` of float32 rows read twice in batches, in bounded memory, exactly.

``column_statistics`` (quantiles.py) holds every row (4 bytes x rows x columns: 3.5 GB for
10 M rows x 87 channels). The order statistics it needs (the lower median and the two values
each quantile interpolates between) are found here without holding the rows, from two passes
over them:

- a float32 value's 32 bits, the sign flipped for a positive and all bits for a negative,
  order as the values do (``_keys``; -0.0 is counted as +0.0, equal to it);
- pass 1 (``count``) counts, per column, the values of each high 16-bit half of the key
  (65,536 counters a column): the k-th smallest value lies in the high half where the running
  count passes k;
- pass 2 (``refine``) counts the low halves of the values in that high half only (65,536
  counters per column and distinct high half needed): the k-th value's low half is where that
  count passes k's place inside its high half.

The two halves are the value's own bits, so each order statistic is the value itself, not an
approximation, and the quantiles are interpolated from them as ``column_statistics`` does
(``_ranks``, ``_lerp``): the results are its own, bit for bit (a -0.0 among the values aside,
which may come out as +0.0). Memory, however many rows: 512 KiB of counters per column for
pass 1, 256 KiB (512 KiB from 2**31 rows) per column and needed high half for pass 2 (at
most five a column), one batch and temporaries of eight of its columns at a time (about
0.2 GiB in all for 87 channels and batches of 65,536 rows). A NaN value is no value, as in
``column_statistics``: each column's statistics are those of its other values (their count,
``counts``, sets its ranks), NaN for a column of NaN only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch

from esa_lightning.models.zscore.quantiles import _lerp, _ranks

HALF = 1 << 16  # counters per column and half
GROUP = 8  # columns of a batch turned into keys at once


def _keys(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(uint32 keys ordered as the float32 values ``x`` are, bool NaN mask)."""
    nan = np.isnan(x)
    bits = (x + np.float32(0.0)).view(np.uint32)  # -0.0 + 0.0 is +0.0
    negative = (bits >> 31).astype(bool)
    keys = np.where(negative, ~bits, bits | np.uint32(1 << 31))
    return keys, nan


def _values(keys: np.ndarray) -> np.ndarray:
    """float32 values of ``_keys``' keys (the inverse)."""
    keys = keys.astype(np.uint32)
    positive = (keys >> 31).astype(bool)
    bits = np.where(positive, keys & np.uint32((1 << 31) - 1), ~keys)
    return bits.astype(np.uint32).view(np.float32)


def _as_array(batch: np.ndarray | torch.Tensor) -> np.ndarray:
    x = batch.detach().cpu().numpy() if isinstance(batch, torch.Tensor) else np.asarray(batch)
    if x.dtype != np.float32 or x.ndim != 2:
        raise TypeError(f"rows must be a 2-D float32 array, got {x.dtype} of shape {x.shape}")
    return x


class OtherRows(RuntimeError):
    """The two passes of a ``TwoPassStatistics`` read other rows."""


class TwoPassStatistics:
    """Exact lower median and linear quantiles ``q`` per column of float32 rows seen twice:
    every batch to ``count``, then every batch again, in any order, to ``refine``, then
    ``result``. The batches of both passes must hold the same rows. NaN values are left out:
    a column's statistics are those of its ``counts`` other values."""

    def __init__(self, n_columns: int, q: Sequence[float]) -> None:
        self.n_columns = int(n_columns)
        self.q = list(q)
        self.rows = 0
        self.counts = np.zeros(self.n_columns, dtype=np.int64)  # values other than NaN
        self.high = np.zeros(self.n_columns * HALF, dtype=np.int64)
        self._low: np.ndarray | None = None
        # per pass: rows and the per-column sum of keys (wrapping), to tell the same rows
        self._seen = [np.zeros(self.n_columns, dtype=np.uint64), np.zeros(self.n_columns,
                                                                          dtype=np.uint64)]
        self._rows2 = 0

    def count(self, batch: np.ndarray | torch.Tensor) -> None:
        """Pass 1: count the high halves of ``batch`` [rows, columns]'s keys."""
        x = _as_array(batch)
        self.rows += len(x)
        for lo in range(0, self.n_columns, GROUP):  # column groups: small temporaries
            keys, nan = _keys(x[:, lo : lo + GROUP])
            self._seen[0][lo : lo + GROUP] += keys.sum(axis=0, dtype=np.uint64)
            self.counts[lo : lo + GROUP] += len(x) - nan.sum(axis=0)
            width = keys.shape[1]
            index = (keys >> 16).astype(np.int64) + np.arange(width) * HALF
            self.high[lo * HALF : (lo + width) * HALF] += np.bincount(
                index[~nan], minlength=width * HALF
            )

    def _plan(self) -> None:
        """After pass 1: per column, the ranks its statistics read among its ``counts`` values
        (the lower median, then each quantile's value below, then above: ``_ranks``), the high
        half each lies in and its place there; a counter set (``_low``) per distinct (column,
        high half)."""
        if self.rows == 0:
            raise ValueError("no rows to take order statistics of")
        n_q = len(self.q)
        self.ranks = np.zeros((self.n_columns, 1 + 2 * n_q), dtype=np.int64)
        self.weight = np.zeros((n_q, self.n_columns), dtype=np.float32)
        for n in np.unique(self.counts[self.counts > 0]):  # one count a column, most often
            below, above, weight = _ranks(self.q, int(n), np.dtype(np.float32))
            same = self.counts == n
            self.ranks[same] = np.concatenate([[(n - 1) // 2], below, above])
            self.weight[:, same] = weight[:, None]
        # per column and rank: the high half holding it, the values below that half
        bucket = np.empty_like(self.ranks)
        before = np.zeros_like(bucket)
        for j, counts in enumerate(self.high.reshape(self.n_columns, HALF)):
            cum = counts.cumsum()
            # a column of NaN only counts no value: its (unread) statistics stay in range
            bucket[j] = np.minimum(np.searchsorted(cum, self.ranks[j], side="right"), HALF - 1)
            before[j] = np.where(bucket[j] > 0, cum[np.maximum(bucket[j] - 1, 0)], 0)
        self.place = self.ranks - before
        pairs = np.unique(np.arange(self.n_columns)[:, None] * HALF + bucket)
        self.target = np.full(self.n_columns * HALF, -1, dtype=np.int64)
        self.target[pairs] = np.arange(len(pairs))
        self.slot = self.target[np.arange(self.n_columns)[:, None] * HALF + bucket]
        self.bucket = bucket
        # the first counter set of each column (pairs are sorted by column), and the end
        self.first_slot = np.searchsorted(pairs // HALF, np.arange(self.n_columns + 1))
        wide = np.int64 if self.rows >= 2**31 else np.int32  # a count is at most the rows
        self._low = np.zeros(len(pairs) * HALF, dtype=wide)

    def refine(self, batch: np.ndarray | torch.Tensor) -> None:
        """Pass 2: count the low halves of the keys that lie in a needed high half."""
        if self._low is None:
            self._plan()
        x = _as_array(batch)
        self._rows2 += len(x)
        for lo in range(0, self.n_columns, GROUP):
            keys, nan = _keys(x[:, lo : lo + GROUP])
            self._seen[1][lo : lo + GROUP] += keys.sum(axis=0, dtype=np.uint64)
            width = keys.shape[1]
            first, end = self.first_slot[lo], self.first_slot[lo + width]
            index = (keys >> 16).astype(np.int64) + (lo + np.arange(width)) * HALF
            slot = self.target[index]
            keep = (slot >= 0) & ~nan
            low = (keys[keep] & np.uint32(HALF - 1)).astype(np.int64)
            self._low[first * HALF : end * HALF] += np.bincount(
                (slot[keep] - first) * HALF + low, minlength=(end - first) * HALF
            ).astype(self._low.dtype)

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(lower median [columns], quantiles [len(q), columns]) as ``column_statistics``."""
        if self._low is None:
            self._plan()
        if self._rows2 != self.rows or not np.array_equal(*self._seen):
            raise OtherRows(
                f"the second pass over the rows read other rows than the first ({self.rows} "
                f"rows, then {self._rows2}): the exact order statistics need the same rows twice"
            )
        low = self._low.reshape(-1, HALF)
        found = np.empty(self.slot.shape, dtype=np.uint32)
        cums: dict[int, np.ndarray] = {}  # a counter set's running count, once
        for j in range(self.n_columns):
            for r in range(self.ranks.shape[1]):
                slot = int(self.slot[j, r])
                if slot not in cums:
                    cums[slot] = low[slot].cumsum(dtype=np.int64)
                half = np.searchsorted(cums[slot], self.place[j, r], side="right")
                found[j, r] = (int(self.bucket[j, r]) << 16) | int(min(half, HALF - 1))
        values = _values(found)  # [columns, ranks]: the median, the values below, above
        n_q, empty = len(self.q), self.counts == 0
        median = values[:, 0]
        below, above = values[:, 1 : 1 + n_q].T, values[:, 1 + n_q :].T
        quantiles = _lerp(below, above, self.weight).astype(np.float32)
        median[empty] = np.nan
        quantiles[:, empty] = np.nan
        return torch.from_numpy(np.ascontiguousarray(median)), torch.from_numpy(quantiles)


def streaming_column_statistics(
    batches: Callable[[], Iterable[np.ndarray | torch.Tensor]], n_columns: int,
    q: Sequence[float],
) -> tuple[torch.Tensor, torch.Tensor]:
    """``column_statistics`` of the float32 rows ``batches()`` gives (called twice: each call
    must give the same rows), holding one batch and the counters, never the rows."""
    stats = TwoPassStatistics(n_columns, q)
    for batch in batches():
        stats.count(batch)
    for batch in batches():
        stats.refine(batch)
    return stats.result()
