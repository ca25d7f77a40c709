"""Which trainer settings may start more than one process (``jobs.sweep.asks_for_several_devices``,
behind the refusal of multi-device multirun and of a second multi-device ``train()``), and the
processes another launcher (torchrun, srun) started."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from esa_lightning.jobs.sweep import asks_for_several_devices


@pytest.mark.parametrize(
    ("devices", "num_nodes", "several"),
    [
        (1, 1, False),
        (2, 1, True),
        (-1, 1, True),
        ("auto", 1, True),
        ([0], 1, False),
        ([0, 1], 1, True),
        (1, 2, True),
        # Lightning reads a string as a count or a list of GPU indices: "2" and "0,1" are two
        # devices, "-1" every one; they were taken for one device
        ("2", 1, True),
        ("0,1", 1, True),
        ("-1", 1, True),
        ("1", 1, False),
        ("0,", 1, False),
    ],
)
def test_devices_that_start_several_processes(devices, num_nodes, several):
    trainer = OmegaConf.create({"devices": devices, "num_nodes": num_nodes})
    assert asks_for_several_devices(trainer) is several


TORCHRUN_RANK_1 = {"TORCHELASTIC_RUN_ID": "test", "RANK": "1", "LOCAL_RANK": "1",
                   "GROUP_RANK": "0", "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2",
                   "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}


def test_a_model_without_gradient_steps_keeps_its_rank_under_torchrun(monkeypatch):
    """Under torchrun (every process started before the script runs) a model without a
    trainable parameter was given one device, so each rank trained alone as Lightning's global
    rank 0 and each wrote the checkpoints: rank 1 keeps its rank, unwrapped, on all the data."""
    from esa_lightning.jobs.train import make_trainer
    from esa_lightning.models.processes import UnwrappedDDPStrategy
    from esa_lightning.models.zscore.model import RobustZScore

    for name, value in TORCHRUN_RANK_1.items():
        monkeypatch.setenv(name, value)
    asked = OmegaConf.create({"_target_": "lightning.Trainer", "devices": 2, "accelerator": "cpu",
                              "strategy": "auto", "enable_progress_bar": False})
    # as train.py builds a component's trainer (prepare_component)
    settings = OmegaConf.merge(asked, RobustZScore(n_channels=2).trainer_arguments(asked))
    rank_1 = make_trainer(settings, callbacks=[], loggers=[])
    assert (rank_1.global_rank, rank_1.world_size, rank_1.is_global_zero) == (1, 2, False)
    assert isinstance(rank_1.strategy, UnwrappedDDPStrategy)


SLURM_VARIABLES = ("SLURM_NTASKS", "SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_JOB_NAME",
                   "WORLD_SIZE", "RANK", "LOCAL_RANK", "NODE_RANK")


@pytest.mark.parametrize(
    "env",
    [{"SLURM_NTASKS": "2", "SLURM_PROCID": "1"},  # srun's task 1
     {"SLURM_NTASKS": "2", "SLURM_PROCID": "0", "SLURM_STEP_NUM_TASKS": "2"}],  # its task 0
)
def test_train_py_under_srun_needs_one_run_folder(monkeypatch, capsys, env):
    """srun sets no ``WORLD_SIZE`` (``SLURM_NTASKS``, ``SLURM_PROCID``: what Lightning's
    SLURMEnvironment reads), so each of its tasks named a time-stamped run folder of its own:
    refused as under torchrun, unless one folder is given to all."""
    from esa_lightning.cli.overrides import refuse_unshared_run_folder

    for name in SLURM_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exit_:
        refuse_unshared_run_folder(["experiment=smoke"])
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("error: SLURM_") and "hydra.run.dir=<folder>" in error
    refuse_unshared_run_folder(["experiment=smoke", "hydra.run.dir=shared"])


@pytest.mark.parametrize(
    "env",
    [{"SLURM_NTASKS": "1", "SLURM_PROCID": "0", "SLURM_STEP_NUM_TASKS": "1"},  # srun -n 1
     {"SLURM_NTASKS": "4", "SLURM_PROCID": "0", "SLURM_JOB_NAME": "job"},  # a batch script
     {"SLURM_NTASKS": "2", "SLURM_JOB_NAME": "interactive"}],  # a salloc shell
)
def test_one_slurm_process_names_its_own_run_folder(monkeypatch, env):
    """One process in a SLURM job (a task of ``srun -n 1``, the batch script itself, a
    ``salloc`` shell) may name its run folder: no other process shares it."""
    from esa_lightning.cli.overrides import refuse_unshared_run_folder

    for name in SLURM_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    refuse_unshared_run_folder(["experiment=smoke"])
