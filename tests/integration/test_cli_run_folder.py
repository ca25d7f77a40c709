"""A run folder the commands cannot make (``hydra.run.dir`` naming a file, or a folder under
one) is one line naming it, exit code 2, before anything runs: Hydra makes the folder before
the job starts, so the job's own check never came."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO
from tests.helpers import checkout_env

COMMANDS = {
    "train.py": ["experiment=smoke"],
    "predict.py": ["ckpt=some/detector"],
    "evaluate.py": ["predictions=some.csv"],
    "merge.py": ["detectors=[a/detector,b/detector]"],
}


@pytest.mark.parametrize("script", sorted(COMMANDS))
@pytest.mark.parametrize("under", [False, True], ids=["the file", "under the file"])
def test_a_run_folder_in_place_of_a_file_is_one_line_naming_it(tmp_path, script, under):
    in_the_way = tmp_path / "notes.txt"
    in_the_way.write_text("mine")
    folder = in_the_way / "run" if under else in_the_way
    proc = subprocess.run(
        [sys.executable, script, *COMMANDS[script], f"hydra.run.dir={folder}",
         f"paths.root_dir={tmp_path}"],
        cwd=REPO, capture_output=True, text=True, env=checkout_env(), timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith(f"error: {folder}: cannot write"), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "HYDRA_FULL_ERROR" not in proc.stderr
    assert in_the_way.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_sweep_folder_in_place_of_a_file_is_one_line_naming_it(tmp_path):
    in_the_way = tmp_path / "notes.txt"
    in_the_way.write_text("mine")
    proc = subprocess.run(
        [sys.executable, "train.py", "-m", "experiment=smoke", "seed=1,2",
         f"hydra.sweep.dir={in_the_way}", f"paths.root_dir={tmp_path}"],
        cwd=REPO, capture_output=True, text=True, env=checkout_env(), timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {in_the_way}: cannot write")
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
