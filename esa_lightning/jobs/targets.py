"""The class or function a config's ``_target_`` names, found before the data are read:
``target_object`` for any target, ``detector_class`` for a model's. Apart from
``jobs.common`` so that the checks ``common`` calls lazily (``jobs.component_datamodules``)
can use them without importing ``common`` back (an import loop)."""

from __future__ import annotations

import logging
from typing import Any

from hydra.utils import get_object
from omegaconf import DictConfig

from esa_lightning.errors import ESAInputError


def target_object(target: Any, column: str, what: str) -> Any:
    """The class or function a config's ``_target_`` names; one that cannot be imported, or
    that imports but cannot be called (``math.pi``), is an ``ESAInputError`` naming the key
    ``column``, the value and why ("cannot import ``what`` (...)", "not a class or function"),
    in one line: Hydra's own three ERROR lines for a failed import are muted, and its
    "Expected a callable target" block is never reached."""
    hydra_log = logging.getLogger("hydra.utils")  # logs the failure in three lines of its own
    level = hydra_log.level
    hydra_log.setLevel(logging.CRITICAL)
    try:
        found = get_object(str(target))
    except Exception as exc:  # noqa: BLE001 - any import/lookup failure is a config error
        cause = exc.__cause__ or exc
        raise ESAInputError(f"cannot import {what} ({type(cause).__name__}: "
                            f"{' '.join(str(cause).split())})", column=column,
                            value=target) from None
    finally:
        hydra_log.setLevel(level)
    if not callable(found):
        raise ESAInputError(f"not a class or function (a {type(found).__name__}), so not {what}",
                            column=column, value=target)
    return found


def detector_class(model_cfg: DictConfig) -> type:
    """The detector family (a ``DetectorModule`` class) ``model_cfg._target_`` names; one that
    cannot be imported, cannot be called or is no such class is an ``ESAInputError`` naming the key
    (``model._target_``, ``components.<name>.model._target_``) and the value."""
    from esa_lightning.models.base import DetectorModule

    target = model_cfg.get("_target_")
    column = f"{model_cfg._get_full_key(None)}._target_"
    found = target_object(target, column, "the model class")
    if not (isinstance(found, type) and issubclass(found, DetectorModule)):
        raise ESAInputError("not a detector family (a DetectorModule)", column=column,
                            value=target)
    return found
