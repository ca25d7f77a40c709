"""Every detector family the package holds: the ``DetectorModule`` subclasses found in the
packages under ``esa_lightning.models``. The artifact builds only these classes (its allow-list),
and the contract tests run every one of them. A new family is one package here plus its YAML
under ``conf/model/``; nothing else needs to list it.
"""

from __future__ import annotations

import importlib
import pkgutil

import esa_lightning.models as models_package
from esa_lightning.models.base import DetectorModule


def class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def detector_families() -> dict[str, type[DetectorModule]]:
    """``{class path: class}`` of every concrete ``DetectorModule`` of ``esa_lightning.models``,
    in whichever module of a family's package it is defined (every module is imported, so a
    family whose ``__init__.py`` does not import its model class is found all the same)."""
    prefix = f"{models_package.__name__}."
    for info in pkgutil.walk_packages(models_package.__path__, prefix):
        importlib.import_module(info.name)
    found: dict[str, type[DetectorModule]] = {}
    stack = list(DetectorModule.__subclasses__())
    while stack:
        cls = stack.pop()
        stack.extend(cls.__subclasses__())
        if cls.__module__.startswith(prefix) and not getattr(
            cls, "__abstractmethods__", None
        ):
            found[class_path(cls)] = cls
    return dict(sorted(found.items()))
