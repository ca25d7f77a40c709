"""Where the configs' ``paths.data_dir`` points by default (``${esa_data_dir:${paths.root_dir}}``).

It is ``datasets/`` under ``paths.root_dir``, as always, with one exception: an installed
package (no clone around it) run with the default root, the current folder (``.``), which has
no ``datasets/`` folder, uses ``esa_lightning/datasets`` in the user's data folder
(``$XDG_DATA_HOME``, by default ``~/.local/share``). So ``esa-train`` from any folder makes the
embedded synthetic mission and the read caches once per user, not once per folder; a root given
explicitly (``ESA_LIGHTNING_ROOT``, ``paths.root_dir=``, the Python API's ``root_dir``) holds its
own ``datasets/``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from esa_lightning import install


def user_data_dir() -> Path:
    """``$XDG_DATA_HOME/esa_lightning`` (``~/.local/share/esa_lightning`` without it)."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "esa_lightning"


ROOT_ENV = "ESA_LIGHTNING_ROOT"
#: ``paths.root_dir``'s default in conf/paths/default.yaml: any other value was given
DEFAULT_ROOT = "${esa_root:}"


def default_root() -> str:
    """``$ESA_LIGHTNING_ROOT``, or the current folder (``.``) where it is unset or empty."""
    return os.environ.get(ROOT_ENV) or "."


def root_given(config: Any = None) -> bool:
    """Whether a root was given (``$ESA_LIGHTNING_ROOT``, ``paths.root_dir=``, the API's
    ``root_dir``), ``.`` included, rather than left to the default: ``config`` is the whole
    config, whose ``paths.root_dir`` is then something other than the default's expression."""
    if os.environ.get(ROOT_ENV):
        return True
    if config is None:
        return False
    node = config.paths._get_node("root_dir")
    return node is not None and node._value() != DEFAULT_ROOT


def default_data_dir(root_dir: str, _root_: Any = None) -> str:
    """``<root_dir>/datasets``; the user data folder's ``datasets`` for an installed package
    run with the default root (the current folder) where it has no ``datasets/`` folder."""
    local = f"{root_dir}/datasets"
    given = root_given(_root_) or root_dir != "."
    if install.running_from_source() or given or Path(local).is_dir():
        return local
    return str(user_data_dir() / "datasets")


def register_resolvers() -> None:
    """Make ``${esa_root:}`` and ``${esa_data_dir:ROOT}`` known to OmegaConf (idempotent)."""
    OmegaConf.register_new_resolver("esa_root", default_root, replace=True)
    OmegaConf.register_new_resolver("esa_data_dir", default_data_dir, replace=True)
