"""Train a detector: esa-train [experiment=NAME] [data=NAME] [key=value ...]"""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from esa_lightning.cli.overrides import (
    MULTIRUN_FLAGS,
    absolute_config_path,
    composes_or_exit,
    refuse_unshared_run_folder,
)
from esa_lightning.jobs.sweep import exit_if_jobs_failed


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def run(cfg: DictConfig) -> float | None:
    # imported here, after composes_or_exit: a refused command line answers without loading
    # torch and Lightning (seconds)
    from esa_lightning.jobs.common import run_or_exit
    from esa_lightning.jobs.train import train

    return run_or_exit(train, cfg)


def is_optuna_search(args: list[str]) -> bool:
    """Whether ``args`` are ``-m hparams_search=NAME ...``, the search ``optuna_search`` runs."""
    return bool(set(args) & set(MULTIRUN_FLAGS)) and any(
        a.lstrip("+").startswith("hparams_search=") for a in args
    )


def optuna_search(args: list[str]) -> int | None:
    """``train.py -m hparams_search=NAME ...`` (the command the contract names for a search):
    the persistent Optuna search ``sweep.py`` runs, each trial a ``train.py`` run of its own
    (docs/sweeps.md); None for any other command line. Hydra's Optuna sweeper plugin, which
    such a command once ran, is not used (it pins optuna < 3)."""
    if not is_optuna_search(args):
        return None
    from esa_lightning.install import command, running_from_source
    from esa_lightning.jobs.optuna_sweep import main as sweep

    same = ", as python sweep.py runs it" if running_from_source() else ""  # installed: no sweep.py
    print(f"{command('train')} -m hparams_search=...: an Optuna search{same}", file=sys.stderr)
    searched = [a for a in args if a not in MULTIRUN_FLAGS]
    conf = Path(__file__).resolve().parent.parent / "conf"
    return sweep(searched, conf, [sys.executable, "-m", "esa_lightning.cli.train"])


def main() -> None:
    from esa_lightning.errors import one_line_errors
    from esa_lightning.jobs.component_datamodules import with_component_datamodules

    # -cp DIR: the folder beside the user, not in the package; a search's flags (--n-trials)
    # are its own parser's to answer, not Hydra's
    absolute_config_path("train", hydra_flags=not is_optuna_search(sys.argv[1:]))
    with one_line_errors():  # a component's model picks its datamodule, unless one is named
        sys.argv[1:] = with_component_datamodules(sys.argv[1:])
    code = optuna_search(sys.argv[1:])
    if code is not None:
        raise SystemExit(code)
    refuse_unshared_run_folder()  # torchrun's ranks: one folder for all, or none
    composes_or_exit("train")  # a bad override is one line, as every input error
    run()
    exit_if_jobs_failed()  # a local -m sweep whose jobs stopped on input errors


if __name__ == "__main__":
    main()
