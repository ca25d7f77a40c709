"""A Hydra search path plugin that registers esa_lightning's OmegaConf resolvers for every
compose, so that the package's configs compose with Hydra's own API from any folder:
``initialize_config_dir`` (the package's ``conf`` folder, or a copy of it) as well as
``initialize_config_module("esa_lightning.conf")``, without ``import esa_lightning.conf`` first.

Hydra imports every module under the ``hydra_plugins`` namespace package when it first looks
for plugins, and asks each ``SearchPathPlugin`` to amend the search path of every config
loader it creates (``hydra.main``, ``initialize*``). This one leaves the search path as it is:
the package's configs are not added to other applications' searches (nor twice to
``train.py``'s); it only makes ``${esa_root:}``, ``${esa_choice:...}``,
``${esa_component_model:...}`` etc. known (``esa_lightning.jobs.paths.register_resolvers``:
idempotent, and cheap: it loads neither torch nor Lightning). A Hydra application of another
project in the same environment gets these ``esa_``-named resolvers and nothing else.
"""

from __future__ import annotations

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class ESALightningResolvers(SearchPathPlugin):
    """Registers the configs' resolvers before Hydra composes (the search path unchanged)."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        # imported here, not when Hydra scans its plugins: every Hydra application scans them
        from esa_lightning.jobs.paths import register_resolvers

        register_resolvers()
