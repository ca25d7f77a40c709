"""A Hydra callback that holds the run folder from before Hydra writes into it (``.hydra/``, the
job's log) until the job ends: a second run into a held folder stops with one line, exit 2,
having written nothing there. The jobs hold the folder themselves as well (re-entrant), so a
job called without Hydra's command line is protected too."""

from __future__ import annotations

import atexit
import contextlib
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from esa_lightning.errors import ESAInputError
from esa_lightning.io import make_output_folder
from esa_lightning.run_folder import (
    SWEEP_SETTING,
    is_launching_process,
    lock_run_folder,
    make_run_folder,
)


class HoldRunFolder(Callback):
    """``hydra/default.yaml``'s ``callbacks.run_folder``: lock ``hydra.run.dir`` (RUN mode; in a
    sweep, ``hydra.sweep.dir`` until the sweep ends, and every job locks its own folder)."""

    def __init__(self) -> None:
        self._held = contextlib.ExitStack()
        atexit.register(self._held.close)  # also when the job ends with SystemExit

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not is_launching_process():
            return  # a DDP rank Lightning started: its launcher holds the folder
        try:
            folder = Path(str(OmegaConf.select(config, "hydra.run.dir")))
        except Exception:  # noqa: BLE001 - a folder known only later: the job locks it then
            return
        try:
            # made by this run: removed if refused before it trains. An unusable folder (a
            # file in the way) stops here: Hydra makes it next, before the job could say so
            make_run_folder(folder)
            self._held.enter_context(lock_run_folder(folder))
        except ESAInputError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # Hydra's launcher makes the sweep folder next: one it cannot make stops here. It is
        # held until the sweep ends: a second sweep into it, started before this one's first
        # job trained, passed the check for an earlier sweep's jobs and rewrote this one's
        # multirun.yaml, its jobs' .hydra/ and summary.csv. train.yaml's earlier_run callback,
        # after this one, then checks the held folder for an earlier sweep's jobs.
        try:
            folder = Path(str(OmegaConf.select(config, "hydra.sweep.dir")))
        except Exception:  # noqa: BLE001 - a folder known only later: Hydra reports it
            return
        try:
            make_output_folder(folder)
            self._held.enter_context(lock_run_folder(folder, SWEEP_SETTING))
        except ESAInputError as exc:
            self._held.close()
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._held.close()

    def on_run_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._held.close()
