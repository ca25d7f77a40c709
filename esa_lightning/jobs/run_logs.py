"""A training run's loggers (TensorBoard's runs, one per component), the fitted detector's
final metrics in them (docs/metrics_output.md, "TensorBoard tags") and its closing summary."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
from omegaconf import DictConfig, OmegaConf

from esa_lightning.callbacks import logging_step
from esa_lightning.jobs.common import instantiate_group
from esa_lightning.jobs.sweep import log_to_files


def run_loggers(cfg: DictConfig, name: str) -> list[Any]:
    """The configured loggers; TensorBoard's writes to the run ``tensorboard/<name>``."""
    from lightning.pytorch.loggers import TensorBoardLogger

    loggers = instantiate_group(cfg.get("logger"), "logger")
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger._name = name
    return loggers


def run_settings(cfg: DictConfig) -> dict[str, Any]:
    """The settings shown in TensorBoard's HParams tab: the detector's parts and its data, and
    the run's ``tags`` as one string (``baseline,q3``: a column to filter runs by), if any."""
    from esa_lightning.settings.values import tags_text

    keys = ["experiment_name", "seed", "data", "trainer"]
    keys += ["components", "combiner"] if cfg.get("components") else ["datamodule", "model"]
    settings = {
        k: OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k]
        for k in keys
        if cfg.get(k) is not None
    }
    tags = tags_text(cfg.get("tags"))
    if tags:
        settings["tags"] = tags
    return settings


def log_final_metrics(
    cfg: DictConfig, trainers: list[L.Trainer], metrics: dict[str, float]
) -> None:
    """The fitted detector's metrics (``val/...``, ``test/...``) and the run's settings.

    TensorBoard gets both in its HParams tab (``log_hyperparams(settings, metrics)``). With one
    component that is the component's own run, beside its training curves; with several
    (``esa_full``) a run of the experiment's name, so the combined detector's numbers are not
    appended to the last component's curves.

    They are logged at the run's training step: the steps its components took, summed, on the
    axis of their curves (``callbacks.logging_step``: the training batches that stepped, so a
    model fitted without gradient steps gets its finals after its curves, not at step 0). A run
    resumed into its folder (``ckpt_path=last``) appends to the same TensorBoard runs: the
    interrupted or shorter run's final metrics stay there, and the resumed run's, which trained
    further, come at a later step. The point at the last step is the shipped detector's, the one
    in ``metrics.json``.
    """
    from lightning.pytorch.loggers import TensorBoardLogger

    step = sum(logging_step(trainer) for trainer in trainers)
    loggers = trainers[0].loggers if len(trainers) == 1 else run_loggers(cfg, cfg.experiment_name)
    settings = run_settings(cfg)
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(settings, metrics or None, step=step)
        else:
            logger.log_hyperparams(settings)
            logger.log_metrics(metrics, step=step)
        logger.save()


def print_summary(
    metrics: dict[str, float], unscored: dict[str, str], output_dir: Path,
    components: Mapping[str, Any] | None = None,
) -> None:
    """The final numbers, the ranges not scored and why, what a fitted rule of ``components``
    says of itself (``PostRule.summary_note``: a rule that will never alarm) and the run
    folder (``merge.py``'s summary too): on the console, and the same lines in the run's log
    file (``train.log``, ``merge.log``; at info level), which a run read later has."""
    keys = [
        k
        for k in metrics
        if k.split("/", 1)[1]
        in ("EW_F_0.50", "EW_precision", "EW_recall", "AFF_F_0.50", "AUC_PR", "forecast_MAE")
    ]
    lines = [f"  {k:<22} {metrics[k]:.4f}" for k in sorted(keys)]
    lines += [f"  {prefix}: not scored ({reason})" for prefix, reason in unscored.items()]
    lines += [f"  note: {name}: {note}" for name, model in (components or {}).items()
              for rule in getattr(model, "post_rules", {}).values()
              if (note := rule.summary_note())]
    lines = ["results:", *lines, f"outputs: {output_dir.resolve()}"]
    print("\n".join(lines))
    for line in lines:  # the run folder's log (train.log, merge.log) holds them too
        log_to_files(line, level=logging.INFO)
