"""Scale-out: models without gradient steps under DDP (gloo) and torchrun, Hydra sweeps,
resume. DDP with Lightning's launcher, TensorBoard and parallel features: ``test_scale_out.py``
(helpers shared: ``scale_out_common.py``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from esa_lightning.io import TMP_PREFIX
from tests.conftest import CONF, REPO, compose_config
from tests.integration.scale_out_common import (
    DDP,
    GRU_FAST,
    assert_ok,
    make_tiny_mission,
    run_train,
)


@pytest.fixture(scope="module")
def tiny_mission(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 channels, 8 days: with ``data.val_days=2`` about 3 training, 2 validation, 3 test days."""
    return make_tiny_mission(tmp_path_factory)


# ------------------------------------------------- models without gradient steps, DDP
SMOKE = ["experiment=smoke", "data.val_days=2", "trainer.enable_progress_bar=false",
         "~callbacks.progress_bar", "logger=none"]


@pytest.fixture(scope="module")
def smoke_single(tiny_mission, tmp_path_factory) -> Path:
    """``SMOKE`` on the tiny mission in one process (in this one: no DDP asked): the numbers
    the run asked for DDP must give."""
    folder = tmp_path_factory.mktemp("smoke") / "single"
    from esa_lightning.jobs.train import train

    train(compose_config("train", [*SMOKE, f"data.root={tiny_mission}"], folder))
    return folder


@pytest.mark.slow
def test_a_model_without_gradient_steps_is_fitted_in_one_process_under_ddp(
    tiny_mission, smoke_single, tmp_path
):
    """DDP cannot wrap a model with no trainable parameter (it failed with "DistributedDataParallel
    is not needed"); such a model asks for one process (``trainer_arguments``) and gives the
    numbers a single-process run gives."""
    args = [*SMOKE, *DDP, f"data.root={tiny_mission}", f"hydra.run.dir={tmp_path / 'ddp'}"]
    proc = run_train(args, tmp_path)
    assert_ok(proc)
    assert "RobustZScore has no gradient steps: fitted in one process" in proc.stdout + proc.stderr
    ddp = json.loads((tmp_path / "ddp" / "metrics.json").read_text())
    assert ddp == json.loads((smoke_single / "metrics.json").read_text())


@pytest.mark.slow
def test_torchrun_fits_a_model_without_gradient_steps_on_each_rank_and_predicts_once(
    tiny_mission, tmp_path
):
    """Under torchrun a model without a trainable parameter was given one device: each rank
    trained alone as Lightning's global rank 0, each writing the checkpoints. predict.py ran on
    each rank: given one folder, the second was refused by its lock (exit 2) and torchrun
    stopped the first. Now the ranks keep their ranks (the numbers of one process) and rank 0
    alone predicts. window_pca's val/loss, one rank's own, was logged without sync_dist (Lightning
    warned): every rank holds every item's now, which sync_dist averages exactly."""
    base = ["model=window_pca", "data.val_days=2", "trainer.enable_progress_bar=false",
            "~callbacks.progress_bar", "logger=none", f"data.root={tiny_mission}",
            f"paths.root_dir={tmp_path}"]

    def torchrun(script: str, args: list[str]) -> str:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node=2", script, *args]
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
        assert_ok(proc)
        return proc.stdout + proc.stderr

    log = torchrun("train.py", [*base, *DDP, f"hydra.run.dir={tmp_path / 'ddp'}"])
    fitted = "WindowPCADetector has no gradient steps: fitted on every rank"
    assert log.count(fitted) == 1  # rank 0's: rank 1's INFO lines go to the log file only
    assert sum(p.read_text().count(fitted) for p in (tmp_path / "ddp").glob("*.log")) == 2
    assert "sync_dist=True" not in log
    from esa_lightning.jobs.train import train

    train(compose_config("train", base, tmp_path / "one"))  # one process: this one
    for run in ("ddp", "one"):
        assert (tmp_path / run / "checkpoints" / "window_pca" / "last.ckpt").is_file()
    ddp, one = (json.loads((tmp_path / run / "metrics.json").read_text()) for run in ("ddp", "one"))
    assert ddp == one
    out = tmp_path / "predicted"
    log = torchrun("predict.py", [f"ckpt={tmp_path / 'ddp' / 'detector'}", f"hydra.run.dir={out}",
                                  f"data.root={tiny_mission}", f"paths.root_dir={tmp_path}"])
    assert log.count("note: predict.py runs in one process") == 1
    assert (out / "submission.csv").is_file() and (out / "index.html").is_file()
    assert not [p for p in out.rglob(f"{TMP_PREFIX}*")]


# ------------------------------------------------------------------------------- sweeps
@pytest.mark.slow
def test_multirun_writes_job_folders_and_summary(tiny_mission, tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_train(
        [
            "-m",
            "experiment=gru_ae",
            "model.latent_dim=16,32",
            *GRU_FAST,
            f"data.root={tiny_mission}",
            f"hydra.sweep.dir={sweep}",
        ],
        tmp_path,
    )
    assert_ok(proc)
    for job in ("0", "1"):
        assert (sweep / job / "metrics.json").is_file()
        assert (sweep / job / "detector" / "detector.json").is_file()
    summary = pd.read_csv(sweep / "summary.csv")
    assert list(summary["job"]) == [0, 1]
    assert list(summary["status"]) == ["done", "done"]
    assert "latent_dim=16" in summary["overrides"][0] and "latent_dim=32" in summary["overrides"][1]
    for job, row in summary.iterrows():
        metrics = json.loads((sweep / str(job) / "metrics.json").read_text())
        assert row["val/EW_F_0.50"] == pytest.approx(metrics["val/EW_F_0.50"])


@pytest.mark.slow
def test_a_failed_job_does_not_end_the_sweep_and_the_summary_is_this_sweeps(tiny_mission, tmp_path):
    """A job's input error used to exit the whole sweep (SystemExit): the next jobs never ran
    and no summary.csv was written. Rerun into a folder an earlier, longer sweep left, the
    summary listed that sweep's job 2 (an earlier sweep whose jobs trained is refused now:
    test_run_folder_reuse.py; one whose jobs were all refused leaves a folder to rerun in)."""
    sweep = tmp_path / "sweep"
    smoke = ["-m", "experiment=smoke", "logger=none", "trainer.enable_progress_bar=false",
             "~callbacks.progress_bar", f"data.root={tiny_mission}", f"hydra.sweep.dir={sweep}"]
    assert run_train([*smoke, "data.val_days=900", "seed=1,2,3"], tmp_path).returncode == 2
    assert (sweep / "2" / ".hydra").is_dir()
    proc = run_train([*smoke, "seed=1", "data.val_days=900,2"], tmp_path)
    assert proc.returncode == 2  # one line per failed job and one at the end, no Hydra lines
    assert "Error executing job" not in proc.stderr and "HYDRA_FULL_ERROR" not in proc.stderr
    assert "error: 1 sweep job(s) failed (job 0)" in proc.stderr
    assert "error: sweep job 0 (" in proc.stderr and "data.val_days=900" in proc.stderr
    # the job's folder says why it has no metrics; the console has the line once
    failed_line = next(line for line in proc.stderr.splitlines() if "sweep job 0 (" in line)
    assert failed_line in (sweep / "0" / "train.log").read_text()
    assert (proc.stdout + proc.stderr).count("sweep job 0 (") == 1
    summary = pd.read_csv(sweep / "summary.csv")
    assert list(summary["job"]) == [0, 1]  # not the earlier sweep's job 2
    assert summary["status"][0].startswith("failed: data.val_days=900")
    assert np.isnan(summary["val/EW_F_0.50"][0])
    assert summary["status"][1] == "done"
    assert "data.val_days=2" in summary["overrides"][1]
    assert list(summary.columns)[-1] == "status"


@pytest.mark.slow
def test_multirun_with_two_devices_is_refused(tiny_mission, tmp_path):
    proc = run_train(
        [
            "-m",
            "experiment=gru_ae",
            *DDP,
            f"data.root={tiny_mission}",
            f"hydra.sweep.dir={tmp_path / 'sweep'}",
        ],
        tmp_path,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "multirun (-m) with more than one device is refused" in proc.stderr
    assert "trainer.devices" in proc.stderr
    assert not list(tmp_path.rglob("*.ckpt"))


def test_trainer_settings_lightning_refuses_are_one_clear_error(tiny_mission, tmp_path):
    """More GPUs than the machine has (none, on a CPU machine) ended in Hydra's "Error in call
    to target 'lightning.pytorch.trainer.trainer.Trainer'" and exit code 1."""
    from esa_lightning.errors import ESAInputError
    from esa_lightning.jobs.train import train

    cfg = compose_config(
        "train",
        ["experiment=gru_ae", f"data.root={tiny_mission}", "data.val_days=2",
         "trainer.accelerator=gpu", "trainer.devices=4096"],
        tmp_path,
    )
    with pytest.raises(ESAInputError, match="trainer.accelerator=gpu trainer.devices=4096") as err:
        train(cfg)
    assert "refused by Lightning" in str(err.value)
    assert not (tmp_path / "detector").exists()


def _compose_with_hydra(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="train", overrides=overrides, return_hydra_config=True)


def test_slurm_launchers_compose():
    cfg = _compose_with_hydra(["hydra/launcher=slurm", "experiment=esa_full", "trainer=ddp"])
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.nodes == 1 and launcher.gpus_per_node >= 1
    cfg = _compose_with_hydra(
        [
            "hydra/launcher=slurm_multinode",
            "trainer=ddp",
            "trainer.num_nodes=2",
            "trainer.devices=4",
        ]
    )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.nodes == cfg.trainer.num_nodes == 2
    assert launcher.tasks_per_node == launcher.gpus_per_node == cfg.trainer.devices == 4


def test_trainer_configs_take_strategy_devices_and_nodes(tmp_path):
    cfg = compose_config("train", ["trainer=ddp"], tmp_path)
    assert (cfg.trainer.strategy, cfg.trainer.devices, cfg.trainer.num_nodes) == ("ddp", 2, 1)
    cfg = compose_config("train", ["experiment=esa_full", *DDP, "trainer.num_nodes=2"], tmp_path)
    assert (cfg.trainer.strategy, cfg.trainer.devices, cfg.trainer.num_nodes) == ("ddp", 2, 2)


# ------------------------------------------------------------------------------- resume
@pytest.mark.slow
def test_resume_after_sigkill_finishes_in_the_same_folder(tiny_mission, tmp_path):
    run_dir = tmp_path / "run"
    args = [
        "experiment=gru_ae",
        "data.val_days=2",
        "trainer.max_epochs=2",
        "+trainer.limit_train_batches=8",
        "+trainer.limit_val_batches=2",
        "test=false",
        "model.hidden_size=16",
        "model.post_processing.rf_gate.n_estimators=10",
        "callbacks.model_checkpoint.every_n_train_steps=1",
        f"data.root={tiny_mission}",
        f"hydra.run.dir={run_dir}",
        f"paths.root_dir={tmp_path}",
    ]
    last = run_dir / "checkpoints" / "gru_ae" / "last.ckpt"
    proc = subprocess.Popen(
        [sys.executable, "train.py", *args],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not last.is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert last.is_file(), "no last.ckpt appeared"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL  # killed mid-training, before any artifact
    assert not (run_dir / "detector").exists()

    resumed = run_train([*args[:-1], "ckpt_path=last"], tmp_path)
    assert_ok(resumed)
    assert "Restored all states from the checkpoint" in resumed.stdout + resumed.stderr
    from esa_lightning.artifact import Detector

    detector = Detector.load(run_dir / "detector")
    assert np.isfinite(float(detector.components["gru_ae"].threshold_rule.threshold[0]))
    assert "val/EW_F_0.50" in json.loads((run_dir / "metrics.json").read_text())
    assert len(list(run_dir.glob("**/detector.json"))) == 1


def test_resuming_a_finished_fit_still_fits_the_heads(tiny_mission, tmp_path):
    """Lightning skips ``fit`` (and ``on_train_end``) when the checkpoint is past max_epochs."""
    from esa_lightning.artifact import Detector
    from esa_lightning.jobs.train import train

    overrides = [
        "experiment=gru_ae",
        *GRU_FAST,
        f"data.root={tiny_mission}",
        "trainer.enable_progress_bar=false",
        "test=false",
    ]
    first = train(compose_config("train", overrides, tmp_path))
    for name in ("metrics.json", "detector"):
        path = tmp_path / name
        path.unlink() if path.is_file() else __import__("shutil").rmtree(path)
    again = train(compose_config("train", [*overrides, "ckpt_path=last"], tmp_path))
    assert again == pytest.approx(first)
    model = Detector.load(tmp_path / "detector").components["gru_ae"]
    assert np.isfinite(float(model.threshold_rule.threshold[0]))


def test_resume_without_any_checkpoint_is_a_clear_error(tiny_mission, tmp_path):
    from esa_lightning.errors import ESAInputError
    from esa_lightning.jobs.train import train

    cfg = compose_config(
        "train",
        ["experiment=gru_ae", f"data.root={tiny_mission}", "data.val_days=2", "ckpt_path=last"],
        tmp_path,
    )
    with pytest.raises(ESAInputError, match="no checkpoint to resume from"):
        train(cfg)
    # a last.ckpt that is no file is no checkpoint either: it trained from scratch
    (tmp_path / "checkpoints" / "gru_ae" / "last.ckpt").mkdir(parents=True)
    with pytest.raises(ESAInputError, match=r"gru_ae/last.ckpt: not a checkpoint file"):
        train(cfg)
