"""The command line's overrides checked before Hydra runs a job (``composes_or_exit``)."""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from esa_lightning.jobs.paths import ConfigFolders

RUN_FOLDER_KEYS = ("hydra.run.dir", "hydra.sweep.dir")
MULTIRUN_FLAGS = ("-m", "--multirun")


def asks_for_debug(args: list[str]) -> bool:
    """Whether the command line's ``args`` hold ``debug_errors=true`` (full tracebacks)."""
    return any(a.replace(" ", "") == "debug_errors=true" for a in args)


def absolute_config_path(job: str = "train", hydra_flags: bool = True) -> None:
    """Every entry point's first step: ``sys.argv`` with its relative ``--config-path`` made
    absolute from the current folder (``config_path_from_cwd``); a folder that is not there is
    one ``error:`` line naming it and exit code 2. Overrides on both sides of Hydra's flags
    (``seed=1 -cp DIR model=zscore``) are put after them, as Hydra's parser reads them
    (``overrides_together``). Flags Hydra refuses (``--cfg nope``, ``--nope``, ``-cp`` without
    a folder, ``-m --cfg job``: its usage message or a traceback) are one ``error:`` line
    naming them and what to do, exit code 2. ``job``: the entry point (``train``...);
    ``hydra_flags=False``: the flags are not Hydra's to refuse (``train.py -m
    hparams_search=...`` hands ``--n-trials N`` and the search's other flags to its parser)."""
    from esa_lightning.errors import ESAInputError, one_line_errors
    from esa_lightning.install import command
    from esa_lightning.jobs.config_path import (
        config_path_from_cwd,
        hydra_flags_refusal,
        overrides_together,
    )

    with one_line_errors(debug=asks_for_debug(sys.argv[1:])):
        args = overrides_together(config_path_from_cwd(sys.argv[1:]))
        reason = hydra_flags_refusal(args) if hydra_flags else None
        if reason is not None:
            raise ESAInputError(f"{reason} ({command(job)} --hydra-help lists Hydra's flags)")
        sys.argv[1:] = args


def composes_or_exit(config_name: str, argv: list[str] | None = None) -> None:
    """Compose ``conf/<config_name>.yaml`` with the command line's overrides first: an unknown
    group option (``experiment=nope``), key (``model.foo=1``) or a word that is no override is
    one ``error:`` line and exit code 2, as every input error, instead of Hydra's message of
    several lines and exit code 1. A ``-m`` sweep composes each of its jobs
    (``sweep_composes_or_exit``). Hydra's flags that choose the configs (``-cp``, ``-cn``,
    ``-cd``: ``config_flags``) are composed as Hydra composes them, so a user's own configs get
    the same refusals. A command line with Hydra's other flags (``--cfg``, ``--help``...),
    ``hydra.mode=...`` or ``debug_errors=true`` goes to Hydra as it is."""
    args = sys.argv[1:] if argv is None else argv
    if asks_for_debug(args):
        return
    folders = None
    flags = [a for a in args if a.startswith("-")]
    if flags and not set(flags) <= set(MULTIRUN_FLAGS):
        configs = config_flags(args, shown=True)
        if configs is None:  # Hydra's other flags: Hydra answers them
            return
        folders, name, args = configs
        config_name = name or config_name
        if SHOWN in args:  # --cfg, --info: the config Hydra shows must compose, no more
            reason = compose_error(config_name, [a for a in args if a != SHOWN],
                                   folders=folders)
            if reason is not None:
                print(f"error: {reason}", file=sys.stderr)
                raise SystemExit(2)
            return
        flags = [a for a in args if a.startswith("-")]
    if flags:  # a -m sweep: every job composes
        sweep_composes_or_exit(config_name, [a for a in args if a not in MULTIRUN_FLAGS],
                               folders)
        return
    if any(a.startswith("hydra.mode=") for a in args):  # Hydra's mode
        return
    reason = compose_error(config_name, list(args), check=True, folders=folders)
    if reason is not None:
        print(f"error: {reason}", file=sys.stderr)
        raise SystemExit(2)


#: in ``config_flags``' overrides: the command line shows a config (``--cfg``, ``--info``)
SHOWN = "--cfg"
#: Hydra's flags that show the composed config: ``--cfg``, ``--info``, with ``--resolve`` and
#: ``--package``
SHOWING = ("cfg", "info", "resolve", "package")


def config_flags(args: list[str], shown: bool = False
                 ) -> tuple[ConfigFolders, str | None, list[str]] | None:
    """A command line whose only Hydra flags choose the configs (``--config-path``/``-cp``,
    ``--config-name``/``-cn``, ``--config-dir``/``-cd``, in each spelling Hydra's parser reads)
    and perhaps ``-m``, read by Hydra's own parser: the folders (``paths.ConfigFolders``), the
    config name (None without ``-cn``) and the overrides, with ``-m`` where it was given. None
    where another flag is given (``--help``...), or the parser refuses the command line or
    leaves words over (Hydra reports it). ``shown``: a command line that shows the config
    (``--cfg``, ``--info``: ``SHOWING``) is read too, ``SHOWN`` first in its overrides."""
    import argparse
    import contextlib
    import io

    from esa_lightning.jobs.paths import ConfigFolders

    try:
        from hydra._internal.utils import get_args_parser

        parser = get_args_parser()
        # its usage message, and --version's line: Hydra prints them once, when it runs
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            parsed, left = parser.parse_known_args(list(args))
    except (ImportError, SystemExit, argparse.ArgumentError):
        return None
    chosen = ("overrides", "multirun", "config_path", "config_name", "config_dir")
    others = {key for key, value in vars(parsed).items()
              if key not in chosen and value != parser.get_default(key)}
    if left or (others and not (shown and others <= set(SHOWING))):
        return None
    folders = ConfigFolders(path=parsed.config_path, added=parsed.config_dir)
    multirun = [MULTIRUN_FLAGS[0]] if parsed.multirun else []
    showing = [SHOWN] if others else []
    return folders, parsed.config_name, [*showing, *multirun, *parsed.overrides]


def sweep_composes_or_exit(config_name: str, overrides: list[str],
                           folders: ConfigFolders | None = None) -> None:
    """Compose each job of a ``-m`` sweep of ``overrides`` as Hydra's basic sweeper splits it:
    the first job that does not compose (``model.nope=4,8``, ``experiment=smoke,nope``) is one
    ``error: sweep job N (...)`` line and exit code 2, before Hydra makes the sweep folder
    (Hydra refused it too before any job ran, in several lines, exit code 1). The settings'
    rules are each job's own (``seed=1,abc``: that job fails, the others run). Jobs that would
    share a folder (``hydra.sweep.subdir``: ``cli.sweep_subdirs``) are refused too. A sweep Hydra
    alone can expand (``glob(...)``) or a job that composes goes to Hydra as it is, and so does
    every sweep where Hydra's basic sweeper (internal to Hydra) is not where it was.
    ``folders``: the command line's ``-cp``/``-cd`` (``config_flags``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    except ImportError:  # another Hydra's internals: Hydra checks the jobs itself
        return

    from esa_lightning.cli.sweep_subdirs import (
        SUBDIR_KEY,
        refuse_job_subdirs,
        refuse_shared_subdir,
    )
    from esa_lightning.install import composition_reason

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception as exc:  # noqa: BLE001 - Hydra raises several types for bad overrides
        print(f"error: {composition_reason(exc)}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        jobs = BasicSweeper.split_arguments(parsed, None)[0]
    except Exception:  # noqa: BLE001 - a glob needs Hydra's config loader: Hydra reports it
        return
    refuse_shared_subdir(parsed, len(jobs))  # one fixed name: known from the command line
    subdirs = []  # each job's hydra.sweep.subdir, as its composed config gives it
    for number, job in enumerate(jobs):
        local = not any(o.startswith("hydra/launcher=") for o in job)  # Hydra's basic launcher
        keys: dict[str, Any] = {SUBDIR_KEY: None}
        reason = compose_error(config_name, list(job), local_sweep=local, sweep_job=True,
                               hydra_keys=keys, folders=folders)
        if reason is not None:
            shown = " ".join(o for o in job if not o.lstrip("+~").startswith("hydra."))
            which = f"sweep job {number} ({shown})" if shown else f"sweep job {number}"
            print(f"error: {which}: {reason}", file=sys.stderr)
            raise SystemExit(2)
        subdirs.append(keys[SUBDIR_KEY])
    refuse_job_subdirs(config_name, parsed, jobs, subdirs, folders)  # in each job's config


def refuse_unshared_run_folder(argv: list[str] | None = None) -> None:
    """Processes another launcher started (``torchrun``: ``WORLD_SIZE`` > 1 before Lightning's
    launcher runs; SLURM's ``srun``: ``SLURM_STEP_NUM_TASKS`` > 1, or ``SLURM_NTASKS`` > 1 on a
    task above 0) would each name a time-stamped run folder of their own:
    without ``hydra.run.dir`` (or ``hydra.sweep.dir``) that is one ``error:`` line and exit
    code 2, before anything is written. The processes Lightning starts are given the folder."""
    from esa_lightning.run_folder import unshared_folder_reason

    args = sys.argv[1:] if argv is None else argv
    sweep = any(a in ("-m", "--multirun") for a in args)  # its jobs' folders: hydra.sweep.dir
    reason = unshared_folder_reason(f"hydra.{'sweep' if sweep else 'run'}.dir=<folder>")
    if reason is None or any(a.lstrip("+").split("=", 1)[0].strip() in RUN_FOLDER_KEYS
                             for a in args):
        return
    print(f"error: {reason}", file=sys.stderr)
    raise SystemExit(2)


def leave_to_rank_zero(command: str) -> None:
    """``command`` (predict.py, evaluate.py, merge.py) runs in one process: started on every
    rank by another launcher (``torchrun``, SLURM's ``srun``), global rank 0 runs it, and a
    process with a rank above 0 (``RANK``, ``SLURM_PROCID``...: ``run_folder.RANK_VARIABLES``)
    exits with code 0 after one ``note:`` line naming it, before anything is read or written.
    Each rank ran it whole before, into a folder of its own, or, all given one, the second
    refused by its lock."""
    from esa_lightning.run_folder import rank_settings

    ranks = rank_settings()
    if not ranks:
        return
    print(f"note: {command} runs in one process, on global rank 0; this process "
          f"({' '.join(ranks)}) leaves it to rank 0 and exits", file=sys.stderr)
    raise SystemExit(0)


def compose_error(config_name: str, overrides: list[str], check: bool = False,
                  local_sweep: bool = False, sweep_job: bool = False,
                  hydra_keys: dict[str, Any] | None = None,
                  folders: ConfigFolders | None = None) -> str | None:
    """Why ``conf/<config_name>.yaml`` does not compose with ``overrides``, on one line; None
    when it does (quality.py checks its candidates' overrides with it too). ``check``: also
    the settings' rules (``settings.check_settings``: ``seed=abc``, ``data.val_days=-5``, an
    unset ``ckpt``), so that a refused command line leaves no run folder behind.
    ``local_sweep``: a job of a ``-m`` sweep run in this process, refused when it asks for
    several devices (``jobs.sweep.refuse_multidevice_multirun``, which refused each job only
    once it ran, after reading its data, leaving a sweep folder of refused jobs).
    ``sweep_job``: a job of a ``-m`` sweep, refused too for a top-level trainer key that the
    components of ``experiment=esa_full`` shadow (``refuse_shadowed_trainer_keys``: each job
    of ``trainer.max_epochs=1,2`` was refused only once the sweep had made its folder).
    ``hydra_keys``: filled with those keys' values in the composed ``hydra`` node, unresolved
    (``jobs.paths.compose_config``). ``folders``: the command line's ``-cp``/``-cd``, read as
    Hydra reads them (``config_flags``)."""
    from esa_lightning.errors import ESAInputError
    from esa_lightning.install import composition_reason
    from esa_lightning.jobs.paths import compose_config
    from esa_lightning.jobs.unused_top_level import refuse_unused_top_level
    from esa_lightning.settings import (
        check_setting,
        check_settings,
        refuse_shadowed_trainer_keys,
    )

    try:
        refuse_unused_top_level(config_name, overrides, folders=folders)  # esa_full's
        cfg = compose_config(config_name, overrides, hydra_keys=hydra_keys, folders=folders)
        if local_sweep and "trainer" in cfg:
            from esa_lightning.jobs.sweep import (
                asks_for_several_devices,
                multidevice_multirun_error,
            )

            if asks_for_several_devices(cfg.trainer):
                raise multidevice_multirun_error(cfg.trainer)
        if sweep_job:
            refuse_shadowed_trainer_keys(cfg, overrides)
        if check:  # debug_errors itself is a true/false switch: 2 or yes is no debug run
            check_setting("debug_errors", cfg.get("debug_errors"))
        if check and cfg.get("debug_errors") is not True:  # debug: the job's traceback
            check_settings(cfg)
            refuse_shadowed_trainer_keys(cfg, overrides)
            refuse_unread_top_level_keys(config_name, cfg, overrides, folders)
    except ESAInputError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - Hydra raises several types for bad overrides
        if "Cannot find primary config" in str(exc):
            from esa_lightning.jobs.paths import missing_primary_config

            return missing_primary_config(config_name, folders)
        reason = composition_reason(exc)
        return unchosen_group(config_name, overrides, reason, folders) or reason
    return None


def unchosen_group(config_name: str, overrides: list[str], reason: str,
                   folders: ConfigFolders | None = None) -> str | None:
    """For Hydra's ``Could not override 'experiment'. No match in the defaults list. To append
    to your default list use +experiment=nope`` (``predict.py experiment=nope``): where that
    ``+`` does not compose either (predict.py's config has no model to put an experiment in),
    one line saying that the config chooses no such group, the groups it chooses and the
    entry point that chooses it; None where Hydra's advice holds (``train.py debug=x``)."""
    found = re.match(r"Could not override '([^']+)'\. No match in the defaults list", reason)
    if found is None:
        return None
    group = found.group(1)
    given = [o for o in overrides if o.split("=", 1)[0].strip() == group]
    if not given:
        return None
    from esa_lightning.jobs.paths import compose_config

    appended = [f"+{o}" if o is given[0] else o for o in overrides]
    try:
        compose_config(config_name, appended, folders=folders)
        return None
    except Exception:  # noqa: BLE001 - Hydra's advice does not compose either
        pass
    keys: dict[str, Any] = {"hydra.runtime.choices": None}
    try:
        compose_config(config_name, [], hydra_keys=keys, folders=folders)
    except Exception:  # noqa: BLE001 - the config alone does not compose: Hydra's reason
        return None
    chosen = sorted(g for g in (keys["hydra.runtime.choices"] or {}) if not g.startswith("hydra"))
    hint = ""
    if config_name != "train" and folders is None:
        hint = f"; {group}= is train.py's"
    return (f"{given[0].strip()}: {_config_shown(config_name, folders)} chooses no {group} "
            f"(its config groups: {', '.join(chosen) or 'none'}){hint}")


def refuse_unread_top_level_keys(config_name: str, cfg: Any, overrides: list[str],
                                 folders: ConfigFolders | None = None) -> None:
    """A top-level key the command line adds (``+xyz=1``, ``+max_epoch=1``) that neither
    ``conf/<config_name>.yaml`` with the other overrides holds nor any value interpolates
    (``+my_lr=0.01 model.lr=${my_lr}``) is read by no job: refused naming the key and the
    closest settings, instead of a run that goes on as if it were not given."""
    import difflib

    from omegaconf import OmegaConf

    from esa_lightning.errors import ESAInputError
    from esa_lightning.jobs.paths import compose_config

    added = {}
    for override in overrides:
        key, sep, _ = override.partition("=")
        key = key.strip()
        if sep and key.startswith("+") and "." not in key and "/" not in key:
            added[key.lstrip("+")] = override
    if not added:
        return
    written = OmegaConf.to_yaml(cfg, resolve=False)
    for key, override in added.items():
        if key not in cfg or re.search(rf"\$\{{{re.escape(key)}[.}}\[]", written):
            continue
        others = compose_config(config_name, [o for o in overrides if o is not override],
                                folders=folders)
        if key in others:
            continue
        close = difflib.get_close_matches(key, [str(k) for k in others if k != "hydra"], n=3)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise ESAInputError(f"{override.strip()}: {key} is not a setting of "
                            f"{_config_shown(config_name, folders)}, nothing reads it{hint}")


def _config_shown(config_name: str, folders: ConfigFolders | None) -> str:
    """``train.py (conf/train.yaml)``; a user's own: ``config my_exp (DIR/my_exp.yaml)``, or
    from a package (``-cp pkg://my_pkg.conf``): ``config my_exp (pkg://my_pkg.conf/my_exp.yaml)``.
    With ``-cd DIR`` alone the file Hydra composed: the package's ``conf/`` is searched first,
    then ``DIR`` (``config my_exp (DIR/my_exp.yaml)``)."""
    import os

    from esa_lightning.install import config_dir

    package = f"{config_name}.py (conf/{config_name}.yaml)"
    if folders is None or (folders.path is None and folders.added is None):
        return package
    if folders.path is None:  # -cd alone: the package's conf/ first, then that folder
        if (config_dir() / f"{config_name}.yaml").is_file():
            return package
        added = os.path.join(os.path.abspath(folders.added), f"{config_name}.yaml")
        return f"config {config_name} ({added})" if os.path.isfile(added) else (
            f"config {config_name}")
    return f"config {config_name} ({folders.path.rstrip('/')}/{config_name}.yaml)"
