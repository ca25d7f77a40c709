"""sweep.py: the search space read from hparams_search configs and the command line, and a study
persisted in SQLite that a stopped sweep resumes (Optuna >= 4 for the persisted runs)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from esa_lightning.errors import ESAInputError
from esa_lightning.jobs.optuna_sweep import (
    _canonical,
    argument_parser,
    chosen_overrides,
    compose_train,
    make_plan,
    suggest,
)
from esa_lightning.jobs.sweep_failures import CRASH_STREAK
from tests.conftest import CONF, REPO
from tests.helpers import checkout_env


def plan_for(argv: list[str]):
    return make_plan(argument_parser().parse_intermixed_args(argv), CONF, [])


def test_search_space_comes_from_hparams_search_and_the_command_line_fixes_or_adds_keys():
    plan = plan_for(
        [
            "hparams_search=optuna",
            "experiment=gru_ae",
            "model.hidden_size=16",
            "model.dropout=range(0.0,0.3,0.1)",
            "datamodule.window=tag(log,interval(10,1000))",
        ]
    )
    # the config searches latent_dim, hidden_size and lr; hidden_size is fixed by the command line
    assert set(plan.space) == {"model.latent_dim", "model.lr", "model.dropout", "datamodule.window"}
    assert "model.hidden_size=16" in plan.overrides
    assert plan.overrides[-1] == "~optuna"  # trials are plain train.py runs
    assert (plan.metric, plan.direction, plan.n_trials) == ("val/EW_F_0.50", "maximize", 20)
    assert plan.study_name == "gru_ae"
    assert plan.storage == f"sqlite:///{plan.sweep_dir / 'optuna.db'}"

    forecast = plan_for(["hparams_search=optuna_forecast", "experiment=gru_ae_nasa"])
    assert (forecast.metric, forecast.direction) == ("val/forecast_MAE", "minimize")
    assert {"datamodule.window", "model.cell"} <= set(forecast.space)


def test_a_study_is_the_same_whatever_the_order_of_its_overrides():
    space = "model.quantile=choice(99.0,99.9)"
    one = plan_for(["experiment=smoke", space, "paths.root_dir=/r", "seed=3"])
    other = plan_for(["seed=3", "paths.root_dir=/r", space, "experiment=smoke"])
    assert one.description() == other.description()
    # a study begun before: its overrides stored in command-line order
    stored = json.dumps({**other.description(), "overrides": other.overrides}, sort_keys=True)
    assert _canonical(stored) == json.dumps(one.description(), sort_keys=True)
    # a key given twice: the later value wins, so the order stays part of the study
    space = "model.lr=choice(0.001,0.003)"  # a key of the default experiment's model
    twice = plan_for(["seed=3", space, "seed=4"]).description()["overrides"]
    assert twice == plan_for(["seed=4", space, "seed=3"]).description()["overrides"][::-1]
    assert plan_for(["seed=3", space, "seed=4"]).description() != plan_for(
        ["seed=4", space, "seed=3"]).description()

def drawn(optuna, plan, trials: int = 40) -> dict[str, set]:
    """Every value each key of ``plan``'s space took over ``trials`` random trials."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen: dict[str, set] = {k: set() for k in plan.space}
    for _ in range(trials):
        trial = study.ask()
        for key, override in plan.space.items():
            seen[key].add(suggest(trial, key, override))
    return seen



def test_suggestions_follow_the_hydra_sweep_syntax():
    optuna = pytest.importorskip("optuna")
    plan = plan_for(
        [
            "experiment=smoke",
            "model.quantile=choice(99.0,99.9)",
            "seed=range(1,7,2)",
            "+lr=tag(log,interval(0.001,0.1))",
            "+flag=true,false",
        ]
    )
    seen = drawn(optuna, plan)
    assert seen["model.quantile"] == {99.0, 99.9}
    assert seen["seed"] == {1, 3, 5}  # Hydra's range: the stop value is excluded
    assert all(0.001 <= v <= 0.1 for v in seen["lr"]) and len(seen["lr"]) > 30
    assert seen["flag"] == {True, False}


def test_a_descending_or_shuffled_range_draws_its_values_in_every_trial():
    """``seed=range(5,1,-1)`` (Hydra's 5, 4, 3, 2) reached Optuna as low 5, high 2: a
    ``ValueError`` traceback in the first trial, after the study was created (exit 1);
    ``shuffle(...)`` gave each trial another categorical order, which Optuna refused at the
    second trial ("does not support dynamic value space")."""
    optuna = pytest.importorskip("optuna")
    plan = plan_for(["experiment=smoke", "seed=range(5,1,-1)", "+w=range(0.5,0.1,-0.2)",
                     "+k=shuffle(range(1,4))", "+c=shuffle(a,b,c)"])
    seen = drawn(optuna, plan)
    assert seen["seed"] == {5, 4, 3, 2}
    assert {round(v, 9) for v in seen["w"]} == {0.5, 0.3}
    assert seen["k"] == {1, 2, 3}
    assert seen["c"] == {"a", "b", "c"}


def test_a_key_the_search_adds_keeps_its_plus_in_every_trial():
    """``+key=choice(...)`` searches a key the config lacks: the trial's override was
    ``key=value``, which every trial's train.py refused (Could not override 'key')."""
    optuna = pytest.importorskip("optuna")
    plan = plan_for(["experiment=smoke", "+trainer.limit_train_batches=choice(2,3)"])
    trial = optuna.create_study().ask()
    chosen = chosen_overrides(plan, trial)
    cfg = compose_train(CONF, [*plan.overrides, *chosen])  # what the trial's train.py composes
    assert cfg.trainer.limit_train_batches == trial.params["trainer.limit_train_batches"]


def test_a_direction_against_the_metrics_sense_is_refused():
    """``hparams_search=optuna_forecast optimized_metric=val/EW_F_0.50`` (the label-free search
    pointed at a labeled mission) minimised the F-score, and a search given
    ``optimized_metric=val/forecast_MAE`` without ``optuna.direction=minimize`` maximised the
    error: each ran every trial and named the worst one best."""
    with pytest.raises(ESAInputError, match=r"optuna.direction.*minimize.*val/EW_F_0.50"):
        plan_for(["hparams_search=optuna_forecast", "experiment=gru_ae_nasa",
                  "optimized_metric=val/EW_F_0.50"])
    with pytest.raises(ESAInputError, match=r"optuna.direction.*maximize.*val/forecast_MAE"):
        plan_for(["experiment=smoke", "model.quantile=choice(99.0,99.9)",
                  "optimized_metric=val/forecast_MAE"])
    # the direction that fits, or a metric of no known sense, goes on
    fits = plan_for(["experiment=smoke", "model.quantile=choice(99.0,99.9)",
                     "optimized_metric=val/forecast_MAE", "+optuna.direction=minimize"])
    assert fits.direction == "minimize"
    other = plan_for(["experiment=smoke", "model.quantile=choice(99.0,99.9)",
                      "optimized_metric=val/ADTQC_after", "+optuna.direction=minimize"])
    assert other.direction == "minimize"


def test_a_study_of_no_trial_is_refused():
    """``--n-trials -2`` (or 0, or optuna.n_trials=0) ran nothing and said nothing."""
    for argv in (["--n-trials", "-2"], ["--n-trials", "0"], ["optuna.n_trials=0"]):
        with pytest.raises(ESAInputError, match="n_trials.*at least 1"):
            plan_for(["hparams_search=optuna", "experiment=gru_ae", *argv])


def test_a_word_that_is_no_override_is_refused_in_one_line():
    """``sweep.py hello`` was refused with Hydra's parser message over three lines."""
    with pytest.raises(ESAInputError, match="not a Hydra override") as refused:
        plan_for(["hparams_search=optuna", "experiment=gru_ae", "hello"])
    assert "hello" in str(refused.value) and "\n" not in str(refused.value)


def sweep_with_values(values: list[float], n_trials: int, tmp_path: Path, monkeypatch):
    """``sweep.py`` whose trials' ``optimized_metric`` are ``values`` in turn (no training)."""
    from esa_lightning.jobs import optuna_sweep

    pytest.importorskip("optuna", minversion="4.0")
    given = iter(values)
    monkeypatch.setattr(optuna_sweep, "run_trial", lambda plan, trial: next(given))
    plan = plan_for(["experiment=smoke", "model.quantile=choice(99.0,99.5)",
                     "--sweep-dir", str(tmp_path), "--n-trials", str(n_trials)])
    return optuna_sweep.sweep(plan)


def test_a_trial_whose_metric_is_nan_is_not_counted_and_the_study_gets_its_trials(
    tmp_path, monkeypatch
):
    """Optuna records a NaN value as a failed trial; each one still used up one of the run's
    trials, so the sweep ended, exit 0, with fewer complete trials than --n-trials."""
    nan = float("nan")
    study = sweep_with_values([nan, 0.5, nan, 0.6], 2, tmp_path, monkeypatch)
    assert [t.state.name for t in study.trials] == ["FAIL", "COMPLETE", "FAIL", "COMPLETE"]


def test_a_study_whose_every_trial_is_nan_stops_with_one_line(tmp_path, monkeypatch):
    """Counting only complete trials must not loop for ever: after as many NaN trials in a row
    as trials to run (at least 3), the sweep stops and says why."""
    with pytest.raises(ESAInputError, match=r"optimized_metric.*3 trials in a row.*NaN.*0 of 2"
                       ) as caught:
        sweep_with_values([float("nan")] * 10, 2, tmp_path, monkeypatch)
    assert "\n" not in str(caught.value)


FAKE_TRAIN = """
import json, pathlib, sys
args = dict(a.split("=", 1) for a in sys.argv[1:] if "=" in a)
calls = pathlib.Path({calls!r})
call = int(calls.read_text()) if calls.exists() else 0
calls.write_text(str(call + 1))
print("training", args.get("model.quantile"))
crash = {crash_calls!r}
if crash == "all" or call in crash:
    print("Traceback (most recent call last):")
    print("RuntimeError: CUDA out of memory (call %d)" % call)
    sys.exit({code})
metrics = pathlib.Path(args["hydra.run.dir"], "metrics.json")
broken = {broken!r}
kind = broken.get("all", broken.get(call))
print("finished: exit code 0")
if kind == "no file":
    pass
elif kind == "a folder":
    metrics.mkdir()
elif kind is not None:
    metrics.write_text(kind)
else:
    metrics.write_text(json.dumps({{"val/EW_F_0.50": 0.5 + call / 100}}))
"""


def fake_train(tmp_path: Path, crash_calls, code: int = 1, broken=None) -> list[str]:
    """A ``train.py`` stand-in (no training): it writes a ``metrics.json``, or prints a
    traceback's last line and exits ``code`` on the calls ``crash_calls`` (0 is the first;
    ``"all"``: every call). ``broken`` (call or ``"all"``: what) exits 0 with a broken
    ``metrics.json`` on those calls: this text, ``"a folder"``, or ``"no file"``."""
    script = tmp_path / f"fake_train_{code}_{len(list(tmp_path.glob('fake_train_*')))}.py"
    calls = tmp_path / "calls.txt"
    script.write_text(FAKE_TRAIN.format(calls=str(calls), crash_calls=crash_calls, code=code,
                                        broken=broken or {}))
    return [sys.executable, str(script)]


def run_sweep(tmp_path: Path, train: list[str], n_trials: int, *args: str) -> int:
    """``sweep.py`` (its ``main``) over a smoke run whose trials are ``train``."""
    from esa_lightning.jobs import optuna_sweep

    pytest.importorskip("optuna", minversion="4.0")
    argv = ["experiment=smoke", "model.quantile=choice(99.0,99.5,99.9)",
            "--sweep-dir", str(tmp_path / "sweep"), "--n-trials", str(n_trials), *args]
    return optuna_sweep.main(argv, CONF, train)


def load_trials(tmp_path: Path) -> list:
    import optuna

    storage = f"sqlite:///{tmp_path / 'sweep' / 'optuna.db'}"
    return optuna.load_study(study_name="smoke", storage=storage).trials


def test_another_search_in_a_given_sweep_dir_is_told_to_take_another_folder_too(
    tmp_path, capsys
):
    """A study resumed with another search space was told "start another study
    (--study-name)"; with ``--sweep-dir`` given, that new study was then refused as the folder
    holds the first study's trials. The line says to pick another folder too (sweeps.md)."""
    train = fake_train(tmp_path, crash_calls=[])
    assert run_sweep(tmp_path, train, 1) == 0
    capsys.readouterr()
    from esa_lightning.jobs import optuna_sweep

    argv = ["experiment=smoke", "model.quantile=choice(90.0,95.0)",
            "--sweep-dir", str(tmp_path / "sweep"), "--n-trials", "1"]
    assert optuna_sweep.main(argv, CONF, train) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("error: ") and "--study-name" in line, line
    assert "--sweep-dir" in line, line


def test_ctrl_c_is_one_line_not_optunas_traceback(tmp_path, capsys, caplog, monkeypatch):
    """Ctrl-C in a trial printed Optuna's warning with a 20-line traceback of the sweep's own
    code (``subprocess.run``... ``KeyboardInterrupt``) and "failed with value None" above the
    sweep's "interrupted" line; the trial is recorded failed all the same."""
    from esa_lightning.jobs import optuna_sweep

    pytest.importorskip("optuna", minversion="4.0")
    monkeypatch.setattr(logging.getLogger("optuna"), "propagate", True)  # caplog sees it too
    caplog.set_level("INFO")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(optuna_sweep, "run_trial", interrupted)
    code = run_sweep(tmp_path, fake_train(tmp_path, crash_calls=[]), n_trials=2)
    err = capsys.readouterr().err
    assert code == 130
    assert err.strip().splitlines()[-1].startswith("interrupted: rerun the same command")
    failed = [r for r in caplog.records if r.getMessage().startswith("Trial 0 failed")]
    assert not failed, [r.getMessage() for r in failed]
    assert [t.state.name for t in load_trials(tmp_path)] == ["FAIL"]


def test_a_crashed_trial_is_recorded_failed_and_the_sweep_goes_on(
    tmp_path, capsys, caplog, monkeypatch
):
    """A trial whose train.py crashed (out of memory, an exception: exit code 1) raised
    TrialFailed out of study.optimize: the sweep ended there, exit 1, the other trials of the
    night never ran."""
    pytest.importorskip("optuna", minversion="4.0")  # its import sets up its logger: then
    monkeypatch.setattr(logging.getLogger("optuna"), "propagate", True)  # caplog sees it too
    caplog.set_level("INFO")
    code = run_sweep(tmp_path, fake_train(tmp_path, crash_calls=[1]), n_trials=3)
    out = capsys.readouterr().out
    assert code == 0
    trials = load_trials(tmp_path)
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    crashed = trials[1]
    console = tmp_path / "sweep" / "1" / "console.log"
    assert crashed.user_attrs["exit_code"] == 1
    assert crashed.user_attrs["console"] == str(console)
    assert crashed.user_attrs["last_line"] == "RuntimeError: CUDA out of memory (call 1)"
    table = pd.read_csv(tmp_path / "sweep" / "trials.csv")
    assert table["state"].tolist() == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert table["user_attrs_exit_code"].tolist()[1] == 1
    # written as the integer it is, not 1.0 (the complete trials' empty cells made it float)
    text = pd.read_csv(tmp_path / "sweep" / "trials.csv", dtype=str, keep_default_na=False)
    assert text["user_attrs_exit_code"].tolist() == ["", "1", "", ""]
    # one log line for the crash, no traceback of the sweep's own code
    about = [r for r in caplog.records if "trial 1" in r.getMessage().lower()
             and "fail" in r.getMessage()]
    assert len(about) == 1, [r.getMessage() for r in about]
    line = about[0].getMessage()
    assert "exit code 1" in line and str(console) in line and "\n" not in line
    assert about[0].exc_info is None
    # the end: the best trial as before, and one line naming the crashed trial and its log
    lines = out.strip().splitlines()
    assert lines[-1].startswith("best of 3 trials: trial 3")
    assert lines[-2].startswith("1 trial crashed (1; exit code 1)")
    assert str(console) in lines[-2]


def test_a_sweep_whose_every_trial_crashes_stops_after_a_streak_and_resumes(tmp_path, capsys):
    """A crash every trial hits (a bug) stops the sweep after a few trials in a row, not
    after all of them; rerunning the command once it is fixed continues the same study."""
    code = run_sweep(tmp_path, fake_train(tmp_path, crash_calls="all"), n_trials=20)
    err = capsys.readouterr().err
    assert code == 1
    trials = load_trials(tmp_path)
    assert len(trials) == CRASH_STREAK  # of 20 to run
    assert {t.state.name for t in trials} == {"FAIL"}
    message = err.strip().splitlines()[-1]
    assert message.startswith("error: ")
    numbers = ", ".join(str(t.number) for t in trials)
    assert f"{len(trials)} trials in a row failed ({numbers})" in message
    assert "exit code 1" in message and "CUDA out of memory" in message
    assert str(tmp_path / "sweep" / str(trials[-1].number) / "console.log") in message
    assert "rerun" in message

    (tmp_path / "calls.txt").unlink()
    assert run_sweep(tmp_path, fake_train(tmp_path, crash_calls=[]), n_trials=2) == 0
    states = [t.state.name for t in load_trials(tmp_path)]
    assert states == ["FAIL"] * len(trials) + ["COMPLETE"] * 2
    assert f"{len(trials)} trials crashed" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("metrics", "reason"),
    [
        ("no file", "it wrote no metrics.json"),
        ("a folder", "its metrics.json is unreadable"),
        ('{"val/EW_F_0.50": 0.5', "its metrics.json is not JSON"),
        ("[0.5]", "its metrics.json is not a JSON object"),
        ('{"val/forecast_MAE": 1.5, "test/EW_F_0.50": 0.4}',
         "its metrics.json has no val/EW_F_0.50 (its val/ metrics: val/forecast_MAE)"),
        ('{"val/EW_F_0.50": "high"}', "its metrics.json's val/EW_F_0.50 is not a number"),
    ],
)
def test_a_trial_that_left_no_usable_metric_is_recorded_failed_and_the_sweep_goes_on(
    tmp_path, capsys, caplog, monkeypatch, metrics, reason
):
    """A trial whose train.py exited 0 without a usable metrics.json (none, unreadable, not
    JSON, without the objective) ended the sweep with a traceback (FileNotFoundError,
    JSONDecodeError), or at once for a missing key; the other trials never ran."""
    pytest.importorskip("optuna", minversion="4.0")
    monkeypatch.setattr(logging.getLogger("optuna"), "propagate", True)
    caplog.set_level("INFO")
    train = fake_train(tmp_path, crash_calls=[], broken={1: metrics})
    code = run_sweep(tmp_path, train, n_trials=2)
    out = capsys.readouterr().out
    assert code == 0
    assert [t.state.name for t in load_trials(tmp_path)] == ["COMPLETE", "FAIL", "COMPLETE"]
    console = tmp_path / "sweep" / "1" / "console.log"
    table = pd.read_csv(tmp_path / "sweep" / "trials.csv", dtype=str, keep_default_na=False)
    assert table["state"].tolist() == ["COMPLETE", "FAIL", "COMPLETE"]
    assert table["user_attrs_console"].tolist()[1] == str(console)
    assert table["user_attrs_reason"].tolist()[1].startswith(reason)
    assert table["user_attrs_exit_code"].tolist() == ["", "0", ""]
    # one log line, no traceback
    about = [r for r in caplog.records if "trial 1" in r.getMessage().lower()
             and "fail" in r.getMessage()]
    assert len(about) == 1, [r.getMessage() for r in about]
    line = about[0].getMessage()
    assert reason in line and str(console) in line and "\n" not in line
    assert about[0].exc_info is None
    lines = out.strip().splitlines()
    assert lines[-1].startswith("best of 2 trials: trial 2")
    assert reason in lines[-2] and str(console) in lines[-2]


def test_a_sweep_whose_every_trial_leaves_no_metric_stops_after_a_streak(tmp_path, capsys):
    code = run_sweep(tmp_path, fake_train(tmp_path, [], broken={"all": "no file"}), n_trials=20)
    err = capsys.readouterr().err
    assert code == 1
    trials = load_trials(tmp_path)
    assert len(trials) == CRASH_STREAK
    message = err.strip().splitlines()[-1]
    assert message.startswith("error: ")
    assert f"{len(trials)} trials in a row failed" in message
    assert "it wrote no metrics.json" in message
    assert str(tmp_path / "sweep" / str(trials[-1].number) / "console.log") in message


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file and folder under ``folder``, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<folder>"
            for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize(
    "other", [["--study-name", "other"], ["--storage", "sqlite:///{tmp}/other.db"]]
)
def test_a_new_study_into_an_earlier_studys_folder_is_refused_before_writing(
    tmp_path, capsys, other
):
    """A new study (another --study-name, or another --storage) into a sweep folder holding an
    earlier study's trial folders rewrote its trial 0's console.log (and its optuna.db) before
    train.py refused the trial's folder."""
    assert run_sweep(tmp_path, fake_train(tmp_path, crash_calls=[]), n_trials=2) == 0
    sweep_dir = tmp_path / "sweep"
    before = snapshot(tmp_path)
    capsys.readouterr()
    other = [a.format(tmp=tmp_path) for a in other]
    code = run_sweep(tmp_path, fake_train(tmp_path, crash_calls=[]), 2, *other)
    err = capsys.readouterr().err
    assert code == 2
    assert snapshot(tmp_path) == {**before, **{k: v for k, v in snapshot(tmp_path).items()
                                               if k.startswith("fake_train_")}}
    message = err.strip().splitlines()[-1]
    assert message.startswith(f"error: {sweep_dir}: holds trial folders of another study (0, 1)")
    assert "--sweep-dir" in message and "study 'smoke'" in message
    # the earlier study resumes in its folder as before
    assert run_sweep(tmp_path, fake_train(tmp_path, crash_calls=[]), n_trials=3) == 0
    assert [t.state.name for t in load_trials(tmp_path)] == ["COMPLETE"] * 3


def test_a_trial_never_writes_into_a_folder_that_holds_files(tmp_path):
    """The last guard: a trial whose folder holds files (another study's trial) is refused
    before its console.log is opened."""
    optuna = pytest.importorskip("optuna", minversion="4.0")
    from esa_lightning.jobs.optuna_sweep import run_trial

    plan = plan_for(["experiment=smoke", "model.quantile=choice(99.0,99.5)",
                     "--sweep-dir", str(tmp_path)])
    plan.train_command = fake_train(tmp_path, crash_calls=[])
    (tmp_path / "0").mkdir()
    (tmp_path / "0" / "console.log").write_text("an earlier trial's output\n")
    with pytest.raises(ESAInputError, match="holds an earlier trial's console.log") as refused:
        run_trial(plan, optuna.create_study().ask())
    assert str(tmp_path / "0") in str(refused.value)
    assert (tmp_path / "0" / "console.log").read_text() == "an earlier trial's output\n"
    assert not (tmp_path / "calls.txt").exists()  # no train.py ran


def test_a_search_whose_every_key_the_command_line_fixes_says_so():
    """``hparams_search=optuna`` with each of its keys given a plain value: the refusal told the
    user to add the hparams_search=NAME they had given; it names the keys fixed and how to
    search one of them again."""
    with pytest.raises(ESAInputError) as refused:
        plan_for(["hparams_search=optuna", "experiment=gru_ae", "model.latent_dim=8",
                  "model.hidden_size=8", "model.lr=0.001"])
    message = str(refused.value)
    assert "add hparams_search=NAME" not in message, message
    assert "model.latent_dim=8" in message and "model.lr=0.001" in message, message
    assert "model.hidden_size=8" in message and "hparams_search=optuna" in message, message


def test_a_trial_that_exits_2_stops_the_sweep_at_once(tmp_path, capsys):
    """Exit code 2 is a user-input error every trial would hit: no further trial runs."""
    code = run_sweep(tmp_path, fake_train(tmp_path, crash_calls=[0], code=2), n_trials=3)
    err = capsys.readouterr().err
    assert code == 2
    assert [t.state.name for t in load_trials(tmp_path)] == ["FAIL"]
    assert err.strip().splitlines()[-1].startswith("error: ")
    assert "trial 0: RuntimeError: CUDA out of memory (call 0)" in err


def test_bad_sweep_settings_are_one_line_errors():
    with pytest.raises(ESAInputError, match="nothing to search"):
        plan_for(["experiment=smoke"])
    with pytest.raises(ESAInputError, match="do not compose"):
        plan_for(["experiment=no_such_experiment", "seed=1,2"])
    # the best trial was chosen on the test range the sweep then reported
    with pytest.raises(ESAInputError, match=r"optimized_metric.*test/EW_F_0.50.*validation"):
        plan_for(["hparams_search=optuna", "experiment=gru_ae", "optimized_metric=test/EW_F_0.50"])


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["model.quantile=interval(99.9,99.0)"], "model.quantile"),  # low above high
        (["model.quantile=range(5,3)"], "model.quantile"),  # an empty range
        (["seed=range(0,3,0)"], "seed"),  # a step of 0: a Python traceback from Hydra
        (["+lr=tag(log,interval(0,0.1))"], "lr"),  # a log scale from 0
        (["model.no_such_key=choice(1,2)"], "model.no_such_key"),
        (["hparams_search=optuna"], "model.latent_dim"),  # searches a GRU's keys: not zscore's
    ],
)
def test_a_search_space_no_trial_could_run_is_refused_before_the_study(argv, named):
    """Such a space used to reach the first trial: a traceback from Optuna (exit 1) for bad
    bounds, or a failed trial recorded in the study for a key the config does not have."""
    with pytest.raises(ESAInputError, match=named) as caught:
        plan_for(["experiment=smoke", *argv])
    assert "\n" not in str(caught.value)  # one line, as every input error


def test_a_search_of_esa_fulls_unused_top_level_model_names_the_components_keys():
    """hparams_search=optuna's model.latent_dim, model.hidden_size, model.lr with esa_full
    searched its unused top-level model: every trial trained the same components."""
    with pytest.raises(ESAInputError) as caught:
        plan_for(["hparams_search=optuna", "experiment=esa_full"])
    message = str(caught.value)
    assert "the top-level model is not used: set components.gru_ae.model." in message
    assert "\n" not in message
    # the components' own keys are searched
    plan = plan_for(["experiment=esa_full", "components.gru_ae.model.lr=interval(0.0003,0.01)"])
    assert list(plan.space) == ["components.gru_ae.model.lr"]


def sweep_command(args: list[str], root: Path) -> list[str]:
    return [sys.executable, str(REPO / "sweep.py"), *args, f"paths.root_dir={root}"]


def sweep(args: list[str], root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        sweep_command(args, root),
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
        env=checkout_env(),
    )


def interrupt_during_first_trial(args: list[str], root: Path, sweep_dir: Path) -> int:
    """Start the sweep, Ctrl-C it (SIGINT to its process group) once its first trial runs."""
    proc = subprocess.Popen(
        sweep_command(args, root),
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=checkout_env(),
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 300
    while not (sweep_dir / "0" / "console.log").exists() and proc.poll() is None:
        assert time.monotonic() < deadline, "the first trial never started"
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)
    return proc.wait(timeout=120)


@pytest.mark.slow
def test_a_stopped_sweep_resumes_from_its_sqlite_storage(tmp_path):
    optuna = pytest.importorskip("optuna", minversion="4.0")
    from esa_lightning.data.readers.synthetic import generate_mission

    mission = generate_mission(tmp_path / "mission", channels=4, groups=2, days=6, seed=3)
    db = tmp_path / "study.db"
    run = ["experiment=smoke", f"data.root={mission}", "data.val_days=2", "logger=none"]
    study_args = [
        "--storage",
        f"sqlite:///{db}",
        "--study-name",
        "smoke_test",
        "--sweep-dir",
        str(tmp_path / "sweep"),
    ]
    args = [*run, "model.quantile=choice(99.0,99.5,99.9)", *study_args]

    def load() -> list:
        return optuna.load_study(study_name="smoke_test", storage=f"sqlite:///{db}").trials

    # stopped (Ctrl-C) in its first trial: the trial is recorded as failed
    stopped = interrupt_during_first_trial([*args, "--n-trials", "2"], tmp_path, tmp_path / "sweep")
    assert stopped == 130
    assert [t.state.name for t in load()] == ["FAIL"]

    # the same command continues: two complete trials, the failed one not counted
    first = sweep([*args, "--n-trials", "2"], tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "0 complete trials, 2 to run" in first.stderr
    before = [(t.number, t.params, t.value) for t in load()[1:]]
    assert [n for n, _, _ in before] == [1, 2]

    # extended to three
    resumed = sweep([*args, "--n-trials", "3"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "2 complete trials, 1 to run" in resumed.stderr
    trials = load()[1:]
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    assert [(t.number, t.params, t.value) for t in trials[:2]] == before
    for t in trials:  # what Optuna saw is each run's own metrics.json value
        metrics = json.loads((Path(t.user_attrs["run_dir"]) / "metrics.json").read_text())
        assert t.value == pytest.approx(metrics["val/EW_F_0.50"])
        assert f"model.quantile={t.params['model.quantile']}" == t.user_attrs["overrides"]
    assert len((tmp_path / "sweep" / "trials.csv").read_text().splitlines()) == 1 + 4

    # the same study with another search space is refused, not mixed in
    other = sweep([*run, "model.quantile=choice(90.0,95.0)", *study_args], tmp_path)
    assert other.returncode == 2
    assert other.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "--study-name" in other.stderr


TWO_TESTS = """
import logging


def test_optuna_first_imported_where_stderr_is_captured(capsys):
    import optuna  # noqa: F401 - its console takes the sys.stderr of the moment: capsys's


def test_a_later_optuna_line():
    logging.getLogger("optuna").warning("a later optuna line")
"""


def test_optuna_lines_after_the_test_that_imported_it_reach_a_console(tmp_path):
    """Optuna's console handler writes to the sys.stderr of its first import: in a test, a
    capture stream closed when that test ends, so every later optuna line (each in-process
    sweep's) printed "--- Logging error --- ValueError: I/O operation on closed file".
    tests/conftest.py points consoles left on a closed stream back at the process's stderr."""
    pytest.importorskip("optuna")
    (tmp_path / "test_two.py").write_text(TWO_TESTS)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "-p",
         "tests.conftest", "--rootdir", str(tmp_path), str(tmp_path / "test_two.py")],
        cwd=REPO, capture_output=True, text=True, timeout=300, env=checkout_env(),
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "a later optuna line" in out
    assert "Logging error" not in out and "closed file" not in out, out[-3000:]


def test_an_old_optuna_is_a_one_line_error(monkeypatch):
    import types

    from esa_lightning.jobs.optuna_sweep import import_optuna

    monkeypatch.setitem(sys.modules, "optuna", types.SimpleNamespace(__version__="2.10.1"))
    with pytest.raises(ESAInputError, match=r"optuna>=4 \(found 2.10.1\)"):
        import_optuna()


def test_train_py_m_with_hparams_search_runs_the_optuna_search(tmp_path):
    """The contract's search command, ``python train.py -m hparams_search=optuna key=a,b``,
    ran a grid of one job with the base settings and a warning (Hydra's Optuna sweeper plugin
    is not used): now train.py hands it to the search sweep.py runs. Shown by that search's
    own refusal of a space the run's config lacks (no trial trains)."""
    from tests.integration.test_reliability_cli import assert_one_line_error, run_entry

    proc = run_entry("train.py", ["-m", "hparams_search=optuna", "experiment=smoke"], tmp_path)
    assert "an Optuna search" in proc.stderr
    assert_one_line_error(proc, "optuna.params", "model.hidden_size")
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "multirun").exists()


@pytest.mark.parametrize("flags", [["--n-trials", "2"], ["--n-trials=2", "--study-name", "s"]])
def test_train_py_m_hparams_search_takes_the_searchs_flags(tmp_path, flags):
    """docs/sweeps.md: ``train.py -m hparams_search=...`` hands ``--n-trials N`` and the other
    ``sweep.py`` options to the search. Hydra's parser, which knows none of them, refused them
    first (``error: unrecognized arguments: --n-trials 2 ...``). Shown by the search's own
    refusal of a space the run's config lacks (no trial trains); an unknown flag is still one
    line, the search's."""
    from tests.integration.test_reliability_cli import assert_one_line_error, run_entry

    proc = run_entry("train.py", ["-m", "hparams_search=optuna", *flags, "experiment=smoke"],
                     tmp_path)
    assert "an Optuna search" in proc.stderr, proc.stderr
    assert_one_line_error(proc, "optuna.params", "model.hidden_size")
    proc = run_entry("train.py", ["-m", "hparams_search=optuna", "--nope", "experiment=smoke"],
                     tmp_path)
    assert_one_line_error(proc, "unrecognized arguments: --nope")
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "multirun").exists()
