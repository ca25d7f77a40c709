"""The plan of an Optuna sweep (``optuna_sweep``): the command line split into the overrides
every trial shares and the searched keys, checked against the composed ``train.yaml`` before any
trial runs (the search node, the direction against the metric, the number of trials)."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.override_parser.types import Override
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from esa_lightning.errors import ESAInputError
from esa_lightning.install import composition_reason
from esa_lightning.jobs.paths import ConfigFolders, compose_config, missing_primary_config
from esa_lightning.jobs.sweep_space import dimension, override_value, parse_overrides

SEARCH_NODE = "optuna"


@dataclass
class SweepPlan:
    """What every trial shares (``overrides``) and what Optuna chooses per trial (``space``)."""

    overrides: list[str]
    space: dict[str, Override]
    direction: str
    metric: str
    sampler: dict[str, Any] | None
    sweep_dir: Path
    study_name: str
    storage: str
    n_trials: int
    config_dir: Path
    train_command: list[str] = field(default_factory=list)
    #: the command line's ``--config-path`` (absolute, or ``pkg://``), ``--config-name`` and
    #: ``--config-dir`` (absolute)
    config_path: str | None = None
    config_name: str = "train"
    added_dir: str | None = None

    @property
    def config_flags(self) -> list[str]:
        """``-cp DIR -cn NAME -cd DIR`` as given, for each trial's ``train.py``."""
        return config_flags(self.config_path, self.config_name, self.added_dir)

    def description(self) -> dict[str, Any]:
        """What defines the study (stored with it; a resumed run must match)."""
        described = {
            "overrides": canonical_overrides(self.overrides),
            "space": {k: o.input_line for k, o in sorted(self.space.items())},
            "metric": self.metric,
        }
        if self.config_flags:  # a study of the package's configs is described as before
            described["configs"] = " ".join(self.config_flags)
        return described


def config_flags(config_path: str | None, config_name: str = "train",
                 added_dir: str | None = None) -> list[str]:
    """The flags that give ``train.py`` the configs a search composes: ``-cp DIR`` where
    ``config_path`` is given, ``-cn NAME`` where ``config_name`` is not ``train``, ``-cd DIR``
    where ``added_dir`` is given."""
    return ([*(["-cp", config_path] if config_path else []),
             *(["-cn", config_name] if config_name != "train" else []),
             *(["-cd", added_dir] if added_dir else [])])


def canonical_overrides(lines: list[str]) -> list[str]:
    """``lines`` in an order that does not depend on how the command line was written: sorted
    when no key repeats or holds another (Hydra's result then does not depend on their order),
    else as given (the later of two values wins)."""
    keys = [o.key_or_group for o in parse_overrides(lines, "command line")]
    nested = any(a != b and b.startswith(a + ".") for a in keys for b in keys)
    return lines if nested or len(set(keys)) < len(keys) else sorted(lines)


def compose_train(config_dir: Path, overrides: list[str], config_path: str | None = None,
                  config_name: str = "train", added_dir: str | None = None) -> DictConfig:
    """``train.yaml`` (``config_path``/``config_name``/``added_dir``: a ``-cp DIR -cn NAME
    -cd DIR`` given) composed
    with ``overrides`` (no Hydra run: nothing is created); a key of
    esa_full's unused top-level model or datamodule (``hparams_search=optuna``'s ``model.lr``)
    is refused naming the components' keys (``refuse_unused_top_level``)."""
    from esa_lightning.jobs.component_datamodules import with_component_datamodules
    from esa_lightning.jobs.unused_top_level import refuse_unused_top_level

    folders = ConfigFolders(config_path or None, added_dir or None)
    flags = config_flags(config_path, config_name, added_dir)  # read by with_component_datamodules
    refuse_unused_top_level(config_name, overrides, config_dir, folders)
    try:
        return compose_config(
            config_name, with_component_datamodules([*flags, *overrides], config_dir)[len(flags):],
            config_dir, folders=folders)
    except HydraException as exc:
        if "Cannot find primary config" in str(exc):
            raise ESAInputError(missing_primary_config(config_name, folders, config_dir)) from None
        reason = composition_reason(exc)
        raise ESAInputError(f"the overrides do not compose: {reason}") from None


def make_plan(args: argparse.Namespace, config_dir: Path, train_command: list[str]) -> SweepPlan:
    """Split the command line into the shared overrides and the searched keys, compose the run's
    config once (a bad override fails here, before any trial) and read its search space."""
    plain, searched = [], {}
    for override in parse_overrides(args.overrides, "command line"):
        if override.is_sweep_override():
            searched[override.key_or_group] = override
        else:
            plain.append(override.input_line)
    added = getattr(args, "config_dir", None)  # each trial's train.py gets the absolute folder
    configs = (getattr(args, "config_path", None), getattr(args, "config_name", None) or "train",
               os.path.abspath(os.path.expanduser(added)) if added else None)
    cfg = compose_train(config_dir, plain, *configs)
    node = cfg.get(SEARCH_NODE) or OmegaConf.create({})
    fixed = {o.key_or_group: o.input_line for o in parse_overrides(plain, "command line")}
    space, fixed_params = {}, []
    for key, expr in (node.get("params") or {}).items():
        if key in fixed:  # a plain command-line value fixes a searched key
            fixed_params.append(fixed[key])
        else:
            space[key] = parse_overrides([f"{key}={expr}"], f"{SEARCH_NODE}.params.{key}")[0]
    space.update(searched)
    if not space and fixed_params:  # hparams_search=NAME was given: say what emptied it
        chosen = fixed.get("hparams_search", "hparams_search")
        raise ESAInputError(
            f"nothing to search: the command line fixes every key {chosen} searches "
            f"({' '.join(fixed_params)}): leave one of them out, or give it a sweep value "
            f"such as {fixed_params[-1].split('=', 1)[0]}=choice(...)",
            column=f"{SEARCH_NODE}.params",
        )
    if not space:
        raise ESAInputError(
            "nothing to search: add hparams_search=NAME (esa_lightning/conf/hparams_search) "
            "or a sweep override such as model.lr=interval(0.0003,0.01)",
            column=f"{SEARCH_NODE}.params",
        )
    direction = str(node.get("direction", "maximize"))
    if direction not in ("maximize", "minimize"):
        raise ESAInputError(
            "maximize or minimize", column=f"{SEARCH_NODE}.direction", value=direction
        )
    metric = str(cfg.optimized_metric)
    if not metric.startswith("val/"):  # the best trial would be chosen on the held-out range
        raise ESAInputError(
            "a sweep chooses its trials by a validation metric (val/...), never by the test "
            "range it reports: e.g. optimized_metric=val/EW_F_0.50",
            column="optimized_metric",
            value=metric,
        )
    refuse_direction_against_metric(metric, direction)
    experiment = str(cfg.experiment_name)
    study_name = args.study_name or str(node.get("study_name") or experiment)
    sweep_dir = Path(args.sweep_dir or Path(cfg.paths.log_dir) / experiment / "sweeps" / study_name)
    if SEARCH_NODE in cfg:  # trials are plain train.py runs (train.py warns about this node)
        plain.append(f"~{SEARCH_NODE}")
    # every searched key exists in the run's config (e.g. the searched model's), before any trial
    firsts = [f"{o.get_key_element()}={override_value(dimension(k, o).first())}"
              for k, o in space.items()]
    try:
        compose_train(config_dir, [*plain, *firsts], *configs)
    except ESAInputError as exc:
        raise ESAInputError(
            f"the searched keys ({', '.join(space)}) do not fit this run's config: {exc.reason}",
            column=f"{SEARCH_NODE}.params",
        ) from None
    sampler = node.get("sampler")
    n_trials = args.n_trials if args.n_trials is not None else node.get("n_trials", 20)
    if not isinstance(n_trials, int) or isinstance(n_trials, bool) or n_trials < 1:
        raise ESAInputError(  # a study of no trial would run nothing and say nothing
            "complete trials the study should hold: at least 1 (--n-trials N)",
            column=f"{SEARCH_NODE}.n_trials",
            value=n_trials,
        )
    return SweepPlan(
        overrides=plain,
        space=space,
        direction=direction,
        metric=metric,
        sampler=OmegaConf.to_container(sampler, resolve=True) if sampler else None,
        sweep_dir=sweep_dir,
        study_name=study_name,
        storage=args.storage or f"sqlite:///{sweep_dir / 'optuna.db'}",
        n_trials=n_trials,
        config_dir=config_dir,
        train_command=train_command,
        config_path=configs[0],
        config_name=configs[1],
        added_dir=configs[2],
    )


#: the sense of the metric names whose better end is known: an error is better low, a score high
LOWER_IS_BETTER = ("MAE",)
HIGHER_IS_BETTER = ("F_0.50", "precision", "recall", "AUC_PR")


def refuse_direction_against_metric(metric: str, direction: str) -> None:
    """Refuse a study that would keep the worst trial: an error (``val/forecast_MAE``)
    maximised, a score (``val/EW_F_0.50``, ``_anomaly`` variants too) minimised. A metric of
    no known sense (``ADTQC_after``) takes the direction given."""
    name = metric.rsplit("/", 1)[-1].removesuffix("_anomaly")
    wanted = ("minimize" if name.endswith(LOWER_IS_BETTER)
              else "maximize" if name.endswith(HIGHER_IS_BETTER) else direction)
    if wanted != direction:
        raise ESAInputError(
            f"a {'lower' if wanted == 'minimize' else 'higher'} {metric} is better: "
            f"{wanted} it ({SEARCH_NODE}.direction={wanted}, +{SEARCH_NODE}.direction={wanted} "
            "without hparams_search=), or choose another optimized_metric",
            column=f"{SEARCH_NODE}.direction",
            value=direction,
        )
