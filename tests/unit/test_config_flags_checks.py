"""The early one-line checks (``cli.overrides.composes_or_exit``) compose a user's own configs.

A command line with any Hydra flag skipped them: ``train.py -cp DIR -cn NAME experiment=nope``
got Hydra's message of several lines and exit code 1, where ``train.py experiment=nope`` gets one
``error:`` line and exit code 2. The flags that choose the configs (``-cp``, ``-cn``, ``-cd``)
are now composed as Hydra composes them; Hydra's other flags (``--cfg``...) still go to Hydra.
"""

from __future__ import annotations

import shutil

import pytest

from tests.unit.test_config_path_cwd import ENTRY_POINTS, own_configs, run


def refused(capsys, args: list[str], config_name: str = "train") -> str:
    """The one ``error:`` line ``composes_or_exit`` prints for ``args``, with exit code 2."""
    from esa_lightning.cli.overrides import composes_or_exit

    with pytest.raises(SystemExit) as stopped:
        composes_or_exit(config_name, args)
    assert stopped.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


@pytest.mark.parametrize("job", ENTRY_POINTS)
@pytest.mark.parametrize("spelling", [["-cp", "{own}", "-cn", "my_{job}"],
                                      ["--config-path={own}", "--config-name=my_{job}"]])
def test_an_unknown_option_of_a_users_configs_is_one_line(tmp_path, capsys, job, spelling):
    own = own_configs(tmp_path)
    flags = [s.format(own=own, job=job) for s in spelling]
    line = refused(capsys, [*flags, "data=nope"], job)
    assert f"In 'my_{job}': Could not find 'data/nope'" in line


def test_a_users_config_folder_and_name_are_the_ones_composed(tmp_path, capsys):
    from esa_lightning.cli.overrides import composes_or_exit

    own = own_configs(tmp_path)
    shutil.copy(own / "experiment" / "smoke.yaml", own / "experiment" / "mine.yaml")
    composes_or_exit("train", ["-cp", str(own), "-cn", "my_train", "experiment=mine"])
    # the package's configs have no experiment "mine": refused there
    assert "Could not find 'experiment/mine'" in refused(capsys, ["experiment=mine"])
    line = refused(capsys, ["-cp", str(own), "-cn", "my_train", "+xyz=1"])
    assert f"not a setting of config my_train ({own}/my_train.yaml)" in line
    assert "seed=" in refused(capsys, ["-cp", str(own), "seed=abc"])  # its train.yaml


def test_a_config_dir_is_searched_beside_the_package_configs(tmp_path, capsys):
    from esa_lightning.cli.overrides import composes_or_exit

    added = tmp_path / "added" / "experiment"
    added.mkdir(parents=True)
    shutil.copy(own_configs(tmp_path) / "experiment" / "smoke.yaml", added / "mine.yaml")
    composes_or_exit("train", ["-cd", str(tmp_path / "added"), "experiment=mine"])
    line = refused(capsys, ["-cd", str(tmp_path / "added"), "experiment=nope"])
    assert "Could not find 'experiment/nope'" in line and "mine" in line


def test_each_job_of_a_sweep_of_a_users_configs_composes(tmp_path, capsys):
    own = own_configs(tmp_path)
    line = refused(capsys, ["-m", "-cp", str(own), "-cn", "my_train", "experiment=smoke,nope"])
    assert line.startswith("error: sweep job 1 (experiment=nope): In 'my_train'")


@pytest.mark.parametrize("flag", [["--help"], ["--hydra-help"]])
def test_hydras_other_flags_still_go_to_hydra(tmp_path, flag):
    from esa_lightning.cli.overrides import composes_or_exit

    own = own_configs(tmp_path)
    composes_or_exit("train", ["-cp", str(own), "-cn", "my_train", *flag, "experiment=nope"])


def test_train_py_with_a_users_configs_refuses_in_one_line(tmp_path):
    own_configs(tmp_path)
    proc = run("train", tmp_path, "-cp", "my_confs", "-cn", "my_train", "experiment=nope")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: In 'my_train': Could not find"), lines
    assert not (tmp_path / "outputs").exists()


def test_a_config_dirs_refusal_names_the_file_composed(tmp_path, capsys):
    """With ``-cd DIR`` and no ``-cp`` the "not a setting" refusal said ``config train`` alone,
    naming no file: it names the package's ``conf/train.yaml`` (searched first) or, for a
    primary config only ``DIR`` holds, ``DIR/NAME.yaml``."""
    added = tmp_path / "added"
    shutil.copytree(own_configs(tmp_path), added)
    line = refused(capsys, ["-cd", str(added), "+xyz=1"])
    assert "xyz is not a setting of train.py (conf/train.yaml)" in line, line
    line = refused(capsys, ["-cd", str(added), "-cn", "my_train", "+xyz=1"])
    assert f"xyz is not a setting of config my_train ({added}/my_train.yaml)" in line, line
