"""One ``sweep.py`` run at a time runs a study's trials, whichever folder it runs them in.

A study is a single writer's: ``--n-trials`` is the number of complete trials it should hold,
the failure streak counts one run's trials in a row, and a resumed study's ``RUNNING`` trials are
its killed run's. The sweep folder's lock (``lock_run_folder``) held two runs of one study in one
folder apart, but two runs of a study in two folders sharing one ``--storage`` both ran its
trials. ``lock_study`` holds the study itself: for an SQLite storage file, a lock file beside it
named by the study (``.<db file>.<study>.lock``), which holds only as far as its file system's
locks reach (on NFS, not across machines where the client keeps ``flock`` local: docs/sweeps.md);
a server database (``postgresql://...``) has no file to hold, and ``settle_running_trials`` is
its guard: a study with a trial that a live run is running is refused; two runs that both
passed it (started together) are kept from training side by side by ``refuse_concurrent_run``
at the start of each trial.

``settle_running_trials`` is what a run does with the trials an earlier, killed run left
``RUNNING`` (they stopped beating, but Optuna fails them only 3 minutes after their last
heartbeat): under the study's lock no other run of the study is live, so each is recorded failed
at once (state ``FAIL``, ``user_attrs_reason`` saying why) and the run has honest counts: they
were never complete, and the run runs as many trials as the study lacks. A trial is recorded with
the run that runs it (``user_attrs_sweep``: host and pid), so a storage without a lock file fails
a trial whose run is gone on this machine, or whose heartbeat stopped on another.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import warnings
from collections.abc import Iterator
from typing import Any

from esa_lightning.errors import ESAInputError, quoted
from esa_lightning.io import owner_gone, owner_tag
from esa_lightning.jobs.sweep_folder import sqlite_file
from esa_lightning.run_folder import lock_run_folder

log = logging.getLogger("esa_lightning")
#: the user attribute naming the run (``esa_lightning.<host>.<pid>``) that runs a trial
OWNER_ATTR = "sweep"
#: what a second run of a study is told to do
STUDY_ADVICE = ("one sweep at a time runs a study's trials: let that one end (then rerun this "
                "command to continue the study), or start another study (--study-name)")


def study_lock_name(db_name: str, study_name: str) -> str:
    """The lock file's name beside SQLite file ``db_name`` for study ``study_name``: the name
    where it is a plain word, else its plain characters and a digest (two names never share
    one)."""
    plain = re.sub(r"[^\w.-]", "_", study_name)[:60]
    if plain != study_name:
        plain += "-" + hashlib.sha256(study_name.encode()).hexdigest()[:10]
    return f".{db_name}.{plain}.lock"


@contextlib.contextmanager
def lock_study(storage: str, study_name: str) -> Iterator[bool]:
    """Hold study ``study_name`` of ``storage`` for this process; whether it is held (False
    for a storage without a file beside which to hold it: a server database, or an SQLite
    file whose folder is missing, which the storage then refuses). A second run of the study
    meanwhile, from any folder, is refused in one line naming the storage, the study and the
    process that runs it. A holder that died holds nothing (``lock_run_folder``)."""
    file = sqlite_file(storage)
    if file is None or not file.resolve().parent.is_dir():
        yield False
        return
    file = file.resolve()
    with lock_run_folder(file.parent, name=study_lock_name(file.name, study_name),
                         advice=STUDY_ADVICE, where=file,
                         busy=f"another sweep is running study {quoted(study_name)}"):
        yield True


def claim(trial: Any) -> None:
    """Record this process as the run that runs ``trial``."""
    trial.set_user_attr(OWNER_ATTR, owner_tag())


def settle_running_trials(study: Any, optuna: Any, locked: bool) -> list[int]:
    """Record failed the study's ``RUNNING`` trials whose run is gone; the numbers of those
    failed. Gone: its recorded run (``claim``) ended on this machine, its heartbeat is older
    than the storage's grace period, or, with the study ``locked`` (``lock_study``), any run
    but a live one of this machine. A trial a live run is running refuses the sweep, in one
    line naming it: the study is that run's until it ends."""
    from optuna.trial import TrialState

    with warnings.catch_warnings():  # "experimental" since optuna 2.9
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # heartbeats older than the grace period
    storage = study._storage
    failed, live = [], []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = str(trial.user_attrs.get(OWNER_ATTR, ""))
        if sweep_gone(owner, locked):
            storage.set_trial_user_attr(trial._trial_id, "reason", _gone_reason(owner))
            with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
                storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
                failed.append(trial.number)
        else:
            live.append((trial.number, owner))
    if failed:
        numbers = ", ".join(map(str, failed))
        log.warning("trial%s %s of study %s were left running by a sweep that ended: recorded "
                    "failed, not counted", "s" if len(failed) > 1 else "", numbers,
                    study.study_name)
    if live:
        raise _running_elsewhere(study.study_name, *live[0])
    return failed


def refuse_concurrent_run(trial: Any) -> None:
    """Refuse this run, at the start of its ``trial`` (``claim``-ed), when a trial of the study
    that another live run asked for earlier still runs. Without the study's lock (a server
    database) two runs can both pass ``settle_running_trials``: started together, or one
    between the other's trials. Optuna fails a trial whose heartbeat stopped before each new
    one, and ``claim`` records its run, so a ``RUNNING`` trial of another run that has not
    ended on this machine is a live run's: of two runs that overlap, the one whose trial came
    later stops (its trial recorded failed, ``user_attrs_reason`` naming the other) and the
    other goes on; no two trials train at once."""
    from optuna.trial import TrialState

    me = owner_tag()
    for other in trial.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = str(other.user_attrs.get(OWNER_ATTR, ""))  # '': asked, not claimed yet
        if other.number < trial.number and owner != me and not owner_gone(owner):
            trial.set_user_attr("reason", f"another sweep ran the study: its trial "
                                          f"{other.number}{_who(owner)}")
            raise _running_elsewhere(trial.study.study_name, other.number, owner)


def _running_elsewhere(study_name: str, number: int, owner: str) -> ESAInputError:
    return ESAInputError(
        f"another sweep is running study {quoted(study_name)}: its trial {number} "
        f"runs{_who(owner)}; {STUDY_ADVICE}",
        column="--study-name",
        value=study_name,
    )


def sweep_gone(owner: str, locked: bool) -> bool:
    """Whether the run ``owner`` (``claim``) has ended: it ran on this machine and has ended,
    or, with the study ``locked``, it is anything but a live run of this machine."""
    return owner_gone(owner) or (locked and not _alive_here(owner))


def _alive_here(owner: str) -> bool:
    """Whether ``owner`` names a process of this machine that runs (not this one)."""
    parts = owner.split(".")
    return (len(parts) == 3 and owner != owner_tag() and parts[1] == owner_tag().split(".")[1]
            and not owner_gone(owner))


def _who(owner: str) -> str:
    parts = owner.split(".")
    return f" (pid {parts[2]} on {parts[1]})" if len(parts) == 3 and parts[2].isdigit() else ""


def _gone_reason(owner: str) -> str:
    return f"its sweep{_who(owner)} ended while it ran"
