"""Raw ESA-ADB reading + resampling: our reader vs a naive pandas reader, and Kaggle parquet reads.

Each measurement runs in its own subprocess (so peak RSS is its own: ``VmHWM`` from
``/proc/self/status`` at the end of the worker):

- ``ours``:   ``read_esa_mission`` (safe unpickling, ``np.repeat`` zero-order hold, float32 out,
  channels read by every core; median of ``--repeats`` runs), and ``ours1`` with ``n_jobs=1``.
- ``naive``:  ``pd.read_pickle`` + ``resample(period).last().ffill()`` per channel, ``pd.concat``,
  back-fill, float32.
- ``kaggle_*``: ``data.readers.kaggle.read_kaggle`` vs ``pd.read_parquet`` on the Kaggle
  layout of the same mission, 6 channels and all columns.

Usage::

    python benchmarks/bench_data.py [--channels 76] [--days 1000] [--repeats 3]
                                    [--workdir datasets/bench_data]

Wall times depend on other jobs on the machine; the table also gives CPU seconds (user + system,
all threads) of each run.

The mission ``m{channels}x{days}d`` and its ``kaggle/`` copy are made once in ``--workdir`` and
reused only when their ``<folder>.params.json`` records the same arguments (``--groups`` and
``--period`` included), generator code and mission; one made otherwise is refused.

Mission1 scale is ``--days 5114`` (14.7 M grid rows); the naive reader then needs ~20 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import _checkout  # noqa: F401
from _common import machine as _machine
from _common import reusable_scratch, scratch_params, stamp_scratch
from _common import write_section as _write_section

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADER = "## Raw ESA-ADB reader and Kaggle parquet reads (bench_data.py)"


def _peak_rss_mib() -> float:
    """Peak resident memory of this process (VmHWM; ru_maxrss would carry the forking parent's)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _cpu_s() -> float:
    """CPU seconds (user + system, all threads) of this process: less sensitive to other load."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def worker(kind: str, root: Path, period: str) -> dict:
    """One measurement; ``ours`` uses every core, ``ours1`` one thread (``n_jobs=1``)."""
    import numpy as np
    import pandas as pd

    base = _peak_rss_mib()
    info = json.loads((root / "mission.json").read_text())
    cpu0 = _cpu_s()
    t = time.perf_counter()
    if kind in ("ours", "ours1"):
        from esa_lightning.data.readers.esa_adb import read_esa_mission

        m = read_esa_mission(
            root,
            period=period,
            counters=info["counters"],
            use_cache=False,
            n_jobs=1 if kind == "ours1" else None,
        )
        shape, nbytes = m.values.shape, m.values.nbytes
    elif kind == "naive":
        names = pd.read_csv(root / "channels.csv")["Channel"].tolist()
        cols = []
        for n in names:
            s = pd.read_pickle(root / "channels" / f"{n}.zip").iloc[:, 0]
            cols.append(s.resample(period).last().ffill())
        frame = pd.concat(cols, axis=1).ffill().bfill()
        for c in info["counters"]:
            frame[c] = frame[c].diff().fillna(0.0)
        values = frame.to_numpy(np.float32)
        shape, nbytes = values.shape, values.nbytes
    else:
        import pyarrow.parquet as pq

        which, subset = kind.split("_")[1:]
        kroot = root / "kaggle"
        names = [c for c in pq.read_schema(kroot / "train.parquet").names if c.startswith("ch")]
        pick = names[:6] if subset == "6" else names
        if which == "ours":
            from esa_lightning.data.readers.kaggle import read_kaggle

            m = read_kaggle(kroot, channels=pick if subset == "6" else "all", use_cache=False)
            shape, nbytes = m.values.shape, m.values.nbytes
        else:
            cols = None if subset == "all" else ["id", *pick, "is_anomaly"]
            frames = [pd.read_parquet(kroot / "train.parquet", columns=cols)]
            if cols:
                cols = cols[:-1]
            frames.append(pd.read_parquet(kroot / "test.parquet", columns=cols))
            frame = pd.concat(frames, ignore_index=True)
            shape, nbytes = (len(frame), len(pick)), len(frame) * len(pick) * 4
    seconds = time.perf_counter() - t
    return {
        "kind": kind,
        "seconds": seconds,
        "cpu_s": _cpu_s() - cpu0,
        "rows": shape[0],
        "cols": shape[1],
        "out_mib": nbytes / 2**20,
        "peak_rss_mib": _peak_rss_mib(),
        "import_rss_mib": base,
    }


def _run(kind: str, root: Path, period: str) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, "--root", str(root), "--period", period]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        return {"kind": kind, "error": (res.stderr or res.stdout).strip().splitlines()[-1]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def mission_folder(workdir: Path, channels: int, groups: int, days: float,
                   period: str) -> tuple[Path, float | None]:
    """(the generated mission ``m{channels}x{days}d``, its generation seconds or None when
    reused): reused only when made with these arguments by this generator code (its stamp)."""
    from esa_lightning.data.readers.synthetic import generate_mission
    from esa_lightning.data.readers.synthetic_record import generator_code_digest

    root = Path(workdir) / f"m{channels}x{days:g}d"
    params = {"channels": channels, "groups": groups, "days": days, "period": period, "seed": 0,
              "n_telecommands": 40, "generator_code": generator_code_digest()}
    if reusable_scratch(root, params):
        return root, None
    t = time.perf_counter()
    generate_mission(root, channels=channels, groups=groups, days=days, seed=params["seed"],
                     n_telecommands=params["n_telecommands"], period=period)
    stamp_scratch(root, params)
    return root, time.perf_counter() - t


def kaggle_copy(root: Path) -> Path:
    """``root/kaggle``: the mission's Kaggle layout, reused only when made from a mission made
    as ``root`` was (its stamp)."""
    from esa_lightning.data.readers.esa_adb import read_esa_mission
    from esa_lightning.data.readers.synthetic import write_kaggle_layout

    out = root / "kaggle"
    params = {"mission": scratch_params(root)}
    if reusable_scratch(out, params):
        return out
    info = json.loads((root / "mission.json").read_text())
    m = read_esa_mission(root, counters=info["counters"], split_date=info["split_date"],
                         use_cache=False)
    write_kaggle_layout(m, out)
    stamp_scratch(out, params)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--channels", type=int, default=76)
    p.add_argument("--groups", type=int, default=18)
    p.add_argument("--days", type=float, default=1000)
    p.add_argument("--period", default="30s")
    p.add_argument("--workdir", default="datasets/bench_data")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--root", help=argparse.SUPPRESS)
    p.add_argument("--repeats", type=int, default=3, help="runs of our reader (median kept)")
    p.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    a = p.parse_args()
    if a.worker:
        print(json.dumps(worker(a.worker, Path(a.root), a.period)))
        return

    root, gen_s = mission_folder(Path(a.workdir), a.channels, a.groups, a.days, a.period)
    have_kaggle = True
    try:
        import esa_lightning.data.readers.kaggle  # noqa: F401
    except ImportError:
        have_kaggle = False
        print("note: esa_lightning.data.readers.kaggle not available yet; skipping the Kaggle part")
    if have_kaggle:
        kaggle_copy(root)

    load = os.getloadavg()[0]
    # ours is fast and sensitive to other jobs on the machine: median of --repeats runs
    ours = [_run("ours", root, a.period) for _ in range(a.repeats)]
    ours_times = [r["seconds"] for r in ours if "error" not in r]
    ours.sort(key=lambda r: r.get("seconds", float("inf")))
    results = [ours[len(ours) // 2], _run("ours1", root, a.period), _run("naive", root, a.period)]
    if have_kaggle:
        results += [
            _run(k, root, a.period)
            for k in ("kaggle_ours_6", "kaggle_pandas_6", "kaggle_ours_all", "kaggle_pandas_all")
        ]
    for r in results:
        print(json.dumps(r))
    raw_points = sum(int(os.path.getsize(f)) for f in (root / "channels").glob("*.zip"))
    lines = [
        HEADER,
        "",
        f"Command: `python benchmarks/bench_data.py --channels {a.channels} --days {a.days:g}"
        f" --repeats {a.repeats}`",
        f"Machine: {_machine()}; 1-min load average at the start {load:.1f} (other jobs ran"
        " beside it: wall times vary, CPU seconds less so)",
        "",
        f"Synthetic mission: {a.channels} channels, {a.days:g} days, {a.period} grid; "
        f"channel zips {raw_points / 2**20:.0f} MiB"
        + (f"; generated in {gen_s:.0f} s" if gen_s else "")
        + ". Each run in its own process;"
        " peak RSS includes the interpreter and imports (`import` column).",
        "",
        "| reader | rows x cols | time (s) | CPU (s) | rows/s | float32 out (MiB) |"
        " peak RSS (MiB) | import RSS (MiB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    names = {
        "ours": f"`read_esa_mission` (n_jobs=all; median of {a.repeats})",
        "ours1": "`read_esa_mission`, n_jobs=1",
        "naive": "naive pandas (read_pickle + resample.last.ffill)",
        "kaggle_ours_6": "`read_kaggle`, 6 channels",
        "kaggle_pandas_6": "`pd.read_parquet`, 6 channels",
        "kaggle_ours_all": "`read_kaggle`, all columns",
        "kaggle_pandas_all": "`pd.read_parquet`, all",
    }
    by = {}
    for r in results:
        by[r["kind"]] = r
        if "error" in r:
            lines.append(f"| {names[r['kind']]} | failed: {r['error']} |||||||")
            continue
        lines.append(
            f"| {names[r['kind']]} | {r['rows']:,} x {r['cols']} | {r['seconds']:.1f} | "
            f"{r['cpu_s']:.1f} | "
            f"{r['rows'] / r['seconds']:,.0f} | {r['out_mib']:.0f} | {r['peak_rss_mib']:.0f} | "
            f"{r['import_rss_mib']:.0f} |"
        )
    if "error" not in by["ours"] and "error" not in by["naive"]:
        o, n = by["ours"], by["naive"]
        extra = o["peak_rss_mib"] - o["import_rss_mib"]
        lines += [
            "",
            f"Speed-up over the naive reader: **{n['seconds'] / o['seconds']:.1f}x**; our peak RSS "
            f"above the imports = {extra:.0f} MiB = **{extra / o['out_mib']:.2f}x** the float32 "
            f"output (naive: {(n['peak_rss_mib'] - n['import_rss_mib']) / o['out_mib']:.2f}x). "
            f"In CPU seconds: {n['cpu_s'] / o['cpu_s']:.1f}x. Our wall times: "
            + ", ".join(f"{x:.1f}" for x in ours_times)
            + " s.",
        ]
        if "error" not in by["ours1"]:
            lines[-1] += f" With n_jobs=1: {n['seconds'] / by['ours1']['seconds']:.1f}x."
    if not have_kaggle:
        lines += ["", "Kaggle part skipped: `esa_lightning.data.readers.kaggle` was not available."]
    text = "\n".join(lines)
    print(text)
    if not a.no_write:
        _write_section(text)


if __name__ == "__main__":
    main()
