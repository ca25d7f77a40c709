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
