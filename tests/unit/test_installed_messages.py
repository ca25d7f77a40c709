"""Messages that name a command to run name the one the user has: ``esa-train`` etc. for an
installed package (no ``train.py`` or ``sweep.py`` beside it), ``python train.py`` in a clone."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from esa_lightning import install
from esa_lightning.cli import train as cli_train
from esa_lightning.data.frame import frame_to_mission
from esa_lightning.errors import ESAInputError
from esa_lightning.jobs import optuna_sweep
from esa_lightning.jobs import train as train_job
from tests.conftest import compose_config

SCRIPTS = ("train.py", "predict.py", "sweep.py")


@pytest.fixture
def installed(monkeypatch):
    monkeypatch.setattr(install, "running_from_source", lambda: False)


def test_train_m_hparams_search_names_the_installed_command(installed, monkeypatch, capsys):
    monkeypatch.setattr(optuna_sweep, "main", lambda *args: 0)
    assert cli_train.optuna_search(["-m", "hparams_search=optuna"]) == 0
    said = capsys.readouterr().err
    assert "esa-train -m hparams_search=" in said
    assert not any(script in said for script in SCRIPTS), said


def test_hparams_search_without_m_names_the_installed_search_command(
    installed, monkeypatch, tmp_path, caplog
):
    cfg = compose_config("train", ["hparams_search=optuna", "logger=none"], tmp_path / "run")
    monkeypatch.setattr(train_job, "_train", lambda cfg, output_dir: None)
    with caplog.at_level(logging.WARNING, logger="esa_lightning"):
        train_job.train(cfg)
    (said,) = [r.getMessage() for r in caplog.records if "hparams_search" in r.getMessage()]
    assert "esa-train -m hparams_search=" in said
    assert not any(script in said for script in SCRIPTS), said


def test_a_multiseries_detector_refers_predict_df_to_the_installed_command(installed):
    frame = pd.DataFrame({"time": ["2020-01-01"], "a": [1.0]})
    with pytest.raises(ESAInputError) as refused:
        frame_to_mission(frame, {"multiseries": True, "channels": ["a"]})
    assert "use esa-predict" in str(refused.value)
    assert "predict.py" not in str(refused.value)


def test_a_clone_names_the_scripts(monkeypatch):
    monkeypatch.setattr(install, "running_from_source", lambda: True)
    assert install.command("train") == "python train.py"
    assert install.search_command() == "python sweep.py hparams_search=NAME"


def test_the_docker_image_layout_is_no_clone(monkeypatch, tmp_path):
    """The Dockerfile copies pyproject.toml beside the package (WORKDIR /app, which ``python -m``
    imports from) but no train.py: the commands to name are the installed ones."""
    (tmp_path / "pyproject.toml").write_text("[project]\n")
    monkeypatch.setattr(install, "SOURCE_ROOT", tmp_path)
    assert install.command("train") == "esa-train"
    (tmp_path / "train.py").write_text("")
    assert install.command("train") == "python train.py"
