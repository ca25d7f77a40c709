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

This file is the driver (the command line, each size measured or reused, its stamp); beside it:
``_full_scale_mission.py`` (the mission's split, size tags and ``train.py`` overrides),
``_full_scale_workers.py`` (the stages run in a process of their own), ``_full_scale_report.py``
(the table, the plot and the RESULTS.md section), ``_full_scale_records.py`` (saved records read
back).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _checkout  # noqa: E402, F401
from _common import reusable_scratch, scratch_params, stamp_scratch  # noqa: E402
from _full_scale_mission import (  # noqa: E402
    bounded_overrides,
    data_overrides,
    size_tag,
    split_for,
)
from _full_scale_records import refuse_foreign_detector  # noqa: E402
from _full_scale_report import report  # noqa: E402
from _full_scale_workers import features_worker, read_worker, train_worker  # noqa: E402
from bench_predict import (  # noqa: E402
    KAGGLE_TEST_ROWS,
    ROOT,
    generate,
    predict_cmd,
    run_measured,
    write_kaggle_test,
)

from esa_lightning.io import write_text_atomic  # noqa: E402


# ------------------------------------------------------------------------ driver
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
    from esa_lightning.data.readers import digests

    pkg = ROOT / "esa_lightning"
    files = sorted(p for p in pkg.rglob("*") if p.suffix in (".py", ".yaml") and p.is_file())
    files += [ROOT / "train.py", ROOT / "predict.py"]
    return digests.cache_key(
        [[p.relative_to(ROOT).as_posix(), digests.content_digest(p)] for p in files]
    )


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
