"""A persistent hyper-parameter search: Optuna (>= 4) on an RDB storage, Hydra overrides in.

    python sweep.py hparams_search=optuna experiment=gru_ae [key=value ...]
        [--n-trials N] [--study-name NAME] [--storage URL] [--sweep-dir DIR]

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
refused before anything is written (``sweep_folder``);
``optuna-dashboard <storage>`` or ``<sweep-dir>/trials.csv`` show it. The hydra-optuna-sweeper
plugin cannot do this: it pins optuna < 3, whose RDB storage fails under current SQLAlchemy.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import subprocess
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, Transformer
from hydra.errors import HydraException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from esa_lightning.errors import ESAInputError
from esa_lightning.install import command, composition_reason, search_prog
from esa_lightning.io import atomic_path, make_output_folder
from esa_lightning.jobs.paths import compose_config
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

log = logging.getLogger("esa_lightning")
MIN_OPTUNA = 4
SEARCH_NODE = "optuna"


@dataclass
class SweepPlan:
    """What every trial shares (``overrides``) and what Optuna chooses per trial (``space``)."""

    overrides: list[str]
    space: dict[str, Override]
    direction: str
    metric: str
    sampler: dict[str, Any] | None
    sweep_dir: Path
    study_name: str
    storage: str
    n_trials: int
    config_dir: Path
    train_command: list[str] = field(default_factory=list)

    def description(self) -> dict[str, Any]:
        """What defines the study (stored with it; a resumed run must match)."""
        return {
            "overrides": canonical_overrides(self.overrides),
            "space": {k: o.input_line for k, o in sorted(self.space.items())},
            "metric": self.metric,
        }


def canonical_overrides(lines: list[str]) -> list[str]:
    """``lines`` in an order that does not depend on how the command line was written: sorted
    when no key repeats or holds another (Hydra's result then does not depend on their order),
    else as given (the later of two values wins)."""
    keys = [o.key_or_group for o in parse_overrides(lines, "command line")]
    nested = any(a != b and b.startswith(a + ".") for a in keys for b in keys)
    return lines if nested or len(set(keys)) < len(keys) else sorted(lines)


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


def parse_overrides(lines: list[str], what: str) -> list[Override]:
    try:
        return OverridesParser.create().parse_overrides(lines)
    except HydraException as exc:
        reason = composition_reason(exc)  # Hydra's message of several lines, on one
        raise ESAInputError(f"not a Hydra override ({reason})", column=what) from None


def compose_train(config_dir: Path, overrides: list[str]) -> DictConfig:
    """``train.yaml`` composed with ``overrides`` (no Hydra run: nothing is created); a key of
    esa_full's unused top-level model or datamodule (``hparams_search=optuna``'s ``model.lr``)
    is refused naming the components' keys (``refuse_unused_top_level``)."""
    from esa_lightning.jobs.component_datamodules import with_component_datamodules
    from esa_lightning.jobs.unused_top_level import refuse_unused_top_level

    refuse_unused_top_level("train", overrides, config_dir)
    try:
        return compose_config("train", with_component_datamodules(overrides, config_dir),
                              config_dir)
    except HydraException as exc:
        reason = composition_reason(exc)
        raise ESAInputError(f"the overrides do not compose: {reason}", column="overrides") from None


@dataclass(frozen=True)
class Dimension:
    """One searched key as Optuna draws it: ``kind`` names the ``trial.suggest_<kind>`` call
    and ``args`` its arguments (``choices``, or ``low``, ``high`` and ``step``/``log``)."""

    kind: str
    args: dict[str, Any]

    def first(self) -> Any:
        """The first value the dimension can draw."""
        return self.args["choices"][0] if self.kind == "categorical" else self.args["low"]


def dimension(key: str, override: Override) -> Dimension:
    """The search dimension of a sweep expression, as the Hydra sweeper reads it (``range``
    keeps Hydra's meaning: the stop value is excluded; a descending one draws the same values,
    ``shuffle`` is dropped: Optuna chooses). An expression that can draw no value (an empty
    range, a step of 0, an interval whose low is above its high, a log interval from 0) or is
    not a sweep is refused, naming the key."""
    value = override.value()
    if override.is_interval_sweep():
        log_scale = "log" in value.tags
        if value.start > value.end or (log_scale and value.start <= 0):
            raise ESAInputError(
                "an interval needs low <= high (and low > 0 on a log scale)",
                column=key,
                value=override.input_line,
            )
        whole = isinstance(value.start, int) and isinstance(value.end, int)
        args = {"low": value.start, "high": value.end, "log": log_scale}
        return Dimension("int" if whole else "float", args)
    if not (override.is_choice_sweep() or override.is_range_sweep()):
        raise ESAInputError(
            "not a choice, range or interval", column=key, value=override.input_line
        )
    if override.is_range_sweep() and value.step == 0:
        raise ESAInputError("a range's step must not be 0", column=key, value=override.input_line)
    if getattr(value, "shuffle", False):  # one order for every trial: Optuna refuses another
        override = dataclasses.replace(override, _value=dataclasses.replace(value, shuffle=False))
    choices = list(override.sweep_iterator(transformer=Transformer.encode))
    if not choices:
        raise ESAInputError("the range holds no value", column=key, value=override.input_line)
    if override.is_choice_sweep() or value.shuffle:
        return Dimension("categorical", {"choices": choices})
    # Hydra's values, lowest to highest (range(5,1,-1): 5, 4, 3, 2 drawn as 2 to 5 by 1)
    low, high, step = min(choices[0], choices[-1]), max(choices[0], choices[-1]), abs(value.step)
    whole = all(isinstance(v, int) for v in (low, high, step))
    return Dimension("int" if whole else "float", {"low": low, "high": high, "step": step})


def make_plan(args: argparse.Namespace, config_dir: Path, train_command: list[str]) -> SweepPlan:
    """Split the command line into the shared overrides and the searched keys, compose the run's
    config once (a bad override fails here, before any trial) and read its search space."""
    plain, searched = [], {}
    for override in parse_overrides(args.overrides, "command line"):
        if override.is_sweep_override():
            searched[override.key_or_group] = override
        else:
            plain.append(override.input_line)
    cfg = compose_train(config_dir, plain)
    node = cfg.get(SEARCH_NODE) or OmegaConf.create({})
    fixed = {o.key_or_group for o in parse_overrides(plain, "command line")}
    space = {}
    for key, expr in (node.get("params") or {}).items():
        if key not in fixed:  # a plain command-line value fixes a searched key
            space[key] = parse_overrides([f"{key}={expr}"], f"{SEARCH_NODE}.params.{key}")[0]
    space.update(searched)
    if not space:
        raise ESAInputError(
            "nothing to search: add hparams_search=NAME (esa_lightning/conf/hparams_search) "
            "or a sweep override such as model.lr=interval(0.0003,0.01)",
            column=f"{SEARCH_NODE}.params",
        )
    direction = str(node.get("direction", "maximize"))
    if direction not in ("maximize", "minimize"):
        raise ESAInputError(
            "maximize or minimize", column=f"{SEARCH_NODE}.direction", value=direction
        )
    metric = str(cfg.optimized_metric)
    if not metric.startswith("val/"):  # the best trial would be chosen on the held-out range
        raise ESAInputError(
            "a sweep chooses its trials by a validation metric (val/...), never by the test "
            "range it reports: e.g. optimized_metric=val/EW_F_0.50",
            column="optimized_metric",
            value=metric,
        )
    refuse_direction_against_metric(metric, direction)
    experiment = str(cfg.experiment_name)
    study_name = args.study_name or str(node.get("study_name") or experiment)
    sweep_dir = Path(args.sweep_dir or Path(cfg.paths.log_dir) / experiment / "sweeps" / study_name)
    if SEARCH_NODE in cfg:  # trials are plain train.py runs (train.py warns about this node)
        plain.append(f"~{SEARCH_NODE}")
    # every searched key exists in the run's config (e.g. the searched model's), before any trial
    firsts = [f"{o.get_key_element()}={override_value(dimension(k, o).first())}"
              for k, o in space.items()]
    try:
        compose_train(config_dir, [*plain, *firsts])
    except ESAInputError as exc:
        raise ESAInputError(
            f"the searched keys ({', '.join(space)}) do not fit this run's config: {exc.reason}",
            column=f"{SEARCH_NODE}.params",
        ) from None
    sampler = node.get("sampler")
    n_trials = args.n_trials if args.n_trials is not None else node.get("n_trials", 20)
    if not isinstance(n_trials, int) or isinstance(n_trials, bool) or n_trials < 1:
        raise ESAInputError(  # a study of no trial would run nothing and say nothing
            "complete trials the study should hold: at least 1 (--n-trials N)",
            column=f"{SEARCH_NODE}.n_trials",
            value=n_trials,
        )
    return SweepPlan(
        overrides=plain,
        space=space,
        direction=direction,
        metric=metric,
        sampler=OmegaConf.to_container(sampler, resolve=True) if sampler else None,
        sweep_dir=sweep_dir,
        study_name=study_name,
        storage=args.storage or f"sqlite:///{sweep_dir / 'optuna.db'}",
        n_trials=n_trials,
        config_dir=config_dir,
        train_command=train_command,
    )


#: the sense of the metric names whose better end is known: an error is better low, a score high
LOWER_IS_BETTER = ("MAE",)
HIGHER_IS_BETTER = ("F_0.50", "precision", "recall", "AUC_PR")


def refuse_direction_against_metric(metric: str, direction: str) -> None:
    """Refuse a study that would keep the worst trial: an error (``val/forecast_MAE``)
    maximised, a score (``val/EW_F_0.50``, ``_anomaly`` variants too) minimised. A metric of
    no known sense (``ADTQC_after``) takes the direction given."""
    name = metric.rsplit("/", 1)[-1].removesuffix("_anomaly")
    wanted = ("minimize" if name.endswith(LOWER_IS_BETTER)
              else "maximize" if name.endswith(HIGHER_IS_BETTER) else direction)
    if wanted != direction:
        raise ESAInputError(
            f"a {'lower' if wanted == 'minimize' else 'higher'} {metric} is better: "
            f"{wanted} it ({SEARCH_NODE}.direction={wanted}, +{SEARCH_NODE}.direction={wanted} "
            "without hparams_search=), or choose another optimized_metric",
            column=f"{SEARCH_NODE}.direction",
            value=direction,
        )


def suggest(trial: Any, key: str, override: Override) -> Any:
    """The trial's value of ``key`` for its sweep expression (see ``dimension``)."""
    dim = dimension(key, override)
    return getattr(trial, f"suggest_{dim.kind}")(key, **dim.args)


def override_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return "null" if value is None else str(value)


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
    compose_train(plan.config_dir, overrides)  # a bad value fails here, with Hydra's message
    refuse_used_trial_folder(run_dir)  # another study's trial: not this one's, not overwritten
    trial.set_user_attr("run_dir", str(run_dir))
    trial.set_user_attr("overrides", " ".join(chosen))
    make_output_folder(run_dir)
    console = run_dir / "console.log"
    with console.open("w") as out:
        proc = subprocess.run(
            [*plan.train_command, *overrides, f"hydra.run.dir={run_dir}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
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
            "start another study (--study-name)",
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
    """Run trials until the study holds ``plan.n_trials`` complete ones; the study."""
    optuna = import_optuna()
    from optuna.study import MaxTrialsCallback
    from optuna.trial import TrialState

    refuse_other_study(plan.sweep_dir, plan.study_name, plan.storage, optuna)
    study = open_study(plan, optuna)
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

    quiet = QuietCrashes()  # a crash is one line of ours, not Optuna's traceback of this code
    optuna_log = logging.getLogger("optuna.study._optimize")
    optuna_log.addFilter(quiet)
    try:  # until the study holds n_trials complete trials (MaxTrialsCallback stops it)
        study.optimize(
            lambda trial: run_trial(plan, trial),
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


def argument_parser() -> argparse.ArgumentParser:
    train = command("train")  # the commands the user has: esa-train -m installed
    parser = argparse.ArgumentParser(
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
    parser.add_argument("--debug-errors", action="store_true", help="full tracebacks")
    return parser


def main(argv: list[str], config_dir: Path, train_command: list[str]) -> int:
    """The ``sweep.py`` entry: 0 when done, 2 on a user error, 1 when trials crashed in a row,
    130 when interrupted."""
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s] %(message)s")
    args = argument_parser().parse_intermixed_args(argv)
    try:
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
