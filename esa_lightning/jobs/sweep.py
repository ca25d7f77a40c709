"""Hydra multirun support: a summary of all jobs, and the refusal of multirun with devices > 1.

Lightning starts extra DDP processes by re-running the command line; under ``-m`` that command is
the whole sweep, so every child would run every job. Multirun jobs therefore train on one device
each; run a multi-device job without ``-m`` (or launch jobs on a cluster with the submitit
launcher, where each job is its own process).
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from esa_lightning.errors import ESAInputError
from esa_lightning.io import atomic_path, read_settings_json, read_settings_text

log = logging.getLogger("esa_lightning")


def in_local_multirun() -> bool:
    """True inside a job of a ``-m`` sweep run by the basic (in-process) launcher."""
    if not HydraConfig.initialized():
        return False
    hc = HydraConfig.get()
    launcher = str(hc.launcher.get("_target_", ""))
    return hc.mode == RunMode.MULTIRUN and "basic_launcher" in launcher


def hydra_task_overrides() -> list[str]:
    """The command line's overrides of this Hydra job (in a ``-m`` sweep: the job's own
    values), as typed (``model.lr=${my_lr}`` not resolved); none outside Hydra (a config
    composed in Python). Here, not in ``jobs.common``, as ``fail_job`` names them too and
    ``jobs.common`` imports this module."""
    if not HydraConfig.initialized():
        return []
    return list(OmegaConf.to_container(HydraConfig.get().overrides.task, resolve=False))


def asks_for_several_devices(trainer_cfg: DictConfig) -> bool:
    """The trainer settings may run more than one process (``auto`` devices counted as more)."""
    devices = trainer_cfg.get("devices", 1)
    if isinstance(devices, str):  # as Lightning reads it: "auto", a count, or "0,1" indices
        text = devices.strip()
        if "," in text:
            devices = [part for part in text.split(",") if part.strip()]
        elif text.lstrip("-").isdigit():
            devices = int(text)
    many = devices == -1 or devices == "auto" or (
        isinstance(devices, int) and devices > 1
    ) or (not isinstance(devices, int | str) and len(devices) > 1)
    return many or trainer_cfg.get("num_nodes", 1) > 1


def multidevice_multirun_error(trainer_cfg: DictConfig) -> ESAInputError:
    """The refusal of a job of a local ``-m`` sweep that asks for several devices; the sweep's
    check of its jobs before it starts (``cli.overrides``) raises it too. It names the setting
    that asks for them: ``trainer.devices``, or ``trainer.num_nodes`` where the devices are
    one."""
    nodes_only = not asks_for_several_devices(OmegaConf.create(
        {"devices": trainer_cfg.get("devices", 1)}))
    key = "num_nodes" if nodes_only else "devices"
    return ESAInputError(
        "multirun (-m) with more than one device is refused: Lightning would re-run the "
        f"whole sweep in every DDP process. Sweep with trainer.{key}=1, or run each "
        "multi-device job without -m (or with the submitit launcher)",
        column=f"trainer.{key}",
        value=trainer_cfg.get(key, 1),
    )


def refuse_multidevice_multirun(trainer_cfg: DictConfig) -> None:
    if in_local_multirun() and asks_for_several_devices(trainer_cfg):
        raise multidevice_multirun_error(trainer_cfg)


# the jobs of this process's local sweep that stopped on an input error: job number -> error
_FAILED_JOBS: dict[int, str] = {}


def fail_job(exc: Exception) -> None:
    """Record and print, in one line, the input error a job of a local ``-m`` sweep stopped on.
    The job then returns normally, so the sweep goes on with its next job (``SystemExit`` would
    end it there, an exception Hydra only reports once all jobs ran, with its own lines);
    ``summary.csv`` shows it as failed and ``exit_if_jobs_failed`` ends the sweep with exit 2.
    The job's own log (``train.log`` in its folder) holds the same line."""
    hc = HydraConfig.get()
    line = f"error: sweep job {hc.job.num} ({' '.join(hydra_task_overrides())}): {exc}"
    print(line, file=sys.stderr)
    log_to_files(line)  # the job's folder says why it has no metrics
    _FAILED_JOBS[int(hc.job.num)] = " ".join(str(exc).split())


def log_to_files(
    message: str, exc: BaseException | None = None, level: int = logging.ERROR
) -> None:
    """Log ``message`` (an error unless ``level``) to the log files only (Hydra's
    ``<job>.log``): the console has it already, or gets it from Hydra. ``exc``: an exception
    whose traceback follows it. A file handler set above ``level`` does not get it."""
    exc_info = None if exc is None else (type(exc), exc, exc.__traceback__)
    record = log.makeRecord(log.name, level, __file__, 0, message, None, exc_info)
    for handler in logging.getLogger().handlers:
        # a run folder removed as refused (run_folder.removed_if_refused) is not made again
        if (isinstance(handler, logging.FileHandler) and level >= handler.level
                and Path(handler.baseFilename).parent.is_dir()):
            handler.handle(record)


def exit_if_jobs_failed() -> None:
    """After a local ``-m`` sweep: exit 2 with one line if any of its jobs failed."""
    if _FAILED_JOBS:
        jobs = ", ".join(str(n) for n in sorted(_FAILED_JOBS))
        print(f"error: {len(_FAILED_JOBS)} sweep job(s) failed (job {jobs}): their errors are "
              "above and in summary.csv", file=sys.stderr)
        raise SystemExit(2)


class SweepSummary(Callback):
    """Writes ``summary.csv`` in the sweep folder: overrides, final metrics and status of every
    job, after each job and at the end.

    With Hydra's local launcher the rows are this sweep's jobs (a job folder left by an earlier
    sweep into the same folder is no row of it), each read in the folder it ran in (its
    ``hydra.sweep.subdir``: ``seed_${seed}`` as well as the job's number), and a failed job's
    status is ``failed: <error>``; with a cluster launcher, every job folder named by a number
    found at the end."""

    def __init__(self) -> None:
        self._jobs: dict[int, str | None] = {}  # job number: its error, None when it has none
        self._folders: dict[int, Path] = {}  # job number: the folder it ran in
        self._tags: dict[int, str] = {}  # job number: its tags, as the job resolved them
        self._earlier: dict[Path, bytes] = {}  # an earlier sweep's record in the sweep folder

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._jobs = {}
        self._folders = {}
        self._tags = {}
        _FAILED_JOBS.clear()
        sweep_dir = OmegaConf.select(config, "hydra.sweep.dir", default=None)
        self._earlier = {} if sweep_dir is None else earlier_sweep_record(Path(str(sweep_dir)))

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if not in_local_multirun():
            return
        number = int(config.hydra.job.num)
        error = _FAILED_JOBS.get(number)
        if job_return.status == JobStatus.FAILED:  # an error that is not the user's input
            crash = job_return._return_value
            error = " ".join(str(crash).split()) or "error"
            if isinstance(crash, BaseException):  # the job's log says why it has no metrics
                log_to_files(f"sweep job {number} crashed: {error}", crash)
        self._jobs[number] = error
        tags = job_return_tags(job_return)
        if tags is not None:
            self._tags[number] = tags
        folder = OmegaConf.select(config, "hydra.runtime.output_dir")
        if folder:
            self._folders[number] = Path(str(folder))
        self.write(Path(config.hydra.sweep.dir))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if self._earlier and self._jobs and all(e is not None for e in self._jobs.values()):
            # every job refused (a resume with settings its checkpoints were not trained
            # with): the earlier sweep's summary.csv and multirun.yaml stay its record
            for path, content in self._earlier.items():
                with atomic_path(path) as tmp:
                    tmp.write_bytes(content)
            log.info("every job failed: %s left as the earlier sweep wrote it",
                     sweep_dir / "summary.csv")
            return
        rows = self.write(sweep_dir)
        log.info("sweep summary of %d jobs: %s", rows, sweep_dir / "summary.csv")

    def write(self, sweep_dir: Path) -> int:
        """Write ``summary.csv`` of the jobs so far (after each job, so that a sweep stopped
        midway has one); the number of jobs it lists."""
        if self._jobs:
            numbers = sorted(self._jobs)
        else:
            numbers = sorted(int(p.name) for p in sweep_dir.iterdir()
                             if p.is_dir() and p.name.isdigit())
        rows = []
        for number in numbers:
            job = self._folders.get(number, sweep_dir / str(number))
            row: dict[str, Any] = {"job": number}
            overrides = job / ".hydra" / "overrides.yaml"
            if overrides.is_file():
                row["overrides"] = " ".join(
                    line.strip("- \n") for line in read_settings_text(overrides).splitlines()
                )
            tags = self._tags.get(number)
            if tags is None:  # a cluster launcher's job: as its folder's saved config holds them
                tags = job_tags(job)
            if tags:
                row["tags"] = tags
            error = self._jobs.get(number)
            metrics = job / "metrics.json"
            if error is None and metrics.is_file():
                row.update(read_settings_json(metrics))
            row["status"] = (
                f"failed: {error}" if error is not None
                else "done" if metrics.is_file() else "no metrics"
            )
            rows.append(row)
        if any("tags" in row for row in rows):  # a column where some job has tags
            for row in rows:
                row.setdefault("tags", "")
        frame = pd.DataFrame(rows, columns=None if rows else ["job", "status"])
        frame = frame[[c for c in frame.columns if c != "status"] + ["status"]].sort_values("job")
        sweep_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(sweep_dir / "summary.csv") as tmp:
            frame.to_csv(tmp, index=False)
        return len(rows)


#: what a sweep writes at the top of its folder, Hydra's multirun.yaml and summary.csv
SWEEP_RECORD = ("multirun.yaml", "summary.csv")


def earlier_sweep_record(sweep_dir: Path) -> dict[Path, bytes]:
    """An earlier sweep's ``summary.csv`` and ``multirun.yaml`` in ``sweep_dir`` (none without
    its ``summary.csv``), read before this sweep rewrites them, for ``SweepSummary`` to put back
    where every job of this one fails. Files that cannot be read, or are not plain files, are
    left out."""
    record = {}
    if not (sweep_dir / "summary.csv").is_file():
        return record
    for name in SWEEP_RECORD:
        path = sweep_dir / name
        try:
            if path.is_file() and not path.is_symlink():
                record[path] = path.read_bytes()
        except OSError:
            continue
    return record


def job_return_tags(job_return: JobReturn) -> str | None:
    """The ``tags`` of a job of a local sweep, joined by commas (``settings.values.tags_text``),
    resolved as the job resolved them: its config (``job_return.cfg``) keeps the values its
    resolvers gave (Hydra's ``${now:...}`` is cached per config, so the job's time, the one its
    TensorBoard run shows) and the job's Hydra config is still set (``${hydra:job.num}``).
    None where the job has no config or its tags do not resolve to labels (the saved config's
    are shown: ``job_tags``)."""
    from esa_lightning.settings.values import tags_ok, tags_text

    cfg = getattr(job_return, "cfg", None)
    if not isinstance(cfg, DictConfig) or "tags" not in cfg:
        return None
    try:
        value = cfg.tags
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True, throw_on_missing=True)
    except Exception:  # noqa: BLE001 - tags that do not resolve: the saved config's, as written
        return None
    return tags_text(value) if tags_ok(value) else None


def job_tags(job: Path) -> str:
    """The ``tags`` of the job run in folder ``job``, as its saved config (``.hydra/config.yaml``,
    saved unresolved) holds them, interpolations (``tags=${x}``) resolved against that config,
    joined by commas (``settings.values.tags_text``); empty without any. Tags it cannot resolve
    are shown as written."""
    import yaml

    from esa_lightning.settings.values import tags_ok, tags_text

    saved = job / ".hydra" / "config.yaml"
    if not saved.is_file():
        return ""
    try:
        config = yaml.safe_load(read_settings_text(saved)) or {}
        tags = config.get("tags")
    except (yaml.YAMLError, AttributeError, ValueError, OSError):
        return ""
    return tags_text(resolved_tags(config, tags)) if tags_ok(tags) else ""


def resolved_tags(config: dict, tags: Any) -> Any:
    """``tags`` (the value of ``config``'s key) with their interpolations of other keys resolved
    against ``config``; ``tags`` as they are where any fails, resolves to no labels or calls a
    resolver (``${hydra:...}``, ``${now:...}``: a value of the summary's time, not the job's)."""
    from omegaconf import OmegaConf

    from esa_lightning.settings.values import tags_ok

    if "${" not in str(tags):
        return tags
    try:
        node = OmegaConf.create(without_resolver_calls(config))
        value = OmegaConf.select(node, "tags", throw_on_missing=True)
        if OmegaConf.is_config(value):
            value = OmegaConf.to_container(value, resolve=True, throw_on_missing=True)
    except Exception:  # noqa: BLE001 - any failure to resolve keeps the tags as written
        return tags
    return value if tags_ok(value) else tags


_RESOLVER_CALL = re.compile(r"\$\{\s*[\w.-]+\s*:")


def without_resolver_calls(value: Any) -> Any:
    """``value`` (plain YAML data) with every string that calls a resolver made missing
    (``???``), so that what interpolates it cannot resolve."""
    if isinstance(value, dict):
        return {k: without_resolver_calls(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_resolver_calls(v) for v in value]
    return "???" if isinstance(value, str) and _RESOLVER_CALL.search(value) else value
