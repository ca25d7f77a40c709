"""Readers of every telemetry source into one ``Mission``; ``load_mission`` picks the reader."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from esa_lightning.data.mission import Mission
from esa_lightning.errors import ESAInputError

# kind -> reader function (what the conf/data/*.yaml files name as ``_target_``)
READERS = {
    "esa": "esa_lightning.data.readers.esa_adb.read_esa_mission",
    "esa_csv": "esa_lightning.data.readers.esa_csv.read_esa_csv",
    "kaggle": "esa_lightning.data.readers.kaggle.read_kaggle",
    "nasa": "esa_lightning.data.readers.nasa.read_nasa",
    "synthetic": "esa_lightning.data.readers.synthetic.load_synthetic",
}
KINDS = tuple(READERS)


def load_mission(kind: str, root: str | Path, **options: Any) -> Mission:
    """Read a mission of ``kind`` (one of ``KINDS``) from ``root`` with reader ``options``."""
    if kind not in READERS:
        raise ESAInputError(f"unknown data kind; choose one of {KINDS}", column="kind", value=kind)
    module, _, name = READERS[kind].rpartition(".")
    return getattr(importlib.import_module(module), name)(root, **options)


__all__ = ["KINDS", "READERS", "Mission", "load_mission"]
