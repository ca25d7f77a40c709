"""The readers' one array cache: ``.npy`` files under ``cache_dir/<key>/``.

The key (built by the reader with ``digests.cache_key``) hashes the source files' identity
(resolved path and a hash of the content, ``digests.source_identity``) and every option that
shapes the arrays, so an entry is never reused for other data, even when a file was edited with
its size and modification time kept. An entry is written into a temporary folder and renamed
into place when complete (readers see all of it or nothing; of processes building one entry at
once, the first to finish wins and the others keep its entry, never moving it away) and is
returned memory-mapped, read-only. The warnings ``build`` gave (repaired NaN/inf cells, ...) are
kept in the entry and given again at every read from it, so a cached read says what the first
one did, naming the files as that read spells them.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from esa_lightning.data.array_store import ArrayStore
from esa_lightning.data.readers.digests import changed_since_hashed
from esa_lightning.errors import ESAInputError, user_stacklevel
from esa_lightning.io import (
    atomic_folder,
    read_settings_json,
    remove_stale_temporaries,
    write_json_atomic,
)

# where a recorded warning named the reader's n-th path: NUL is in no path
PATH_MARK = re.compile(r"\x00(\d+)\x00")
# what a path named in a message may stand between (a longer path, a word, are not it)
BEFORE, AFTER = r"(?:^|(?<=[\s,(\[='\"]))", r"(?=$|[\s,:;)\]'\"])"


# the names an entry's arrays may have: a file of the entry, never a path out of it
ARRAY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
Dim = int | str | None  # a length, "n" (the entry's rows), "n/8" (rows / 8, up) or None (any)


@dataclass(frozen=True)
class Layout:
    """What a reader's entry holds, checked at every read of it (headers only, no data read):
    each array of ``arrays`` by dtype and shape (a length, ``"n"``: the rows of the first
    array, the same in all, ``"n/8"``: a bit-packed row count, or None: any), the integers of
    ``info`` named in ``counts`` (0 to the rows; ``rows``: the rows themselves; ``ints``: any
    integer) and its booleans ``flags``, and the (row, column) pairs of ``cells`` (rows of
    ``values``, its columns: the only data read, N x 2 integers). An entry that does not fit
    (damaged, crafted, of another channel count) is built again, never returned."""

    arrays: dict[str, tuple[str, tuple[Dim, ...]]]
    counts: tuple[str, ...] = ()
    rows: tuple[str, ...] = ()
    ints: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    cells: tuple[str, ...] = ("unrepresentable_cells",)

    def fits(self, arrays: dict[str, np.ndarray], info: dict) -> bool:
        if set(arrays) != set(self.arrays) or any(
            arrays[name].dtype != np.dtype(dtype) or arrays[name].ndim != len(shape)
            for name, (dtype, shape) in self.arrays.items()
        ):
            return False
        n = next((got for name, (_, shape) in self.arrays.items()  # the first array's rows
                  for want, got in zip(shape, arrays[name].shape, strict=True)
                  if want == "n"), None)
        sizes = {"n": n, "n/8": None if n is None else (n + 7) // 8}
        for name, (_, shape) in self.arrays.items():
            for want, got in zip(shape, arrays[name].shape, strict=True):
                if want is not None and sizes.get(want, want) != got:
                    return False
        if not all(_cells_inside(arrays[name], n or 0, arrays["values"].shape[1])
                   for name in self.cells if name in arrays and "values" in arrays):
            return False

        def integer(key: str) -> bool:
            return type(info.get(key)) is int

        return (all(integer(k) and 0 <= info[k] <= (n or 0) for k in self.counts)
                and all(integer(k) and info[k] == n for k in self.rows)
                and all(integer(k) for k in self.ints)
                and all(type(info.get(k)) is bool for k in self.flags))


def _cells_inside(cells: np.ndarray, rows: int, columns: int) -> bool:
    """Whether every (row, column) pair of ``cells`` [N, 2] lies in a [rows, columns] array."""
    if cells.ndim != 2 or cells.shape[1] != 2:
        return False
    if not len(cells):
        return True
    return bool(cells.min() >= 0 and cells[:, 0].max() < rows and cells[:, 1].max() < columns)


def rows_layout(
    n_channels: int, n_telecommands: int, **more: str | tuple[str, tuple[Dim, ...]] | None
) -> dict[str, tuple[str, tuple[Dim, ...]]]:
    """The arrays every reader's entry holds (``Layout.arrays``): ``values`` float32 [n, C],
    ``telecommands`` float32 [n, TC], ``unrepresentable_cells`` int64 [N, 2], ``finite_rows``
    uint8 [C, rows / 8 up]; ``more`` adds arrays (a dtype alone: one of [n]) or, None,
    leaves one out."""
    arrays: dict[str, tuple[str, tuple[Dim, ...]]] = {
        "values": ("float32", ("n", n_channels)),
        "telecommands": ("float32", ("n", n_telecommands)),
        "unrepresentable_cells": ("int64", (None, 2)),
        "finite_rows": ("uint8", (n_channels, "n/8")),  # bit-packed along the rows
    }
    for name, spec in more.items():
        if spec is None:
            arrays.pop(name, None)
        else:
            arrays[name] = (spec, ("n",)) if isinstance(spec, str) else spec
    return arrays


def user_cache_dir() -> Path:
    """The readers' default cache folder: ``$XDG_CACHE_HOME/esa_lightning``, else
    ``~/.cache/esa_lightning``. Never the caller's working directory: a reader called from the
    Python API (``load_mission``) must not write into whatever folder the caller runs in.
    The jobs pass their own ``cache_dir`` (``paths.cache_dir``, under the project root)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "esa_lightning"


class UserCacheDir:
    """The readers' ``cache_dir`` default: ``user_cache_dir()``, looked up when a reader runs."""

    def __repr__(self) -> str:
        return "<the user cache folder>"


USER_CACHE_DIR = UserCacheDir()


def cache_folder(cache_dir: str | os.PathLike | UserCacheDir | None) -> Path | None:
    """The folder ``cache_dir`` stands for (the user cache folder for ``USER_CACHE_DIR``);
    None (no cache) without one."""
    if cache_dir is None:
        return None
    if isinstance(cache_dir, UserCacheDir):
        return user_cache_dir()
    return Path(cache_dir)


def cache_entry(cache_dir: str | os.PathLike | UserCacheDir | None, key: str) -> Path | None:
    """The entry folder of ``key`` under ``cache_dir``; None (no cache) without a folder."""
    folder = cache_folder(cache_dir)
    return None if folder is None else folder / key


def read_through_cache(
    folder: Path | None,
    use_cache: bool,
    build: Callable[[ArrayStore], tuple[dict, dict]],
    paths: Sequence[str | os.PathLike] = (),
    layout: Layout | None = None,
    read_before: dict[str, str | None] | None = None,
) -> tuple[dict, dict]:
    """(arrays, info) from the cache entry ``folder`` if complete, else ``build(store)``.

    An entry is complete when its manifest, each of its arrays (a regular file, never a named
    pipe opened; no object dtype) and, given a ``layout``, their dtypes and shapes and the
    info's numbers (``Layout.fits``) read as a writer leaves them; anything else (a damaged or
    crafted entry) is built again in its place. An entry is not published (a warning says so,
    and the arrays are built again in memory) when a file of ``paths`` changed after it was
    hashed, or one of ``read_before`` (``digests.change_stamps`` taken before the reader first read
    it: a table or a header read before hashing) changed since: the key would not match.

    ``info`` is a small JSON-serialisable dict. Without a ``folder`` or with ``use_cache=False``
    nothing is read or written: ``build`` allocates in RAM.

    ``build`` allocates its outputs with ``store.empty``: when caching, they are ``.npy`` files
    of the entry being written (memory bounded by the reader's batches, not the file), renamed
    into place when complete and returned memory-mapped. Stale temporaries of interrupted
    writers in the cache folder are removed first. The cache is optional: when it cannot be
    written (full disk, read-only folder) a warning says so and the arrays are built in RAM.

    The warnings ``build`` gives are recorded in the entry (category and message) instead of
    shown, and every read of the entry, the one that wrote it included, gives them again with
    their category (``warnings.warn``, the caller's filters apply). A recorded message names
    each of ``paths`` (the files read, spelled as the caller spells them: relative, absolute,
    through a link) by its place in ``paths``, and a read names it as its own caller spells it.
    """
    if folder is None or not use_cache:
        return build(ArrayStore())
    clean_cache_dir(folder.parent)
    entry = load_array_cache(folder, layout)
    if entry is None:
        said: list[dict[str, str]] = []
        try:
            with atomic_folder(folder, keep=partial(_complete, layout=layout)) as tmp:
                store = ArrayStore(tmp)
                arrays, info = _build_recording(build, store, said, paths)
                if changed := changed_since_hashed(paths, read_before):
                    raise SourcesChanged(changed)
                store.finish(arrays)
                del arrays  # unmap before the folder is renamed
                manifest = {"arrays": sorted(store.names), "info": info, "warnings": said}
                write_json_atomic(tmp / "manifest.json", manifest)
        except SourcesChanged as exc:  # nothing published: built again, without the cache
            warnings.warn(f"{exc}: not cached; read again", stacklevel=user_stacklevel())
            return build(ArrayStore())
        except (OSError, ESAInputError) as exc:
            if isinstance(exc, ESAInputError) and not isinstance(exc.__cause__, OSError):
                _warn_again(said, paths)  # what the read said before it met the bad input
                raise  # bad input, not a cache problem
            warnings.warn(f"could not write the cache {folder}: {exc}",
                          stacklevel=user_stacklevel())
            return build(ArrayStore())
        entry = load_array_cache(folder, layout)
        if entry is None:
            raise ESAInputError("cache entry unreadable right after writing it", path=folder)
    arrays, info, said = entry
    _warn_again(said, paths)
    return arrays, info


class SourcesChanged(Exception):
    """Source files written while the reader read them (after their digest was taken)."""

    def __init__(self, paths: Sequence[Path]) -> None:
        names = ", ".join(map(str, paths[:3])) + (" ..." if len(paths) > 3 else "")
        super().__init__(f"{names}: changed while being read")


def _complete(folder: Path, layout: Layout | None) -> bool:
    """Whether ``folder`` holds a complete entry (another process wrote it meanwhile: kept)."""
    return load_array_cache(folder, layout) is not None


def _build_recording(
    build: Callable[[ArrayStore], tuple[dict, dict]],
    store: ArrayStore,
    said: list[dict],
    paths: Sequence[str | os.PathLike],
) -> tuple[dict, dict]:
    """``build(store)``, its warnings appended to ``said`` (category, message naming ``paths``
    by their place, ``_unspelled``), not shown."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return build(store)
        finally:
            for w in caught:
                category = f"{w.category.__module__}:{w.category.__qualname__}"
                said.append({"category": category, "message": _unspelled(str(w.message), paths)})


def _unspelled(message: str, paths: Sequence[str | os.PathLike]) -> str:
    """``message`` with each of ``paths`` it names (longest first) replaced by its place."""
    for i, path in sorted(enumerate(map(str, paths)), key=lambda p: -len(p[1])):
        message = re.sub(BEFORE + re.escape(path) + AFTER, f"\x00{i}\x00", message)
    return message


def _warn_again(said: list[dict], paths: Sequence[str | os.PathLike]) -> None:
    """Give the recorded warnings, naming ``paths`` as this read spells them, pointing at the
    reader's caller."""
    spelled = [str(path) for path in paths]

    def spell(mark: re.Match) -> str:  # a place this read has no path for stays marked
        i = int(mark[1])
        return spelled[i] if i < len(spelled) else mark[0]

    for record in said:
        message = PATH_MARK.sub(spell, record["message"])
        warnings.warn(message, _category(record["category"]), stacklevel=user_stacklevel())


def _category(name: str) -> type[Warning]:
    """The warning class ``module:qualname`` names, looked up in the modules already imported
    (nothing is imported for a cache entry); ``UserWarning`` if it is not one."""
    module, _, qualname = name.partition(":")
    found = sys.modules.get(module)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    return found if isinstance(found, type) and issubclass(found, Warning) else UserWarning


def load_array_cache(
    folder: Path, layout: Layout | None = None
) -> tuple[dict[str, np.ndarray], dict, list[dict]] | None:
    """The arrays (memory-mapped, read-only), info and recorded warnings of a complete cache
    entry (``read_through_cache``), else None (an entry written before warnings were recorded
    is not complete)."""
    manifest = Path(folder) / "manifest.json"
    try:
        if not manifest.is_file():  # an OSError: a folder this user cannot search
            return None
        spec = read_settings_json(manifest)
        names, info, said = spec["arrays"], spec["info"], list(spec["warnings"])
        if not (isinstance(names, list) and isinstance(info, dict)
                and all(isinstance(n, str) and ARRAY_NAME.fullmatch(n) for n in names)):
            return None  # a crafted manifest: no array named out of the entry
        files = {n: Path(folder) / f"{n}.npy" for n in names}
        if not all(f.is_file() for f in files.values()):
            return None  # a missing array, a folder or a named pipe (never opened) in its place
        arrays = {n: np.load(f, mmap_mode="r", allow_pickle=False) for n, f in files.items()}
    except (OSError, ValueError, KeyError, TypeError, RecursionError, ESAInputError):
        return None  # a damaged or oversized entry: built again
    if not all(isinstance(w, dict) and isinstance(w.get("message"), str)
               and isinstance(w.get("category"), str) for w in said):
        return None  # a damaged record: built again
    if layout is not None and not layout.fits(arrays, info):
        return None  # damaged, crafted or of another shape: built again
    return arrays, info, said


def clean_cache_dir(cache_dir: str | Path) -> None:
    """Drop leftovers of cache writes killed half-way (``remove_stale_temporaries``: only
    temporaries of this project whose process has ended, never a live writer's)."""
    remove_stale_temporaries(cache_dir)
