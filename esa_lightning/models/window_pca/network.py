"""PCA of flattened windows: a plain ``nn.Module`` whose fitted state is buffers."""

from __future__ import annotations

import torch

from esa_lightning.errors import ESAInputError
from esa_lightning.models.window_baseline import WindowScorer


def check_n_components(value: int | float) -> int | float:
    """An integer count >= 1, or a share of variance strictly between 0 and 1."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    if isinstance(value, float) and 0.0 < value < 1.0:
        return value
    raise ESAInputError(
        "n_components must be an integer >= 1 (components kept) or a float in (0, 1) "
        "(share of the variance explained)",
        column="n_components",
        value=value,
    )


def components_for(variance: torch.Tensor, n_components: int | float) -> int:
    """How many leading components (``variance`` in decreasing order) to keep: a fixed count,
    or the fewest that explain ``n_components`` of the total variance."""
    if isinstance(n_components, int):
        return min(n_components, len(variance))
    total = float(variance.sum())
    if total <= 0.0:
        return 0  # constant windows: the mean reconstructs them all
    share = torch.cumsum(variance, 0) / total
    return min(int((share < n_components).sum()) + 1, len(variance))


class PCAReconstructor(WindowScorer):
    """Reconstructs a window from its projection on the leading principal components of the
    training windows; the residual is what they do not explain.

    ``fit`` takes the eigen-decomposition of the sample covariance (float64), so its cost is
    one [N, D] x [D, N] product and a D x D eigen-problem, whatever ``n_components``.
    """

    FITTED_ROWS = ("components", "explained_variance")

    def __init__(self, n_features: int, n_components: int | float = 0.95) -> None:
        super().__init__()
        self.n_components = check_n_components(n_components)
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("components", torch.zeros(0, n_features))  # [k, D], orthonormal
        self.register_buffer("explained_variance", torch.zeros(0))  # [k], decreasing
        self.register_buffer("total_variance", torch.zeros(()))

    def fit(self, windows: torch.Tensor) -> None:
        x = windows.double()
        mean = x.mean(dim=0)
        centred = x - mean
        covariance = centred.T @ centred / max(1, len(x) - 1)
        variance, vectors = torch.linalg.eigh(covariance)  # ascending
        variance, vectors = variance.flip(0).clamp_min(0.0), vectors.flip(1)
        k = components_for(variance, self.n_components)
        self.mean = mean.float()
        self.components = vectors[:, :k].T.contiguous().float()
        self.explained_variance = variance[:k].float()
        self.total_variance.fill_(float(variance.sum()))

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        centred = windows - self.mean
        return centred - (centred @ self.components.T) @ self.components
