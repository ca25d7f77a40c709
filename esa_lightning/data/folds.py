"""The three nested, deterministic fold masks of the channel ensemble (§4.4), per channel.

Rows are the rows of ONE channel (pooled rows or samples); compute the masks from that channel's
own length (the reference code computed them from one channel and applied them to all).

- ``mask1[f]`` (outer fold, one per final estimator): ``n_outer = round(outer_frac * n_rows)``
  contiguous rows; f = 0 the last ones, f = 1 the ones before, and so on. With ``labels`` (the
  rows' event labels), when the last block holds one class only (all its rows anomalous, or all
  nominal) while the rows hold both, the blocks end where fold 0's block has the anomalous
  share closest to all rows' and both it and the rows outside it hold both classes
  (``outer_end``): the heads fitted on the held-out rows need both classes, and so do the
  learners that train outside them.
- ``eval2[f][e]`` (one per external repetition): ``round(eval2_frac * n_rows)`` rows among the
  rows outside ``mask1[f]``.
- ``shapelet[f][e][i]`` (one per internal estimator): ``round(shapelet_frac * n_rows)`` rows
  among the rows outside ``mask1[f]`` and ``eval2[f][e]``.
- ``train(f, e, i)``: the rows outside all three.

``eval2`` and ``shapelet`` are made of contiguous blocks: the free rows (in order) are cut into
blocks of ``block`` rows, and seeded random blocks are taken until the target count is reached;
the last block taken is cut so that the count is exact (or all free rows, if fewer). The default
``block = max(1, n_rows // 50)`` (2 % of the series: 10 blocks per eval2 mask, 5 per shapelet
mask) keeps masks contiguous enough that overlapping pooled rows rarely straddle a border.
Every mask is a function of (n_rows, fractions, block, seed, f, e, i) only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from esa_lightning.errors import ESAInputError


@dataclass(frozen=True)
class FoldMasks:
    """Boolean masks [n_rows] of one channel: ``mask1[f]``, ``eval2[f][e]``,
    ``shapelet[f][e][i]``."""

    n_rows: int
    block: int
    mask1: list[np.ndarray]
    eval2: list[list[np.ndarray]]
    shapelet: list[list[list[np.ndarray]]]

    def train(self, f: int, e: int, i: int) -> np.ndarray:
        """Rows usable to fit internal estimator (f, e, i): outside all three masks."""
        return ~(self.mask1[f] | self.eval2[f][e] | self.shapelet[f][e][i])

    @property
    def shape(self) -> tuple[int, int, int]:
        """(n_final, n_external, n_internal)."""
        return len(self.mask1), len(self.eval2[0]), len(self.shapelet[0][0])


def _pick_blocks(free: np.ndarray, target: int, block: int, rng: np.random.Generator) -> np.ndarray:
    """Mask of ``target`` rows drawn as random blocks of ``block`` consecutive free rows."""
    mask = np.zeros(free.shape[0], dtype=bool)
    rows = np.flatnonzero(free)
    if target >= rows.shape[0]:
        mask[rows] = True
        return mask
    if target <= 0:
        return mask
    blocks = np.array_split(rows, np.arange(block, rows.shape[0], block))
    order = rng.permutation(len(blocks))
    sizes = np.cumsum([len(blocks[b]) for b in order])
    need = int(np.searchsorted(sizes, target)) + 1  # the last block may be short: count rows
    taken = np.concatenate([blocks[b] for b in order[:need]])[:target]
    mask[taken] = True
    return mask


def both_classes(labels: np.ndarray) -> bool:
    """Whether the 0/1 ``labels`` hold both classes."""
    return bool(labels.any()) and not bool(labels.all())


def outer_end(labels: np.ndarray, n_outer: int) -> int:
    """Where the outer blocks end: ``len(labels)`` (the reference's last rows) unless that block
    holds one class only; then the end of the block whose anomalous share is closest to that of
    all rows (the latest of equals), among the blocks that, like the rows outside them, hold
    both classes (the default when there is none)."""
    labels = np.asarray(labels, dtype=bool)
    n = len(labels)
    if n_outer <= 0 or n_outer >= n or not both_classes(labels):
        return n
    if both_classes(labels[n - n_outer :]):
        return n
    positives = np.concatenate([[0], np.cumsum(labels)])
    ends = np.arange(n_outer, n + 1)
    held = positives[ends] - positives[ends - n_outer]  # anomalous rows of each block
    outside = positives[n] - held
    usable = (held > 0) & (held < n_outer) & (outside > 0) & (outside < n - n_outer)
    if not usable.any():
        return n
    gap = np.abs(held / n_outer - positives[n] / n)
    gap[~usable] = np.inf
    return int(ends[np.flatnonzero(gap == gap.min())[-1]])


def fold_masks(
    n_rows: int,
    *,
    n_final: int = 2,
    n_external: int = 3,
    n_internal: int = 5,
    outer_frac: float = 0.2,
    eval2_frac: float = 0.2,
    shapelet_frac: float = 0.1,
    block: int | None = None,
    seed: int = 0,
    labels: np.ndarray | None = None,
) -> FoldMasks:
    """The nested fold masks of one channel with ``n_rows`` rows (deterministic by ``seed``,
    and by ``labels`` [n_rows], the rows' event labels, when given: see ``outer_end``)."""
    n_rows = int(n_rows)
    if n_rows < 0 or min(n_final, n_external, n_internal) < 1:
        raise ESAInputError(
            "fold_masks needs n_rows >= 0 and at least one fold per level",
            value=(n_rows, n_final, n_external, n_internal),
        )
    if min(outer_frac, eval2_frac, shapelet_frac) < 0 or (
        n_final * outer_frac + eval2_frac + shapelet_frac > 1
    ):
        raise ESAInputError(
            "fold fractions must be >= 0 and n_final*outer + eval2 + shapelet <= 1",
            value=(outer_frac, eval2_frac, shapelet_frac),
        )
    block = max(1, n_rows // 50) if block is None else int(block)
    if block < 1:
        raise ESAInputError("fold block must be at least 1 row", value=block)

    n_outer = int(round(outer_frac * n_rows))
    n_eval2 = int(round(eval2_frac * n_rows))
    n_shapelet = int(round(shapelet_frac * n_rows))
    if labels is not None and len(labels) != n_rows:
        raise ESAInputError(
            f"fold_masks got {len(labels)} labels for {n_rows} rows", column="labels"
        )
    end = n_rows if labels is None else outer_end(labels, n_outer)
    mask1, eval2, shapelet = [], [], []
    for f in range(n_final):
        m1 = np.zeros(n_rows, dtype=bool)
        m1[max(0, end - (f + 1) * n_outer) : max(0, end - f * n_outer)] = True
        mask1.append(m1)
        eval2.append([])
        shapelet.append([])
        for e in range(n_external):
            rng = np.random.default_rng([seed, f, e])
            m2 = _pick_blocks(~m1, n_eval2, block, rng)
            eval2[f].append(m2)
            shapelet[f].append([])
            for i in range(n_internal):
                rng = np.random.default_rng([seed, f, e, i + 1, 7])
                shapelet[f][e].append(_pick_blocks(~(m1 | m2), n_shapelet, block, rng))
    return FoldMasks(n_rows=n_rows, block=block, mask1=mask1, eval2=eval2, shapelet=shapelet)
