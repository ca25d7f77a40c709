"""Window arithmetic, model inputs and robust scaling: pure functions and fitted state.

Used by ``WindowDataModule`` and by the models' scoring alike, so the two cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from esa_lightning.data.mission import Mission, nominal_rows
from esa_lightning.errors import ESAInputError

__all__ = [
    "DETREND_STATS",
    "INPUT_MODES",
    "SCALED_LIMIT",
    "SCALINGS",
    "RobustStats",
    "check_detrend_stat",
    "clip_wild",
    "detrend_columns",
    "detrend_history",
    "labeled_window_mask",
    "mission_inputs",
    "model_inputs",
    "n_windows",
    "nominal_rows",
    "scale",
    "sliding_windows",
    "window_to_sample_scores",
]

INPUT_MODES = ("values+telecommands", "values")
# robust: (x - median) / IQR fitted on nominal training rows; none: the values as they are (data
# its publishers already scaled, such as NASA telemanom's [-1, 1] channels)
SCALINGS = ("robust", "none")


# ---------------------------------------------------------------------------- window arithmetic
def n_windows(n_samples: int, window: int, stride: int = 1) -> int:
    """How many full windows fit in ``n_samples`` rows."""
    return 0 if n_samples < window else (n_samples - window) // stride + 1


def sliding_windows(array: np.ndarray, window: int, stride: int = 1) -> np.ndarray:
    """Read-only strided view [N, window, ...] of ``array`` [T, ...]; no data is copied."""
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be >= 1, got {window}, {stride}")
    array = np.asarray(array)
    n = n_windows(array.shape[0], window, stride)
    step = array.strides[0]
    return np.lib.stride_tricks.as_strided(
        array,
        shape=(n, window) + array.shape[1:],
        strides=(step * stride, step) + array.strides[1:],
        writeable=False,
    )


def window_to_sample_scores(
    window_scores: np.ndarray,
    n_samples: int,
    window: int,
    stride: int = 1,
    how: str = "max",
) -> np.ndarray:
    """Map scores of windows (window i covers rows [i*stride, i*stride+window)) back to rows.

    ``window_scores`` is [N] or [N, C]; the result is float32 [n_samples] or [n_samples, C].
    A row gets the max (or mean) of the scores of every window covering it, NaN if none does.
    """
    # max works in float32 (no rounding at stake); mean sums in float64
    scores = np.asarray(window_scores, dtype=np.float32 if how == "max" else np.float64)
    n = scores.shape[0]
    out_shape = (n_samples,) + scores.shape[1:]
    if n == 0:
        return np.full(out_shape, np.nan, dtype=np.float32)
    if (n - 1) * stride + window > n_samples:
        raise ValueError(f"{n} windows of {window} (stride {stride}) overrun {n_samples} samples")
    if how == "max":
        out = np.full(out_shape, np.nan, dtype=np.float32)
        # offset k of every window lands on rows k, k+stride, ...: one vectorised pass per offset
        for k in range(window):
            rows = out[k : k + (n - 1) * stride + 1 : stride]
            np.fmax(rows, scores, out=rows)
        return out
    if how == "mean":
        t = np.arange(n_samples)
        lo = np.clip(-((window - 1 - t) // stride), 0, None)  # ceil((t - window + 1) / stride)
        hi = np.minimum(t // stride, n - 1)
        covered = hi >= lo
        csum = np.concatenate([np.zeros((1,) + scores.shape[1:]), np.cumsum(scores, axis=0)])
        lo_c, hi_c = np.where(covered, lo, 0), np.where(covered, hi, 0)
        count = (hi_c - lo_c + 1).astype(np.float64)
        total = csum[hi_c + 1] - csum[lo_c]
        mean = total / count.reshape((-1,) + (1,) * (scores.ndim - 1))
        mean[~covered] = np.nan
        return mean.astype(np.float32)
    raise ValueError(f"how must be 'max' or 'mean', got {how!r}")


def labeled_window_mask(
    row_flags: np.ndarray, window: int, stride: int = 1, starts: np.ndarray | None = None
) -> np.ndarray:
    """bool [N]: whether each window (all of them, or those at ``starts``) holds a flagged row."""
    flags = np.asarray(row_flags).astype(bool)
    csum = np.concatenate([[0], np.cumsum(flags, dtype=np.int64)])
    if starts is None:
        starts = np.arange(n_windows(len(flags), window, stride), dtype=np.int64) * stride
    return (csum[starts + window] - csum[starts]) > 0


# ---------------------------------------------------------------------------------- scaling
#: largest scaled value (in IQRs from the median) a model reads: a reading farther out is this.
#: Its square summed over any window (1e24 x rows x columns) stays well within float32, so
#: window errors, PCA variances and neighbour distances stay finite; no reading of a channel
#: within a trillion IQRs of its median changes.
SCALED_LIMIT = 1e12
_F32_MAX = float(np.finfo(np.float32).max)
_HALF_F32 = _F32_MAX / 2
#: a median at least this large (in magnitude) can overflow float32 in ``reading - median``;
#: below it the difference of finite float32 numbers exceeds float32's largest value by under
#: half its last unit (2**103, about 1e31), so it rounds to that value, never to inf
_WIDE_MEDIAN = 1e30


@dataclass
class RobustStats:
    """Median and IQR per input column (float32); IQR 0 (or NaN: no nominal reading) is stored
    as 1, an IQR beyond float32 (quartiles near -3.4e38 and +3.4e38) as float32's largest value.

    Quartiles are interpolated in the input's dtype (numpy's), except in a column holding a
    reading beyond half float32's range: there the difference of two float32 readings can
    overflow float32 (the median of -3e38 and 3e38 came out -inf), so that column's quartiles
    are computed in float64. Any other column's numbers are the same as before, bit for bit
    (float64 would move about one column in a hundred by a float32 ulp)."""

    median: np.ndarray
    iqr: np.ndarray

    @classmethod
    def fit(cls, inputs: np.ndarray, keep: np.ndarray, *, source: str = "") -> RobustStats:
        keep = np.flatnonzero(np.asarray(keep, dtype=bool))
        if len(keep) == 0:
            why = (
                "the training range is empty (see data.split_date / data.val_days)"
                if len(inputs) == 0
                else f"all {len(inputs)} training rows carry a label (anomaly, rare event, "
                "gap or invalid)"
            )
            raise ESAInputError(
                f"no nominal (unlabeled) training rows to fit the scaler on: {why}",
                path=source or None,
            )
        # one column at a time: a few MB of temporaries instead of copies of the whole array
        q = np.empty((3, inputs.shape[1]))
        for j in range(inputs.shape[1]):
            col = inputs[keep, j]
            nan = np.isnan(col)
            if col.dtype.itemsize < 8 and np.abs(col).max(initial=0, where=~nan) > _HALF_F32:
                col = col.astype(np.float64)
            pct = np.nanpercentile if nan.any() else np.percentile
            q[:, j] = pct(col, [25, 50, 75])
        q25, q50, q75 = q
        with np.errstate(invalid="ignore"):  # inf - inf (no reader leaves inf): NaN, so 1
            iqr = q75 - q25  # float64: finite for any float32 quartiles
        iqr = np.where(np.isfinite(iqr) & (iqr != 0), np.minimum(iqr, _F32_MAX), 1.0)
        median = np.nan_to_num(np.clip(q50, -_F32_MAX, _F32_MAX))
        return cls(median=median.astype(np.float32), iqr=iqr.astype(np.float32))


def mission_inputs(mission: Mission, inputs: str, n_telecommands: int | None = None) -> np.ndarray:
    """float32 [T, C (+K)]: values, then telecommands (zero-padded to ``n_telecommands``)."""
    if inputs not in INPUT_MODES:
        raise ESAInputError(f"inputs must be one of {INPUT_MODES}", column="inputs", value=inputs)
    values = np.asarray(mission.values, dtype=np.float32)
    if inputs == "values":
        return values
    tc = mission.telecommands
    k = tc.shape[1] if n_telecommands is None else n_telecommands
    if tc.shape[1] > k:
        raise ESAInputError(
            f"{tc.shape[1]} telecommand columns, the model was built for {k}", path=mission.name
        )
    out = np.zeros((len(values), values.shape[1] + k), dtype=np.float32)
    out[:, : values.shape[1]] = values
    out[:, values.shape[1] : values.shape[1] + tc.shape[1]] = tc
    return out


# what ``detrend`` subtracts: the trailing mean; the trailing median (an event shorter than
# half the span does not move it, so the rows after a long event are not offset by it); or the
# trailing mean of the values clipped to the span of rows shortly before each (``clip_wild``:
# one wild reading does not offset the day after it, at about four times the mean's cost)
DETREND_STATS = ("mean", "median", "clipped_mean")
# clipped_mean: a value enters the mean clipped to [low - WIDEN * spread, high + WIDEN * spread],
# low / high / spread the min / max / max - min of the CLIP_REFERENCE rows that end CLIP_GAP
# rows before it, so a burst of up to CLIP_GAP + 1 wild rows is clipped whole, and a lasting
# step enters the mean CLIP_GAP + 1 rows late
CLIP_REFERENCE, CLIP_GAP, CLIP_WIDEN = 30, 10, 1.0


def check_detrend_stat(value: str) -> str:
    """``value`` if it is one of ``DETREND_STATS``, else an ``ESAInputError`` naming it."""
    if value not in DETREND_STATS:
        raise ESAInputError(f"choose one of {DETREND_STATS}", column="detrend_stat", value=value)
    return value


def detrend_history(detrend: int | None, statistic: str = "mean", row: bool = False) -> int:
    """Rows before a row that its detrended value reads (0 without ``detrend``): the trailing
    window's ``detrend - 1``, and for ``clipped_mean`` the rows clipping its first row reads;
    ``row``: the row itself counted too."""
    if not detrend:
        return 0
    extra = CLIP_REFERENCE + CLIP_GAP if statistic == "clipped_mean" else 0
    return int(detrend) - 1 + extra + int(row)


def clip_wild(col: np.ndarray) -> np.ndarray:
    """float64 ``col`` with each value clipped to the span of the ``CLIP_REFERENCE`` rows ending
    ``CLIP_GAP`` rows before it, widened by ``CLIP_WIDEN`` spans on each side (causal; NaN rows
    left out of the spans and kept NaN; a row with no earlier finite value is not clipped)."""
    s = pd.Series(col)
    rows = s.rolling(CLIP_REFERENCE, min_periods=1)
    high = rows.max().shift(CLIP_GAP + 1).to_numpy()
    low = rows.min().shift(CLIP_GAP + 1).to_numpy()
    spread = CLIP_WIDEN * (high - low)
    clipped = np.fmin(np.fmax(col, low - spread), high + spread)  # a NaN bound clips nothing
    return np.where(np.isnan(col), col, clipped)


def detrend_columns(
    x: np.ndarray, span: int, n_columns: int | None = None, statistic: str = "mean"
) -> np.ndarray:
    """Subtract from the first ``n_columns`` columns of ``x`` [T, C] their trailing mean (or
    median, or clipped mean: ``statistic``), in place.

    Row t gets ``x[t] - mean(x[max(0, t - span + 1) : t + 1])`` (causal: the row itself and the
    ``span - 1`` before it; an expanding window while fewer rows exist). NaN rows are left out of
    the means (a window of NaN only gives NaN). Means: cumulative sums in float64, one column at
    a time, O(T·C) time, O(T) temporary memory; ``clipped_mean`` averages ``clip_wild`` values
    instead (the row itself is subtracted from unclipped); medians: pandas' rolling median,
    O(T·C·log span) (about ten times the mean's time). Returns ``x``.
    """
    if span < 1:
        raise ESAInputError("detrend must be >= 1 rows", column="detrend", value=span)
    check_detrend_stat(statistic)
    n_columns = x.shape[1] if n_columns is None else n_columns
    t = len(x)
    if t == 0:
        return x
    if statistic == "median":
        for j in range(n_columns):
            col = x[:, j].astype(np.float64)
            _store(x[:, j], col - pd.Series(col).rolling(span, min_periods=1).median().to_numpy())
        return x
    lo = np.maximum(np.arange(t) - span + 1, 0)  # first row of each trailing window
    hi = np.arange(1, t + 1)
    for j in range(n_columns):
        col = x[:, j].astype(np.float64)
        finite = np.isfinite(col)
        ref = col[finite][0] if finite.any() else 0.0  # a nearby origin keeps the sums small
        src = clip_wild(col) if statistic == "clipped_mean" else col
        total = np.concatenate([[0.0], np.cumsum(np.where(finite, src - ref, 0.0))])
        count = np.concatenate([[0], np.cumsum(finite, dtype=np.int64)])
        n = count[hi] - count[lo]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = (total[hi] - total[lo]) / n + ref
        _store(x[:, j], col - mean)  # NaN stays NaN (scale() turns it into 0)
    return x


def _store(column: np.ndarray, values: np.ndarray) -> None:
    """Write the float64 ``values`` into ``column`` (of ``x``'s dtype, float32 as a rule): a
    finite value beyond the dtype's range (a detrended reading near 3e38 after one near -3e38:
    6e38) as its largest value of the same sign, not inf; one below its smallest normal as
    numpy casts it (subnormal or 0), without an underflow error. Within range: the plain cast.
    Not refused: scaled and clipped to ``SCALED_LIMIT`` IQRs, the largest value is the true
    value's model input on any column of IQR under 3.4e26, and keeps its sign and order above."""
    if column.dtype.kind == "f" and column.dtype.itemsize < values.dtype.itemsize:
        top = float(np.finfo(column.dtype).max)
        big = np.abs(values) > top  # NaN: False
        if big.any():
            big &= np.isfinite(values)  # an inf reading stays inf, as before
            values[big] = np.copysign(top, values[big])
    with np.errstate(under="ignore"):
        column[...] = values


def model_inputs(
    mission: Mission,
    inputs: str,
    n_telecommands: int | None = None,
    detrend: int | None = None,
    detrend_stat: str = "mean",
) -> np.ndarray:
    """float32 [T, n_inputs] as the network sees them before scaling (datamodule and scoring).

    ``mission_inputs``, then with ``detrend`` the value columns minus their trailing mean (or
    median: ``detrend_stat``) over ``detrend`` rows (``detrend_columns``); telecommand columns
    are never detrended.
    """
    x = mission_inputs(mission, inputs, n_telecommands)
    if not detrend:
        return x
    if np.shares_memory(x, mission.values):
        x = x.copy()
    return detrend_columns(x, int(detrend), mission.values.shape[1], detrend_stat)


def scaled_window_inputs(
    mission: Mission,
    hparams: Any,
    median: np.ndarray,
    iqr: np.ndarray,
    history: int = 0,
) -> tuple[np.ndarray, int]:
    """(float32 inputs [max(T - history, window), n_inputs], rows padded in front) of a window
    model with ``hparams`` (``inputs``, ``n_inputs``, ``n_outputs``, ``detrend``, ``window``):
    ``model_inputs`` scaled with the model's ``median`` / ``iqr``, the first ``history`` rows
    left out after detrending (they only give the later rows' trailing means), a range shorter
    than one window padded in front by repeating its first row. A mission whose input columns
    differ from the model's is refused, naming it."""
    n_inputs = hparams["n_inputs"]
    x = model_inputs(
        mission,
        hparams["inputs"],
        n_inputs - hparams["n_outputs"],
        hparams.get("detrend"),
        hparams.get("detrend_stat", "mean"),  # older artifacts: the mean
    )
    if x.shape[1] != n_inputs:
        raise ESAInputError(
            f"mission has {x.shape[1]} input columns, the model expects {n_inputs}",
            path=mission.name,
        )
    x = x[history:]
    x = scale(x, median, iqr, in_place=not np.shares_memory(x, mission.values))
    pad = max(0, hparams["window"] - len(x)) if len(x) else 0
    if pad:
        x = np.concatenate([np.repeat(x[:1], pad, axis=0), x])
    return x, pad


def scale(
    inputs: np.ndarray, median: np.ndarray, iqr: np.ndarray, *, in_place: bool = False
) -> np.ndarray:
    """(inputs - median) / iqr as float32 (a new array unless ``in_place``), clipped to
    +-``SCALED_LIMIT``; NaN becomes 0.

    A reading far beyond its column's spread (1e30 on a channel of IQR 1e-9) overflowed float32
    in the division (inf); one of 1e30 IQRs did not, but its square did in the window errors:
    either made every window error holding it inf, or failed the PCA fit. Such a reading is the
    limit now. A reading near 3e38 on a column of median near -3e38 overflowed float32 in the
    subtraction (inf, so the limit) though it is a couple of IQRs out (an IQR near float32's
    largest): where the float32 formula gives inf from a finite reading on a column of median
    beyond ``_WIDE_MEDIAN``, the value is computed in float64 (then clipped, cast); every other
    value within the limit is computed as before, bit for bit. A result below float32's normal
    range is numpy's (subnormal or 0), with no underflow error."""
    out = inputs if in_place else np.empty(inputs.shape, dtype=np.float32)
    # columns whose difference to the median can overflow float32: recomputed in float64 where
    # it did (a finite float32 reading minus a median under 1e30 in magnitude stays finite)
    median64 = np.broadcast_to(np.asarray(median, dtype=np.float64), inputs.shape[-1:])
    wide = np.flatnonzero(np.abs(median64) >= _WIDE_MEDIAN)
    for lo in range(0, len(inputs), 1 << 16):  # row blocks: temporaries stay a few MB
        rows = slice(lo, lo + (1 << 16))
        block = out[rows]
        # a copy: in place, the subtraction overwrites the readings
        exact = inputs[rows][..., wide].astype(np.float64) if len(wide) else None
        # beyond float32: inf, clipped to the limit below; below float32's normal range: as numpy
        with np.errstate(over="ignore", under="ignore"):
            np.subtract(inputs[rows], median, out=block, casting="same_kind")
            block /= iqr
        if exact is not None:
            _rescale_overflowed(block, exact, wide, median64, iqr)
        np.clip(block, -SCALED_LIMIT, SCALED_LIMIT, out=block)
        np.copyto(block, 0.0, where=np.isnan(block))
    return out


def _rescale_overflowed(
    block: np.ndarray, exact: np.ndarray, wide: np.ndarray, median: np.ndarray, iqr: np.ndarray
) -> None:
    """Where the float32 scaling of ``block``'s columns ``wide`` gave inf from a finite reading
    (``exact``: those columns' readings, float64; ``median``: float64, one per column), the
    float64 value clipped to the limit: the
    difference of a reading near 3e38 and a median near -3e38 overflowed float32, though it is
    a couple of IQRs (an IQR near float32's largest). Every other value is left as it is."""
    sub = block[..., wide]
    redo = np.isinf(sub) & np.isfinite(exact)
    if not redo.any():
        return
    m = median[wide]
    q = np.broadcast_to(np.asarray(iqr, dtype=np.float64), median.shape)[wide]
    scaled = np.clip((exact - m) / q, -SCALED_LIMIT, SCALED_LIMIT)  # float64: finite
    sub[redo] = scaled[redo]
    block[..., wide] = sub
