"""Supervised rolling-statistics gradient-boosting baseline (issue 20)."""

from esa_lightning.models.rolling_gbdt.model import RollingGBDT

__all__ = ["RollingGBDT"]
