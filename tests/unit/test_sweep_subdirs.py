"""A ``-m`` sweep whose ``hydra.sweep.subdir`` is interpolated from a key no job changes
(``hydra.sweep.subdir=shared_${experiment_name}``) put its jobs in one folder: each after the
first failed only once it ran, after Hydra had rewritten the first job's ``.hydra/`` (its
config then not the detector's). The sweep's check of its jobs now refuses it before the first
job, naming the key, as it refuses a subdir of one fixed name."""

from __future__ import annotations

import pytest

from esa_lightning.cli.overrides import composes_or_exit


def refused_line(capsys, args: list[str]) -> str:
    with pytest.raises(SystemExit) as stop:
        composes_or_exit("train", ["-m", "experiment=smoke", *args])
    assert stop.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_a_subdir_built_from_a_key_no_job_changes_is_refused_naming_it(capsys, tmp_path):
    line = refused_line(capsys, ["seed=1,2", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                                 "hydra.sweep.subdir=shared_${experiment_name}"])
    assert line.startswith("error: hydra.sweep.subdir=shared_${experiment_name}: "), line
    assert "jobs 0 and 1" in line and "<hydra.sweep.dir>/shared_smoke" in line, line
    assert "experiment_name, which no job of this sweep changes" in line, line
    assert not (tmp_path / "sweep").exists()


def test_a_subdir_built_from_a_swept_key_two_jobs_share_names_the_key(capsys):
    line = refused_line(capsys, ["seed=1,2", "model.quantile=99.0,99.5",
                                 "hydra.sweep.subdir=q${model.quantile}"])
    assert "jobs 0 and 2" in line and "<hydra.sweep.dir>/q99.0" in line, line
    assert "model.quantile, which is the same in both" in line, line


def test_a_swept_subdir_that_several_jobs_share_is_refused(capsys):
    line = refused_line(capsys, ["seed=1,2", "hydra.sweep.subdir=a,b"])
    assert "jobs 0 and 2" in line and "<hydra.sweep.dir>/a" in line, line


def test_subdirs_that_tell_the_jobs_apart_go_on():
    for subdir in ("seed_${seed}", "${hydra.job.override_dirname}", "${hydra.job.num}",
                   "${experiment_name}_${seed}"):
        composes_or_exit("train", ["-m", "experiment=smoke", "seed=1,2",
                                   f"hydra.sweep.subdir={subdir}"])
    # one job alone shares its folder with none
    composes_or_exit("train", ["-m", "experiment=smoke", "seed=1",
                               "hydra.sweep.subdir=shared_${experiment_name}"])
