"""The robust z-score's exact median and quartiles: rows held (before) vs two streamed passes.

Before, ``RobustZScore`` kept every training batch its steps read and took the order statistics
over them (``column_statistics``): 4 bytes x rows x channels held. Now its steps count the rows
(pass 1) and ``fit_rows`` reads the loader's batches again (pass 2,
``streaming.TwoPassStatistics``), holding counters and one batch. Each variant runs in its own
process on the same seeded float32 rows, read from a raw file on disk a batch of 65,536 rows at
a time (as ``datamodule=rows`` reads the mission's values; plain reads, not a memory map, so
that the peak RSS is the fit's own); both results are checked equal.

    PYTHONPATH=. python benchmarks/bench_zscore_stream.py --rows 10000000 --channels 87
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _checkout  # noqa: F401
import numpy as np
import torch
from _common import machine, replace_section

BATCH = 65_536
Q = [0.75, 0.25]


def write_rows(path: Path, rows: int, channels: int) -> None:
    """Seeded float32 rows (a normal channel mix with ties and a constant channel) to ``path``."""
    rng = np.random.default_rng(0)
    with path.open("wb") as f:
        for lo in range(0, rows, BATCH):
            x = rng.standard_normal((min(BATCH, rows - lo), channels), dtype=np.float32)
            x[:, 0] = 1.5  # constant
            x[:, 1] = np.round(x[:, 1] * 4)  # ties
            x.tofile(f)


def read_batches(path: Path, rows: int, channels: int):
    """The rows of ``path`` as [<= BATCH, channels] tensors, read one batch at a time."""
    with path.open("rb") as f:
        for lo in range(0, rows, BATCH):
            n = min(BATCH, rows - lo)
            yield torch.from_numpy(np.fromfile(f, dtype=np.float32, count=n * channels)
                                   .reshape(n, channels))


def fit(variant: str, path: Path, rows: int, channels: int) -> str:
    """One variant's fit: 'seconds,peak GiB,digest of the results'."""
    from esa_lightning.models.zscore.quantiles import column_statistics
    from esa_lightning.models.zscore.streaming import streaming_column_statistics

    start = time.perf_counter()
    if variant == "held":
        held = list(read_batches(path, rows, channels))  # the steps' list of batches
        med, qs = column_statistics(held, Q)
    else:
        med, qs = streaming_column_statistics(lambda: read_batches(path, rows, channels),
                                              channels, Q)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    # -0.0 + 0.0 is +0.0: the streamed fit counts -0.0 as +0.0, equal to it (streaming.py)
    values = [np.asarray(a.numpy(), dtype=np.float32) + np.float32(0.0) for a in (med, qs)]
    digest = hashlib.blake2b(values[0].tobytes() + values[1].tobytes(), digest_size=8)
    return f"{seconds:.1f},{peak:.2f},{digest.hexdigest()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--channels", type=int, default=87)
    parser.add_argument("--no-write", action="store_true",
                        help="print only, leave RESULTS.md alone (e.g. a check at a small size)")
    parser.add_argument("--variant", choices=["held", "streamed"], help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(fit(args.variant, Path(args.path), args.rows, args.channels))
        return
    table = [
        "| fit | time (s) | peak RSS (GiB) |",
        "|---|---:|---:|",
    ]
    digests = set()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rows.f32"
        write_rows(path, args.rows, args.channels)
        for variant, label in (
            ("held", "every batch held, then column_statistics (before)"),
            ("streamed", "two passes over the batches, TwoPassStatistics (now)"),
        ):
            out = subprocess.run(
                [sys.executable, __file__, f"--rows={args.rows}",
                 f"--channels={args.channels}", f"--variant={variant}", f"--path={path}"],
                capture_output=True, text=True, check=True,
            ).stdout.strip().splitlines()[-1]
            seconds, peak, digest = out.split(",")
            digests.add(digest)
            table.append(f"| {label} | {seconds} | {peak} |")
            print(table[-1], flush=True)
    if len(digests) != 1:
        raise SystemExit(f"the two fits differ: {sorted(digests)}")
    if args.no_write:
        print("the two fits agree; RESULTS.md left as it is (--no-write)")
        return
    command = "PYTHONPATH=. python benchmarks/bench_zscore_stream.py"
    gib = args.rows * args.channels * 4 / 2**30
    replace_section(
        "## The z-score's exact median in bounded memory: rows held vs two passes "
        "(bench_zscore_stream.py)",
        f"Command: `{command} --rows {args.rows} --channels {args.channels}`\n"
        f"Machine: {machine()}\n\n"
        f"Seeded float32 rows, {args.rows:,} x {args.channels} ({gib:.2f} GiB; a constant "
        "channel, one of ties, the rest normal), read from a raw file a batch of 65,536 rows "
        "at a time; the lower median and the 25th/75th percentiles per channel, equal bit for "
        "bit in both fits (checked). Before, the z-score held every batch its steps read; now "
        "its steps count them and its fit reads them a second time, keeping 512 KiB of "
        "counters per channel for the first pass and at most five sets of 256 KiB for the "
        "second. "
        "Peak RSS of each fit's own process (Python, numpy and torch included); single runs "
        "on a shared machine: the times are indicative.\n\n" + "\n".join(table) + "\n",
    )


if __name__ == "__main__":
    main()
