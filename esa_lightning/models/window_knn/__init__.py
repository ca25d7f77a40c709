"""k-nearest-neighbour window distance (Sarfraz et al. 2024's baseline)."""

from esa_lightning.models.window_knn.model import WindowKNNDetector

__all__ = ["WindowKNNDetector"]
