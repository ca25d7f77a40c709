"""The ``train.py`` command and the data overrides that read a converted mission as
``data.convert`` wrote it (``mission.json``'s layout, split, period and validation range)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def reader_overrides(out: Path, record: dict[str, Any]) -> list[str]:
    """The data overrides that read the converted folder ``out`` as it was written: its layout,
    split, period and (with ``val_share``) its validation range."""
    layout = record["layout"]
    parts = [f"data={layout}", f"data.root={out}"]
    if layout == "esa":
        parts.append(f"data.split_date={record['split_date']}")
        if record["period"] != "30s":
            parts.append(f"data.period={record['period']}")
    val_row = record.get("val_row")
    if val_row is not None:
        n_val = record["split_row"] - val_row
        if layout == "kaggle":  # the last val_fraction of the training rows
            parts.append(f"data.val_fraction={n_val / record['split_row']!r}")
        else:  # the last val_days before the split, on the grid
            seconds = n_val * int(record["period"].removesuffix("s"))
            parts.append(f"data.val_days={seconds / 86400!r}")
    return parts


def train_command(out: Path, record: dict[str, Any]) -> str:
    """The training command (``python train.py`` in a clone, ``esa-train`` installed) that
    reads the converted folder ``out`` as it was written."""
    from esa_lightning.install import command

    return " ".join([command("train"), *reader_overrides(out, record)])
