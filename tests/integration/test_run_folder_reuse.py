"""A new training run into a folder holding an earlier run's outputs is refused before it touches
anything there; resuming that run (``ckpt_path=last``) goes on, with the checkpoint's settings.

Before, the second run wrote ``last-v1.ckpt`` beside the first run's ``last.ckpt`` and replaced
its ``detector/`` and ``metrics.json``; resuming then restored the first run's ``last.ckpt`` and
shipped its model under the second run's config (``model.max_windows`` 500 trained, 300 said).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from esa_lightning.errors import ESAInputError
from esa_lightning.jobs.train import train
from tests.conftest import CONF, REPO, TrainedRun, compose_config

FAST = ["experiment=smoke", "logger=none", "trainer.enable_progress_bar=false",
        "~callbacks.progress_bar", "test=false"]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` and a hash of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def run_train(args: list[str], root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "ESA_LIGHTNING_ROOT": str(root), "PYTHONWARNINGS": "ignore"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([sys.executable, str(REPO / "train.py"), *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def fast_run(small_mission_dir, tmp_path_factory) -> TrainedRun:
    """``FAST`` on the small mission, trained once; each test starts from a fresh copy."""
    folder = tmp_path_factory.mktemp("trained") / "run"
    assert train(compose_config("train", [*FAST, f"data.root={small_mission_dir}"],
                                folder)) is not None
    return TrainedRun(folder).keep()


def test_a_second_run_into_a_trained_folder_is_refused_and_resuming_it_works(
    small_mission_dir, fast_run
):
    run = [*FAST, f"data.root={small_mission_dir}"]
    tmp_path = fast_run.fresh()  # run trained there
    before = snapshot(tmp_path)
    with pytest.raises(ESAInputError) as refused:
        train(compose_config("train", [*run, "model.quantile=99.0"], tmp_path))
    message = str(refused.value)
    assert message.startswith(str(tmp_path)) and "\n" not in message
    # the job composed outside Hydra, as the Python API runs it: its folder setting is named
    assert "another output_dir=" in message and "ckpt_path=last" in message
    assert snapshot(tmp_path) == before  # no last-v1.ckpt, the detector and metrics as they were
    assert train(compose_config("train", [*run, "ckpt_path=last"], tmp_path)) is not None
    assert not list(tmp_path.rglob("last-v*.ckpt"))


def test_a_resume_refused_for_a_data_setting_names_its_datamodule_key(
    small_mission_dir, tmp_path
):
    """The window comes from the data module (``datamodule.window``) into the model's
    settings: a resume with another one was refused naming ``model.window``, a key the user
    never set (and which does not exist to set back)."""
    run = ["experiment=gru_ae", "trainer.max_epochs=1", "++trainer.limit_train_batches=2",
           "logger=none", "trainer.enable_progress_bar=false", "~callbacks.progress_bar",
           "test=false", f"data.root={small_mission_dir}"]
    train(compose_config("train", run, tmp_path))
    with pytest.raises(ESAInputError, match=r"trained with datamodule\.window=10, this run asks "
                                            r"datamodule\.window=20"):
        train(compose_config("train", [*run, "datamodule.window=20", "ckpt_path=last"], tmp_path))


def test_resuming_with_other_model_settings_than_the_checkpoints_is_refused(
    small_mission_dir, fast_run
):
    """The resume restored the checkpoint trained with the first settings and shipped it with
    the settings asked now in its config. The refusal, reached here as the Python API's
    ``train()`` reaches it (no Hydra job), names the API's ``output_dir=`` (it named
    ``hydra.run.dir``, a setting the API user never gives)."""
    run = [*FAST, f"data.root={small_mission_dir}"]
    tmp_path = fast_run.fresh()  # run trained there
    detector = snapshot(tmp_path / "detector")
    with pytest.raises(ESAInputError, match=r"trained with model\.quantile=.*, this run asks "
                                            r"model\.quantile=99\.0") as refused:
        train(compose_config("train", [*run, "model.quantile=99.0", "ckpt_path=last"], tmp_path))
    assert "(another output_dir=, no ckpt_path)" in str(refused.value)
    assert snapshot(tmp_path / "detector") == detector


def test_resuming_with_another_score_batch_goes_on_with_it(small_mission_dir, tmp_path):
    """A run that ran out of memory scoring could not resume with a smaller score batch: 'the
    checkpoint was trained with model.score_batch_size=4096, this run asks ...=7'. It resumes
    now, and the detector it writes records the run's setting; a setting the weights or scores
    depend on is still refused."""
    run = ["model=window_pca", "logger=none", "trainer.enable_progress_bar=false",
           "~callbacks.progress_bar", "test=false", f"data.root={small_mission_dir}"]
    train(compose_config("train", run, tmp_path))
    smaller = [*run, "model.score_batch_size=7", "ckpt_path=last"]
    train(compose_config("train", smaller, tmp_path))
    [entry] = json.loads((tmp_path / "detector" / "detector.json").read_text())[
        "components"].values()
    assert entry["hparams"]["score_batch_size"] == 7
    detector = snapshot(tmp_path / "detector")
    with pytest.raises(ESAInputError, match=r"trained with model\.max_windows=20000, this run "
                                            r"asks model\.max_windows=300"):
        train(compose_config("train", [*smaller, "model.max_windows=300"], tmp_path))
    assert snapshot(tmp_path / "detector") == detector


#: each family's settings that set only speed or memory, and a value other than the default; a
#: family not listed here is checked with another value of each setting it declares (inherits)
RUNTIME = {
    "gru_ae": {"score_batch_size": 5, "post_processing.rf_gate.n_jobs": 1,
               "post_processing.threshold.chunk_rows": 1000,
               "post_processing.rf_gate.chunk_rows": 1000,
               "post_processing.gap_close.chunk_rows": 1000,
               "post_processing.channel_norm.chunk_rows": 1000},
    "window_pca": {"score_batch_size": 5, "post_processing.threshold.chunk_rows": 1000},
    "window_knn": {"score_batch_size": 5, "post_processing.threshold.chunk_rows": 1000},
    "channel_ensemble": {"score_chunk_rows": 2048, "post_processing.alarm.chunk_rows": 1000},
    "channel_ensemble_gbdt": {"n_threads": 1, "post_processing.alarm.chunk_rows": 1000},
    "rolling_gbdt": {"n_threads": 1},
}
DIMS = {"windows": {"n_inputs": 2, "n_outputs": 2}, "mission": {"n_channels": 2},
        "rows": {"n_channels": 2}, "segments": {"n_channels": 2, "n_features": 4,
                                                "group_index": [0, 1]}}


def model_of(name: str, overrides: list[str], family: type | None = None):
    """``conf/model/<name>.yaml`` with ``overrides``, built as training builds it (as ``family``
    when given, with that config's options)."""
    from hydra.utils import get_class, instantiate
    from omegaconf import OmegaConf

    cfg = compose_config("train", [f"model={name}", *overrides], Path("unused"))
    if family is not None:
        options = OmegaConf.to_container(cfg.model, resolve=True)
        del options["_target_"]
        return family(**DIMS[family.datamodule_kind], **options)
    dims = DIMS[get_class(cfg.model._target_).datamodule_kind]
    return instantiate(cfg.model, **dims, _convert_="all")


def setting(hparams, dotted: str):
    for part in dotted.split("."):
        hparams = hparams[part]
    return hparams


def another_value(value):
    """A value other than ``value`` for a count of a speed or memory setting (a batch, rows,
    threads or cores: -1 and null mean all of them)."""
    assert value is None or (isinstance(value, int) and not isinstance(value, bool)), (
        f"{value!r}: give this family's setting another value in RUNTIME")
    return 1 if value != 1 else 2


def check_runtime_settings(name: str, runtime: dict | None, family: type | None = None) -> None:
    """``conf/model/<name>.yaml``'s model (as ``family`` when given) declares the settings of
    ``runtime`` (None: whatever it declares, each given ``another_value``); a resume may change
    them and nothing else."""
    from esa_lightning.runtime.checkpoints import check_same_settings

    trained = model_of(name, [], family)
    declared = trained.runtime_settings()
    if runtime is None:
        runtime = {key: another_value(setting(trained.hparams, key)) for key in declared}
    assert declared == set(runtime)
    data = {"hyper_parameters": dict(trained.hparams)}
    changed = model_of(name, [f"model.{key}={value}" for key, value in runtime.items()], family)
    for key, value in runtime.items():  # the check below compares other values
        assert setting(changed.hparams, key) == value != setting(trained.hparams, key)
    check_same_settings(data, changed, "last.ckpt", "model")
    key = next((k for k in ("top_channels", "quantile", "n_std") if k in trained.hparams), None)
    if key is None:  # a family with none of these: its runtime settings are checked above
        return
    other = trained.hparams[key] + 1
    with pytest.raises(ESAInputError, match=rf"this run asks model\.{key}={other}"):
        check_same_settings(data, model_of(name, [f"model.{key}={other}"], family),
                            "last.ckpt", "model")


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF / "model").glob("*.yaml")))
def test_the_settings_check_passes_only_what_sets_speed_or_memory(name):
    """Each family declares its speed or memory settings (a score batch, chunk rows, threads,
    the forest gate's cores), which a resume may change; any other setting is refused."""
    check_runtime_settings(name, RUNTIME.get(name))


def test_a_new_family_needs_no_entry_here_for_the_settings_it_inherits():
    """A family built on the window baselines inherits their ``score_batch_size``; it failed
    here ('Extra items in the left set: score_batch_size') until it was listed in RUNTIME, a
    second place to list a family beside its package and YAML."""
    from esa_lightning.models.window_pca.model import WindowPCADetector

    class NewWindowFamily(WindowPCADetector):
        """A new family: the window baselines' settings, nothing declared of its own."""

    check_runtime_settings("window_pca", None, NewWindowFamily)


def test_a_folder_without_an_earlier_runs_outputs_stays_usable(small_mission_dir, tmp_path):
    """What a run refused before it trained leaves (``.hydra/``, its log), and someone's file."""
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text("refused: true\n")
    (tmp_path / "train.log").write_text("error\n")
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "checkpoints" / "smoke").mkdir(parents=True)  # made, nothing written yet
    assert train(compose_config("train", [*FAST, f"data.root={small_mission_dir}"],
                                tmp_path)) is not None
    assert (tmp_path / "notes.txt").read_text() == "mine"


def earlier_run(folder: Path) -> dict[str, str]:
    """What a run that trained leaves in ``folder`` (no need to train one: nothing is read)."""
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text("model: {max_windows: 500}\n")
    (folder / ".hydra" / "overrides.yaml").write_text("- model.max_windows=500\n")
    (folder / "train.log").write_text("trained\n")
    (folder / "checkpoints" / "window_pca").mkdir(parents=True)
    (folder / "checkpoints" / "window_pca" / "last.ckpt").write_bytes(b"weights")
    return snapshot(folder)


def test_train_py_refuses_before_hydra_writes_into_the_folder(tmp_path):
    """Hydra rewrote the earlier run's .hydra/ and appended to its log before the job ran."""
    folder = tmp_path / "outputs" / "wp"
    before = earlier_run(folder)
    proc = run_train(["model=window_pca", "logger=none", f"hydra.run.dir={folder}"], tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith(f"error: {folder}: holds an earlier run's checkpoints/")
    assert "hydra.run.dir" in lines[-1] and "ckpt_path=last" in lines[-1]
    assert "Traceback" not in proc.stderr
    assert snapshot(folder) == before


def test_the_api_s_refusal_names_its_output_dir_argument(tmp_path):
    """``esa_lightning.train(output_dir=...)`` into an earlier run's folder said "train into
    another folder (another hydra.run.dir)": a setting the API user never gives. It names
    ``output_dir=`` there (train.py's message, above, still names hydra.run.dir)."""
    import esa_lightning

    folder = tmp_path / "outputs" / "wp"
    before = earlier_run(folder)
    with pytest.raises(ESAInputError) as refused:
        esa_lightning.train(["model=window_pca", "logger=none"], output_dir=folder,
                            root_dir=tmp_path)
    message = str(refused.value)
    assert message.startswith(f"{folder}: holds an earlier run's checkpoints/")
    assert "another output_dir=" in message and "hydra.run.dir" not in message
    assert "ckpt_path=last" in message
    assert snapshot(folder) == before


def test_the_api_s_other_folder_refusals_name_its_output_dir_argument(tmp_path):
    """Through the Python API, ``train()`` into a detector artifact said "(output_dir==...)"
    and ``predict()`` into a training run's folder or an artifact said "hydra.run.dir=...": a
    doubled '=' and a setting the API user does not give. Both name ``output_dir=...`` now."""
    import esa_lightning

    artifact = tmp_path / "art"
    artifact.mkdir()
    (artifact / "detector.json").write_text("{}")
    trained = tmp_path / "outputs" / "wp"
    before = earlier_run(trained)
    refusals = [
        lambda: esa_lightning.train(["experiment=smoke", "logger=none"], output_dir=artifact,
                                    root_dir=tmp_path),
        lambda: esa_lightning.predict(artifact, output_dir=artifact / "sub", root_dir=tmp_path),
        lambda: esa_lightning.predict(artifact, output_dir=trained, root_dir=tmp_path),
    ]
    for refused_call in refusals:
        with pytest.raises(ESAInputError) as refused:
            refused_call()
        message = str(refused.value)
        assert "(output_dir=...)" in message and "hydra.run.dir" not in message, message
    assert snapshot(trained) == before
    assert sorted(p.name for p in artifact.iterdir()) == ["detector.json"]


def test_a_sweep_into_an_earlier_sweeps_folder_is_refused_before_writing(tmp_path):
    """Rerun into an earlier sweep's folder, a sweep replaced its jobs' detectors, metrics and
    .hydra/ and its summary.csv."""
    sweep = tmp_path / "sweep"
    earlier_run(sweep / "1")
    (sweep / "summary.csv").write_text("job,status\n1,done\n")
    before = snapshot(sweep)
    proc = run_train(["-m", "model=window_pca", "model.max_windows=400,300", "logger=none",
                      f"hydra.sweep.dir={sweep}"], tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(f"error: {sweep}: holds an earlier sweep's job 1 (checkpoints/)")
    assert "hydra.sweep.dir" in line and "ckpt_path=last" in line
    assert snapshot(sweep) == before


@pytest.mark.slow
def test_a_sweep_job_into_a_folder_an_earlier_run_trained_in_fails_alone(
    small_mission_dir, tmp_path
):
    """A job whose own folder holds an earlier run's outputs (here one nested deeper below the
    sweep folder than the check for an earlier sweep's jobs looks) is refused as an input error
    of its own, the next job runs, and the sweep ends with the one line, exit code 2. (Jobs of
    one sweep that would share a folder, or train outside the sweep folder, are refused before
    the sweep starts: tests/unit/test_sweep_subdirs; an earlier sweep's jobs nested below the
    sweep folder too: test_earlier_sweep_nested.)"""
    from esa_lightning.jobs.run_guard import SWEEP_JOB_DEPTH

    nested = "/".join("abcdefgh"[:SWEEP_JOB_DEPTH])  # job folders one level deeper than looked
    sweep = tmp_path / "sweep"
    elsewhere = sweep / nested
    before = earlier_run(elsewhere / "1")
    proc = run_train(["-m", *FAST, f"data.root={small_mission_dir}", "seed=1,2",
                      f"hydra.sweep.dir={sweep}", f"hydra.sweep.subdir={nested}/${{seed}}"],
                     tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "error: sweep job 0 (" in proc.stderr and "holds an earlier run's" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: 1 sweep job(s) failed (job 0)")
    assert not list(tmp_path.rglob("last-v*.ckpt"))
    after = snapshot(elsewhere / "1")  # its .hydra/ and log Hydra wrote before the job
    assert {k: v for k, v in after.items() if k.startswith("checkpoints")} == {
        k: v for k, v in before.items() if k.startswith("checkpoints")}
    assert (elsewhere / "2" / "metrics.json").is_file()
    summary = pd.read_csv(sweep / "summary.csv")  # each job read in the folder it ran in
    assert summary["status"][0].startswith("failed: ") and summary["status"][1] == "done"
    assert list(summary["overrides"].str.contains("seed=2")) == [False, True]


def run_job(script: str, args: list[str], root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "ESA_LIGHTNING_ROOT": str(root), "PYTHONWARNINGS": "ignore"}
    env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run([sys.executable, str(REPO / script), *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def earlier_prediction(folder: Path) -> dict[str, str]:
    """What predict.py leaves in ``folder`` (its manifest lists its files)."""
    from esa_lightning.run_folder import MANIFEST

    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text("- ckpt=some/detector\n")
    files = ["events.csv", "metrics.json", "submission.csv"]
    for name in files:
        (folder / name).write_text("predicted\n")
    (folder / MANIFEST).write_text(json.dumps({"files": files}))
    return snapshot(folder)


def trained_run(folder: Path) -> dict[str, str]:
    """A training run's folder with its metrics.json (``earlier_run``)."""
    earlier_run(folder)
    (folder / "metrics.json").write_text('{"val/EW_F_0.50": 0.5}')
    return snapshot(folder)


def an_artifact(folder: Path) -> dict[str, str]:
    """A detector artifact's folder (``hydra.run.dir=<run>/detector``): predict.py wrote its
    submission, report and figures among the artifact's files."""
    (folder / "components" / "z").mkdir(parents=True)
    (folder / "components" / "z" / "weights.pt").write_bytes(b"weights")
    (folder / "detector.json").write_text("{}")
    return snapshot(folder)


def earlier_evaluation(folder: Path) -> dict[str, str]:
    """What evaluate.py leaves in ``folder``."""
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text("- predictions=p.csv\n")
    (folder / "evaluation.json").write_text("{}")
    (folder / "events.csv").write_text("evaluated\n")
    return snapshot(folder)


@pytest.mark.parametrize(
    "script, args, made, first",
    [
        ("predict.py", ["ckpt=nowhere"], trained_run, "metrics.json"),
        ("evaluate.py", ["predictions=nowhere.csv"], trained_run, "metrics.json"),
        ("predict.py", ["ckpt=nowhere"], earlier_evaluation, "evaluation.json"),
        ("evaluate.py", ["predictions=nowhere.csv"], earlier_prediction, "events.csv"),
        ("predict.py", ["ckpt=nowhere"], an_artifact, "detector.json"),
        ("evaluate.py", ["predictions=nowhere.csv"], an_artifact, "detector.json"),
    ],
)
def test_predict_and_evaluate_refuse_another_runs_folder_before_hydra_writes(
    tmp_path, script, args, made, first
):
    """Into a training run's folder predict.py and evaluate.py rewrote its .hydra/ (its
    overrides.yaml became `ckpt=...`, the retrain command the artifact's errors then gave) and
    appended their log; predict.py was refused only once it had scored every row, evaluate.py
    wrote its evaluation.json and events.csv there. Into each other's folder, the same .hydra/
    rewrite before the refusal."""
    folder = tmp_path / "outputs" / "run"
    before = made(folder)
    proc = run_job(script, [*args, f"hydra.run.dir={folder}"], tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    line = proc.stderr.strip().splitlines()[-1]
    # events.csv alone says why it may be an evaluation's (test_an_events_csv_alone_...)
    reason = "without the evaluation.json" if first == "events.csv" else "and no earlier "
    assert line.startswith(f"error: {folder / first}: {first} is already there {reason}"), line
    assert "hydra.run.dir" in line and "Traceback" not in proc.stderr
    assert snapshot(folder) == before


def test_predict_and_evaluate_go_on_in_a_folder_of_their_own_kind(tmp_path):
    """An earlier prediction's folder is predicted into again (its files replaced as one set),
    an earlier evaluation's evaluated into again, and a folder with only .hydra/ and a log
    (a run refused before it wrote) is used by either."""
    from esa_lightning.jobs.run_guard import refuse_other_runs_folder

    earlier_prediction(tmp_path / "p")
    earlier_evaluation(tmp_path / "e")
    (tmp_path / "r" / ".hydra").mkdir(parents=True)
    (tmp_path / "r" / "predict.log").write_text("error\n")
    refuse_other_runs_folder(tmp_path / "p", "predict")
    refuse_other_runs_folder(tmp_path / "e", "evaluate")
    for job in ("predict", "evaluate"):
        refuse_other_runs_folder(tmp_path / "r", job)
        refuse_other_runs_folder(tmp_path / "missing", job)
    earlier_run(tmp_path / "t")
    with pytest.raises(ESAInputError, match="checkpoints/ is already there and no earlier pr"):
        refuse_other_runs_folder(tmp_path / "t", "predict")


def test_a_prediction_folder_keeps_your_files_but_refuses_one_among_its_outputs(tmp_path):
    """docs/report.md (.esa_lightning-outputs.json): a file of your own beside a prediction's
    leaves the folder usable; one named as an output, or any file in alarms/ no earlier
    prediction wrote, gets the next prediction refused, naming it."""
    from esa_lightning.jobs.run_guard import refuse_other_runs_folder

    folder = tmp_path / "p"
    earlier_prediction(folder)
    (folder / "notes.txt").write_text("mine\n")
    refuse_other_runs_folder(folder, "predict")
    (folder / "alarms").mkdir()
    (folder / "alarms" / "mine.png").write_bytes(b"png")
    with pytest.raises(ESAInputError, match="alarms/mine.png is already there and no earlier pr"):
        refuse_other_runs_folder(folder, "predict")
    (folder / "alarms" / "mine.png").unlink()
    (folder / "index.html").write_text("mine\n")
    with pytest.raises(ESAInputError, match="index.html is already there and no earlier pr"):
        refuse_other_runs_folder(folder, "predict")


def test_a_prediction_killed_while_publishing_is_completed_not_refused(tmp_path):
    """A prediction killed half-way through publishing has moved some of its files in, which
    the folder's manifest does not list yet (its staged manifest does): the next prediction
    completes that publishing (run_folder.staged_outputs), so the folder is its own kind."""
    from esa_lightning.jobs.run_guard import refuse_other_runs_folder
    from esa_lightning.run_folder import MANIFEST
    from tests.helpers import dead_pid, owned_name

    out = tmp_path / "p"
    earlier_prediction(out)
    stage = out / owned_name(".tmp-", dead_pid(), "prediction.q9")
    stage.mkdir()
    (stage / "intervals.csv").write_text("new")
    (out / "index.html").write_text("new")  # moved in before the kill
    (stage / MANIFEST).write_text(json.dumps({"files": ["index.html", "intervals.csv"]}))
    refuse_other_runs_folder(out, "predict")


@pytest.mark.slow
def test_resuming_an_interrupted_sweep_trains_the_jobs_it_never_reached(small_mission_dir,
                                                                        tmp_path):
    """sweeps.md's way back into a sweep, ``-m ... hydra.sweep.dir=<it> ckpt_path=last``: a job
    the interrupted sweep never reached (no folder, or no checkpoint) failed with "no
    checkpoint to resume from", so an interrupted sweep could not be finished. It now starts
    afresh there while another job of the sweep holds a checkpoint; a sweep folder without any
    (a mistyped hydra.sweep.dir) is still refused."""
    sweep = tmp_path / "sweep"
    grid = ["-m", *FAST, f"data.root={small_mission_dir}", "seed=1,2",
            f"hydra.sweep.dir={sweep}"]
    # the sweep was interrupted before its job 1: what it left is job 0's folder (a sweep of
    # its first job alone leaves it, without training job 1 to delete it)
    assert run_train([*grid[:-2], "seed=1", grid[-1]], tmp_path).returncode == 0
    assert (sweep / "0" / "checkpoints" / "smoke" / "last.ckpt").is_file()
    assert not (sweep / "1").exists()
    proc = run_train([*grid, "ckpt_path=last"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list(pd.read_csv(sweep / "summary.csv")["status"]) == ["done", "done"]
    assert (sweep / "1" / "checkpoints" / "smoke" / "last.ckpt").is_file()
    other = tmp_path / "other"
    proc = run_train([*grid[:-1], f"hydra.sweep.dir={other}", "ckpt_path=last"], tmp_path)
    assert proc.returncode == 2 and "no checkpoint to resume from" in proc.stderr


def test_an_events_csv_alone_is_refused_without_denying_an_evaluation_wrote_it(tmp_path):
    """evaluate.py renames its events.csv in before its evaluation.json, so a folder holding
    only events.csv may be an evaluation stopped between the two renames: the refusal said "no
    earlier evaluation in this folder wrote it", which that folder contradicts."""
    from esa_lightning.jobs.run_guard import refuse_other_runs_folder

    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "events.csv").write_text("series,id\n")
    with pytest.raises(ESAInputError, match="events.csv is already there without the "
                                            "evaluation.json an evaluation writes after it") as e:
        refuse_other_runs_folder(tmp_path / "e", "evaluate")
    assert "no earlier evaluation" not in str(e.value)


def an_unlabeled_prediction(folder: Path) -> None:
    """What predict.py leaves after scoring unlabeled telemetry: no metrics.json."""
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text("- ckpt=some/detector\n- range=all\n")
    for name in ("submission.csv", "intervals.csv", "index.html"):
        (folder / name).write_text("predicted\n")


def test_training_into_an_unlabeled_prediction_is_refused_before_hydra_writes(tmp_path):
    """A prediction of unlabeled telemetry leaves no metrics.json: train.py went on in its
    folder, Hydra rewrote the prediction's .hydra/overrides.yaml (the command that made it) and
    the run put its detector among the prediction's files. train.py, merge.py and the Python
    API's train() refuse such a folder, naming its files; nothing in it changes."""
    from esa_lightning.jobs.run_guard import refuse_earlier_run, refuse_merge_folder

    folder = tmp_path / "predicted"
    an_unlabeled_prediction(folder)
    before = snapshot(folder)
    proc = run_job("train.py", ["experiment=smoke", f"hydra.run.dir={folder}"], tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert line == (f"error: {folder}: holds a prediction's or an evaluation's submission.csv, "
                    "intervals.csv, index.html: give the run a new folder (hydra.run.dir=...)")
    assert snapshot(folder) == before
    for refuse in (lambda: refuse_earlier_run(folder, None, "output_dir="),
                   lambda: refuse_earlier_run(folder, "last", "output_dir="),
                   lambda: refuse_merge_folder(folder)):
        with pytest.raises(ESAInputError, match="holds a prediction's or an evaluation's"):
            refuse()
