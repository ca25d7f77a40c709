"""Persistent Optuna sweep over train.py runs: python sweep.py hparams_search=NAME [key=value ...]
[--n-trials N] [--study-name NAME] [--storage URL] [-cp DIR] [-cn NAME] [-cd DIR]
(docs/sweeps.md)"""

import sys
from pathlib import Path

from esa_lightning.jobs.optuna_sweep import main

if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    sys.exit(
        main(
            sys.argv[1:], here / "esa_lightning" / "conf", [sys.executable, str(here / "train.py")]
        )
    )
