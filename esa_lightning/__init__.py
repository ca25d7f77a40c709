"""esa_lightning: Lightning + Hydra anomaly detection for spacecraft telemetry (ESA-ADB).

The Python API (``docs/python_api.md``) is imported on first use, so ``import esa_lightning``
stays cheap: ``Detector``, ``Prediction``, ``InputWarning`` and ``load_mission`` come from
``esa_lightning.api``; ``train`` and ``predict`` from ``esa_lightning.api.training``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Detector": "esa_lightning.api",
    "Prediction": "esa_lightning.api",
    "InputWarning": "esa_lightning.api",
    "load_mission": "esa_lightning.api",
    "train": "esa_lightning.api.training",
    "predict": "esa_lightning.api.training",
}
__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'esa_lightning' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
