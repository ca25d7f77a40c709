"""A run of components (``experiment=esa_full``) reads each component's own ``datamodule`` and
``model`` (``components.<name>.datamodule``, ``components.<name>.model``); its top-level
``datamodule`` and ``model`` are null. ``refuse_unused_top_level`` refuses an override of either
given with it, naming the components' own keys to set instead."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import OmegaConf

from esa_lightning.errors import ESAInputError

if TYPE_CHECKING:
    from esa_lightning.jobs.paths import ConfigFolders

#: the top-level nodes a run of components leaves null
UNUSED = ("datamodule", "model")
#: how the refusal says what each component has of its own
OWN = {"datamodule": "trains each component on its own datamodule",
       "model": "gives each component its own model"}


def target_path(key: str) -> str:
    """The config path an override's key sets: ``model.lr`` and ``datamodule`` as they are, a
    group chosen at a package (``model/threshold@model.post_processing.threshold``) its package,
    a group without one (``model/threshold``) its folder's dotted path."""
    group, at, package = key.strip().lstrip("+").partition("@")
    return package if at else group.replace("/", ".")


def refuse_unused_top_level(config_name: str, overrides: Sequence[str],
                            config_dir: Path | None = None,
                            folders: ConfigFolders | None = None) -> None:
    """An override of the top-level ``datamodule`` or ``model`` (``datamodule=rows``,
    ``model.lr=0.1``, ``model/threshold@model.post_processing.threshold=telemanom``) on a run
    of components (``experiment=esa_full``, whose top-level ``datamodule`` and ``model`` are
    null: no component reads them) is refused naming the components' keys to set instead; it
    was Hydra's "Could not override" (suggesting a ``+`` that nothing would read) or taken into
    a node no component read. ``config_dir``: the configs (the package's by default);
    ``folders``: a command line's ``-cp``/``-cd`` (``paths.compose_config``)."""
    from esa_lightning.jobs.paths import compose_config

    given = [o for o in overrides if not o.startswith("~")
             and target_path(o.partition("=")[0]).split(".")[0] in UNUSED]
    if not given:
        return
    try:
        cfg = compose_config(config_name, [o for o in overrides if o not in given], config_dir,
                             folders=folders)
    except Exception:  # noqa: BLE001 - the others do not compose: Hydra's error is reported
        return
    components = cfg.get("components")
    if not components:
        return
    for override in given:
        key, _, value = override.strip().lstrip("+").partition("=")
        path = target_path(key)
        root = path.split(".")[0]
        if cfg.get(root) is not None:
            continue
        having = [name for name, spec in components.items()
                  if OmegaConf.select(spec, path, default=None) is not None]
        names = having or list(components)
        group = key.strip().partition("@")[0]
        added = override.strip().startswith("+")  # a key added: the components' added too
        if "." in group and not having and not added:  # no component's model has it
            owners = " or ".join(f"components.{name}.{root}" for name in names)
            instead = (f"no component's {root} has {path.partition('.')[2]} (set a key of "
                       f"{owners})")
        elif "." in group:  # a setting: the components' own that have it, else all
            plus = "+" if added and not having else ""
            instead = "set " + " ".join(f"{plus}components.{name}.{path}={value}"
                                        for name in names) + " instead"
        else:  # a choice: a component's own group, at the component's package
            instead = "name a component's own instead: " + " or ".join(
                f"{group}@components.{name}.{path}={value}" for name in names)
        raise ESAInputError(
            f"{override.strip()}: experiment {cfg.get('experiment_name')} {OWN[root]}, the "
            f"top-level {root} is not used: {instead}")
