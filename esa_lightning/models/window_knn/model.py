"""k-nearest-neighbour distance of sliding windows: the baseline of Sarfraz et al. 2024 ("Quo
Vadis TSAD"), as a detector family.

The reference set is a seeded random sample of at most ``max_windows`` nominal training windows
of the ``windows`` datamodule (scaled, detrended, flattened [L, n_inputs] -> L * n_inputs),
kept in a buffer: no gradient steps. A window's error is its squared difference, on the value
channels, to its ``k``-th nearest reference window (``models.window_baseline``); the threshold
is the model's own post rule (``f05`` by default).
"""

from __future__ import annotations

from typing import Any

from esa_lightning.models.window_baseline import WindowBaseline
from esa_lightning.models.window_knn.network import NearestWindows, check_k


class WindowKNNDetector(WindowBaseline):
    """Distance of windows to their k-th nearest nominal training window."""

    def __init__(self, n_inputs: int, n_outputs: int, k: int = 1, **options: Any) -> None:
        """``options``: the shared window-baseline options (``WindowBaseline``)."""
        super().__init__(n_inputs, n_outputs, family=dict(k=check_k(k)), **options)

    def build_scorer(self) -> NearestWindows:
        return NearestWindows(self.n_features, self.hparams.k)

    def fit_summary(self) -> str:
        return f"{len(self.scorer.reference)} reference windows, k={self.hparams.k}"
