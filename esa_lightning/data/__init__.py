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
    """Read a mission of ``kind`` (one of ``KINDS``) from ``root`` with reader ``options``;
    options not given take their ``conf/data/<kind>.yaml`` values (``config_options``), so the
    mission is the one ``train.py data=<kind>`` reads (counters from ``mission.json``, the same
    validation range), not the one the reader function's own defaults give."""
    if kind not in READERS:
        raise ESAInputError(f"unknown data kind; choose one of {KINDS}", column="kind", value=kind)
    module, _, name = READERS[kind].rpartition(".")
    reader = getattr(importlib.import_module(module), name)
    return reader(root, **{**config_options(kind), **options})


def config_options(kind: str) -> dict[str, Any]:
    """The reader options ``conf/data/<kind>.yaml`` sets, less ``root``, what needs the run's
    paths (``cache_dir``: the reader's own default, the user cache) and the synthetic
    generator's settings (its defaults; given, they warn on a mission generated otherwise)."""
    import yaml

    from esa_lightning.install import config_dir

    path = config_dir() / "data" / f"{kind}.yaml"
    config = yaml.safe_load(path.read_text()) or {}
    return {
        key: value
        for key, value in config.items()
        if key not in ("_target_", "root", "cache_dir", "generate")
        and not (isinstance(value, str) and ("${" in value or value == "???"))
    }


__all__ = ["KINDS", "READERS", "Mission", "config_options", "load_mission"]
