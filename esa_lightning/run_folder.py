"""A run's folder: one run writes into it at a time, and a prediction's outputs appear as one set.

``lock_run_folder`` holds ``.esa_lightning.lock`` in the folder with ``fcntl.flock`` (released by
the kernel when the process dies, however it dies); where ``flock`` is missing, an exclusively
created lock file naming its owner, taken over only when that owner is provably gone.

``staged_outputs`` gives a prediction a temporary folder beside its outputs. When the prediction
succeeds, the staged files replace the previous prediction's: the files that the previous one
listed in its manifest (``.esa_lightning-outputs.json``) and the new one does not write are
removed, nothing else. A prediction killed before that step leaves the previous set as it was; one
killed during it (a few renames) is completed by the next run in that folder, from the staged
manifest.

``make_run_folder`` remembers the folders it made, so that a run refused before it writes
anything of its own (``removed_if_refused``: a mission or column it cannot read, a training run
refused before a checkpoint) removes the folder it made, and nothing else.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from esa_lightning.errors import ESAInputError
from esa_lightning.io import (
    SETTINGS_LIMIT,
    atomic_path,
    make_output_folder,
    make_temporary_folder,
    owned,
    owner_gone,
    owner_tag,
    read_settings_json,
    remove_stale_temporaries,
    stale_owned,
    write_error,
    write_json_atomic,
)

try:
    import fcntl
except ImportError:  # not POSIX: the exclusive-create fallback
    fcntl = None

LOCK_NAME = ".esa_lightning.lock"
#: the files Hydra writes into a run folder's ``.hydra/`` (``keep_hydra_files``)
HYDRA_FILES = ("config.yaml", "hydra.yaml", "overrides.yaml")
#: ``.hydra/`` files of folders an earlier run wrote, as they were before this run
_hydra_before: dict[Path, dict[str, bytes | None]] = {}
#: what a refused run is told holds its folder
BUSY = "another run is writing into this folder"
#: how a refused run is told to take another folder
RUN_SETTING = "hydra.run.dir= on the command line, output_dir= from Python"
SWEEP_SETTING = "hydra.sweep.dir= on the command line"
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")
MANIFEST = ".esa_lightning-outputs.json"
STAGE_NAME = "prediction"


def run_dir_setting() -> str:
    """The setting that names a run's folder, as the user gives it: ``hydra.run.dir`` in a
    job Hydra runs (train.py), ``output_dir=`` outside one (the Python API's ``train()``)."""
    from hydra.core.hydra_config import HydraConfig

    return "hydra.run.dir" if HydraConfig.initialized() else "output_dir="


_held: dict[Path, int] = {}
#: the run folders this process made (``make_run_folder``): the top-most folder made for each
_made: dict[Path, Path] = {}


def is_launching_process() -> bool:
    """Not one of the extra processes of a distributed run (they share the launcher's folder)."""
    return not rank_settings()


def rank_settings() -> list[str]:
    """The rank variables (``RANK_VARIABLES``) above 0 in this process's environment, as
    ``NAME=value``: none on global rank 0 or outside a distributed run."""
    return [f"{name}={os.environ[name]}" for name in RANK_VARIABLES
            if os.environ.get(name, "0") not in ("", "0")]


def several_processes_started() -> str | None:
    """The setting by which another launcher than Lightning's says it started several processes
    of this run (``NAME=value``); None where it did not. torchrun sets ``WORLD_SIZE``; SLURM's
    ``srun`` sets ``SLURM_NTASKS`` and ``SLURM_PROCID`` (what Lightning's SLURMEnvironment
    reads) and ``SLURM_STEP_NUM_TASKS``. ``SLURM_NTASKS`` alone proves nothing: a batch script
    or a ``salloc`` shell holds it too, run as one process."""
    env = os.environ
    if _above(env.get("WORLD_SIZE"), 1):
        return f"WORLD_SIZE={env['WORLD_SIZE']}"
    if _above(env.get("SLURM_STEP_NUM_TASKS"), 1):  # the tasks of this srun
        return f"SLURM_STEP_NUM_TASKS={env['SLURM_STEP_NUM_TASKS']}"
    if _above(env.get("SLURM_NTASKS"), 1) and _above(env.get("SLURM_PROCID"), 0):
        return f"SLURM_NTASKS={env['SLURM_NTASKS']} (SLURM_PROCID={env['SLURM_PROCID']})"
    return None


def _above(value: str | None, bound: int) -> bool:
    return value is not None and value.isdigit() and int(value) > bound


def unshared_folder_reason(setting: str) -> str | None:
    """Why a run cannot name its own folder here: another launcher (``torchrun``, SLURM's
    ``srun``) started every process before Lightning's launcher runs
    (``several_processes_started``), and each would name a time-stamped folder of its own unless
    all are given ``setting``; None where no other launcher started several processes."""
    started = several_processes_started()
    if started is None:
        return None
    return (
        f"{started}: the processes of this run were started by another launcher than "
        f"Lightning's (torchrun, srun, a cluster) and would each name a run folder of their own; "
        f"give them all the same {setting}"
    )


def make_run_folder(folder: str | os.PathLike) -> Path:
    """Create the run folder ``folder`` and its missing parents (an ``ESAInputError`` naming it
    where it cannot be), remembering the top-most folder made for it (``removed_if_refused``)."""
    full = Path(folder).resolve()
    missing = [p for p in (full, *full.parents) if not p.exists()]
    make_output_folder(folder)
    if missing:
        _made.setdefault(full, missing[-1])
    return Path(folder)


@contextlib.contextmanager
def removed_if_refused(
    folder: str | os.PathLike, keep: bool = False, settles: bool = True,
    kept_if: Callable[[Path], object] | None = None,
) -> Iterator[None]:
    """Where the block is refused (an ``ESAInputError``) and this process made the run folder
    ``folder`` (``make_run_folder``), remove it and the parents made for it, as a run refused by
    its settings (checked before Hydra makes the folder) leaves none. A folder that was there
    before (a resume) or that Hydra made for a sweep's job (the sweep's summary reads its
    ``.hydra/``) stays, and so does every folder with ``keep`` (``debug_errors=true``) and one
    for which ``kept_if(folder)`` is true when refused (a training run's: it holds checkpoints).
    ``settles``: past the block the folder holds the run's own files; False for a block that
    only checks (a job's settings), after which a refusal still removes the folder. A refused
    run (without ``keep``) puts back the ``.hydra/`` files ``keep_hydra_files`` remembered, in a
    folder kept for its checkpoints too (a resume refused for its settings)."""
    full = Path(folder).resolve()
    try:
        yield
    except ESAInputError:
        if not keep and not (kept_if is not None and kept_if(full)):
            _remove_made(full)
        if not keep:  # a resume refused in the run's folder, its checkpoints kept, too
            _put_back_hydra_files(full)
        raise
    finally:
        if settles:
            _made.pop(full, None)
            _hydra_before.pop(full, None)


def keep_hydra_files(folder: str | os.PathLike) -> None:
    """Remember the files of ``folder/.hydra/`` (an earlier run's, in a folder this run may
    use: an earlier prediction's, a training run it resumes) before Hydra writes this run's
    there (a Hydra callback's ``on_run_start``), for ``removed_if_refused`` to put back if this
    run is refused: the earlier run's outputs stay, and so does the config that made them."""
    full = Path(folder).resolve()
    hydra = full / ".hydra"
    if not hydra.is_dir() or hydra.is_symlink():
        return
    saved: dict[str, bytes | None] = {}
    for name in HYDRA_FILES:
        path = hydra / name
        try:
            if path.is_symlink() or (path.is_file() and path.stat().st_size > SETTINGS_LIMIT):
                return  # not a file Hydra wrote: left as it is
            saved[name] = path.read_bytes() if path.is_file() else None
        except OSError:
            return
    _hydra_before[full] = saved


def _put_back_hydra_files(folder: Path) -> None:
    """``.hydra/`` as ``keep_hydra_files`` found it: its files written back, those it lacked
    (Hydra wrote them for this run) removed. Best effort: the refusal is what is reported."""
    saved = _hydra_before.pop(folder, None)
    for name, content in (saved or {}).items():
        path = folder / ".hydra" / name
        try:
            if content is None:
                if path.is_file() and not path.is_symlink():
                    path.unlink()
                continue
            with atomic_path(path) as tmp:
                tmp.write_bytes(content)
        except (OSError, ESAInputError):
            continue


def _remove_made(folder: Path) -> None:
    top = _made.pop(folder, None)
    if top is None:
        return
    root = logging.getLogger()
    for handler in list(root.handlers):  # the job's log file (Hydra's train.log) is in it
        name = getattr(handler, "baseFilename", None)
        if name and Path(name).resolve().is_relative_to(folder):
            root.removeHandler(handler)
            handler.close()
    shutil.rmtree(folder, ignore_errors=True)
    for parent in folder.parents:  # those made for it, while empty: another run may use them
        if not parent.is_relative_to(top):
            break
        try:
            parent.rmdir()
        except OSError:
            break


@contextlib.contextmanager
def lock_run_folder(
    folder: str | os.PathLike, setting: str = RUN_SETTING, advice: str | None = None,
    name: str = LOCK_NAME, busy: str = BUSY, where: str | os.PathLike | None = None,
) -> Iterator[Path]:
    """Hold ``folder`` for this process: a second run into it fails with an ``ESAInputError``
    naming the folder, the process that holds it and ``setting``, the way to give it another
    (``advice``: what to do instead, in place of "give this run its own folder (setting)").
    Re-entrant within a process (a job calling another job's writer). ``name``: the lock
    file's name in ``folder`` (another name holds something else kept there, such as a study
    of an SQLite storage: ``jobs.sweep_study``); ``busy`` and ``where``: what the refusal says
    is held, and what it names (the folder by default)."""
    advice = advice or f"give this run its own folder ({setting})"
    folder = Path(folder).resolve()
    path = folder / name
    if path in _held:
        _held[path] += 1
        try:
            yield folder
        finally:
            _held[path] -= 1
        return
    shown = folder if where is None else Path(where)
    try:
        fd = _lock_with_flock(path, advice, busy, shown) if fcntl is not None else None
        if fd is None:
            _lock_with_exclusive_file(path, advice, busy, shown)
    except OSError as exc:
        raise write_error(path, exc) from exc
    _held[path] = 1
    try:
        yield folder
    finally:
        del _held[path]
        with contextlib.suppress(OSError):
            path.unlink()  # while still held: a waiting process retries on a new file
        if fd is not None:
            os.close(fd)


def _lock_with_flock(path: Path, advice: str, busy: str, shown: Path) -> int | None:
    """The locked file's descriptor; None when the file system refuses ``flock``."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_owner(path)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise _busy(shown, holder, advice, busy) from None
            return None  # ENOLCK, EOPNOTSUPP...: the portable fallback
        try:
            same_file = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same_file = False
        if same_file:
            os.ftruncate(fd, 0)
            os.write(fd, owner_tag().encode())
            return fd
        os.close(fd)  # the previous holder removed it as we opened it: lock the new one


def _lock_with_exclusive_file(path: Path, advice: str, busy: str, shown: Path) -> None:
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            holder = _read_owner(path)
            if not owner_gone(holder):
                raise _busy(shown, holder, advice, busy) from None
            path.unlink(missing_ok=True)  # its owner is gone: take it over
            continue
        os.write(fd, owner_tag().encode())
        os.close(fd)
        return
    raise _busy(shown, _read_owner(path), advice, busy)


def _read_owner(path: Path) -> str:
    try:
        return path.read_text()[:200].strip()
    except (OSError, UnicodeDecodeError):
        return ""


def _busy(folder: Path, holder: str, advice: str, busy: str = BUSY) -> ESAInputError:
    parts = holder.split(".")
    who = f" (pid {parts[2]} on {parts[1]})" if len(parts) == 3 and parts[2].isdigit() else ""
    return ESAInputError(f"{busy}{who}; {advice}", path=folder)


@contextlib.contextmanager
def staged_outputs(out: str | os.PathLike) -> Iterator[Path]:
    """A temporary folder to write a prediction's outputs into, published into ``out`` as one
    set when the block succeeds (module docstring); on failure ``out`` is left as it was.

    Call it while holding ``lock_run_folder(out)``.
    """
    out = Path(out)
    finish_interrupted_publishing(out)
    remove_stale_temporaries(out)
    stage = make_temporary_folder(out / STAGE_NAME)
    try:
        yield stage
        _commit(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _commit(stage: Path, out: Path) -> None:
    """List the staged files in the stage's manifest (from then on the set is published even
    if this process dies), then publish them."""
    files = sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file())
    earlier = set(recorded_outputs(out))
    foreign = [rel for rel in files if rel not in earlier and (out / rel).exists()]
    if foreign:  # e.g. a training run's metrics.json: another run's file, never replaced
        raise ESAInputError(
            f"{foreign[0]} is already there and no earlier prediction in this folder wrote it: "
            f"predict into a new folder ({run_dir_setting().rstrip('=')}=...)",
            path=out / foreign[0],
        )
    write_json_atomic(stage / MANIFEST, {"files": files})
    try:
        _publish(stage, out)
    except OSError as exc:
        raise write_error(out, exc) from exc


def finish_interrupted_publishing(out: Path) -> None:
    """Complete the publishing of a prediction killed half-way (its staged manifest written)."""
    if not out.is_dir():
        return
    for stage in sorted(out.iterdir()):
        found = stale_owned(stage.name)
        if found and found["name"].startswith(STAGE_NAME + ".") and (stage / MANIFEST).is_file():
            _publish(stage, out)


def publishing_outputs(out: Path) -> list[str]:
    """The files the staged manifests in ``out`` list: a prediction's set, being published or
    left half-published by a killed run (``finish_interrupted_publishing`` completes it)."""
    if not out.is_dir():
        return []
    return [
        rel
        for stage in sorted(out.iterdir())
        if (found := owned(stage.name)) and found["name"].startswith(STAGE_NAME + ".")
        for rel in recorded_outputs(stage)
    ]


def _publish(stage: Path, out: Path) -> None:
    """Move the staged set into ``out``, then drop the files only the previous set had.

    Idempotent: run again after an interruption, it completes the same set.
    """
    new = recorded_outputs(stage)
    for rel in new:
        source = stage / rel
        if source.is_file():
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, out / rel)
    for rel in sorted(set(recorded_outputs(out)) - set(new)):
        target = out / rel
        if target.is_file() and not target.is_symlink():
            target.unlink()
        _remove_empty_parents(target.parent, out)
    os.replace(stage / MANIFEST, out / MANIFEST)
    shutil.rmtree(stage, ignore_errors=True)


def recorded_outputs(folder: Path) -> list[str]:
    """The files the manifest in ``folder`` lists: relative paths inside ``folder`` only."""
    try:
        listed = read_settings_json(folder / MANIFEST).get("files", [])
    except ESAInputError:
        raise  # over the size bound, or no file: refused naming it
    except (OSError, ValueError, AttributeError, RecursionError):
        return []
    root = folder.resolve()
    return [
        rel
        for rel in (listed if isinstance(listed, list) else [])
        if isinstance(rel, str)
        and rel
        and not Path(rel).is_absolute()
        and ".." not in Path(rel).parts
        and (folder / rel).resolve().is_relative_to(root)
    ]


def _remove_empty_parents(folder: Path, out: Path) -> None:
    while folder != out and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent
