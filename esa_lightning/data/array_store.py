"""Where readers put the arrays they fill, and how long scans give memory back.

A reader allocates its output arrays once (row counts come from file metadata) and fills them
batch by batch. ``ArrayStore()`` allocates in RAM; ``ArrayStore(folder)`` allocates ``.npy``
files in the cache entry being written and maps them, so building the cache of a 14.7 M-row
file needs memory for one batch, not for the whole array: the kernel writes filled pages to disk.

``release_pages`` tells the kernel that a memory-mapped block will not be read again soon; its
pages leave the process (they stay in the page cache and come back on the next read). Chunked
scoring calls it after each chunk, so a pass over a memory-mapped cache keeps the resident set
at about one chunk instead of growing to the file's size.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path

import numpy as np

PAGE = mmap.PAGESIZE


class ArrayStore:
    """Allocates reader outputs in RAM (no folder) or as ``.npy`` files in ``folder``."""

    def __init__(self, folder: str | os.PathLike | None = None) -> None:
        self.folder = None if folder is None else Path(folder)
        self._mapped: set[str] = set()  # names allocated as files here
        self.names: list[str] = []

    def empty(self, name: str, shape: tuple[int, ...], dtype: np.dtype | str) -> np.ndarray:
        """An uninitialised array of ``shape``; disk-backed as ``<folder>/<name>.npy``."""
        if self.folder is None:
            return np.empty(shape, dtype=dtype)
        self._mapped.add(name)
        return np.lib.format.open_memmap(
            self.folder / f"{name}.npy", mode="w+", dtype=dtype, shape=tuple(shape)
        )

    def zeros(self, name: str, shape: tuple[int, ...], dtype: np.dtype | str) -> np.ndarray:
        if self.folder is None:
            return np.zeros(shape, dtype=dtype)
        return self.empty(name, shape, dtype)  # a new file reads as zeros already

    def release(self, arrays: dict[str, np.ndarray], start: int, stop: int) -> None:
        """Rows [start, stop) of disk-backed ``arrays`` are written: let their pages go."""
        if self.folder is not None:
            for array in arrays.values():
                release_pages(array[start:stop])

    def finish(self, arrays: dict[str, np.ndarray]) -> None:
        """Make every ``arrays[name]`` a complete ``<folder>/<name>.npy``.

        Disk-backed arrays are flushed, and their file is cut to the rows the reader kept
        (``out[name][:pos]``); arrays that were not allocated here are saved.
        """
        self.names = list(arrays)
        if self.folder is None:
            return
        for name, array in arrays.items():
            path = self.folder / f"{name}.npy"
            base = _base_memmap(array)
            if name in self._mapped and isinstance(base, np.memmap):
                base.flush()
                if len(array) != _npy_rows(path):
                    trim_npy(path, len(array))
            else:
                with open(path, "wb") as f:
                    np.save(f, np.ascontiguousarray(array), allow_pickle=False)


def _base_memmap(array: np.ndarray) -> np.ndarray:
    base = array
    while isinstance(base.base, np.ndarray):
        base = base.base
    return base


def _read_header(f) -> tuple[tuple[int, int], tuple[int, ...], bool, np.dtype]:  # noqa: ANN001
    version = np.lib.format.read_magic(f)
    read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
            else np.lib.format.read_array_header_2_0)
    shape, fortran, dtype = read(f)
    return version, shape, fortran, dtype


def _npy_rows(path: Path) -> int:
    with open(path, "rb") as f:
        return int(_read_header(f)[1][0])


def trim_npy(path: str | os.PathLike, rows: int) -> None:
    """Keep the first ``rows`` rows of a C-ordered ``.npy`` file, in place (no copy)."""
    path = Path(path)
    with open(path, "r+b") as f:
        version, shape, fortran, dtype = _read_header(f)
        data_start = f.tell()
        if fortran or rows > shape[0]:
            raise ValueError(f"{path}: cannot trim {shape} to {rows} rows")
        new_shape = (int(rows), *shape[1:])
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                  "shape": new_shape}
        f.seek(0)
        if version == (1, 0):
            np.lib.format.write_array_header_1_0(f, header)
        else:
            np.lib.format.write_array_header_2_0(f, header)
        if f.tell() != data_start:  # a shorter shape that changed the padded header length
            f.seek(data_start)
            tail = np.fromfile(f, dtype=dtype, count=int(np.prod(new_shape)))
            f.seek(0)
            f.truncate()
            np.lib.format.write_array(f, tail.reshape(new_shape), allow_pickle=False)
            return
        f.truncate(data_start + int(np.prod(new_shape)) * dtype.itemsize)


def _mapping(array: np.ndarray) -> mmap.mmap | None:
    """The ``mmap`` under a memory-mapped array or any view of one, else None."""
    a = array
    while a is not None:
        if isinstance(a, mmap.mmap):
            return a
        mm = getattr(a, "_mmap", None)
        if isinstance(mm, mmap.mmap):
            return mm
        a = getattr(a, "base", None)
    return None


def release_pages(array: np.ndarray) -> None:
    """Drop the resident pages of a memory-mapped ``array`` block (no-op for RAM arrays)."""
    if not isinstance(array, np.ndarray) or array.nbytes == 0 or not hasattr(mmap, "MADV_DONTNEED"):
        return
    mm = _mapping(array)
    if mm is None:
        return
    start = np.frombuffer(mm, dtype=np.uint8).ctypes.data
    lo = array.ctypes.data - start
    hi = lo + _span_bytes(array)
    lo -= lo % PAGE
    hi = min(len(mm), hi + (-hi % PAGE))
    if 0 <= lo < hi:
        mm.madvise(mmap.MADV_DONTNEED, lo, hi - lo)


def _span_bytes(array: np.ndarray) -> int:
    """Bytes from the first to one past the last element of a (possibly strided) view."""
    if array.size == 0:
        return 0
    return int(sum((n - 1) * s for n, s in zip(array.shape, array.strides, strict=True))
               + array.itemsize)
