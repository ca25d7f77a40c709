"""``summary.csv`` of a ``-m`` sweep whose ``hydra.sweep.subdir`` is not the job's number
(``seed_${seed}``): it read each job's overrides and metrics from ``<sweep dir>/<job number>``,
a folder no job had, so every job that trained read ``no metrics`` and had no overrides. It reads
each job from the folder the job ran in."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.types import RunMode
from omegaconf import OmegaConf

from esa_lightning.jobs import sweep


@pytest.fixture
def local_sweep():
    """A sweep run by Hydra's basic (in-process) launcher."""
    from hydra.conf import HydraConf

    hydra = OmegaConf.structured(HydraConf)
    hydra.mode = RunMode.MULTIRUN
    hydra.launcher = {"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}
    HydraConfig.instance().set_config(OmegaConf.create({"hydra": hydra}))
    yield
    HydraConfig.instance().cfg = None
    sweep._FAILED_JOBS.clear()


def test_the_summary_reads_each_job_in_the_folder_it_ran_in(local_sweep, tmp_path):
    summary = sweep.SweepSummary()
    summary.on_multirun_start(OmegaConf.create({}))
    for number, seed in enumerate((1, 2)):
        job = tmp_path / "seed" / f"s{seed}"
        (job / ".hydra").mkdir(parents=True)
        (job / ".hydra" / "overrides.yaml").write_text(f"- seed={seed}\n")
        (job / "metrics.json").write_text(json.dumps({"val/EW_F_0.50": seed / 10}))
        config = OmegaConf.create({"hydra": {"job": {"num": number},
                                             "sweep": {"dir": str(tmp_path)},
                                             "runtime": {"output_dir": str(job)}}})
        done = JobReturn()
        done.status = JobStatus.COMPLETED
        summary.on_job_end(config, done)

    table = pd.read_csv(tmp_path / "summary.csv")
    assert list(table["job"]) == [0, 1]
    assert list(table["overrides"]) == ["seed=1", "seed=2"]
    assert list(table["val/EW_F_0.50"]) == [0.1, 0.2]
    assert list(table["status"]) == ["done", "done"]
