"""Messages that name a command to run name the one the user has: ``esa-train`` etc. for an
installed package (no ``train.py`` or ``sweep.py`` beside it), ``python train.py`` in a clone."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

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


def _series_file() -> str:
    from esa_lightning.jobs.evaluate import refuse_series_file

    mission = SimpleNamespace(is_multiseries=False, channel_names=["a"], name="m")
    refuse_series_file(["channel", "id", "is_anomaly"], mission, Path("sub.csv"))
    return ""


def _default_data() -> str:
    from esa_lightning.jobs.predict_data import refuse_default_data

    data = OmegaConf.create({"_target_": "reader.A", "root": "data"})
    refuse_default_data(data, "", [], None, None)  # a config.yaml that records no data
    return ""


def _data_hint() -> str:
    from esa_lightning.jobs.predict_data import trained_data_hint

    trained = "data:\n  _target_: reader.B\n  root: other\n"
    return trained_data_hint(trained, {"_target_": "reader.A"})


@pytest.mark.parametrize("said_by", [_series_file, _default_data, _data_hint])
def test_refusals_and_hints_name_esa_predict(installed, said_by):
    """Messages telling what predicting does or to predict again name the user's command."""
    try:
        said = said_by()
    except ESAInputError as exc:
        said = str(exc)
    assert "esa-predict" in said
    assert not any(script in said for script in SCRIPTS), said


def test_the_html_report_names_esa_predict_for_max_figures(installed):
    from esa_lightning.reporting.page import render_page

    intervals = pd.DataFrame({
        "start": [0, 5], "end": [1, 6], "channels": ["a", "a"], "series": ["", ""],
        "score": [1.0, 1.0], "threshold": [0.5, 0.5], "confidence": [0.9, 0.9],
        "gate": ["", ""], "gate_probability": [1.0, 1.0],
    })
    page = render_page({}, None, intervals, [], None)
    assert "esa-predict max_figures" in page
    assert not any(script in page for script in SCRIPTS)


def test_esa_train_m_usage_names_the_installed_command(installed):
    parser = optuna_sweep.argument_parser()
    said = parser.format_usage() + parser.format_help()
    assert "usage: esa-train -m" in said
    assert not any(script in said for script in SCRIPTS), said


def test_evaluate_asks_for_the_predictions_data_settings_naming_no_script(installed):
    """metrics imports nothing of the package (no ``install``): its refusal names no command."""
    from esa_lightning.metrics.report import require_full_coverage

    mission = SimpleNamespace(timestamps=np.arange(5), test_start=None, val_start=None,
                              is_time_indexed=True)
    with pytest.raises(ESAInputError) as refused:
        require_full_coverage(np.array([0]), mission, "id", "pred.csv")
    said = str(refused.value)
    assert "data settings the predictions were made with" in said
    assert not any(script in said for script in SCRIPTS), said
