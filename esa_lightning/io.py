"""Atomic writes and content-keyed caches: nothing half-written, nothing reused by mistake."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from esa_lightning.errors import ESAInputError

TMP_PREFIX = ".tmp-"
OLD_PREFIX = ".old-"


def write_error(path: str | os.PathLike, exc: OSError) -> ESAInputError:
    """An ``OSError`` of a write (disk full, read-only folder...) as a one-line user error."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return ESAInputError(f"cannot write ({reason})", path=path)


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
        fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX + path.name + ".", dir=path.parent)
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
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``, renamed onto ``path`` if the block succeeds.

    For multi-file entries (caches): readers see the whole folder or nothing. An existing
    ``path`` is replaced (kept as ``.old-<name>`` until the new one is in place). ``OSError``
    becomes an ``ESAInputError`` naming ``path``.
    """
    path = Path(path)
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX + path.name + ".", dir=path.parent))
        follow_umask(tmp)
        yield tmp
        replace_folder(tmp, path)
    except OSError as exc:
        raise write_error(path, exc) from exc
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def replace_folder(new: Path, path: Path) -> None:
    """Rename folder ``new`` onto ``path``; the previous ``path`` survives any interruption.

    The old folder is first renamed to ``.old-<name>``; if the process dies before the new one
    is in place, ``remove_stale_temporaries`` renames it back.
    """
    old = path.with_name(OLD_PREFIX + path.name)
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


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default))


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


def remove_stale_temporaries(folder: str | os.PathLike, min_age_s: float = 0.0) -> int:
    """Clean up after interrupted atomic writes under ``folder``; return how many were handled.

    ``.tmp-*`` files and folders are deleted; an ``.old-<name>`` folder whose ``<name>`` is
    missing (a replacement killed half-way) is renamed back, any other is deleted. Entries
    modified less than ``min_age_s`` seconds ago are left alone: in a shared cache they may
    belong to another process that is writing right now.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    now = time.time()
    handled = 0
    found = [*folder.rglob(TMP_PREFIX + "*"), *folder.rglob(OLD_PREFIX + "*")]
    for p in sorted(found, key=lambda q: len(q.parts)):
        try:
            if not p.exists() or (min_age_s > 0 and now - _newest_mtime(p) < min_age_s):
                continue
            if p.name.startswith(OLD_PREFIX) and p.is_dir():
                target = p.with_name(p.name[len(OLD_PREFIX) :])
                if not target.exists():
                    p.rename(target)
                else:
                    shutil.rmtree(p)
            elif p.is_dir():
                shutil.rmtree(p)
            elif p.name.startswith(TMP_PREFIX):
                p.unlink()
            else:
                continue
        except OSError:
            continue  # gone already (another cleaner) or not ours to delete: leave it
        handled += 1
    return handled


def _newest_mtime(path: Path) -> float:
    if not path.is_dir():
        return path.stat().st_mtime
    return max([path.stat().st_mtime, *(q.stat().st_mtime for q in path.rglob("*"))])


def source_identity(paths: list[str | os.PathLike]) -> list[list[Any]]:
    """Identity of source files for cache keys: resolved path, size and mtime (ns)."""
    ident = []
    for p in sorted(Path(x).resolve() for x in paths):
        st = p.stat()
        ident.append([str(p), st.st_size, st.st_mtime_ns])
    return ident


def cache_key(*parts: Any) -> str:
    """A stable hash of JSON-serialisable parts (source identities and every option)."""
    blob = json.dumps(parts, sort_keys=True, default=_json_default).encode()
    return hashlib.sha256(blob).hexdigest()[:20]
