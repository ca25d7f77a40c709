"""Hierarchical channel ensemble family (reference pipeline A): the differentiable surrogate
and the tree-based original."""

from esa_lightning.models.channel_ensemble.gbdt import GBDTChannelEnsemble
from esa_lightning.models.channel_ensemble.model import LitChannelEnsemble

__all__ = ["GBDTChannelEnsemble", "LitChannelEnsemble"]
