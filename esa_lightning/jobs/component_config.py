"""The parts of a run's config each component trains with: the detector's components
(``esa_full``'s, or the single datamodule + model), a component's callbacks and trainer merged
over the run's, where each part is set (for refusals naming the key), and the labels' facts
logged for the supervised ones."""

from __future__ import annotations

import logging
from typing import Any

from omegaconf import DictConfig, OmegaConf

from esa_lightning.data.label_facts import label_facts, supervision_warnings
from esa_lightning.jobs.resolved_settings import check_interpolated_settings, resolved_settings
from esa_lightning.jobs.targets import detector_class

log = logging.getLogger("esa_lightning")


def component_specs(cfg: DictConfig) -> dict[str, DictConfig]:
    """The detector's trainable parts: ``components`` (esa_full) or the single datamodule+model,
    resolved against the whole config (``+my_lr=0.01 model.lr=${my_lr}``: ``resolved_settings``;
    the components, part of it, resolve so where read, their interpolations checked here)."""
    if cfg.get("components"):
        check_interpolated_settings(cfg, ["components"])
        return dict(cfg.components.items())
    single = OmegaConf.create(resolved_settings(cfg, ["datamodule", "model"]))
    return {cfg.experiment_name: single}


def component_callbacks(cfg: DictConfig, spec: DictConfig) -> DictConfig | None:
    """The run's ``callbacks`` with a component's own ``callbacks`` node merged over them (in
    ``esa_full``, the channel ensemble early-stops on its validation loss; the GRU does not)."""
    own = spec.get("callbacks")
    if own is None:
        return cfg.get("callbacks")
    run = cfg.get("callbacks")
    base = OmegaConf.create({} if run is None else OmegaConf.to_container(run, resolve=True))
    return OmegaConf.merge(base, OmegaConf.to_container(own, resolve=True))


def warn_about_labels(cfg: DictConfig, mission: Any) -> None:
    """Log the labels' facts; warn when a supervised component has too few to learn from."""
    facts = label_facts(mission)
    if facts is None:
        return
    log.info("%s", facts.summary())
    for name, spec in component_specs(cfg).items():
        model_class = detector_class(spec.model)
        if getattr(model_class, "supervised", False):
            for warning in supervision_warnings(facts):  # the component, and its family
                log.warning("%s (%s): %s", name, model_class.__name__, warning)


def component_trainer_config(cfg: DictConfig, spec: DictConfig) -> DictConfig:
    """The run's ``trainer`` settings with the component's own ``trainer`` on top."""
    return OmegaConf.merge(
        OmegaConf.to_container(cfg.trainer, resolve=True),
        OmegaConf.to_container(spec.get("trainer") or OmegaConf.create(), resolve=True),
    )


def component_key(cfg: DictConfig, name: str, part: str) -> str:
    """Where component ``name``'s ``part`` (``model``, ``trainer``) is set: ``part`` of a single
    model, else ``components.<name>.<part>`` (its trainer on top of the run's ``trainer``)."""
    return f"components.{name}.{part}" if cfg.get("components") else part
