"""A sweep job's overrides as typed: ``jobs.sweep.hydra_task_overrides``, which ``train``'s
check of shadowed trainer keys, ``predict``'s data check and ``fail_job``'s line all read
(one copy: ``fail_job`` read ``hydra.overrides.task`` by its own code before)."""

from __future__ import annotations

import pytest
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf

from esa_lightning.errors import ESAInputError
from esa_lightning.jobs import sweep


@pytest.fixture
def hydra_job():
    """A Hydra job of a sweep (job 3) whose command line typed an interpolation."""
    from hydra.conf import HydraConf

    hydra = OmegaConf.structured(HydraConf)
    hydra.mode = RunMode.MULTIRUN
    hydra.job.num = 3
    hydra.overrides.task = ["model.lr=${my_lr}", "seed=1"]
    HydraConfig.instance().set_config(OmegaConf.create({"hydra": hydra}))
    yield
    HydraConfig.instance().cfg = None
    sweep._FAILED_JOBS.clear()


def test_outside_hydra_a_job_has_no_overrides():
    assert not HydraConfig.initialized()
    assert sweep.hydra_task_overrides() == []


def test_a_failed_sweep_job_is_named_by_its_overrides_as_typed(hydra_job, capsys):
    assert sweep.hydra_task_overrides() == ["model.lr=${my_lr}", "seed=1"]
    sweep.fail_job(ESAInputError("bad  value", column="seed"))
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: sweep job 3 (model.lr=${my_lr} seed=1): ")
    assert list(sweep._FAILED_JOBS) == [3]  # summary.csv marks job 3 failed
