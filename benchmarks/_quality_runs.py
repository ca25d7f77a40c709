"""What quality.py runs: measured child processes, config checks, missions, one candidate's run."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import _checkout  # noqa: F401
from _common import tree_rss_kib

from esa_lightning import io
from esa_lightning.data.convert_command import reader_overrides
from esa_lightning.data.readers import digests
from esa_lightning.data.readers.synthetic_record import generator_code_digest

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "esa_lightning" / "conf"
CONVERTER = "esa_lightning.data.convert"
# the code a conversion depends on (the converter, the NASA reader, the layout writers): a
# converted folder made by other code is made again
CONVERTER_CODE = ROOT / "esa_lightning" / "data"
# where the code a generated mission depends on lives (``synthetic_record.GENERATOR_MODULES``:
# the generator, its signals, the layout writers, the grid period): a generated mission made by
# other code is made again
GENERATOR_CODE = ROOT / "esa_lightning" / "data" / "readers"
# what every training run adds: no TensorBoard, plain output, and the test range left unscored
# (predict.py scores it once, from the saved detector)
TRAIN_COMMON = ["logger=none", "trainer.enable_progress_bar=false", "test=false"]
# predict.py scores the test range; alarm figures are left out of its time
PREDICT_COMMON = ["range=test", "max_figures=0"]
RESULT_KEYS = ["EW_F_0.50", "AFF_F_0.50", "AUC_PR", "EWraw_F_0.50", "EW_precision", "EW_recall"]


# ------------------------------------------------------------------------ measurement
def run_measured(cmd: list[str], log_dir: Path, timeout_s: float) -> dict[str, Any]:
    """Run ``cmd`` from the repository root; wall and CPU seconds, peak RSS, exit code, error.

    Peak RSS (MiB) is the larger of the child's own high-water mark (``wait4``: this child and
    the descendants it waited for) and the largest sampled sum over its live process tree
    (worker processes running beside it). The child runs in its own session, so a timeout
    ends it and every process it started.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    t0 = time.perf_counter()
    with open(log_dir / "stdout.txt", "w") as out, open(log_dir / "stderr.txt", "w") as err:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=out, stderr=err, env=env, start_new_session=True
        )
    peak = [0]
    done = threading.Event()
    timed_out = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            peak[0] = max(peak[0], tree_rss_kib(proc.pid))

    def kill() -> None:
        timed_out.set()
        _kill_group(proc.pid)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    timer = threading.Timer(timeout_s, kill)
    timer.daemon = True  # never keeps this process alive
    timer.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except BaseException:
        # Ctrl-C (or any error) while waiting: the child runs in its own session, so the
        # terminal's interrupt never reached it; end it and every process it started
        _kill_group(proc.pid)
        os.waitpid(proc.pid, 0)
        raise
    finally:
        timer.cancel()
        done.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)  # waited here, not by Popen
    rc = proc.returncode
    result = {
        "rc": rc,
        "wall_s": time.perf_counter() - t0,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mib": max(usage.ru_maxrss, peak[0]) / 1024,
        "error": None,
    }
    if timed_out.is_set():
        result["error"] = f"timeout after {timeout_s:.0f} s"
    elif rc < 0:
        result["error"] = f"killed by signal {-rc}"
    elif rc:
        result["error"] = one_line_error((log_dir / "stderr.txt").read_text(errors="replace"))
    return result


def _kill_group(pid: int) -> None:
    """SIGKILL the process group of the child ``pid`` (started in its own session)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b.*")


def one_line_error(stderr: str) -> str:
    """The one line that says why a job failed: the job's own ``error:`` line, else the
    exception line of the traceback, else the first line of Hydra's last message."""
    lines = [ln.rstrip() for ln in stderr.splitlines()]
    for line in reversed(lines):
        if line.startswith("error: "):
            return line[len("error: ") :]
    for line in reversed(lines):
        if _EXCEPTION.match(line):
            return line
    text = stderr.split("Set the environment variable HYDRA_FULL_ERROR")[0].strip()
    blocks = [b for b in re.split(r"\n\s*\n", text) if b.strip()]
    return blocks[-1].strip().splitlines()[0] if blocks else "failed with no message"


# ------------------------------------------------------------------------ configs
def split_overrides(text: str) -> list[str]:
    """Overrides as the shell would split them (``a=1 'b=[x, y]'``)."""
    return shlex.split(text)


_PATH_KEY = re.compile(r"^(data|paths)\.(\w+\.)*(root|\w+_dir)$")


def paths_from_here(text: str) -> str:
    """A user's data overrides with each relative folder (``data.root=mine``, ``*_dir``) made
    absolute from the current folder: the runs start in the checkout, where it would name
    another folder (``--workdir`` and ``--out`` are read from the current folder too)."""
    out = []
    for item in split_overrides(text):
        key, sep, value = item.partition("=")
        if sep and _PATH_KEY.match(key) and value not in ("", "null") and "${" not in value:
            item = f"{key}={Path(value).expanduser().absolute()}"
        out.append(item)
    return shlex.join(out)


def missing_configs(overrides: list[str]) -> list[str]:
    """The ``group=name`` overrides whose ``conf/<group>/<name>.yaml`` does not exist."""
    missing = []
    for item in overrides:
        key, sep, value = item.lstrip("+~").partition("=")
        group = key.split("@", 1)[0]
        if not sep or "." in group or not (CONF / group).is_dir() or value in ("null", ""):
            continue
        for name in value.strip("[]").split(","):
            if name.strip() and not (CONF / group / f"{name.strip()}.yaml").is_file():
                missing.append(f"conf/{group}/{name.strip()}.yaml")
    return missing


# ------------------------------------------------------------------------ missions
_LOAD = """
import json, sys
from hydra import compose, initialize_config_dir
from esa_lightning.data.label_facts import label_facts
from esa_lightning.jobs.common import mission_from_config, one_line_errors
with initialize_config_dir(config_dir=sys.argv[1], version_base="1.3"):
    cfg = compose(config_name="train", overrides=sys.argv[3:])
with one_line_errors():
    m = mission_from_config(cfg.data)
def count(part):
    ev = part.events
    return int(ev["ID"].nunique()) if "ID" in ev and not part.is_multiseries else len(ev)
info = {"summary": m.summary(), "multiseries": m.is_multiseries,
        "val_events": count(m.val()), "test_events": count(m.test())}
facts = label_facts(m)
if facts is not None:
    info["labels"] = facts.summary()
open(sys.argv[2], "w").write(json.dumps(info))
"""


def prepare_mission(name: str, data: list[str], work: Path, timeout_s: float) -> dict[str, Any]:
    """Load the mission once (generating or converting it first where needed, filling the
    readers' caches): its summary, or the one-line reason it cannot be used."""
    log_dir = work / name / "_mission"
    info_file = log_dir / "mission.json"
    info_file.unlink(missing_ok=True)
    cmd = [sys.executable, "-c", _LOAD, str(CONF), str(info_file), *data]
    res = run_measured(cmd, log_dir, timeout_s)
    if res["error"]:
        return failed(res, "mission")
    return {**json.loads(info_file.read_text()), "load_s": res["wall_s"]}


def failed(res: dict[str, Any], step: str) -> dict[str, str]:
    """``{"na": why}`` when a step's command refused its input (exit code 2, a one-line
    ``ESAInputError``), else ``{"error": why}`` (a crash, a timeout: the product failed)."""
    return {"na" if res["rc"] == 2 else "error": f"{step}: {res['error']}"}


# NASA's training files hold no labeled anomaly: half of each channel's labeled stretch goes to
# the training range, so the supervised detectors have events to learn from (issue 20)
CONVERT_ARGS = ["--test-share", "0.5"]


def convert(
    source: Path, out: Path, layout: str, timeout_s: float, extra: Sequence[str] = ()
) -> dict[str, Any]:
    """Run the NASA converter into ``out`` once with ``CONVERT_ARGS`` + ``extra`` (reused while
    ``out/.complete`` records the same converter arguments, source files and converter code:
    ``conversion_stamp``); ``{}`` when done, else ``na`` or ``error`` with the reason."""
    if not (
        (ROOT / "esa_lightning/data/convert.py").is_file()
        or (ROOT / "esa_lightning/data/convert/__init__.py").is_file()
    ):
        return {"na": "converter missing"}
    args = [*CONVERT_ARGS, *extra]
    marker, stamp = out / ".complete", conversion_stamp(source, args)
    if marker.is_file() and marker.read_text() == stamp:
        return {}
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", CONVERTER, "--source", str(source), "--out", str(out),
           "--layout", layout, *args]
    res = run_measured(cmd, out.parent / f"_logs_{out.name}", timeout_s)
    if res["error"]:
        return failed(res, "converter")
    marker.write_text(stamp)
    return {}


def conversion_stamp(source: Path, args: Sequence[str]) -> str:
    """What a converted folder is made from: the converter's arguments, then a hash of the
    source folder's files and of ``CONVERTER_CODE``'s modules (paths and contents)."""
    files = sorted(p for p in Path(source).rglob("*") if p.is_file())
    code = sorted(CONVERTER_CODE.rglob("*.py"))
    key = digests.cache_key(digests.source_identity(files), digests.source_identity(code))
    return " ".join(args) + "\n" + key


def fresh_generated(root: Path, settings: dict[str, Any]) -> None:
    """Remove the generated mission ``root`` of the work folder when another version of the
    generator (``GENERATOR_CODE``) or other ``settings`` made it, so the next read generates it
    again with this code; a stamp beside it (``<root>.generated``) records what made it."""
    stamp = digests.cache_key(settings, generator_code_digest(GENERATOR_CODE))
    marker = root.with_name(root.name + ".generated")
    if marker.is_file() and marker.read_text() == stamp:
        return
    shutil.rmtree(root, ignore_errors=True)
    io.write_text_atomic(marker, stamp)


def development_copy(source: Path, mission: Path, out: Path, timeout_s: float) -> dict[str, Any]:
    """Write ``out`` again with ``esa_lightning.data.development``: the rows of the NASA folder
    ``source`` that the converted ``mission`` trains on; ``{}`` when done, else ``na`` or
    ``error``."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "esa_lightning.data.development", "--source", str(source),
           "--mission", str(mission), "--out", str(out)]
    res = run_measured(cmd, out.parent / f"_logs_{out.name}", timeout_s)
    return failed(res, "development copy") if res["error"] else {}


def converted_overrides(out: Path, data: str) -> list[str]:
    """The data overrides that read a converted folder as its ``mission.json`` records it
    (split date, period, validation range: ``convert_command``); ``data=... data.root=...``
    without one."""
    record = out / "mission.json"
    if not record.is_file():
        return [f"data={data}", f"data.root={out}"]
    return reader_overrides(out, json.loads(record.read_text()))


# ------------------------------------------------------------------------ one candidate
def _metrics(path: Path) -> dict[str, float]:
    return json.loads(path.read_text()) if path.is_file() else {}


def caught_counts(events_csv: Path) -> dict[str, list[int]]:
    """``{class: [caught, events]}`` of the anomalies and rare events in a ``predict.py`` run's
    ``events.csv`` (its category where the labels give no class); ``{}`` without the file."""
    import pandas as pd

    from esa_lightning.metrics.report import SELECTIONS

    if not events_csv.is_file():
        return {}
    events = pd.read_csv(events_csv, dtype={"category": str, "class": str})
    events = events[events["category"].isin(SELECTIONS[""])]  # the events EW_recall counts
    names = events["class"].fillna(events["category"])
    counts = events.groupby(names)["caught"].agg(["sum", "size"])
    return {str(k): [int(c), int(n)] for k, (c, n) in counts.iterrows()}


def run_candidate(
    overrides: list[str], data: list[str], run_dir: Path, timeout_s: float
) -> dict[str, Any]:
    """train.py then predict.py on the test range; every number the leaderboard shows."""
    shutil.rmtree(run_dir, ignore_errors=True)
    train_dir, predict_dir = run_dir / "train", run_dir / "predict"
    train_cmd = [
        sys.executable,
        "train.py",
        *overrides,
        *data,
        *TRAIN_COMMON,
        f"hydra.run.dir={train_dir}",
    ]
    out: dict[str, Any] = {"train_cmd": train_cmd, "test_looks": 0}
    train = run_measured(train_cmd, run_dir / "train_logs", timeout_s)
    out["train"] = train
    trained = _metrics(train_dir / "metrics.json")
    out["train_metrics"] = trained
    # training ran with test=false: a test/ key here would be a second look at the test range
    out["test_looks"] += any(k.startswith("test/") for k in trained)
    if train["error"]:
        # exit code 2 is the product refusing this input (one-line ESAInputError)
        out["status"] = "n/a" if train["rc"] == 2 else "error"
        out["reason"] = f"train: {train['error']}"
        return out
    predict_cmd = [
        sys.executable,
        "predict.py",
        f"ckpt={train_dir / 'detector'}",
        *data,
        *PREDICT_COMMON,
        f"hydra.run.dir={predict_dir}",
    ]
    out["predict_cmd"] = predict_cmd
    pred = run_measured(predict_cmd, run_dir / "predict_logs", timeout_s)
    out["predict"] = pred
    out["test_looks"] += 1
    out["predict_metrics"] = _metrics(predict_dir / "metrics.json")
    out["caught"] = caught_counts(predict_dir / "events.csv")
    if pred["error"]:
        out["status"], out["reason"] = "error", f"predict: {pred['error']}"
        return out
    out["status"], out["reason"] = "ok", ""
    return out


def parse_pairs(items: list[str], what: str) -> dict[str, str]:
    """``NAME=VALUE`` command-line items as a dict."""
    pairs = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"error: {what} takes NAME=OVERRIDES, got {item!r}")
        pairs[name.strip()] = value
    return pairs


def select(names: str | None, table: dict[str, Any], what: str) -> list[str]:
    """The comma-separated names asked for (all without ``names``); unknown ones are an error."""
    if names is None:
        return list(table)
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in table]
    if unknown:
        raise SystemExit(f"error: unknown {what} {unknown}; known: {sorted(table)}")
    return chosen


def last_wins(overrides: list[str]) -> list[str]:
    """Drop an override that a later plain ``key=value`` of the same key replaces anyway."""
    keys = [o.partition("=")[0] if o[:1] not in "+~" else o for o in overrides]
    return [o for i, o in enumerate(overrides) if keys[i] not in keys[i + 1 :]]
