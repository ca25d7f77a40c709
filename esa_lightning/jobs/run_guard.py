"""A new training run never writes into a folder that holds an earlier run's outputs.

Lightning only warns about a checkpoint folder that is not empty: a second run into the same
``hydra.run.dir`` wrote ``last-v1.ckpt`` beside the first run's ``last.ckpt`` and replaced its
``detector/`` and ``metrics.json``, and resuming that folder then restored the first run's
``last.ckpt``. ``refuse_earlier_run`` refuses such a run (no ``ckpt_path``) with one line naming
the folder and the two ways out; a resume (``ckpt_path=...``) goes on in it. A folder that is
empty or holds only ``.hydra/`` and the log of a run refused before it trained stays usable.

``RefuseEarlierRun`` (``train.yaml``'s ``hydra.callbacks.earlier_run``) checks before Hydra
writes ``.hydra/`` and the log into the folder: a run's folder (``hydra.run.dir``) and, for a
``-m`` sweep, the job folders of its ``hydra.sweep.dir`` (a sweep rerun into an earlier sweep's
folder would rewrite their ``.hydra/`` and the earlier ``summary.csv``). ``train()`` checks
again (the Python API, a job folder a sweep's own jobs share), as a sweep job's input error.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from esa_lightning.errors import ESAInputError
from esa_lightning.run_folder import is_launching_process

#: what a run that trained leaves in its folder (README, "What a run leaves")
FOLDERS_WRITTEN = ("checkpoints", "tensorboard")
OUTPUTS = ("detector", "metrics.json")


def earlier_outputs(folder: str | Path) -> list[str]:
    """The outputs of an earlier run that ``folder`` holds: ``detector``, ``metrics.json``, and
    ``checkpoints/`` or ``tensorboard/`` holding a file."""
    folder = Path(folder)
    found = [name for name in OUTPUTS if (folder / name).exists()]
    for name in FOLDERS_WRITTEN:
        if (folder / name).is_dir() and any(p.is_file() for p in (folder / name).rglob("*")):
            found.append(f"{name}/")
    return found


def refuse_earlier_run(folder: str | Path, ckpt_path: Any) -> None:
    """Refuse a new run (no ``ckpt_path``) into ``folder`` when it holds an earlier run's
    outputs: it would mix its checkpoints with them and replace its detector."""
    if ckpt_path:
        return
    found = earlier_outputs(folder)
    if found:
        raise ESAInputError(
            f"holds an earlier run's {', '.join(found)}: train into another folder "
            "(another hydra.run.dir), or resume that run with ckpt_path=last",
            path=folder,
        )


def refuse_earlier_sweep(sweep_dir: str | Path, ckpt_path: Any) -> None:
    """Refuse a ``-m`` sweep (no ``ckpt_path``) into a folder where an earlier sweep's job
    trained, naming the first such job folder."""
    sweep_dir = Path(sweep_dir)
    if ckpt_path or not sweep_dir.is_dir():
        return
    for job in sorted(p for p in sweep_dir.iterdir() if p.is_dir()):
        found = earlier_outputs(job)
        if found:
            raise ESAInputError(
                f"holds an earlier sweep's job {job.name} ({', '.join(found)}): sweep into "
                "another folder (another hydra.sweep.dir), or resume that sweep with "
                "ckpt_path=last",
                path=sweep_dir,
            )


class RefuseEarlierRun(Callback):
    """``refuse_earlier_run`` before Hydra writes into the run folder, ``refuse_earlier_sweep``
    before it writes into the sweep folder: one line, exit code 2, nothing written."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if is_launching_process():  # a DDP rank Lightning started shares its launcher's folder
            _exit_if_refused(refuse_earlier_run, config, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _exit_if_refused(refuse_earlier_sweep, config, "hydra.sweep.dir")


def _exit_if_refused(check: Callable[[Path, Any], None], config: DictConfig, key: str) -> None:
    try:
        folder = Path(str(OmegaConf.select(config, key)))
    except Exception:  # noqa: BLE001 - a folder known only later: train() checks it then
        return
    try:
        check(folder, OmegaConf.select(config, "ckpt_path", default=None))
    except ESAInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
