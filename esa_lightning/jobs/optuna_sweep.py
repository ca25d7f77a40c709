"""A persistent hyper-parameter search: Optuna (>= 4) on an RDB storage, Hydra overrides in.

    python sweep.py hparams_search=optuna experiment=gru_ae [key=value ...]
        [--n-trials N] [--study-name NAME] [--storage URL] [--sweep-dir DIR]
        [-cp DIR] [-cn NAME] [-cd DIR]

The search space is the ``optuna.params`` node of an ``hparams_search`` config, in the Hydra
sweeper syntax (``choice(a, b)``, ``a,b``, ``range(lo, hi[, step])``, ``interval(lo, hi)``,
``tag(log, interval(lo, hi))``). On the command line, such an expression adds or replaces a
searched key and a plain ``key=value`` fixes it. Every trial is its own ``train.py`` run, in its
own process and folder (``<sweep-dir>/<trial number>``), with the sweep's overrides plus the
trial's; its ``metrics.json`` value of ``optimized_metric`` is what Optuna sees.

The study lives in ``--storage`` (default ``sqlite:///<sweep-dir>/optuna.db``): rerunning the
same command after a stop continues the study until it holds ``--n-trials`` complete trials
(a crashed or NaN trial, or one without a usable ``metrics.json``, is recorded failed and not
counted: ``sweep_failures``); a new study into a folder holding another study's trial folders is
refused before anything is written (``sweep_folder``), and so is a second run of a study while
another holds its folder (``lock_run_folder``, as a ``train.py -m`` sweep holds its folder)
or its study (``sweep_study``: one run at a time runs a study, from any folder; the trials a
killed run left ``RUNNING`` are recorded failed when the study is resumed; their ``train.py``
children end with their sweep, or are stopped by the resume: ``sweep_child``);
``optuna-dashboard <storage>`` or ``<sweep-dir>/trials.csv`` show it. The hydra-optuna-sweeper
plugin cannot do this: it pins optuna < 3, whose RDB storage fails under current SQLAlchemy.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any, NoReturn

from hydra.utils import instantiate

from esa_lightning.errors import ESAInputError
from esa_lightning.install import command, search_prog
from esa_lightning.io import atomic_path, make_output_folder
from esa_lightning.jobs.config_path import config_path_from_cwd
from esa_lightning.jobs.sweep_child import dies_with_parent, record_child, stop_orphaned_children
from esa_lightning.jobs.sweep_failures import (
    FailureStreak,
    NoObjective,
    QuietCrashes,
    TrialFailed,
    crash_summary,
    crashed,
    read_objective,
    record_crash,
    record_no_objective,
)
from esa_lightning.jobs.sweep_folder import refuse_other_study, refuse_used_trial_folder
from esa_lightning.jobs.sweep_plan import SweepPlan, canonical_overrides, compose_train, make_plan
from esa_lightning.jobs.sweep_space import override_value, suggest
from esa_lightning.jobs.sweep_study import (
    claim,
    lock_study,
    refuse_concurrent_run,
    settle_running_trials,
    sweep_gone,
)
from esa_lightning.run_folder import lock_run_folder

log = logging.getLogger("esa_lightning")
MIN_OPTUNA = 4
#: what a sweep refused because another run holds its folder is told to do
HELD_ADVICE = ("one sweep at a time runs a folder's trials: let that one end (then rerun this "
               "command to continue the study), or give this sweep its own folder (--sweep-dir)")


def import_optuna() -> Any:
    """Optuna >= 4, or a one-line error saying how to get it."""
    try:
        import optuna
    except ImportError:
        optuna = None
    major = int(optuna.__version__.split(".")[0]) if optuna is not None else 0
    if major < MIN_OPTUNA:
        found = optuna.__version__ if optuna is not None else "none"
        raise ESAInputError(
            f"the sweep needs optuna>={MIN_OPTUNA} (found {found}): pip install 'optuna>=4' "
            "(the hydra-optuna-sweeper plugin pins optuna<3: uninstall it first)",
            column="optuna",
        )
    return optuna


def chosen_overrides(plan: SweepPlan, trial: Any) -> list[str]:
    """The trial's value of every searched key, as overrides (``+key=`` where the search
    adds the key to the config, as its expression did)."""
    return [
        f"{o.get_key_element()}={override_value(suggest(trial, k, o))}"
        for k, o in plan.space.items()
    ]


def run_trial(plan: SweepPlan, trial: Any) -> float:
    """One ``train.py`` run with the trial's overrides; its ``optimized_metric``. A run that
    crashed or left no usable ``metrics.json`` raises ``TrialFailed`` (Optuna records the trial
    FAIL, the sweep goes on); one that exits 2, a user-input error every trial would hit, stops
    the sweep, as does a trial folder that already holds files."""
    chosen = chosen_overrides(plan, trial)
    run_dir = plan.sweep_dir / str(trial.number)
    overrides = [*plan.overrides, *chosen]
    # a bad value fails here, with Hydra's message
    compose_train(plan.config_dir, overrides, plan.config_path, plan.config_name, plan.added_dir)
    refuse_used_trial_folder(run_dir)  # another study's trial: not this one's, not overwritten
    claim(trial)  # a later run fails it at once if this one is killed running it
    trial.set_user_attr("run_dir", str(run_dir))
    trial.set_user_attr("overrides", " ".join(chosen))
    make_output_folder(run_dir)
    console = run_dir / "console.log"
    with console.open("w") as out:
        proc = run_child(
            [*plan.train_command, *plan.config_flags, *overrides, f"hydra.run.dir={run_dir}"],
            out, trial,
        )
    if proc.returncode == 2:  # a user-input error: every trial would hit it
        tail = console.read_text(errors="replace").strip().splitlines()[-1:] or [""]
        raise ESAInputError(f"trial {trial.number}: {tail[0]}", path=console)
    if proc.returncode:
        raise record_crash(trial, proc.returncode, console)
    try:
        return read_objective(run_dir / "metrics.json", plan.metric)
    except NoObjective as exc:
        raise record_no_objective(trial, str(exc), console) from None


def run_child(args: list[str], out: Any, trial: Any) -> subprocess.Popen:
    """Run a trial's ``train.py`` (``args``), its output to ``out``, until it ends; recorded as
    ``trial``'s child, and ended with the sweep (``sweep_child``): SIGTERM on Linux when the
    sweep dies, killed when the sweep stops on an exception (Ctrl-C)."""
    with subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                          preexec_fn=dies_with_parent()) as proc:
        try:
            record_child(trial, proc.pid)
            proc.wait()
        except BaseException:
            proc.kill()  # as subprocess.run does
            raise
    return proc


def open_study(plan: SweepPlan, optuna: Any) -> Any:
    """Create the study, or load it (resume) after checking it searches the same thing."""
    make_output_folder(plan.sweep_dir)
    with warnings.catch_warnings():  # the heartbeat is "experimental" since optuna 2.9
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # a trial whose sweep was killed stops beating: failed at the next trial's start
        storage = optuna.storages.RDBStorage(plan.storage, heartbeat_interval=60, grace_period=180)
    sampler = instantiate(plan.sampler) if plan.sampler else None
    try:
        study = optuna.create_study(
            study_name=plan.study_name,
            storage=storage,
            sampler=sampler,
            direction=plan.direction,
            load_if_exists=True,
        )
    except ValueError as exc:
        raise ESAInputError(str(exc), column="--study-name", value=plan.study_name) from None
    described = json.dumps(plan.description(), sort_keys=True)
    stored = study.user_attrs.get("plan")
    if stored is None:
        study.set_user_attr("plan", described)
    elif _canonical(stored) != described:
        raise ESAInputError(
            f"this study searched {stored}, not {described}: resume with the same overrides, or "
            "start another study (--study-name; with --sweep-dir given, in another folder too: "
            "a folder holds one study's trials)",
            column="--study-name",
            value=plan.study_name,
        )
    return study


def _canonical(stored: str) -> str:
    """A stored plan in today's form (studies begun before ``canonical_overrides`` stored
    their overrides in command-line order)."""
    try:
        plan = json.loads(stored)
        plan["overrides"] = canonical_overrides(list(plan["overrides"]))
    except (ValueError, TypeError, KeyError, ESAInputError):
        return stored
    return json.dumps(plan, sort_keys=True)


def write_trials(study: Any, sweep_dir: Path) -> Path:
    """``trials.csv``: every trial's number, state, value, parameters and run folder."""
    path = sweep_dir / "trials.csv"
    table = study.trials_dataframe()
    if "user_attrs_exit_code" in table:  # a crash's; empty for the others (not 1.0 then)
        table["user_attrs_exit_code"] = table["user_attrs_exit_code"].astype("Int64")
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
    return path


def sweep(plan: SweepPlan) -> Any:
    """Run trials until the study holds ``plan.n_trials`` complete ones; the study. The sweep
    folder is held throughout: a second run into it while this one runs (the same command
    twice: both ran trials there, each rewriting ``trials.csv``) is refused in one line naming
    the folder and this process, before it reads or writes anything of the study there. A
    holder that died leaves no hold (``lock_run_folder``: released by the kernel). The study is
    held too, whatever folder another run of it would use (``sweep_study.lock_study``), and the
    trials a killed run of it left ``RUNNING`` are recorded failed before any trial runs."""
    optuna = import_optuna()
    made = not plan.sweep_dir.exists()
    make_output_folder(plan.sweep_dir)
    try:
        with lock_run_folder(plan.sweep_dir, advice=HELD_ADVICE), \
                lock_study(plan.storage, plan.study_name) as locked:
            return _sweep(plan, optuna, locked)
    except ESAInputError:
        if made:  # refused before it wrote there (the study another run's): left as it was
            with contextlib.suppress(OSError):
                plan.sweep_dir.rmdir()  # empty only
        raise


def _sweep(plan: SweepPlan, optuna: Any, locked: bool) -> Any:
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    refuse_other_study(plan.sweep_dir, plan.study_name, plan.storage, optuna)
    study = open_study(plan, optuna)
    # a killed run's trial child that still trains: stopped (or the run refused) first
    stop_orphaned_children(study, lambda owner: sweep_gone(owner, locked))
    if settle_running_trials(study, optuna, locked):  # a killed run's: failed, not counted
        write_trials(study, plan.sweep_dir)
    done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    remaining = plan.n_trials - done
    log.info(
        "study %s (%s): %d complete trials, %d to run; trials in %s",
        plan.study_name,
        plan.storage,
        done,
        max(remaining, 0),
        plan.sweep_dir,
    )
    if remaining <= 0:
        return study
    streak = FailureStreak(remaining)  # failed trials in a row: too many stop the sweep

    def after_trial(study: Any, trial: Any) -> None:
        write_trials(study, plan.sweep_dir)
        if streak.add(trial):
            study.stop()

    def objective(trial: Any) -> float:
        if not locked:  # no lock holds the study: another run may have started beside this one
            claim(trial)
            refuse_concurrent_run(trial)
        return run_trial(plan, trial)

    quiet = QuietCrashes()  # a crash is one line of ours, not Optuna's traceback of this code
    optuna_log = logging.getLogger("optuna.study._optimize")
    optuna_log.addFilter(quiet)
    try:  # until the study holds n_trials complete trials (MaxTrialsCallback stops it)
        study.optimize(
            objective,
            callbacks=[MaxTrialsCallback(plan.n_trials, states=(TrialState.COMPLETE,)),
                       after_trial],
            catch=(TrialFailed,),  # a failed trial is recorded FAIL; the next one runs
        )
    finally:
        optuna_log.removeFilter(quiet)
        write_trials(study, plan.sweep_dir)
    done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    if done < plan.n_trials:
        raise streak.error(plan.metric, done, plan.n_trials)
    return study


class OneLineParser(argparse.ArgumentParser):
    """``sweep.py``'s parser: a command line it refuses (``--cfg job``, ``-c``, ``--n-trials
    abc``) is one ``error:`` line naming it and what to do, exit code 2, not argparse's usage
    message above it."""

    def error(self, message: str) -> NoReturn:
        hint = f"{self.prog} --help lists its flags"
        if any(flag in message for flag in HYDRA_SHOW_FLAGS):
            hint += (f"; Hydra's --cfg and --info are {command('train')}'s: "
                     f"{command('train')} hparams_search=NAME [key=value ...] --cfg job shows "
                     "a trial's config")
        self.exit(2, f"error: {message} ({hint})\n")


#: Hydra's flags that show a config, which train.py takes and the search does not
HYDRA_SHOW_FLAGS = ("--cfg", "--info", "--hydra-help", "--resolve", "-c ", "-c,", "-i ")


def argument_parser() -> argparse.ArgumentParser:
    train = command("train")  # the commands the user has: esa-train -m installed
    parser = OneLineParser(
        prog=search_prog(),
        description=f"Optuna search over {train} runs, persisted in an RDB storage (resumable).",
    )
    parser.add_argument("overrides", nargs="*", help=f"Hydra overrides, as for {train}")
    parser.add_argument(
        "--n-trials",
        type=int,
        default=None,
        help="complete trials the study should hold (default: optuna.n_trials)",
    )
    parser.add_argument("--study-name", default=None, help="default: the experiment name")
    parser.add_argument(
        "--storage", default=None, help="Optuna RDB URL (default: sqlite:///<sweep-dir>/optuna.db)"
    )
    parser.add_argument(
        "--sweep-dir",
        default=None,
        help="trial folders (default: outputs/<experiment>/sweeps/<study>)",
    )
    parser.add_argument(
        "-cp", "--config-path", default=None,
        help="the folder of your configs, in place of the package's (read from the current "
        "folder; every trial gets it)",
    )
    parser.add_argument(
        "-cn", "--config-name", default=None,
        help="the primary config in it (default: train)",
    )
    parser.add_argument(
        "-cd", "--config-dir", default=None,
        help="a folder of configs searched beside the package's (read from the current folder)",
    )
    parser.add_argument("--debug-errors", action="store_true", help="full tracebacks")
    return parser


def main(argv: list[str], config_dir: Path, train_command: list[str]) -> int:
    """The ``sweep.py`` entry: 0 when done, 2 on a user error, 1 when trials crashed in a row,
    130 when interrupted."""
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s] %(message)s")
    args = argument_parser().parse_intermixed_args(argv)
    try:
        if args.config_path is not None:  # read from the current folder, as train.py reads it
            args.config_path = config_path_from_cwd(["-cp", args.config_path])[1]
        plan = make_plan(args, Path(config_dir).resolve(), train_command)
        study = sweep(plan)
    except ESAInputError as exc:
        if args.debug_errors:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except TrialFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to continue the study", file=sys.stderr)
        return 130
    failed = [t for t in study.trials if crashed(t)]
    if failed:  # the study is complete all the same: its best trial follows, as the last line
        print(f"{crash_summary(failed)}: recorded failed, not counted")
    complete = [t for t in study.trials if t.value is not None]
    if complete:
        best = study.best_trial
        print(
            f"best of {len(complete)} trials: trial {best.number}, {plan.metric} "
            f"{best.value:.4f} ({best.user_attrs.get('overrides', '')}); "
            f"run: {best.user_attrs.get('run_dir', '')}"
        )
    return 0
