"""full_scale.py's workers: the stages it runs in a process of their own (``python
full_scale.py read-worker | features-worker | train-worker ...``), ``train.py``'s phases timed
inside its process by wrapping the library functions (no library code changes)."""

from __future__ import annotations

import json
import runpy
import sys
import time
from pathlib import Path

import _checkout  # noqa: F401
from _full_scale_mission import split_for
from bench_predict import ROOT, RssSampler


def _cpu_self() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def features_worker(mission: Path, days: float, cache: Path) -> None:
    """Feature extraction alone: ``SegmentDataModule.setup`` (segments + shapelet mining)."""
    from esa_lightning.data.readers.esa_adb import read_esa_mission
    from esa_lightning.data.segment_datamodule import SegmentDataModule

    info = json.loads((mission / "mission.json").read_text())
    split, val_days = split_for(days)
    m = read_esa_mission(
        mission, counters=info["counters"], cache_dir=cache, split_date=split, val_days=val_days
    )
    t0 = time.perf_counter()
    SegmentDataModule(m).setup("fit")
    print(f"features {time.perf_counter() - t0:.1f} s")


def read_worker(mission: Path, cache: Path) -> None:
    from esa_lightning.data.readers.esa_adb import read_esa_mission

    info = json.loads((mission / "mission.json").read_text())
    m = read_esa_mission(mission, counters=info["counters"], cache_dir=cache)
    print(m.summary())


def train_worker(phases_json: Path, overrides: list[str]) -> None:
    """``train.py`` in this process with timing wrappers around the pipeline's phases."""
    import esa_lightning.jobs.train as tr
    from esa_lightning.artifact import Detector
    from esa_lightning.data.segment_datamodule import SegmentDataModule
    from esa_lightning.postprocessing.base import PostRule
    from esa_lightning.runtime.combiner import HybridCombiner

    sampler = RssSampler()
    sampler.start()
    phases: list[tuple[str, float, float]] = []

    cpu_of: dict[str, float] = {}

    def timed(name, fn, min_s: float = 0.0):
        def wrapper(*args, **kwargs):
            t0, c0 = time.perf_counter() - sampler.t0, _cpu_self()
            try:
                return fn(*args, **kwargs)
            finally:
                t1 = time.perf_counter() - sampler.t0
                if t1 - t0 >= min_s:
                    phases.append((name, t0, t1))
                    cpu_of[name] = cpu_of.get(name, 0.0) + _cpu_self() - c0

        return wrapper

    tr.mission_from_config = timed("read (cache)", tr.mission_from_config)
    fit = tr.fit_component
    tr.fit_component = lambda name, *a, **k: timed(f"fit {name}", fit)(name, *a, **k)
    SegmentDataModule.setup = timed("features", SegmentDataModule.setup, min_s=0.05)
    # every post rule's fit (threshold, gate, gap closing, ... ; metas, event head, alarm
    # height) counts as its model's heads
    rule_fit = PostRule.on_train_end

    def rule_fit_timed(rule, trainer, pl_module):
        comp = "channel_ensemble" if "Ensemble" in type(pl_module).__name__ else "gru_ae"
        return timed(f"heads {comp}", rule_fit)(rule, trainer, pl_module)

    PostRule.on_train_end = rule_fit_timed
    HybridCombiner.fit = timed("combiner", HybridCombiner.fit)
    tr.evaluate = timed("evaluate", tr.evaluate)
    Detector.save = timed("save", Detector.save)
    sys.argv = ["train.py", *overrides]
    try:
        runpy.run_path(str(ROOT / "train.py"), run_name="__main__")
    finally:
        out = {}
        for name, a, b in phases:
            o = out.setdefault(name, {"wall_s": 0.0, "peak_rss_mib": 0.0})
            o["wall_s"] += b - a
            o["cpu_s"] = cpu_of.get(name, 0.0)
            o["peak_rss_mib"] = max(o["peak_rss_mib"], sampler.peak(a, b))
        for comp in ("gru_ae", "channel_ensemble"):
            fit_o = out.get(f"fit {comp}")
            if fit_o:  # model training = the fit minus features and heads inside it
                sub = sum(
                    out.get(k, {}).get("wall_s", 0.0)
                    for k in (f"heads {comp}",) + (("features",) if comp != "gru_ae" else ())
                )
                out[f"train {comp}"] = {
                    "wall_s": fit_o["wall_s"] - sub,
                    "peak_rss_mib": fit_o["peak_rss_mib"],
                }
        phases_json.write_text(json.dumps(out, indent=1))
