"""Atomic writes and content-keyed caches: nothing half-written, nothing reused by mistake."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

TMP_PREFIX = ".tmp-"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; renamed onto ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX + path.name + ".", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


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


def remove_stale_temporaries(folder: str | os.PathLike) -> int:
    """Delete leftovers of interrupted atomic writes in ``folder``; return how many were removed."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    removed = 0
    for p in folder.rglob(TMP_PREFIX + "*"):
        if p.is_file():
            p.unlink()
            removed += 1
    return removed


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
