"""Resume checkpoints (``ckpt_path=...``) are checked before Lightning reads them.

Lightning loads a checkpoint with ``torch.load``'s default, which
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` (or torch before 2.6) turns into full unpickling: a
crafted ``evil.ckpt`` would run its payload. ``check_resume_checkpoint`` reads the file itself
with ``weights_only=True`` passed explicitly (the variable cannot override an explicit choice),
allowing only ``checkpoint_globals()``, the few container types Lightning and omegaconf put in
checkpoints; ``fit_from`` then hands it to ``trainer.fit`` with ``weights_only=True`` under the
same allow-list. A truncated or foreign file,
or one whose parameters do not fit the configured model (a changed ``model.hidden_size``), is
one ``ESAInputError`` naming the file.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import torch

from esa_lightning.errors import ESAInputError


def checkpoint_globals() -> list[Any]:
    """Types a legitimate checkpoint may hold beyond tensors and plain containers."""
    import numpy as np
    from lightning.fabric.utilities.data import AttributeDict

    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import scalar

    found: list[Any] = [AttributeDict, np.dtype, scalar]
    found += [type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "bool")]
    try:
        from omegaconf import DictConfig, ListConfig
        from omegaconf.base import ContainerMetadata, Metadata
        from omegaconf.nodes import AnyNode

        found += [DictConfig, ListConfig, ContainerMetadata, Metadata, AnyNode]
    except ImportError:  # pragma: no cover - omegaconf ships with hydra
        pass
    return found


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's contents, read without running code (``weights_only=True``)."""
    try:
        with torch.serialization.safe_globals(checkpoint_globals()):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types on foreign bytes
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise ESAInputError(
            f"not a checkpoint this version can resume from safely ({reason})", path=path
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("state_dict"), dict):
        raise ESAInputError("not a Lightning checkpoint (no state_dict)", path=path)
    return data


def check_resume_checkpoint(path: str | Path, model: torch.nn.Module) -> None:
    """Refuse a checkpoint that cannot be read safely or whose parameters do not fit ``model``."""
    state = read_checkpoint(path)["state_dict"]
    problems = []
    for name, param in model.named_parameters():
        stored = state.get(name)
        if stored is None:
            problems.append(f"no {name}")
        elif not isinstance(stored, torch.Tensor) or stored.shape != param.shape:
            shape = tuple(getattr(stored, "shape", ()))
            problems.append(f"{name} is {shape}, the model's {tuple(param.shape)}")
    if problems:
        raise ESAInputError(
            "the checkpoint does not fit the configured model (was it trained with other model "
            f"settings, e.g. model.hidden_size?): {'; '.join(problems[:3])}",
            path=path,
        )


def fit_from(trainer: Any, model: Any, datamodule: Any, ckpt_path: str | None) -> None:
    """``trainer.fit``, resuming from ``ckpt_path`` only after ``check_resume_checkpoint``."""
    if ckpt_path is None:
        trainer.fit(model, datamodule=datamodule)
        return
    check_resume_checkpoint(ckpt_path, model)
    options = {}
    if "weights_only" in inspect.signature(trainer.fit).parameters:
        options["weights_only"] = True
    with torch.serialization.safe_globals(checkpoint_globals()):
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, **options)
