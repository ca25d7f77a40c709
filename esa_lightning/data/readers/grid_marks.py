"""The grid rows particular raw samples land on (a sample holds from the first grid row at or
after it): the cells of readings float32 cannot hold (``Mission.unrepresentable_cells``),
the rows each channel sent a sample on (``Mission.sent``), the rows labels cover and the
telecommand pulses."""

from __future__ import annotations

import numpy as np
import pandas as pd

from esa_lightning.data.mission import CATEGORY_TO_CODE, mark_rows


def sample_cells(marked: list[np.ndarray], k_lo: int, n: int) -> np.ndarray:
    """int64 [N, 2] (row, column) in row order: the grid rows [0, n) each column's
    unrepresentable samples (``marked``: lattice rows per column) land on."""
    cells = [np.zeros((0, 2), dtype=np.int64)]
    for col, lattice in enumerate(marked):
        rows = np.unique(np.asarray(lattice, dtype=np.int64) - k_lo)
        rows = rows[(rows >= 0) & (rows < n)]
        cells.append(np.stack([rows, np.full(len(rows), col, dtype=np.int64)], axis=1))
    cells = np.concatenate(cells)
    return cells[np.lexsort((cells[:, 1], cells[:, 0]))]


def sent_bits(rows: np.ndarray, n: int) -> np.ndarray:
    """The rows [0, n) among ``rows`` (where each raw sample's hold starts) as packed bits."""
    bits = np.zeros(n, dtype=bool)
    bits[rows[(rows >= 0) & (rows < n)]] = True
    return np.packbits(bits)


def sent_mask(columns: list[tuple[int, np.ndarray]], k_lo: int, n: int) -> np.ndarray:
    """uint8 [n, ceil(C / 8)] (``Mission.sent``): bit ``c % 8`` (from the high bit) of byte
    ``c // 8`` set where channel c's raw sample lands on the row, from each column's (lattice
    start, packed bits over its own range)."""
    out = np.zeros((n, -(-len(columns) // 8)), dtype=np.uint8)
    for byte in range(out.shape[1]):
        block = np.zeros((n, 8), dtype=bool)
        for k, (lo, packed) in enumerate(columns[8 * byte : 8 * byte + 8]):
            own = np.unpackbits(packed).astype(bool)
            a = max(0, k_lo - lo)  # the first own row on the grid
            b = min(len(own), k_lo + n - lo)
            if a < b:
                block[lo + a - k_lo : lo + b - k_lo, k] = own[a:b]
        out[:, byte] = np.packbits(block, axis=1)[:, 0]
    return out


def on_grid(events: pd.DataFrame, k_lo: int, n: int, p_ns: int) -> np.ndarray:
    """bool per event row: whether its span meets the time the grid's rows own, after the time
    one period before the first grid time ``k_lo * p_ns`` up to the last grid time, included.
    Each row owns the time since the row before it (a raw sample holds from the first grid row
    at or after it, one before the grid on the first row), so an event ending less than a
    period before the first grid time is the first row's (``mission.onto_first_row`` lists it
    on that row's time, as ``mission.range_events`` does an event between a range's rows), and one
    starting after the last grid time is no row's. The one rule for which events a mission
    keeps and which mark rows (``label_mask``): its start floored, its end ceiled onto them."""
    if not n:
        return np.zeros(len(events), dtype=bool)
    lo, hi = np.datetime64((k_lo - 1) * p_ns, "ns"), np.datetime64((k_lo + n - 1) * p_ns, "ns")
    ends = events["EndTime"].to_numpy().astype("datetime64[ns]")
    starts = events["StartTime"].to_numpy().astype("datetime64[ns]")
    return (ends > lo) & (starts <= hi)


def label_mask(events: pd.DataFrame, names: list[str], k_lo: int, n: int, p_ns: int) -> np.ndarray:
    """uint8 [T, C]: start floors, end ceils; overlaps keep the lower (more important) code
    (``mission.mark_rows``). Only the events ``on_grid`` keeps mark rows (the mission's events
    are those)."""
    if not len(events) or not n:
        return np.zeros((n, len(names)), dtype=np.uint8)
    events = events.loc[on_grid(events, k_lo, n, p_ns)]
    col_of = {c: i for i, c in enumerate(names)}
    codes = events["Category"].map(CATEGORY_TO_CODE).to_numpy()
    starts = events["StartTime"].to_numpy().astype("datetime64[ns]").astype(np.int64)
    ends = events["EndTime"].to_numpy().astype("datetime64[ns]").astype(np.int64)
    first = starts // p_ns - k_lo
    last = -(-ends // p_ns) - k_lo
    cols = events["Channel"].map(col_of).to_numpy()
    return mark_rows(codes, cols, first, last, (n, len(names)))


def telecommand_pulses(times: list[np.ndarray], k_lo: int, n: int, p_ns: int) -> np.ndarray:
    """float32 [T, K]: 1 at the first grid point at or after each execution inside the grid."""
    out = np.zeros((n, len(times)), dtype=np.float32)
    for j, ts in enumerate(times):
        rows = -(-ts // p_ns) - k_lo
        rows = rows[(rows >= 0) & (rows < n)]
        out[rows, j] = 1.0
    return out
