"""What keying the readers' cache by content costs: hashing a large file vs reading it.

``digests.source_identity`` hashes every source file (SHA-256, 1 MiB blocks) the first time it
sees it, and remembers the digest under the file's change stamp (inode, size, mtime, ctime) in
``<cache_dir>/digests.json``; a cache hit on an unchanged file then costs a ``stat``.

    PYTHONPATH=. python benchmarks/bench_hash.py --mb 512 --repeats 3
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
from pathlib import Path

import _checkout  # noqa: F401
from _common import best_of, machine, replace_section

from esa_lightning.data.readers import digests

BLOCK = 1 << 20


def read_through(path: Path, algorithm: str | None) -> None:
    digest = None if algorithm is None else hashlib.new(algorithm)
    buffer = bytearray(BLOCK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buffer):
            if digest is not None:
                digest.update(view[:n])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=512, help="size of the test file (MiB)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_hash_") as work:
        path = Path(work) / "source.bin"
        with open(path, "wb") as f:
            for _ in range(args.mb):
                f.write(os.urandom(BLOCK))
        size = path.stat().st_size
        rows = []
        for label, algorithm in (
            ("plain read (no hash)", None),
            ("SHA-256 (used)", "sha256"),
            ("BLAKE2b", "blake2b"),
        ):
            seconds, _ = best_of(args.repeats, lambda a=algorithm: read_through(path, a))
            rows.append((label, seconds))
        memo = Path(work) / "cache"
        memo.mkdir()
        # the file was written just now: remember its digest anyway (a digest taken within
        # SETTLED_NS of the last write is otherwise hashed again at the next read)
        digests.SETTLED_NS = 0

        def first_sight() -> None:
            digests._digests.clear()
            (memo / digests.DIGESTS_FILE).unlink(missing_ok=True)
            digests.source_identity([path], memo)

        def remembered() -> None:
            digests._digests.clear()  # as a new process: the digest comes from digests.json
            digests.source_identity([path], memo)

        rows.append(("`source_identity`, first sight", best_of(args.repeats, first_sight)[0]))
        first_sight()
        rows.append(("`source_identity`, unchanged file", best_of(args.repeats, remembered)[0]))
    table = [f"| step | time, best of {args.repeats} | MiB/s |", "|---|---:|---:|"]
    for label, seconds in rows:
        rate = "(no read)" if "unchanged" in label else f"{size / 2**20 / seconds:,.0f}"
        table.append(f"| {label} | {seconds * 1000:,.1f} ms | {rate} |")
    body = "\n".join(
        [
            f"Command: `PYTHONPATH=. python benchmarks/bench_hash.py --mb {args.mb} "
            f"--repeats {args.repeats}`",
            f"Machine: {machine()}",
            "",
            f"A {size / 2**20:.0f} MiB file of random bytes, in the page cache (read once before",
            "timing), read in 1 MiB blocks. The readers' cache key hashes each source's content;",
            "the digest is remembered under the file's inode, size, mtime and ctime, so only a",
            "file seen for the first time or changed since is read again.",
            "",
            *table,
        ]
    )
    replace_section("## Cache key by content: hashing vs reading (bench_hash.py)", body)
    print(body)


if __name__ == "__main__":
    main()
