"""A job's settings as plain values, with interpolations resolved against the whole config
(``+my_lr=0.01 model.lr=${my_lr}``, ``+x=-1 trainer.max_epochs=${x}``, ``data.channels=${x}``,
an item of a list) and the values they resolve to checked by the settings' rules
(``settings.check_settings`` skips interpolations); esa_full's ``components`` checked so too
(``components.gru_ae.model.lr=${my_lr}``). ``check_interpolated_settings(cfg)`` checks every
top-level key the rules cover, before the data are read (train.py and predict.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from esa_lightning.errors import ESAInputError
from esa_lightning.settings import SKIPPED, check_leaves, check_not_null, child_key

#: a node's settings whose value says what the node is (``settings.NODE_RULES``): set to an
#: interpolation, the node's other settings are checked against the kind it resolves to
NODE_KIND_KEYS = ("kind", "_target_")


def resolved_settings(cfg: DictConfig, keys: list[str]) -> dict[str, Any]:
    """``{key: cfg[key]}`` as plain values, interpolations resolved against the whole ``cfg`` (a
    key the command line adds: ``+my_lr=0.01 model.lr=${my_lr}``) and the values they resolve
    to checked by the settings' rules (``check_settings`` skips interpolations); one that
    cannot be resolved is an ``ESAInputError`` naming its setting. ``keys``: top-level keys,
    a node's (``model``) or a value's (``seed``)."""
    from omegaconf.errors import InterpolationResolutionError

    try:
        out = {key: _plain(cfg, key) for key in keys}
    except InterpolationResolutionError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ESAInputError(f"{exc.full_key}: cannot resolve its interpolation: {reason}") from None
    interpolated = [path for key in keys for path in _interpolated_under(cfg, key)]
    if interpolated:  # the node an interpolated kind makes: its other settings too
        nodes = [p.rpartition(".")[0] for p in interpolated if p.endswith(NODE_KIND_KEYS)]
        resolved = OmegaConf.create(out)
        check_not_null(resolved, cfg.get("task_name"))  # ckpt=${x}, +x=null
        check_leaves(resolved, only=interpolated + nodes)
    return out


def check_interpolated_settings(cfg: DictConfig, keys: list[str] | None = None) -> None:
    """Refuse a setting under ``keys`` (None: every top-level key but ``settings.SKIPPED``:
    Hydra's, the paths, a search space) whose interpolation resolves to a value the settings'
    rules refuse, or resolves to nothing (``resolved_settings``), leaving ``cfg`` as it is.
    Only the top-level keys that hold an interpolation are resolved."""
    if keys is None:
        keys = [str(key) for key in cfg.keys() if key not in SKIPPED]
    keys = [key for key in keys if next(_interpolated_under(cfg, key), None) is not None]
    if keys:
        resolved_settings(cfg, keys)


def _plain(cfg: DictConfig, key: str) -> Any:
    """``cfg[key]`` with its interpolations resolved: a node as plain containers."""
    value = cfg[key]
    if isinstance(value, DictConfig | ListConfig):
        return OmegaConf.to_container(value, resolve=True)
    return value


def _interpolated_under(cfg: DictConfig, key: str) -> Iterator[str]:
    """The dotted keys of the settings at and under the top-level ``key`` set to an
    interpolation."""
    if OmegaConf.is_interpolation(cfg, key):
        yield key
    else:
        yield from _interpolated(cfg._get_node(key), key)


def _interpolated(node: Any, prefix: str) -> Iterator[str]:
    """The dotted keys of ``node``'s settings (under ``prefix``) set to an interpolation, a
    list's items among them (``data.channels[1]``)."""
    if isinstance(node, DictConfig | ListConfig) and (node._is_none() or node._is_missing()):
        return
    if isinstance(node, DictConfig):
        keys: list[Any] = list(node.keys())
    elif isinstance(node, ListConfig):
        keys = list(range(len(node)))
    else:
        return
    for key in keys:
        path = child_key(prefix, key, isinstance(node, ListConfig))
        if OmegaConf.is_interpolation(node, key):
            yield path
        else:
            yield from _interpolated(node._get_node(key), path)
