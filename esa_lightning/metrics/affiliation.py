"""Affiliation precision / recall (Huet et al., KDD 2022), computed for all zones at once.

Every ground-truth interval J owns an affiliation zone E: the part of the time axis closer to
J than to any other ground-truth interval (zone borders are the midpoints between neighbours,
the outer zones reach the ends of the range). Inside its zone:

- precision: mean over predicted points x in E of P(d(X, J) >= d(x, J)) for X uniform on E,
  i.e. ``Fbar(d) = 1 - (|J| + min(d, mL) + min(d, mR)) / |E|`` with ``mL``, ``mR`` the room
  left and right of J in E;
- recall: mean over true points y in J of P(|X - y| >= d(y, prediction in E)), i.e.
  ``1 - (min(d, y - e_min) + min(d, e_max - y)) / |E|``.

Both integrands are piecewise linear in position, so each piece integrates in closed form.
ESA-ADB's change: a zone with no prediction gets precision 0.5 (recall 0).
:func:`affiliation_zones` also returns the recall as ESA-ADB's code computes it (docs/metrics.md).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from esa_lightning.metrics.intervals import Intervals

NO_PREDICTION_PRECISION = 0.5
POINT_LENGTH = 1e-9  # in units of the evaluated range


def _int_min_up_to(d: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Closed form of the integral of min(u, m) for u from 0 to d."""
    return np.where(d <= m, 0.5 * d * d, m * d - 0.5 * m * m)


def _int_min_linear(u, v, fu, fv, gu, gv) -> np.ndarray:
    """Integral over [u, v] of min(f, g) for two linear functions given at both ends."""
    du, dv = fu - gu, fv - gv
    cross = du * dv < 0
    t = np.where(cross, du / np.where(cross, du - dv, 1.0), 0.0)
    c = u + t * (v - u)
    fc = fu + t * (fv - fu)
    gc = gu + t * (gv - gu)
    whole = (v - u) * np.minimum(fu + fv, gu + gv) / 2
    split = (c - u) * np.minimum(fu + fc, gu + gc) / 2 + (v - c) * np.minimum(fc + fv, gc + gv) / 2
    return np.where(cross, split, whole)


def zone_bounds(truth: Intervals, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Left and right borders of the affiliation zone of each (disjoint, sorted) interval."""
    mids = (truth.end[:-1] + truth.start[1:]) / 2
    return np.r_[lo, mids], np.r_[mids, hi]


def _split_by_zone(pred: Intervals, left: np.ndarray, right: np.ndarray):
    """Cut every predicted interval at the zone borders: (zone, start, end) of each piece."""
    cuts = left[1:]
    z0 = np.searchsorted(cuts, pred.start, side="right")
    z1 = np.searchsorted(cuts, pred.end, side="left")
    n = np.maximum(z1 - z0 + 1, 0)
    owner = np.repeat(np.arange(len(pred)), n)
    offset = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    zone = z0[owner] + offset
    a = np.maximum(pred.start[owner], left[zone])
    b = np.minimum(pred.end[owner], right[zone])
    keep = b > a
    return zone[keep], a[keep], b[keep]


class ZoneScores(NamedTuple):
    """Per ground-truth zone: precision, recall (paper) and recall as ESA-ADB's code pairs it."""

    precision: np.ndarray
    recall: np.ndarray
    recall_esa_adb: np.ndarray


def affiliation_per_zone(
    pred: Intervals, truth: Intervals, trange: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall probability (paper definition) of each ground-truth interval's zone.

    ``pred`` and ``truth`` are disjoint sorted sets of float intervals (points allowed) inside
    ``trange``.
    """
    z = affiliation_zones(pred, truth, trange)
    return z.precision, z.recall


def affiliation_zones(pred: Intervals, truth: Intervals, trange: tuple[float, float]) -> ZoneScores:
    """Zone precision, paper recall and ESA-ADB-reference recall, all in one pass.

    The reference recall differs only in zones holding several predicted pieces: there the
    reference drops the prediction cells that do not touch J and pairs the remaining pieces of
    J with the zone's predictions in order from the first one (``zip`` after filtering), so a
    piece of J is measured against a prediction other than its nearest one. A cell touching J
    in a single point takes a prediction and adds nothing.
    """
    lo, hi = float(trange[0]), float(trange[1])
    scale = hi - lo if hi > lo else 1.0
    # borders and pairing decisions in the caller's units (exact for integer times), the
    # integrals on [0, 1] (better conditioned squares, same ratios). A one-sample interval
    # [t, t] has no length: give it a vanishing one, so that it keeps its weight (the scores
    # are continuous in the length, this is their limit)
    tiny = POINT_LENGTH * scale
    ps, pe = pred.start - lo, pred.end - lo
    pe = np.maximum(pe, ps + tiny)
    rjs, rje = truth.start - lo, truth.end - lo
    rje = np.maximum(rje, rjs + tiny)
    n = len(rjs)
    rleft, rright = zone_bounds(Intervals(rjs, rje), 0.0, hi - lo)
    zone, ra_, rb_ = _split_by_zone(Intervals(ps, pe), rleft, rright)
    first = np.ones(len(zone), dtype=bool)
    first[1:] = zone[1:] != zone[:-1]
    last = np.ones(len(zone), dtype=bool)
    last[:-1] = zone[1:] != zone[:-1]
    mids = (rb_[:-1] + ra_[1:]) / 2
    rcell_lo = np.where(first, rleft[zone], np.r_[0.0, mids][: len(zone)])
    rcell_hi = np.where(last, rright[zone], np.r_[mids, 0.0][: len(zone)])

    # reference pairing: in each zone, cells wholly before J are dropped; the k-th cell
    # touching J is paired with the k-th prediction piece of the zone
    before = rcell_hi < rjs[zone]
    touching = ~before & ~(rcell_lo > rje[zone])
    skipped = np.bincount(zone, weights=before, minlength=n).astype(np.int64)
    n_touch = np.bincount(zone, weights=touching, minlength=n).astype(np.int64)
    zone_first = np.cumsum(np.bincount(zone, minlength=n)) - np.bincount(zone, minlength=n)
    rank = np.arange(len(zone)) - zone_first[zone]
    paired = np.flatnonzero(rank < n_touch[zone])  # prediction pieces that get a cell
    paired_cell = paired + skipped[zone[paired]]

    a, b = ra_ / scale, rb_ / scale
    js, je = rjs / scale, rje / scale
    left, right = rleft / scale, rright / scale
    cell_lo, cell_hi = rcell_lo / scale, rcell_hi / scale
    width = right - left

    # ---- precision: integral of Fbar(d(x, J)) over each piece, split before / in / after J
    zs, ze, w = js[zone], je[zone], width[zone]
    m_left, m_right, lj = zs - left[zone], right[zone] - ze, ze - zs

    def outside(dmin: np.ndarray, dmax: np.ndarray) -> np.ndarray:
        length = dmax - dmin
        h = _int_min_up_to
        swept = h(dmax, m_left) + h(dmax, m_right) - h(dmin, m_left) - h(dmin, m_right)
        return length - (lj * length + swept) / w

    inside = np.maximum(np.minimum(b, ze) - np.maximum(a, zs), 0.0)
    lb = np.maximum(np.minimum(b, zs), a)  # part before J is [a, lb]
    ra = np.minimum(np.maximum(a, ze), b)  # part after J is [ra, b]
    piece_p = inside + outside(zs - lb, zs - a) + outside(ra - ze, b - ze)
    covered = np.bincount(zone, weights=b - a, minlength=n)
    summed = np.bincount(zone, weights=piece_p, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(covered > 0, summed / covered, NO_PREDICTION_PRECISION)

    # ---- recall: integral over the part of J in a cell [c0, c1] of the recall probability
    # with respect to one predicted piece [pa, pb] of the zone
    el, er = left[zone], right[zone]

    def near(u0, v0, pivot, sign, zs, ze, el, er, w):
        """Integral over [u0, v0] ∩ J of the recall probability, d = sign * (y - pivot)."""
        u, v = np.maximum(u0, zs), np.minimum(v0, ze)
        v = np.maximum(u, v)
        du, dv = sign * (u - pivot), sign * (v - pivot)
        lost = _int_min_linear(u, v, du, dv, u - el, v - el)
        lost = lost + _int_min_linear(u, v, du, dv, er - u, er - v)
        return (v - u) - lost / w

    def cell_recall(c0, c1, pa, pb, zs, ze, el, er, w):
        hit = np.maximum(np.minimum(np.minimum(pb, c1), ze) - np.maximum(np.maximum(pa, c0), zs), 0)
        before_p = near(c0, np.minimum(pa, c1), pa, -1.0, zs, ze, el, er, w)
        after_p = near(np.maximum(pb, c0), c1, pb, 1.0, zs, ze, el, er, w)
        return hit + before_p + after_p

    # paper: each piece with its own cell (the part of the zone nearer to it than to others)
    piece_r = cell_recall(cell_lo, cell_hi, a, b, zs, ze, el, er, w)
    recall = np.bincount(zone, weights=piece_r, minlength=n) / (je - js)
    # reference: piece q with the cell found above
    zq = zone[paired]
    piece_ref = cell_recall(
        cell_lo[paired_cell],
        cell_hi[paired_cell],
        a[paired],
        b[paired],
        js[zq],
        je[zq],
        left[zq],
        right[zq],
        width[zq],
    )
    recall_ref = np.bincount(zq, weights=piece_ref, minlength=n) / (je - js)
    return ZoneScores(precision, np.clip(recall, 0.0, 1.0), np.clip(recall_ref, 0.0, 1.0))


# ---------------------------------------------------------------------------------------------
# ESA-ADB reference arithmetic. ESA-ADB hands the affiliation package epoch nanoseconds as
# Python ints; zone borders are then Python floats (int / 2), predicted pieces cut at a border
# carry a float end, and every closed form mixes exact integer arithmetic (squares of ~1.6e18
# ints are exact big ints) with float64 arithmetic on ~1.6e18 values (cancellation of ~1e-5 in
# the scores). To return its numbers to the last digits, the functions below perform the same
# operations on the same Python scalar types, in the same order, one interval at a time (the
# number of intervals is small; the samples never enter here).
# ---------------------------------------------------------------------------------------------
def _ref_meet(i, j):
    """Intersection of two intervals, None when empty or a single point."""
    if i is None or j is None:
        return None
    lo, hi = max(i[0], j[0]), min(i[1], j[1])
    return None if lo >= hi else (lo, hi)


def _ref_three(i, j):
    """(part of i before j, i ∩ j, part of i after j), None for an empty part."""
    if i is None:
        return None, None, None
    mid = _ref_meet(i, j)
    if i == mid:
        return None, mid, None
    if i[1] <= j[0]:
        return i, mid, None
    if i[0] >= j[1]:
        return None, mid, i
    if i[0] <= j[0] and i[1] >= j[1]:
        return (i[0], mid[0]), mid, (mid[1], i[1])
    if i[0] <= j[0]:
        return (i[0], mid[0]), mid, None
    if i[1] >= j[1]:
        return None, mid, (mid[1], i[1])
    raise ValueError("interval cut: unexpected configuration")


def _ref_borders(events, zone):
    """Affiliation zone of each event of ``events`` (sorted, disjoint) within ``zone``."""
    n = len(events)
    out = []
    for k in range(n):
        prev_end = 2 * min(zone) - events[0][0] if k == 0 else events[k - 1][1]
        next_start = 2 * max(zone) - events[n - 1][1] if k == n - 1 else events[k + 1][0]
        out.append(((prev_end + events[k][0]) / 2, (events[k][1] + next_start) / 2))
    return out


def _ref_cut(j, at):
    """Split j at ``at``: (part before, part after)."""
    if j is None:
        return None, None
    if at >= max(j):
        return j, None
    if at <= min(j):
        return None, j
    return (min(j), at), (at, max(j))


def _ref_precision_outside(i, j, e):
    """Integral over i (outside j) of the precision probability, reference closed form."""
    e0, e1, j0, j1, i0, i1 = min(e), max(e), min(j), max(j), min(i), max(i)
    d_lo = max(i0 - j1, j0 - i1)
    d_hi = max(i1 - j1, j0 - i0)
    m = min(j0 - e0, e1 - j1)
    sq = min(d_hi, m) ** 2 - min(d_lo, m) ** 2
    flat = max(d_hi, m) - max(d_lo, m)
    clipped = (1 / 2) * sq + m * flat
    linear = (1 / 2) * (d_hi**2 - d_lo**2)
    rest = (j1 - j0) * (i1 - i0)
    return (i1 - i0) - (1 / (e1 - e0)) * (clipped + linear + rest)


def _ref_recall_outside(i, j, e):
    """Integral over j (outside i) of the recall probability, reference closed form."""
    pivot = min(i) if max(j) <= min(i) else max(i)
    e0, e1 = min(e), max(e)
    if pivot <= e0 or pivot >= e1:
        return 0
    first, second = _ref_cut(j, (e0 + e1) / 2)
    near_e0, near_p0 = _ref_cut(first, (e0 + pivot) / 2)
    near_p1, near_e1 = _ref_cut(second, (e1 + pivot) / 2)
    nan = math.nan
    b0, b1 = (min(near_e0), max(near_e0)) if near_e0 is not None else (nan, nan)
    c0, c1 = (min(near_p0), max(near_p0)) if near_p0 is not None else (nan, nan)
    d0, d1 = (min(near_p1), max(near_p1)) if near_p1 is not None else (nan, nan)
    f0, f1 = (min(near_e1), max(near_e1)) if near_e1 is not None else (nan, nan)
    if pivot >= max(j):
        parts = [
            (pivot - e0) * (b1 - b0),
            2 * pivot * (c1 - c0) - (c1**2 - c0**2),
            2 * pivot * (d1 - d0) - (d1**2 - d0**2),
            (e1 + pivot) * (f1 - f0) - (f1**2 - f0**2),
        ]
    elif pivot <= min(j):
        parts = [
            (b1**2 - b0**2) - (e0 + pivot) * (b1 - b0),
            (c1**2 - c0**2) - 2 * pivot * (c1 - c0),
            (d1**2 - d0**2) - 2 * pivot * (d1 - d0),
            (e1 - pivot) * (f1 - f0),
        ]
    else:
        raise ValueError("recall pivot inside the interval")
    total = sum([p for p in parts if not math.isnan(p)])
    return (max(j) - min(j)) - (1 / (max(e) - min(e))) * total


def _ref_precision_integral(i, j, e):
    before, mid, after = _ref_three(i, j)
    out = 0 if before is None else _ref_precision_outside(before, j, e)
    out = out + (0 if mid is None else max(mid) - min(mid))
    return out + (0 if after is None else _ref_precision_outside(after, j, e))


def _ref_recall_integral(i, j, e):
    before, mid, after = _ref_three(j, i)
    out = 0 if before is None else _ref_recall_outside(i, before, e)
    out = out + (0 if mid is None else max(mid) - min(mid))
    return out + (0 if after is None else _ref_recall_outside(i, after, e))


def _ref_in_zone(events, zone):
    """Events not wholly outside ``zone`` (touching counts), cut to it (None when a point)."""
    return [_ref_meet(x, zone) for x in events if not (x[1] < zone[0] or x[0] > zone[1])]


def affiliation_reference(pred: list, truth: list, trange: tuple) -> tuple[list, list]:
    """Per ground-truth zone precision and recall, with ESA-ADB's arithmetic.

    ``pred`` and ``truth``: sorted disjoint ``(start, stop)`` pairs of Python numbers with
    ``start < stop`` (ESA-ADB: epoch ns as ints); ``trange``: ``(start, stop)`` around them.
    Zones are scanned with a moving window over the predictions (both lists are sorted).
    """
    zones = _ref_borders(truth, trange)
    precision, recall = [], []
    first = 0
    for j, e in zip(truth, zones, strict=True):
        while first < len(pred) and pred[first][1] < e[0]:
            first += 1
        last = first
        while last < len(pred) and pred[last][0] <= e[1]:
            last += 1
        pieces = _ref_in_zone(pred[first:last], e)
        if all(p is None for p in pieces):
            precision.append(NO_PREDICTION_PRECISION)
        else:
            num = sum([_ref_precision_integral(p, j, e) for p in pieces if p is not None])
            den = sum([0 if p is None else p[1] - p[0] for p in pieces])
            precision.append(num / den)
        kept = [p for p in pieces if p is not None]
        if not kept:
            recall.append(0)
            continue
        cells = [c for c in (_ref_in_zone([j], cell) for cell in _ref_borders(kept, e)) if c]
        total = sum([_ref_recall_integral(p, c[0], e) for p, c in zip(kept, cells, strict=False)])
        recall.append(total / (j[1] - j[0]))
    return precision, recall
