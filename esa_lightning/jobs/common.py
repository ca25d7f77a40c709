"""Shared plumbing of the Hydra entry points: one-line errors, config printing, loaders."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from hydra.errors import InstantiationException
from hydra.utils import get_method, instantiate
from omegaconf import DictConfig, OmegaConf

from esa_lightning.data import Mission
from esa_lightning.errors import ESAInputError

log = logging.getLogger("esa_lightning")
T = TypeVar("T")


@contextmanager
def one_line_errors(debug: bool = False) -> Iterator[None]:
    """Every job's error wrapper: a user-facing error (``ESAInputError``) becomes one line on
    stderr and exit code 2 (``SystemExit(2)``); with ``debug`` the traceback is shown instead."""
    try:
        yield
    except ESAInputError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def run_or_exit(fn: Callable[[DictConfig], T], cfg: DictConfig) -> T:
    """Run the Hydra job ``fn(cfg)`` inside ``one_line_errors`` (``debug_errors=true``: full
    tracebacks), after checking its settings (``settings.check_settings``)."""
    from esa_lightning.settings import check_settings

    with one_line_errors(bool(cfg.get("debug_errors", False))):
        check_settings(cfg)
        return fn(cfg)


def mission_from_config(data_cfg: DictConfig) -> Mission:
    """Call the reader a ``data=`` config group names (``_target_``) with its root and options.

    Errors stay one-line ``ESAInputError``s: a missing root or reader, an unknown reader, and
    whatever the reader raises (not wrapped by Hydra).
    """
    options: dict[str, Any] = OmegaConf.to_container(data_cfg, resolve=True)  # type: ignore[assignment]
    target = options.get("_target_")
    if not target:
        raise ESAInputError("the data config names no reader (_target_)", column="data._target_")
    try:
        get_method(target)
    except Exception:  # noqa: BLE001 - any import/lookup failure is a config error
        raise ESAInputError("unknown data reader", column="data._target_", value=target) from None
    if options.get("root") in (None, "???"):
        raise ESAInputError("set data.root=PATH for this data source", column="data.root")
    try:
        return instantiate(options, _convert_="all")
    except InstantiationException as exc:
        cause = exc.__cause__
        if cause is not None:  # the reader's own error, as a direct call raises it
            raise cause from cause.__cause__
        raise


def print_config(cfg: DictConfig) -> None:
    """Log the composed config so a reader sees every knob of the run."""
    log.info("config:\n%s", OmegaConf.to_yaml(cfg, resolve=False))


def has_labeled_events(part: Mission) -> bool:
    """Whether ``part`` carries labels with an anomaly or rare event on its own rows: a range
    without one has no labeled metric keys at all, never 0.0 (interfaces: metric names)."""
    if not part.meta.get("test_labeled", True):
        return False
    return any(g.labels is not None and g.is_anomaly.any() for g in part.grids().values())
