"""ESA-ADB's GlobalSTD baseline: per-channel mean/std of nominal training rows."""

from esa_lightning.models.global_std.model import GlobalSTD

__all__ = ["GlobalSTD"]
