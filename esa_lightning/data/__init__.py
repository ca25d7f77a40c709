"""Readers of every telemetry source into one ``Mission``; ``load_mission`` picks the reader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from esa_lightning.data.mission import Mission
from esa_lightning.errors import ESAInputError

KINDS = ("esa", "esa_csv", "kaggle", "nasa", "synthetic")


def load_mission(kind: str, root: str | Path, **options: Any) -> Mission:
    """Read a mission of ``kind`` (one of ``KINDS``) from ``root`` with reader ``options``."""
    if kind == "esa":
        from esa_lightning.data.readers.esa_adb import read_esa_mission

        return read_esa_mission(root, **options)
    if kind == "esa_csv":
        from esa_lightning.data.readers.esa_csv import read_esa_csv

        return read_esa_csv(root, **options)
    if kind == "kaggle":
        from esa_lightning.data.readers.kaggle import read_kaggle

        return read_kaggle(root, **options)
    if kind == "nasa":
        from esa_lightning.data.readers.nasa import read_nasa

        return read_nasa(root, **options)
    if kind == "synthetic":
        from esa_lightning.data.readers.synthetic import load_synthetic

        return load_synthetic(root, **options)
    raise ESAInputError(f"unknown data kind; choose one of {KINDS}", column="kind", value=kind)


__all__ = ["KINDS", "Mission", "load_mission"]
