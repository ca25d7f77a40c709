"""Entry points turn user errors into one line on stderr and exit code 2, without a traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_entry(
    script: str, args: list[str], cwd: Path, timeout: float = 180, **env: str
) -> subprocess.CompletedProcess:
    """Run ``script`` of the repository with ``args`` in ``cwd`` (its root and run folder), with
    ``env`` added to the environment."""
    env = {**os.environ, "ESA_LIGHTNING_ROOT": str(cwd), "PYTHONWARNINGS": "ignore", **env}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, str(REPO / script), *args, f"hydra.run.dir={cwd / 'run'}"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    """Assert exit code 2, no traceback and one final ``error: `` line holding ``needles``;
    return that line."""
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    # log records (lightning's "Seed set to 42") may precede it; the error is one final line
    assert len(errors) == 1 and lines[-1] == errors[0], proc.stderr
    for needle in needles:
        assert needle in errors[0]
    return errors[0]


def run_train_job(args: list[str], tmp_path: Path, capsys, caplog) -> subprocess.CompletedProcess:
    """``train.py args`` for a refusal made inside its job, run in this process (a train.py
    start loads torch and Lightning: seconds a case): ``run_or_exit(train, cfg)``, the job
    train.py's Hydra entry point runs, on the config its command line composes, run folder
    ``tmp_path/run``, root ``tmp_path``. Returned as the process would end: its exit code, what
    it printed, and the log records the console would show (Hydra's ``[name][LEVEL]`` lines)
    ahead of stderr. The entry point itself (the check before Hydra, Hydra's folder, the exit)
    keeps a subprocess run of each message kind in this file."""
    from esa_lightning.jobs.common import run_or_exit
    from esa_lightning.jobs.train import train

    cfg = compose_into(args, tmp_path)
    caplog.clear()
    try:
        run_or_exit(train, cfg)
        code = 0
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    logged = "".join(f"[{r.name}][{r.levelname}] - {r.getMessage()}\n" for r in caplog.records
                     if r.levelno >= 20)
    return subprocess.CompletedProcess(["train.py", *args], code, out.out, logged + out.err)


@pytest.mark.parametrize("data", ["esa_csv", "esa"])
def test_train_with_a_missing_data_root(tmp_path, data, capsys, caplog):
    """A run refused while reading its data left its folder (`.hydra/`, the log) behind."""
    missing = tmp_path / "nonexistent"
    args = ["experiment=smoke", f"data={data}", f"data.root={missing}"]
    # one train.py run; the other reader's refusal the same job in this process
    proc = (run_entry("train.py", args, tmp_path) if data == "esa"
            else run_train_job(args, tmp_path, capsys, caplog))
    assert_one_line_error(proc, str(missing))
    assert not missing.exists()
    assert not (tmp_path / "run").exists()


def test_predict_with_a_missing_ckpt(tmp_path):
    missing = tmp_path / "no_detector"
    proc = run_entry(
        "predict.py",
        [f"ckpt={missing}", "data=esa_csv", f"data.root={tmp_path / 'nodata'}"],
        tmp_path,
    )
    assert_one_line_error(proc, str(missing), "detector.json")
    assert not (tmp_path / "run").exists()


def test_predict_refuses_a_bad_range_before_loading_or_reading_anything(tmp_path):
    """range=tset was refused only after the detector was loaded and the data read (the
    default synthetic mission generated first), as "column 'range'"."""
    data_dir = tmp_path / "data"
    proc = run_entry(
        "predict.py", [f"ckpt={tmp_path / 'no_detector'}", "range=tset",
                       f"paths.data_dir={data_dir}"], tmp_path,
    )
    line = assert_one_line_error(proc, "range='tset'", "test", "val", "all")
    assert "column" not in line and "detector" not in line
    assert not data_dir.exists() and not (tmp_path / "run").exists()


def test_evaluate_and_merge_refused_on_their_input_leave_no_run_folder(tmp_path):
    """evaluate.py with a missing predictions file and merge.py with missing detectors were
    refused in one line but left their run folder (`.hydra/`, the log) behind."""
    missing = tmp_path / "nonexistent"
    proc = run_entry("evaluate.py", [f"predictions={missing / 'p.csv'}"], tmp_path)
    assert_one_line_error(proc, "p.csv")
    assert not (tmp_path / "run").exists()
    proc = run_entry("merge.py", [f"detectors=[{missing / 'a'},{missing / 'b'}]"], tmp_path)
    assert_one_line_error(proc, str(missing / "a"))
    assert not (tmp_path / "run").exists()
    assert not missing.exists()


@pytest.mark.parametrize(
    ("detectors", "needle"),
    [("a/detector", "must be a list"), ("[a/detector]", "at least two detector")],
)
def test_merge_refusing_its_detectors_setting_leaves_no_run_folder(tmp_path, detectors, needle):
    """detectors=PATH (not a list) or a list of one was refused in one line but left the run
    folder Hydra made (`.hydra/`, merge.log) behind: checked before the job's folder cleanup."""
    proc = run_entry("merge.py", [f"detectors={detectors}"], tmp_path)
    assert_one_line_error(proc, needle)
    assert not (tmp_path / "run").exists()


def test_a_run_refused_on_a_bad_column_leaves_nothing_it_made(small_mission_dir, tmp_path):
    """Without hydra.run.dir the run made outputs/<experiment>/<time>/ and left all of it."""
    env = {**os.environ, "ESA_LIGHTNING_ROOT": str(tmp_path), "PYTHONWARNINGS": "ignore"}
    args = ["experiment=smoke", f"data.root={small_mission_dir}", "data.channels=[nope]"]
    proc = subprocess.run([sys.executable, str(REPO / "train.py"), *args], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=180)
    assert_one_line_error(proc, "column 'channels'", "nope")
    assert not (tmp_path / "outputs").exists()


def test_a_refused_run_keeps_a_folder_it_did_not_make(tmp_path):
    """A folder that was there (a resume, an earlier run) keeps everything in it."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    missing = tmp_path / "nonexistent"
    proc = run_entry(
        "train.py", ["experiment=smoke", "data=esa", f"data.root={missing}"], tmp_path
    )
    assert_one_line_error(proc, str(missing))
    assert (run / "notes.txt").read_text() == "mine"
    assert (run / "train.log").is_file()


def test_the_api_leaves_no_folder_for_a_refused_run(tmp_path):
    import esa_lightning
    from esa_lightning.errors import ESAInputError

    missing = tmp_path / "nonexistent"
    with pytest.raises(ESAInputError, match="nonexistent"):
        esa_lightning.train(["experiment=smoke", "data=esa", f"data.root={missing}"],
                            root_dir=tmp_path)
    assert not (tmp_path / "outputs").exists()


def test_a_model_class_that_cannot_be_imported_is_named_before_any_data_is_read(tmp_path):
    """``train()`` raised Hydra's ImportError (several lines) from the labels' warning, after
    the data were read; train.py printed it and exited 1, leaving the run folder. The data root
    here does not exist: the class is refused first."""
    import esa_lightning
    from esa_lightning.errors import ESAInputError

    args = ["experiment=smoke", "data=esa", f"data.root={tmp_path / 'nonexistent'}",
            "model._target_=nope.Missing"]
    with pytest.raises(ESAInputError, match=re.escape(
            "column 'model._target_': value 'nope.Missing'")):
        esa_lightning.train(args, root_dir=tmp_path)
    assert not (tmp_path / "outputs").exists()
    assert_one_line_error(run_entry("train.py", args, tmp_path), "model._target_", "nope.Missing",
                          "No module named 'nope'")
    assert not (tmp_path / "run").exists()


def test_a_data_reader_that_cannot_be_imported_is_named_in_one_line(tmp_path):
    """A bad ``data._target_`` was refused in one line, under the three ERROR lines Hydra's
    ``hydra.utils`` logs for a failed lookup (``Error getting callable at no.such.Reader ...``);
    the model's ``_target_`` already muted them. Now the data reader's is named alone, as the
    model's is, with the cause, and the run leaves no folder."""
    proc = run_entry("train.py", ["experiment=smoke", "data._target_=no.such.Reader",
                                  "test=false", "logger=none"], tmp_path)
    assert "ERROR" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert_one_line_error(proc, "column 'data._target_': value 'no.such.Reader'",
                          "No module named 'no'")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("key", ["datamodule", "components.channel_ensemble.datamodule"])
def test_a_datamodule_that_cannot_be_imported_is_named_in_one_line(small_mission_dir, tmp_path,
                                                                  key, capsys, caplog):
    """A bad ``datamodule._target_`` (a single model's or an ``esa_full`` component's) printed
    the ERROR lines ``hydra.utils`` logs for a failed lookup (the check for misspelled options
    looked it up), then Hydra's "Error executing job" block, exit code 1."""
    args = ["experiment=esa_full" if key.startswith("components") else "experiment=smoke",
            f"data.root={small_mission_dir}", f"{key}._target_=no.such.DataModule",
            "test=false", "logger=none"]
    # the job's check in this process: train.py runs of a _target_ that cannot be imported are
    # test_a_data_reader_... and test_a_callback_logger_or_combiner_...[callbacks.bogus]
    proc = run_train_job(args, tmp_path, capsys, caplog)
    assert "[ERROR]" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert_one_line_error(proc, f"column '{key}._target_': value 'no.such.DataModule'",
                          "No module named 'no'")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("key", ["datamodule", "components.channel_ensemble.datamodule"])
@pytest.mark.parametrize(("target", "reason"), [("no.such.DataModule", "No module named 'no'"),
                                                ("math.pi", "not a class or function")])
def test_a_datamodule_target_is_refused_before_the_data_are_read(tmp_path, key, target, reason,
                                                                 capsys, caplog):
    """A single model's bad ``datamodule._target_`` was refused only once the reader had read
    the mission (slow on a large one); a component's was already refused before. Both are now:
    with a data root that does not exist, the datamodule is named, not the missing root the
    reader would have refused."""
    missing = tmp_path / "nonexistent"
    args = ["experiment=esa_full" if key.startswith("components") else "experiment=smoke",
            "data=esa", f"data.root={missing}", f"{key}._target_={target}", "test=false",
            "logger=none"]
    # the job's check in this process: train.py runs of these messages are
    # test_a_target_that_is_no_class_or_function_...[trainer] and test_a_data_reader_...
    proc = run_train_job(args, tmp_path, capsys, caplog)
    assert_one_line_error(proc, f"column '{key}._target_': value '{target}'", reason)
    assert not missing.exists()
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("key", "overrides"),
    [
        ("callbacks.bogus", ["experiment=smoke", "+callbacks.bogus._target_=no.such.Target"]),
        ("logger.tensorboard", ["experiment=smoke", "logger=tensorboard",
                                "logger.tensorboard._target_=no.such.Target"]),
        ("callbacks.lr_monitor", ["experiment=esa_full", "logger=none",
                                  "callbacks.lr_monitor._target_=no.such.Target"]),
        ("combiner", ["experiment=esa_full", "logger=none", "combiner._target_=no.such.Target"]),
        ("components.channel_ensemble.callbacks.early_stopping",
         ["experiment=esa_full", "logger=none",
          "components.channel_ensemble.callbacks.early_stopping._target_=no.such.Target"]),
    ],
)
def test_a_callback_logger_or_combiner_that_cannot_be_imported_is_named_in_one_line(
    small_mission_dir, tmp_path, key, overrides, capsys, caplog
):
    """A callback's, a logger's or the combiner's ``_target_`` that cannot be imported ended in
    Hydra's "Error executing job ... Error locating target" block (``full_key: early_stopping``
    for a component's own callback), exit code 1, after the data were read, the run folder
    left. Now it is named in one line with its full key before the data are read."""
    args = [*overrides, f"data.root={small_mission_dir}", "test=false"]
    # one train.py run; the other keys the same job in this process
    proc = (run_entry("train.py", args, tmp_path) if key == "callbacks.bogus"
            else run_train_job(args, tmp_path, capsys, caplog))
    assert "ERROR" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert_one_line_error(proc, f"column '{key}._target_': value 'no.such.Target'",
                          "No module named 'no'")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("key", "overrides"),
    [
        ("model", ["experiment=smoke", "logger=none"]),
        ("data", ["experiment=smoke", "logger=none"]),
        ("datamodule", ["experiment=smoke", "logger=none"]),
        ("trainer", ["experiment=smoke", "logger=none"]),
        ("logger.tensorboard", ["experiment=smoke", "logger=tensorboard"]),
        ("callbacks.lr_monitor", ["experiment=esa_full", "logger=none"]),
        ("combiner", ["experiment=esa_full", "logger=none"]),
        ("components.channel_ensemble.datamodule", ["experiment=esa_full", "logger=none"]),
        ("components.channel_ensemble.callbacks.early_stopping",
         ["experiment=esa_full", "logger=none"]),
    ],
)
def test_a_target_that_is_no_class_or_function_is_named_in_one_line(
    small_mission_dir, tmp_path, key, overrides, capsys, caplog
):
    """A ``_target_`` that imports but cannot be called (``math.pi``) ended, for a callback, a
    logger, the combiner or the trainer, in Hydra's "Error executing job ... Expected a callable
    target" block, and for a data module in a ``TypeError`` traceback (its options' check), exit
    code 1, the run folder left; the model's and the data reader's were refused in words of
    their own. Each is refused in one line naming its key and value, exit code 2, no folder."""
    args = [*overrides, f"data.root={small_mission_dir}", f"{key}._target_=math.pi", "test=false"]
    # one train.py run; the other keys the same job in this process
    proc = (run_entry("train.py", args, tmp_path) if key == "trainer"
            else run_train_job(args, tmp_path, capsys, caplog))
    assert "ERROR" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert_one_line_error(proc, f"column '{key}._target_': value 'math.pi'",
                          "not a class or function")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("key", "kind", "overrides"),
    [
        ("callbacks.boom", "Lightning Callback",
         ["experiment=smoke", "logger=none", "+callbacks.boom._target_=collections.OrderedDict"]),
        ("components.gru_ae.callbacks.boom", "Lightning Callback",
         ["experiment=esa_full", "logger=none",
          "+components.gru_ae.callbacks.boom._target_=collections.OrderedDict"]),
        ("logger.tensorboard", "Lightning Logger",
         ["experiment=smoke", "logger=tensorboard",
          "logger.tensorboard._target_=collections.OrderedDict"]),
    ],
)
def test_a_callback_or_logger_class_of_another_kind_is_named_in_one_line(
    small_mission_dir, tmp_path, key, kind, overrides, capsys, caplog
):
    """A callback entry whose ``_target_`` is a class but no Lightning callback (a mistyped
    path landing on another class) trained up to Lightning's first hook, then ended in Hydra's
    "Error executing job" block (``ConfigAttributeError: Missing key on_exception``, exit
    code 1) after the data were read, the run folder left; a logger of another class likewise.
    Now refused in one line naming the key, before the data are read."""
    args = [*overrides, f"data.root={small_mission_dir}", "test=false"]
    # one train.py run; the other keys the same job in this process
    proc = (run_entry("train.py", args, tmp_path) if key == "callbacks.boom"
            else run_train_job(args, tmp_path, capsys, caplog))
    assert "ERROR" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert_one_line_error(proc, f"column '{key}._target_': value 'collections.OrderedDict'",
                          f"not a {kind}")
    assert not (tmp_path / "run").exists()


def test_debug_errors_shows_the_traceback(tmp_path):
    missing = tmp_path / "no_detector"
    proc = run_entry("predict.py", [f"ckpt={missing}", "debug_errors=true"], tmp_path)
    assert proc.returncode != 0
    assert "ESAInputError" in proc.stderr
    assert "Traceback" in proc.stderr or "HYDRA_FULL_ERROR" in proc.stderr


@pytest.mark.parametrize(
    ("script", "args", "needle"),
    [
        ("train.py", ["experiment=nope"], "Could not find 'experiment/nope'"),
        ("train.py", ["experiment=smoke", "model.foo=1"], "Could not override 'model.foo'"),
        ("train.py", ["foo"], "Error parsing override 'foo'"),
        ("predict.py", ["ckpt=x", "data=nope"], "Could not find 'data/nope'"),
        ("evaluate.py", ["predictions=x", "nope.key=1"], "Could not override 'nope.key'"),
        ("merge.py", ["detectors=[a,b]", "data=nope"], "Could not find 'data/nope'"),
    ],
)
def test_an_override_that_does_not_compose_is_one_line(tmp_path, script, args, needle):
    """Hydra printed several lines and exited with 1 before the job's own checks ran."""
    assert_one_line_error(run_entry(script, args, tmp_path), needle)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("script", "args", "needle"),
    [
        ("train.py", ["experiment=smoke", "seed=abc"], "seed='abc': must be a whole number"),
        ("train.py", ["experiment=smoke", "data.val_days=-5"], "data.val_days=-5: must be"),
        ("predict.py", [], "ckpt: no value given"),
        ("predict.py", ["ckpt=x", "report_block=0"], "report_block=0: must be"),
    ],
)
def test_a_refused_setting_leaves_no_run_folder(tmp_path, script, args, needle):
    """The settings' rules ran inside the job, after Hydra had made the run folder: every
    refused command line left a folder holding `.hydra/` and an empty log under outputs/."""
    assert_one_line_error(run_entry(script, args, tmp_path), needle)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("script", "args", "needle"),
    [
        ("train.py", ["experiment=smoke", "seed=-1"], "seed=-1: must be a whole number"),
        ("train.py", ["experiment=esa_full", "trainer.max_epochs=1"],
         "components.gru_ae.trainer.max_epochs=1"),
        ("predict.py", ["ckpt=x", "report_block=0"], "report_block=0: must be"),
    ],
)
def test_a_setting_refused_inside_the_job_leaves_no_run_folder(tmp_path, script, args, needle):
    """hydra.mode=RUN (as Hydra's own flags) skips the check before Hydra makes the run folder:
    the job's own refusal (its settings' rules, esa_full's shadowed trainer key) exited 2 in one
    line but left the folder holding `.hydra/` and the log."""
    proc = run_entry(script, [*args, "hydra.mode=RUN"], tmp_path)
    assert_one_line_error(proc, needle)
    assert not (tmp_path / "run").exists()


def test_a_setting_refused_inside_the_job_keeps_a_folder_it_did_not_make(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    proc = run_entry("train.py", ["experiment=smoke", "seed=-1", "hydra.mode=RUN"], tmp_path)
    assert_one_line_error(proc, "seed=-1")
    assert (run / "notes.txt").read_text() == "mine"


def test_debug_default_still_shows_a_refused_settings_traceback(tmp_path):
    proc = run_entry("train.py", ["debug=default", "seed=abc"], tmp_path)
    assert proc.returncode != 0
    assert "ESAInputError: seed='abc'" in proc.stderr


def test_hydra_keeps_what_only_it_can_read():
    """A multirun asked for with hydra.mode=MULTIRUN (a sweep value does not compose as one
    run) and Hydra's own flags go to Hydra; a plain bad override does not."""
    from esa_lightning.cli.overrides import composes_or_exit

    composes_or_exit("train", ["hydra.mode=MULTIRUN", "seed=1,2"])
    composes_or_exit("train", ["-m", "seed=1,2"])
    composes_or_exit("train", ["experiment=smoke", "+trainer.limit_val_batches=1", "~tags"])
    with pytest.raises(SystemExit):
        composes_or_exit("train", ["seed=1,2"])


def test_a_refused_command_line_loads_neither_torch_nor_lightning():
    """The commands imported their jobs (torch, Lightning: seconds) before checking the
    overrides, so `train.py experiment=nope` took as long to refuse as to start training; the
    jobs are now imported after the check."""
    script = (
        "import sys\n"
        "import esa_lightning.cli.evaluate, esa_lightning.cli.merge\n"
        "import esa_lightning.cli.predict, esa_lightning.cli.train\n"
        "from esa_lightning.cli.overrides import compose_error\n"
        "assert 'nope' in compose_error('train', ['experiment=nope'])\n"
        "print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


def test_a_sweep_job_refuses_a_top_level_trainer_key_its_components_override(
    small_mission_dir, tmp_path
):
    """train.py -m (its overrides go to Hydra unchecked): each esa_full job trained with its
    components' own max_epochs, the swept trainer.max_epochs ignored. Refused since, as every
    job would be: before the sweep starts, naming its first job, no sweep folder made."""
    proc = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "-m", "experiment=esa_full",
         "trainer.max_epochs=1,2", f"data.root={small_mission_dir}",
         "+trainer.limit_train_batches=1", "+trainer.limit_val_batches=1", "logger=none",
         "components.channel_ensemble.trainer.max_epochs=1", f"hydra.sweep.dir={tmp_path / 's'}",
         f"paths.root_dir={tmp_path}"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    refused = [ln for ln in proc.stderr.splitlines()
               if "components.gru_ae.trainer.max_epochs=" in ln]
    assert len(refused) == 1, proc.stderr[-3000:]
    assert refused[0].startswith("error: sweep job 0 (")
    # the ensemble's own max_epochs is given: only the GRU's is left to set
    assert not any("channel_ensemble" in ln.rsplit(": set ", 1)[-1] for ln in refused)
    assert not (tmp_path / "s").exists()


def compose_into(overrides: list[str], tmp_path: Path):
    """The train config of ``overrides`` with its run folder ``tmp_path/run`` (not made yet)
    and its root (data caches) ``tmp_path``."""
    from omegaconf import open_dict

    from tests.conftest import compose_config

    cfg = compose_config("train", overrides, tmp_path / "run")
    with open_dict(cfg):
        cfg.paths.root_dir = str(tmp_path)
    return cfg


def test_a_trainer_setting_lightning_refuses_leaves_no_run_folder(small_mission_dir, tmp_path):
    """The model and trainer were built outside the refused-run guard: a GPU asked for where
    there is none exited 2 in one line but left the run folder (.hydra/, train.log)."""
    from esa_lightning.errors import ESAInputError
    from esa_lightning.jobs.train import train

    cfg = compose_into(["experiment=smoke", f"data.root={small_mission_dir}", "logger=none",
                        "trainer.accelerator=gpu", "trainer.devices=4096"], tmp_path)
    with pytest.raises(ESAInputError, match="refused by Lightning"):
        train(cfg)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("component", ["channel_ensemble", "gru_ae"])
def test_a_components_trainer_setting_is_refused_before_any_component_trains(
    small_mission_dir, tmp_path, monkeypatch, component
):
    """esa_full built each component's trainer only once the components before it had
    trained: a GPU asked for the channel ensemble where there is none was refused after the
    GRU's fit, and its run folder stayed behind. The first component's (the GRU's) is refused
    by building its own trainer, before any fit too."""
    overrides = [f"+components.{component}.trainer.accelerator=gpu",
                 f"+components.{component}.trainer.devices=4096"]
    _refused_before_any_fit(overrides, f"components.{component}.trainer.accelerator=gpu",
                            small_mission_dir, tmp_path, monkeypatch)


def test_a_later_components_callback_setting_is_refused_before_any_fit(
    small_mission_dir, tmp_path, monkeypatch
):
    """esa_full built the channel ensemble's callbacks only after the GRU had trained: a mode
    its early stopping refuses was refused after that fit, and the run folder stayed."""
    _refused_before_any_fit(["components.channel_ensemble.callbacks.early_stopping.mode=bogus"],
                            "components.channel_ensemble.callbacks.early_stopping",
                            small_mission_dir, tmp_path, monkeypatch)


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("components.channel_ensemble.model.channel_scores=bogus",
         "column 'components.channel_ensemble.model.channel_scores'"),
        ("components.channel_ensemble.model.top_channels=0",
         "column 'components.channel_ensemble.model.top_channels'"),
        ("components.channel_ensemble.datamodule.min_kernel_len=60",
         "components.channel_ensemble.datamodule.min_kernel_len=60"),
        ("components.channel_ensemble.datamodule.max_kernel_len=100",
         "components.channel_ensemble.datamodule.max_kernel_len=100, "
         "components.channel_ensemble.datamodule.window=50"),
        ("components.channel_ensemble.model._target_=builtins.dict",
         "column 'components.channel_ensemble.model._target_'"),
        ("components.channel_ensemble.model._target_=nope.Missing",
         "column 'components.channel_ensemble.model._target_': value 'nope.Missing'"),
        ("components.gru_ae.model._target_=nope.Missing",
         "column 'components.gru_ae.model._target_': value 'nope.Missing'"),
    ],
)
def test_a_later_components_model_or_kernel_setting_is_refused_before_any_fit(
    override, match, small_mission_dir, tmp_path, monkeypatch
):
    """esa_full built the channel ensemble's model only after the GRU had trained, and checked
    its kernel lengths only in its own fit: a value refused there was refused after the GRU's
    fit, and the run folder stayed. The refusal names the key the user set (it named a single
    model's: ``column 'channel_scores'``, ``model.top_channels``, ``min_kernel_len=60``)."""
    _refused_before_any_fit([override], re.escape(match), small_mission_dir, tmp_path,
                            monkeypatch)


def test_a_refusal_in_a_datamodules_setup_leaves_no_run_folder(small_mission_dir, tmp_path):
    """A pooled row longer than the training range is refused by the channel ensemble's
    ``setup``, inside its fit, before any epoch or checkpoint: the run folder (.hydra/, the log)
    stayed, where every refusal before the fit removes the folder the run made."""
    from esa_lightning.errors import ESAInputError
    from esa_lightning.jobs.train import train

    cfg = compose_into(["experiment=channel_ensemble", f"data.root={small_mission_dir}",
                        "datamodule.pool=100000"], tmp_path)
    with pytest.raises(ESAInputError, match=re.escape("datamodule.pool=100000")):
        train(cfg)
    assert not (tmp_path / "run").exists()


def test_a_refusal_in_a_later_components_fit_keeps_the_checkpoints(
    small_mission_dir, tmp_path, monkeypatch
):
    """A refusal in the channel ensemble's fit, after the GRU wrote its checkpoints, keeps the
    run folder and them (the run folder holding checkpoints is never removed)."""
    from esa_lightning.data.segment_datamodule import SegmentDataModule
    from esa_lightning.errors import ESAInputError
    from esa_lightning.jobs.train import train

    def refused(self, stage=None):
        raise ESAInputError("refused in setup", column="datamodule.bogus")

    monkeypatch.setattr(SegmentDataModule, "setup", refused)
    cfg = compose_into(["experiment=esa_full", f"data.root={small_mission_dir}", "logger=none",
                        "components.gru_ae.trainer.max_epochs=1",
                        "+components.gru_ae.trainer.limit_train_batches=1",
                        "+components.gru_ae.trainer.limit_val_batches=1"], tmp_path)
    with pytest.raises(ESAInputError, match="refused in setup"):
        train(cfg)
    assert (tmp_path / "run" / "checkpoints" / "gru_ae" / "last.ckpt").is_file()


def test_a_later_components_trial_model_leaves_the_random_state(small_mission_dir, tmp_path):
    """A later component's trial model (built before any fit, to refuse its settings) puts
    back the random state its initial weights drew from (the GRU's draw from torch's): the
    models built for training start from the state they would have without the trial."""
    import torch

    from esa_lightning.jobs import train as train_job
    from esa_lightning.jobs.common import mission_from_config
    from esa_lightning.runtime.random_state import random_state

    cfg = compose_into(["experiment=esa_full", f"data.root={small_mission_dir}", "logger=none"],
                       tmp_path)
    spec = cfg.components.gru_ae
    datamodule = train_job.make_datamodule(spec, mission_from_config(cfg.data))
    torch.manual_seed(0)
    before = random_state()
    train_job.check_later_component(cfg, spec, "gru_ae", datamodule)
    after = random_state()
    assert torch.equal(before["torch"], after["torch"])
    assert torch.equal(before["numpy"]["keys"], after["numpy"]["keys"])
    assert before["python"] == after["python"]


def _refused_before_any_fit(overrides, match, small_mission_dir, tmp_path, monkeypatch):
    """``experiment=esa_full`` with ``overrides`` is refused (an error matching ``match``)
    before any component is fitted, and leaves no run folder."""
    from esa_lightning.errors import ESAInputError
    from esa_lightning.jobs import train as train_job

    fitted = []

    def fit_component(name, ready):
        fitted.append(name)
        raise RuntimeError(f"{name} was fitted")

    monkeypatch.setattr(train_job, "fit_component", fit_component)
    cfg = compose_into(["experiment=esa_full", f"data.root={small_mission_dir}", "logger=none",
                        *overrides], tmp_path)
    with pytest.raises(ESAInputError, match=match):
        train_job.train(cfg)
    assert fitted == []
    assert not (tmp_path / "run").exists()


def test_the_first_components_trainer_is_built_once(small_mission_dir, tmp_path, monkeypatch):
    """esa_full built a trial trainer of every component before any fit (to refuse a setting
    Lightning refuses), the first component's too, whose own trainer is built right after:
    by its fit, two Trainers of the GRU had been built, one thrown away. A later component's
    trial stays (its own trainer is built only after the earlier fits)."""
    from collections import Counter

    import lightning as L

    from esa_lightning.jobs import train as train_job

    built = Counter()
    make_trainer, init = train_job.make_trainer, L.Trainer.__init__

    def counted_make(trainer_cfg, callbacks, loggers, key="trainer"):
        built[key] += 1
        return make_trainer(trainer_cfg, callbacks, loggers, key)

    def counted_init(self, *args, **kwargs):
        built["Trainer.__init__"] += 1
        init(self, *args, **kwargs)

    def fit_component(name, ready):
        raise RuntimeError(f"{name} was fitted")

    monkeypatch.setattr(train_job, "make_trainer", counted_make)
    monkeypatch.setattr(L.Trainer, "__init__", counted_init)
    monkeypatch.setattr(train_job, "fit_component", fit_component)
    cfg = compose_into(["experiment=esa_full", f"data.root={small_mission_dir}", "logger=none"],
                       tmp_path)
    with pytest.raises(RuntimeError, match="gru_ae was fitted"):
        train_job.train(cfg)
    assert built == {"components.gru_ae.trainer": 1, "components.channel_ensemble.trainer": 1,
                     "Trainer.__init__": 2}


@pytest.mark.parametrize("refused", ["other settings", "another model's"])
def test_a_refused_resume_into_a_new_folder_leaves_no_run_folder(small_mission_dir, tmp_path,
                                                                refused):
    """``ckpt_path=<a file>`` refused by the resume checks (its model settings differ from the
    run's, or it is a checkpoint of another model) exited 2 in one line but left the new run
    folder (.hydra/, train.log): the checks ran when the component was fitted, past the
    refused-run guard. A folder that was there keeps all it held."""
    import torch

    from esa_lightning.errors import ESAInputError
    from esa_lightning.jobs.train import train
    from tests.conftest import compose_config

    run = ["experiment=smoke", f"data.root={small_mission_dir}", "logger=none"]
    if refused == "other settings":
        train(compose_config("train", run, tmp_path / "earlier"))
        ckpt = tmp_path / "earlier" / "checkpoints" / "smoke" / "last.ckpt"
        run, needle = [*run, "model.quantile=99.0"], "trained with model.quantile="
    else:
        ckpt = tmp_path / "gru.ckpt"
        torch.save({"state_dict": {"net.weight": torch.zeros(2, 2)}}, ckpt)
        needle = "does not fit the configured model"
    assert_one_line_error(run_entry("train.py", [*run, f"ckpt_path={ckpt}"], tmp_path),
                          str(ckpt), needle)
    assert not (tmp_path / "run").exists()
    there = tmp_path / "there"
    there.mkdir()
    (there / "notes.txt").write_text("mine")
    with pytest.raises(ESAInputError, match=needle):
        train(compose_config("train", [*run, f"ckpt_path={ckpt}"], there))
    assert (there / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (["experiment=smoke", "+model.bogus=1"],
         "model.bogus: not an option of RobustZScore; its options: "),
        (["experiment=smoke", "+model.quantil=99"],
         "model.quantil: not an option of RobustZScore; did you mean quantile?"),
        (["model=window_pca", "datamodule=windows", "+model.max_window=9"],
         "model.max_window: not an option of WindowPCADetector; did you mean max_windows?"),
        # the data module is instantiated partially and called later, outside Hydra's wrapper
        (["experiment=smoke", "+datamodule.batch_siz=4"],
         "datamodule.batch_siz: not an option of RowDataModule; did you mean batch_size?"),
        # the synthetic reader passes its options on to the ESA reader
        (["experiment=smoke", "+data.bogus=1"], "data.bogus: not an option of load_synthetic"),
        # the second component was built only once the first had trained
        (["experiment=esa_full", "+components.channel_ensemble.model.hiden=3"],
         "components.channel_ensemble.model.hiden: not an option of LitChannelEnsemble; "
         "did you mean hidden?"),
    ],
)
def test_a_misspelled_config_key_is_one_line_naming_it(small_mission_dir, tmp_path, overrides,
                                                      needle):
    """Hydra's "Error in call to target ... unexpected keyword argument 'bogus'" (several
    lines, exit code 1; a traceback for the data module's and the reader's), and the run folder
    left behind."""
    from esa_lightning.errors import ESAInputError
    from esa_lightning.jobs.train import train

    cfg = compose_into([*overrides, f"data.root={small_mission_dir}", "logger=none"], tmp_path)
    with pytest.raises(ESAInputError) as refused:
        train(cfg)
    assert str(refused.value).startswith(needle) and "\n" not in str(refused.value)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["experiment=smoke", "model.nope=4,8"], "sweep job 0 (experiment=smoke model.nope=4 "),
        (["seed=1,2", "experiment=smoke,nope"], "sweep job 1 (seed=1 experiment=nope "),
    ],
)
def test_a_sweep_whose_override_does_not_compose_is_one_line(tmp_path, args, needle):
    """``train.py -m model.nope=4,8`` (a key the config lacks) or ``-m experiment=smoke,nope``
    printed Hydra's block of several lines (the list of every experiment for the second), exit
    code 1, and left the sweep folder holding ``multirun.yaml``; no job had run."""
    sweep = tmp_path / "sweep"
    proc = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "-m", *args, "logger=none",
         f"hydra.sweep.dir={sweep}", f"paths.root_dir={tmp_path}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert_one_line_error(proc, needle)
    assert not sweep.exists()


def test_every_sweep_job_with_a_misspelled_model_key_fails_in_one_line(small_mission_dir,
                                                                       tmp_path):
    """The sweep ended with Hydra's block naming job 0 only, exit code 1."""
    import pandas as pd

    sweep = tmp_path / "sweep"
    proc = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "-m", "experiment=smoke", "+model.bogus=1",
         "seed=1,2", "logger=none", f"data.root={small_mission_dir}",
         f"hydra.sweep.dir={sweep}", f"paths.root_dir={tmp_path}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Error executing job" not in proc.stderr and "Traceback" not in proc.stderr
    for job in (0, 1):
        assert f"error: sweep job {job} (" in proc.stderr
    assert proc.stderr.count("model.bogus: not an option of RobustZScore") == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 2 sweep job(s) failed (job 0, 1)")
    statuses = pd.read_csv(sweep / "summary.csv")["status"]
    assert all(s.startswith("failed: model.bogus") for s in statuses)


def test_a_crashed_sweep_job_s_log_holds_its_traceback(small_mission_dir, tmp_path):
    """A job that crashes (an error that is not the input's) left its folder's ``train.log``
    without a word of it: the traceback reached only the console, once every job had run. Now
    the job's log holds the error and its traceback, and the next job runs as before."""
    sweep = tmp_path / "sweep"
    proc = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "-m", "experiment=smoke", "seed=1,2",
         "+callbacks.boom._target_=builtins.sorted", "logger=none", "test=false",
         f"data.root={small_mission_dir}", f"hydra.sweep.dir={sweep}",
         f"paths.root_dir={tmp_path}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    for job in ("0", "1"):
        log = (sweep / job / "train.log").read_text()
        assert "crashed" in log and "Traceback (most recent call last)" in log, log
        assert "TypeError('sorted expected 1 argument, got 0')" in log


def test_print_config_shows_the_values_the_run_uses(small_mission_dir, tmp_path):
    """``print_config=true`` logged the config unresolved: ``output_dir:
    ${hydra:runtime.output_dir}``, ``cache_dir: ${paths.cache_dir}`` instead of the run's
    folders."""
    proc = run_entry("train.py", ["experiment=smoke", f"data.root={small_mission_dir}",
                                  "logger=none", "test=false", "print_config=true"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dump = (tmp_path / "run" / "train.log").read_text().split("config:\n", 1)[1]
    assert "experiment_name: smoke\n" in dump
    assert f"output_dir: {tmp_path / 'run'}\n" in dump
    assert "${" not in dump.split("\n[", 1)[0]  # up to the next log record


def test_ranks_another_launcher_started_need_one_run_folder(tmp_path):
    """Under torchrun (WORLD_SIZE > 1 before Lightning's launcher runs) each rank named a
    time-stamped run folder of its own: refused before anything is written, unless given one."""
    env = {**os.environ, "ESA_LIGHTNING_ROOT": str(tmp_path), "PYTHONWARNINGS": "ignore",
           "WORLD_SIZE": "2"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "experiment=smoke", "logger=none"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
    )
    assert_one_line_error(proc, "WORLD_SIZE=2", "hydra.run.dir=")
    assert list(tmp_path.iterdir()) == []


def test_a_sweep_another_launcher_started_is_told_the_sweep_folder_key(tmp_path):
    """``train.py -m`` under torchrun was told to give ``hydra.run.dir=``, a key a sweep does
    not use for its folder: ``hydra.sweep.dir=`` is what it needs."""
    env = {**os.environ, "ESA_LIGHTNING_ROOT": str(tmp_path), "PYTHONWARNINGS": "ignore",
           "WORLD_SIZE": "2"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "-m", "experiment=smoke", "logger=none"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180,
    )
    assert_one_line_error(proc, "WORLD_SIZE=2", "hydra.sweep.dir=")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("script", "args"),
    [("predict.py", ["ckpt=detector"]), ("evaluate.py", ["predictions=p.csv"]),
     ("merge.py", ["detectors=[a,b]"])],
)
@pytest.mark.parametrize("rank", [{"RANK": "1", "WORLD_SIZE": "2"},
                                  {"SLURM_PROCID": "1", "SLURM_NTASKS": "2"}])
def test_one_process_jobs_run_on_global_rank_0_only(tmp_path, script, args, rank):
    """predict.py under torchrun (or srun) ran on every rank: each scored the whole range into a
    folder of its own, or, all given one folder, the second was refused by its lock (exit 2)
    and torchrun stopped the first, which left its temporary folder. A rank other than 0 of
    these one-process jobs exits with code 0 after one note naming it, writing nothing."""
    proc = run_entry(script, args, tmp_path, **rank)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("note: "), lines
    assert script in lines[0] and "{}={}".format(*next(iter(rank.items()))) in lines[0]
    assert list(tmp_path.iterdir()) == []
