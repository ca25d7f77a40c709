"""``sweep.py`` (and ``train.py -m hparams_search=...``) with a user's own configs.

``python train.py -m hparams_search=optuna -cp DIR`` handed ``-cp DIR`` to the search's
argument parser, which refused it: ``python sweep.py: error: unrecognized arguments: -cp``.
The search now takes ``-cp/--config-path`` (read from the current folder, as ``train.py`` reads
it) and ``-cn/--config-name``, composes its plan with them and gives them to each trial.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.unit.test_config_path_cwd import own_configs

RECORDING_TRAIN = """
import json, pathlib, sys
args = sys.argv[1:]
run = pathlib.Path(dict(a.split("=", 1) for a in args if "=" in a)["hydra.run.dir"])
(run / "argv.json").write_text(json.dumps(args))
(run / "metrics.json").write_text(json.dumps({"val/mine": 0.5}))
"""


def mine(tmp_path: Path) -> Path:
    """The package's configs in ``tmp_path/my_confs``, with ``my_train.yaml`` optimising
    ``val/mine`` (the package's ``train.yaml`` optimises ``val/EW_F_0.50``)."""
    own = own_configs(tmp_path)
    text = (own / "my_train.yaml").read_text()
    assert "\noptimized_metric: val/EW_F_0.50\n" in text
    (own / "my_train.yaml").write_text(
        text.replace("\noptimized_metric: val/EW_F_0.50\n", "\noptimized_metric: val/mine\n"))
    return own


def test_a_search_plans_with_the_users_config_path_and_name(tmp_path, monkeypatch):
    from esa_lightning.jobs import optuna_sweep
    from tests.conftest import CONF

    pytest.importorskip("optuna", minversion="4.0")
    own = mine(tmp_path)
    monkeypatch.chdir(tmp_path)
    script = tmp_path / "recording_train.py"
    script.write_text(RECORDING_TRAIN)
    argv = ["experiment=smoke", "model.quantile=choice(99.0,99.5)", "-cp", "my_confs",
            "--config-name=my_train", "--sweep-dir", str(tmp_path / "sweep"),
            "--n-trials", "1"]
    # val/mine, my_train's metric, is read from the trial's metrics.json: the package's
    # val/EW_F_0.50 is not there (the trial would be recorded failed, the sweep exit 1)
    assert optuna_sweep.main(argv, CONF, [sys.executable, str(script)]) == 0

    trial_args = json.loads((tmp_path / "sweep" / "0" / "argv.json").read_text())
    assert trial_args[:4] == ["-cp", str(own), "-cn", "my_train"]  # made absolute from cwd


def test_a_search_without_config_flags_plans_as_before(tmp_path):
    from esa_lightning.jobs.optuna_sweep import argument_parser, make_plan
    from tests.conftest import CONF

    args = argument_parser().parse_intermixed_args(
        ["experiment=smoke", "model.quantile=choice(99.0,99.5)"])
    plan = make_plan(args, CONF, [])
    assert plan.metric == "val/EW_F_0.50" and plan.config_flags == []
    assert "configs" not in plan.description()  # studies begun before resume as they were


def test_a_config_dir_is_searched_beside_the_package_configs(tmp_path, monkeypatch):
    import shutil

    from esa_lightning.jobs.optuna_sweep import argument_parser, make_plan
    from tests.conftest import CONF

    (tmp_path / "added" / "experiment").mkdir(parents=True)
    shutil.copy(CONF / "experiment" / "smoke.yaml", tmp_path / "added" / "experiment" / "mine.yaml")
    monkeypatch.chdir(tmp_path)
    args = argument_parser().parse_intermixed_args(
        ["experiment=mine", "model.quantile=choice(99.0,99.5)", "-cd", "added"])
    plan = make_plan(args, CONF, [])  # the package's configs have no experiment "mine"
    assert plan.config_flags == ["-cd", str(tmp_path / "added")]


def test_a_config_path_that_is_no_folder_is_one_line(tmp_path, monkeypatch, capsys):
    from esa_lightning.jobs import optuna_sweep
    from tests.conftest import CONF

    monkeypatch.chdir(tmp_path)
    argv = ["experiment=smoke", "model.quantile=choice(99.0,99.5)", "-cp", "nope"]
    assert optuna_sweep.main(argv, CONF, []) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {tmp_path / 'nope'}: no such folder")


def test_train_py_m_hparams_search_takes_a_users_config_path(tmp_path):
    """The search's own refusal of a space ``experiment=smoke`` lacks (no trial trains), now
    reached with ``-cp``/``-cn`` (before: ``unrecognized arguments: -cp``)."""
    from tests.integration.test_reliability_cli import assert_one_line_error, run_entry

    mine(tmp_path)
    proc = run_entry("train.py", ["-m", "hparams_search=optuna", "-cp", "my_confs",
                                  "-cn", "my_train", "experiment=smoke"], tmp_path)
    assert "an Optuna search" in proc.stderr
    assert_one_line_error(proc, "optuna.params", "model.hidden_size")
    assert not (tmp_path / "outputs").exists()
