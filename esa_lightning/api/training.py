"""Training and batch prediction from a notebook: ``train.py`` / ``predict.py`` in-process.

    import esa_lightning
    run = esa_lightning.train(["experiment=smoke"])      # Hydra overrides, as on the command line
    run.detector.predict(df); run.metrics; run.output_dir

The configs are composed with Hydra's compose API (no ``hydra.main``: nothing changes the
working directory or the logging setup) and the jobs run unchanged. Where files go:

- ``root_dir`` (``paths.root_dir``: ``datasets/`` with the generated synthetic mission and the
  readers' caches, and ``outputs/``): the argument (or the override ``paths.root_dir=``), else
  ``$ESA_LIGHTNING_ROOT``, else ``~/esa_lightning``. Never the current directory unless asked
  (``root_dir="."`` shares the clone's ``datasets/`` and ``outputs/`` with ``python train.py``).
- ``output_dir`` (the run folder): the argument (or the override ``paths.output_dir=`` or
  ``hydra.run.dir=``), else ``<root_dir>/outputs/<experiment_name>/<date>_<time>``, as
  ``train.py`` names it. An argument and an override naming different places are refused.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from esa_lightning.install import composition_reason
from esa_lightning.io import read_settings_json

ROOT_ENV = "ESA_LIGHTNING_ROOT"
DEFAULT_ROOT = Path("~") / "esa_lightning"


@dataclass
class RunResult:
    """A finished run: its folder, its ``metrics.json`` and, for training, the detector."""

    output_dir: Path
    metrics: dict[str, float] = field(default_factory=dict)
    detector: Any = None  # esa_lightning.api.Detector after train()


def compose_job(
    name: str,
    overrides: Sequence[str] = (),
    *,
    output_dir: str | os.PathLike | None = None,
    root_dir: str | os.PathLike | None = None,
) -> Any:
    """``conf/<name>.yaml`` composed with ``overrides``, its paths set as the module says."""
    from hydra.errors import HydraException
    from omegaconf import open_dict

    from esa_lightning.errors import ESAInputError, quoted
    from esa_lightning.jobs.paths import compose_config

    if isinstance(overrides, str | bytes):  # list("data=kaggle") would be one override a letter
        raise ESAInputError(
            f"overrides must be a list of key=value strings, e.g. [{quoted(overrides)}], not a "
            "string",
            column="overrides",
        )
    if name == "train":  # a component's model picks its datamodule, as train.py's does
        from esa_lightning.jobs.component_datamodules import with_component_datamodules

        overrides = with_component_datamodules(list(overrides))
    try:
        cfg = compose_config(name, list(overrides))
    except HydraException as exc:  # an unknown group option or key: one line, as train.py
        raise ESAInputError(composition_reason(exc)) from None
    given = _path_overrides(overrides)
    with open_dict(cfg):
        # an override's value is read as train.py reads it: interpolations resolved in the config
        if "paths.root_dir" in given:
            root_dir = _one_of(root_dir, str(cfg.paths.root_dir), "root_dir", "paths.root_dir")
        root = Path(root_dir or os.environ.get(ROOT_ENV) or DEFAULT_ROOT).expanduser().resolve()
        cfg.paths.root_dir = str(root)
        for key in RUN_DIR_KEYS:
            if key in given:
                cfg.paths.output_dir = given[key]  # resolved against the root just set
                output_dir = _one_of(output_dir, str(cfg.paths.output_dir), "output_dir", key)
        if output_dir is None:  # as train.py names it: runs in the same second get their own
            stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S.%f")
            output_dir = root / "outputs" / str(cfg.experiment_name) / stamp
        cfg.paths.output_dir = str(Path(output_dir).expanduser().resolve())
    return cfg


RUN_DIR_KEYS = ("paths.output_dir", "hydra.run.dir")
PATH_KEYS = ("paths.root_dir", *RUN_DIR_KEYS)


def _path_overrides(overrides: Sequence[str]) -> dict[str, Any]:
    """The values ``overrides`` give the run's root and folder (as on ``train.py``'s command
    line), which the API turns into its ``root_dir`` / ``output_dir``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return {o.key_or_group: o.value() for o in parsed if o.key_or_group in PATH_KEYS}


def _one_of(argument: Any, override: str | None, name: str, key: str) -> Any:
    """The argument, else the override; both, naming different places, is refused."""
    if override is None:
        return argument
    if argument is not None and Path(argument).expanduser().resolve() != Path(
        override
    ).expanduser().resolve():
        from esa_lightning.errors import ESAInputError

        raise ESAInputError(
            f"{name}={str(argument)!r} and the override {key}={override} name different "
            "places: give one",
            column=key,
        )
    return override


def train(
    overrides: Sequence[str] = (),
    *,
    output_dir: str | os.PathLike | None = None,
    root_dir: str | os.PathLike | None = None,
) -> RunResult:
    """Run ``train.py`` with ``overrides`` in-process; return the saved detector (loaded back
    as ``esa_lightning.Detector``), the metrics and the run folder.

    With several devices the processes Lightning starts re-run the script; their ``train()``
    trains in this process's run folder and ends their process (exit 0) instead of returning
    (``api.ranks``): the script after ``train()`` runs once, as with one device."""
    from esa_lightning.api import Detector
    from esa_lightning.api.ranks import end_extra_process, join_launching_run, launching_run
    from esa_lightning.jobs.component_config import component_specs
    from esa_lightning.jobs.component_datamodules import refuse_component_datamodules
    from esa_lightning.jobs.train import train as train_job
    from esa_lightning.settings import check_settings, refuse_shadowed_trainer_keys

    cfg = compose_job("train", overrides, output_dir=output_dir, root_dir=root_dir)
    given = output_dir is not None or bool(set(_path_overrides(overrides)) & set(RUN_DIR_KEYS))
    join_launching_run(cfg, given)  # a DDP process Lightning started: the launcher's folder
    check_settings(cfg)  # as train.py: a bad value is named before any data is read
    refuse_shadowed_trainer_keys(cfg, list(overrides))
    if cfg.get("components"):  # as the job does, its hints naming these overrides' "+"
        refuse_component_datamodules(component_specs(cfg), list(overrides))
    with launching_run(cfg):
        train_job(cfg)
    end_extra_process()  # a DDP process Lightning started ends here, as train.py's do
    out = Path(cfg.paths.output_dir)
    return RunResult(out, _metrics(out), Detector.load(out / "detector"))


def predict(
    detector_dir: str | os.PathLike,
    overrides: Sequence[str] = (),
    *,
    output_dir: str | os.PathLike | None = None,
    root_dir: str | os.PathLike | None = None,
) -> RunResult | None:
    """Run ``predict.py ckpt=detector_dir`` with ``overrides`` (e.g. ``data=kaggle``,
    ``data.root=...``) in-process; the run folder holds its submission and report.

    On a process with a rank above 0 (``torchrun``, ``srun``) nothing is read or written: it
    returns None with a ``UserWarning``, rank 0 predicting once (``api.ranks``)."""
    from omegaconf import open_dict

    from esa_lightning.api.ranks import left_to_rank_zero
    from esa_lightning.jobs.predict import predict as predict_job
    from esa_lightning.settings import check_settings

    if left_to_rank_zero("esa_lightning.predict"):
        return None
    cfg = compose_job("predict", overrides, output_dir=output_dir, root_dir=root_dir)
    with open_dict(cfg):  # not an override: any path, quotes and '=' included
        cfg.ckpt = str(Path(detector_dir).expanduser().resolve())
    check_settings(cfg)  # as predict.py
    metrics = predict_job(cfg, list(overrides), api=True)  # refusals worded for the API
    return RunResult(Path(cfg.paths.output_dir), dict(metrics or {}))


def _metrics(out: Path) -> dict[str, float]:
    path = out / "metrics.json"
    return read_settings_json(path) if path.is_file() else {}
