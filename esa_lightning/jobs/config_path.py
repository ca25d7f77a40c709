"""A command line's relative ``--config-path`` made absolute from the current folder: the one
rule of ``train.py``, ``predict.py``, ``evaluate.py``, ``merge.py`` (``cli.overrides``) and
``sweep.py`` (``jobs.optuna_sweep``)."""

from __future__ import annotations

import os

from esa_lightning.errors import ESAInputError


def config_path_from_cwd(args: list[str]) -> list[str]:
    """``args`` (a command line's arguments) with a relative ``--config-path`` (``-cp``, in each
    spelling Hydra's parser reads: ``-cp DIR``, ``-cp=DIR``, ``--config-path[=]DIR`` and its
    abbreviations such as ``--config-p``) made absolute from the current folder, ``~`` expanded.
    Hydra reads a relative one from the package of the ``hydra.main`` module
    (``esa_lightning/cli/DIR``), where no user's configs are. An absolute path and Hydra's
    ``pkg://`` (or another ``scheme://``) are left as they are. A path that is no folder is an
    ``ESAInputError`` naming it, before Hydra runs."""
    out = list(args)
    for i, arg in enumerate(out):
        if arg == "--":  # what follows is no flag
            break
        name, sep, value = arg.partition("=")
        if not _names_config_path(name):
            continue
        if not sep:
            if i + 1 >= len(out):  # no value: Hydra's parser says so
                break
            value = out[i + 1]
        if not value or "://" in value:
            continue
        folder = os.path.abspath(os.path.expanduser(value))
        if not os.path.isdir(folder):
            what = "is not a folder" if os.path.exists(folder) else "no such folder"
            raise ESAInputError(
                f"{what}: {name} {value} names the folder of your configs, read from the "
                "current folder (or give an absolute path)", path=folder)
        if sep:
            out[i] = f"{name}={folder}"
        else:
            out[i + 1] = folder
    return out


def _names_config_path(flag: str) -> bool:
    """Whether ``flag`` is Hydra's ``--config-path``: ``-cp``, the whole name, or an abbreviation
    argparse takes for it (``--config-p`` and longer: ``--config-`` is also ``--config-dir``)."""
    return flag == "-cp" or (len(flag) >= len("--config-p") and "--config-path".startswith(flag))


def overrides_together(args: list[str]) -> list[str]:
    """``args`` with its overrides after Hydra's flags, in the order given, where Hydra's parser
    refuses them as written: Hydra 1.3 reads its overrides only as one run of words, so
    ``train.py seed=1 -cp DIR model=zscore`` ended in its usage message (``unrecognized
    arguments: model=zscore``), and ``train.py --info experiment=smoke`` took the override for
    ``--info``'s value (``invalid choice``). ``sweep.py`` takes them on both sides of its flags
    too. A command line Hydra's parser reads as it is, one with ``--``, a flag it does not know
    or one whose value is missing is left as it is (Hydra answers it)."""
    import argparse

    if "--" in args or _parses(args):
        return list(args)
    try:
        from hydra._internal.utils import get_args_parser

        actions = {flag: action for action in get_args_parser()._actions
                   for flag in action.option_strings}
    except (ImportError, AttributeError):  # another Hydra: it answers the command line
        return list(args)
    flags: list[str] = []
    last: list[str] = []  # --info without a value: last, where no override can be taken for it
    overrides: list[str] = []
    i = 0
    while i < len(args):
        word = args[i]
        i += 1
        if not word.startswith("-") or len(word) < 2:
            overrides.append(word)
            continue
        name, sep, _ = word.partition("=")
        action = actions.get(name) or _abbreviated(name, actions)
        if action is None:
            return list(args)
        if sep or action.nargs == 0:
            flags.append(word)
        elif action.nargs == argparse.OPTIONAL:  # --info [WHAT]: a value only if one of WHAT
            if i < len(args) and args[i] in (action.choices or ()):
                flags += [word, args[i]]
                i += 1
            elif i < len(args) and not args[i].startswith("-") and "=" not in args[i]:
                return list(args)  # --info nope: no override, a value Hydra refuses
            else:
                last.append(word)
        elif i < len(args):
            flags += [word, args[i]]
            i += 1
        else:  # no value: Hydra's parser says so
            return list(args)
    out = [*flags, *overrides, *last]
    return out if _parses(out) else list(args)


def _parses(args: list[str]) -> bool:
    """Whether Hydra's own parser reads ``args`` as they are."""
    return _hydra_parse(args)[1] is None


def _hydra_parse(args: list[str]) -> tuple[dict | None, str | None]:
    """Hydra's parser on ``args``: (the flags it read, None), or (None, why it refuses them:
    argparse's ``error:`` line without its usage message, ``argument --cfg/-c: invalid choice:
    'nope' (choose from 'job', 'hydra', 'all')``, ``unrecognized arguments: --nope``); (None,
    None) where it exits without an error (``--version``) or is not Hydra 1.3's."""
    import contextlib
    import io

    try:
        from hydra._internal.utils import get_args_parser
    except ImportError:
        return None, None
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said), contextlib.redirect_stdout(io.StringIO()):
            return vars(get_args_parser().parse_args(list(args))), None
    except SystemExit as exc:
        if exc.code in (0, None):
            return None, None
        lines = [line for line in said.getvalue().splitlines() if ": error: " in line]
        return None, lines[-1].split(": error: ", 1)[1].strip() if lines else "not read"


#: Hydra's flags of which a command line takes one (Hydra's ValueError, a traceback)
ONE_OF = {"run": "--run", "multirun": "-m", "cfg": "--cfg", "info": "--info",
          "shell_completion": "--shell-completion"}


def hydra_flags_refusal(args: list[str]) -> str | None:
    """Why Hydra refuses ``args``' flags, on one line, before it starts: its parser's error,
    or two of ``--run``, ``-m``, ``--cfg``, ``--info``, ``--shell-completion`` together
    (Hydra's ``ValueError`` traceback); None where Hydra takes them (or answers them itself:
    ``--version``)."""
    parsed, reason = _hydra_parse(args)
    if parsed is None:
        return reason
    given = [flag for key, flag in ONE_OF.items() if parsed.get(key) not in (None, False)]
    if len(given) < 2:
        return None
    return (f"{' and '.join(given)}: Hydra takes one of --run, -m (--multirun), --cfg, --info, "
            "--shell-completion at a time; --cfg and --info show one run's config: give them "
            "without -m")


def _abbreviated(name: str, actions: dict) -> object | None:
    """The action of the one long flag ``name`` abbreviates (argparse's ``--config-n``)."""
    if not name.startswith("--"):
        return None
    found = {id(action): action for flag, action in actions.items()
             if flag.startswith("--") and flag.startswith(name)}
    return next(iter(found.values())) if len(found) == 1 else None
