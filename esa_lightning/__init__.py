"""esa_lightning: Lightning + Hydra anomaly detection for spacecraft telemetry (ESA-ADB)."""

__version__ = "0.1.0"
