"""``${esa_component_model:NAME}``: the model a component is composed with, read while Hydra
composes the defaults list, so that an experiment's settings for one model family apply only
when the component has that model.

``conf/experiment/esa_full.yaml`` lists
``optional /experiment/esa_full/<name>@components.<name>: ${esa_component_model:<name>}``
after the component's model: ``conf/experiment/esa_full/<name>/<model>.yaml`` (esa_full's
settings of that component with that model) is merged where it exists, so a component whose
model is swapped (``model@components.channel_ensemble.model=zscore``) gets the new model's own
defaults, not options its model does not take.
"""

from __future__ import annotations

from typing import Any

#: the name returned where the component has no model (deleted with ``~``): no config has it
NO_MODEL = "none"


def component_model(name: str, _root_: Any = None) -> str:
    """The option of ``model@components.<name>.model`` chosen so far: ``_root_`` is the map of
    the choices Hydra hands a defaults list interpolation (the command line's included);
    ``NO_MODEL`` where none is chosen (or outside a defaults list)."""
    key = f"model@components.{name}.model"
    value = _root_.get(key) if _root_ is not None and hasattr(_root_, "get") else None
    return value if isinstance(value, str) else NO_MODEL
