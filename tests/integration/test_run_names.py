"""A run folder is named after the chosen model, unless an experiment or experiment_name names it;
the same name whether train.py (Hydra's run) or the compose API (the settings' check before a
run, the Python API, sweep.py) composes the config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from esa_lightning.api.training import compose_job
from esa_lightning.cli.overrides import compose_error
from esa_lightning.jobs.optuna_sweep import argument_parser, make_plan
from tests.conftest import CONF, REPO

FAST = ["datamodule=rows", "logger=none", "trainer.max_epochs=1", "test=false",
        "trainer.enable_progress_bar=false", "~callbacks.progress_bar"]


def run_train(args: list[str], root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "ESA_LIGHTNING_ROOT": str(root), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, str(REPO / "train.py"), *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def experiment_of(run: Path) -> str:
    return json.loads((run / "detector" / "detector.json").read_text())["info"]["experiment"]


def test_the_compose_api_names_the_run_after_the_model(tmp_path):
    """experiment_name was gru_ae whatever model= chose; ${hydra:runtime.choices.model} instead
    failed wherever the configs are composed without a Hydra run ("HydraConfig was not set")."""
    def run_name(*overrides: str) -> str:
        cfg = compose_job("train", list(overrides), root_dir=tmp_path)
        return Path(cfg.paths.output_dir).parent.name

    assert run_name("model=window_pca") == "window_pca"
    assert run_name() == "gru_ae"
    assert run_name("experiment=smoke") == "smoke"
    assert run_name("model=window_pca", "experiment_name=mine") == "mine"
    assert compose_error("train", ["model=window_pca"], check=True) is None
    plan = make_plan(argument_parser().parse_intermixed_args(
        ["model=window_pca", "model.n_components=choice(0.9,0.95)"]), CONF, [])
    assert plan.sweep_dir.parent.parent.name == "window_pca"


def test_train_py_names_its_run_folder_after_the_model(small_mission_dir, tmp_path):
    run_train(["model=zscore", f"data.root={small_mission_dir}", *FAST], tmp_path)
    runs = list((tmp_path / "outputs").glob("*/*"))
    assert [r.parent.name for r in runs] == ["zscore"], runs
    assert experiment_of(runs[0]) == "zscore"


def test_a_sweep_over_models_keeps_one_folder_and_names_each_job(small_mission_dir, tmp_path):
    """Each job resolves the sweep folder itself: named after each job's own model (or, before,
    experiment), the jobs went to folders of their own and the sweep's summary.csv found none of
    them. The summary's line is printed once, at the end (it was printed after the last job
    and again at the end)."""
    proc = run_train(["-m", "model=zscore,global_std", f"data.root={small_mission_dir}", *FAST],
                     tmp_path)
    sweeps = list((tmp_path / "outputs").glob("*/multirun/*"))
    assert len(sweeps) == 1, sweeps
    output = proc.stdout + proc.stderr
    assert output.count("sweep summary of") == 1, output[-3000:]
    assert output.strip().splitlines()[-1].endswith(f"sweep summary of 2 jobs: {sweeps[0]}"
                                                    "/summary.csv")
    summary = pd.read_csv(sweeps[0] / "summary.csv")
    assert list(summary["status"]) == ["done", "done"]
    assert [experiment_of(sweeps[0] / str(job)) for job in (0, 1)] == ["zscore", "global_std"]


@pytest.fixture(scope="module")
def zscore_run(small_mission_dir, tmp_path_factory):
    """``model=zscore`` with ``FAST`` trained once through the compose API; each test starts
    from a fresh copy of its folder (``TrainedRun``)."""
    from esa_lightning.jobs.train import train
    from tests.conftest import TrainedRun, compose_config

    folder = tmp_path_factory.mktemp("trained") / "run"
    train(compose_config("train", ["model=zscore", f"data.root={small_mission_dir}", *FAST],
                         folder))
    return TrainedRun(folder).keep()


def test_a_run_folder_written_before_runs_were_named_after_the_model_resumes(
    small_mission_dir, zscore_run, caplog
):
    """train.yaml named every run without an experiment gru_ae: a ``model=zscore`` run kept its
    checkpoints in checkpoints/gru_ae/. Resumed now (``ckpt_path=last``), the run looked for
    checkpoints/zscore/last.ckpt, found none and trained from scratch."""
    from esa_lightning.jobs.train import train
    from tests.conftest import compose_config

    args = ["model=zscore", f"data.root={small_mission_dir}", *FAST]
    tmp_path = zscore_run.fresh()  # args trained there
    # the layout such a run had: the one component's checkpoints under the old name
    (tmp_path / "checkpoints" / "zscore").rename(tmp_path / "checkpoints" / "gru_ae")
    old = tmp_path / "checkpoints" / "gru_ae" / "last.ckpt"
    with caplog.at_level("INFO", logger="esa_lightning"):
        train(compose_config("train", [*args, "ckpt_path=last"], tmp_path))
    assert "starts from scratch" not in caplog.text
    assert "training had finished" in caplog.text  # resumed after its last epoch
    assert str(old) in caplog.text
    assert not (tmp_path / "checkpoints" / "zscore").exists()  # the run keeps its one folder


def test_a_single_model_resumed_among_several_component_folders_is_refused_naming_them(
    small_mission_dir, zscore_run, caplog
):
    """Its own checkpoints/<name>/last.ckpt missing and two other component folders holding one
    (``model=zscore`` resumed in an esa_full run's folder), the run logged "starts from scratch"
    and trained from scratch into the folder."""
    from esa_lightning.errors import ESAInputError
    from esa_lightning.jobs.train import train
    from tests.conftest import compose_config

    args = ["model=zscore", f"data.root={small_mission_dir}", *FAST]
    tmp_path = zscore_run.fresh()  # args trained there
    checkpoints = tmp_path / "checkpoints"
    (checkpoints / "zscore").rename(checkpoints / "gru_ae")
    (checkpoints / "channel_ensemble").mkdir()
    (checkpoints / "channel_ensemble" / "last.ckpt").write_bytes(b"not read")
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    with caplog.at_level("INFO", logger="esa_lightning"):
        with pytest.raises(ESAInputError) as refused:
            train(compose_config("train", [*args, "ckpt_path=last"], tmp_path))
    message = str(refused.value)
    assert message.startswith(f"{checkpoints}: no zscore/last.ckpt") and "\n" not in message
    assert "(channel_ensemble, gru_ae)" in message and "ckpt_path=" in message
    assert "starts from scratch" not in caplog.text
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before
