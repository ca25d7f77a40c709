"""A ``-m`` sweep whose ``hydra.sweep.subdir`` is interpolated from a key no job changes
(``hydra.sweep.subdir=shared_${experiment_name}``) put its jobs in one folder: each after the
first failed only once it ran, after Hydra had rewritten the first job's ``.hydra/`` (its
config then not the detector's). The sweep's check of its jobs now refuses it before the first
job, naming the key, as it refuses a subdir of one fixed name."""

from __future__ import annotations

import shutil

import pytest

from esa_lightning.cli.overrides import composes_or_exit


def refused_line(capsys, args: list[str], experiment: str = "smoke") -> str:
    with pytest.raises(SystemExit) as stop:
        composes_or_exit("train", ["-m", f"experiment={experiment}", *args])
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


@pytest.fixture
def conf_with(tmp_path, monkeypatch):
    """The package's configs plus experiment files of the test's own (``name: yaml text``),
    as a user's experiment would set ``hydra.sweep.subdir``."""
    from esa_lightning import install

    def make(experiments: dict[str, str]):
        conf = tmp_path / "conf"
        shutil.copytree(install.config_dir(), conf)
        for name, text in experiments.items():
            (conf / "experiment" / f"{name}.yaml").write_text(text)
        monkeypatch.setattr(install, "config_dir", lambda: conf)
        return conf

    return make


SMOKE_WITH = "# @package _global_\ndefaults:\n  - smoke\nhydra:\n  sweep:\n    subdir: {}\n"


def test_a_subdir_an_experiment_file_sets_is_checked_as_the_command_lines(capsys, conf_with):
    """Only a command-line hydra.sweep.subdir was read: one an experiment set put every job in
    one folder, each after the first refused only once it ran."""
    conf_with({"shared_subdir": SMOKE_WITH.format("shared")})
    line = refused_line(capsys, ["seed=1,2"], experiment="shared_subdir")
    assert line.startswith("error: hydra.sweep.subdir=shared (set by the config, not the "
                           "command line): jobs 0 and 1 of this sweep would train in the same "
                           "folder <hydra.sweep.dir>/shared: "), line


def test_a_subdir_of_one_experiment_among_the_swept_ones_is_checked(capsys, conf_with):
    conf_with({"out_subdir": SMOKE_WITH.format("../elsewhere/${seed}")})
    line = refused_line(capsys, ["seed=7"], experiment="smoke,out_subdir")
    assert line.startswith("error: hydra.sweep.subdir=../elsewhere/${seed} (set by the config, "
                           "not the command line): job 1 of this sweep would train in "
                           "<hydra.sweep.dir>/../elsewhere/7, outside the sweep folder"), line


@pytest.mark.parametrize("subdir, where, shown", [
    ("../elsewhere/${seed}", "outside the sweep folder", "../elsewhere/1"),
    ("seed/../../${seed}", "outside the sweep folder", "seed/../../1"),
    ("/tmp/esa_elsewhere/${seed}", "outside the sweep folder", "/tmp/esa_elsewhere/1"),
    ("${seed}/..", "the sweep folder itself", "1/.."),
])
def test_a_subdir_leading_out_of_the_sweep_folder_is_refused_before_any_job(
    capsys, tmp_path, subdir, where, shown
):
    """It was refused job by job as each ran, and only where an earlier run had trained
    (the check for an earlier sweep's jobs looks below the sweep folder only)."""
    line = refused_line(capsys, ["seed=1,2", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                                 f"hydra.sweep.subdir={subdir}"])
    assert line.startswith(f"error: hydra.sweep.subdir={subdir}: job 0 of this sweep would "
                           f"train in <hydra.sweep.dir>/{shown}, {where}: "), line
    assert "without '..'" in line, line
    assert not (tmp_path / "sweep").exists()


def test_a_single_job_leading_out_is_refused_too(capsys):
    line = refused_line(capsys, ["seed=1", "hydra.sweep.subdir=../x"])
    assert "job 0 of this sweep would train in <hydra.sweep.dir>/../x, outside" in line, line


def test_subdirs_inside_the_sweep_folder_go_on(conf_with):
    conf_with({"own_subdir": SMOKE_WITH.format("s_${seed}")})
    composes_or_exit("train", ["-m", "experiment=own_subdir", "seed=1,2"])
    composes_or_exit("train", ["-m", "experiment=smoke", "seed=1,2",
                               "hydra.sweep.subdir=a/../b_${seed}"])
