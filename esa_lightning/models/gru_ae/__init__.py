"""GRU-attention autoencoder / forecaster family (reference pipeline B)."""

from esa_lightning.models.gru_ae.model import LitGRUAttentionAE

__all__ = ["LitGRUAttentionAE"]
