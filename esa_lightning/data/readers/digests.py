"""Content-keyed cache keys: source files' identities (resolved path and SHA-256 of the
content), the memo that spares hashing an unchanged file again, and the checks that a file a
reader read is the one its key hashed.

Cost at full scale (14.7 M rows x 87 channels): each source is hashed once (SHA-256 at some
0.7 s per 512 MiB, ``benchmarks/bench_hash.py``) and its digest remembered under its change
stamp; later reads cost one ``stat`` a file. A file written less than ``SETTLED_NS`` before
its hashing is hashed again at its next read. A read that builds an entry ``stat``s its sources
once more at the end (``changed_since_hashed``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from esa_lightning.errors import ESAInputError
from esa_lightning.io import _json_default, read_settings_json, write_json_atomic

HASH_BLOCK = 1 << 20
DIGESTS_FILE = "digests.json"
_digests: dict[str, str] = {}  # this process's memo: change stamp -> content digest
#: how long before its hashing a file must have been last written for its digest to be
#: remembered: well above any file system's timestamp tick and a file server's clock drift
SETTLED_NS = 2 * 10**9
_hashed: dict[str, str] = {}  # resolved path -> its change stamp when last hashed (or looked up)


def content_digest(path: str | os.PathLike) -> str:
    """SHA-256 of the file's bytes, read in 1 MiB blocks (memory stays flat)."""
    digest = hashlib.sha256()
    buffer = bytearray(HASH_BLOCK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buffer):
            digest.update(view[:n])
    return digest.hexdigest()


def _now_ns() -> int:
    """The wall clock, as file times are stamped (``time.time_ns``)."""
    return time.time_ns()


def _change_stamp(path: Path) -> str | None:
    """What changes whenever the file's content can have changed: device, inode, size, mtime
    and ctime. The kernel sets ctime on every write and every ``touch`` (and nothing sets it
    back), so an edit that keeps size and mtime still changes it. None where ``st_ctime`` is
    the creation time (Windows): there the content is hashed every time."""
    if os.name != "posix":
        return None
    st = path.stat()
    return f"{path}|{st.st_dev}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}"


def source_identity(
    paths: list[str | os.PathLike], memo_dir: str | os.PathLike | None = None
) -> list[list[Any]]:
    """Identity of source files for cache keys: resolved path and SHA-256 of the content.

    Hashing reads every byte, so a digest is remembered under the file's change stamp
    (``_change_stamp``): in this process, and in ``memo_dir/digests.json`` when given (the
    readers pass their cache folder). A remembered digest is used only while the stamp is the
    same, so an edited file is always hashed again. A file last written less than
    ``SETTLED_NS`` before it is hashed is hashed again at every read until then: a clock too
    coarse to tell a rewrite in the same tick (ctime before Linux 6.13: 1 to 10 ms) would leave
    its stamp as it was.
    """
    memo_path = None if memo_dir is None else Path(memo_dir) / DIGESTS_FILE
    stored = _read_digests(memo_path)
    ident, changed = [], False
    for p in sorted(Path(x).resolve() for x in paths):
        stamp = _change_stamp(p)
        digest = None if stamp is None else _digests.get(stamp) or stored.get(stamp)
        settled = True  # found remembered: it was settled when hashed
        if digest is None:
            settled = p.stat().st_ctime_ns <= _now_ns() - SETTLED_NS
            digest = content_digest(p)
        if stamp is not None:
            _hashed[str(p)] = stamp
        if stamp is not None and settled:
            _digests[stamp] = digest
            if stored.get(stamp) != digest:
                stored = {k: v for k, v in stored.items() if not k.startswith(f"{p}|")}
                stored[stamp], changed = digest, True
        ident.append([str(p), digest])
    if changed and memo_path is not None:
        with contextlib.suppress(OSError, ESAInputError):  # a read-only cache: hash next time
            write_json_atomic(memo_path, stored)
    return ident


_SHA256 = re.compile(r"[0-9a-f]{64}")


MISSING = "missing"  # the change stamp of a path that is no file


def change_stamps(paths: Sequence[str | os.PathLike]) -> dict[str, str | None]:
    """The change stamps of ``paths`` (``MISSING`` for one that is no file), by resolved path:
    taken before a reader reads a file it hashes only later (a table, a header), for
    ``changed_since_hashed``."""
    return {str(Path(path).resolve()): _stamp_or_missing(Path(path).resolve()) for path in paths}


def _stamp_or_missing(path: Path) -> str | None:
    """``_change_stamp(path)``, or ``MISSING`` where ``path`` is no file (a table created later
    changes it too)."""
    try:
        return _change_stamp(path) if path.is_file() else MISSING
    except OSError:
        return MISSING


def changed_since_hashed(
    paths: Sequence[str | os.PathLike], read_before: dict[str, str | None] | None = None
) -> list[Path]:
    """Those of ``paths`` that ``source_identity`` hashed (or found remembered) in this process
    and that changed since (their change stamp differs, or they are gone), and those of
    ``read_before`` (``change_stamps`` taken before the reader first read them) that changed
    since: a reader may have read other bytes than its cache key says. A ``stat`` a file."""
    changed, seen = [], set()
    then_of = {**(read_before or {})}
    for path in [*paths, *then_of]:
        resolved = Path(path).resolve()
        then = then_of.get(str(resolved), _hashed.get(str(resolved)))
        if then is None or resolved in seen:
            continue
        seen.add(resolved)
        if _stamp_or_missing(resolved) != then:
            changed.append(Path(path))
    return changed


def _read_digests(path: Path | None) -> dict[str, str]:
    """The remembered digests of ``digests.json`` (stamp -> SHA-256); {} where there is no such
    file or it is not one this project wrote: damaged, crafted (nested beyond the parser's
    depth, over ``SETTINGS_LIMIT``), a folder or a named pipe in its place (never opened). An
    entry whose digest is no SHA-256 is left out. What is left out is hashed again."""
    if path is None:
        return {}
    try:
        stored = read_settings_json(path)
    except (OSError, ValueError, RecursionError, ESAInputError):
        return {}
    if not isinstance(stored, dict):
        return {}
    return {k: v for k, v in stored.items()
            if isinstance(k, str) and isinstance(v, str) and _SHA256.fullmatch(v)}


def cache_key(*parts: Any) -> str:
    """A stable hash of JSON-serialisable parts (source identities and every option)."""
    blob = json.dumps(parts, sort_keys=True, default=_json_default).encode()
    return hashlib.sha256(blob).hexdigest()[:20]
