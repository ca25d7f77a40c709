"""A new training run never writes into a folder that holds an earlier run's outputs.

Lightning only warns about a checkpoint folder that is not empty: a second run into the same
``hydra.run.dir`` wrote ``last-v1.ckpt`` beside the first run's ``last.ckpt`` and replaced its
``detector/`` and ``metrics.json``, and resuming that folder then restored the first run's
``last.ckpt``. ``refuse_earlier_run`` refuses such a run (no ``ckpt_path``) with one line naming
the folder and the two ways out; a resume (``ckpt_path=...``) goes on in it. A folder that is
empty or holds only ``.hydra/`` and the log of a run refused before it trained stays usable.

``RefuseEarlierRun`` (``train.yaml``'s ``hydra.callbacks.earlier_run``) checks before Hydra
writes ``.hydra/`` and the log into the folder: a run's folder (``hydra.run.dir``) and, for a
``-m`` sweep, the job folders of its ``hydra.sweep.dir`` (a sweep rerun into an earlier sweep's
folder would rewrite their ``.hydra/`` and the earlier ``summary.csv``). ``train()`` checks
again (the Python API, a job folder a sweep's own jobs share), as a sweep job's input error.

``RefuseOtherRuns`` does the same for ``predict.py`` and ``evaluate.py``
(``refuse_other_runs_folder``): a folder holding another job's outputs (a training run's, a
prediction's for evaluate.py, an evaluation's for predict.py) is refused before Hydra rewrites
its ``.hydra/`` (a training run's ``overrides.yaml`` is the retrain command its artifact's errors
give); a folder of an earlier run of the same job is used again. The jobs check again (the
Python API) before they read anything.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from esa_lightning.errors import ESAInputError
from esa_lightning.run_folder import (
    MANIFEST,
    is_launching_process,
    keep_hydra_files,
    publishing_outputs,
    recorded_outputs,
    run_dir_setting,
)

#: what a run that trained leaves in its folder (README, "What a run leaves")
FOLDERS_WRITTEN = ("checkpoints", "tensorboard")
OUTPUTS = ("detector", "metrics.json")


def earlier_outputs(folder: str | Path) -> list[str]:
    """The outputs of an earlier run that ``folder`` holds: ``detector``, ``metrics.json``, and
    ``checkpoints/`` or ``tensorboard/`` holding a file."""
    folder = Path(folder)
    found = [name for name in OUTPUTS if (folder / name).exists()]
    for name in FOLDERS_WRITTEN:
        if (folder / name).is_dir() and any(p.is_file() for p in (folder / name).rglob("*")):
            found.append(f"{name}/")
    return found


def refuse_artifact_folder(folder: str | Path, setting: str | None = None) -> None:
    """Refuse a run folder that is a detector artifact (a folder holding ``detector.json``) or
    lies inside one (``<run>/detector/sub``): the run would write among the artifact's files.
    Every command checks it (train.py, merge.py, predict.py, evaluate.py). The message names
    ``setting`` (``hydra.run.dir`` or ``output_dir=``), by default ``run_dir_setting()``'s."""
    setting = (setting or run_dir_setting()).rstrip("=")
    folder = Path(folder)
    full = folder.resolve()
    for place in (full, *full.parents):
        if (place / "detector.json").is_file():
            where = "is" if place == full else "is inside"
            raise ESAInputError(
                f"{where} the detector artifact {place} (it holds detector.json): a run writes "
                f"nothing into an artifact; give it a folder outside it ({setting}=...)",
                path=folder,
            )


def refuse_earlier_run(folder: str | Path, ckpt_path: Any, setting: str | None = None) -> None:
    """Refuse a new run (no ``ckpt_path``) into ``folder`` when it holds an earlier run's
    outputs: it would mix its checkpoints with them and replace its detector. The message names
    ``setting``, by default ``hydra.run.dir`` in a job Hydra runs (train.py) and ``output_dir=``
    outside one (the Python API's ``train()``). Any run into an artifact is refused
    (``refuse_artifact_folder``)."""
    setting = setting or run_dir_setting()
    refuse_artifact_folder(folder, setting)
    refuse_prediction_folder(folder, setting)
    if ckpt_path:
        return
    found = earlier_outputs(folder)
    if found:
        raise ESAInputError(
            f"holds an earlier run's {', '.join(found)}: train into another folder "
            f"(another {setting}), or resume that run with ckpt_path=last",
            path=folder,
        )


#: how deep below a sweep folder an earlier sweep's job folders are looked for (a nested
#: ``hydra.sweep.subdir``: ``seed/${seed}`` puts them two deep)
SWEEP_JOB_DEPTH = 4


def refuse_earlier_sweep(sweep_dir: str | Path, ckpt_path: Any) -> None:
    """Refuse a ``-m`` sweep (no ``ckpt_path``) into a folder where an earlier sweep's job
    trained, naming the first such job folder (up to ``SWEEP_JOB_DEPTH`` deep: a nested
    ``hydra.sweep.subdir``), and any sweep into a detector artifact."""
    sweep_dir = Path(sweep_dir)
    refuse_artifact_folder(sweep_dir, "hydra.sweep.dir")
    if ckpt_path or not sweep_dir.is_dir():
        return
    for job in _folders_below(sweep_dir, SWEEP_JOB_DEPTH):
        found = earlier_outputs(job)
        if found:
            raise ESAInputError(
                f"holds an earlier sweep's job {job.relative_to(sweep_dir).as_posix()} "
                f"({', '.join(found)}): sweep into another folder (another hydra.sweep.dir), or "
                "resume that sweep with ckpt_path=last",
                path=sweep_dir,
            )


def _folders_below(folder: Path, depth: int) -> list[Path]:
    """The folders below ``folder``, ``depth`` levels at most, each level sorted; not those a
    run writes (``.hydra``, ``checkpoints``...) nor those a link leads to."""
    skipped = {".hydra", *FOLDERS_WRITTEN, *OUTPUTS}
    found, level = [], [folder]
    for _ in range(depth):
        below = []
        for parent in level:
            try:
                children = sorted(parent.iterdir())
            except OSError:  # unreadable: no job of ours trained there
                continue
            below += [p for p in children
                      if p.is_dir() and not p.is_symlink() and p.name not in skipped]
        found += below
        level = below
    return found


#: the files predict.py writes into its folder, besides alarms/*.png (README, "What a run leaves")
PREDICT_FILES = ("submission.csv", "intervals.csv", "report.csv", "index.html", "metrics.json",
                 "events.csv")
_WORDS = {"predict": ("prediction", "predict"), "evaluate": ("evaluation", "evaluate")}


def other_runs_outputs(folder: str | Path, job: str) -> list[str]:
    """The outputs in ``folder`` that no earlier run of ``job`` (``predict``, ``evaluate``)
    wrote: a training run's (``earlier_outputs``), a detector artifact (its folder), and for
    predict.py any file it writes that the folder's prediction manifest does not list, for
    evaluate.py a prediction's files (its manifest) and an ``events.csv`` without
    ``evaluation.json``."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = earlier_outputs(folder)
    if (folder / "detector.json").exists():  # a detector artifact's own folder
        found.insert(0, "detector.json")
    if job == "predict":
        alarms = sorted(f"alarms/{p.name}" for p in (folder / "alarms").glob("*") if p.is_file())
        names = ["evaluation.json", *PREDICT_FILES]
        found += [n for n in names if (folder / n).exists() and n not in found] + alarms
        ours = {*recorded_outputs(folder), *publishing_outputs(folder)}  # a killed publishing's too
        return [n for n in found if n not in ours]
    ours = (folder / "evaluation.json").is_file()
    if (folder / "events.csv").exists() and not ours:
        found.insert(0, "events.csv")
    if (folder / MANIFEST).exists():
        found += [n for n in [*recorded_outputs(folder), MANIFEST] if n not in found]
    return found


def prediction_outputs(folder: str | Path) -> list[str]:
    """The files of a prediction or an evaluation that ``folder`` holds (``PREDICT_FILES`` but
    ``metrics.json``, which a training run writes too; ``evaluation.json``)."""
    names = [n for n in PREDICT_FILES if n != "metrics.json"] + ["evaluation.json"]
    return [n for n in names if (Path(folder) / n).exists()]


def refuse_prediction_folder(folder: str | Path, setting: str) -> None:
    """Refuse to train or merge into a folder holding a prediction's or an evaluation's files
    (``prediction_outputs``): Hydra would rewrite that run's ``.hydra/`` and the run mix its
    detector among them; no training run's folder holds them (predict.py and evaluate.py
    refuse a training run's)."""
    found = prediction_outputs(folder)
    if found:
        raise ESAInputError(
            f"holds a prediction's or an evaluation's {', '.join(found)}: give the run a new "
            f"folder ({setting.rstrip('=')}=...)",
            path=folder,
        )


def refuse_other_runs_folder(folder: str | Path, job: str, setting: str | None = None) -> None:
    """Refuse to run ``job`` (``predict``, ``evaluate``) into ``folder`` when it holds another
    run's outputs (``other_runs_outputs``), naming the first, or lies inside a detector
    artifact (``refuse_artifact_folder``; the artifact's own folder is named by its
    ``detector.json`` here). The message names ``setting``, by default ``run_dir_setting()``'s
    (``output_dir=`` through the Python API); a Hydra callback passes ``hydra.run.dir``, as
    Hydra has not set its config yet there."""
    setting = (setting or run_dir_setting()).rstrip("=")
    found = other_runs_outputs(folder, job)
    if not found:
        refuse_artifact_folder(folder, setting)
    if found:
        noun, verb = _WORDS[job]
        # evaluate.py renames its events.csv in before its evaluation.json: one alone may be
        # an evaluation stopped between the two, which "no earlier evaluation wrote" denied
        why = ("without the evaluation.json an evaluation writes after it (a prediction's, "
               "another tool's, or an evaluation stopped before its end)"
               if job == "evaluate" and found[0] == "events.csv"
               else f"and no earlier {noun} in this folder wrote it")
        raise ESAInputError(
            f"{found[0]} is already there {why}: {verb} into a new folder ({setting}=...)",
            path=Path(folder) / found[0],
        )


class RefuseOtherRuns(Callback):
    """``refuse_other_runs_folder`` before Hydra writes into the run folder of ``job``
    (predict.yaml's and evaluate.yaml's ``hydra.callbacks.other_runs``): one line, exit 2."""

    def __init__(self, job: str) -> None:
        self.job = job

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if is_launching_process():
            _exit_if_refused(
                lambda folder, _: refuse_other_runs_folder(folder, self.job, "hydra.run.dir"),
                config, "hydra.run.dir",
            )


def refuse_merge_folder(folder: str | Path, _ckpt_path: Any = None) -> None:
    """Refuse to merge into a folder holding a detector or metrics (a source's own run folder:
    they would be replaced), or a detector artifact or a folder inside one."""
    refuse_artifact_folder(folder, "hydra.run.dir")  # merge.py, a Hydra job only
    refuse_prediction_folder(folder, "hydra.run.dir")
    taken = [name for name in ("detector", "metrics.json") if (Path(folder) / name).exists()]
    if taken:
        raise ESAInputError(
            f"the run folder already holds {' and '.join(taken)} (another run's): merge into a "
            "new folder (hydra.run.dir=...)",
            path=Path(folder),
        )


class RefuseTakenFolder(Callback):
    """``refuse_merge_folder`` before Hydra writes into merge.py's run folder (merge.yaml's
    ``hydra.callbacks.taken_folder``): Hydra rewrote a training run's ``.hydra/`` (its
    ``overrides.yaml``, the retrain command) before the job refused the folder."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if is_launching_process():
            _exit_if_refused(refuse_merge_folder, config, "hydra.run.dir")


class RefuseEarlierRun(Callback):
    """``refuse_earlier_run`` before Hydra writes into the run folder, ``refuse_earlier_sweep``
    before it writes into the sweep folder: one line, exit code 2, nothing written."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if is_launching_process():  # a DDP rank Lightning started shares its launcher's folder
            _exit_if_refused(lambda folder, ckpt: refuse_earlier_run(folder, ckpt, "hydra.run.dir"),
                             config, "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _exit_if_refused(refuse_earlier_sweep, config, "hydra.sweep.dir")
        # a sweep resumed there (ckpt_path=last): Hydra rewrites each job's .hydra/ before the
        # job starts, and a job refused (its settings) puts the earlier one back
        try:
            sweep_dir = Path(str(OmegaConf.select(config, "hydra.sweep.dir")))
        except Exception:  # noqa: BLE001 - a folder known only later, as _exit_if_refused says
            return
        if sweep_dir.is_dir():
            for job in _folders_below(sweep_dir, SWEEP_JOB_DEPTH):
                keep_hydra_files(job)


def _exit_if_refused(check: Callable[[Path, Any], None], config: DictConfig, key: str) -> None:
    """``check(folder, ckpt_path)`` of the folder ``key`` names: refused, one line and exit 2.
    A run folder it lets the run use (an earlier run's, which the run goes on or replaces) has
    its ``.hydra/``, which Hydra rewrites next, remembered for a refused run to put back
    (``run_folder.keep_hydra_files``)."""
    try:
        folder = Path(str(OmegaConf.select(config, key)))
    except Exception:  # noqa: BLE001 - a folder known only later: train() checks it then
        return
    try:
        check(folder, OmegaConf.select(config, "ckpt_path", default=None))
    except ESAInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if key == "hydra.run.dir":
        keep_hydra_files(folder)
