"""Two ``train.py -m`` sweeps into one ``hydra.sweep.dir`` at the same time: the second passed the
check for an earlier sweep's jobs (the first had trained none yet), rewrote the first's
``multirun.yaml``, each job's ``.hydra/`` (a detector trained with ``seed=1`` then read
``model.quantile=98`` in its overrides) and ``summary.csv`` (the first sweep's rows gone). A sweep
now holds its folder from before Hydra writes there until it ends."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from esa_lightning.run_folder import LOCK_NAME, lock_run_folder
from tests.conftest import REPO


def test_a_sweep_into_a_folder_another_sweep_holds_is_refused_writing_nothing(tmp_path: Path):
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    env = {**os.environ, "ESA_LIGHTNING_ROOT": str(tmp_path), "PYTHONWARNINGS": "ignore"}
    env.pop("HYDRA_FULL_ERROR", None)
    with lock_run_folder(sweep):  # as the first sweep, still running, holds it
        proc = subprocess.run(
            [sys.executable, str(REPO / "train.py"), "-m", "experiment=smoke", "logger=none",
             "test=false", "seed=1,2", f"data.root={tmp_path / 'mission'}",
             f"hydra.sweep.dir={sweep}"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )
        written = sorted(p.name for p in sweep.iterdir())
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: {sweep}: another run is writing into this folder")
    assert "hydra.sweep.dir=" in lines[0], lines[0]
    assert written == [LOCK_NAME], written  # the holder's lock file alone
    assert not (tmp_path / "mission").exists()  # refused before the data were read
