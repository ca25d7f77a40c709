"""Nearest training windows: a plain ``nn.Module`` whose fitted state is the reference windows."""

from __future__ import annotations

import torch

from esa_lightning.errors import ESAInputError
from esa_lightning.models.window_baseline import WindowScorer

# distances held at once: [query rows, reference windows] float32, 64 MiB
DISTANCE_ELEMENTS = 1 << 24
MAX_QUERY_ROWS = 1024


class NearestWindows(WindowScorer):
    """The residual of a window is its difference to its ``k``-th nearest reference window
    (Euclidean distance over all its features).

    Distances come from ``torch.cdist`` a block of query rows at a time, so memory stays
    bounded by ``DISTANCE_ELEMENTS`` whatever the number of windows scored. Every block is
    padded to the same number of rows: each matrix product then has the same shape, so a
    window's neighbour does not depend on how the windows around it were batched (chunked
    scoring equals whole scoring).
    """

    FITTED_ROWS = ("reference",)

    def __init__(self, n_features: int, k: int = 1) -> None:
        super().__init__()
        self.k = check_k(k)
        self.register_buffer("reference", torch.zeros(0, n_features))  # [M, D]

    def fit(self, windows: torch.Tensor) -> None:
        if len(windows) < self.k:
            raise ESAInputError(
                f"{len(windows)} training windows, fewer than the k neighbours asked for",
                column="k",
                value=self.k,
            )
        self.reference = windows.float().contiguous().clone()

    @property
    def query_rows(self) -> int:
        """Query windows per distance block."""
        return max(1, min(MAX_QUERY_ROWS, DISTANCE_ELEMENTS // max(1, len(self.reference))))

    def neighbours(self, windows: torch.Tensor) -> torch.Tensor:
        """Index [B] of each window's ``k``-th nearest reference window."""
        rows = self.query_rows
        out = torch.empty(len(windows), dtype=torch.long, device=windows.device)
        for lo in range(0, len(windows), rows):
            block = windows[lo : lo + rows]
            n = len(block)
            if n < rows:  # same shape as every other block (class docstring)
                block = torch.cat([block, block[-1:].expand(rows - n, -1)])
            distance = torch.cdist(block, self.reference)
            nearest = torch.topk(distance, self.k, dim=1, largest=False, sorted=True).indices
            out[lo : lo + n] = nearest[:n, self.k - 1]
        return out

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        if not len(self.reference):
            raise RuntimeError("NearestWindows is not fitted")
        return windows - self.reference[self.neighbours(windows)]


def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ESAInputError("k must be an integer >= 1", column="k", value=k)
    return k
