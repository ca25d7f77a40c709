"""Two ``sweep.py`` runs of one study in one sweep folder at the same time: nothing held the
folder, so the second ran trials beside the first's (both rewriting ``trials.csv``, each
counting the other's running trial against ``--n-trials``). A sweep now holds its folder, as a
``train.py -m`` sweep holds its ``hydra.sweep.dir``, until it ends: the second is refused in one
line naming the folder and the process that holds it. A holder that died leaves no lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from esa_lightning.io import owner_tag
from esa_lightning.run_folder import LOCK_NAME
from tests.conftest import CONF, REPO

#: a train.py stand-in (no training) whose trial 0 waits until ``release`` exists
BLOCKING_TRAIN = """
import json, pathlib, sys, time
args = dict(a.split("=", 1) for a in sys.argv[1:] if "=" in a)
run = pathlib.Path(args["hydra.run.dir"])
pathlib.Path({started!r}, run.name).write_text("")
while run.name == "0" and not pathlib.Path({release!r}).exists():
    time.sleep(0.05)
(run / "metrics.json").write_text(json.dumps({{"val/EW_F_0.50": 0.5}}))
"""

SWEEP = ["experiment=smoke", "model.quantile=choice(99.0,99.5,99.9)", "--n-trials", "1"]


def host() -> str:
    return owner_tag().split(".")[1]


def wait_for(condition, proc: subprocess.Popen, what: str) -> None:
    """Poll ``condition`` until it holds; fail if ``proc`` ended first (no time bound is
    asserted: the pytest run's own timeout stops a hang)."""
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"{what}: the process ended first: {proc.communicate()}")
        time.sleep(0.05)


def blocking_train(tmp_path: Path) -> tuple[list[str], Path, Path]:
    started, release = tmp_path / "started", tmp_path / "release"
    started.mkdir()
    script = tmp_path / "blocking_train.py"
    script.write_text(BLOCKING_TRAIN.format(started=str(started), release=str(release)))
    return [sys.executable, str(script)], started, release


def start_sweep(train: list[str], sweep_dir: Path, cwd: Path, storage: str | None = None,
                **popen) -> subprocess.Popen:
    """``sweep.py`` (its ``main``) of ``SWEEP`` in its own process, trials run by ``train``."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(REPO)}
    code = ("import sys; from pathlib import Path; from esa_lightning.jobs.optuna_sweep import "
            f"main; sys.exit(main(sys.argv[1:], Path({str(CONF)!r}), {train!r}))")
    given = ["--storage", storage] if storage else []
    return subprocess.Popen([sys.executable, "-c", code, *SWEEP, "--sweep-dir", str(sweep_dir),
                             *given],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **popen)


def test_a_second_run_of_a_study_in_its_sweep_folder_is_refused_while_the_first_runs(
    tmp_path, capsys
):
    pytest.importorskip("optuna", minversion="4.0")
    from esa_lightning.jobs import optuna_sweep

    train, started, release = blocking_train(tmp_path)
    sweep_dir = tmp_path / "sweep"
    first = start_sweep(train, sweep_dir, tmp_path)
    try:
        wait_for(lambda: (started / "0").exists(), first, "the first sweep's trial 0")
        before = sorted(p.name for p in sweep_dir.iterdir())

        assert optuna_sweep.main([*SWEEP, "--sweep-dir", str(sweep_dir)], CONF, train) == 2

        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith(f"error: {sweep_dir}: another run is writing into this "
                                   f"folder (pid {first.pid} on "), lines[0]
        assert "--sweep-dir" in lines[0], lines[0]
        assert sorted(p.name for p in sweep_dir.iterdir()) == before  # no trial 1, no write
        assert [p.name for p in started.iterdir()] == ["0"]  # its train.py never ran
    finally:
        release.write_text("")
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-3000:]
    assert not (sweep_dir / LOCK_NAME).exists()  # released when the sweep ended
    # once the first has ended, the same command continues the study
    assert optuna_sweep.main([*SWEEP, "--n-trials", "2", "--sweep-dir", str(sweep_dir)], CONF,
                             train) == 0


def test_a_sweep_whose_holder_was_killed_runs(tmp_path):
    """A sweep killed outright (SIGKILL) leaves its lock file; the kernel released its lock,
    so the next run of the study goes on (as a killed ``train.py -m`` sweep's folder does)."""
    pytest.importorskip("optuna", minversion="4.0")
    from esa_lightning.jobs import optuna_sweep

    train, started, release = blocking_train(tmp_path)
    sweep_dir = tmp_path / "sweep"
    first = start_sweep(train, sweep_dir, tmp_path, start_new_session=True)
    try:
        wait_for(lambda: (started / "0").exists(), first, "the first sweep's trial 0")
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the sweep and its trial, as a crash would
        first.communicate(timeout=60)
    assert (sweep_dir / LOCK_NAME).exists()  # left behind by the killed sweep

    release.write_text("")
    assert optuna_sweep.main([*SWEEP, "--sweep-dir", str(sweep_dir)], CONF, train) == 0
    # its trial 0, left RUNNING (its heartbeat is not 3 minutes old yet), is recorded failed
    # at once, not counted: the study holds the one complete trial it should
    storage = f"sqlite:///{sweep_dir / 'optuna.db'}"
    assert trial_states(storage) == {0: "FAIL", 1: "COMPLETE"}
    trials = pd.read_csv(sweep_dir / "trials.csv")
    assert list(trials["state"]) == ["FAIL", "COMPLETE"]
    assert trials["user_attrs_reason"][0] == f"its sweep (pid {first.pid} on {host()}) ended " \
        "while it ran", trials["user_attrs_reason"][0]


def trial_states(storage: str, study: str = "smoke") -> dict[int, str]:
    import optuna

    loaded = optuna.load_study(study_name=study, storage=storage)
    return {t.number: t.state.name for t in loaded.get_trials(deepcopy=False)}


def test_a_second_run_of_a_study_from_another_folder_sharing_its_storage_is_refused(
    tmp_path, capsys
):
    """Two folders, one --storage: each folder's lock held its own run only, so the second run
    ran trials of the study beside the first's (a study is one run's at a time: its
    --n-trials, failure streak and resume count one run's trials). The study is now held
    beside its SQLite file, and the live run's trial is left running."""
    pytest.importorskip("optuna", minversion="4.0")
    from esa_lightning.jobs import optuna_sweep

    train, started, release = blocking_train(tmp_path)
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    first = start_sweep(train, tmp_path / "a", tmp_path, storage=storage)
    try:
        wait_for(lambda: (started / "0").exists(), first, "the first sweep's trial 0")

        argv = [*SWEEP, "--sweep-dir", str(tmp_path / "b"), "--storage", storage]
        assert optuna_sweep.main(argv, CONF, train) == 2

        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1, lines
        assert lines[0].startswith(f"error: {tmp_path / 'shared.db'}: another sweep is running "
                                   f"study 'smoke' (pid {first.pid} on "), lines[0]
        assert "--study-name" in lines[0], lines[0]
        assert [p.name for p in started.iterdir()] == ["0"]  # its train.py never ran
        assert trial_states(storage) == {0: "RUNNING"}  # the live run's trial: not failed
        assert not (tmp_path / "b").exists()  # the folder it made, left empty: removed
    finally:
        release.write_text("")
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-3000:]
    assert trial_states(storage) == {0: "COMPLETE"}
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".shared.db")) == []
    # once the first has ended, the study continues from the other folder
    assert optuna_sweep.main([*SWEEP, "--n-trials", "2", "--sweep-dir", str(tmp_path / "b"),
                              "--storage", storage], CONF, train) == 0
    assert trial_states(storage) == {0: "COMPLETE", 1: "COMPLETE"}
