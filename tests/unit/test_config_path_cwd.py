"""A relative ``-cp``/``--config-path`` is read from the folder the command is typed in.

Hydra reads a relative ``--config-path`` of a ``hydra.main`` inside a package relative to that
module: ``python train.py -cp my_confs -cn my_exp`` looked for the package
``esa_lightning.cli.my_confs`` (``Primary config module 'esa_lightning.cli.my_confs' not
found``), not the folder beside the user. The entry points now make it absolute first
(``jobs.config_path.config_path_from_cwd``), and a folder that is not there is one ``error:``
line naming it, exit code 2.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import CONF, REPO

ENTRY_POINTS = ("train", "predict", "evaluate", "merge")


def own_configs(folder: Path) -> Path:
    """``folder``/my_confs: the package's configs, with ``my_<job>.yaml`` for each entry point,
    its ``task_name`` changed so that the printed config tells where it was read from."""
    own = folder / "my_confs"
    shutil.copytree(CONF, own, ignore=shutil.ignore_patterns("__pycache__", "__init__.py"))
    for job in ENTRY_POINTS:
        text = (CONF / f"{job}.yaml").read_text()
        assert f"\ntask_name: {job}\n" in text
        (own / f"my_{job}.yaml").write_text(
            text.replace(f"\ntask_name: {job}\n", f"\ntask_name: mine_{job}\n"))
    return own


def run(job: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, str(REPO / f"{job}.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("job", ENTRY_POINTS)
def test_a_relative_config_path_is_the_folder_beside_the_user(tmp_path, job):
    own_configs(tmp_path)
    proc = run(job, tmp_path, "-cp", "my_confs", "-cn", f"my_{job}", "--cfg", "job")
    assert proc.returncode == 0, proc.stderr
    assert yaml.safe_load(proc.stdout)["task_name"] == f"mine_{job}"
    assert not (tmp_path / "outputs").exists()  # --cfg: nothing run, nothing written


@pytest.mark.parametrize("job", ENTRY_POINTS)
def test_a_config_path_that_is_no_folder_is_refused_naming_it(tmp_path, job):
    proc = run(job, tmp_path, "--config-path=nope/confs", "-cn", f"my_{job}")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert str(tmp_path / "nope" / "confs") in lines[0]
    assert "--config-path" in lines[0]
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize("given", [
    ["-cp", "my_confs"], ["-cp=my_confs"], ["--config-path", "my_confs"],
    ["--config-path=my_confs"], ["--config-pa", "my_confs"], ["--config-p=my_confs"],
])
def test_every_spelling_hydra_reads_is_made_absolute(tmp_path, monkeypatch, given):
    from esa_lightning.jobs.component_datamodules import primary_config
    from esa_lightning.jobs.config_path import config_path_from_cwd

    own = own_configs(tmp_path)
    monkeypatch.chdir(tmp_path)
    args = ["model=zscore", *given, "-cn", "my_train", "seed=3"]
    out = config_path_from_cwd(args)
    assert primary_config(out) == (str(own), "my_train")  # as Hydra's own parser reads it
    assert [a for a in out if "my_confs" not in a] == [a for a in args if "my_confs" not in a]


def test_absolute_and_package_config_paths_are_left_as_they_are(tmp_path, monkeypatch):
    from esa_lightning.jobs.config_path import config_path_from_cwd

    own = own_configs(tmp_path)
    monkeypatch.chdir(tmp_path)
    for args in (["-cp", str(own)], ["-cp=pkg://esa_lightning.conf"], ["model=zscore"],
                 ["-cn", "my_train", "experiment_name=my_confs"]):
        assert config_path_from_cwd(list(args)) == args


def test_a_config_path_that_is_a_file_is_refused(tmp_path, monkeypatch):
    from esa_lightning.errors import ESAInputError
    from esa_lightning.jobs.config_path import config_path_from_cwd

    (tmp_path / "train.yaml").write_text("seed: 1\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ESAInputError, match="is not a folder") as caught:
        config_path_from_cwd(["-cp", "train.yaml"])
    assert caught.value.path == str(tmp_path / "train.yaml")
