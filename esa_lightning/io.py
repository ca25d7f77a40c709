"""Atomic writes: nothing half-written (the caches' keys: ``esa_lightning.data.readers.digests``).

Every temporary this project writes is named ``.tmp-esa_lightning.<host>.<pid>.<name>.<random>``
(a replaced folder's backup ``.old-esa_lightning.<host>.<pid>.<name>``): the marker and the owning
process make a leftover provably ours and provably stale (its process is gone), so cleanup never
touches another program's files nor a live writer's.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import socket
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from esa_lightning.errors import ESAInputError

TMP_PREFIX = ".tmp-"
OLD_PREFIX = ".old-"
OWNER_MARK = "esa_lightning"
_OWNED = re.compile(
    rf"^(?P<kind>{re.escape(TMP_PREFIX)}|{re.escape(OLD_PREFIX)}){OWNER_MARK}"
    r"\.(?P<host>[A-Za-z0-9_-]+)\.(?P<pid>[0-9]+)\.(?P<name>.+)$"
)


def _host() -> str:
    """This machine's name as it appears in temporaries' names (letters, digits, ``-``, ``_``)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:40] or "host"


def owner_tag() -> str:
    """``esa_lightning.<host>.<pid>``: who wrote a temporary."""
    return f"{OWNER_MARK}.{_host()}.{os.getpid()}"


def temporary_prefix(name: str) -> str:
    """Prefix of this process's temporaries for the entry ``name`` (a random suffix follows)."""
    return f"{TMP_PREFIX}{owner_tag()}.{name[:80]}."


def make_temporary_folder(beside: str | os.PathLike) -> Path:
    """A new empty folder of this process next to ``beside``, mode as the umask says; one that
    cannot be made (a file in the way, a read-only folder) is an ``ESAInputError`` naming
    ``beside``."""
    beside = Path(beside)
    try:
        beside.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=temporary_prefix(beside.name), dir=beside.parent))
    except OSError as exc:
        raise write_error(beside, exc) from exc
    follow_umask(tmp)
    return tmp


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine runs; True when it cannot be told (not POSIX)."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # e.g. another user's process
    return True


def owner_gone(tag: str) -> bool:
    """Whether the process an ``owner_tag`` names ran on this machine and has ended."""
    parts = tag.split(".")
    if len(parts) != 3 or parts[0] != OWNER_MARK or parts[1] != _host() or not parts[2].isdigit():
        return False
    pid = int(parts[2])
    return pid != os.getpid() and not process_alive(pid)


def owned(name: str) -> re.Match | None:
    """The parts (``kind``, ``host``, ``pid``, ``name``) of ``name`` when it is this project's
    temporary or backup, whoever wrote it; None for anything else."""
    return _OWNED.match(name)


def stale_owned(name: str) -> re.Match | None:
    """The parts of ``name`` when it is this project's temporary (or backup) left by a process
    of this machine that is gone; None for anything else (another program's file, a live
    writer's temporary, one of another machine sharing the folder)."""
    found = _OWNED.match(name)
    if found is None or not owner_gone(f"{OWNER_MARK}.{found['host']}.{found['pid']}"):
        return None
    return found


#: the errno texts a user reads plainly in ``write_error``'s message
_PLAIN_REASONS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "read-only file system",
    errno.EISDIR: "a folder is in the way",
}


def write_error(path: str | os.PathLike, exc: OSError) -> ESAInputError:
    """An ``OSError`` of a write (disk full, read-only folder...) as a one-line user error:
    ``<path>: cannot write (<reason>)``, the reason in plain words where there are some (a file
    in the way of a folder, named when it is one of ``path``'s parents; permission denied),
    else the system's text (``No space left on device``)."""
    reason = _PLAIN_REASONS.get(exc.errno) if exc.errno is not None else None
    if exc.errno in (errno.EEXIST, errno.ENOTDIR):
        blocker = _file_in_the_way(Path(path))
        if blocker is not None:
            reason = "a file is in the way" + ("" if blocker == Path(path) else f": {blocker}")
    reason = reason or exc.strerror or str(exc) or type(exc).__name__
    return ESAInputError(f"cannot write ({reason})", path=path)


def _file_in_the_way(path: Path) -> Path | None:
    """The nearest of ``path`` and its parents that exists, when it is no folder; else None."""
    for place in (path, *path.parents):
        if place.exists() or place.is_symlink():
            return None if place.is_dir() else place
    return None


def make_output_folder(path: str | os.PathLike) -> Path:
    """Create a run's output folder; a failure (a file in the way, no permission, a full disk)
    becomes an ``ESAInputError`` naming the path."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(path, exc) from exc
    return path


def current_umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def follow_umask(path: str | os.PathLike) -> None:
    """Give ``path`` the mode a plain ``open``/``mkdir`` would under the user's umask:
    ``mkstemp``/``mkdtemp`` create owner-only entries, which a renamed temporary keeps."""
    full = 0o777 if Path(path).is_dir() else 0o666
    os.chmod(path, full & ~current_umask())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; renamed onto ``path`` if the block succeeds.

    A failed write (an ``OSError`` such as a full disk) leaves ``path`` as it was and becomes an
    ``ESAInputError`` naming ``path``.
    """
    path = Path(path)
    tmp_path: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=temporary_prefix(path.name), dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        follow_umask(tmp_path)
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as exc:
        raise write_error(path, exc) from exc
    finally:
        if tmp_path is not None and tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_folder(
    path: str | os.PathLike, keep: Callable[[Path], bool] | None = None
) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``, renamed onto ``path`` if the block succeeds.

    For multi-file entries (caches): readers see the whole folder or nothing. An existing
    ``path`` is replaced (kept as a backup until the new one is in place, ``replace_folder``),
    except where ``keep(path)`` says it is complete: then another writer (another process
    building the same cache entry) finished first, its folder stays, and the temporary one is
    dropped (``publish_folder``), so a complete entry is never taken away from its readers.
    ``OSError`` becomes an ``ESAInputError`` naming ``path``.
    """
    path = Path(path)
    tmp: Path | None = None
    try:
        tmp = make_temporary_folder(path)
        yield tmp
        if keep is None:
            replace_folder(tmp, path)
        else:
            publish_folder(tmp, path, keep)
    except OSError as exc:
        raise write_error(path, exc) from exc
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def new_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``, renamed to ``path`` if the block succeeds.

    For outputs the caller has checked to be new or empty (converted missions): an empty
    ``path`` is removed first, and one that gained an entry since makes the rename fail, so
    nothing of the user's is replaced (``atomic_folder`` replaces). ``OSError`` becomes an
    ``ESAInputError`` naming ``path``; the temporary folder never outlives a failure, and those
    of killed writers beside ``path`` go first (``remove_stale_temporaries``).
    """
    path = Path(path)
    tmp: Path | None = None
    remove_stale_temporaries(path.parent)
    try:
        tmp = make_temporary_folder(path)
        yield tmp
        if path.exists():
            path.rmdir()
        os.rename(tmp, path)
    except OSError as exc:
        raise write_error(path, exc) from exc
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def publish_folder(new: Path, path: Path, keep: Callable[[Path], bool]) -> bool:
    """Rename folder ``new`` to ``path`` unless a ``path`` that ``keep`` accepts is there;
    whether ``new`` was renamed. A missing ``path`` is taken by one atomic rename (of writers
    racing for it, the first wins and the others find its folder there); one that ``keep``
    refuses (damaged) is replaced (``replace_folder``)."""
    for _ in range(3):  # a damaged entry replaced by another writer meanwhile: look again
        if not os.path.lexists(path):
            try:
                os.rename(new, path)
                return True
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                    raise
        if keep(path):
            return False
        try:
            replace_folder(new, path)
            return True
        except OSError as exc:  # another writer moved ``path`` away or put its own there
            if exc.errno not in (errno.ENOENT, errno.ENOTEMPTY, errno.EEXIST):
                raise
    replace_folder(new, path)
    return True


def replace_folder(new: Path, path: Path) -> None:
    """Rename folder ``new`` onto ``path``; the previous ``path`` survives any interruption.

    The old folder is first renamed to ``.old-esa_lightning.<host>.<pid>.<name>``; if the process
    dies before the new one is in place, ``remove_stale_temporaries`` renames it back.
    """
    old = path.with_name(f"{OLD_PREFIX}{owner_tag()}.{path.name}")
    if old.exists():
        shutil.rmtree(old)
    if path.exists():
        path.rename(old)
    try:
        new.rename(path)
    except OSError:
        if old.exists() and not path.exists():
            old.rename(path)
        raise
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def json_text(obj: Any) -> str:
    """``obj`` as ``write_json_atomic`` writes it (indented, sorted keys, numpy values plain)."""
    return json.dumps(obj, indent=2, sort_keys=True, default=_json_default)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    return write_text_atomic(path, json_text(obj))


def as_written_json(obj: Any) -> Any:
    """``obj`` as ``write_json_atomic`` writes it and ``json.loads`` reads it back: numpy values
    as Python ones, tuples as lists, keys as strings."""
    return json.loads(json.dumps(obj, default=_json_default))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def save_npy_atomic(path: str | os.PathLike, array: np.ndarray) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array, allow_pickle=False)
    return Path(path)


def remove_stale_temporaries(folder: str | os.PathLike) -> int:
    """Clean up after interrupted atomic writes in ``folder``; return how many were handled.

    Only the entries directly in ``folder`` (no walk into subfolders) that ``stale_owned``
    proves ours and stale: a temporary is deleted; a backup ``.old-...<name>`` whose ``<name>``
    is missing (a replacement killed half-way) is renamed back, any other is deleted. Anything
    else, another program's ``.tmp-notes.txt`` or a live writer's temporary, stays as it is.
    """
    folder = Path(folder)
    try:
        entries = sorted(folder.iterdir()) if folder.is_dir() else []
    except OSError:  # a folder this user cannot list (chmod 000, execute only): nothing to do
        return 0
    handled = 0
    for p in entries:
        found = stale_owned(p.name)
        if found is None:
            continue
        try:
            target = folder / found["name"]
            if found["kind"] == OLD_PREFIX and not os.path.lexists(target):
                p.rename(target)
            elif p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink()
        except OSError:
            continue  # gone already (another cleaner): leave it
        handled += 1
    return handled


#: the largest JSON settings file read: an artifact's detector.json (some 40 KB for 30
#: channels, 250 bytes more a channel) and combiner.json (12 KB)
SETTINGS_LIMIT = 16 * 2**20


def refuse_large_settings(path: Path, limit: int = SETTINGS_LIMIT) -> Path:
    """``path``, refused naming it when over ``limit`` bytes, before it is read: parsed, a JSON
    file of many tiny items (``[{}, {}, ...]``) takes some 23 times its size in memory (1.15 GB
    for 50 MiB)."""
    size = path.stat().st_size
    if size > limit:
        raise ESAInputError(
            f"{size:,} bytes, more than the {limit >> 20} MiB a settings file may hold; refused",
            path=path,
        )
    return path


def read_settings_text(path: str | os.PathLike, limit: int = SETTINGS_LIMIT) -> str:
    """The text of a JSON or YAML file of a run folder, an artifact or a mission record (a run's
    ``metrics.json``, its outputs manifest, ``.hydra/overrides.yaml``, ``mission.json``): refused
    by its size (``refuse_large_settings``), naming it, before a byte is read; any such folder
    can be one a user handed (``ckpt=...``). A missing file raises ``FileNotFoundError`` as
    ``read_text`` does; a folder or named pipe in its place is an ``ESAInputError`` (never
    opened)."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise ESAInputError(f"{not_a_file(path)}; refused", path=path)
    return refuse_large_settings(path, limit).read_text(encoding="utf-8")


def read_settings_json(path: str | os.PathLike, limit: int = SETTINGS_LIMIT) -> Any:
    """``json.loads`` of ``read_settings_text(path, limit)``: the same refusals, then the
    parser's own ``ValueError`` (bad JSON, not UTF-8) or ``RecursionError`` for the caller."""
    return json.loads(read_settings_text(path, limit))


def not_a_file(path: Path) -> str:
    """Why ``path``, expected to be a regular file, is not one: ``missing`` (a dangling link
    too), or ``a folder, not a regular file`` (``a named pipe``, ``a device``, ``a socket``),
    from its ``stat``: it is never opened (a named pipe would wait for a writer)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "missing"
    kinds = [(stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe"),
             (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device")]
    kind = next((name for test, name in kinds if test(mode)), "a special file")
    return f"{kind}, not a regular file"
