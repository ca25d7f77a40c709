"""Shared fixtures: a small synthetic mission, and Hydra configs composed in-process."""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig, open_dict

from esa_lightning.jobs.paths import compose_config as compose_job_config

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "esa_lightning" / "conf"
MSL = REPO.parent / "shared" / "data" / "nasa-msl"


def pytest_configure(config: pytest.Config) -> None:
    """One intra-op thread per test process and per command line a test starts (they inherit
    the variable, as the xdist workers started after this hook do), unless ``OMP_NUM_THREADS``
    says otherwise. Two workers share two cores (``-n 2``): with torch's default of a thread per
    core each, four threads spun on two cores and a GRU's steps ran 3-6 times slower (the
    side-by-side trainings of docs/scaling.md)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


@pytest.fixture(scope="session")
def small_mission_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small ESA-layout synthetic mission (8 channels, 2 groups, 20 days)."""
    from esa_lightning.data.readers.synthetic import generate_mission

    out = tmp_path_factory.mktemp("synthetic") / "mission"
    generate_mission(out, channels=8, groups=2, days=20, seed=3, kaggle=True)
    return out


@pytest.fixture(autouse=True)
def lightning_rank_restored():
    """Building a Trainer of another rank (a test simulating torchrun's rank 1) sets Lightning's
    process-wide ``rank_zero_only.rank``; left at 1, every later test in the worker skipped the
    rank-zero work (no detector, no metrics.json). Each test ends with the rank it began with."""
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    before = getattr(rank_zero_only, "rank", 0)
    yield
    rank_zero_only.rank = before


@pytest.fixture(autouse=True)
def consoles_off_closed_streams():
    """A library's console handler (optuna's, made on its first import) writes to the
    sys.stderr of the moment it was made, and its colour formatter asks that stream whether it
    is a terminal: in a test, a capture stream that is closed once that test ends, so each later
    line through it printed "--- Logging error --- ValueError: I/O operation on closed file".
    After each test, such a console writes to the process's stderr (which pytest's capture
    still takes where it captures)."""
    yield
    for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
        for handler in getattr(logger, "handlers", ()):
            if type(handler) is logging.StreamHandler and _closed(handler.stream):
                handler.stream = sys.__stderr__
                if _closed(getattr(handler.formatter, "stream", None)):  # colorlog's
                    handler.formatter.stream = sys.__stderr__


def _closed(stream: object) -> bool:
    return bool(getattr(stream, "closed", False))


@pytest.fixture
def one_thread():
    """Tiny networks and tensors run several times faster on one intra-op thread than on two."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def compose_config(name: str, overrides: list[str], output_dir: Path) -> DictConfig:
    """Compose ``conf/<name>.yaml`` as the command line would, with outputs in ``output_dir``."""
    cfg = compose_job_config(name, overrides, CONF)  # experiment_name as train.py names it
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.root_dir = str(output_dir)
    return cfg


class TrainedRun:
    """A run folder trained once (by a module's fixture) and handed to each test that starts from
    it as it was left: ``fresh()`` puts back the pristine copy *at the path it was trained in*, so
    the paths its checkpoints and detector record are the ones the test sees, as if the test had
    trained it itself. The tests of a file run one after another on one worker (loadfile)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.pristine = folder.with_name(folder.name + ".pristine")

    def keep(self) -> TrainedRun:
        """Set the trained folder aside as the pristine copy; call once, after training."""
        shutil.copytree(self.folder, self.pristine, symlinks=True)
        return self

    def fresh(self) -> Path:
        """The folder as training left it (whatever an earlier test did there is undone)."""
        shutil.rmtree(self.folder, ignore_errors=True)
        shutil.copytree(self.pristine, self.folder, symlinks=True)
        return self.folder
