"""What the jobs write and delete: only their own files, with the user's umask, one run per
folder, a prediction published as one set, caches keyed by content (issue 22, items 1, 4, 8, 9)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from esa_lightning import io
from esa_lightning.data.readers import digests
from esa_lightning.errors import ESAInputError
from esa_lightning.jobs.predict import predict
from esa_lightning.jobs.train import train
from esa_lightning.run_folder import MANIFEST, lock_run_folder, staged_outputs
from tests.conftest import REPO, compose_config
from tests.helpers import checkout_env, dead_pid, owned_name, write_esa_csv

QUIET = ["trainer.enable_progress_bar=false", "~callbacks.progress_bar"]


# ------------------------------------------------------------------------------- helpers
@pytest.fixture
def live_pid():
    """The pid of a running process of this machine (another run, as far as cleanup can tell)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield child.pid
    child.kill()
    child.wait()


def user_files(root: Path) -> dict[str, str]:
    """The issue's folder of someone else's files, created under ``root``; path -> content."""
    files = {
        "userdata/projectA/.tmp-notes.txt": "notes",
        "userdata/.tmp-build/obj.o": "object code",
        "userdata/.old-thesis/chapter1.tex": "chapter 1",
        ".tmp-notes.txt": "top-level notes",
        ".old-thesis/chapter2.tex": "chapter 2",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return files


def assert_untouched(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        assert (root / rel).read_text() == text, rel
    assert not (root / "thesis").exists() and not (root / "userdata" / "thesis").exists()


@pytest.fixture(scope="module")
def smoke_detector(small_mission_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("smoke")
    # the 99th percentile of validation scores: it catches some of the mission's events, not all
    train(compose_config("train", ["experiment=smoke", f"data.root={small_mission_dir}",
                                   "model.quantile=99.0", *QUIET], out))
    return out / "detector"


def predict_cfg(detector: Path, mission: Path, out: Path, *extra: str):
    return compose_config("predict", [f"ckpt={detector}", f"data.root={mission}", *extra], out)


# ---------------------------------------------- cleanup: only what is provably ours and stale
def test_predict_leaves_other_peoples_files_in_its_folder(smoke_detector, small_mission_dir,
                                                          tmp_path):
    files = user_files(tmp_path)
    predict(predict_cfg(smoke_detector, small_mission_dir, tmp_path, "max_figures=1"))
    assert_untouched(tmp_path, files)
    assert (tmp_path / "submission.csv").is_file()


def test_train_leaves_other_peoples_files_in_its_folder(small_mission_dir, tmp_path):
    files = user_files(tmp_path)
    train(compose_config("train", ["experiment=smoke", f"data.root={small_mission_dir}",
                                   "logger=none", *QUIET], tmp_path))
    assert_untouched(tmp_path, files)
    assert (tmp_path / "detector" / "detector.json").is_file()


def test_another_live_runs_temporaries_survive(smoke_detector, small_mission_dir, tmp_path,
                                               live_pid):
    """hydra.run.dir=. beside another run: its in-flight detector and cache entry stay."""
    detector = tmp_path / owned_name(".tmp-", live_pid, "detector.k3j2")
    (detector / "components").mkdir(parents=True)
    entry = tmp_path / owned_name(".tmp-", live_pid, "0123456789abcdef0123.x8")
    entry.mkdir()
    (entry / "values.npy").write_bytes(b"half-written")
    backup = tmp_path / owned_name(".old-", live_pid, "detector")
    backup.mkdir()
    legacy = tmp_path / ".tmp-detector"  # an older version's name: not provably ours
    legacy.mkdir()
    predict(predict_cfg(smoke_detector, small_mission_dir, tmp_path, "max_figures=1"))
    assert (detector / "components").is_dir() and backup.is_dir() and legacy.is_dir()
    assert (entry / "values.npy").read_bytes() == b"half-written"


def test_a_dead_runs_leftovers_are_cleaned_and_its_backup_restored(tmp_path):
    pid = dead_pid()
    (tmp_path / owned_name(".tmp-", pid, "submission.csv.a1")).write_text("torn")
    (tmp_path / owned_name(".tmp-", pid, "detector.b2") / "components").mkdir(parents=True)
    restored = tmp_path / owned_name(".old-", pid, "detector")
    (restored / "detector.json").parent.mkdir()
    (restored / "detector.json").write_text("{}")
    (tmp_path / "cache").mkdir()
    superseded = tmp_path / owned_name(".old-", pid, "cache")
    superseded.mkdir()
    inside = tmp_path / "projectA" / owned_name(".tmp-", pid, "x.c3")  # not a folder we write into
    inside.parent.mkdir()
    inside.write_text("mine")
    assert io.remove_stale_temporaries(tmp_path) == 4
    assert (tmp_path / "detector" / "detector.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "detector", "projectA"]
    assert inside.read_text() == "mine"


def test_the_reader_cache_keeps_a_live_writers_entry_however_old(tmp_path, live_pid):
    from esa_lightning.data.readers.esa_csv import read_esa_csv

    cache = tmp_path / "cache"
    live = cache / owned_name(".tmp-", live_pid, "0123456789abcdef0123.r1")
    dead = cache / owned_name(".tmp-", dead_pid(), "0123456789abcdef0123.r2")
    for folder in (live, dead):
        folder.mkdir(parents=True)
        (folder / "values.npy").write_bytes(b"torn")
        os.utime(folder / "values.npy", (1.0, 1.0))  # older than any age limit
        os.utime(folder, (1.0, 1.0))
    read_esa_csv(write_esa_csv(tmp_path / "m.csv"), cache_dir=cache)
    assert (live / "values.npy").read_bytes() == b"torn"
    assert not dead.exists()


# ------------------------------------------------------------------------------- umask
def file_modes(root: Path) -> dict[str, tuple[bool, int]]:
    return {
        str(p.relative_to(root)): (p.is_dir(), stat.S_IMODE(p.stat().st_mode))
        for p in root.rglob("*")
    }


@pytest.mark.parametrize("mask", [0o022, 0o027])
def test_every_output_and_cache_entry_follows_the_umask(smoke_detector, small_mission_dir,
                                                        tmp_path, mask):
    from fsspec.implementations.local import get_umask

    before = os.umask(mask)
    get_umask.cache_clear()  # fsspec (Lightning's checkpoints) reads it once per process
    try:
        mission = tmp_path / "mission"
        shutil.copytree(small_mission_dir, mission)
        cache = tmp_path / "cache"
        out = tmp_path / "predict"
        predict(predict_cfg(smoke_detector, mission, out, "max_figures=2",
                            f"data.cache_dir={cache}"))
        train(compose_config("train", ["experiment=smoke", f"data.root={mission}", *QUIET,
                                       f"data.cache_dir={cache}"], tmp_path / "train"))
    finally:
        os.umask(before)
        get_umask.cache_clear()
    found = {**file_modes(out), **file_modes(cache), **file_modes(tmp_path / "train")}
    assert any(name.endswith(".png") for name in found) and "submission.csv" in found
    assert "events.csv" in found
    assert any(name.endswith(".npy") for name in found) and "detector/detector.json" in found
    for name, (is_dir, mode) in found.items():
        assert mode == (0o777 if is_dir else 0o666) & ~mask, (name, oct(mode))



def test_a_detector_saved_again_follows_this_run_s_umask(smoke_detector, tmp_path):
    """Its Lightning checkpoint was copied with ``shutil.copy2``, which copies the source's mode:
    a detector trained (or a merge's source) under ``umask 077`` saved again under ``umask 022``
    (``Detector.load(old).save(new)``, ``merge.py``) kept an owner-only ``lightning.ckpt``
    beside files every other reader could read."""
    from esa_lightning.artifact import Detector

    source = tmp_path / "source"
    shutil.copytree(smoke_detector, source)
    for p in source.rglob("*"):
        p.chmod(0o700 if p.is_dir() else 0o600)  # as written under umask 077
    assert (source / "components" / "smoke" / "lightning.ckpt").is_file()
    before = os.umask(0o022)
    try:
        saved = Detector.load(source).save(tmp_path / "again")
    finally:
        os.umask(before)
    for name, (is_dir, mode) in file_modes(saved).items():
        assert mode == (0o755 if is_dir else 0o644), (name, oct(mode))


# ------------------------------------------------------------------------ cache identity
@pytest.mark.parametrize("reader", ["esa_csv", "kaggle"])
def test_an_edit_keeping_size_and_mtime_is_not_served_stale(tmp_path, reader):
    from esa_lightning.data.readers.esa_csv import read_esa_csv
    from esa_lightning.data.readers.kaggle import read_kaggle
    from tests.helpers import write_kaggle

    cache = tmp_path / "cache"
    if reader == "esa_csv":
        source = write_esa_csv(tmp_path / "m.csv")
        read = lambda: read_esa_csv(source, cache_dir=cache)  # noqa: E731
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        source = write_kaggle(tmp_path / "train.parquet")
        test = pq.read_table(source)
        ids = pa.array(np.arange(40, 80, dtype=np.int64))
        pq.write_table(test.set_column(0, "id", ids), tmp_path / "test.parquet")
        read = lambda: read_kaggle(tmp_path, cache_dir=cache)  # noqa: E731
    before = np.array(read().values)
    st = source.stat()
    data = bytearray(source.read_bytes())
    if reader == "esa_csv":  # same length: the first channel's leading digit of every row
        text = data.decode().replace(",0.", ",7.", 10)
        data = bytearray(text.encode())
    else:  # a float64 of the first channel's column chunk, same byte count
        at = data.index(np.float64(np.sin(5 / 3.0)).tobytes())
        data[at : at + 8] = np.float64(123.0).tobytes()
    source.write_bytes(bytes(data))
    os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (source.stat().st_size, source.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    after = np.array(read().values)
    assert not np.array_equal(before, after)
    fresh = np.array({"esa_csv": lambda: read_esa_csv(source, use_cache=False),
                      "kaggle": lambda: read_kaggle(tmp_path, use_cache=False)}[reader]().values)
    np.testing.assert_array_equal(after, fresh)


def test_an_unchanged_source_is_hashed_once(tmp_path, monkeypatch):
    """The digest is remembered under the file's change stamp, across processes (digests.json):
    a cache hit does not read a large source again."""
    from esa_lightning.data.readers.esa_csv import read_esa_csv

    source = write_esa_csv(tmp_path / "m.csv")
    cache = tmp_path / "cache"
    hashed = []
    real = digests.content_digest
    monkeypatch.setattr(digests, "content_digest", lambda p: hashed.append(p) or real(p))
    # read some seconds after it was written: a digest taken in the second of the last write is
    # not remembered (test_cache_keys.py, a coarse file-system clock)
    monkeypatch.setattr(digests, "_now_ns", lambda: time.time_ns() + digests.SETTLED_NS)
    read_esa_csv(source, cache_dir=cache)
    monkeypatch.setattr(digests, "_digests", {})  # as a new process
    read_esa_csv(source, cache_dir=cache)
    assert hashed == [source.resolve()]
    os.utime(source)  # touched: its ctime changes, so it is hashed again
    read_esa_csv(source, cache_dir=cache)
    assert len(hashed) == 2


# ---------------------------------------------------------------------- runs sharing a folder
HOLDER = textwrap.dedent(
    """
    import sys, time
    from esa_lightning.run_folder import lock_run_folder
    with lock_run_folder(sys.argv[1]):
        print("held", flush=True)
        time.sleep(120)
    """
)


@pytest.fixture
def held_folder(tmp_path):
    """A run folder held by another live process."""
    folder = tmp_path / "run"
    folder.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], cwd=REPO,
                              stdout=subprocess.PIPE, text=True, env=checkout_env())
    assert holder.stdout.readline().strip() == "held"
    yield folder, holder
    holder.kill()
    holder.wait()
    holder.stdout.close()


def test_a_second_train_py_into_a_held_folder_stops_with_one_line(held_folder,
                                                                  small_mission_dir):
    folder, holder = held_folder
    proc = subprocess.run(
        [sys.executable, "train.py", "experiment=smoke", f"data.root={small_mission_dir}",
         f"hydra.run.dir={folder}", "logger=none", *QUIET],
        cwd=REPO, capture_output=True, text=True, env=checkout_env(), timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {folder}: another run is writing into this folder")
    assert f"pid {holder.pid}" in last and "Traceback" not in proc.stderr
    assert sorted(p.name for p in folder.iterdir()) == [".esa_lightning.lock"]  # no .hydra/, log


def test_predict_and_merge_refuse_a_held_folder_and_take_it_once_the_holder_died(
    held_folder, smoke_detector, small_mission_dir
):
    from esa_lightning.jobs.merge import merge

    folder, holder = held_folder
    with pytest.raises(ESAInputError, match="another run is writing into this folder"):
        predict(predict_cfg(smoke_detector, small_mission_dir, folder))
    cfg = compose_config("merge", [f"detectors=[{smoke_detector},{smoke_detector}]",
                                   f"data.root={small_mission_dir}"], folder)
    with pytest.raises(ESAInputError, match="another run is writing into this folder"):
        merge(cfg)
    assert sorted(p.name for p in folder.iterdir()) == [".esa_lightning.lock"]
    holder.kill()  # the kernel releases its lock: no stale lock to remove by hand
    holder.wait()
    predict(predict_cfg(smoke_detector, small_mission_dir, folder, "max_figures=1"))
    assert (folder / "submission.csv").is_file()
    assert not (folder / ".esa_lightning.lock").exists()


def test_runs_started_in_the_same_second_get_their_own_folders(tmp_path):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    folders = []
    for _ in range(2):
        GlobalHydra.instance().clear()
        conf = REPO / "esa_lightning" / "conf"
        with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
            cfg = compose("predict", return_hydra_config=True)
        folders.append(cfg.hydra.run.dir)
    assert folders[0] != folders[1]


# ------------------------------------------------ the metrics name the range they scored
def test_metrics_of_every_row_are_not_called_test_metrics(smoke_detector, small_mission_dir,
                                                            tmp_path):
    """range=all scores the training and validation rows too (those the threshold was fitted
    on): its metrics are all/..., never test/..."""
    test_only = predict(predict_cfg(smoke_detector, small_mission_dir, tmp_path / "t",
                                    "max_figures=0"))
    every_row = predict(predict_cfg(smoke_detector, small_mission_dir, tmp_path / "a",
                                    "range=all", "max_figures=0"))
    written = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert written == every_row and "all/EW_F_0.50" in written
    assert not [k for k in written if not k.startswith("all/")]
    assert test_only and not [k for k in test_only if not k.startswith("test/")]
    assert {k.split("/", 1)[1] for k in written} == {k.split("/", 1)[1] for k in test_only}


def test_evaluate_lists_the_events_its_predictions_caught_as_predict_does(
    smoke_detector, small_mission_dir, tmp_path
):
    """evaluate.py on predict.py's own submission: the same events.csv, alarm numbers
    included (its alarms are the submission's runs of 1, as predict's intervals are)."""
    from esa_lightning.jobs.evaluate import evaluate_predictions

    predict(predict_cfg(smoke_detector, small_mission_dir, tmp_path / "p", "max_figures=0"))
    ecfg = compose_config("evaluate", [f"predictions={tmp_path / 'p' / 'submission.csv'}",
                                       f"data.root={small_mission_dir}"], tmp_path / "e")
    evaluate_predictions(ecfg)
    mine = pd.read_csv(tmp_path / "e" / "events.csv")
    theirs = pd.read_csv(tmp_path / "p" / "events.csv")
    pd.testing.assert_frame_equal(mine, theirs)
    assert mine["caught"].any() and not mine["caught"].all()  # the comparison bites


# ------------------------------------------------------------- a prediction is one set
def test_labeled_then_unlabeled_prediction_leaves_none_of_the_old_outputs(
    smoke_detector, small_mission_dir, tmp_path
):
    out = tmp_path / "run"
    predict(predict_cfg(smoke_detector, small_mission_dir, out, "max_figures=4"))
    first = sorted(p.name for p in (out / "alarms").iterdir())
    assert (out / "metrics.json").is_file() and len(first) > 1
    assert (out / "events.csv").is_file()
    unlabeled = tmp_path / "unlabeled"
    shutil.copytree(small_mission_dir, unlabeled)
    (unlabeled / "labels.csv").unlink()
    (out / "mine.txt").write_text("a user's file")
    predict(predict_cfg(smoke_detector, unlabeled, out, "max_figures=1"))
    assert not (out / "metrics.json").exists()
    assert not (out / "events.csv").exists()  # no labels: no table of caught events
    assert sorted(p.name for p in (out / "alarms").iterdir()) == first[:1]
    assert (out / "mine.txt").read_text() == "a user's file"
    listed = json.loads((out / MANIFEST).read_text())["files"]
    assert "metrics.json" not in listed and "events.csv" not in listed
    assert "submission.csv" in listed


def test_a_prediction_that_dies_leaves_the_previous_set_whole(smoke_detector, small_mission_dir,
                                                              tmp_path, monkeypatch):
    import esa_lightning.reporting.page as page

    out = tmp_path / "run"
    predict(predict_cfg(smoke_detector, small_mission_dir, out, "max_figures=1"))
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # after submission.csv and intervals.csv were written

    monkeypatch.setattr(page, "write_page", killed)
    with pytest.raises(KeyboardInterrupt):
        predict(predict_cfg(smoke_detector, small_mission_dir, out, "range=all", "max_figures=1"))
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp-")]


def test_a_publishing_killed_half_way_is_completed_by_the_next_run(tmp_path):
    out = tmp_path / "run"
    (out / "alarms").mkdir(parents=True)
    for name in ("submission.csv", "intervals.csv", "metrics.json", "alarms/alarm_0000.png"):
        (out / name).write_text("old")
    files = ["alarms/alarm_0000.png", "intervals.csv", "metrics.json", "submission.csv"]
    (out / MANIFEST).write_text(json.dumps({"files": files}))
    # the dead run had moved submission.csv in; intervals.csv still waited in its stage
    stage = out / owned_name(".tmp-", dead_pid(), "prediction.q9")
    stage.mkdir()
    (stage / "intervals.csv").write_text("new")
    (out / "submission.csv").write_text("new")
    (stage / MANIFEST).write_text(json.dumps({"files": ["intervals.csv", "submission.csv"]}))
    with lock_run_folder(out), staged_outputs(out) as new_stage:
        assert {p.read_text() for p in out.glob("*.csv")} == {"new"}
        assert not (out / "metrics.json").exists() and not (out / "alarms").exists()
        (new_stage / "submission.csv").write_text("newer")
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST, "submission.csv"]
    assert (out / "submission.csv").read_text() == "newer"


def test_predict_never_replaces_a_file_no_earlier_prediction_wrote(
    smoke_detector, small_mission_dir, tmp_path
):
    """predict.py into a training run's folder replaced its metrics.json (the val/ keys)."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.json").write_text('{"val/EW_F_0.50": 0.5}')
    with pytest.raises(ESAInputError, match="metrics.json is already there"):
        predict(predict_cfg(smoke_detector, small_mission_dir, out, "max_figures=0"))
    assert (out / "metrics.json").read_text() == '{"val/EW_F_0.50": 0.5}'
    assert not [p for p in out.iterdir() if p.suffix in (".csv", ".html")]
    from esa_lightning.jobs.evaluate import evaluate_predictions

    ecfg = compose_config("evaluate", [f"predictions={tmp_path / 'p.csv'}",
                                       f"data.root={small_mission_dir}"], tmp_path / "p")
    predict(predict_cfg(smoke_detector, small_mission_dir, tmp_path / "p", "max_figures=0"))
    (tmp_path / "p" / "submission.csv").rename(tmp_path / "p.csv")
    theirs = (tmp_path / "p" / "events.csv").read_bytes()
    with pytest.raises(ESAInputError, match="events.csv is already there"):
        evaluate_predictions(ecfg)  # into predict's folder: its events.csv is not evaluate's
    assert (tmp_path / "p" / "events.csv").read_bytes() == theirs
    again = tmp_path / "again"  # a folder an earlier prediction wrote is predicted into again
    predict(predict_cfg(smoke_detector, small_mission_dir, again, "max_figures=0"))
    predict(predict_cfg(smoke_detector, small_mission_dir, again, "max_figures=0", "range=all"))
    assert "all/EW_F_0.50" in json.loads((again / "metrics.json").read_text())


def test_a_manifest_never_removes_anything_outside_its_folder(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    listed = ["../victim.txt", str(victim), "", 3, "sub/../../victim.txt"]
    (out / MANIFEST).write_text(json.dumps({"files": listed}))
    with staged_outputs(out) as stage:
        (stage / "submission.csv").write_text("x")
    assert victim.read_text() == "keep"


def test_predict_on_the_validation_range_gives_the_numbers_train_printed(
    smoke_detector, small_mission_dir, tmp_path
):
    """range=val scores the validation range as training scored it (the rows before it as
    context, the test rows after it left out): the val/ metrics train.py wrote. It used to be
    refused (range must be 'test' or 'all')."""
    trained = json.loads((smoke_detector.parent / "metrics.json").read_text())
    got = predict(predict_cfg(smoke_detector, small_mission_dir, tmp_path, "range=val",
                              "max_figures=0"))
    assert got and set(got) == {k for k in trained if k.startswith("val/")}
    for key, value in got.items():
        assert value == pytest.approx(trained[key], abs=1e-9), key
    submission = pd.read_csv(tmp_path / "submission.csv")
    assert len(submission) > 0 and submission["id"].is_monotonic_increasing


def test_evaluate_scores_a_validation_submission_as_predict_did(
    smoke_detector, small_mission_dir, tmp_path
):
    """predict.py range=val writes a submission of the validation range; evaluate.py refused
    it (the rows 'of the mission from the first row' to its end were missing). It now scores
    it as the validation range, the numbers predict.py wrote; a partial one is still refused."""
    from esa_lightning.jobs.evaluate import evaluate_predictions

    got = predict(predict_cfg(smoke_detector, small_mission_dir, tmp_path / "p", "range=val",
                              "max_figures=0"))
    submission = tmp_path / "p" / "submission.csv"
    results = evaluate_predictions(compose_config(
        "evaluate", [f"predictions={submission}", f"data.root={small_mission_dir}"],
        tmp_path / "e"))
    assert results["EW_F_0.50"] == pytest.approx(got["val/EW_F_0.50"], abs=1e-9)
    assert results["AFF_F_0.50"] == pytest.approx(got["val/AFF_F_0.50"], abs=1e-9)
    partial = tmp_path / "partial.csv"
    pd.read_csv(submission).iloc[:-5].to_csv(partial, index=False)
    with pytest.raises(ESAInputError, match="of the validation range to its end: 5 rows"):
        evaluate_predictions(compose_config(
            "evaluate", [f"predictions={partial}", f"data.root={small_mission_dir}"],
            tmp_path / "e2"))


@pytest.mark.parametrize("range_", ["test", "val"])
def test_evaluation_json_keys_are_the_metric_names_without_prefix_as_documented(
    smoke_detector, small_mission_dir, tmp_path, range_
):
    """evaluate.py scores whatever rows the file covers (a test submission, a validation one,
    the mission from a row on): its keys are predict.py's without the range's prefix. The
    docs said every key was prefixed val/ or test/."""
    from esa_lightning.jobs.evaluate import evaluate_predictions

    got = predict(predict_cfg(smoke_detector, small_mission_dir, tmp_path / "p",
                              f"range={range_}", "max_figures=0"))
    results = evaluate_predictions(compose_config(
        "evaluate", [f"predictions={tmp_path / 'p' / 'submission.csv'}",
                     f"data.root={small_mission_dir}"], tmp_path / "e"))
    written = json.loads((tmp_path / "e" / "evaluation.json").read_text())
    assert written == results and not any("/" in k for k in written)
    unprefixed = {k.removeprefix(f"{range_}/"): v for k, v in got.items()}
    for key in written:
        assert written[key] == pytest.approx(unprefixed[key], abs=1e-9), key
    section = (REPO / "docs" / "report.md").read_text().split("## `evaluation.json`")
    assert len(section) == 2, "docs/report.md has no evaluation.json section"
    text = " ".join(section[1].split("\n## ")[0].split())
    assert "without the range prefix (`val/`, `test/`, `all/`)" in text
