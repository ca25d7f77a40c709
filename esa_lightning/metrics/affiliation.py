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
"""

from __future__ import annotations

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


def affiliation_per_zone(
    pred: Intervals, truth: Intervals, trange: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall probability of each ground-truth interval's zone.

    ``pred`` and ``truth`` are disjoint sorted sets of float intervals (points allowed) inside
    ``trange``.
    """
    lo, hi = float(trange[0]), float(trange[1])
    scale = hi - lo if hi > lo else 1.0
    # work on [0, 1]: better conditioned squares, same ratios
    # a one-sample interval [t, t] has no length: give it a vanishing one, so that it keeps its
    # weight (the scores are continuous in the length, this is their limit)
    p = Intervals((pred.start - lo) / scale, (pred.end - lo) / scale)
    p = Intervals(p.start, np.maximum(p.end, p.start + POINT_LENGTH))
    js, je = (truth.start - lo) / scale, (truth.end - lo) / scale
    je = np.maximum(je, js + POINT_LENGTH)
    n = len(js)
    left, right = zone_bounds(Intervals(js, je), 0.0, (hi - lo) / scale)
    width = right - left
    zone, a, b = _split_by_zone(p, left, right)

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

    # ---- recall: each piece owns the part of its zone closer to it than to other pieces
    first = np.ones(len(zone), dtype=bool)
    first[1:] = zone[1:] != zone[:-1]
    last = np.ones(len(zone), dtype=bool)
    last[:-1] = zone[1:] != zone[:-1]
    cell_lo = np.where(first, left[zone], np.r_[0.0, (b[:-1] + a[1:]) / 2][: len(zone)])
    cell_hi = np.where(last, right[zone], np.r_[(b[:-1] + a[1:]) / 2, 0.0][: len(zone)])
    el, er = left[zone], right[zone]

    def near(u0, v0, pivot, sign):
        """Integral over [u0, v0] ∩ J of the recall probability, d = sign * (y - pivot)."""
        u, v = np.maximum(u0, zs), np.minimum(v0, ze)
        v = np.maximum(u, v)
        du, dv = sign * (u - pivot), sign * (v - pivot)
        lost = _int_min_linear(u, v, du, dv, u - el, v - el)
        lost = lost + _int_min_linear(u, v, du, dv, er - u, er - v)
        return (v - u) - lost / w

    hit = np.maximum(np.minimum(b, ze) - np.maximum(a, zs), 0.0)
    piece_r = hit + near(cell_lo, a, a, -1.0) + near(b, cell_hi, b, 1.0)
    recall = np.bincount(zone, weights=piece_r, minlength=n) / (je - js)
    return precision, np.clip(recall, 0.0, 1.0)
