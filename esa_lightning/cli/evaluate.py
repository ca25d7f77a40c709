"""Score a predictions CSV: esa-evaluate predictions=FILE [data=NAME] [data.root=PATH]"""

import hydra
from omegaconf import DictConfig

from esa_lightning.jobs.common import run_or_exit
from esa_lightning.jobs.evaluate import evaluate_predictions


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(cfg: DictConfig) -> dict:
    return run_or_exit(evaluate_predictions, cfg)


if __name__ == "__main__":
    main()
