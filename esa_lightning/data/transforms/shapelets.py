"""Shapelet kernels mined from labelled anomalies, and their window features (§4.2).

Response of a kernel ``k`` (z-normalised, length ``L``) on a segment: over the positions
``p = 0, s, 2s, ...`` (``s = max(1, int(0.02 * L))``) where ``L`` samples fit, the value
``dot(k, z(x[p:p+L])) / L`` with ``z(v) = (v - mean(v)) / std(v)`` (population std; a flat
sub-window with ``std <= 1e-8`` z-normalises to zeros). For a z-normalised kernel this is the
Pearson correlation, so responses lie in [-1, 1]. The max response (and, for the features, the
min response) over the positions summarises the segment.

Mining (``mine_shapelets``):

- anomalies = runs of ``labels == 1`` inside ``allowed``; each gets a *pool*: ``pool_len``
  samples centred on the run's middle, clipped to the run of ``allowed`` around that middle (so
  no sample outside the shapelet mask is read); pools shorter than ``min_len`` are dropped.
- candidates = the z-normalised subsequences of every length ``min_len..max_len`` at every
  start in every pool; when there are more than ``max_candidates``, a seeded uniform subsample
  of ``max_candidates`` of them is scored (bounds the work on channels with many anomalies).
- nominal segments = up to ``nominal_segments`` segments of ``pool_len`` samples, entirely
  inside ``allowed`` and at least ``nominal_gap`` samples away from every labelled anomaly
  (seeded uniform choice of starts when more are eligible).
- score = max response on the anomaly pools other than the candidate's own pool minus the max
  response on the nominal segments; with no usable other pool the first term is -1 (the lowest
  response), with no nominal segment the second term is -1.
- keep candidates with score >= the ``percentile``-th percentile of all scores and score > 0;
  greedy pick by decreasing score: first the best candidate of each length not picked yet,
  then the best remaining ones.
- the kernel list always has ``n_kernels`` entries: any missing kernels (no anomaly in the
  mask, only one pool, nothing surviving) are random z-normalised nominal subsequences,
  deterministic by ``seed``.
- non-finite values of ``x`` are read as 0 while mining (fill gaps before calling).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from esa_lightning.errors import ESAInputError
from esa_lightning.metrics.intervals import runs

FLAT_STD = 1e-8
# starts per block in ``_sliding_responses``: a [4096, L] float64 block stays in the CPU cache,
# about 4x faster than 65536-row blocks on 2 cores (benchmarks/full_scale.py profile)
RESPONSE_CHUNK = 4096


def position_stride(length: int) -> int:
    """Stride between kernel positions inside a segment: max(1, int(0.02 * L))."""
    return max(1, int(0.02 * length))


def znorm(v: np.ndarray) -> np.ndarray:
    """Z-normalise the last axis (float64); flat rows become zeros."""
    v = np.asarray(v, dtype=np.float64)
    mean = v.mean(axis=-1, keepdims=True)
    std = v.std(axis=-1, keepdims=True)
    safe = np.where(std > FLAT_STD, std, 1.0)
    return np.where(std > FLAT_STD, (v - mean) / safe, 0.0)


def _zdot(sub: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """Responses of kernels [m, L] on sub-windows [n, L]: dot(k, z(sub)) / L -> [n, m]."""
    length = sub.shape[-1]
    centered = np.array(sub, dtype=np.float64)  # one contiguous copy, centred in place
    centered -= centered.mean(axis=-1, keepdims=True)
    std = np.sqrt(np.einsum("ij,ij->i", centered, centered) / length)
    dots = centered @ np.asarray(kernels, dtype=np.float64).T
    flat = std <= FLAT_STD
    dots *= np.where(flat, 0.0, 1.0 / (np.where(flat, 1.0, std) * length))[:, None]
    return dots


def _by_length(lengths: list[int]) -> dict[int, list[int]]:
    """Kernel indices grouped by kernel length (one matrix product per length)."""
    groups: dict[int, list[int]] = {}
    for i, length in enumerate(lengths):
        groups.setdefault(int(length), []).append(i)
    return groups


def _sliding_responses(x: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """Response of each kernel [m, L] at every start of ``x``: float64 [T - L + 1, m]."""
    length = kernels.shape[1]
    view = sliding_window_view(x, length)
    out = np.empty((view.shape[0], kernels.shape[0]), dtype=np.float64)
    for lo in range(0, view.shape[0], RESPONSE_CHUNK):  # cache-sized blocks of starts
        hi = min(view.shape[0], lo + RESPONSE_CHUNK)
        out[lo:hi] = _zdot(view[lo:hi], kernels)
    return out


def shapelet_feature_names(n_kernels: int) -> list[str]:
    """Column names of ``shapelet_features``: per kernel its max then its min response."""
    return [f"shapelet_{i}_{stat}" for i in range(n_kernels) for stat in ("max", "min")]


def shapelet_features(
    x: np.ndarray, kernels: list[np.ndarray], window: int = 50, step: int = 10
) -> tuple[np.ndarray, list[str]]:
    """Max and min response of every kernel inside each segmentation window.

    Returns (float32 [n_windows, 2 * len(kernels)], names); columns are kernel 0 max, kernel 0
    min, kernel 1 max, ... Windows follow ``segmentation.segment_features`` (same count and
    starts). A kernel longer than ``window`` is refused.
    """
    x = np.asarray(x)
    if x.ndim != 1:
        raise ESAInputError("shapelet_features takes one channel, a 1-D array", value=x.shape)
    if window < 1 or step < 1:
        raise ESAInputError("window and step must be at least 1", value=(window, step))
    n_w = 0 if x.shape[0] < window else (x.shape[0] - window) // step + 1
    out = np.zeros((n_w, 2 * len(kernels)), dtype=np.float32)
    names = shapelet_feature_names(len(kernels))
    if n_w == 0:
        return out, names
    x64 = x.astype(np.float64)
    for length, idx in _by_length([len(k) for k in kernels]).items():
        if length > window:
            raise ESAInputError(
                f"shapelet kernel of {length} samples is longer than the window", value=window
            )
        stack = np.stack([np.asarray(kernels[i], dtype=np.float64) for i in idx])
        resp = _sliding_responses(x64, stack)  # [T - L + 1, m]
        n_pos = window - length + 1
        per_window = sliding_window_view(resp, n_pos, axis=0)[::step][:n_w]  # [n_w, m, n_pos]
        per_window = per_window[..., :: position_stride(length)]
        cols = np.asarray(idx)
        out[:, 2 * cols] = per_window.max(axis=-1)
        out[:, 2 * cols + 1] = per_window.min(axis=-1)
    return out, names


def _runs(mask: np.ndarray) -> np.ndarray:
    """[n, 2] start, stop (exclusive) of the runs of True in a 1-D bool mask."""
    first, last = runs(mask)
    return np.stack([first, last + 1], axis=1)


def _anomaly_pools(labels: np.ndarray, allowed: np.ndarray, pool_len: int) -> np.ndarray:
    """[n_pools, 2] start, stop of the pool around each anomaly run inside ``allowed``."""
    events = _runs(labels & allowed)
    if len(events) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    allowed_runs = _runs(allowed)
    centre = (events[:, 0] + events[:, 1] - 1) // 2
    run = np.searchsorted(allowed_runs[:, 0], centre, side="right") - 1
    lo_bound, hi_bound = allowed_runs[run, 0], allowed_runs[run, 1]
    start = np.maximum(centre - pool_len // 2, lo_bound)
    stop = np.minimum(start + pool_len, hi_bound)
    start = np.maximum(stop - pool_len, lo_bound)
    return np.stack([start, stop], axis=1).astype(np.int64)


def _nominal_starts(
    labels: np.ndarray,
    allowed: np.ndarray,
    seg_len: int,
    gap: int,
    limit: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Sorted starts of up to ``limit`` nominal segments inside ``allowed``, ``gap`` away from
    every anomaly."""
    n = labels.shape[0]
    if n < seg_len:
        return np.zeros(0, dtype=np.int64)
    near = np.zeros(n + 1, dtype=np.int64)
    idx = np.flatnonzero(labels)
    np.add.at(near, np.maximum(idx - gap, 0), 1)
    np.add.at(near, np.minimum(idx + gap + 1, n), -1)
    ok = allowed & (np.cumsum(near[:n]) == 0)
    csum = np.concatenate([[0], np.cumsum(ok)])
    starts = np.flatnonzero(csum[seg_len:] - csum[:-seg_len] == seg_len)
    if len(starts) > limit:
        starts = np.sort(rng.choice(starts, size=limit, replace=False))
    return starts.astype(np.int64)


def _gather(x: np.ndarray, segments: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Sub-windows [n_pos, length] at the strided positions of every segment [n, 2], and the
    segment id of each row (segments too short for ``length`` contribute nothing)."""
    stride = position_stride(length)
    counts = np.maximum((segments[:, 1] - segments[:, 0] - length) // stride + 1, 0)
    seg_id = np.repeat(np.arange(len(segments)), counts)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    offset = (np.arange(seg_id.shape[0]) - first[seg_id]) * stride
    starts = segments[seg_id, 0] + offset
    return x[starts[:, None] + np.arange(length)], seg_id


def _max_per_segment(resp: np.ndarray, seg_id: np.ndarray, n_segments: int) -> np.ndarray:
    """Max over positions of responses [n_pos, m] grouped by (sorted) segment id ->
    [n_segments, m]; -inf for a segment without positions."""
    out = np.full((n_segments, resp.shape[1]), -np.inf)
    counts = np.bincount(seg_id, minlength=n_segments)
    present = counts > 0
    if present.any():
        first = np.concatenate([[0], np.cumsum(counts)[:-1]])[present]
        out[present] = np.maximum.reduceat(resp, first, axis=0)
    return out


def _score(
    x: np.ndarray,
    cands: np.ndarray,
    cand_pool: np.ndarray,
    pools: np.ndarray,
    nominal: np.ndarray,
) -> np.ndarray:
    """Score of candidates [m, L]: max response on the other pools - max on nominal segments."""
    length = cands.shape[1]
    sub, seg_id = _gather(x, pools, length)
    on_pools = _max_per_segment(_zdot(sub, cands), seg_id, len(pools))  # [n_pools, m]
    on_pools[cand_pool, np.arange(len(cand_pool))] = -np.inf  # not its own pool
    best_anomaly = np.maximum(on_pools.max(axis=0), -1.0)  # no other pool: the floor, -1
    if len(nominal):
        sub, seg_id = _gather(x, nominal, length)
        best_nominal = _max_per_segment(_zdot(sub, cands), seg_id, len(nominal)).max(axis=0)
    else:
        best_nominal = np.full(len(cand_pool), -1.0)  # nothing nominal to avoid: the floor
    return best_anomaly - best_nominal


def _candidates(
    pools: np.ndarray, min_len: int, max_len: int, max_candidates: int, rng: np.random.Generator
) -> np.ndarray:
    """[n, 3] (pool id, start, length) of candidate subsequences, subsampled to the cap."""
    rows = []
    for length in range(min_len, max_len + 1):  # ~11 lengths, each vectorised over pools
        n_starts = np.maximum(pools[:, 1] - pools[:, 0] - length + 1, 0)
        pool_id = np.repeat(np.arange(len(pools)), n_starts)
        first = np.concatenate([[0], np.cumsum(n_starts)[:-1]])
        start = pools[pool_id, 0] + np.arange(pool_id.shape[0]) - first[pool_id]
        rows.append(np.stack([pool_id, start, np.full_like(start, length)], axis=1))
    cands = np.concatenate(rows) if rows else np.zeros((0, 3), dtype=np.int64)
    if len(cands) > max_candidates:
        keep = np.sort(rng.choice(len(cands), size=max_candidates, replace=False))
        cands = cands[keep]
    return cands


def _greedy_pick(lengths: np.ndarray, scores: np.ndarray, n_kernels: int) -> list[int]:
    """Indices of picked candidates: best score first, lengths not picked yet preferred."""
    order = np.argsort(-scores, kind="stable")
    first_of_length = order[np.unique(lengths[order], return_index=True)[1]]
    first_of_length = first_of_length[np.argsort(-scores[first_of_length], kind="stable")]
    rest = order[~np.isin(order, first_of_length)]
    return [int(i) for i in np.concatenate([first_of_length, rest])[:n_kernels]]


def _random_kernels(
    x: np.ndarray,
    labels: np.ndarray,
    allowed: np.ndarray,
    count: int,
    min_len: int,
    max_len: int,
    gap: int,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """``count`` z-normalised random subsequences, from nominal allowed data when there is any."""
    kernels = []
    for _ in range(count):
        length = int(rng.integers(min_len, max_len + 1))
        starts = _nominal_starts(labels, allowed, length, gap, 1, rng)
        if len(starts) == 0:
            starts = _nominal_starts(labels, np.ones_like(allowed), length, 0, 1, rng)
        if len(starts) == 0:  # series shorter than the kernel: a flat (all-zero) kernel
            kernels.append(np.zeros(length, dtype=np.float32))
            continue
        kernels.append(znorm(x[starts[0] : starts[0] + length]).astype(np.float32))
    return kernels


def mine_shapelets(
    x: np.ndarray,
    labels: np.ndarray,
    allowed: np.ndarray | None = None,
    *,
    n_kernels: int = 10,
    min_len: int = 30,
    max_len: int = 40,
    pool_len: int = 50,
    nominal_segments: int = 1000,
    nominal_gap: int = 100,
    percentile: float = 75,
    max_candidates: int = 4000,
    seed: int = 0,
) -> list[np.ndarray]:
    """Mine ``n_kernels`` z-normalised float32 kernels (lengths ``min_len..max_len``) of one
    channel ``x`` [T] from its anomalies ``labels`` [T] (0/1) inside ``allowed`` [T] (the
    shapelet mask; None = everywhere). See the module docstring for the exact procedure."""
    x = np.asarray(x, dtype=np.float64)
    labels = np.asarray(labels) == 1
    if x.ndim != 1 or labels.shape != x.shape:
        raise ESAInputError("x and labels must be 1-D arrays of one length", value=x.shape)
    allowed = np.ones_like(labels) if allowed is None else np.asarray(allowed, dtype=bool)
    if allowed.shape != x.shape:
        raise ESAInputError("allowed mask must have the length of x", value=allowed.shape)
    if not 1 <= min_len <= max_len:
        raise ESAInputError("need 1 <= min_len <= max_len", value=(min_len, max_len))
    if not np.isfinite(x).all():
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    rng = np.random.default_rng(seed)

    pools = _anomaly_pools(labels, allowed, pool_len)
    pools = pools[pools[:, 1] - pools[:, 0] >= min_len]
    kernels: list[np.ndarray] = []
    if len(pools) >= 2:
        nominal_starts = _nominal_starts(
            labels, allowed, pool_len, nominal_gap, nominal_segments, rng
        )
        nominal = np.stack([nominal_starts, nominal_starts + pool_len], axis=1)
        cands = _candidates(pools, min_len, max_len, max_candidates, rng)
        scores = np.empty(len(cands))
        for length in np.unique(cands[:, 2]):  # one matmul per kernel length
            sel = np.flatnonzero(cands[:, 2] == length)
            sub = x[cands[sel, 1, None] + np.arange(length)]
            scores[sel] = _score(x, znorm(sub), cands[sel, 0], pools, nominal)
        keep = np.flatnonzero((scores >= np.percentile(scores, percentile)) & (scores > 0))
        for i in _greedy_pick(cands[keep, 2], scores[keep], n_kernels):
            _, start, length = cands[keep[i]]
            kernels.append(znorm(x[start : start + length]).astype(np.float32))
    missing = n_kernels - len(kernels)
    kernels += _random_kernels(x, labels, allowed, missing, min_len, max_len, nominal_gap, rng)
    return kernels
