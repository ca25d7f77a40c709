"""Where the configs' ``paths.data_dir`` points by default (``${esa_data_dir:${paths.root_dir}}``),
and what the run folder is named after (``${esa_choice:model}``, ``compose_config``).

It is ``datasets/`` under ``paths.root_dir``, as always, with one exception: an installed
package (no clone around it) run with the default root, the current folder (``.``), which has
no ``datasets/`` folder, uses ``esa_lightning/datasets`` in the user's data folder
(``$XDG_DATA_HOME``, by default ``~/.local/share``). So ``esa-train`` from any folder makes the
embedded synthetic mission and the read caches once per user, not once per folder; a root given
explicitly (``ESA_LIGHTNING_ROOT``, ``paths.root_dir=``, the Python API's ``root_dir``) holds its
own ``datasets/``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from esa_lightning import install
from esa_lightning.jobs.component_choices import component_model


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


def config_choice(group: str, _root_: Any = None) -> str:
    """The option config group ``group`` was composed with (``${esa_choice:model}`` is
    ``window_pca`` after ``model=window_pca``): ``conf/train.yaml`` names the run folder after
    the chosen model with it. Hydra records the choices in the config's ``hydra`` node while it
    composes (``compose_config`` reads them there) and in the running job's ``HydraConfig``
    (``python train.py``: the job's config has no ``hydra`` node)."""
    from hydra.core.hydra_config import HydraConfig

    choices = OmegaConf.select(_root_, "hydra.runtime.choices") if _root_ is not None else None
    if choices is None and HydraConfig.initialized():
        choices = HydraConfig.get().runtime.choices
    if choices is None or choices.get(group) is None:
        raise ValueError(
            f"no choice of config group {group!r} recorded: compose the configs with "
            "esa_lightning.jobs.paths.compose_config, or set experiment_name=NAME"
        )
    return str(choices[group])


def sweep_dir(path: str) -> str:
    """``hydra.sweep.dir`` as given (``${esa_sweep_dir:PATH}``), resolved once per sweep: the
    value is cached by its expression, and Hydra hands the sweep's cache to each job (as it does
    for ``${now:}``), so the jobs of ``-m model=a,b`` or ``-m experiment=a,b`` share the sweep's
    one folder (and its ``summary.csv``) instead of each taking its own ``experiment_name``."""
    return path


@dataclass(frozen=True)
class ConfigFolders:
    """Where a command line's Hydra reads its configs, when its flags say: ``path``, its
    ``--config-path`` (``-cp``: an absolute folder, as the entry points make a relative one, or
    ``pkg://MODULE``) in place of the package's configs; ``added``, its ``--config-dir``
    (``-cd``), a folder searched beside them."""

    path: str | None = None
    added: str | None = None


#: the module whose ``hydra.main`` reads a ``--config-path`` that is not absolute
MAIN_MODULE = "esa_lightning.cli.train"


@contextlib.contextmanager
def hydra_initialized(config_dir: Path | None = None,
                      folders: ConfigFolders | None = None) -> Iterator[None]:
    """Hydra initialised for ``compose``: with ``config_dir``'s configs (the package's by
    default), or with ``folders`` (a command line's ``-cp``/``-cd``) as ``hydra.main`` reads
    them: the ``--config-path`` in place of the configs, the ``--config-dir`` searched before
    the structured configs (Hydra's ``SearchPathException`` where it is no folder)."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    folder = str(config_dir or install.config_dir())
    GlobalHydra.instance().clear()  # compose refuses to start over an initialised Hydra
    try:
        if folders is None or (folders.path is None and folders.added is None):
            with initialize_config_dir(config_dir=folder, version_base="1.3"):
                yield
            return
        from hydra import version
        from hydra._internal.hydra import Hydra
        from hydra._internal.utils import create_automatic_config_search_path
        from hydra.core.config_search_path import SearchPathQuery
        from hydra.errors import SearchPathException

        version.setbase("1.3")
        search = create_automatic_config_search_path(None, MAIN_MODULE, folders.path or folder)
        if folders.added is not None:
            added = os.path.abspath(folders.added)
            if not os.path.isdir(added):
                raise SearchPathException(
                    f"-cd {folders.added}: no such folder ({added}): --config-dir names a folder "
                    "of your configs, searched beside the package's, read from the current folder")
            search.prepend(provider="command-line", path=f"file://{added}",
                           anchor=SearchPathQuery(provider="schema"))
        Hydra.create_main_hydra2(task_name=MAIN_MODULE.rpartition(".")[2],
                                 config_search_path=search)
        yield
    finally:
        GlobalHydra.instance().clear()


def compose_config(name: str, overrides: list[str], config_dir: Path | None = None,
                   hydra_keys: dict[str, Any] | None = None,
                   folders: ConfigFolders | None = None) -> DictConfig:
    """``<config_dir>/<name>.yaml`` (the package's configs by default; ``folders``: a command
    line's ``-cp``/``-cd``, ``hydra_initialized``) composed with ``overrides`` by Hydra's
    compose API, as ``python <name>.py`` composes it:
    ``experiment_name`` takes its value (``${esa_choice:model}``) before the ``hydra`` node that
    records the choices is dropped, as ``compose`` drops it. Hydra's errors for overrides that
    do not compose are raised as they are. ``hydra_keys``: each of its keys
    (``hydra.sweep.subdir``) is given its value in that node first, unresolved."""
    from hydra import compose

    with hydra_initialized(config_dir, folders):
        cfg = compose(config_name=name, overrides=overrides, return_hydra_config=True)
    for key in hydra_keys or {}:
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(cfg, parent)
        hydra_keys[key] = None if node is None else OmegaConf.to_container(
            node, resolve=False).get(leaf)
    with open_dict(cfg):
        if "experiment_name" in cfg:
            cfg.experiment_name = cfg.experiment_name  # resolved while the choices are there
        del cfg["hydra"]
    return cfg


def missing_primary_config(config_name: str, folders: ConfigFolders | None = None,
                           config_dir: Path | None = None) -> str:
    """Why ``<config_name>.yaml`` is not found, on one line: the folder searched and its
    configs (``config_dir``: the package's by default), and how to name another (Hydra:
    ``Cannot find primary config 'nope'. Check that it's in your config search path.``,
    naming neither)."""
    package = config_dir or install.config_dir()
    places = [(package, "conf/ (the package's configs)")]
    if folders is not None and folders.path is not None:
        places = [(Path(folders.path), folders.path)]
    elif folders is not None and folders.added is not None:
        added = Path(folders.added).absolute()
        places.append((added, f"{added} (-cd)"))
    shown = []
    for folder, name in places:
        found = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
        shown.append(f"{name}: {', '.join(found)}" if found else name)
    return (f"config '{config_name}' not found: no {config_name}.yaml in {'; '.join(shown)}; "
            "-cn NAME names one of these configs, -cp DIR a folder of your own")


def register_resolvers() -> None:
    """Make ``${esa_root:}``, ``${esa_data_dir:ROOT}``, ``${esa_choice:GROUP}``,
    ``${esa_sweep_dir:PATH}`` and ``${esa_component_model:NAME}`` (a defaults list's:
    ``jobs.component_choices``) known to OmegaConf (idempotent)."""
    OmegaConf.register_new_resolver("esa_root", default_root, replace=True)
    OmegaConf.register_new_resolver("esa_data_dir", default_data_dir, replace=True)
    OmegaConf.register_new_resolver("esa_choice", config_choice, replace=True)
    OmegaConf.register_new_resolver("esa_sweep_dir", sweep_dir, replace=True, use_cache=True)
    OmegaConf.register_new_resolver("esa_component_model", component_model, replace=True)
