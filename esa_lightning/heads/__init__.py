"""sklearn heads fitted by callbacks after the network is trained."""

from esa_lightning.heads.random_forest import (
    TRUSTED_TYPES,
    RandomForestHead,
    load_forest,
    save_forest,
)

__all__ = ["TRUSTED_TYPES", "RandomForestHead", "load_forest", "save_forest"]
