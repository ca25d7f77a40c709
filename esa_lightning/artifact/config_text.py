"""A detector's ``config.yaml``, parsed with bounds: no checksum covers it (it is text for
people, maybe edited), so a hostile one must not crash or stall the job that reads it."""

from __future__ import annotations

from typing import Any

import yaml

#: a training run writes a config.yaml of a few KB; a larger one is not parsed (PyYAML's pure
#: Python parser takes about a minute for 5 MB, and the artifact bounds its text at 256 MiB)
CONFIG_YAML_LIMIT = 2**20


class _NoAliases(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses aliases: a run never writes one, and nested ones make a
    value of billions of items for whatever formats or copies it."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("a YAML alias (a run's config.yaml has none)")
        return super().compose_node(parent, index)


def parse_config_yaml(text: str) -> Any:
    """The YAML value of ``text``; ``yaml.YAMLError`` saying why where it is larger than
    ``CONFIG_YAML_LIMIT``, holds an alias, is nested too deeply to parse, or is no YAML."""
    if len(text) > CONFIG_YAML_LIMIT:
        limit = f"{CONFIG_YAML_LIMIT:,}"
        raise yaml.YAMLError(f"larger than {limit} characters (a run writes a few KB)")
    try:
        return yaml.load(text, Loader=_NoAliases)  # noqa: S506 (a SafeLoader)
    except RecursionError:
        raise yaml.YAMLError("nested too deep to parse") from None
