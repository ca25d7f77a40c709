"""How this copy of the package runs: from a clone (``python train.py``) or installed
(``esa-train``), and where its configs are."""

from __future__ import annotations

from pathlib import Path

#: the folder holding the ``esa_lightning`` package: the clone's root when run from a clone
SOURCE_ROOT = Path(__file__).resolve().parents[1]


def running_from_source() -> bool:
    """Whether the package is imported from a clone (editable install or ``python train.py``):
    its ``pyproject.toml`` and ``train.py`` beside it. The Docker image (``Dockerfile``) copies
    ``pyproject.toml`` but no ``train.py`` beside the package it imports: no clone."""
    return all((SOURCE_ROOT / name).is_file() for name in ("pyproject.toml", "train.py"))


def command(job: str) -> str:
    """How a user starts ``job`` (``train``...): ``python train.py`` in a clone, the installed
    command ``esa-train`` otherwise (an installed package has no ``train.py``)."""
    return f"python {job}.py" if running_from_source() else f"esa-{job}"


def search_prog() -> str:
    """How a user starts an Optuna search (docs/sweeps.md), without its arguments:
    ``python sweep.py`` in a clone, ``esa-train -m`` installed (which runs the same search;
    there is no ``sweep.py``)."""
    return "python sweep.py" if running_from_source() else f"{command('train')} -m"


def search_command() -> str:
    """``search_prog`` with the search's one mandatory argument."""
    return f"{search_prog()} hparams_search=NAME"


def config_dir() -> Path:
    """The configs: ``esa_lightning/conf``, shipped inside the package."""
    conf = Path(__file__).resolve().parent / "conf"
    if (conf / "train.yaml").is_file():
        return conf
    from esa_lightning.errors import ESAInputError

    raise ESAInputError("the configs (conf/train.yaml) are not installed", path=conf)


#: Hydra's noise around a composition error: not part of the reason
_NOISE = ("full_key:", "object_type=", "Set the environment variable HYDRA_FULL_ERROR")


def composition_reason(exc: Exception) -> str:
    """Hydra's composition error on one line, without its noise and search path."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    reason = " ".join(ln for ln in lines if not ln.startswith(_NOISE)) or type(exc).__name__
    return reason.split(" Config search path:")[0]  # the folders Hydra looked in
