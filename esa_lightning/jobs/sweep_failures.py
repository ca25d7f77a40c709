"""What ``sweep.py`` does with a failed trial: a ``train.py`` that crashed (an exit code other
than 0 and 2), one that exited 0 without a usable ``metrics.json`` (``read_objective``), or a
NaN ``optimized_metric`` is recorded FAIL in the study, and the sweep goes on with the next
trial until too many fail in a row (``FailureStreak``)."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from esa_lightning.errors import ESAInputError
from esa_lightning.io import read_settings_json

log = logging.getLogger("esa_lightning")
MIN_NAN_STREAK = 3  # NaN trials in a row: as many as the run has trials to run, at least this
CRASH_STREAK = 5  # at most this many failed trials in a row when one of them crashed
LAST_LINE_CHARS = 300


class TrialFailed(RuntimeError):
    """A trial's ``train.py`` ended with an error that is not a user-input error."""


class NoObjective(ValueError):
    """A trial's ``train.py`` exited 0 without a usable ``metrics.json``: the reason."""


def read_objective(path: Path, metric: str) -> float:
    """``metric``'s value in the ``metrics.json`` at ``path``; ``NoObjective``, saying why, when
    the file is missing, unreadable, not a JSON object or holds no number for ``metric``."""
    try:
        metrics = read_settings_json(path)
    except ESAInputError as exc:  # over the size bound, or not a file
        raise NoObjective(f"its metrics.json is unreadable ({exc.reason})") from None
    except FileNotFoundError:
        raise NoObjective("it wrote no metrics.json") from None
    except OSError as exc:
        raise NoObjective(f"its metrics.json is unreadable ({exc.strerror or exc})") from None
    except ValueError as exc:  # not UTF-8 text, or not JSON
        raise NoObjective(f"its metrics.json is not JSON ({exc})") from None
    if not isinstance(metrics, dict):
        raise NoObjective("its metrics.json is not a JSON object of metrics")
    if metric not in metrics:
        kept = ", ".join(sorted(k for k in metrics if k.startswith("val/"))) or "none"
        raise NoObjective(
            f"its metrics.json has no {metric} (its val/ metrics: {kept}); a range without "
            "labels has no labeled metrics: choose another optimized_metric"
        )
    value = metrics[metric]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise NoObjective(f"its metrics.json's {metric} is not a number: {value!r}")
    return float(value)


def record_crash(trial: Any, returncode: int, console: Path) -> TrialFailed:
    """Store the crash in ``trial``'s user attributes (``exit_code``, ``reason``, ``console``,
    ``last_line``: the last line of its output), log it in one line and return the error that
    makes Optuna record the trial FAIL."""
    return record_failure(trial, returncode, f"exit code {returncode}", console)


def record_no_objective(trial: Any, reason: str, console: Path) -> TrialFailed:
    """``record_crash`` for a ``train.py`` that exited 0 without a usable ``metrics.json``
    (``reason``: ``NoObjective``'s)."""
    return record_failure(trial, 0, reason, console)


def record_failure(trial: Any, returncode: int, reason: str, console: Path) -> TrialFailed:
    """Store a failed trial's ``train.py`` exit code, the reason, its console log and the log's
    last line in ``trial``'s user attributes; log it in one line; the error to raise."""
    lines = console.read_text(errors="replace").strip().splitlines()
    last = lines[-1].strip()[:LAST_LINE_CHARS] if lines else ""
    trial.set_user_attr("exit_code", returncode)
    trial.set_user_attr("reason", reason)
    trial.set_user_attr("console", str(console))
    trial.set_user_attr("last_line", last)
    why = reason if returncode else f"exit code 0, but {reason}"
    message = f"trial {trial.number} failed ({why}): {console}"
    log.warning("%s; its last line: %s", message, last)
    return TrialFailed(message)


def crashed(trial: Any) -> bool:
    """Whether ``trial`` is a failure ``record_failure`` stored (a crash, or no usable
    ``metrics.json``; not a NaN value, not a stop)."""
    return "exit_code" in trial.user_attrs and trial.state.name == "FAIL"


def crash_summary(trials: list[Any]) -> str:
    """The failed ``trials`` (``crashed``) in one phrase: how many, their numbers, exit codes
    or reasons, and console logs."""
    crashes = [t for t in trials if t.user_attrs["exit_code"] != 0]
    phrases = []
    if crashes:
        numbers = ", ".join(str(t.number) for t in crashes)
        codes = ", ".join(sorted({str(t.user_attrs["exit_code"]) for t in crashes}))
        phrases.append(f"{_trials(crashes)} crashed ({numbers}; exit code {codes}), "
                       f"see {_consoles(crashes)}")
    unusable = [t for t in trials if t.user_attrs["exit_code"] == 0]
    if unusable:
        by_reason: dict[str, list[str]] = {}
        for t in unusable:
            by_reason.setdefault(t.user_attrs["reason"], []).append(str(t.number))
        reasons = "; ".join(f"{', '.join(n)}: {r}" for r, n in by_reason.items())
        phrases.append(f"{_trials(unusable)} exited 0 without a usable metrics.json "
                       f"({reasons}), see {_consoles(unusable)}")
    return "; ".join(phrases)


def _trials(trials: list[Any]) -> str:
    return f"{len(trials)} trial{'s' if len(trials) > 1 else ''}"


def _consoles(trials: list[Any]) -> str:
    return ", ".join(str(t.user_attrs["console"]) for t in trials)


class QuietCrashes(logging.Filter):
    """On Optuna's ``optuna.study._optimize`` logger: drops its two warnings about a failed
    trial (the traceback of the sweep's own code, then "failed with value None"), which
    ``record_failure`` has logged in one line (``TrialFailed``), or the sweep prints as its
    last line (``ESAInputError``, the input error that stops it; ``KeyboardInterrupt``,
    Ctrl-C: "interrupted: rerun the same command...")."""

    def __init__(self) -> None:
        super().__init__()
        self.numbers: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        found = re.match(r"Trial (\d+) failed", record.getMessage())
        if found is None:
            return True
        quiet = TrialFailed | ESAInputError | KeyboardInterrupt  # each said once, by the sweep
        if record.exc_info and isinstance(record.exc_info[1], quiet):
            self.numbers.add(found[1])
        return found[1] not in self.numbers


class FailureStreak:
    """The failed trials in a row. The sweep gives up after as many as it had trials to run, at
    least ``MIN_NAN_STREAK``; at most ``CRASH_STREAK`` when one of them crashed or left no usable
    ``metrics.json`` (``crashed``: a failure every trial hits, a bug, costs a few trials, not the
    night)."""

    def __init__(self, remaining: int) -> None:
        self.nan_limit = max(remaining, MIN_NAN_STREAK)
        self.trials: list[Any] = []

    def add(self, trial: Any) -> bool:
        """Count ``trial`` (a finished one); whether the sweep should stop."""
        self.trials = [*self.trials, trial] if trial.state.name == "FAIL" else []
        crashes = any(crashed(t) for t in self.trials)
        limit = min(self.nan_limit, CRASH_STREAK) if crashes else self.nan_limit
        return len(self.trials) >= limit

    def error(self, metric: str, done: int, n_trials: int) -> Exception:
        """Why the sweep stopped, in one line: ``TrialFailed`` (exit 1) when one of the trials
        crashed or left no usable ``metrics.json``, else the NaN ``ESAInputError`` (exit 2)."""
        numbers = ", ".join(str(t.number) for t in self.trials)
        held = f"the study holds {done} of {n_trials} complete trials"
        crashes = [t for t in self.trials if crashed(t)]
        nans = [str(t.number) for t in self.trials if not crashed(t)]
        if not crashes:
            return ESAInputError(
                f"{len(self.trials)} trials in a row ({numbers}) gave {metric} NaN, recorded "
                f"failed: {held}; rerun to continue, or choose another optimized_metric",
                column="optimized_metric",
            )
        nan_part = f"; {', '.join(nans)} gave {metric} NaN" if nans else ""
        last = crashes[-1].user_attrs["last_line"]
        return TrialFailed(
            f"{len(self.trials)} trials in a row failed ({numbers}): {crash_summary(crashes)}; "
            f"the last one's last line: {last}{nan_part}; {held}: fix the cause, then rerun the "
            "same command to continue the study"
        )
