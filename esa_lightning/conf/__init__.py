"""The Hydra configs (a package so that Hydra finds them as pkg://esa_lightning/conf).

Importing it registers the resolvers the configs use (``${esa_root:}``, ``${esa_choice:...}``,
``${esa_component_model:...}``: ``jobs.paths.register_resolvers``), so that Hydra's own compose
API composes them: ``initialize_config_module("esa_lightning.conf")`` imports it. A folder
given to ``initialize_config_dir`` is not imported: the Hydra plugin
``hydra_plugins.esa_lightning_resolvers`` registers them before every compose (without it on
the path: ``import esa_lightning.conf`` first)."""

from esa_lightning.jobs.paths import register_resolvers

register_resolvers()
