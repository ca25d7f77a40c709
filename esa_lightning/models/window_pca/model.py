"""PCA reconstruction error of sliding windows: the baseline of Sarfraz et al. 2024 ("Quo
Vadis TSAD"), as a detector family.

Principal components are fitted, without gradient steps, on a seeded sample of at most
``max_windows`` nominal training windows of the ``windows`` datamodule (scaled, detrended,
flattened [L, n_inputs] -> L * n_inputs); ``n_components`` keeps a fixed number of them or the
fewest explaining that share of the variance. A window's error is its squared reconstruction
residual on the value channels (``models.window_baseline``); the threshold is the model's own
post rule (``f05`` by default).
"""

from __future__ import annotations

from typing import Any

from esa_lightning.models.window_baseline import WindowBaseline
from esa_lightning.models.window_pca.network import PCAReconstructor, check_n_components


class WindowPCADetector(WindowBaseline):
    """Reconstruction error of windows from their leading principal components."""

    def __init__(
        self, n_inputs: int, n_outputs: int, n_components: int | float = 0.95, **options: Any
    ) -> None:
        """``options``: the shared window-baseline options (``WindowBaseline``)."""
        super().__init__(
            n_inputs,
            n_outputs,
            family=dict(n_components=check_n_components(n_components)),
            **options,
        )

    def build_scorer(self) -> PCAReconstructor:
        return PCAReconstructor(self.n_features, self.hparams.n_components)

    def fit_summary(self) -> str:
        pca = self.scorer
        total = float(pca.total_variance)
        share = float(pca.explained_variance.sum()) / total if total > 0 else 1.0
        return (
            f"{pca.components.shape[0]} of {pca.mean.shape[0]} components, "
            f"{100 * share:.1f} % of the variance"
        )
