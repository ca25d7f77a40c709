"""Order statistics of any number of rows, computed as ``torch.median`` and ``torch.quantile``
(``interpolation='linear'``) compute them, one column at a time on the CPU.

``torch.quantile`` refuses more than 2**24 values along the reduced dimension, so the z-score's
scale and threshold were once computed from the first 1,000,000 rows only: on a long mission
the earliest months alone. These functions take every row: each column is copied once (in
its own dtype) and partitioned around the few ranks needed, never sorted whole, so the memory
beyond the input is one column. Within torch's range the results are those of torch, bit for
bit: the rank ``q * (n - 1)`` and the interpolation are computed in the input's dtype as torch
does (beyond 2**24 rows the rank is computed in float64, where float32 could not hold it).
A NaN value is no value (as the readers take a NaN sample, and as ``nanmedian`` /
``nanquantile`` do): a column's statistics are those of its other values, torch's over them,
and a column of NaN only gives NaN. They once gave NaN for any column holding a NaN (torch's
``median``/``quantile``): the z-score of a channel with one NaN training row was NaN on every
row.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

#: the largest ``n - 1`` whose rank ``q * (n - 1)`` is computed in the input's dtype, as torch
#: does within its limit (2**24 values); beyond it in float64
TORCH_RANK_ROWS = 2**24


def _ranks(
    q: Sequence[float], n: int, dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(index below, index above, weight) of each quantile ``q`` among ``n`` sorted values."""
    if n - 1 <= TORCH_RANK_ROWS:
        ranks = np.asarray(q, dtype=dtype) * dtype.type(n - 1)
    else:
        ranks = np.asarray(q, dtype=dtype).astype(np.float64) * (n - 1)
    below = np.floor(ranks).astype(np.int64)
    above = np.ceil(ranks).astype(np.int64)  # == below at a whole rank, as in torch
    return below, above, (ranks - below).astype(dtype)


def _lerp(low: np.ndarray, high: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``torch.lerp``: from the nearer end, so that weight 1 gives ``high`` exactly."""
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: NaN, as in torch
        diff = high - low
        return np.where(
            np.abs(weight) < 0.5, low + weight * diff, high - diff * (weight.dtype.type(1) - weight)
        )


def _column(
    column: np.ndarray, q: Sequence[float], median: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(lower median or nothing, linear quantiles ``q``) of one column's values other than
    NaN (NaN where it holds none)."""
    nan = np.isnan(column)
    if nan.any():
        column = column[~nan]
    n, dtype = len(column), column.dtype
    if n == 0:
        none = np.full(len(q), np.nan, dtype=dtype)
        return none[:1] if median else none[:0], none
    below, above, weight = _ranks(q, n, dtype)
    middle = [(n - 1) // 2] if median else []
    kth = np.unique(np.concatenate([below, above, middle]).astype(np.int64))
    part = np.partition(column, kth)
    return part[middle], _lerp(part[below], part[above], weight)


def column_statistics(
    x: torch.Tensor | Sequence[torch.Tensor], q: Sequence[float]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(``torch.median(x, dim=0).values``, ``torch.quantile(x, q, dim=0)``) of a 2-D CPU
    tensor ``x`` with at least one row, over every row however many: the median the lower of
    the two middle values, the quantiles linearly interpolated, shape (len(q), columns); a
    column's NaN values left out (NaN for a column of NaN only).
    ``x`` may be a sequence of 2-D tensors with the same columns: the statistics are those of
    their rows together (``torch.cat(x)``), whose copy is never made (one column at a time)."""
    parts = [x] if isinstance(x, torch.Tensor) else list(x)
    arrays = [part.detach().cpu().numpy() for part in parts]
    dtype = np.result_type(*arrays)
    n_columns = arrays[0].shape[1]
    medians = np.empty(n_columns, dtype=dtype)
    quantiles = np.empty((len(q), n_columns), dtype=dtype)
    for j in range(n_columns):
        column = arrays[0][:, j] if len(arrays) == 1 else np.concatenate([a[:, j] for a in arrays])
        med, quantiles[:, j] = _column(column.astype(dtype, copy=False), q, median=True)
        medians[j] = med[0]
    return torch.from_numpy(medians), torch.from_numpy(quantiles)


def quantile(s: torch.Tensor, q: float) -> torch.Tensor:
    """``torch.quantile(s, q)`` (linear) of the values of a 1-D CPU tensor other than NaN,
    however many, as a 0-d tensor of its dtype (NaN where none is left)."""
    values = s.detach().cpu().numpy()
    return torch.from_numpy(_column(values, [q], median=False)[1]).reshape(())
