"""quality.py's output: the markdown leaderboard section, its place in the results file, JSON."""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path
from statistics import fmean
from typing import Any

import _checkout  # noqa: F401

from esa_lightning.io import write_text_atomic

HEADER = "## Quality leaderboard (quality.py)"
BEGIN, END = "<!-- quality.py: begin -->", "<!-- quality.py: end -->"


def _num(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if _finite(value) else "–"


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _test(row: dict[str, Any], key: str) -> Any:
    return row.get("predict_metrics", {}).get(f"test/{key}")


def _headline(row: dict[str, Any]) -> float | None:
    value = _test(row, "EW_F_0.50") if row.get("status") == "ok" else None
    return value if _finite(value) else None


def _val(mission: dict[str, Any], row: dict[str, Any]) -> float | None:
    """val/EW_F_0.50, where the validation range holds labeled events (else the job's 0.0
    says nothing)."""
    if mission.get("info", {}).get("val_events") == 0:
        return None
    value = row.get("train_metrics", {}).get("val/EW_F_0.50")
    return value if _finite(value) else None


def _cell(row: dict[str, Any], value: Any) -> str:
    if row.get("status") == "ok":
        return _num(value)
    return row.get("status", "error")


def _note(row: dict[str, Any]) -> str:
    if row.get("status") == "ok":
        return "" if _headline(row) is not None else "no test metrics (unlabeled test range?)"
    return f"{row['status']} ({row.get('reason', '')})".replace("|", "\\|")


def leaderboard(mission: dict[str, Any]) -> list[str]:
    """One mission's table, best corrected event-wise F0.5 first; failed rows last."""
    raw = bool(mission.get("info", {}).get("multiseries"))
    mae = any("val/forecast_MAE" in r.get("train_metrics", {}) for r in mission["rows"])
    head = ["#", "candidate", "kind", "test EW_F_0.50"]
    head += ["test EWraw_F_0.50"] if raw else []
    head += ["test AFF_F_0.50", "test AUC_PR", "val EW_F_0.50"]
    head += ["val forecast_MAE"] if mae else []
    head += [
        "train s",
        "predict s",
        "train peak MiB",
        "predict peak MiB",
        "test looks",
        "train.py overrides",
        "note",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    rows = sorted(
        mission["rows"], key=lambda r: -(_headline(r) if _headline(r) is not None else -1.0)
    )
    for rank, row in enumerate(rows, 1):
        name = f"**{row['candidate']}**" if row["kind"] == "flagship" else row["candidate"]
        train, pred = row.get("train", {}), row.get("predict", {})
        cells = [str(rank), name, row["kind"], _cell(row, _test(row, "EW_F_0.50"))]
        cells += [_cell(row, _test(row, "EWraw_F_0.50"))] if raw else []
        cells += [
            _cell(row, _test(row, "AFF_F_0.50")),
            _cell(row, _test(row, "AUC_PR")),
            _num(_val(mission, row)),
        ]
        cells += [_num(row.get("train_metrics", {}).get("val/forecast_MAE"), 4)] if mae else []
        cells += [
            _num(train.get("wall_s"), 1),
            _num(pred.get("wall_s"), 1),
            _num(train.get("peak_rss_mib"), 0),
            _num(pred.get("peak_rss_mib"), 0),
            str(row.get("test_looks", 0)),
            "`" + " ".join(row["overrides"]) + "`" if row["overrides"] else "(none)",
            _note(row),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def findings(mission: dict[str, Any]) -> list[str]:
    """The validation choice, and what training adds to each flagship."""
    ok = [r for r in mission["rows"] if r.get("status") == "ok"]
    # every row that trained can be chosen, whatever its test run gave: leaving out one whose
    # predict.py failed would let the test range decide the choice
    trained = [
        r for r in mission["rows"]
        if r.get("status") == "ok" or str(r.get("reason", "")).startswith("predict:")
    ]
    own = [r for r in trained if r["kind"] not in ("ablation", "seed")]  # one per candidate
    scored = [r for r in own if _val(mission, r) is not None]
    out = []
    if scored:
        best = max(_val(mission, r) for r in scored)
        chosen = [r for r in scored if _val(mission, r) == best]
        names = ", ".join(
            f"{r['candidate']} (test "
            f"{_num(_headline(r)) if r.get('status') == 'ok' else r.get('status', 'error')})"
            for r in chosen
        )
        tie = f"a tie of {len(chosen)}: " if len(chosen) > 1 else ""
        out.append(
            f"- Chosen by validation (highest val EW_F_0.50 among the candidates, no test "
            f"number used): {tie}{names}, val {_num(best)}."
        )
    elif trained:
        out.append(
            "- No labeled events in the validation range: no candidate can be chosen by "
            "val EW_F_0.50 (forecasters are compared by val forecast_MAE, where shown)."
        )
    by_name = {r["candidate"]: r for r in ok}
    for row in ok:
        if row["kind"] != "ablation":
            continue
        base = by_name.get(row["candidate"].rsplit(" (", 1)[0])
        if base is not None and _headline(base) is not None and _headline(row) is not None:
            gain = _headline(base) - _headline(row)
            out.append(
                f"- What training adds to {base['candidate']}: test EW_F_0.50 "
                f"{_num(_headline(base))} trained, {_num(_headline(row))} near-untrained "
                f"({gain:+.3f})."
            )
    for name, (values, labels) in over_seeds(mission).items():
        runs = ", ".join(f"{_num(v)} ({label})" for v, label in zip(values, labels, strict=True))
        out.append(
            f"- {name} over its seeds: test EW_F_0.50 {runs}; mean {_num(fmean(values))}, "
            f"range {_num(max(values) - min(values))}."
        )
    return out


def caught_table(mission: dict[str, Any]) -> list[str]:
    """Test events caught per class (``events.csv`` of each row's ``predict.py``), one column
    per candidate's own run (no ablation or seed rows); none when no row has the counts."""
    rows = [
        r for r in mission["rows"]
        if r.get("status") == "ok" and r["kind"] not in ("ablation", "seed") and r.get("caught")
    ]
    if not rows:
        return []
    classes = sorted({name for r in rows for name in r["caught"]})
    head = ["class", *(f"`{r['candidate']}`" for r in rows)]
    lines = [
        "Test anomalies and rare events caught (an alarm overlaps the event: the events "
        "`EW_recall` counts), by class, from each row's `events.csv`:",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for name in [*classes, "all"]:
        cells = [name if name != "all" else "**all**"]
        for r in rows:
            counts = r["caught"].values() if name == "all" else [r["caught"].get(name)]
            counts = [c for c in counts if c]
            caught, events = sum(c[0] for c in counts), sum(c[1] for c in counts)
            cells.append(f"{caught} / {events}" if events else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def over_seeds(mission: dict[str, Any]) -> dict[str, tuple[list[float], list[str]]]:
    """{candidate: (test EW_F_0.50 of its scored runs, their labels)} for every candidate with
    ``--seeds`` rows: its own row ("main") first, then each seed's."""
    out: dict[str, tuple[list[float], list[str]]] = {}
    rows = mission["rows"]
    for base in [r for r in rows if r["kind"] not in ("seed", "ablation")]:
        name = base["candidate"]
        seeded = [r for r in rows if r["kind"] == "seed" and _seeded_from(r)[0] == name]
        if not seeded:
            continue
        pairs = [(_headline(r), f"seed {_seeded_from(r)[1]}") for r in seeded]
        pairs = [(_headline(base), "main"), *pairs]
        scored = [(v, label) for v, label in pairs if v is not None]
        if scored:
            out[name] = ([v for v, _ in scored], [label for _, label in scored])
    return out


def _seeded_from(row: dict[str, Any]) -> tuple[str, str]:
    """(candidate, seed) of a seed row: its ``base`` and ``seed`` fields, or for rows written
    before they existed its name, ``CANDIDATE (seed S)`` (the last such suffix)."""
    if "base" in row:
        return str(row["base"]), str(row["seed"])
    name, _, seed = str(row["candidate"]).rpartition(" (seed ")
    return name, seed.removesuffix(")")


def seeds_table(results: list[dict[str, Any]]) -> list[str]:
    """Each candidate's mean test EW_F_0.50 over its seeds, per mission, beside the best
    baseline's (its mean where it has seeds, else its one run); empty without ``--seeds``."""
    per_mission = {m["name"]: over_seeds(m) for m in results}
    names = list(dict.fromkeys(n for seeds in per_mission.values() for n in seeds))
    if not names:
        return []
    lines = [
        "| mission | " + " | ".join(f"`{n}`" for n in names) + " | best baseline |",
        "|" + "---|" * (len(names) + 2),
    ]
    for mission in results:
        seeds = per_mission[mission["name"]]
        cells = []
        for name in names:
            if name in seeds:
                values = seeds[name][0]
                cells.append(
                    f"{_num(fmean(values))} ({_num(min(values))}-{_num(max(values))}, "
                    f"{len(values)} runs)"
                )
            else:
                cells.append("–")
        baselines = {}
        for row in mission["rows"]:
            if row["kind"] == "baseline" and _headline(row) is not None:
                name = row["candidate"]
                values = seeds[name][0] if name in seeds else [_headline(row)]
                baselines[name] = fmean(values)
        best = max(baselines, key=baselines.get) if baselines else None
        cells.append(f"{_num(baselines[best])} (`{best}`)" if best else "–")
        lines.append(f"| {mission['name']} | " + " | ".join(cells) + " |")
    return lines


def render_section(results: list[dict[str, Any]], meta: dict[str, Any], paths: list[Path]) -> str:
    """The whole section, with this machine's paths taken out."""
    lines = [HEADER, BEGIN, ""]
    lines += [
        "Each row: `train.py` with the row's overrides plus `logger=none test=false` (the test "
        "range is not scored by training; thresholds and heads are fitted on training and "
        "validation data only), then `predict.py ckpt=<run>/detector range=test max_figures=0` "
        "scores the test range once. `test/EW_F_0.50` is the corrected event-wise F0.5 (the "
        "headline). Times are wall seconds of each command (imports, reading, scoring "
        "included); peak MiB is the larger of the process's high-water mark and the largest "
        "sampled (0.2 s) RSS sum over its process tree. Ablation rows: the flagship with one "
        "epoch of 3 training batches (near-untrained networks), the same post-processing. "
        "**Bold**: flagships.",
        "",
    ]
    if meta.get("development"):
        lines += [
            "Development missions (`--development`): each `<name>_dev` lies inside the training "
            "rows of the suite's `<name>` (`python -m esa_lightning.data.development`, then the "
            "same conversion); each `synthetic_seed<S>` is the default generator with seed S "
            "(the suite's synthetic mission is seed 0). Their test ranges are not the suite's: "
            "settings may be chosen here.",
            "",
        ]
    table = seeds_table(results)
    if table:
        lines += [
            "Seed rows, `NAME (seed S)` (`--seeds`): the candidate again with every random draw "
            "set to seed S (the run's `seed`, and `model.seed` where the model draws its own "
            "samples), scored once like any row. Over seeds: each seeded candidate's mean test "
            "EW_F_0.50 over its own run and its seed rows (lowest-highest, runs scored), per "
            "mission:",
            "",
            *table,
            "",
        ]
    total = looks = 0
    for mission in results:
        lines += [f"### {mission['name']}", ""]
        if mission.get("convert"):
            lines.append(f"Data made by `{mission['convert']}`.")
        if "data" in mission:
            places = [paths[0].parent, *paths[1:]]
            data = " ".join(hide_outside(x, places) for x in mission["data"])
            data = data or "(none: the default)"
            lines.append(f"Data overrides: `{data}`.")
        info = mission.get("info", {})
        if "summary" in info:
            lines.append(
                f"Mission: {info['summary']}; {info['val_events']} events in validation, "
                f"{info['test_events']} in test."
            )
        if "labels" in info:  # what a supervised family can learn from (data.label_facts)
            lines.append(f"Training {info['labels']}.")
        lines += ["", *leaderboard(mission), "", *findings(mission), ""]
        caught = caught_table(mission)
        lines += [*caught, ""] if caught else []
        total += len(mission["rows"])
        looks += sum(r.get("test_looks", 0) for r in mission["rows"])
    replaced = meta.get("replaced", [])
    looks += sum(r.get("test_looks", 0) for r in replaced)
    if replaced:
        lines += [
            "Earlier runs replaced by a later run of the same row (after a fix; their test "
            "looks count too):",
            "",
            *(
                f"- {r['mission']} / {r['candidate']}: test EW_F_0.50 {_number(r)} "
                f"(`{r['command']}`)"
                for r in replaced
            ),
            "",
        ]
    rows = [r for m in results for r in m["rows"]]
    counts = {s: sum(r.get("status") == s for r in rows) for s in ("ok", "error", "n/a")}
    twice = [
        f"{m['name']}/{r['candidate']}"
        for m in results
        for r in m["rows"]
        if r.get("test_looks", 0) > 1
    ]
    lines += [
        f"Every look at a test range: {total} candidate rows ({counts['ok']} ok, "
        f"{counts['error']} errors, {counts['n/a']} n/a), {looks} test-range scorings in all "
        f"(the `test looks` column: one `predict.py` per row that trained). "
        + (
            "Each row that trained had its test range scored exactly once, by its "
            "`predict.py`; no test range was scored twice."
            if not twice
            else f"Scored more than once: {', '.join(twice)}."
        ),
        "",
        f"Command: `{meta['command']}` ({meta['minutes']:.1f} min, {meta['date']}; "
        "one thread per run unless `OMP_NUM_THREADS` says otherwise).",
        f"Machine: {meta['machine']}.",
        "",
        END,
    ]
    return scrub("\n".join(lines), paths)


def _number(row: dict[str, Any]) -> str:
    value = (row.get("predict_metrics") or {}).get("test/EW_F_0.50")
    return f"{value:.3f}" if value is not None else row.get("status", "?")


def merge_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Several runs' JSON as one: a later run's row replaces an earlier row of the same
    mission and candidate (kept under ``meta["replaced"]``, with the command that made it), and
    the mission's description (data, split, label facts) is the latest run's."""
    missions: dict[str, dict[str, Any]] = {}
    replaced = []
    for run in runs:
        for mission in run["missions"]:
            into = missions.setdefault(mission["name"], {"rows": []})
            into.update({k: v for k, v in mission.items() if k != "rows"})
            for row in mission["rows"]:
                old = [r for r in into["rows"] if r["candidate"] == row["candidate"]]
                for r in old:
                    replaced.append({**r, "mission": mission["name"], "command": r["_command"]})
                    into["rows"].remove(r)
                into["rows"].append({**row, "_command": run["meta"]["command"]})
    metas = [run["meta"] for run in runs]
    meta = {
        **metas[-1],
        "command": "; then ".join(m["command"] for m in metas),
        "date": metas[0]["date"],
        "minutes": sum(m["minutes"] for m in metas),
        "workdirs": [m["workdir"] for m in metas],
        "replaced": replaced,
    }
    return {"meta": meta, "missions": list(missions.values())}


def scrub(text: str, paths: list[Path]) -> str:
    """Replace this machine's absolute paths: the work folder, the checkout, the interpreter."""
    root = paths[0]
    subs = {sys.executable: "python", str(root): "."}
    if root.parent != root.parent.parent:  # not "/": the checkout's siblings (../shared)
        subs[str(root.parent) + "/"] = "../"
    for extra in paths[1:]:
        subs[str(extra)] = (
            str(extra.relative_to(root)) if extra.is_relative_to(root) else "<workdir>"
        )
    for old in sorted(subs, key=len, reverse=True):
        # whole path parts only: /a/repo is not the start of /a/repo_ext or of /x/a/repo
        after = "" if old.endswith("/") else r"(?![\w.~-])"
        pattern = r"(?<![\w.~/-])" + re.escape(old) + after
        text = re.sub(pattern, lambda _, new=subs[old]: new, text)
    return text


OUTSIDE = "<path outside the checkout>"


def hide_outside(item: str, places: list[Path]) -> str:
    """``item`` (a path, or ``key=path``) with an absolute path under none of ``places`` (the
    checkout's folder, the work folders) shown as ``<path outside the checkout>``: this
    machine's, not the project's."""
    pair = "=" in item and not item.startswith("/")
    key, eq, value = item.partition("=") if pair else ("", "", item)
    path = Path(value)
    if path.is_absolute() and not any(path.resolve().is_relative_to(p) for p in places):
        return f"{key}{eq}{OUTSIDE}"
    return item


def write_section(path: Path, section: str) -> None:
    """Replace the previous quality section of ``path`` (between its markers), keep the rest."""
    old = path.read_text() if path.is_file() else "# Benchmark results\n"
    if BEGIN in old and END in old:
        start = old.rfind(HEADER, 0, old.index(BEGIN))
        start = old.index(BEGIN) if start < 0 else start
        stop = old.index(END) + len(END)
        new = old[:start] + section.rstrip("\n") + old[stop:]
    else:
        new = old.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    write_text_atomic(path, new)


def write_json(path: Path, obj: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(obj, indent=1, default=str))
