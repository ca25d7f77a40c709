"""The ``train.py`` command and the data overrides that read a converted mission as
``data.convert`` wrote it (``mission.json``'s layout, split, period and validation range)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any


def reader_overrides(out: Path, record: dict[str, Any]) -> list[str]:
    """The data overrides that read the converted folder ``out`` as it was written: its layout,
    split, period and (with ``val_share``) its validation range."""
    layout = record["layout"]
    parts = [f"data={layout}", f"data.root={hydra_value(str(out))}"]
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

    return shlex.join([*command("train").split(), *reader_overrides(out, record)])


def hydra_value(text: str) -> str:
    """``text`` as a Hydra override's value that composes to that string: as it is where
    Hydra reads it so (``/data/msl-1``), else quoted (a comma is a sweep, ``null`` None, a
    space or a non-ASCII letter is refused unquoted). A ``${`` is escaped (``\\${``, with the
    backslashes before it doubled), as OmegaConf reads it when the config is composed: it would
    be an interpolation (``${now:%H}`` the hour), or a refused one."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    text = re.sub(r"(\\*)\$\{", lambda m: m.group(1) * 2 + "\\${", text)
    try:
        if OverridesParser.create().parse_override(f"key={text}").value() == text:
            return text
    except Exception:  # noqa: BLE001 - any refusal of the unquoted form: quote it
        pass
    # in a quoted value a backslash escapes the quote after it: double the ones before a quote
    body = re.sub(r"(\\*)('|$)", lambda m: m.group(1) * 2 + ("\\'" if m.group(2) else ""), text)
    return f"'{body}'"
