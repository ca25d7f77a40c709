"""``train.py -m ... trainer.devices=2`` can never run: each job was refused only once it ran,
after reading its mission, with the same error line once per job, and left a sweep folder of
refused jobs behind. The sweep's check of its jobs before it starts refuses it once."""

from __future__ import annotations

import pytest

from esa_lightning.cli.overrides import composes_or_exit


def test_a_local_sweep_asking_for_several_devices_is_refused_before_it_starts(capsys, tmp_path):
    with pytest.raises(SystemExit) as stop:
        composes_or_exit("train", ["-m", "experiment=smoke", "trainer.devices=2",
                                   "trainer.accelerator=cpu", "seed=1,2",
                                   f"hydra.sweep.dir={tmp_path / 'sweep'}"])

    assert stop.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: sweep job 0 (")
    assert "multirun (-m) with more than one device is refused" in lines[0]
    assert not (tmp_path / "sweep").exists()


def test_a_sweep_of_one_device_jobs_and_a_cluster_launchers_sweep_go_on():
    composes_or_exit("train", ["-m", "experiment=smoke", "trainer.devices=1", "seed=1,2"])
    composes_or_exit("train", ["-m", "hydra/launcher=slurm", "experiment=smoke",
                               "trainer.devices=2", "seed=1,2"])


def test_a_sweep_over_several_nodes_is_refused_naming_num_nodes(capsys):
    """scaling.md refuses ``-m`` with ``trainer.num_nodes>1`` too; its line named
    ``'trainer.devices': value 1``, the setting the user had left alone."""
    with pytest.raises(SystemExit) as stop:
        composes_or_exit("train", ["-m", "experiment=smoke", "trainer.num_nodes=2",
                                   "seed=1,2"])

    assert stop.value.code == 2
    line = capsys.readouterr().err.strip()
    assert "'trainer.num_nodes'" in line and "value 2" in line, line
    assert "'trainer.devices'" not in line and "trainer.num_nodes=1" in line, line


def test_an_esa_full_sweep_of_a_top_level_key_its_components_shadow_is_refused_before_it_starts(
    capsys, tmp_path
):
    """``-m experiment=esa_full trainer.max_epochs=1,2``: every job is refused (the components'
    own max_epochs win); each job was refused only once it ran, after the sweep had made its
    folder, and the sweep ended with an error per job. It stops before it starts now, as a
    top-level ``model.`` key of esa_full does."""
    with pytest.raises(SystemExit) as stop:
        composes_or_exit("train", ["-m", "experiment=esa_full", "trainer.max_epochs=1,2",
                                   f"hydra.sweep.dir={tmp_path / 'sweep'}"])

    assert stop.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: sweep job 0 (experiment=esa_full trainer.max_epochs=1)")
    assert "components.gru_ae.trainer.max_epochs=1" in lines[0], lines[0]
    assert not (tmp_path / "sweep").exists()


def test_a_sweep_whose_jobs_share_one_fixed_subdir_is_refused_before_it_starts(capsys, tmp_path):
    """``hydra.sweep.subdir=shared`` puts every job in one folder: job 1 was refused once it
    ran, after Hydra had rewritten job 0's ``.hydra/`` (its config.yaml then read ``seed: 2``
    beside a detector trained with seed 1)."""
    with pytest.raises(SystemExit) as stop:
        composes_or_exit("train", ["-m", "experiment=smoke", "seed=1,2",
                                   f"hydra.sweep.dir={tmp_path / 'sweep'}",
                                   "hydra.sweep.subdir=shared"])

    assert stop.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: hydra.sweep.subdir=shared: ") and "2 jobs" in lines[0]
    assert not (tmp_path / "sweep").exists()
    # one job alone, or a subdir that tells the jobs apart, goes on
    composes_or_exit("train", ["-m", "experiment=smoke", "seed=1", "hydra.sweep.subdir=shared"])
    composes_or_exit("train", ["-m", "experiment=smoke", "seed=1,2",
                               "hydra.sweep.subdir=job_${hydra.job.num}"])
