"""Issue 9: peak memory of the GRU random-forest head's fit at full Mission1 scale.

The 14-year ``esa_full`` run peaked in the GRU heads phase (15.4 GiB): the forest's features
were built for every window of the 7.4 M-row fit range before the threshold gate kept a few.
This fits ``RandomForestHead`` (esa_full's settings: gate 1.0, 100 trees) on the saved 14-year
detector's GRU, once with the features of all windows then gated (the earlier code, as a plain
reference in this script) and once with ``window_features(wo, gate)`` (the package), each in its
own process; same windows, same forest.

Usage::

    python benchmarks/bench_rf_head.py [--detector datasets/full_scale/runs/train_d5114/detector]
                                       [--mission datasets/full_scale/d5114]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _checkout  # noqa: E402, F401
from _common import machine, replace_section  # noqa: E402
from _full_scale_mission import MISSION1_DAYS, split_for  # noqa: E402
from bench_predict import ROOT, run_measured  # noqa: E402

HEADER = "## GRU random-forest head at 14 years: features of gated windows only (bench_rf_head.py)"


def worker(variant: str, detector: Path, mission_dir: Path, cache: Path, out: Path) -> None:
    import esa_lightning.postprocessing.random_forest as rf
    from esa_lightning.artifact import Detector
    from esa_lightning.data.readers.esa_adb import read_esa_mission

    if variant == "reference":  # features of every window, then the gate
        def all_then_gate(wo, rows=None):
            x = np.concatenate([wo.total[:, None], wo.per_channel, wo.latent,
                                wo.attention_stats], axis=1).astype(np.float32)
            return x if rows is None else x[rows]

        rf.window_features = all_then_gate
    info = json.loads((mission_dir / "mission.json").read_text())
    split, val_days = split_for(MISSION1_DAYS)  # full_scale.py's 14-year split
    m = read_esa_mission(mission_dir, counters=info["counters"], cache_dir=cache,
                         split_date=split, val_days=val_days)
    gru = Detector.load(detector).components["gru_ae"]
    t0 = time.perf_counter()
    forest = rf.RandomForestGate(gate_factor=1.0, n_estimators=100, random_state=0).fit_parts(
        gru, {None: m.fit_range()})
    out.write_text(json.dumps({"fit_s": time.perf_counter() - t0,
                               "trees": 0 if forest is None else len(forest.estimators_),
                               "n_features": 0 if forest is None else forest.n_features_in_}))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--detector", type=Path,
                    default=Path("datasets/full_scale/runs/train_d5114/detector"))
    ap.add_argument("--mission", type=Path, default=Path("datasets/full_scale/d5114"))
    ap.add_argument("--cache", type=Path, default=Path("datasets/full_scale/cache_d5114"))
    ap.add_argument("--worker", nargs=2, default=None)
    a = ap.parse_args(argv)
    if a.worker:
        return worker(a.worker[0], a.detector, a.mission, a.cache, Path(a.worker[1]))
    res = {}
    for variant in ("reference", "ours"):
        out = ROOT / "datasets" / "full_scale" / f"rf_head_{variant}.json"
        cmd = [sys.executable, __file__, "--detector", str(a.detector), "--mission",
               str(a.mission), "--cache", str(a.cache), "--worker", variant, str(out)]
        res[variant] = {**run_measured(cmd, ROOT / "datasets" / "full_scale" / "logs" /
                                       f"rf_head_{variant}.log"),
                        **json.loads(out.read_text())}
        print(variant, res[variant], flush=True)
    r, o = res["reference"], res["ours"]

    def row(name: str, v: dict) -> str:
        return (f"| {name} | {v['wall_s']:.1f} | {v['fit_s']:.1f} | {v['peak_rss_mib']:.0f} | "
                f"{v['trees']} trees, {v['n_features']} features |")

    body = f"""The 14-year `esa_full` run's largest peak was its GRU heads phase. Here the
random-forest head is fitted alone on the saved 14-year detector's GRU over the 7.4 M-row fit range
(esa_full's settings), each variant in its own process (peak = largest sampled VmRSS; the
process also reads the mission and runs the GRU over every window).

| variant | wall s | fit s | peak RSS MiB | forest |
|---|---|---|---|---|
{row("reference: features of every window, then the gate", r)}
{row("ours: `window_features(wo, gate)`", o)}

Peak: {o['peak_rss_mib'] / r['peak_rss_mib']:.2f}x the reference.
Machine: {machine()}.
Command: `python benchmarks/bench_rf_head.py`.
"""
    print(body)
    replace_section(HEADER, body)


if __name__ == "__main__":
    main()
