"""Settings that passed the early check and were refused only once the data had been read, after
training, with a traceback, or never: each is now one ``error: <key>=<value>: must be ...``
line before anything is read, on every route that takes it (the command line's
``compose_error``, the jobs' and the Python API's ``check_settings``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from esa_lightning.cli.overrides import compose_error
from esa_lightning.errors import ESAInputError
from esa_lightning.settings import check_settings
from tests.conftest import compose_config
from tests.helpers import checkout_env

REPO = Path(__file__).resolve().parents[2]
PP = "model.post_processing"

REFUSED = [
    # refused by the detector's loading, once predict.py had made its run folder
    ("predict", ["device=cdua"], "device='cdua'", "must be a device torch knows"),
    ("predict", ["device=cuda:x"], "device='cuda:x'", "must be a device torch knows"),
    ("predict", ["device=-1"], "device=-1", "must be a device torch knows"),
    # refused by merge.py once its run folder was made
    ("merge", ["detectors=x"], "detectors='x'", "must be a list of at least two"),
    ("merge", ["detectors=[a]"], "detectors=['a']", "must be a list of at least two"),
    # a name no run logs: warned of (a -m sweep) only after training
    ("train", ["optimized_metric=val/EW_F_05"], "optimized_metric='val/EW_F_05'",
     "must be a metric the run writes"),
    ("train", ["optimized_metric=EW_F_0.50"], "optimized_metric='EW_F_0.50'",
     "must be a metric the run writes"),
    # refused by the reader or the generator once reading or generating began
    ("train", ["data.period=30x"], "data.period='30x'", "must be a positive time period"),
    ("train", ["data.period=-30s"], "data.period='-30s'", "must be a positive time period"),
    ("train", ["data.generate.days=-1"], "data.generate.days=-1", "must be a finite number > 0"),
    # refused by the model's constructor, once the mission had been read
    ("train", ["model.top_channels=0"], "model.top_channels=0", "must be a whole number >= 1"),
    # refused by the post-processing rules' constructors, once the mission had been read
    ("train", [f"{PP}.frozen.factor=-1"], f"{PP}.frozen.factor=-1",
     "must be a finite number >= 1"),
    ("train", [f"{PP}.frozen.factor=0.5"], f"{PP}.frozen.factor=0.5",
     "must be a finite number >= 1"),
    ("train", [f"{PP}.gap_close.tolerance=-1"], f"{PP}.gap_close.tolerance=-1",
     "must be a finite number >= 0"),
    ("train", [f"{PP}.channel_norm.min_scale=2"], f"{PP}.channel_norm.min_scale=2",
     "must lie in (0, 1]"),
    ("train", [f"{PP}.channel_norm.min_scale=-1"], f"{PP}.channel_norm.min_scale=-1",
     "must lie in (0, 1]"),
    # the same rules under another name: a rule is known by its kind
    ("train", [f"+{PP}.stuck={{kind: frozen, factor: 0}}"], f"{PP}.stuck.factor=0",
     "must be a finite number >= 1"),
    ("train", ["experiment=esa_full", "combiner.gap_close={widths: [0, 5], tolerance: -1}"],
     "combiner.gap_close.tolerance=-1", "must be a finite number >= 0"),
    # refused by the callback's constructor (a ValueError traceback) once the data were read
    ("train", ["callbacks.esa_metrics.every_n_epochs=0"],
     "callbacks.esa_metrics.every_n_epochs=0", "must be a whole number >= 1"),
    ("train", ["callbacks.esa_metrics.figure_every_n_epochs=0"],
     "callbacks.esa_metrics.figure_every_n_epochs=0", "must be a whole number >= 1"),
    ("train", ["callbacks.esa_metrics.max_rows=0"],
     "callbacks.esa_metrics.max_rows=0", "must be a whole number >= 1"),
    # a monitor no run logs: Lightning stopped the run after its first validation epoch
    ("train", ["callbacks.model_checkpoint.monitor=val/los"],
     "callbacks.model_checkpoint.monitor='val/los'", "must be a value the run logs"),
    ("train", ["experiment=channel_ensemble", "callbacks.early_stopping.monitor=val/EW_F_0.50"],
     "callbacks.early_stopping.monitor='val/EW_F_0.50'", "must be a value the run logs"),
    # any value but true was taken as true, and skipped the command line's checks
    ("train", ["debug_errors=2"], "debug_errors=2", "must be true or false"),
    ("predict", ["debug_errors=yes"], "debug_errors='yes'", "must be true or false"),
    ("merge", ["debug_errors=1"], "debug_errors=1", "must be true or false"),
    ("evaluate", ["debug_errors=2"], "debug_errors=2", "must be true or false"),
]

MANDATORY = {"train": [], "predict": ["ckpt=somewhere"], "merge": ["detectors=[a,b]"],
             "evaluate": ["predictions=somewhere"]}


def _overrides(job: str, overrides: list[str]) -> list[str]:
    given = {o.partition("=")[0] for o in overrides}
    return [*(o for o in MANDATORY[job] if o.partition("=")[0] not in given), *overrides]


@pytest.mark.parametrize(("job", "overrides", "shown", "requirement"), REFUSED)
def test_a_bad_value_is_named_by_the_settings_check(job, overrides, shown, requirement,
                                                    tmp_path):
    with pytest.raises(ESAInputError) as err:
        check_settings(compose_config(job, _overrides(job, overrides), tmp_path))
    assert str(err.value).startswith(f"{shown}: {requirement}")


@pytest.mark.parametrize(("job", "overrides", "shown", "requirement"), REFUSED)
def test_a_bad_value_is_refused_before_the_command_runs(job, overrides, shown, requirement):
    reason = compose_error(job, _overrides(job, overrides), check=True)
    assert reason is not None and reason.startswith(f"{shown}: {requirement}")


def test_debug_errors_2_no_longer_hides_a_bad_value_from_the_command_line():
    """debug_errors=2 counted as debug on: seed=abc went to the job, a traceback."""
    reason = compose_error("train", ["debug_errors=2", "seed=abc"], check=True)
    assert reason == "debug_errors=2: must be true or false"


@pytest.mark.parametrize(
    ("job", "overrides"),
    [
        ("predict", ["device=cpu"]),
        ("predict", ["device=cuda"]),
        ("predict", ["device=cuda:1"]),
        ("predict", ["device=mps"]),
        ("predict", ["device=0"]),
        ("evaluate", []),
        ("merge", ["detectors=[a,b,c]"]),
        ("train", ["optimized_metric=val/forecast_MAE"]),
        ("train", ["optimized_metric=test/EW_F_0.50_anomaly"]),
        ("train", ["optimized_metric=val/channel_F_0.50"]),
        ("train", ["optimized_metric=val/AUC_PR"]),
        ("train", ["data.period=1min"]),
        ("train", ["data=esa", "data.root=somewhere", "data.period=10s"]),
        ("train", ["data.generate.days=0.5"]),
        ("train", ["model.top_channels=1"]),
        ("train", [f"{PP}.frozen.factor=1"]),
        ("train", [f"{PP}.gap_close.tolerance=0"]),
        ("train", [f"{PP}.channel_norm.min_scale=1"]),
        ("train", ["callbacks.esa_metrics.every_n_epochs=3"]),
        # Lightning's own every_n_epochs: 0 is its 'never'
        ("train", ["+callbacks.model_checkpoint.every_n_epochs=0"]),
        ("train", ["callbacks.model_checkpoint.monitor=val_provisional/EW_F_0.50"]),
        ("train", ["callbacks.model_checkpoint.monitor=train/loss"]),
        ("train", ["experiment=channel_ensemble",
                   "callbacks.model_checkpoint.monitor=val/event_bce"]),
        ("train", ["experiment=channel_ensemble",
                   "callbacks.early_stopping.monitor=val/series_loss/a"]),
        ("train", ["callbacks.model_checkpoint.monitor=null"]),
        # a model of one's own may log other val/ names while it trains
        ("train", ["callbacks.model_checkpoint.monitor=val/my_reconstruction"]),
        ("train", ["debug_errors=true"]),
        ("predict", ["debug_errors=false"]),
    ],
)
def test_good_values_pass(job, overrides, tmp_path):
    check_settings(compose_config(job, _overrides(job, overrides), tmp_path))


@pytest.mark.parametrize("search", ["optuna", "optuna_forecast"])
def test_the_searches_optimise_metrics_a_run_writes(search, tmp_path):
    check_settings(compose_config("train", [f"hparams_search={search}"], tmp_path))


@pytest.mark.parametrize(
    ("script", "args", "line"),
    [
        ("predict.py", ["ckpt=somewhere", "device=cdua"],
         "error: device='cdua': must be a device torch knows"),
        ("merge.py", ["detectors=x"], "error: detectors='x': must be a list of at least two"),
        ("train.py", ["debug_errors=2", "seed=abc"], "error: debug_errors=2: must be true or"),
    ],
)
def test_the_scripts_refuse_with_one_line_and_exit_2(script, args, line, tmp_path):
    done = subprocess.run(
        [sys.executable, str(REPO / script), *args, f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=tmp_path, env=checkout_env(), capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(line)
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "run").exists()
