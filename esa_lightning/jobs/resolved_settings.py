"""A job's model and datamodule settings as plain values, with interpolations resolved against the
whole config (``+my_lr=0.01 model.lr=${my_lr}``) and the values they resolve to checked by the
settings' rules (``settings.check_settings`` skips interpolations); esa_full's ``components``
checked so too (``components.gru_ae.model.lr=${my_lr}``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from omegaconf import DictConfig, OmegaConf

from esa_lightning.errors import ESAInputError
from esa_lightning.settings import check_leaves

#: a node's settings whose value says what the node is (``settings.NODE_RULES``): set to an
#: interpolation, the node's other settings are checked against the kind it resolves to
NODE_KIND_KEYS = ("kind", "_target_")


def resolved_settings(cfg: DictConfig, keys: list[str]) -> dict[str, Any]:
    """``{key: cfg[key]}`` as plain values, interpolations resolved against the whole ``cfg`` (a
    key the command line adds: ``+my_lr=0.01 model.lr=${my_lr}``) and the values they resolve
    to checked by the settings' rules (``check_settings`` skips interpolations); one that
    cannot be resolved is an ``ESAInputError`` naming its setting."""
    from omegaconf.errors import InterpolationResolutionError

    try:
        out = {key: OmegaConf.to_container(cfg[key], resolve=True) for key in keys}
    except InterpolationResolutionError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ESAInputError(f"{exc.full_key}: cannot resolve its interpolation: {reason}") from None
    interpolated = [path for key in keys for path in _interpolated(cfg[key], key)]
    if interpolated:  # the node an interpolated kind makes: its other settings too
        nodes = [p.rpartition(".")[0] for p in interpolated if p.endswith(NODE_KIND_KEYS)]
        check_leaves(OmegaConf.create(out), only=interpolated + nodes)
    return out


def check_interpolated_settings(cfg: DictConfig, keys: list[str]) -> None:
    """Refuse a setting under ``keys`` whose interpolation resolves to a value the settings'
    rules refuse, or resolves to nothing (``resolved_settings``), leaving ``cfg`` as it is."""
    resolved_settings(cfg, keys)


def _interpolated(node: Any, prefix: str) -> Iterator[str]:
    """The dotted keys of ``node``'s settings (under ``prefix``) set to an interpolation."""
    if not isinstance(node, DictConfig):
        return
    for key in node.keys():
        path = f"{prefix}.{key}"
        if OmegaConf.is_interpolation(node, key):
            yield path
        else:
            yield from _interpolated(node._get_node(key), path)
