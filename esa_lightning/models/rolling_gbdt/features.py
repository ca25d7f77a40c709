"""Per-channel rolling statistics of robust-scaled telemetry, computed in bounded row blocks.

For every channel and each window ``w`` the features of a row are the centred rolling median,
standard deviation (population), range (max - min) and deviation from the median, plus the
value itself and its first difference: ``2 + 4 * len(windows)`` float32 columns per channel,
channel-major (``feature_names``). Windows are centred as pandas centres them (rows
``r - w // 2`` to ``r + (w - 1) // 2``) and truncated at the ends of the array.

Results are exact under chunking: medians, minima and maxima are order statistics, and the
standard deviation comes from prefix sums restarted every ``block`` rows (``window_std``), so a
row's features depend only on its window's values and on where the ``block`` grid lies. Callers
keep that grid fixed by starting every slice on a multiple of ``block`` (the model's
``alignment_rows``).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

STAT_NAMES = ("median", "std", "range", "dev")
#: float32 feature values held at once by ``iter_feature_blocks`` (about 128 MB)
BLOCK_FLOATS = 1 << 25


def n_features(windows: list[int]) -> int:
    """Feature columns per channel."""
    return 2 + len(STAT_NAMES) * len(windows)


def feature_names(channels: list[str], windows: list[int]) -> list[str]:
    """``channel:value``, ``channel:diff``, ``channel:median_w``... in column order."""
    own = ["value", "diff"] + [f"{s}_{w}" for w in windows for s in STAT_NAMES]
    return [f"{c}:{f}" for c in channels for f in own]


def stat_block(windows: list[int]) -> int:
    """Rows of the prefix-sum grid: a multiple of 1024 no shorter than the longest window."""
    return 1024 * -(-max(windows) // 1024)


def feature_context(windows: list[int]) -> int:
    """Rows on each side of a row that its features read."""
    return max(windows) // 2


def window_bounds(n: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """[a, b) of the centred window of size ``w`` around each of ``n`` rows, truncated."""
    r = np.arange(n)
    return np.maximum(r - w // 2, 0), np.minimum(r + (w - 1) // 2 + 1, n)


def window_std(x: np.ndarray, w: int, block: int) -> np.ndarray:
    """Population standard deviation of centred windows of ``w`` rows (``w <= block``).

    Sums of ``x - c_j`` and its square restart every ``block`` rows (``c_j``: the first value of
    block j, so large levels cost no precision); a window spans at most two blocks, whose parts
    are merged with Chan's formula. Deterministic for a fixed block grid. Rows that fit one
    block are summed as one block of their own length (the same numbers: memory follows the rows,
    not a window of 10**9 rows).
    """
    n, c = x.shape
    block = min(block, max(n, 1))
    nb = -(-n // block)
    padded = np.zeros(((nb + 1) * block, c))
    padded[:n] = x
    shift = padded[::block].copy()  # [nb + 1, C]
    blocks = padded.reshape(nb + 1, block, c) - shift[:, None, :]
    p1 = np.zeros((nb + 1, block + 1, c))
    p2 = np.zeros((nb + 1, block + 1, c))
    np.cumsum(blocks, axis=1, out=p1[:, 1:])
    np.cumsum(blocks * blocks, axis=1, out=p2[:, 1:])
    a, b = window_bounds(n, w)
    ja = a // block
    m = np.minimum(b, (ja + 1) * block)  # part A: [a, m) in block ja; part B: [m, b) in ja + 1
    oa, om, kb_rows = a - ja * block, m - ja * block, b - m
    k_a = (m - a)[:, None].astype(np.float64)
    k_b = kb_rows[:, None].astype(np.float64)
    a1 = p1[ja, om] - p1[ja, oa]
    a2 = p2[ja, om] - p2[ja, oa]
    b1 = p1[ja + 1, kb_rows]
    b2 = p2[ja + 1, kb_rows]
    mean_a = a1 / k_a
    m2 = a2 - a1 * mean_a
    safe_kb = np.maximum(k_b, 1.0)
    mean_b = b1 / safe_kb
    delta = (shift[ja + 1] - shift[ja]) + mean_b - mean_a
    merged = m2 + (b2 - b1 * mean_b) + delta * delta * k_a * k_b / (k_a + k_b)
    m2 = np.where(k_b > 0, merged, m2)
    return np.sqrt(np.maximum(m2 / (k_a + k_b), 0.0))


def rolling_features(x: np.ndarray, windows: list[int], block: int) -> np.ndarray:
    """float32 [T, C * F] features of scaled values ``x`` [T, C] (float64, finite).

    Row 0's first difference is NaN (no previous row); the classifier reads it as missing.
    """
    x = np.asarray(x, dtype=np.float64)
    n, c = x.shape
    out = np.empty((n, c, n_features(windows)), dtype=np.float32)
    out[:, :, 0] = x
    out[:, :, 1] = np.diff(x, axis=0, prepend=np.nan)
    frame = pd.DataFrame(x)
    for i, w in enumerate(windows):
        roll = frame.rolling(w, center=True, min_periods=1)
        median = roll.median().to_numpy()
        base = 2 + len(STAT_NAMES) * i
        out[:, :, base] = median
        out[:, :, base + 1] = window_std(x, w, block)
        out[:, :, base + 2] = roll.max().to_numpy() - roll.min().to_numpy()
        out[:, :, base + 3] = x - median
    return out.reshape(n, -1)


def block_rows(n_channels: int, windows: list[int]) -> int:
    """Rows per feature block: about ``BLOCK_FLOATS`` values, a multiple of ``stat_block``."""
    grid = stat_block(windows)
    per_row = max(1, n_channels * n_features(windows))
    return max(grid, BLOCK_FLOATS // per_row // grid * grid)


def scale_values(values: np.ndarray, center: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """float64 ``(values - center) / scale``; a non-finite value reads as the center (0)."""
    z = (np.asarray(values, dtype=np.float64) - center) / scale
    return np.nan_to_num(z, nan=0.0, posinf=0.0, neginf=0.0)


def iter_feature_blocks(
    values: np.ndarray,
    windows: list[int],
    center: np.ndarray,
    scale: np.ndarray,
    rows: int | None = None,
) -> Iterator[tuple[int, int, np.ndarray]]:
    """``(start, stop, features of rows [start, stop))`` of ``values`` [T, C] scaled with
    ``center`` / ``scale``. Each block is scaled and featurised with ``feature_context`` rows of
    margin from a start on the ``stat_block`` grid, so the blocks equal ``rolling_features`` of
    the whole scaled array row for row while memory follows the block, not ``T``."""
    n = len(values)
    grid = stat_block(windows)
    rows = block_rows(values.shape[1], windows) if rows is None else rows
    if rows % grid:
        raise ValueError(f"block rows {rows} must be a multiple of {grid}")
    context = feature_context(windows)
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        lo = max(0, start - context)
        lo -= lo % grid
        hi = min(n, stop + context)
        feats = rolling_features(scale_values(values[lo:hi], center, scale), windows, grid)
        yield start, stop, feats[start - lo : stop - lo]
