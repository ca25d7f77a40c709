"""The processes a model is trained in: whether the trainer settings ask for several
(``several_processes``, ``runs_ddp``), whether another launcher started them
(``started_by_another_launcher``), and Lightning's DDP without its wrapper for a model with no
gradient steps (``UnwrappedDDPStrategy``): what ``DetectorModule.trainer_arguments`` reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lightning.pytorch.strategies import DDPStrategy


def several_processes(trainer_config: Mapping[str, Any]) -> bool:
    """Whether ``trainer_config`` may ask Lightning for more than one process (``devices`` other
    than 1, ``auto`` and -1 included, or several nodes)."""
    return trainer_config.get("devices", 1) != 1 or trainer_config.get("num_nodes", 1) != 1


def runs_ddp(trainer_config: Mapping[str, Any]) -> bool:
    """Whether the trainer runs DDP: ``strategy=ddp``, or ``auto`` (Lightning's default) over
    several processes, which Lightning turns into DDP as well."""
    strategy = trainer_config.get("strategy", "auto")
    return strategy == "ddp" or (strategy == "auto" and several_processes(trainer_config))


def started_by_another_launcher() -> bool:
    """Whether a launcher Lightning recognises (torchrun, SLURM's srun, LSF, MPI: its cluster
    environments, in its order) started this run's processes, more than one, each running the
    script: Lightning starts none then, and each process takes its rank from the launcher."""
    from lightning.fabric.plugins.environments import (
        LSFEnvironment,
        MPIEnvironment,
        SLURMEnvironment,
        TorchElasticEnvironment,
    )

    kinds = (TorchElasticEnvironment, SLURMEnvironment, LSFEnvironment, MPIEnvironment)
    found = next((kind for kind in kinds if kind.detect()), None)
    return found is not None and found().world_size() > 1


class UnwrappedDDPStrategy(DDPStrategy):
    """Lightning's DDP without the ``DistributedDataParallel`` wrapper, which refuses a module
    with no parameter requiring a gradient ("DistributedDataParallel is not needed ..."): for
    such a model trained in a process group already up (a later component of a DDP run). The
    ranks keep their roles (rank 0 alone writes checkpoints; barriers and reductions see every
    rank), each fitting the model itself (``DetectorModule.trainer_arguments``)."""

    def configure_ddp(self) -> None:
        """Leave the model unwrapped: it has no gradients to average."""

    @property
    def distributed_sampler_kwargs(self) -> dict[str, int]:
        """One replica: every rank validates every item too (``validation_sampler``), as one
        process would; a baseline's ``val/loss`` is not reduced over the ranks."""
        return {"num_replicas": 1, "rank": 0}
