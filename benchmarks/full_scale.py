"""Issue 9: the ``esa_full`` pipeline on Mission1-shaped data, stage by stage, at growing sizes.

A synthetic mission shaped like ESA Mission1 (76 channels in 18 groups / 4 subsystems, 44
telecommands of which 11 have priority 3, so 87 value columns on the 30 s grid) is generated at
each size (days of data), then:

1. ``generate``  : the generator writes the ESA raw layout (own subprocess).
2. ``read``      : ``read_esa_mission`` reads and resamples it, cold (empty cache; writes the
   cache) (own subprocess).
3. ``train``     : ``python train.py experiment=esa_full`` with the Mission1-style split (train =
   first half, validation = the last ``min(90, 20 %)`` days of it, test = second half) and
   BOUNDED training (see ``bounded_overrides``), in its own subprocess. Inside it the pipeline's
   phases are timed by wrapping the library functions (no library code changes): reading the
   cache, feature extraction (``SegmentDataModule.setup``), each component's fit, its
   post rules' fits (every ``PostRule.on_train_end``: threshold, gate, gap closing, ...; metas,
   event head, alarm height), the combiner, evaluation of val+test, saving. Peak
   RSS per phase comes from VmRSS samples (0.2 s) inside that process: it includes what earlier
   phases still hold (the mission arrays, the GRU), as the real run does.
4. ``predict``   : ``python predict.py`` on the test range (own subprocess).

Then ``bench_predict.py``'s Kaggle measurement (521 k-row ``test.parquet``) with the largest
detector, and a table + ``full_scale.png`` written to RESULTS.md. When 14 years (5114 days) is
not among the sizes, it is EXTRAPOLATED from the two largest measured sizes (power law).

Usage::

    python benchmarks/full_scale.py [--days 91 182 365 1095 5114] [--workdir datasets/full_scale]
                                    [--gru-batches 200] [--ensemble-epochs 2]

Each size's result (``result_<tag>.json``) and the Kaggle measurement (``result_kaggle.json``)
are written once complete, with a stamp beside them (``<file>.params.json``: days, channels,
``--gru-batches``, ``--ensemble-epochs`` and a digest of the code measured, ``pipeline_code``;
the Kaggle one: its detector's). ``--reuse`` keeps a saved size only when its stamp records this
run's parameters and this code; ``--report-only`` tabulates saved results only, made with this
run's parameters and all by one code (the largest size's), and measures nothing. A saved result
made otherwise, or without a stamp (an older run), is refused naming both, never reused.
``--after D`` predicts with the detector of size D only when that size's stamp records this
run's parameters and code (else refused: measure the size again without ``--after``).
"""

from __future__ import annotations

import argparse
import json
import math
import runpy
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import reusable_scratch, scratch_params, stamp_scratch  # noqa: E402
from _full_scale_records import before_after, cell, refuse_foreign_detector  # noqa: E402
from bench_predict import (  # noqa: E402
    KAGGLE_TEST_ROWS,
    ROOT,
    RssSampler,
    generate,
    machine,
    predict_cmd,
    replace_section,
    run_measured,
    write_kaggle_test,
)

from esa_lightning.io import write_text_atomic  # noqa: E402

HEADER = "## Full Mission1 scale, stage by stage (full_scale.py)"
MISSION1_DAYS = 5114  # 2000-01-01 .. 2014-01-01
START = "2000-01-01"
PROFILE_NOTE = """two rounds.
(1) py-spy (`pip install py-spy` into the venv) on `predict.py` at 91 days (130 k test rows,
10 Hz): GRU-AE window scoring 39 % (`gru_attention.window_outputs`: every stride-1 window
through encoder and decoder), alarm figures 33 % (`reporting.write_alarm_figures`, up to 100 PNGs),
ensemble featurisation 18 % (shapelet responses 13 %). cProfile of one channel's features:
shapelet responses 80 % (`shapelets._zdot`). Fix in `esa_lightning/data/transforms/shapelets.py`:
responses in cache-sized blocks of 4096 starts (was 65536) and centred in place:
`_sliding_responses` on a 262 k-sample channel 0.47-0.72 s -> 0.15-0.19 s (same values to
1e-16).
(2) The stages that grew fastest with size (1 year, earlier code) were the combiner fit (k 1.16:
it scored the whole training range with both components and held their per-channel scores)
and the evaluation of val+test (k 1.24, and the largest memory: per-channel scores of both
components for whole ranges plus a [T, C] rank transform; extrapolated 16.1 GiB at 14 years).
Fix (`esa_lightning/chunks.py`, `heads/combiner.py`, `training.evaluate`): ranges are scored in
pieces of `chunk_rows` (262 144) with their context, evaluation keeps no per-channel scores
(the metrics read the per-channel alarms), and the combiner fits on at most `max_rows`
(500 000) training rows in blocks of 20 000 (blocks holding labels first), so its cost stops
growing with the mission. py-spy of feature extraction at 1 year (`features-worker`, 127 s):
shapelet responses 51 %, window features 28 % (numpy reductions), shapelet mining 6 %: linear
per-channel work, left as it is."""
STAGES = [
    ("generate", "generate (raw layout)"),
    ("read", "read + resample (cold)"),
    ("features", "feature extraction (segments + shapelets)"),
    ("train gru_ae", "GRU-AE training"),
    ("heads gru_ae", "GRU post-processing fits (all its rules)"),
    ("train channel_ensemble", "ensemble training"),
    ("heads channel_ensemble", "ensemble post-processing fits (metas, event head, height)"),
    ("combiner", "combiner fit"),
    ("evaluate", "evaluate val+test (scoring + metrics)"),
    ("train.py total", "train.py total"),
    ("predict test", "predict.py on the test range"),
]


def split_for(days: float) -> tuple[str, int]:
    """Mission1-style split: test = second half; validation = last min(90, 20 %) train days."""
    import pandas as pd

    split = (pd.Timestamp(START) + pd.Timedelta(days=round(days / 2))).date()
    return str(split), int(min(90, max(1, round(0.2 * days / 2))))


def bounded_overrides(gru_batches: int, ensemble_epochs: int) -> list[str]:
    """What is bounded: GRU 1 epoch of N batches (of 256 windows), ensemble a fixed epoch count."""
    return [
        "components.gru_ae.trainer.max_epochs=1",
        f"+components.gru_ae.trainer.limit_train_batches={gru_batches}",
        f"components.channel_ensemble.trainer.max_epochs={ensemble_epochs}",
        "logger=none",
        "trainer.enable_progress_bar=false",
        "~callbacks.progress_bar",
        "~callbacks.lr_monitor",
    ]


def data_overrides(mission: Path, days: float, cache: Path) -> list[str]:
    info = json.loads((mission / "mission.json").read_text())
    split, val_days = split_for(days)
    return [
        "data=esa",
        f"data.root={mission}",
        f"data.split_date={split}",
        f"data.val_days={val_days}",
        "data.counters=[" + ",".join(info["counters"]) + "]",
        f"data.cache_dir={cache}",
    ]


# ------------------------------------------------------------------------ workers
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


# ------------------------------------------------------------------------ driver
def size_tag(days: float, channels: int = 76) -> str:
    return f"d{int(days)}" + ("" if channels == 76 else f"_c{channels}")


def measure_size(
    days: float, work: Path, gru_batches: int, ens_epochs: int, channels: int = 76
) -> dict:
    """Every stage at one size; returns {stage: {wall_s, peak_rss_mib}} plus rows/channels."""
    tag = size_tag(days, channels)
    mission, cache = work / tag, work / f"cache_{tag}"
    logs = work / "logs"
    res: dict = {"channels": channels}
    split, _ = split_for(days)
    gen = generate(mission, days, split, channels)
    if gen:
        res["generate"] = gen
    shutil.rmtree(cache, ignore_errors=True)
    res["read"] = run_measured(
        [sys.executable, __file__, "read-worker", str(mission), str(cache)],
        logs / f"read_{tag}.log",
    )
    run_dir = work / "runs" / f"train_{tag}"
    shutil.rmtree(run_dir, ignore_errors=True)
    phases_json = work / f"phases_{tag}.json"
    overrides = [
        "experiment=esa_full",
        *data_overrides(mission, days, cache),
        f"hydra.run.dir={run_dir}",
        *bounded_overrides(gru_batches, ens_epochs),
    ]
    res["train.py total"] = run_measured(
        [sys.executable, __file__, "train-worker", str(phases_json), *overrides],
        logs / f"train_{tag}.log",
    )
    res.update(json.loads(phases_json.read_text()))
    pred_dir = work / "runs" / f"predict_{tag}"
    shutil.rmtree(pred_dir, ignore_errors=True)
    cmd = predict_cmd(run_dir / "detector", mission, pred_dir, cache)
    cmd[cmd.index("data=kaggle")] = "data=esa"
    cmd += [
        o for o in data_overrides(mission, days, cache) if not o.startswith(("data=", "data.root"))
    ]
    res["predict test"] = run_measured(cmd, logs / f"predict_{tag}.log")
    res["rows"] = int(round(days * 2880))
    res["train_cmd"] = "python train.py " + " ".join(overrides)
    return res


def pipeline_code() -> str:
    """A digest of the code a measurement runs: the package's modules and configs, train.py
    and predict.py (paths and contents)."""
    from esa_lightning import io

    pkg = ROOT / "esa_lightning"
    files = sorted(p for p in pkg.rglob("*") if p.suffix in (".py", ".yaml") and p.is_file())
    files += [ROOT / "train.py", ROOT / "predict.py"]
    return io.cache_key([[p.relative_to(ROOT).as_posix(), io.content_digest(p)] for p in files])


def result_params(days: float, channels: int, args: argparse.Namespace, code: str) -> dict:
    """What a size's result is measured with: its stamp (``stamp_scratch``)."""
    return {"days": days, "channels": channels, "gru_batches": args.gru_batches,
            "ensemble_epochs": args.ensemble_epochs, "code": code}


def size_result(
    days: float, work: Path, args: argparse.Namespace, code: str, channels: int = 76
) -> dict:
    """One size's result: with --reuse or --report-only the saved one, when its stamp records
    these parameters and ``code`` (else refused: ``reusable_scratch``); else measured, the
    earlier result removed first and the new one written and stamped once complete."""
    saved = work / f"result_{size_tag(days, channels)}.json"
    params = result_params(days, channels, args, code)
    if (args.reuse or args.report_only) and reusable_scratch(saved, params):
        return json.loads(saved.read_text())
    if args.report_only:
        raise SystemExit(f"{saved}: no saved result of {days:g} days, {channels} channels: "
                         "run without --report-only to measure it")
    print(f"=== {days:g} days" + ("" if channels == 76 else f", {channels} channels"), flush=True)
    saved.unlink(missing_ok=True)  # a measurement stopped midway leaves no result behind
    res = measure_size(days, work, args.gru_batches, args.ensemble_epochs, channels=channels)
    write_text_atomic(saved, json.dumps(res, indent=1))
    stamp_scratch(saved, params)
    return res


def measure_after(days: float, work: Path) -> dict:
    """Re-measure feature extraction and test prediction at one size (after a code change)."""
    tag = f"d{int(days)}"
    mission, cache, logs = work / tag, work / f"cache_{tag}", work / "logs"
    res = {
        "features": run_measured(
            [sys.executable, __file__, "features-worker", str(mission), str(days), str(cache)],
            logs / f"features_after_{tag}.log",
        )
    }
    pred_dir = work / "runs" / f"predict_after_{tag}"
    shutil.rmtree(pred_dir, ignore_errors=True)
    cmd = predict_cmd(work / "runs" / f"train_{tag}" / "detector", mission, pred_dir, cache)
    cmd[cmd.index("data=kaggle")] = "data=esa"
    cmd += [
        o for o in data_overrides(mission, days, cache) if not o.startswith(("data=", "data.root"))
    ]
    res["predict test"] = run_measured(cmd, logs / f"predict_after_{tag}.log")
    (work / f"result_after_{tag}.json").write_text(json.dumps(res, indent=1))
    return res


def channel_table(res: dict[int, dict], days: float) -> str:
    """Markdown: the stages at ``days`` for every channel count of ``res`` (this run's
    ``--channel-sweep`` and the 76 channels of its first size)."""
    if len(res) < 2:
        return ""
    counts = sorted(res)
    head = "| stage | " + " | ".join(f"{c} channels" for c in counts) + " | growth exponent |\n"
    head += "|---" * (len(counts) + 2) + "|\n"
    lines = []
    for key, label in STAGES:
        vals = [res[c].get(key) for c in counts]
        if any(v is None for v in vals):
            continue
        y = [v.get("cpu_s") or v["wall_s"] for v in vals]
        k = math.log(y[-1] / y[0]) / math.log(counts[-1] / counts[0]) if y[0] > 0 else math.nan
        lines.append(f"| {label} | " + " | ".join(cell(v) for v in vals) + f" | {k:.2f} |")
    return (f"Growth with the channel count at {days:g} days (groups scaled with the channels, "
            f"44 telecommands; exponent from CPU seconds, smallest to largest count):\n\n"
            + head + "\n".join(lines) + "\n")


def extrapolate(x: list[float], y: list[float], x_new: float) -> tuple[float, float]:
    """(value at x_new, exponent) of the power law through the two largest points."""
    if len(x) < 2:
        return float("nan"), float("nan")
    (x1, y1), (x2, y2) = sorted(zip(x, y, strict=True))[-2:]
    if y1 <= 0 or y2 <= 0 or x1 == x2:
        return y2, float("nan")
    k = math.log(y2 / y1) / math.log(x2 / x1)
    return y2 * (x_new / x2) ** max(k, 1.0 if k > 0.8 else k), k


def report(
    results: dict[float, dict], kaggle: dict | None, work: Path, args, sweep: dict[int, dict]
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(results)
    rows = [results[d]["rows"] for d in sizes]
    m1_rows = MISSION1_DAYS * 2880
    measured_m1 = sizes[-1] >= MISSION1_DAYS
    head = "| stage | " + " | ".join(
        f"{d:.0f} d ({r / 1e6:.2f} M rows)" for d, r in zip(sizes, rows, strict=True)
    )
    head += " | growth exponent (time) |" + ("" if measured_m1 else " 14 y EXTRAPOLATED |")
    head += "\n" + "|---" * (len(sizes) + (2 if measured_m1 else 3)) + "|\n"
    lines = []
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(12, 5))
    total_extra = peak_extra = 0.0
    for key, label in STAGES:
        vals = [results[d].get(key) for d in sizes]
        if any(v is None for v in vals):
            continue
        t = [v["wall_s"] for v in vals]
        mem = [v["peak_rss_mib"] for v in vals]
        t14, k = extrapolate(rows, t, m1_rows)
        if all(v.get("cpu_s") for v in vals):  # CPU seconds: growth less distorted by load
            _, k = extrapolate(rows, [v["cpu_s"] for v in vals], m1_rows)
            t14 = t[-1] * (m1_rows / rows[-1]) ** max(k, 1.0 if k > 0.8 else k)
        m14, _ = extrapolate(rows, mem, m1_rows)
        total_extra += t14 if key == "train.py total" else 0.0
        peak_extra = max(peak_extra, m14)
        cells = " | ".join(cell(v) for v in vals)
        extra = "" if measured_m1 else f" {t14:.0f} s / {m14 / 1024:.1f} GiB |"
        lines.append(f"| {label} | {cells} | {k:.2f} |{extra}")
        ax_t.plot(rows, t, "o-", label=label)
        ax_m.plot(rows, mem, "o-", label=label)
    for ax, name in ((ax_t, "wall time (s)"), (ax_m, "peak RSS (MiB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("grid rows (76 channels + 11 telecommands)")
        ax.set_ylabel(name)
        ax.axvline(m1_rows, color="grey", ls="--")
        ax.grid(True, which="both", alpha=0.3)
    ax_t.legend(fontsize=7)
    fig.suptitle("esa_full on a Mission1-shaped synthetic mission (bounded training)")
    fig.tight_layout()
    fig.savefig(Path(__file__).with_name("full_scale.png"), dpi=110)
    biggest = results[sizes[-1]]
    if measured_m1:
        total = biggest["train.py total"]
        ok_t, ok_m = total["wall_s"] <= 7200, total["peak_rss_mib"] <= 16 * 1024
        verdict = (
            f"Measured 14-year `train.py` run (bounded training; goal <= 2 h, <= 16 GB): "
            f"**{total['wall_s'] / 3600:.2f} h wall ({total['cpu_s'] / 3600:.2f} CPU h), "
            f"{total['peak_rss_mib'] / 1024:.1f} GiB peak**: time goal "
            f"{'met' if ok_t else 'MISSED'}, memory goal {'met' if ok_m else 'MISSED'}. "
            "The training is bounded (see above): a full-length training run adds epochs on top."
        )
    else:
        verdict = (
            f"Extrapolated 14-year `train.py` run (bounded training; goal <= 2 h, <= 16 GB): "
            f"power law through the two largest sizes, per stage: **{total_extra / 3600:.1f} h**, "
            f"peak RSS ~{peak_extra / 1024:.1f} GiB (an EXTRAPOLATION, not a measurement)."
        )
    kag = ""
    if kaggle:
        kag = (
            f"\nPrediction on a Kaggle-style `test.parquet` ({KAGGLE_TEST_ROWS:,} rows x 88 "
            f"columns, id + 87 values; command and detector in the bench_predict.py section): "
            f"**{kaggle['wall_s']:.1f} s, {kaggle['peak_rss_mib']:.0f} MiB** peak RSS "
            f"(goal <= 120 s, <= 4 GB).\n"
        )
    body = f"""Mission1-shaped synthetic mission: 76 channels in 18 groups / 4 subsystems, 44
telecommands of which 11 have priority 3: 87 value columns on the 30 s grid, like Mission1. The
generator cannot be told a target count: it marks counters (6, Mission1 has 8), categorical
channels and channel_1 non-target, which gives **53 targets, not Mission1's 58** (the models
score all 76 channels either way). Sizes measured: {", ".join(f"{d:g}" for d in sizes)} days.
Split like Mission1: train = first half, validation = last min(90 d, 20 %) of it, test =
second half. Bounded training: GRU-AE 1 epoch of {args.gru_batches} batches (x256 windows;
plus its full validation pass and checkpoint, which grow with size); channel ensemble
{args.ensemble_epochs} epochs (batch 128 rows); heads,
combiner, evaluation and prediction run in full. Cells: wall time / peak RSS. `generate`,
`read`, `train.py total` and `predict` are separate subprocesses (peak = largest VmRSS sum over
the process tree, sampled every 0.1 s); the phases in between are timed inside the train
process (peak includes what earlier phases still hold). "Growth exponent" k: time ~ rows^k
between the two largest sizes (1 = linear), from CPU seconds where both sizes have them, else
from wall time. All sizes were measured with the same code, one after another.

{head}{chr(10).join(lines)}
{kag}
{verdict}

{channel_table({**sweep, 76: results[args.days[0]]}, args.days[0])}
Profile and fix: {PROFILE_NOTE}

{before_after(work)}

Machine: {machine()}.

Commands: `python benchmarks/full_scale.py --days {" ".join(f"{d:g}" for d in sizes)}
--gru-batches {args.gru_batches} --ensemble-epochs {args.ensemble_epochs}`; the train run of the
largest size: `{biggest["train_cmd"].replace(str(ROOT) + "/", "")}` (paths made relative).
Plot: `benchmarks/full_scale.png`.
"""
    body = body.replace(str(ROOT) + "/", "")
    print(body)
    replace_section(HEADER, body)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "read-worker":
        return read_worker(Path(argv[1]), Path(argv[2]))
    if argv and argv[0] == "features-worker":
        return features_worker(Path(argv[1]), float(argv[2]), Path(argv[3]))
    if argv and argv[0] == "train-worker":
        return train_worker(Path(argv[1]), argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=float, nargs="+", default=[91, 365, 1095])
    ap.add_argument("--workdir", type=Path, default=Path("datasets/full_scale"))
    ap.add_argument("--gru-batches", type=int, default=200)
    ap.add_argument("--ensemble-epochs", type=int, default=2)
    ap.add_argument("--report-only", action="store_true", help="tabulate saved results")
    ap.add_argument("--reuse", action="store_true", help="keep sizes already measured")
    ap.add_argument("--no-kaggle", action="store_true")
    ap.add_argument("--channel-sweep", type=int, nargs="*", default=[],
                    help="also measure the first size at these channel counts (e.g. 19 38 76)")
    ap.add_argument(
        "--after",
        type=float,
        default=None,
        help="only re-measure features + predict at this size (after a fix)",
    )
    a = ap.parse_args(argv)
    work = a.workdir if a.workdir.is_absolute() else (ROOT / a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    code = pipeline_code()
    largest = work / f"result_{size_tag(max(a.days))}.json"
    if a.report_only and largest.is_file():  # the code its results were measured by
        code = scratch_params(largest)["code"]
    # growth with the channel count at the first size
    sweep = {c: size_result(a.days[0], work, a, code, c) for c in a.channel_sweep if c != 76}
    if a.after:  # the detector a measured size of this code and these settings trained
        refuse_foreign_detector(work / f"result_{size_tag(a.after)}.json", work / "runs"
                                / f"train_{size_tag(a.after)}" / "detector",
                                result_params(a.after, 76, a, code))
        print(json.dumps(measure_after(a.after, work), indent=1))
        return
    results = {d: size_result(d, work, a, code) for d in a.days}
    kaggle = None
    kag_json = work / "result_kaggle.json"
    kag_params = {"detector": result_params(max(a.days), 76, a, code), "rows": KAGGLE_TEST_ROWS}
    if a.report_only and not a.no_kaggle:
        if not reusable_scratch(kag_json, kag_params):
            raise SystemExit(f"{kag_json}: no saved Kaggle measurement: run without "
                             "--report-only to measure it, or report without it (--no-kaggle)")
        kaggle = json.loads(kag_json.read_text())
    elif not a.no_kaggle:
        kag_json.unlink(missing_ok=True)
        src = work / "d365"
        generate(src, 365, split_for(365)[0])
        kdir = write_kaggle_test(
            src, work / f"kaggle_test_{KAGGLE_TEST_ROWS}", KAGGLE_TEST_ROWS, work / "cache_d365"
        )
        run_dir = work / "runs" / "predict_kaggle"
        shutil.rmtree(run_dir, ignore_errors=True)
        det = work / "runs" / f"train_d{int(max(a.days))}" / "detector"
        kaggle = run_measured(
            predict_cmd(det, kdir, run_dir, run_dir / "cache"), work / "logs" / "predict_kaggle.log"
        )
        write_text_atomic(kag_json, json.dumps(kaggle))
        stamp_scratch(kag_json, kag_params)
    report(results, kaggle, work, a, sweep)


if __name__ == "__main__":
    main()
