"""Train a detector: esa-train [experiment=NAME] [data=NAME] [key=value ...]"""

import hydra
from omegaconf import DictConfig

from esa_lightning.jobs.common import run_or_exit
from esa_lightning.jobs.train import train


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    return run_or_exit(train, cfg)


if __name__ == "__main__":
    main()
