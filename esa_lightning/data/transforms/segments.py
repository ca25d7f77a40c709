"""Per-channel window features of the hierarchical channel ensemble (reference pipeline A, §4.1).

One channel ``x`` [T] is cut into windows of ``window`` samples every ``step`` samples
(``n_windows = (T - window) // step + 1``, 0 when ``T < window``); each window gets the 24
features of ``FEATURE_NAMES``. Everything is computed on strided views of the whole series in
float64 (chunked to bound memory) and returned as float32: no Python loop over windows.

Feature definitions, per window ``w`` of length ``W`` (population statistics, ``ddof=0``):

- ``min``, ``max``, ``mean``, ``std``, ``var`` of ``w``.
- ``stft``: ``scipy.signal.stft(w, nperseg=min(16, W))`` with its defaults (periodic Hann
  window, ``noverlap=nperseg // 2``, zero boundary padding, ``padded=True``, no detrend,
  ``scaling="spectrum"``); ``s[t] = sum_f |Z[f, t]|``; feature = ``std(s) / (mean(s) + 1e-6)``.
  The STFT is linear in ``w``, so it is evaluated as one matrix product with the STFT of the
  identity matrix (bit-for-bit the same definition, up to float rounding).
- ``spectral_centroid``: ``m = |rfft(w)|`` (DC included), ``f = rfftfreq(W)`` in cycles per
  sample; feature = ``sum(f * m) / (sum(m) + 1e-6)``.
- ``slope``: least-squares slope of ``w`` against ``t = 0 .. W-1`` (as ``np.polyfit(t, w, 1)[0]``).
- ``diff_var``: ``var(diff(w))``.
- for ``n = 1..5``: ``mean_diff_n``, ``max_diff_n``, ``min_diff_n`` = the window's mean / max /
  min minus those of the window ``n`` steps earlier; 0 for the first ``n`` windows.

A constant series gives finite values (0 spread, 0 slope). NaN in ``x`` propagates into the
windows that contain it: fill gaps before calling.

Pooling (§4.3): ``pool_features`` takes the max and min of every feature over ``pool``
consecutive window rows every ``stride`` rows; with the defaults (window 50, step 10, pool 200,
stride 20) each pooled row spans 2040 samples and pooled rows start every 200 samples
(``pooled_spans``). Series too short for one window / one pool give arrays with 0 rows and the
right number of columns.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from joblib import Parallel, delayed
from numpy.lib.stride_tricks import sliding_window_view
from scipy.signal import stft

from esa_lightning.data.transforms import shapelets
from esa_lightning.errors import ESAInputError, TooFewRows
from esa_lightning.progress import progress

N_LAGS = 5
BASE_NAMES = [
    "min",
    "max",
    "mean",
    "std",
    "var",
    "stft",
    "spectral_centroid",
    "slope",
    "diff_var",
]
LAG_NAMES = [f"{stat}_diff_{n}" for n in range(1, N_LAGS + 1) for stat in ("mean", "max", "min")]
FEATURE_NAMES: list[str] = BASE_NAMES + LAG_NAMES

EPS = 1e-6
CHUNK_ROWS = 32768  # windows per chunk: bounds the float64 temporaries to a few tens of MB


def _check_window(window: int, step: int) -> None:
    if int(window) < 2:
        raise ESAInputError("segmentation window must be at least 2 samples", value=window)
    if int(step) < 1:
        raise ESAInputError("segmentation step must be at least 1 sample", value=step)


def n_windows(n_samples: int, window: int = 50, step: int = 10) -> int:
    """Number of full windows of ``window`` samples every ``step`` samples (0 if too short)."""
    if n_samples < window:
        return 0
    return (n_samples - window) // step + 1


def window_starts(n_samples: int, window: int = 50, step: int = 10) -> np.ndarray:
    """First sample index (int64) of each segmentation window."""
    _check_window(window, step)
    return np.arange(n_windows(n_samples, window, step), dtype=np.int64) * step


def _windows(x: np.ndarray, window: int, step: int) -> np.ndarray:
    """Strided view [n_windows, window] of ``x`` (no copy); 0 rows when ``len(x) < window``."""
    if x.shape[0] < window:
        return np.empty((0, window) + x.shape[1:], dtype=x.dtype)
    return sliding_window_view(x, window, axis=0)[::step]


@lru_cache(maxsize=16)
def _stft_matrices(window: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Real and imaginary parts of the STFT of the identity: ``stft(w) = w @ M`` (linearity)."""
    _, _, z = stft(np.eye(window), nperseg=min(16, window), axis=-1)  # [window, freqs, frames]
    n_freqs = z.shape[1]
    z = z.reshape(window, -1)
    return np.ascontiguousarray(z.real), np.ascontiguousarray(z.imag), n_freqs


def _base_features(w: np.ndarray) -> np.ndarray:
    """The 9 per-window statistics of a float64 window block [n, W] -> [n, 9]."""
    n, width = w.shape
    out = np.empty((n, len(BASE_NAMES)), dtype=np.float64)
    mean = w.mean(axis=1)
    centered = w - mean[:, None]
    var = np.mean(centered * centered, axis=1)
    out[:, 0] = w.min(axis=1)
    out[:, 1] = w.max(axis=1)
    out[:, 2] = mean
    out[:, 3] = np.sqrt(var)
    out[:, 4] = var

    m_re, m_im, n_freqs = _stft_matrices(width)
    re = w @ m_re
    im = w @ m_im
    mag = np.sqrt(re * re + im * im).reshape(n, n_freqs, -1)
    summed = mag.sum(axis=1)  # [n, frames]
    out[:, 5] = summed.std(axis=1) / (summed.mean(axis=1) + EPS)

    spec = np.abs(np.fft.rfft(w, axis=1))
    freqs = np.fft.rfftfreq(width)
    out[:, 6] = (spec @ freqs) / (spec.sum(axis=1) + EPS)

    t = np.arange(width, dtype=np.float64)
    t -= t.mean()
    out[:, 7] = (centered @ t) / np.dot(t, t)

    d = np.diff(w, axis=1)
    out[:, 8] = d.var(axis=1)
    return out


def segment_features(
    x: np.ndarray, window: int = 50, step: int = 10
) -> tuple[np.ndarray, list[str]]:
    """The 24 window features of one channel ``x`` [T]: (float32 [n_windows, 24], names).

    ``T < window`` gives a [0, 24] array. See the module docstring for exact definitions.
    """
    _check_window(window, step)
    x = np.asarray(x)
    if x.ndim != 1:
        raise ESAInputError("segment_features takes one channel, a 1-D array", value=x.shape)
    views = _windows(x, window, step)
    n = views.shape[0]
    base = np.empty((n, len(BASE_NAMES)), dtype=np.float64)
    for lo in range(0, n, CHUNK_ROWS):  # chunks of many windows, not a loop over windows
        hi = min(n, lo + CHUNK_ROWS)
        base[lo:hi] = _base_features(np.asarray(views[lo:hi], dtype=np.float64))

    out = np.zeros((n, len(FEATURE_NAMES)), dtype=np.float32)
    out[:, : len(BASE_NAMES)] = base
    col = len(BASE_NAMES)
    for lag in range(1, N_LAGS + 1):
        for src in (2, 1, 0):  # mean, max, min (order of LAG_NAMES)
            if n > lag:
                out[lag:, col] = base[lag:, src] - base[:-lag, src]
            col += 1
    return out, list(FEATURE_NAMES)


def telecommand_counts(pulses: np.ndarray, window: int = 50, step: int = 10) -> np.ndarray:
    """Sum of telecommand pulses [T, K] inside each window: float32 [n_windows, K]."""
    _check_window(window, step)
    pulses = np.asarray(pulses)
    if pulses.ndim != 2:
        raise ESAInputError("telecommand pulses must be a 2-D array [T, K]", value=pulses.shape)
    n = n_windows(pulses.shape[0], window, step)
    if n == 0:
        return np.zeros((0, pulses.shape[1]), dtype=np.float32)
    csum = np.zeros((pulses.shape[0] + 1, pulses.shape[1]), dtype=np.float64)
    np.cumsum(pulses, axis=0, dtype=np.float64, out=csum[1:])
    starts = np.arange(n) * step
    return (csum[starts + window] - csum[starts]).astype(np.float32)


def window_labels(labels: np.ndarray, window: int = 50, step: int = 10) -> np.ndarray:
    """Max of ``labels`` [T] over each window: [n_windows], the dtype of ``labels``.

    Pass binary labels (e.g. ``mission.labels[:, c] == 1``): the max of mixed codes (gap = 3,
    anomaly = 1) would not mean "anomalous".
    """
    _check_window(window, step)
    labels = np.asarray(labels)
    if labels.shape[0] < window:
        return np.zeros(0, dtype=labels.dtype)
    return _windows(labels, window, step).max(axis=-1)


def _check_pool(pool: int, stride: int) -> None:
    if int(pool) < 1 or int(stride) < 1:
        raise ESAInputError("pool and stride must be at least 1 row", value=(pool, stride))


def pool_features(
    features: np.ndarray, pool: int = 200, stride: int = 20, names: list[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """Rolling max and min over ``pool`` window rows every ``stride`` rows.

    ``features`` [n_windows, F] -> (float32 [n_pooled, 2F] = all maxima then all minima,
    names ``<name>_max`` then ``<name>_min``). ``names`` defaults to ``FEATURE_NAMES`` for 24
    columns, else ``f0, f1, ...``. Fewer than ``pool`` rows give a [0, 2F] array.
    """
    _check_pool(pool, stride)
    features = np.asarray(features)
    if features.ndim != 2:
        raise ESAInputError(
            "pool_features takes a 2-D array [rows, features]", value=features.shape
        )
    width = features.shape[1]
    if names is None:
        names = FEATURE_NAMES if width == len(FEATURE_NAMES) else [f"f{i}" for i in range(width)]
    if len(names) != width:
        raise ESAInputError(f"{len(names)} names for {width} feature columns", value=names)
    names = pool_feature_names(list(names))
    if features.shape[0] < pool:
        return np.zeros((0, 2 * width), dtype=np.float32), names
    view = sliding_window_view(features, pool, axis=0)[::stride]  # [n_pooled, F, pool]
    out = np.concatenate([view.max(axis=-1), view.min(axis=-1)], axis=1)
    return out.astype(np.float32, copy=False), names


def pool_feature_names(names: list[str]) -> list[str]:
    """Column names of ``pool_features`` for input columns ``names``."""
    return [f"{n}_max" for n in names] + [f"{n}_min" for n in names]


def pool_labels(window_labels: np.ndarray, pool: int = 200, stride: int = 20) -> np.ndarray:
    """Max of per-window labels over each pooled row: [n_pooled] (a pooled row is an event if
    any of its windows is)."""
    _check_pool(pool, stride)
    window_labels = np.asarray(window_labels)
    if window_labels.shape[0] < pool:
        return np.zeros(0, dtype=window_labels.dtype)
    return sliding_window_view(window_labels, pool, axis=0)[::stride].max(axis=-1)


def n_pooled(
    n_samples: int, window: int = 50, step: int = 10, pool: int = 200, stride: int = 20
) -> int:
    """Number of pooled rows of a series of ``n_samples`` samples."""
    n_w = n_windows(n_samples, window, step)
    return 0 if n_w < pool else (n_w - pool) // stride + 1


def pooled_spans(
    n_samples: int, window: int = 50, step: int = 10, pool: int = 200, stride: int = 20
) -> np.ndarray:
    """First and last sample (inclusive), int64 [n_pooled, 2], covered by each pooled row."""
    _check_window(window, step)
    _check_pool(pool, stride)
    n_p = n_pooled(n_samples, window, step, pool, stride)
    first = np.arange(n_p, dtype=np.int64) * (stride * step)
    last = first + (pool - 1) * step + window - 1
    return np.stack([first, last], axis=1).reshape(n_p, 2)


# ------------------------------------------------- pooled channel features (channel ensemble)
N_WINDOW_FEATURES = 24
SPLIT_TRAIN, SPLIT_VAL, SPLIT_TEST, SPLIT_NONE = 0, 1, 2, -1


def n_pooled_features(n_kernels: int) -> int:
    """Pooled feature count: max and min of 24 window features and 2 responses per kernel."""
    return 2 * (N_WINDOW_FEATURES + 2 * n_kernels)


def pooled_feature_names(n_kernels: int) -> list[str]:
    """Names of the pooled feature columns, in ``featurise_channel``'s order."""
    kernel_cols = [f"shapelet_{k}_{m}" for k in range(n_kernels) for m in ("max", "min")]
    return pool_feature_names(list(FEATURE_NAMES) + kernel_cols)


def featurise_channel(
    x: np.ndarray,
    kernels: list[np.ndarray],
    *,
    window: int,
    step: int,
    pool: int,
    pool_stride: int,
    n_kernels: int,
) -> np.ndarray:
    """Raw (unscaled) pooled features float32 [n_p, 2·(24 + 2K)] of one channel's series.

    Channels with fewer than ``n_kernels`` mined kernels get zero columns in the missing slots so
    every channel has the same feature count.
    """
    feats, _ = segment_features(np.asarray(x, dtype=np.float32), window, step)
    cols = [np.asarray(feats, dtype=np.float32)]
    if len(kernels):
        shp, _ = shapelets.shapelet_features(x, list(kernels), window=window, step=step)
        cols.append(np.asarray(shp, dtype=np.float32))
    missing = n_kernels - len(kernels)
    if missing > 0:
        cols.append(np.zeros((len(feats), 2 * missing), dtype=np.float32))
    pooled, _ = pool_features(np.concatenate(cols, axis=1), pool, pool_stride)
    return np.nan_to_num(np.asarray(pooled, dtype=np.float32), posinf=0.0, neginf=0.0)


def min_samples(window: int, step: int, pool: int) -> int:
    """Fewest samples that make one pooled row."""
    return window + (pool - 1) * step


def featurise_values(
    values: np.ndarray,
    kernels: list[list[np.ndarray]],
    mean: np.ndarray,
    std: np.ndarray,
    *,
    window: int,
    step: int,
    pool: int,
    pool_stride: int,
    n_kernels: int,
    n_jobs: int = 1,
) -> np.ndarray:
    """Standardised pooled features float32 [C, R, F] of values [T, C] with fitted kernels/stats."""
    values = np.asarray(values, dtype=np.float32)
    need = min_samples(window, step, pool)
    if len(values) < need:
        raise TooFewRows(
            f"{len(values)} rows read (the rows scored, with the rows before them read as "
            f"context); the channel ensemble needs at least {need} to score one pooled row "
            f"(window {window} + (pool {pool} - 1) x step {step}): score a longer range"
        )
    opts = dict(window=window, step=step, pool=pool, pool_stride=pool_stride, n_kernels=n_kernels)
    jobs = Parallel(n_jobs=n_jobs, return_as="generator")(
        delayed(featurise_channel)(values[:, c], kernels[c], **opts) for c in range(values.shape[1])
    )
    x = np.stack(list(progress(jobs, "segment features", total=values.shape[1])))
    return ((x - mean[:, None, :]) / std[:, None, :]).astype(np.float32)


def pad_kernels(
    kernels: list[list[np.ndarray]], n_kernels: int, max_len: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel kernel lists → (float32 [C, K, max_len], int64 lengths [C, K]) for buffers."""
    padded = np.zeros((len(kernels), n_kernels, max_len), dtype=np.float32)
    lengths = np.zeros((len(kernels), n_kernels), dtype=np.int64)
    for c, ks in enumerate(kernels):
        for k, kern in enumerate(ks[:n_kernels]):
            kern = np.asarray(kern, dtype=np.float32).ravel()
            if len(kern) > max_len:
                raise ValueError(f"kernel of length {len(kern)} exceeds max_len {max_len}")
            padded[c, k, : len(kern)] = kern
            lengths[c, k] = len(kern)
    return padded, lengths


def kernel_len_problem(lengths: np.ndarray, max_len: int) -> str | None:
    """What makes stored kernel ``lengths`` [C, K] other than ``pad_kernels`` writes, or None:
    ``pad_kernels`` writes whole numbers from 0 (an empty slot) to ``max_len`` (the kernel
    buffer's width, at most the window a kernel is matched in), the empty slots last. Any other
    length was silently cut to the buffer or dropped by ``unpad_kernels``, shifting the next
    kernels' feature columns (an artifact read with it scores with other kernels)."""
    lengths = np.asarray(lengths)
    if not np.issubdtype(lengths.dtype, np.integer):
        return f"holds {lengths.dtype} lengths, not whole numbers"
    outside = lengths[(lengths < 0) | (lengths > max_len)]
    if outside.size:
        return f"holds the kernel length {int(outside[0])}, outside 0 to {max_len}"
    if (np.diff((lengths > 0).astype(np.int8), axis=-1) > 0).any():
        return "holds an empty kernel slot (length 0) before a kernel: training puts them last"
    return None


def unpad_kernels(padded: np.ndarray, lengths: np.ndarray) -> list[list[np.ndarray]]:
    """Inverse of ``pad_kernels``: drops empty slots."""
    return [
        [padded[c, k, : lengths[c, k]].copy() for k in range(padded.shape[1]) if lengths[c, k] > 0]
        for c in range(padded.shape[0])
    ]


def pooled_labels(
    flags: np.ndarray, window: int, step: int, pool: int, pool_stride: int
) -> np.ndarray:
    """0/1 per-sample flags [T] → 0/1 per pooled row (any flagged sample in the row's span)."""
    wl = window_labels(np.asarray(flags, dtype=np.uint8), window, step)
    return (np.asarray(pool_labels(wl, pool, pool_stride)) > 0).astype(np.float32)


def row_splits(spans: np.ndarray, val_start: int, test_start: int) -> np.ndarray:
    """int64 [R]: SPLIT_TRAIN / SPLIT_VAL / SPLIT_TEST per pooled row, SPLIT_NONE if straddling."""
    first, last = spans[:, 0], spans[:, 1]
    split = np.full(len(spans), SPLIT_NONE, dtype=np.int64)
    split[last < val_start] = SPLIT_TRAIN
    split[(first >= val_start) & (last < test_start)] = SPLIT_VAL
    split[first >= test_start] = SPLIT_TEST
    return split


def run_ids(flags: np.ndarray) -> np.ndarray:
    """int64 [R]: an id per contiguous run of positive rows (0, 1, ...), -1 on negative rows."""
    flags = np.asarray(flags) > 0
    starts = flags & ~np.concatenate([[False], flags[:-1]])
    ids = np.cumsum(starts) - 1
    return np.where(flags, ids, -1).astype(np.int64)
