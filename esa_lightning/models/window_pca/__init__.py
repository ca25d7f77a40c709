"""PCA reconstruction error of sliding windows (Sarfraz et al. 2024's baseline)."""

from esa_lightning.models.window_pca.model import WindowPCADetector

__all__ = ["WindowPCADetector"]
