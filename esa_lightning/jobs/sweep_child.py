"""A ``sweep.py`` trial's ``train.py`` child does not outlive its sweep.

A sweep killed outright (``kill -9``, the OOM killer) left its running trial's ``train.py``
training into the trial folder, reparented to init, while a resume recorded that trial failed and
ran the next ones beside it. Two guards:

- on Linux the child asks the kernel for SIGTERM when the sweep dies (``PR_SET_PDEATHSIG``,
  through ``prctl``, in the forked child before it runs ``train.py``; the signal survives the
  exec), so it stops with its sweep;
- each trial records its child (``user_attrs_child``: ``esa_lightning.<host>.<pid>``), and a
  resume looks, before it runs a trial, for a child of a killed sweep's trial that still runs (on
  another system than Linux, or one that ignores SIGTERM): one of this machine that is that
  trial's (its command line names the trial folder, or it holds the folder's lock) is stopped
  (SIGTERM, then SIGKILL after ``STOP_GRACE_S``); any other process writing into the trial
  folder (holding its lock), or a child it cannot tell, refuses the resume in one line naming
  the pid and the folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from esa_lightning.errors import ESAInputError
from esa_lightning.io import owner_gone, owner_tag, process_alive
from esa_lightning.run_folder import LOCK_NAME

try:
    import fcntl
except ImportError:  # not POSIX
    fcntl = None

log = logging.getLogger("esa_lightning")
#: the user attribute naming a trial's ``train.py`` process (``esa_lightning.<host>.<pid>``)
CHILD_ATTR = "child"
#: seconds a resume waits for a killed sweep's trial child to end on SIGTERM before SIGKILL
STOP_GRACE_S = 30.0
#: seconds it then waits for the SIGKILLed child to be gone
KILL_WAIT_S = 10.0
PR_SET_PDEATHSIG = 1


def dies_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` for the trial's ``Popen``: on Linux the child gets SIGTERM when the
    thread that starts it (the sweep's) ends, and ends at once if the sweep died before it
    asked; None where the kernel offers no such signal (the resume's check is the guard)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent, sig = os.getpid(), int(signal.SIGTERM)

    def preexec() -> None:  # in the forked child: no locks, no logging
        prctl(PR_SET_PDEATHSIG, sig)
        if os.getppid() != parent:  # the sweep died between the fork and the prctl
            os._exit(1)

    return preexec


def child_tag(pid: int) -> str:
    """The ``owner_tag`` of process ``pid`` of this machine."""
    return f"{owner_tag().rsplit('.', 1)[0]}.{pid}"


def record_child(trial: Any, pid: int) -> None:
    """Record ``pid`` as the process that runs ``trial``'s ``train.py``."""
    trial.set_user_attr(CHILD_ATTR, child_tag(pid))


def stop_orphaned_children(study: Any, sweep_gone: Callable[[str], bool]) -> list[int]:
    """Stop the ``train.py`` children of the study's trials whose sweep is gone (``sweep_gone``
    of the trial's recorded sweep) and that still run; the pids stopped. A process writing into
    such a trial's folder that this sweep cannot stop as that trial's child refuses the run."""
    from optuna.trial import TrialState

    from esa_lightning.jobs.sweep_study import OWNER_ATTR

    stopped = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.FAIL)):
        attrs = trial.user_attrs
        run_dir = attrs.get("run_dir")
        if not run_dir or not sweep_gone(str(attrs.get(OWNER_ATTR, ""))):
            continue
        pid = _live_child(trial.number, str(attrs.get(CHILD_ATTR, "")), Path(run_dir),
                          trial.state == TrialState.RUNNING)
        if pid is not None:
            log.warning("trial %d's train.py (pid %d) still ran in %s after its sweep ended: "
                        "stopping it", trial.number, pid, run_dir)
            _stop(pid, trial.number, Path(run_dir))
            stopped.append(pid)
    return stopped


def _live_child(number: int, child: str, run_dir: Path, running: bool) -> int | None:
    """The pid of trial ``number``'s child when it still runs, as this machine's process that
    is that trial's; None when none runs. Anything else writing into ``run_dir`` refuses."""
    holder = folder_holder(run_dir)
    pid = _pid_here(child)
    if pid is not None and not running_here(pid):
        pid = None
    if holder and (pid is None or holder != child_tag(pid)) and not owner_gone(holder):
        raise _refusal(number, holder, run_dir, "writes into")
    if pid is None:
        return None
    named = _names_folder(pid, run_dir)
    if named or holder == child_tag(pid):
        return pid
    if named is None and running:  # no command line to read: it may be the trial's
        raise _refusal(number, child_tag(pid), run_dir, "may still write into")
    return None  # the pid is another process's now


def _refusal(number: int, holder: str, run_dir: Path, does: str) -> ESAInputError:
    parts = holder.split(".")
    who = f"pid {parts[2]} on {parts[1]}" if len(parts) == 3 else f"a process ({holder})"
    return ESAInputError(
        f"{who} {does} trial {number}'s folder, whose sweep ended while the trial ran; a sweep "
        "cannot run the study's trials beside it: stop that process (or let it end), then rerun "
        "this command to continue the study",
        path=run_dir,
    )


def _pid_here(tag: str) -> int | None:
    parts = tag.split(".")
    if len(parts) != 3 or parts[1] != owner_tag().split(".")[1] or not parts[2].isdigit():
        return None
    return int(parts[2])


def running_here(pid: int) -> bool:
    """Whether process ``pid`` of this machine runs (a zombie no reaper collects does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False if Path("/proc/self/stat").exists() else process_alive(pid)
    except OSError:
        return process_alive(pid)
    return stat.rpartition(")")[2].split()[:1] not in (["Z"], ["X"])


def _names_folder(pid: int, run_dir: Path) -> bool | None:
    """Whether process ``pid``'s command line names ``run_dir`` as its run folder; None where it
    cannot be read."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    return os.fsencode(f"hydra.run.dir={run_dir}") in args


def folder_holder(folder: Path) -> str:
    """The ``owner_tag`` of the process holding ``folder``'s run lock (``lock_run_folder``), ''
    when none does. Reads only: the lock file is neither made nor removed."""
    path = folder / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return ""
    try:
        owner = os.read(fd, 200).decode(errors="replace").strip()
        if fcntl is None:  # the lock is the file itself: held while its owner lives
            return owner
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return owner or "unknown"
            return ""  # a file system without flock: its holder is not known here
        fcntl.flock(fd, fcntl.LOCK_UN)
        return ""
    finally:
        os.close(fd)


def _stop(pid: int, number: int, run_dir: Path) -> None:
    """SIGTERM ``pid``, SIGKILL it after ``STOP_GRACE_S``; refuse if it still runs then."""
    for sig, wait in ((signal.SIGTERM, STOP_GRACE_S), (getattr(signal, "SIGKILL", None),
                                                       KILL_WAIT_S)):
        if sig is None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while running_here(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not running_here(pid):
            return
    raise _refusal(number, child_tag(pid), run_dir, "still writes into")
