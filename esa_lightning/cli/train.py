"""Train a detector: esa-train [experiment=NAME] [data=NAME] [key=value ...]"""

import hydra
from omegaconf import DictConfig

from esa_lightning.cli.overrides import composes_or_exit, refuse_unshared_run_folder
from esa_lightning.jobs.sweep import exit_if_jobs_failed


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def run(cfg: DictConfig) -> float | None:
    # imported here, after composes_or_exit: a refused command line answers without loading
    # torch and Lightning (seconds)
    from esa_lightning.jobs.common import run_or_exit
    from esa_lightning.jobs.train import train

    return run_or_exit(train, cfg)


def main() -> None:
    refuse_unshared_run_folder()  # torchrun's ranks: one folder for all, or none
    composes_or_exit("train")  # a bad override is one line, as every input error
    run()
    exit_if_jobs_failed()  # a local -m sweep whose jobs stopped on input errors


if __name__ == "__main__":
    main()
