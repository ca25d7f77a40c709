"""Issue 7: ``predict.py`` on a Kaggle-style ``test.parquet`` of 521 k rows x 87 columns.

Goal: at most 120 s and 4 GB peak RSS on 2 CPU cores. Measured side by side with a plain
reference in the same run: ``pd.read_parquet`` of the same file plus writing an all-zero
``submission.csv`` (the I/O floor any predictor pays).

The test file is made from a generated Mission1-shaped mission (76 channels, 11 priority-3
telecommands: 87 value columns): its last ``--rows`` grid rows, written with the generator's
Kaggle writer (ids continue the training ids). Each measurement runs in its own subprocess; peak
RSS is the largest sampled sum of VmRSS over the process tree (sampled every 0.1 s), also
cross-checked with the process's own ``VmHWM``.

Usage::

    python benchmarks/bench_predict.py --ckpt outputs/<run>/detector \
        [--mission datasets/full_scale/d365] [--rows 521000] [--workdir datasets/full_scale]

Without ``--ckpt`` a detector is trained first (``experiment=esa_full``, bounded: GRU 1 epoch of
50 batches, ensemble 1 epoch) on a 91-day mission of the same layout.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import _checkout  # noqa: F401
from _common import (
    machine,
    replace_section,
    reusable_scratch,
    scratch_params,
    stamp_scratch,
    tree_rss_kib,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).with_name("RESULTS.md")
HEADER = "## Prediction on a 521 k-row Kaggle test.parquet (bench_predict.py)"
KAGGLE_TEST_ROWS = 521_000
GOAL_S, GOAL_GB = 120.0, 4.0
MISSION_ARGS = ["--channels", "76", "--groups", "18", "--subsystems", "4", "--telecommands", "44"]


# ------------------------------------------------------------------------ measurement
def run_measured(cmd: list[str], log: Path, env: dict | None = None) -> dict:
    """Run ``cmd`` in a subprocess; wall seconds, CPU seconds and peak tree RSS (MiB)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        peak = 0
        while proc.poll() is None:
            peak = max(peak, tree_rss_kib(proc.pid))
            time.sleep(0.1)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode:
        tail = log.read_text()[-3000:]
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{tail}")
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_mib": peak / 1024,  # ru_maxrss of children is a max over ALL past children
        "cmd": " ".join(cmd),
    }


class RssSampler(threading.Thread):
    """In-process VmRSS samples (seconds since start, MiB): per-phase peaks inside one run."""

    def __init__(self, period: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.period, self.samples, self.t0 = period, [], time.perf_counter()

    def run(self) -> None:
        while True:
            self.samples.append((time.perf_counter() - self.t0, tree_rss_kib(os.getpid()) / 1024))
            time.sleep(self.period)

    def peak(self, a: float, b: float) -> float:
        vals = [m for t, m in self.samples if a - self.period <= t <= b + self.period]
        return max(vals) if vals else float("nan")


# ------------------------------------------------------------------------ data
def generate(out: Path, days: float, split_date: str, channels: int = 76) -> dict:
    """Generate a Mission1-shaped mission (subprocess, measured) unless it already exists,
    made with these arguments by this generator code (``reusable_scratch``: else refused).

    ``channels`` other than 76 scales the groups with it (76 channels in 18 groups)."""
    from esa_lightning.data.readers.synthetic_record import generator_code_digest

    args = list(MISSION_ARGS)
    if channels != 76:
        args[1], args[3] = str(channels), str(max(1, round(18 * channels / 76)))
    params = {"args": args, "days": days, "split_date": split_date,
              "generator_code": generator_code_digest()}
    if reusable_scratch(out, params):
        return {}
    cmd = [sys.executable, "-m", "esa_lightning.data.synthetic", "--out", str(out)]
    cmd += [*args, "--days", str(days), "--split-date", split_date]
    res = run_measured(cmd, out.parent / "logs" / f"generate_{out.name}.log")
    stamp_scratch(out, params)
    return res


def write_kaggle_test(mission_dir: Path, out: Path, rows: int, cache_dir: Path) -> Path:
    """``out/test.parquet``: the last ``rows`` grid rows of the mission, Kaggle layout; reused
    only when cut from a mission made as this one was (its stamp), with as many rows."""
    import json

    from esa_lightning.data.readers.esa_adb import read_esa_mission
    from esa_lightning.data.readers.layout_writers import write_kaggle_layout

    params = {"mission": scratch_params(mission_dir), "rows": rows}
    if reusable_scratch(out, params):
        return out
    info = json.loads((mission_dir / "mission.json").read_text())
    m = read_esa_mission(mission_dir, counters=info["counters"], cache_dir=cache_dir)
    if m.n_rows <= rows:
        raise SystemExit(f"{mission_dir} has {m.n_rows} rows; need more than {rows}")
    m = dataclasses.replace(m, test_start=m.n_rows - rows, val_start=m.n_rows - rows)
    tmp = out.with_name(out.name + ".tmp")
    write_kaggle_layout(m, tmp)
    (tmp / "train.parquet").unlink()  # predict reads test.parquet alone (the container's input)
    os.replace(tmp, out)
    stamp_scratch(out, params)
    return out


def reference_worker(test_parquet: str, out_csv: str) -> None:
    """The plain floor: read the parquet with pandas, write an all-zero submission."""
    import pandas as pd

    df = pd.read_parquet(test_parquet)
    pd.DataFrame({"id": df["id"], "is_anomaly": 0}).to_csv(out_csv, index=False)


def predict_cmd(ckpt: Path, kaggle_dir: Path, run_dir: Path, cache_dir: Path) -> list[str]:
    return [
        sys.executable,
        "predict.py",
        f"ckpt={ckpt}",
        "data=kaggle",
        f"data.root={kaggle_dir}",
        f"data.cache_dir={cache_dir}",
        f"hydra.run.dir={run_dir}",
    ]


def train_small(mission: Path, run_dir: Path, cache_dir: Path) -> Path:
    cmd = [
        sys.executable,
        "train.py",
        "experiment=esa_full",
        "data=esa",
        f"data.root={mission}",
        "data.split_date=2000-02-15",
        "data.val_days=9",
        "data.counters=[channel_2,channel_3,channel_4,channel_5,channel_6,channel_7]",
        f"data.cache_dir={cache_dir}",
        f"hydra.run.dir={run_dir}",
        "logger=none",
        "trainer.enable_progress_bar=false",
        "~callbacks.progress_bar",
        "~callbacks.lr_monitor",
        "components.gru_ae.trainer.max_epochs=1",
        "+components.gru_ae.trainer.limit_train_batches=50",
        "components.channel_ensemble.trainer.max_epochs=1",
    ]
    run_measured(cmd, run_dir.parent / "logs" / "bench_predict_train.log")
    return run_dir / "detector"


def _cells(r: dict) -> str:
    return f"{r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['peak_rss_mib']:.0f}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", type=Path, default=None)
    ap.add_argument("--mission", type=Path, default=None, help="mission to cut the test file from")
    ap.add_argument("--rows", type=int, default=KAGGLE_TEST_ROWS)
    ap.add_argument("--workdir", type=Path, default=Path("datasets/full_scale"))
    ap.add_argument("--worker", nargs=2, metavar=("TEST_PARQUET", "OUT_CSV"), default=None)
    a = ap.parse_args(argv)
    if a.worker:
        reference_worker(*a.worker)
        return
    work = (ROOT / a.workdir).resolve() if not a.workdir.is_absolute() else a.workdir
    cache = work / "cache"
    mission = a.mission or work / "d365"
    days = max(365.0, a.rows * 30 / 86_400 * 1.6)
    generate(mission, days, "2000-07-01")
    kaggle_dir = write_kaggle_test(mission, work / f"kaggle_test_{a.rows}", a.rows, cache)
    ckpt = a.ckpt
    if ckpt is None:
        small = work / "d91"
        generate(small, 91, "2000-03-01")
        ckpt = train_small(small, work / "runs" / "bench_predict_train", cache)
    test = kaggle_dir / "test.parquet"
    ref = run_measured(
        [sys.executable, __file__, "--worker", str(test), str(work / "ref_submission.csv")],
        work / "logs" / "bench_predict_reference.log",
    )
    run_dir = work / "runs" / "bench_predict"
    shutil.rmtree(run_dir, ignore_errors=True)  # cold: the parquet cache is built in the run
    ours = run_measured(
        predict_cmd(ckpt.resolve(), kaggle_dir, run_dir, run_dir / "cache"),
        work / "logs" / "bench_predict.log",
    )
    import json

    import pyarrow.parquet as pq

    (work / "result_kaggle.json").write_text(json.dumps({**ours, "reference": ref}, indent=1))

    meta = pq.ParquetFile(test).metadata
    ok = ours["wall_s"] <= GOAL_S and ours["peak_rss_mib"] <= GOAL_GB * 1024
    body = f"""Kaggle-style `test.parquet`: {meta.num_rows:,} rows x {meta.num_columns} columns
(`id` + 76 channels + 11 telecommands), cut from a generated Mission1-shaped mission.
Detector: `{ckpt.resolve().relative_to(ROOT) if ckpt.resolve().is_relative_to(ROOT) else ckpt.name}`
(`experiment=esa_full`, GRU-AE + channel ensemble + combiner). Predict writes submission.csv,
intervals.csv, report.csv, up to 100 alarm PNGs and index.html. Goal: <= {GOAL_S:.0f} s and
<= {GOAL_GB:.0f} GB.

| run | wall s | CPU s | peak RSS MiB |
|---|---|---|---|
| `predict.py ... data=kaggle` (ours) | {_cells(ours)} |
| reference floor: `pd.read_parquet` + zero submission | {_cells(ref)} |

Goal met: **{"yes" if ok else "no"}**. Peak RSS = largest sampled (0.1 s) VmRSS sum over the
process tree. Machine: {machine()} (shared with other jobs: wall times vary).

Command: `python benchmarks/bench_predict.py --ckpt <run>/detector`. Cold: predict starts
with an empty cache folder, so reading and converting the parquet is included.
"""
    print(body)
    replace_section(HEADER, body)


if __name__ == "__main__":
    main()
