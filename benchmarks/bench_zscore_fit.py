"""The robust z-score's fit over every row: time and peak memory against the fit it replaced.

Before, ``RobustZScore.fit_rows`` took the median of every training row with ``torch.median``
over the whole (rows, channels) tensor, but the IQR (and the threshold percentile, of the
validation scores) with ``torch.quantile`` from the first 1,000,000 rows only. Now
``column_statistics`` (models/zscore/quantiles.py) partitions one column at a time over every
row. Each variant runs in its own process on the same seeded float32 (rows, channels) tensor;
the peak RSS is the process's, the input's own share measured before the fit.

    PYTHONPATH=. python benchmarks/bench_zscore_fit.py --rows 14700000 --channels 87
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time

import _checkout  # noqa: F401
import torch
from _common import machine, replace_section

CAP = 1_000_000  # the rows torch.quantile was given before


def fit(variant: str, rows: int, channels: int) -> str:
    """One variant's fit of ``rows`` x ``channels``: 'seconds,peak GiB,input GiB'."""
    from esa_lightning.models.zscore.quantiles import column_statistics, quantile

    x = torch.empty(rows, channels)
    gen = torch.Generator().manual_seed(0)
    for lo in range(0, rows, CAP):
        x[lo : lo + CAP] = torch.randn(min(CAP, rows - lo), channels, generator=gen)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    start = time.perf_counter()
    if variant == "before":
        x.median(dim=0)
        torch.quantile(x[:CAP], torch.tensor([0.75, 0.25]), dim=0)
        torch.quantile(x[:CAP, 0], 0.999)
    else:
        column_statistics(x, [0.75, 0.25])
        quantile(x[:, 0].contiguous(), 0.999)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return f"{seconds:.1f},{peak:.2f},{base:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=14_700_000)
    parser.add_argument("--channels", type=int, default=87)
    parser.add_argument("--variant", choices=["before", "now"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(fit(args.variant, args.rows, args.channels))
        return
    table = [
        "| fit | time (s) | peak RSS (GiB) | of which the input (GiB) |",
        "|---|---:|---:|---:|",
    ]
    for variant, label in (
        ("before", "torch.median of every row, torch.quantile of the first 1,000,000 (before)"),
        ("now", "column_statistics + quantile over every row (now)"),
    ):
        out = subprocess.run(
            [sys.executable, __file__, f"--rows={args.rows}", f"--channels={args.channels}",
             f"--variant={variant}"], capture_output=True, text=True, check=True,
        ).stdout.strip().splitlines()[-1]
        seconds, peak, base = out.split(",")
        table.append(f"| {label} | {seconds} | {peak} | {base} |")
        print(table[-1], flush=True)
    command = "PYTHONPATH=. python benchmarks/bench_zscore_fit.py"
    replace_section(
        "## The z-score's fit over every row: time and peak memory (bench_zscore_fit.py)",
        f"Command: `{command} --rows {args.rows} --channels {args.channels}`\n"
        f"Machine: {machine()}\n\n"
        f"A seeded float32 {args.rows:,} x {args.channels} tensor (the training rows "
        "collected by `fit_rows`); the median and the 25th/75th percentiles per channel, and "
        "the 99.9th percentile of one column (the threshold's 1-D quantile). Before, the "
        "percentiles covered the first 1,000,000 rows only; now every row, with no copy of "
        "the whole tensor (one column at a time). Single runs on a shared machine: the times "
        "are indicative. `datamodule=rows` hands the z-score at most 2,000,000 evenly spaced "
        "nominal rows of each range by default (`+datamodule.max_rows`): a whole long mission "
        "(ESA Mission1's 14.7 M rows) only with that raised.\n\n" + "\n".join(table) + "\n",
    )


if __name__ == "__main__":
    main()
