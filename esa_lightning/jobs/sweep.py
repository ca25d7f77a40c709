"""Hydra multirun support: a summary of all jobs, and the refusal of multirun with devices > 1.

Lightning starts extra DDP processes by re-running the command line; under ``-m`` that command is
the whole sweep, so every child would run every job. Multirun jobs therefore train on one device
each; run a multi-device job without ``-m`` (or launch jobs on a cluster with the submitit
launcher, where each job is its own process).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from esa_lightning.errors import ESAInputError
from esa_lightning.io import atomic_path

log = logging.getLogger("esa_lightning")


def in_local_multirun() -> bool:
    """True inside a job of a ``-m`` sweep run by the basic (in-process) launcher."""
    if not HydraConfig.initialized():
        return False
    hc = HydraConfig.get()
    launcher = str(hc.launcher.get("_target_", ""))
    return hc.mode == RunMode.MULTIRUN and "basic_launcher" in launcher


def refuse_multidevice_multirun(trainer_cfg: DictConfig) -> None:
    devices = trainer_cfg.get("devices", 1)
    many = devices == -1 or devices == "auto" or (
        isinstance(devices, int) and devices > 1
    ) or (not isinstance(devices, int | str) and len(devices) > 1)
    if in_local_multirun() and (many or trainer_cfg.get("num_nodes", 1) > 1):
        raise ESAInputError(
            "multirun (-m) with more than one device is refused: Lightning would re-run the "
            "whole sweep in every DDP process. Sweep with trainer.devices=1, or run each "
            "multi-device job without -m (or with the submitit launcher)",
            column="trainer.devices",
            value=devices,
        )


class SweepSummary(Callback):
    """Writes ``summary.csv`` in the sweep folder: overrides and final metrics of every job."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        rows = []
        for job in sorted(p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()):
            row: dict[str, Any] = {"job": int(job.name)}
            overrides = job / ".hydra" / "overrides.yaml"
            if overrides.is_file():
                row["overrides"] = " ".join(
                    line.strip("- \n") for line in overrides.read_text().splitlines()
                )
            metrics = job / "metrics.json"
            if metrics.is_file():
                row.update(json.loads(metrics.read_text()))
            row["status"] = "done" if metrics.is_file() else "no metrics"
            rows.append(row)
        frame = pd.DataFrame(rows).sort_values("job")
        sweep_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(sweep_dir / "summary.csv") as tmp:
            frame.to_csv(tmp, index=False)
        log.info("sweep summary of %d jobs: %s", len(rows), sweep_dir / "summary.csv")
