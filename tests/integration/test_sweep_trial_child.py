"""A ``sweep.py`` killed outright (SIGKILL) left its running trial's ``train.py`` child training
into the trial folder, reparented to init, even after a resume had recorded that trial failed
and gone on running trials beside it. The child now gets SIGTERM when its sweep dies (Linux), and
a resume stops a killed sweep's child that still runs (one that ignored the signal, or on a
system without it) before it runs a trial, or refuses naming the process and the folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from esa_lightning.errors import ESAInputError
from esa_lightning.jobs import sweep_child
from esa_lightning.jobs.sweep_child import CHILD_ATTR, running_here, stop_orphaned_children
from esa_lightning.jobs.sweep_study import OWNER_ATTR, sweep_gone
from tests.conftest import CONF, REPO
from tests.integration.test_sweep_study_lock import SWEEP, host, start_sweep, wait_for

#: a train.py stand-in whose trial 0 writes its pid and waits until ``release`` exists (with
#: ``ignore_term``, ignoring SIGTERM, as a child stuck where the signal is not acted on)
CHILD_TRAIN = """
import json, os, pathlib, signal, sys, time
if {ignore_term!r}:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
args = dict(a.split("=", 1) for a in sys.argv[1:] if "=" in a)
run = pathlib.Path(args["hydra.run.dir"])
pathlib.Path({started!r}, run.name).write_text(str(os.getpid()))
while run.name == "0" and not pathlib.Path({release!r}).exists():
    time.sleep(0.05)
(run / "metrics.json").write_text(json.dumps({{"val/EW_F_0.50": 0.5}}))
"""
#: a generous bound on a signalled process's end (no speed is asserted below it)
GONE_WITHIN_S = 120.0


def child_train(tmp_path: Path, ignore_term: bool = False) -> tuple[list[str], Path, Path]:
    started, release = tmp_path / "started", tmp_path / "release"
    started.mkdir()
    script = tmp_path / "child_train.py"
    script.write_text(CHILD_TRAIN.format(started=str(started), release=str(release),
                                         ignore_term=ignore_term))
    return [sys.executable, str(script)], started, release


def wait_gone(pid: int) -> bool:
    """Whether ``pid`` ended within ``GONE_WITHIN_S`` (polled)."""
    deadline = time.monotonic() + GONE_WITHIN_S
    while running_here(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def kill_sweep_only(tmp_path: Path, ignore_term: bool) -> tuple[subprocess.Popen, int, Path]:
    """A sweep whose trial 0 runs ``CHILD_TRAIN``, SIGKILLed alone (not its child); the sweep,
    the child's pid and the release file."""
    train, started, release = child_train(tmp_path, ignore_term)
    sweep = start_sweep(train, tmp_path / "sweep", tmp_path)
    try:
        wait_for(lambda: (started / "0").exists() and (started / "0").read_text(), sweep,
                 "the sweep's trial 0")
    except BaseException:
        sweep.kill()
        raise
    child = int((started / "0").read_text())
    os.kill(sweep.pid, signal.SIGKILL)
    sweep.communicate(timeout=60)
    return sweep, child, release


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_trial_child_ends_when_its_sweep_is_killed(tmp_path):
    pytest.importorskip("optuna", minversion="4.0")
    _, child, release = kill_sweep_only(tmp_path, ignore_term=False)
    try:
        assert wait_gone(child), f"trial 0's train.py (pid {child}) outlived its killed sweep"
    finally:
        release.write_text("")  # a child that outlived it ends on its own
    assert not (tmp_path / "sweep" / "0" / "metrics.json").exists()  # it stopped training


def test_a_resume_stops_a_killed_sweeps_trial_child_before_it_runs_a_trial(tmp_path,
                                                                            monkeypatch):
    """A child that outlived its sweep (it ignored SIGTERM) is stopped by the resume, which
    then records its trial failed and runs the study's trials, none beside it."""
    pytest.importorskip("optuna", minversion="4.0")
    from esa_lightning.jobs import optuna_sweep

    sweep, child, release = kill_sweep_only(tmp_path, ignore_term=True)
    try:
        time.sleep(0.5)  # the SIGTERM the child got when its sweep died: ignored
        assert running_here(child)
        monkeypatch.setattr(sweep_child, "STOP_GRACE_S", 0.5)
        train = [sys.executable, str(tmp_path / "child_train.py")]
        sweep_dir = tmp_path / "sweep"
        assert optuna_sweep.main([*SWEEP, "--sweep-dir", str(sweep_dir)], CONF, train) == 0
        assert not running_here(child)  # stopped before the resume ran its trial
        assert not (sweep_dir / "0" / "metrics.json").exists()
    finally:
        release.write_text("")
        if running_here(child):
            os.kill(child, signal.SIGKILL)
    import optuna

    study = optuna.load_study(study_name="smoke", storage=f"sqlite:///{sweep_dir / 'optuna.db'}")
    trials = study.get_trials(deepcopy=False)
    assert [t.state.name for t in trials] == ["FAIL", "COMPLETE"]
    assert trials[0].user_attrs[CHILD_ATTR] == f"esa_lightning.{host()}.{child}"
    assert trials[0].user_attrs["reason"] == f"its sweep (pid {sweep.pid} on {host()}) ended " \
        "while it ran"


HOLD_FOLDER = """
import pathlib, sys, time
from esa_lightning.run_folder import lock_run_folder
with lock_run_folder(sys.argv[1]):
    pathlib.Path(sys.argv[2]).write_text("")
    while not pathlib.Path(sys.argv[3]).exists():
        time.sleep(0.05)
"""


def test_a_resume_is_refused_while_another_process_writes_into_a_killed_sweeps_trial_folder(
    tmp_path,
):
    """A process this sweep cannot tell is the trial's child (here: another run holding the
    trial folder) is not stopped: the resume is refused, naming its pid and the folder, and the
    trial stays as it was."""
    optuna = pytest.importorskip("optuna", minversion="4.0")
    from tests.unit.test_sweep_running_trials import ended_process_tag

    run_dir = tmp_path / "0"
    run_dir.mkdir()
    held, release = tmp_path / "held", tmp_path / "release"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_FOLDER, str(run_dir), str(held),
                               str(release)], env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        while not held.exists():
            assert holder.poll() is None, "the folder's holder ended first"
            time.sleep(0.05)
        study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 'o.db'}")
        trial = study.ask()
        trial.set_user_attr(OWNER_ATTR, ended_process_tag())
        trial.set_user_attr(CHILD_ATTR, ended_process_tag())
        trial.set_user_attr("run_dir", str(run_dir))
        for locked in (False, True):
            with pytest.raises(ESAInputError) as refused:
                stop_orphaned_children(study, lambda owner, lk=locked: sweep_gone(owner, lk))
            assert str(refused.value).startswith(
                f"{run_dir}: pid {holder.pid} on {host()} writes into trial 0's folder, whose "
                "sweep ended while the trial ran"), str(refused.value)
        assert holder.poll() is None  # not ours: left running
        assert [t.state.name for t in study.get_trials()] == ["RUNNING"]
    finally:
        release.write_text("")
        holder.wait(timeout=60)
    assert stop_orphaned_children(study, lambda owner: sweep_gone(owner, True)) == []
