"""A study's trials left ``RUNNING`` by a sweep that was killed stayed so until their heartbeat
was 3 minutes old, while a resumed sweep ran beside them. A resume records failed those whose
sweep is gone; one a live sweep runs refuses the resume, so that it is never failed under that
sweep (a storage without a lock file, a server database, relies on this)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from esa_lightning.errors import ESAInputError
from esa_lightning.io import owner_tag
from esa_lightning.jobs.sweep_study import (
    OWNER_ATTR,
    claim,
    lock_study,
    refuse_concurrent_run,
    settle_running_trials,
)

optuna = pytest.importorskip("optuna", minversion="4.0")


def running_study(tmp_path, owners: list[str]):
    """A study whose trials are running, each claimed by ``owners``' run ('' : none)."""
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 'o.db'}")
    for owner in owners:
        trial = study.ask()
        if owner:
            trial.set_user_attr(OWNER_ATTR, owner)
    return study


def ended_process_tag() -> str:
    pid = subprocess.Popen([sys.executable, "-c", ""])
    pid.wait()
    return owner_tag().rsplit(".", 1)[0] + f".{pid.pid}"


def states(study) -> list[str]:
    return [t.state.name for t in study.get_trials(deepcopy=False)]


def test_trials_whose_sweep_ended_are_recorded_failed_without_the_study_lock(tmp_path):
    gone = ended_process_tag()
    study = running_study(tmp_path, [gone, gone])
    assert settle_running_trials(study, optuna, locked=False) == [0, 1]
    assert states(study) == ["FAIL", "FAIL"]
    pid = gone.rsplit(".", 1)[1]
    assert study.trials[0].user_attrs["reason"].startswith(f"its sweep (pid {pid} on ")


def test_a_trial_a_live_sweep_runs_refuses_the_resume_and_stays_running(tmp_path):
    live = owner_tag().rsplit(".", 1)[0] + f".{os.getppid()}"  # pytest's parent
    study = running_study(tmp_path, [ended_process_tag(), live])
    for locked in (False, True):
        with pytest.raises(ESAInputError) as refused:
            settle_running_trials(study, optuna, locked=locked)
        assert "another sweep is running study 's': its trial 1 runs (pid " in str(refused.value)
    assert states(study) == ["FAIL", "RUNNING"]


def test_under_the_study_lock_a_trial_of_no_known_sweep_is_recorded_failed(tmp_path):
    """A trial of a sweep before trials were claimed, or of another machine's: under the lock
    no other sweep of the study runs."""
    study = running_study(tmp_path, ["", "esa_lightning.elsewhere.12"])
    with pytest.raises(ESAInputError):  # without the lock it may be a live sweep's
        settle_running_trials(study, optuna, locked=False)
    assert states(study) == ["RUNNING", "RUNNING"]
    assert settle_running_trials(study, optuna, locked=True) == [0, 1]
    assert states(study) == ["FAIL", "FAIL"]


def test_the_study_lock_is_beside_an_sqlite_file_only(tmp_path):
    storage = f"sqlite:///{tmp_path / 'o.db'}"
    with lock_study(storage, "a/b c") as locked:
        assert locked
        assert [p.name for p in tmp_path.iterdir()][0].startswith(".o.db.a_b_c-")
        with lock_study(storage, "other") as other:  # another study of the storage: free
            assert other
    assert list(tmp_path.iterdir()) == []
    with lock_study("postgresql://host/db", "a") as locked:
        assert not locked
    with lock_study(f"sqlite:///{tmp_path / 'missing' / 'o.db'}", "a") as locked:
        assert not locked



def live_tag() -> str:
    return owner_tag().rsplit(".", 1)[0] + f".{os.getppid()}"  # pytest's parent


def test_a_run_whose_trial_came_after_a_live_runs_running_trial_is_refused(tmp_path):
    """Without the study's lock (a server database) two runs could both pass the check at their
    start (started together, or one between the other's trials) and train side by side: the
    run whose trial came later stops at that trial's start."""
    for earlier in (live_tag(), ""):  # '': another run's trial, asked but not claimed yet
        study = running_study(tmp_path, [earlier])
        mine = study.ask()
        claim(mine)
        with pytest.raises(ESAInputError) as refused:
            refuse_concurrent_run(mine)
        message = str(refused.value)
        assert "another sweep is running study 's': its trial 0 runs" in message, message
        assert message.endswith("or start another study (--study-name)"), message
        assert study.trials[1].user_attrs["reason"].startswith(
            "another sweep ran the study: its trial 0"), study.trials[1].user_attrs
        optuna.delete_study(study_name="s", storage=f"sqlite:///{tmp_path / 'o.db'}")


def test_a_run_goes_on_beside_an_ended_runs_trial_and_a_later_trial(tmp_path):
    study = running_study(tmp_path, [ended_process_tag()])
    mine = study.ask()
    claim(mine)
    refuse_concurrent_run(mine)  # trial 0's run ended on this machine: no live run's
    other = study.ask()  # a live run's trial, asked after this run's: that run stops
    other.set_user_attr(OWNER_ATTR, live_tag())
    refuse_concurrent_run(mine)
    assert states(study) == ["RUNNING", "RUNNING", "RUNNING"]
