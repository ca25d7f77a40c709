"""Score new telemetry: esa-predict ckpt=PATH [data=NAME] [data.root=PATH]"""

import hydra
from omegaconf import DictConfig

from esa_lightning.cli.overrides import (
    absolute_config_path,
    composes_or_exit,
    leave_to_rank_zero,
)
from esa_lightning.jobs.sweep import exit_if_jobs_failed


@hydra.main(version_base="1.3", config_path="../conf", config_name="predict")
def run(cfg: DictConfig) -> dict | None:
    # imported here, after composes_or_exit: a refused command line answers without loading
    # torch and Lightning (seconds)
    from esa_lightning.jobs.common import run_or_exit
    from esa_lightning.jobs.predict import predict

    return run_or_exit(predict, cfg)


def main() -> None:
    leave_to_rank_zero("predict.py")  # torchrun's or srun's other ranks: one job
    absolute_config_path("predict")  # -cp DIR: the folder beside the user, not in the package
    composes_or_exit("predict")  # a bad override is one line, as every input error
    run()
    exit_if_jobs_failed()  # a local -m sweep whose jobs stopped on input errors


if __name__ == "__main__":
    main()
