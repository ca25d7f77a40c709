"""A server database storage (``postgresql://``, ``mysql://``) has no file beside which to hold a
study: two ``sweep.py`` runs of one study that both passed the check at their start (started
together) both ran trials, side by side. The run whose trial came later now stops at that
trial's start. Tested through an SQLite URL with the study's lock taken away (the path a server
database takes: ``lock_study`` yields False)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys

import pytest

from tests.conftest import CONF, REPO
from tests.integration.test_sweep_study_lock import (
    SWEEP,
    blocking_train,
    host,
    trial_states,
    wait_for,
)


def no_study_lock(*args, **kwargs):
    return contextlib.nullcontext(False)


def start_unlocked_sweep(train: list[str], sweep_dir, storage: str, cwd) -> subprocess.Popen:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "PYTHONPATH": str(REPO)}
    code = ("import contextlib, sys; from pathlib import Path; "
            "from esa_lightning.jobs import optuna_sweep as o; "
            "o.lock_study = lambda *a, **k: contextlib.nullcontext(False); "
            f"sys.exit(o.main(sys.argv[1:], Path({str(CONF)!r}), {train!r}))")
    return subprocess.Popen([sys.executable, "-c", code, *SWEEP, "--sweep-dir", str(sweep_dir),
                             "--storage", storage],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_of_two_unlocked_runs_started_together_the_later_trials_run_stops(
    tmp_path, monkeypatch, capsys
):
    pytest.importorskip("optuna", minversion="4.0")
    from esa_lightning.jobs import optuna_sweep

    train, started, release = blocking_train(tmp_path)
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    monkeypatch.setattr(optuna_sweep, "lock_study", no_study_lock)
    settle = optuna_sweep.settle_running_trials
    first: list[subprocess.Popen] = []

    def settle_then_another_run_starts(*args, **kwargs):
        """This run has passed its start's check; the other run starts and asks its trial 0
        before this run asks its first trial."""
        settled = settle(*args, **kwargs)
        first.append(start_unlocked_sweep(train, tmp_path / "a", storage, tmp_path))
        wait_for(lambda: (started / "0").exists(), first[0], "the other sweep's trial 0")
        return settled

    monkeypatch.setattr(optuna_sweep, "settle_running_trials", settle_then_another_run_starts)
    try:
        argv = [*SWEEP, "--sweep-dir", str(tmp_path / "b"), "--storage", storage]
        assert optuna_sweep.main(argv, CONF, train) == 2

        # its last line (Optuna's console may have said it created the study, above)
        lines = capsys.readouterr().err.strip().splitlines()
        assert [line for line in lines if "error" in line] == lines[-1:], lines
        lines = lines[-1:]
        assert lines[0].startswith("error: column '--study-name': value 'smoke': another sweep "
                                   f"is running study 'smoke': its trial 0 runs (pid "
                                   f"{first[0].pid} on {host()})"), lines[0]
        assert [p.name for p in started.iterdir()] == ["0"]  # its trial's train.py never ran
        assert not (tmp_path / "b" / "1").exists()
        assert trial_states(storage) == {0: "RUNNING", 1: "FAIL"}  # the other's: left running
    finally:
        release.write_text("")
        if first:
            out, err = first[0].communicate(timeout=300)
    assert first[0].returncode == 0, err[-3000:]  # the earlier trial's run went on
    assert trial_states(storage) == {0: "COMPLETE", 1: "FAIL"}
    import optuna

    refused = optuna.load_study(study_name="smoke", storage=storage).trials[1]
    assert refused.user_attrs["reason"] == ("another sweep ran the study: its trial 0 (pid "
                                            f"{first[0].pid} on {host()})")
