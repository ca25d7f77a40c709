"""``esa_lightning.train`` with several devices: the extra processes Lightning starts.

With ``trainer.devices=2`` (the ``ddp`` strategy), Lightning starts the other processes by
running the user's script again (``python script.py``, its ``_SubprocessScriptLauncher``), each
with a copy of the launching process's environment taken at that moment. So each extra process
calls ``train()`` again, composing the configs and naming a run folder of its own. ``train.py``
avoids that with the ``hydra.run.dir`` Lightning passes to Hydra apps; the API has no Hydra app,
so the launching process records its run folder in ``$ESA_LIGHTNING_RUN_DIR`` while it trains
(``launching_run``) and an extra process trains in that folder (``join_launching_run``).
Processes another launcher starts (``torchrun``, a cluster) never see that variable: without an
``output_dir`` their ``train()`` is refused, as each would name a folder of its own.

An extra process then ends, with exit 0, once its share of the fit is done (``end_extra_process``),
as ``train.py``'s extra processes do: ``train()`` returns on the launching process only, with the
detector and metrics that process alone computes and writes, and the user's script after
``train()`` runs once, as with one device. It ends with ``os._exit``: no ``finally`` block or
context manager of the script runs in it (a ``TemporaryDirectory`` around ``train()`` would
otherwise be removed while the launching process still writes into it). A second ``train()``
on several devices in the same script is therefore refused (``refuse_second_launch``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from typing import Any

from esa_lightning.errors import ESAInputError
from esa_lightning.run_folder import is_launching_process, rank_settings, unshared_folder_reason

RUN_DIR_ENV = "ESA_LIGHTNING_RUN_DIR"

_launched_before = False  # an earlier train() of this process ran with other processes


def join_launching_run(cfg: Any, folder_given: bool) -> None:
    """On a process Lightning started, the launching process's run folder for ``cfg``.

    Processes another launcher started (``torchrun``: ``WORLD_SIZE`` > 1 in each one's
    environment; ``srun``: its ``SLURM_`` task counts; no ``$ESA_LIGHTNING_RUN_DIR``) would each
    name a time-stamped folder of their own: without ``folder_given`` (``output_dir=`` or its
    override) that is refused."""
    folder = os.environ.get(RUN_DIR_ENV)
    if folder and not is_launching_process():
        cfg.paths.output_dir = folder
        return
    reason = unshared_folder_reason("output_dir= (or the override paths.output_dir=)")
    if not folder_given and reason is not None:
        raise ESAInputError(reason, column="output_dir")


@contextlib.contextmanager
def launching_run(cfg: Any) -> Iterator[None]:
    """While the launching process trains ``cfg``, its run folder in ``$ESA_LIGHTNING_RUN_DIR``
    for the processes Lightning starts (they copy the environment); restored afterwards."""
    global _launched_before
    if not is_launching_process():
        yield
        return
    refuse_second_launch(cfg.trainer)
    before = os.environ.get(RUN_DIR_ENV)
    os.environ[RUN_DIR_ENV] = str(cfg.paths.output_dir)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(RUN_DIR_ENV, None)
        else:
            os.environ[RUN_DIR_ENV] = before
        _launched_before = _launched_before or _ran_with_other_processes()


def _ran_with_other_processes() -> bool:
    """This process trained in a process group of several (Lightning leaves it initialised)."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def refuse_second_launch(trainer_cfg: Any) -> None:
    """A second ``train()`` on several devices in one script is refused: the other processes of
    the first one ended there (module docstring), so it would wait for them or fail in gloo."""
    from esa_lightning.jobs.sweep import asks_for_several_devices

    if _launched_before and asks_for_several_devices(trainer_cfg):
        raise ESAInputError(
            "only the first train() of a script may run on several devices: its other "
            "processes ended with it. Run each multi-device training in a script of its own",
            column="trainer.devices",
            value=trainer_cfg.get("devices", 1),
        )


def end_extra_process() -> None:
    """End a process Lightning started, with exit 0, once its share of the training is done
    (module docstring); nothing on the launching process."""
    if is_launching_process():
        return
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


def left_to_rank_zero(call: str) -> bool:
    """True, with a warning naming this process's rank, on a process with a rank above 0
    (``run_folder.RANK_VARIABLES``: ``torchrun``, ``srun`` or Lightning started it): ``call``
    (``esa_lightning.predict``) runs once, on global rank 0, as ``predict.py`` does. Every rank
    wrote the same output folder before. A warning and no exception: an error there would end
    the process, and ``torchrun`` or ``srun`` would then stop rank 0's job too."""
    ranks = rank_settings()
    if ranks:
        warnings.warn(
            f"{call} runs in one process, on global rank 0; this process ({' '.join(ranks)}) "
            "leaves it to rank 0 and returns None",
            UserWarning,
            stacklevel=3,
        )
    return bool(ranks)
