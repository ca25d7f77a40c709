"""Readers of every telemetry source into one ``Mission``; ``load_mission`` picks the reader."""

from __future__ import annotations

import importlib
import inspect
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
    """Read a mission of ``kind`` (one of ``KINDS``, or a preset of one: ``esa_mission1``,
    ``nasa_msl``) from ``root`` with reader ``options``; options not given take their
    ``conf/data/<kind>.yaml`` values (``config_options``), so the mission is the one
    ``train.py data=<kind>`` reads (counters from ``mission.json`` or the preset, the same
    split and validation range), not the one the reader function's own defaults give."""
    base = _base_kind(kind)
    # the synthetic reader hands its options to the esa reader, beside its generator's settings
    takes = _options_of("esa") + ["generate"] if base == "synthetic" else _options_of(base)
    unknown = sorted(set(options) - set(takes))
    if unknown:
        raise ESAInputError(f"not an option of the {base} reader; it takes {takes}",
                            column="options", value=unknown[0])
    return _reader(base)(root, **{**config_options(kind), **options})


def _reader(kind: str) -> Any:
    module, _, name = READERS[kind].rpartition(".")
    return getattr(importlib.import_module(module), name)


def _options_of(kind: str) -> list[str]:
    return [p for p in inspect.signature(_reader(kind)).parameters if p != "root"]


def _base_kind(kind: str) -> str:
    """The reader kind of ``kind``: itself, or the kind a preset's ``defaults`` names."""
    if kind in READERS:
        return kind
    config = _data_config(kind) if kind in _presets() else {}
    defaults = config.get("defaults", [])
    base = next((d for d in defaults if isinstance(d, str) and d in READERS), None)
    if base is None and "_target_" in config:  # a new data source, its reader not listed yet
        target = config["_target_"]
        raise ESAInputError(
            f"conf/data/{kind}.yaml names the reader {target}, which "
            f"esa_lightning.data.READERS does not list: add {kind!r}: {target!r} to it",
            column="kind", value=kind)
    if base is None:
        choices = (*KINDS, *_presets())
        raise ESAInputError(f"unknown data kind; choose one of {choices}", column="kind",
                            value=kind)
    return base


def _presets() -> tuple[str, ...]:
    from esa_lightning.install import config_dir

    names = sorted(p.stem for p in (config_dir() / "data").glob("*.yaml"))
    return tuple(n for n in names if n not in READERS)


def _data_config(kind: str) -> dict[str, Any]:
    import yaml

    from esa_lightning.install import config_dir

    return yaml.safe_load((config_dir() / "data" / f"{kind}.yaml").read_text()) or {}


def config_options(kind: str) -> dict[str, Any]:
    """The reader options ``conf/data/<kind>.yaml`` sets (over its base kind's, for a preset),
    less ``root``, what needs the run's paths (``cache_dir``: the reader's own default, the
    user cache) and the synthetic generator's settings (its defaults; given, they warn on a
    mission generated otherwise)."""
    base = _base_kind(kind)
    config = {**_data_config(base), **_data_config(kind)} if base != kind else _data_config(kind)
    return {
        key: value
        for key, value in config.items()
        if key not in ("_target_", "root", "cache_dir", "generate", "defaults")
        and not (isinstance(value, str) and ("${" in value or value == "???"))
    }


__all__ = ["KINDS", "READERS", "Mission", "config_options", "load_mission"]
