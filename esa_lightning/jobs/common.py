"""Shared plumbing of the Hydra entry points: one-line errors, config printing, loaders."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf

from esa_lightning.data import Mission, load_mission
from esa_lightning.errors import ESAInputError

log = logging.getLogger("esa_lightning")
T = TypeVar("T")


def run_or_exit(fn: Callable[[DictConfig], T], cfg: DictConfig) -> T:
    """Run ``fn(cfg)``; a user-facing error becomes one line on stderr and exit code 2.

    With ``debug_errors=true`` the full traceback is shown instead.
    """
    try:
        return fn(cfg)
    except ESAInputError as exc:
        if cfg.get("debug_errors", False):
            raise
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def mission_from_config(data_cfg: DictConfig) -> Mission:
    """Call ``load_mission`` with a ``data=`` config group (kind, root and reader options)."""
    options: dict[str, Any] = OmegaConf.to_container(data_cfg, resolve=True)  # type: ignore[assignment]
    kind = options.pop("kind")
    root = options.pop("root")
    if root in (None, "???"):
        raise ESAInputError("set data.root=PATH for this data source", column="data.root")
    return load_mission(kind, root, **options)


def print_config(cfg: DictConfig) -> None:
    """Log the composed config so a reader sees every knob of the run."""
    log.info("config:\n%s", OmegaConf.to_yaml(cfg, resolve=False))
