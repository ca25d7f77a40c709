"""Quality leaderboard: every detector family and experiment trained and scored on a mission suite.

For each (mission, candidate): ``train.py`` with the candidate's overrides (``test=false``: the
test range is not scored by training), then ``predict.py`` from the saved detector on the test
range: each candidate's test range is scored exactly once, and every run is listed, failed ones
included. Thresholds and heads are fitted by the product on training/validation data only;
this script chooses nothing on the test range (the "chosen by validation" line picks by
``val/EW_F_0.50``). Each flagship also gets an ablation row: the same run with near-untrained
networks (one epoch of 3 batches) and the same post-processing, so the table shows what
training adds. ``--seeds 1,2`` trains every candidate that draws at random (``"seed"`` below)
again with each seed, one more row and test look each; the section then gives each one's mean
over its seeds beside its single run: a margin smaller than the seeds' spread says little.

    python benchmarks/quality.py [--missions synthetic,msl] [--candidates gru_ae,zscore]
        [--mission smap="data=nasa data.root=/data/SMAP"] [--override msl:gru_ae="..."]
        [--candidate NAME="OVERRIDES"] [--seeds 1,2] [--timeout 3600] [--tiny] [--out FILE]
        [--workdir DIR]
    python benchmarks/quality.py --from-json outputs/quality.json   # the section again, no runs
    python benchmarks/quality.py --from-json A.json B.json   # B's rows replace A's (a rerun)

Writes its section of ``benchmarks/RESULTS.md`` (or ``--out``) between the quality.py markers
and every number as JSON (``<workdir>.json`` by default). ``--tiny``, ``--missions`` or
``--candidates`` write their section beside the work folder (``outputs/quality_tiny.md``,
``outputs/quality.md``), never over the whole suite's leaderboard; ``--from-json``
of a tiny or development run writes where that run would. A mission that crashes or times out
gives error rows; n/a is kept for a mission or candidate the product refuses (exit code 2).
A later run into the work folder reuses its missions only while what made them is unchanged
(source files, arguments and code of the converter: ``<mission>/.complete``; settings and code,
``esa_lightning/data/readers``, of the generator: ``<mission>.generated``), else makes them again.

    python benchmarks/quality.py --development [--missions msl_esa_dev] [--candidates ...]

runs the same rows on development missions instead: each mission converted from NASA data has
a ``<name>_dev`` twin whose training, validation and test ranges all lie inside that mission's
training rows (``esa_lightning.data.development``, then the same conversion), and the default
synthetic mission's generator runs with seeds 1-3 (``synthetic_seed<S>``; the suite's is seed
0); a ``--mission`` of the user's own runs beside them. A setting can be scored there on
labeled events without a look at any test range of the suite. Its section goes to
``benchmarks/DEVELOPMENT.md`` (or ``--out``), its runs to ``outputs/quality_dev``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import _checkout  # noqa: F401
from _common import machine
from _quality_report import (
    hide_outside,
    merge_runs,
    render_section,
    write_json,
    write_section,
)
from _quality_runs import (
    CONVERT_ARGS,
    CONVERTER,
    ROOT,
    convert,
    converted_overrides,
    development_copy,
    fresh_generated,
    last_wins,
    missing_configs,
    parse_pairs,
    paths_from_here,
    prepare_mission,
    run_candidate,
    select,
    split_overrides,
)

from esa_lightning.cli.overrides import compose_error

# name -> train.py overrides. "flagship" rows get an ablation row; "baseline" rows are marked.
# "seed": what sets every random draw of the candidate to {seed} (--seeds; the run's `seed`
# reaches torch, numpy and random, the models that draw their own samples take model.seed)
CANDIDATES: dict[str, dict[str, Any]] = {
    "gru_ae": {"overrides": "experiment=gru_ae", "kind": "flagship", "seed": "seed={seed}"},
    "esa_full": {
        "overrides": "experiment=esa_full",
        "kind": "flagship",
        "seed": "seed={seed} components.channel_ensemble.model.seed={seed}",
        # its components have trainers of their own, which win over the top-level trainer
        "ablation": "components.gru_ae.trainer.max_epochs=1"
        " ++components.gru_ae.trainer.limit_train_batches=3"
        " components.channel_ensemble.trainer.max_epochs=1"
        " ++components.channel_ensemble.trainer.limit_train_batches=3",
        "tiny": "components.gru_ae.trainer.max_epochs=1"
        " components.channel_ensemble.trainer.max_epochs=1",
    },
    "channel_ensemble": {
        "overrides": "experiment=channel_ensemble",
        "kind": "flagship",
        "seed": "model.seed={seed}",
    },
    "zscore": {"overrides": "experiment=smoke", "kind": "baseline"},
    "global_std": {"overrides": "model=global_std datamodule=rows", "kind": "baseline"},
    "window_pca": {
        "overrides": "model=window_pca",
        "kind": "baseline",
        "seed": "model.seed={seed}",
    },
    # training stride 1: chosen on validation metrics (README)
    "window_knn": {
        "overrides": "model=window_knn datamodule.stride=1",
        "kind": "baseline",
        "seed": "model.seed={seed}",
    },
    "rolling_gbdt": {
        "overrides": "experiment=rolling_gbdt",
        "kind": "baseline",
        "seed": "model.seed={seed}",
    },
}
# near-untrained: one epoch of 3 training batches, post-processing fitted as usual
ABLATION = "trainer.max_epochs=1 ++trainer.limit_train_batches=3"
ABLATION_SUFFIX = " (3 batches)"
# --seeds: the candidate trained again with every random draw set to another seed
SEED_SUFFIX = " (seed {seed})"
# --tiny: what every candidate adds (unless it has its own "tiny" entry)
TINY = "trainer.max_epochs=1"

MSL = "../shared/data/nasa-msl"
# the converted MSL missions have 10,408 rows and a validation range of a few hundred: shorter
# than one pooled row of the channel ensemble's default pooling (200 windows of 50 rows every
# 10: 2,040 rows). 50 windows pooled every 5 (540 rows) is the default shape scaled to fit.
SHORT_POOL = "datamodule.pool=50 datamodule.pool_stride=5"
TEST_RECORDINGS = ("--recordings", "test", "--arrange", "sequential", "--val-share", "0.2")
SHORT_MISSION = {
    "channel_ensemble": f"experiment=channel_ensemble {SHORT_POOL}",
    "esa_full": "experiment=esa_full "
    + " ".join(f"components.channel_ensemble.{o}" for o in SHORT_POOL.split()),
}
# name -> data overrides; "candidates" replaces a candidate's overrides on that mission;
# "convert" first writes the MSL data in another layout with esa_lightning.data.convert (with
# "convert_args" added to its command line; "data" then adds to the converted folder's overrides)
MISSIONS: dict[str, dict[str, Any]] = {
    "synthetic": {"data": ""},
    "msl": {
        "data": "data=nasa_msl",
        # NASA data is independent series: the gru_ae flagship is its per-channel forecaster
        "candidates": {"gru_ae": "experiment=gru_ae_nasa"},
    },
    "msl_kaggle": {"convert": ("kaggle", "kaggle"), "candidates": SHORT_MISSION},
    "msl_esa": {"convert": ("esa", "esa"), "candidates": SHORT_MISSION},
    # NASA's test recordings alone, each cut in half by time, one channel after another: no
    # training-to-test file boundary for the labels to follow, row labels of channels apart
    # (esa_lightning.data.convert: recordings, arrange); 73,729 rows, the default pooling fits;
    # validation: every channel's last 20 % of training rows, after all training rows
    # (val_share; mission.json's range, read by converted_overrides)
    "msl_kaggle_test_rec": {"convert": ("kaggle", "kaggle"), "convert_args": TEST_RECORDINGS},
    "msl_esa_test_rec": {"convert": ("esa", "esa"), "convert_args": TEST_RECORDINGS},
}
DEFAULT_MISSIONS = [
    "synthetic", "msl", "msl_kaggle", "msl_esa", "msl_kaggle_test_rec", "msl_esa_test_rec"
]
# --development: each converted mission's twin inside its training rows
DEV_SUFFIX = "_dev"
DEVELOPMENT = "esa_lightning.data.development"
# --development also runs the default generator with other seeds: missions of the same kind as
# the suite's synthetic one (seed 0), holding none of its rows
DEV_SEEDS = (1, 2, 3)


def development_missions(missions: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``synthetic_seed<S>`` for each of ``DEV_SEEDS`` when the suite has the synthetic
    mission, and ``<name>_dev`` for every mission converted from NASA data: the same conversion
    of the NASA rows that mission trains on (``esa_lightning.data.development``)."""
    seeds = {}
    if "synthetic" in missions:
        seeds = {f"synthetic_seed{s}": {"generate_seed": s} for s in DEV_SEEDS}
    twins = {
        name + DEV_SUFFIX: {**spec, "development_of": name}
        for name, spec in missions.items()
        if "convert" in spec
    }
    return {**seeds, **twins}


# --tiny: one small generated mission (4 channels, 12 days), in the work folder
TINY_GENERATE = {"channels": 4, "groups": 2, "days": 12, "seed": 0}


def tiny_mission(work: Path) -> dict[str, Any]:
    """A small generated mission in the work folder (its own reader cache too)."""
    gen = " ".join(f"data.generate.{k}={v}" for k, v in TINY_GENERATE.items())
    root, cache = work / "data" / "tiny", work / "data" / "cache"
    fresh_generated(root, TINY_GENERATE)
    root, cache = shlex.quote(str(root)), shlex.quote(str(cache))
    return {"data": f"data.root={root} data.cache_dir={cache} data.val_days=2 {gen}"}


def candidate_table(added: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The built-in candidates and the user's baselines, which may not take a built-in name."""
    if clash := sorted(set(added) & set(CANDIDATES)):
        raise SystemExit(f"error: --candidate {clash[0]}=... is a built-in candidate's name: "
                         f"give yours another name (e.g. {clash[0]}_mine), or change the "
                         f"built-in on one mission with --override MISSION:{clash[0]}=OVERRIDES")
    return {**CANDIDATES, **{n: {"overrides": v, "kind": "baseline"} for n, v in added.items()}}


def rows_for(
    name: str, spec: dict[str, Any], seeds: tuple[int, ...] = ()
) -> list[tuple[str, str, str, bool, int | None]]:
    """(row name, kind, base candidate, ablation?, seed) for a candidate, its ablation and, for
    a candidate with a "seed" entry, one row per extra seed (``--seeds``)."""
    rows: list[tuple[str, str, str, bool, int | None]] = [
        (name, spec.get("kind", "baseline"), name, False, None)
    ]
    if spec.get("kind") == "flagship":
        rows.append((name + ABLATION_SUFFIX, "ablation", name, True, None))
    if "seed" in spec:
        rows += [(f"{name}{SEED_SUFFIX.format(seed=s)}", "seed", name, False, s) for s in seeds]
    return rows


def convert_command(source: Any, out: Path, layout: str, extra: list[str]) -> str:
    """The converter's command line as the section shows it."""
    args = [f"--source {source} --out {out} --layout {layout}", *CONVERT_ARGS, *extra]
    return " ".join([f"python -m {CONVERTER}", *args])


def mission_data(name: str, spec: dict[str, Any], work: Path, timeout: float) -> dict[str, Any]:
    """The mission's data overrides, converting first where needed; or why it is n/a."""
    if "generate_seed" in spec:  # generated on first use, in its own folder
        seed, root = int(spec["generate_seed"]), work / "data" / name
        fresh_generated(root, {"seed": seed})
        return {"data": [f"data.root={root}", f"data.generate.seed={seed}"]}
    if "convert" in spec:
        layout, data = spec["convert"]
        extra = list(spec.get("convert_args", ()))
        out = work / "data" / name
        source, shown_source, steps = (ROOT / MSL).resolve(), MSL, []
        if "development_of" in spec:
            parent = work / "data" / spec["development_of"]
            steps.append(convert_command(MSL, parent, layout, extra))
            state = convert(source, parent, layout, timeout, extra)
            shown_source = work / "data" / f"{name}_source"
            steps.append(f"python -m {DEVELOPMENT} --source {MSL} --mission {parent} "
                         f"--out {shown_source}")
            if not state:
                state = development_copy(source, parent, shown_source, timeout)
            if state:
                return {**state, "convert": " && ".join(steps)}
            source = shown_source
            (out / ".complete").unlink(missing_ok=True)  # its source was written again
        steps.append(convert_command(shown_source, out, layout, extra))
        shown = " && ".join(steps)
        state = convert(source, out, layout, timeout, extra)
        if state:
            return {**state, "convert": shown}
        more_data = split_overrides(spec.get("data", ""))
        return {"data": converted_overrides(out, data) + more_data, "convert": shown}
    return {"data": split_overrides(spec.get("data", ""))}


def run_mission(
    name: str, spec: dict[str, Any], candidates: dict[str, dict[str, Any]], a: argparse.Namespace
) -> dict[str, Any]:
    """Every candidate row on one mission."""
    work = a.workdir
    state = mission_data(name, spec, work, a.timeout)
    mission: dict[str, Any] = {"name": name, "rows": [], "convert": state.pop("convert", None)}
    if "data" in state:
        mission["data"] = state["data"]
        info = prepare_mission(name, state["data"], work, a.timeout)
        state = {k: v for k, v in info.items() if k in ("na", "error")}
        mission["info"] = info
    replaced = {**spec.get("candidates", {}), **a.overrides.get(name, {})}
    for cand, cspec in candidates.items():
        for row, kind, base, ablated, seed in rows_for(cand, cspec, a.seeds):
            overrides = split_overrides(replaced.get(base, cspec["overrides"]))
            if a.tiny:
                overrides += split_overrides(cspec.get("tiny", TINY))
            if ablated:
                overrides += split_overrides(cspec.get("ablation", ABLATION))
            if seed is not None:
                overrides += split_overrides(cspec["seed"].format(seed=seed))
            overrides = last_wins(overrides)
            result: dict[str, Any] = {"candidate": row, "kind": kind, "overrides": overrides}
            if seed is not None:  # which candidate's seed row this is (over_seeds reads it)
                result.update(base=base, seed=seed)
            missing = missing_configs(overrides)
            if state.get("na"):
                result.update(status="n/a", reason=state["na"], test_looks=0)
            elif state.get("error"):  # the mission crashed or timed out: the product failed
                result.update(status="error", reason=state["error"], test_looks=0)
            elif missing:
                result.update(
                    status="error",
                    test_looks=0,
                    reason=f"candidate {cand!r}: missing config {', '.join(missing)}",
                )
            elif broken := compose_error("train", [*overrides, *mission["data"]]):
                # train.py would exit 2 on it (composed with the mission's data, as it runs): a
                # candidate's own bad override is its error, not the product refusing a mission
                result.update(status="error", test_looks=0, reason=f"candidate {cand!r}: {broken}")
            else:
                slug = row.replace(" ", "_").replace("(", "").replace(")", "")
                print(f"[quality] {name} / {row}: {' '.join(overrides)}", flush=True)
                result.update(
                    run_candidate(overrides, mission["data"], work / name / slug, a.timeout)
                )
            print(
                f"[quality] {name} / {row}: {result['status']} {result.get('reason', '')}",
                flush=True,
            )
            mission["rows"].append(result)
    return mission


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--missions", default=None, help="comma-separated subset of the suite")
    ap.add_argument("--candidates", default=None, help="comma-separated subset of candidates")
    ap.add_argument(
        "--mission",
        action="append",
        default=[],
        metavar="NAME=OVERRIDES",
        help="add a mission: its data overrides (repeatable; a relative data.root or *_dir "
        "is read from the current folder)",
    )
    ap.add_argument(
        "--candidate",
        action="append",
        default=[],
        metavar="NAME=OVERRIDES",
        help="add a baseline candidate, NAME not a built-in's: its overrides (repeatable)",
    )
    ap.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="MISSION:CANDIDATE=OVERRIDES",
        help="replace a candidate's overrides on one mission (repeatable)",
    )
    ap.add_argument(
        "--seeds",
        default="",
        metavar="S1,S2",
        help="train every built-in candidate that draws at random again with each of these "
        "seeds (a row 'NAME (seed S)' each; the section gives each candidate's mean over its "
        "seeds); a --candidate of your own gets none: add its seeds as candidates of their own",
    )
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per child run")
    ap.add_argument("--tiny", action="store_true", help="a tiny generated mission, 1 epoch")
    ap.add_argument(
        "--development",
        action="store_true",
        help="the converted missions' twins inside their training rows (<name>_dev) and the "
        "synthetic generator's seeds 1-3 (synthetic_seed<S>), with any --mission of your own",
    )
    ap.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="run folders (default outputs/quality or outputs/quality_tiny)",
    )
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results file (default RESULTS.md; DEVELOPMENT.md with --development; beside "
        "the work folder with --tiny, --missions or --candidates)",
    )
    ap.add_argument("--json", type=Path, default=None, help="all numbers (default <workdir>.json)")
    ap.add_argument(
        "--from-json",
        type=Path,
        nargs="+",
        default=None,
        help="write the section again from previous runs' JSON (runs nothing); with several, "
        "a later run's row replaces the same mission and candidate's earlier row",
    )
    a = ap.parse_args(argv)
    if a.tiny and a.development:
        raise SystemExit("error: --tiny and --development do not go together")
    a.out_given = a.out is not None
    kind = "quality_tiny" if a.tiny else "quality_dev" if a.development else "quality"
    a.workdir = (a.workdir or ROOT / "outputs" / kind).resolve()
    subset = bool(a.missions or a.candidates)  # its section would drop every other table
    a.out = (a.out or default_out(a.tiny or subset, a.development, a.workdir)).resolve()
    a.json = (a.json or a.workdir.with_suffix(".json")).resolve()
    try:
        a.seeds = tuple(int(s) for s in a.seeds.split(",") if s.strip())
    except ValueError:
        raise SystemExit(f"error: --seeds takes integers S1,S2, got {a.seeds!r}") from None
    a.overrides = {}
    for key, value in parse_pairs(a.override, "--override").items():
        mission, sep, cand = key.partition(":")
        if not sep:
            raise SystemExit(f"error: --override takes MISSION:CANDIDATE=OVERRIDES, got {key!r}")
        a.overrides.setdefault(mission, {})[cand] = value
    return a


def default_out(aside: bool, development: bool, workdir: Path) -> Path:
    """Where a run's section goes: the suite's into RESULTS.md, the development missions' into
    DEVELOPMENT.md; a tiny run's, or a subset's (``aside``), beside its work folder (never over
    the whole suite's tables)."""
    if aside:
        return workdir.with_suffix(".md")
    return Path(__file__).with_name("DEVELOPMENT.md" if development else "RESULTS.md")


def shown_argument(arg: str) -> str:
    """A command-line argument as the report shows it: an absolute path outside the checkout's
    folder (``--out /tmp/x.md``, a ``--mission`` folder: ``smap="data=nasa data.root=/data/m"``)
    is this machine's, not the project's, and is shown as ``<path outside the checkout>``;
    paths inside are made relative by ``scrub``."""
    name, eq, value = arg.partition("=")
    if eq and not arg.startswith("/") and "=" in value:  # NAME=OVERRIDES: each override
        items = split_overrides(value)
        return name + eq + shlex.join(hide_outside(x, [ROOT.parent]) for x in items)
    return hide_outside(arg, [ROOT.parent])


def report(results: list[dict[str, Any]], meta: dict[str, Any], out: Path) -> None:
    """Write the leaderboard section into ``out`` and print it."""
    workdirs = meta.get("workdirs", [meta["workdir"]])
    section = render_section(results, meta, [ROOT, *map(Path, workdirs)])
    write_section(out, section)
    print(section)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.from_json:
        runs = [json.loads(path.read_text()) for path in a.from_json]
        numbers = merge_runs(runs)
        # where the runs' own kind goes: a tiny or development run never over the leaderboard
        tiny, dev = (any(run["meta"].get(k) for run in runs) for k in ("tiny", "development"))
        workdir = Path(runs[-1]["meta"].get("workdir", ROOT / "outputs" / "quality_tiny"))
        out = a.out if a.out_given else default_out(tiny, dev, workdir).resolve()
        report(numbers["missions"], numbers["meta"], out)
        return 0
    candidates = candidate_table(parse_pairs(a.candidate, "--candidate"))
    missions = {"tiny": tiny_mission(a.workdir)} if a.tiny else dict(MISSIONS)
    added = {
        name: {"data": paths_from_here(value)}
        for name, value in parse_pairs(a.mission, "--mission").items()
    }
    missions.update(added)
    default = list(missions) if a.tiny else DEFAULT_MISSIONS + list(added)
    if a.development:  # the twins, and any mission of the user's own
        missions = {**development_missions(missions), **added}
        default = list(missions)
    for mission, replaced in a.overrides.items():  # a misspelt name would change nothing
        select(mission, missions, "--override missions")
        select(",".join(replaced), candidates, "--override candidates")
    chosen = select(a.missions, missions, "missions") if a.missions else default
    picked = select(a.candidates, candidates, "candidates")  # added ones join the full table
    a.workdir.mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now()
    results = [run_mission(m, missions[m], {c: candidates[c] for c in picked}, a) for m in chosen]
    shown = [shown_argument(x) for x in (sys.argv[1:] if argv is None else argv)]
    argv_text = " ".join(shlex.quote(x) for x in shown)
    meta = {
        "command": f"python benchmarks/quality.py {argv_text}".strip(),
        "machine": machine(),
        "date": started.strftime("%Y-%m-%d %H:%M"),
        "minutes": (datetime.datetime.now() - started).total_seconds() / 60,
        "tiny": a.tiny,
        "development": a.development,
        "workdir": str(a.workdir),
    }
    write_json(a.json, {"meta": meta, "missions": results})
    report(results, meta, a.out)
    print(f"[quality] wrote {a.out} and {a.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
