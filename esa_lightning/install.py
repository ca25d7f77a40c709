"""How this copy of the package runs: from a clone (``python train.py``) or installed
(``esa-train``)."""

from __future__ import annotations

from pathlib import Path

#: the folder holding the ``esa_lightning`` package: the clone's root when run from a clone
SOURCE_ROOT = Path(__file__).resolve().parents[1]


def running_from_source() -> bool:
    """Whether the package is imported from a clone (editable install or ``python train.py``)."""
    return (SOURCE_ROOT / "pyproject.toml").is_file()


def command(job: str) -> str:
    """How a user starts ``job`` (``train``...): ``python train.py`` in a clone, the installed
    command ``esa-train`` otherwise (an installed package has no ``train.py``)."""
    return f"python {job}.py" if running_from_source() else f"esa-{job}"
