"""Score new telemetry: esa-predict ckpt=PATH [data=NAME] [data.root=PATH]"""

import hydra
from omegaconf import DictConfig

from esa_lightning.jobs.common import run_or_exit
from esa_lightning.jobs.predict import predict


@hydra.main(version_base="1.3", config_path="../conf", config_name="predict")
def main(cfg: DictConfig) -> dict:
    return run_or_exit(predict, cfg)


if __name__ == "__main__":
    main()
