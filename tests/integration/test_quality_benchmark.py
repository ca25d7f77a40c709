"""benchmarks/quality.py --tiny runs end to end: a leaderboard row for every candidate."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import REPO


def table_rows(text: str) -> dict[str, dict[str, str]]:
    """The leaderboard's rows by candidate name (bold marks removed); the first table of the
    section with `--seeds` (the means over seeds) is not the leaderboard."""
    all_lines = text.splitlines()
    start = next(i for i, ln in enumerate(all_lines) if ln.startswith("| # | candidate |"))
    lines = []
    for ln in all_lines[start:]:  # the leaderboard's own lines: up to the first other line
        if not ln.startswith("|"):
            break
        lines.append(ln)
    lines = [ln for ln in lines if ln.startswith("| ")]
    head = [c.strip() for c in lines[0].strip("|").split(" | ")]
    rows = {}
    for line in lines[1:]:
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        row = dict(zip(head, cells, strict=True))
        rows[row["candidate"].replace("**", "")] = row
    return rows


@pytest.mark.slow
def test_tiny_suite_writes_a_leaderboard_row_for_every_candidate(tmp_path: Path) -> None:
    out, work = tmp_path / "RESULTS.md", tmp_path / "work"
    out.write_text("# Benchmark results\n\n## Another benchmark\n\nits numbers\n")
    cmd = [
        sys.executable,
        "benchmarks/quality.py",
        "--tiny",
        "--candidates",
        "zscore,gru_ae,broken,absent",
        "--candidate",
        "broken=trainer.no_such_key=1",
        "--candidate",
        "absent=model=no_such_model",
        "--workdir",
        str(work),
        "--out",
        str(out),
        "--timeout",
        "300",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    text = out.read_text()
    assert text.startswith("# Benchmark results\n\n## Another benchmark\n\nits numbers\n")
    assert "<!-- quality.py: begin -->" in text and "<!-- quality.py: end -->" in text
    assert str(work) not in text and str(REPO) not in text
    rows = table_rows(text)
    assert set(rows) == {"zscore", "gru_ae", "gru_ae (3 batches)", "broken", "absent"}
    for name in ("zscore", "gru_ae", "gru_ae (3 batches)"):
        row = rows[name]
        assert 0.0 <= float(row["test EW_F_0.50"]) <= 1.0
        assert float(row["train s"]) > 0 and float(row["train peak MiB"]) > 0
        assert float(row["predict s"]) > 0 and row["test looks"] == "1"
    assert rows["gru_ae (3 batches)"]["kind"] == "ablation"
    assert "limit_train_batches=3" in rows["gru_ae (3 batches)"]["train.py overrides"]
    assert rows["broken"]["test EW_F_0.50"] == "error"
    assert "no_such_key" in rows["broken"]["note"]
    assert rows["absent"]["test EW_F_0.50"] == "error"
    assert "conf/model/no_such_model.yaml" in rows["absent"]["note"]
    assert "no test range was scored twice" in text
    numbers = json.loads(work.with_suffix(".json").read_text())
    assert len(numbers["missions"][0]["rows"]) == 5
    # the events each row caught, by class: together the share its EW_recall counts
    assert "Test anomalies and rare events caught" in text
    for row in numbers["missions"][0]["rows"]:
        if row["status"] != "ok":
            continue
        caught, events = (sum(c[i] for c in row["caught"].values()) for i in (0, 1))
        assert events > 0 and caught / events == pytest.approx(
            row["predict_metrics"]["test/EW_recall"]
        )

    # writing again replaces its own section and keeps the rest of the file
    again = [sys.executable, "benchmarks/quality.py", "--from-json", str(work.with_suffix(".json"))]
    done = subprocess.run([*again, "--out", str(out)], cwd=REPO, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert out.read_text() == text


def test_each_row_runs_with_its_own_overrides_and_a_refusal_is_not_an_error(
    tmp_path: Path, monkeypatch
) -> None:
    """The rows of a mission, without running a model: the tiny, ablation and seed overrides
    reach train.py; a train.py that exits 2 (the product refusing the input) gives an n/a row,
    any other failure an error row, and neither is scored on the test range."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import _quality_runs
    import quality

    ran: list[list[str]] = []

    def fake_run(cmd: list[str], log_dir: Path, timeout_s: float) -> dict:
        ran.append(cmd)
        rc = 2 if "model=channel_ensemble" in cmd else 1 if "trainer.no_such_key=1" in cmd else 0
        error = {2: "it trains on datamodule=segments", 1: "Could not override"}.get(rc)
        return {"rc": rc, "error": error, "wall_s": 1.0, "cpu_s": 1.0, "peak_rss_mib": 1.0}

    monkeypatch.setattr(_quality_runs, "run_measured", fake_run)
    monkeypatch.setattr(quality, "prepare_mission", lambda *args: {})
    a = quality.parse_args(["--tiny", "--seeds", "1", "--workdir", str(tmp_path)])
    candidates = {
        "gru_ae": quality.CANDIDATES["gru_ae"],
        "zscore": quality.CANDIDATES["zscore"],
        "refused": {"overrides": "model=channel_ensemble", "kind": "baseline"},
        "broken": {"overrides": "trainer.no_such_key=1", "kind": "baseline"},
    }
    mission = quality.run_mission("tiny", {"data": "data.root=x"}, candidates, a)
    rows = {r["candidate"]: r for r in mission["rows"]}
    assert list(rows) == [
        "gru_ae", "gru_ae (3 batches)", "gru_ae (seed 1)", "zscore", "refused", "broken"
    ]  # zscore draws nothing at random: no seed row
    assert rows["gru_ae"]["overrides"] == ["experiment=gru_ae", "trainer.max_epochs=1"]
    assert rows["gru_ae (3 batches)"]["overrides"][-1] == "++trainer.limit_train_batches=3"
    assert rows["gru_ae (seed 1)"]["overrides"][-1] == "seed=1"
    assert (rows["gru_ae (seed 1)"]["base"], rows["gru_ae (seed 1)"]["seed"]) == ("gru_ae", 1)
    for name in ("gru_ae", "gru_ae (3 batches)", "gru_ae (seed 1)", "zscore"):
        assert rows[name]["status"] == "ok" and rows[name]["test_looks"] == 1
    assert rows["refused"]["status"] == "n/a" and "datamodule=segments" in rows["refused"]["reason"]
    assert rows["broken"]["status"] == "error" and rows["broken"]["test_looks"] == 0
    # an override that does not compose is the candidate's error, found before any run
    assert "Could not override 'trainer.no_such_key'" in rows["broken"]["reason"]
    trained = [cmd for cmd in ran if cmd[1] == "train.py"]
    predicted = [cmd for cmd in ran if cmd[1] == "predict.py"]
    assert len(trained) == 5 and len(predicted) == 4  # no prediction after a failed training
    assert all("data.root=x" in cmd and "test=false" in cmd for cmd in trained)


def test_a_mission_that_crashes_is_an_error_and_one_refused_is_n_a(tmp_path: Path,
                                                                     monkeypatch) -> None:
    """A mission whose loading timed out or crashed was reported n/a ("the product refused
    the input"), and the footer counted 0 errors."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import _quality_runs
    import quality

    a = quality.parse_args(["--tiny", "--workdir", str(tmp_path)])
    cands = {"zscore": quality.CANDIDATES["zscore"]}
    for rc, error, status in ((None, "timeout after 2 s", "error"), (1, "TypeError: x", "error"),
                              (2, "data.root: not found", "n/a")):
        def fake_run(cmd, log_dir, timeout_s, rc=rc, error=error):
            return {"rc": rc, "error": error, "wall_s": 1.0, "cpu_s": 1.0, "peak_rss_mib": 1.0}

        monkeypatch.setattr(_quality_runs, "run_measured", fake_run)
        monkeypatch.setattr(quality, "prepare_mission", _quality_runs.prepare_mission)
        (row,) = quality.run_mission("tiny", {"data": "data.root=x"}, cands, a)["rows"]
        assert (row["status"], row["test_looks"]) == (status, 0)
        assert row["reason"] == f"mission: {error}"


def test_an_interrupt_ends_the_running_child_and_leaves_no_timer(tmp_path: Path,
                                                                  monkeypatch) -> None:
    """Ctrl-C during a run (a child in its own session never gets the terminal's interrupt):
    the child train.py ran on, and quality.py did not exit but waited for its timeout's timer
    thread (--timeout, an hour by default) before killing it."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import _quality_runs

    children: list[int] = []

    def interrupted(pid: int, options: int):
        children.append(pid)
        raise KeyboardInterrupt

    monkeypatch.setattr(_quality_runs.os, "wait4", interrupted)
    cmd = [sys.executable, "-c", "import time; time.sleep(60)"]
    try:
        with pytest.raises(KeyboardInterrupt):
            _quality_runs.run_measured(cmd, tmp_path / "logs", 30)
        (pid,) = children
        with pytest.raises(ChildProcessError):  # ended and reaped, not running on
            os.waitpid(pid, os.WNOHANG)
        timers = [t for t in threading.enumerate() if isinstance(t, threading.Timer)]
        assert not [t for t in timers if t.is_alive() and not t.daemon]
    finally:
        for pid in children:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_the_validation_choice_does_not_depend_on_the_test_run(monkeypatch) -> None:
    """A candidate with the best val EW_F_0.50 whose predict.py failed was left out of "Chosen
    by validation", which then named the runner-up: the test run decided the choice."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    from _quality_report import findings

    def row(name: str, val: float, test: float | None) -> dict:
        status = "ok" if test is not None else "error"
        return {"candidate": name, "kind": "baseline", "status": status,
                "reason": "" if test is not None else "predict: MemoryError",
                "train_metrics": {"val/EW_F_0.50": val},
                "predict_metrics": {} if test is None else {"test/EW_F_0.50": test}}

    mission = {"info": {"val_events": 3},
               "rows": [row("best_val", 0.9, None), row("runner_up", 0.5, 0.8),
                        {"candidate": "failed_training", "kind": "baseline", "status": "error",
                         "reason": "train: timeout", "train_metrics": {"val/EW_F_0.50": 1.0}}]}
    (line,) = [ln for ln in findings(mission) if ln.startswith("- Chosen by validation")]
    assert "best_val (test error), val 0.900" in line and "runner_up" not in line


def test_a_tiny_run_never_writes_over_the_leaderboard(tmp_path: Path, monkeypatch) -> None:
    """--tiny (and --from-json of a tiny run) wrote its two rows over RESULTS.md's suite
    leaderboard; a misspelt --override name changed nothing, silently."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import quality

    a = quality.parse_args(["--tiny", "--workdir", str(tmp_path / "w")])
    assert a.out == (tmp_path / "w.md").resolve()
    assert quality.parse_args([]).out.name == "RESULTS.md"
    assert quality.parse_args(["--development"]).out.name == "DEVELOPMENT.md"
    written = []
    monkeypatch.setattr(quality, "report", lambda rows, meta, out: written.append(out))
    tiny = {"meta": {"command": "c", "date": "d", "minutes": 1, "workdir": str(tmp_path / "w"),
                     "tiny": True}, "missions": []}
    (tmp_path / "tiny.json").write_text(json.dumps(tiny))
    quality.main(["--from-json", str(tmp_path / "tiny.json")])
    assert written == [(tmp_path / "w.md").resolve()]
    for bad in ("tiny:zscor=model=zscore", "tinyy:zscore=model=zscore"):
        with pytest.raises(SystemExit, match="--override"):
            quality.main(["--tiny", "--workdir", str(tmp_path / "w"), "--override", bad])


def test_paths_are_scrubbed_by_whole_parts(monkeypatch) -> None:
    """A user's folder beside the checkout whose name starts with the checkout's
    (/a/repo_ext) came out as ._ext."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    from _quality_report import scrub

    text = ("data.root=/a/repo_ext/tiny /a/repo/outputs/x `/a/repo` /x/a/repo/y "
            "/a/shared/msl /w/run")
    assert scrub(text, [Path("/a/repo"), Path("/w")]) == (
        "data.root=../repo_ext/tiny ./outputs/x `.` /x/a/repo/y ../shared/msl <workdir>/run")


def test_helpers_replace_the_section_and_name_errors(tmp_path: Path, monkeypatch) -> None:
    """The section is replaced in place between other sections; errors come out as one line."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    from _quality_report import BEGIN, END, HEADER, write_section
    from _quality_runs import missing_configs, one_line_error
    from quality import last_wins

    out = tmp_path / "RESULTS.md"
    out.write_text(f"# R\n\n## a\n\nA\n\n{HEADER}\n{BEGIN}\nold\n{END}\n\n## b\n\nB\n")
    write_section(out, f"{HEADER}\n{BEGIN}\nnew\n{END}\n")
    assert out.read_text() == f"# R\n\n## a\n\nA\n\n{HEADER}\n{BEGIN}\nnew\n{END}\n\n## b\n\nB\n"

    assert one_line_error("warning: x\nerror: bad.csv: column 'a': missing\n") == (
        "bad.csv: column 'a': missing"
    )
    hint = "\n\nSet the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace.\n"
    assert one_line_error("Traceback (most recent call last):\n  x\nTypeError: no" + hint) == (
        "TypeError: no"
    )
    hydra = "UserWarning: w\n\nCould not override 'a.b'.\nKey 'b' is not in struct" + hint
    assert one_line_error(hydra) == "Could not override 'a.b'."

    assert missing_configs(["model=gru_ae", "model=nope", "trainer.max_epochs=1"]) == [
        "conf/model/nope.yaml"
    ]
    assert missing_configs(["model/threshold@model.post_processing.threshold=nope"]) == [
        "conf/model/threshold/nope.yaml"
    ]
    assert last_wins(["a=1", "++b=2", "a=3", "++b=2"]) == ["a=3", "++b=2"]


def test_merged_runs_keep_the_latest_row_and_list_the_replaced_ones(monkeypatch) -> None:
    """A rerun of some rows (after a fix) replaces them; the replaced looks stay listed."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    from _quality_report import merge_runs, render_section

    def row(name: str, f: float) -> dict:
        return {
            "candidate": name,
            "kind": "baseline",
            "status": "ok",
            "test_looks": 1,
            "predict_metrics": {"test/EW_F_0.50": f},
            "train_metrics": {},
            "overrides": [f"model={name}"],
        }

    def run(command: str, rows: list[dict]) -> dict:
        meta = {
            "command": command,
            "date": "d",
            "minutes": 1.0,
            "machine": "m",
            "workdir": "/w/" + command,
        }
        mission = {"name": "synthetic", "rows": rows, "data": [f"data.root={command}"]}
        return {"meta": meta, "missions": [mission]}

    merged = merge_runs(
        [run("first", [row("a", 0.1), row("b", 0.2)]), run("second", [row("b", 0.7)])]
    )
    rows = merged["missions"][0]["rows"]
    assert [(r["candidate"], r["predict_metrics"]["test/EW_F_0.50"]) for r in rows] == [
        ("a", 0.1),
        ("b", 0.7),
    ]
    assert merged["missions"][0]["data"] == ["data.root=second"]  # the rerun's mission
    (old,) = merged["meta"]["replaced"]
    assert old["candidate"] == "b" and old["command"] == "first"
    assert merged["meta"]["command"] == "first; then second" and merged["meta"]["minutes"] == 2
    text = render_section(merged["missions"], merged["meta"], [REPO])
    assert "synthetic / b: test EW_F_0.50 0.200 (`first`)" in text
    assert "3 test-range scorings" in text


def test_seeds_add_a_row_per_seed_and_report_the_mean_over_them(monkeypatch) -> None:
    """--seeds: one row per seed for a candidate that draws at random, none for one that does
    not; the section gives the mean over a candidate's runs, and its seed rows are not
    candidates of their own for the validation choice."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    from _quality_report import render_section
    from quality import CANDIDATES, parse_args, rows_for

    assert parse_args(["--seeds", "1,2"]).seeds == (1, 2) and parse_args([]).seeds == ()
    with pytest.raises(SystemExit, match="--seeds takes integers"):
        parse_args(["--seeds", "one"])
    rows = rows_for("esa_full", CANDIDATES["esa_full"], (1, 2))
    assert [(name, kind, seed) for name, kind, _, _, seed in rows] == [
        ("esa_full", "flagship", None),
        ("esa_full (3 batches)", "ablation", None),
        ("esa_full (seed 1)", "seed", 1),
        ("esa_full (seed 2)", "seed", 2),
    ]
    assert [r[0] for r in rows_for("zscore", CANDIDATES["zscore"], (1, 2))] == ["zscore"]

    def row(name: str, kind: str, test: float, val: float) -> dict:
        return {
            "candidate": name,
            "kind": kind,
            "status": "ok",
            "test_looks": 1,
            "predict_metrics": {"test/EW_F_0.50": test},
            "train_metrics": {"val/EW_F_0.50": val},
            "overrides": ["x=1"],
        }

    mission = {
        "name": "synthetic",
        "rows": [
            row("gru_ae", "flagship", 0.8, 0.5),
            row("gru_ae (seed 1)", "seed", 0.6, 0.9),
            row("gru_ae (seed 2)", "seed", 0.7, 0.4),
            row("window_pca", "baseline", 0.5, 0.6),
        ],
    }
    meta = {"command": "c", "date": "d", "minutes": 1.0, "machine": "m", "workdir": "/w"}
    text = render_section([mission], meta, [REPO])
    assert "| synthetic | 0.700 (0.600-0.800, 3 runs) | 0.500 (`window_pca`) |" in text
    assert (
        "- gru_ae over its seeds: test EW_F_0.50 0.800 (main), 0.600 (seed 1), 0.700 (seed 2); "
        "mean 0.700, range 0.200." in text
    )
    assert "no test number used): window_pca (test 0.500), val 0.600." in text

    # seed rows belong to the candidate they name in ``base``, not to one whose name begins
    # theirs: "esa" and "esa (v2)" each get their own
    def seeded(base: str, seed: int, test: float) -> dict:
        return {**row(f"{base} (seed {seed})", "seed", test, 0.5), "base": base, "seed": seed}

    mission["rows"] = [
        row("esa", "flagship", 0.2, 0.5),
        row("esa (v2)", "flagship", 0.8, 0.5),
        seeded("esa (v2)", 1, 0.6),
        seeded("esa", 1, 0.4),
    ]
    text = render_section([mission], meta, [REPO])
    assert "- esa over its seeds: test EW_F_0.50 0.200 (main), 0.400 (seed 1); mean 0.300" in text
    assert "- esa (v2) over its seeds: test EW_F_0.50 0.800 (main), 0.600 (seed 1); mean 0.700" in (
        text
    )


def test_development_twins_lie_inside_their_missions_training_rows(tmp_path: Path, monkeypatch):
    """--development: msl_esa_dev is built from the NASA rows before msl_esa's split alone."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    from quality import MISSIONS, development_missions, mission_data, parse_args

    twins = development_missions(MISSIONS)
    seeds = {"synthetic_seed1", "synthetic_seed2", "synthetic_seed3"}
    assert set(twins) == seeds | {f"{n}_dev" for n, spec in MISSIONS.items() if "convert" in spec}
    # the generator with another seed than the suite's (0), in a folder of its own
    assert mission_data("synthetic_seed2", twins["synthetic_seed2"], tmp_path, 300)["data"] == [
        f"data.root={tmp_path / 'data' / 'synthetic_seed2'}", "data.generate.seed=2"
    ]
    assert not seeds & set(development_missions({"msl_esa": MISSIONS["msl_esa"]}))
    state = mission_data("msl_esa_dev", twins["msl_esa_dev"], tmp_path, 300)
    assert "error" not in state and "na" not in state, state
    assert f"data.root={tmp_path / 'data' / 'msl_esa_dev'}" in state["data"]
    assert "esa_lightning.data.development" in state["convert"]

    parent = json.loads((tmp_path / "data" / "msl_esa" / "mission.json").read_text())
    twin = json.loads((tmp_path / "data" / "msl_esa_dev" / "mission.json").read_text())
    for chan, rows in twin["channels"].items():
        before_split = parent["split_row"] - parent["channels"][chan]["test_rows"][0]
        assert rows["test_rows"][1] - rows["test_rows"][0] + 1 <= before_split
    assert twin["rows"] <= parent["split_row"] and twin["events"] < parent["events"]

    with pytest.raises(SystemExit, match="--development"):
        parse_args(["--tiny", "--development"])


def test_events_caught_are_counted_by_class_and_tabled_per_candidate(
    tmp_path: Path, monkeypatch
) -> None:
    """events.csv into caught / events per class (anomalies and rare events only; the
    category where the labels give no class), and the table: one column per candidate's own
    run, a class a run did not meet left blank, the total last."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    from _quality_report import caught_table
    from _quality_runs import caught_counts

    events = tmp_path / "events.csv"
    events.write_text(
        "series,id,category,class,subclass,start,end,channels,caught,alarms\n"
        ",a,Anomaly,spike,outlier,1,2,c1,1,0\n"
        ",b,Anomaly,spike,outlier,5,6,c1,0,\n"
        ",c,Rare Event,manoeuvre,transient,8,9,c2,1,1\n"
        ",d,Communication Gap,gap,no_data,10,12,c2,1,1\n"
        ",e,Anomaly,,,14,15,,0,\n"
    )
    counts = caught_counts(events)
    assert counts == {"spike": [1, 2], "manoeuvre": [1, 1], "Anomaly": [0, 1]}
    assert caught_counts(tmp_path / "none.csv") == {}

    def row(name: str, kind: str, caught: dict) -> dict:
        return {"candidate": name, "kind": kind, "status": "ok", "caught": caught}

    mission = {
        "rows": [
            row("gru", "flagship", {"spike": [2, 2], "drift": [0, 1]}),
            row("gru (3 batches)", "ablation", {"spike": [0, 2]}),
            row("gru (seed 1)", "seed", {"spike": [0, 2]}),
            row("pca", "baseline", {"spike": [1, 2]}),
            {"candidate": "broken", "kind": "baseline", "status": "error"},
        ]
    }
    lines = caught_table(mission)
    assert lines[2] == "| class | `gru` | `pca` |"
    assert lines[4:] == [
        "| drift | 0 / 1 | – |",
        "| spike | 2 / 2 | 1 / 2 |",
        "| **all** | 2 / 3 | 1 / 2 |",
    ]
    assert caught_table({"rows": [row("old run", "flagship", {})]}) == []


def test_paths_outside_the_checkout_are_not_shown_in_the_command(monkeypatch) -> None:
    """The report's Command line kept --out /tmp/y.md and --json paths verbatim (scrub only
    knew the checkout and the work folders): this machine's paths in the project's results."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    from quality import shown_argument

    hidden = "<path outside the checkout>"
    assert shown_argument("/nowhere/y.md") == hidden
    assert shown_argument("smap=/nowhere/smap") == f"smap={hidden}"
    assert shown_argument(str(REPO / "outputs" / "x.md")) == str(REPO / "outputs" / "x.md")
    assert shown_argument("outputs/x.md") == "outputs/x.md"
    override = "msl:gru_ae=experiment=gru_ae_nasa"
    assert shown_argument(override) == override


def test_a_users_mission_folder_is_not_shown_in_the_report(monkeypatch) -> None:
    """--mission takes data overrides (`smap="data=nasa data.root=/data/SMAP"`), and there the
    folder outside the checkout was kept verbatim, in the Command line and in the mission's
    Data overrides line; only a bare `smap=/data/SMAP`, which no run accepts, was hidden."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    from _quality_report import render_section
    from quality import shown_argument

    hidden = "<path outside the checkout>"
    arg = "smap=data=nasa data.root=/nowhere/SMAP 'data.channels=[A-1, B-1]'"
    assert shown_argument(arg) == (
        f"smap=data=nasa 'data.root={hidden}' 'data.channels=[A-1, B-1]'"
    )
    inside = f"m=data=nasa data.root={REPO / 'outputs' / 'm'}"
    assert shown_argument(inside) == inside
    mission = {"name": "smap", "rows": [], "data": [
        "data=nasa", "data.root=/nowhere/SMAP", f"data.cache_dir={REPO / 'outputs' / 'c'}",
        "data.val_days=2", "data.generate.x=/w/data/tiny"]}
    meta = {"command": "c", "date": "d", "minutes": 1.0, "machine": "m", "workdir": "/w"}
    text = render_section([mission], meta, [REPO, Path("/w")])
    assert "/nowhere" not in text
    assert (f"Data overrides: `data=nasa data.root={hidden} data.cache_dir=./outputs/c "
            "data.val_days=2 data.generate.x=<workdir>/data/tiny`.") in text


def test_a_converted_mission_is_made_again_when_its_source_or_code_changed(
    tmp_path: Path, monkeypatch
) -> None:
    """A converted mission in the work folder was reused while its marker held the same
    converter arguments: after its NASA source (or the converter's code) changed, a rerun
    into the same --workdir scored every row on the old conversion, silently."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import _quality_runs

    from tests.helpers import write_nasa

    rows = [("A-1", "SMAP", "[[5, 9]]", "[point]", 60),
            ("B-1", "SMAP", "[[40, 45]]", "[point]", 60)]
    source, out = write_nasa(tmp_path / "nasa", rows=rows), tmp_path / "work" / "data" / "m"
    assert _quality_runs.convert(source, out, "kaggle", 300) == {}
    first = json.loads((out / "mission.json").read_text())
    made: list[list[str]] = []
    real_run = _quality_runs.run_measured
    monkeypatch.setattr(_quality_runs, "run_measured",
                        lambda cmd, *rest: made.append(cmd) or real_run(cmd, *rest))
    assert _quality_runs.convert(source, out, "kaggle", 300) == {}
    assert made == []  # nothing changed: the folder is reused

    write_nasa(source, rows=[rows[0], ("B-1", "SMAP", "[[20, 25]]", "[point]", 60)])
    assert _quality_runs.convert(source, out, "kaggle", 300) == {}
    assert len(made) == 1 and made[0][2] == _quality_runs.CONVERTER  # converted again
    assert json.loads((out / "mission.json").read_text())["channels"] == first["channels"]

    code = tmp_path / "data_code"
    code.mkdir()
    (code / "convert.py").write_text("# another version of the converter\n")
    monkeypatch.setattr(_quality_runs, "CONVERTER_CODE", code)
    assert _quality_runs.convert(source, out, "kaggle", 300) == {}
    assert len(made) == 2  # the converter's code changed: converted again


def test_a_users_relative_folder_is_read_from_where_quality_py_was_started(
    tmp_path: Path, monkeypatch
) -> None:
    """`--mission mine="data=nasa data.root=mine"` started beside ./mine: its children run in
    the checkout, and the row said "mine: no such folder" (n/a), while --workdir and --out
    were read from the current folder."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import quality

    seen: dict[str, dict] = {}

    def fake_mission(name, spec, candidates, a):
        seen[name] = spec
        return {"name": name, "rows": []}

    monkeypatch.setattr(quality, "run_mission", fake_mission)
    monkeypatch.setattr(quality, "report", lambda *args: None)
    monkeypatch.chdir(tmp_path)
    data = "data=nasa data.root=mine data.cache_dir='my cache' data.root=/abs paths.data_dir=null"
    quality.main(["--mission", f"mine={data}", "--missions", "mine", "--candidates", "zscore",
                  "--workdir", "w", "--out", "w.md"])
    assert quality.split_overrides(seen["mine"]["data"]) == [
        "data=nasa", f"data.root={tmp_path / 'mine'}", f"data.cache_dir={tmp_path / 'my cache'}",
        "data.root=/abs", "paths.data_dir=null"]
    assert (tmp_path / "w.json").is_file()


def test_a_users_mission_runs_with_the_development_missions(tmp_path: Path, monkeypatch) -> None:
    """--development --mission mine=...: the user's mission was dropped silently (only the
    twins ran), and --missions mine called it an unknown mission."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import quality

    seen: list[str] = []
    monkeypatch.setattr(quality, "run_mission",
                        lambda name, *rest: seen.append(name) or {"name": name, "rows": []})
    monkeypatch.setattr(quality, "report", lambda *args: None)
    common = ["--development", "--mission", "mine=data=nasa data.root=/m", "--candidates",
              "zscore", "--workdir", str(tmp_path / "w"), "--out", str(tmp_path / "w.md")]
    quality.main(common)
    assert seen[-1] == "mine" and "msl_esa_dev" in seen and "synthetic_seed1" in seen
    seen.clear()
    quality.main([*common, "--missions", "mine"])
    assert seen == ["mine"]


def test_a_candidates_override_is_checked_with_its_missions_data(tmp_path: Path,
                                                                  monkeypatch) -> None:
    """--override smap:window_pca="model=window_pca data.spacecraft=MSL": the key exists in
    the mission's data config (data=nasa), and train.py takes it, but the check before the run
    composed the candidate's overrides alone (the default data) and gave an error row."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import _quality_runs
    import quality

    ran: list[list[str]] = []

    def fake_run(cmd: list[str], log_dir: Path, timeout_s: float) -> dict:
        ran.append(cmd)
        return {"rc": 0, "error": None, "wall_s": 1.0, "cpu_s": 1.0, "peak_rss_mib": 1.0}

    monkeypatch.setattr(_quality_runs, "run_measured", fake_run)
    monkeypatch.setattr(quality, "prepare_mission", lambda *args: {})
    a = quality.parse_args(["--workdir", str(tmp_path)])
    cands = {"pca": {"overrides": "model=window_pca data.spacecraft=MSL", "kind": "baseline"},
             "typo": {"overrides": "model=window_pca data.spacecraftt=MSL", "kind": "baseline"}}
    mission = quality.run_mission("smap", {"data": "data=nasa data.root=x"}, cands, a)
    pca, typo = mission["rows"]
    assert pca["status"] == "ok" and len(ran) == 2  # trained and scored
    assert typo["status"] == "error" and "data.spacecraftt" in typo["reason"]


def test_a_subset_run_does_not_replace_the_suite_s_leaderboard(tmp_path: Path, monkeypatch):
    """``--missions synthetic --candidates zscore`` without ``--out`` wrote its one row as the
    whole section of RESULTS.md (the section is replaced between its markers), dropping every
    other mission's table; a subset of the development missions did the same to
    DEVELOPMENT.md. A subset now writes beside its work folder, as ``--tiny`` does; the whole
    suite (with any ``--mission`` of the user's own) still writes the leaderboard."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import quality

    work = ["--workdir", str(tmp_path / "w")]
    results = REPO / "benchmarks" / "RESULTS.md"
    assert quality.parse_args(work).out == results.resolve()
    assert quality.parse_args([*work, "--mission", "mine=data.root=x"]).out == results.resolve()
    for subset in (["--missions", "synthetic"], ["--candidates", "zscore"],
                   ["--development", "--missions", "synthetic_seed1"]):
        assert quality.parse_args([*work, *subset]).out == (tmp_path / "w.md").resolve(), subset
    assert quality.parse_args([*work, "--development"]).out.name == "DEVELOPMENT.md"
    given = tmp_path / "x.md"
    assert quality.parse_args([*work, "--missions", "msl", "--out", str(given)]).out == given


def test_a_candidate_of_your_own_may_not_take_a_built_in_name(tmp_path: Path,
                                                               monkeypatch) -> None:
    """``--candidate gru_ae=...`` silently replaced the built-in gru_ae: a plain baseline row
    under the flagship's name (no ablation row, no seed rows), merged over the built-in's rows
    by ``--from-json``. It is refused, naming the clash and what to use instead."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import quality

    ran: list[dict] = []
    monkeypatch.setattr(quality, "run_mission", lambda m, spec, cands, a: ran.append(cands) or {})
    monkeypatch.setattr(quality, "report", lambda *args: None)
    monkeypatch.setattr(quality, "write_json", lambda *args: None)
    work = ["--tiny", "--workdir", str(tmp_path / "w")]
    for name in ("gru_ae", "zscore"):
        with pytest.raises(SystemExit) as refused:
            quality.main([*work, "--candidate", f"{name}=experiment=gru_ae seed=1"])
        message = str(refused.value)
        assert f"--candidate {name}=" in message and "built-in candidate" in message, message
        assert "--override" in message and "another name" in message, message
    assert ran == []  # refused before any run
    quality.main([*work, "--candidate", "gru_s1=experiment=gru_ae seed=1"])
    (cands,) = ran
    assert cands["gru_ae"]["kind"] == "flagship"
    assert cands["gru_s1"] == {"overrides": "experiment=gru_ae seed=1", "kind": "baseline"}


def test_a_generated_mission_is_made_again_when_the_generator_s_code_changed(
    tmp_path: Path, monkeypatch
) -> None:
    """The synthetic_seed<S> and --tiny missions in the work folder were generated on first use
    and then reused whatever the generator's code: after a change of the generator, a rerun into
    the same --workdir scored every row on the mission the old code made, silently."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import _quality_runs
    import quality

    def generated(root: Path) -> Path:  # what load_synthetic leaves on first use
        root.mkdir(parents=True)
        (root / "channels.csv").write_text("made by this code\n")
        return root

    seed_root, tiny_root = tmp_path / "data" / "synthetic_seed2", tmp_path / "data" / "tiny"
    for ask, root in ((lambda: quality.mission_data("synthetic_seed2", {"generate_seed": 2},
                                                    tmp_path, 300), seed_root),
                      (lambda: quality.tiny_mission(tmp_path), tiny_root)):
        ask()
        generated(root)
        ask()
        assert (root / "channels.csv").is_file()  # the same code: reused
        code = tmp_path / f"code_{root.name}"
        code.mkdir()
        (code / "synthetic.py").write_text("# another version of the generator\n")
        monkeypatch.setattr(_quality_runs, "GENERATOR_CODE", code, raising=False)
        ask()
        assert not root.exists()  # generated again on use, by the code of this run
        generated(root)
        ask()
        assert (root / "channels.csv").is_file()
        monkeypatch.undo()
        monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
