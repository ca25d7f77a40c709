"""A ``train.py -m`` sweep resumed (``ckpt_path=last``) in an earlier sweep's folder whose every
job is refused (settings the checkpoints were not trained with) leaves that folder as the
earlier sweep wrote it: each job's ``.hydra/`` (Hydra writes it before the job starts), the
sweep's ``multirun.yaml`` and its ``summary.csv`` (the earlier jobs' metrics). Each job's log
keeps its lines and ends in its refusal."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO
from tests.integration.test_run_folder_reuse import FAST, snapshot


def sweep(args: list[str], tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, str(REPO / "train.py"), "-m", *args,
         f"hydra.sweep.dir={tmp_path / 'sweep'}", f"paths.root_dir={tmp_path}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)


def test_a_refused_sweep_resume_leaves_the_earlier_sweep_as_it_was(small_mission_dir, tmp_path):
    """It rewrote every job's ``.hydra/`` with ``model.quantile=99.0 ckpt_path=last``, the
    sweep's ``multirun.yaml``, and ``summary.csv`` with two failed rows in place of the
    earlier jobs' metrics."""
    run = [*FAST, "seed=1,2", f"data.root={small_mission_dir}"]
    done = sweep(run, tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    folder = tmp_path / "sweep"
    before = snapshot(folder)
    logs = {job: (folder / job / "train.log").read_text() for job in ("0", "1")}
    assert "0/.hydra/overrides.yaml" in before and "summary.csv" in before

    refused = sweep([*run, "model.quantile=99.0", "ckpt_path=last"], tmp_path)
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert refused.stderr.count("this run asks model.quantile=99.0") == 2
    after = snapshot(folder)
    assert {k: v for k, v in after.items() if not k.endswith("train.log")} == {
        k: v for k, v in before.items() if not k.endswith("train.log")}
    for job, log in logs.items():
        now = (folder / job / "train.log").read_text()
        assert now.startswith(log)
        assert now.rstrip().splitlines()[-1].endswith("this run asks model.quantile=99.0: resume "
                                                      "with the checkpoint's settings, or start "
                                                      "a new run (another hydra.run.dir, no "
                                                      "ckpt_path)")
