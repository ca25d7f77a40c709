"""Per-channel robust z-score family: the baseline."""

from esa_lightning.models.zscore.model import RobustZScore

__all__ = ["RobustZScore"]
