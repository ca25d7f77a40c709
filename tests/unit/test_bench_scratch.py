"""Benchmark scratch data (generated missions) reused only when made with the same parameters
and generator code."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_a_scratch_mission_made_otherwise_is_refused_not_reused(tmp_path, monkeypatch):
    """bench_predict.generate (bench_stream.py, full_scale.py) reused any folder holding a
    mission.json, whatever its days, channels, split or generator code."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    sys.modules.pop("bench_predict", None)
    import bench_predict

    runs = []
    monkeypatch.setattr(bench_predict, "run_measured", lambda cmd, log: runs.append(cmd) or {})
    out = tmp_path / "d365"
    out.mkdir()
    (out / "mission.json").write_text("{}")  # made by another run: no record of its params
    with pytest.raises(SystemExit, match="d365"):
        bench_predict.generate(out, 365, "2000-07-01")
    assert (out / "mission.json").is_file() and not runs  # neither reused nor removed
    other = tmp_path / "d91"
    bench_predict.generate(other, 91, "2000-03-01")  # no folder: generated, then stamped
    assert len(runs) == 1
    other.mkdir()
    bench_predict.generate(other, 91, "2000-03-01")  # the same params: reused
    assert len(runs) == 1
    with pytest.raises(SystemExit, match="days"):
        bench_predict.generate(other, 91, "2000-04-01")
    assert json.loads((tmp_path / "d91.params.json").read_text())["split_date"] == "2000-03-01"


def _bench(monkeypatch, name: str):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    sys.modules.pop(name, None)
    return __import__(name)


def _stamped_mission(tmp_path: Path, days: float) -> Path:
    """A small generated mission stamped as bench_predict.generate stamps its own."""
    from esa_lightning.data.readers.synthetic import generate_mission

    root = tmp_path / "mission"
    generate_mission(root, channels=3, groups=1, days=days, n_telecommands=2)
    (tmp_path / "mission.params.json").write_text(json.dumps({"days": days}))
    return root


def test_derived_scratch_files_are_keyed_by_their_mission_and_parameters(tmp_path, monkeypatch):
    """bench_stream.make_file, bench_stream.zscore_detector and bench_predict.write_kaggle_test
    reused any output that existed, whatever mission, rows or sample file it came from."""
    bench_stream = _bench(monkeypatch, "bench_stream")
    bench_predict = _bench(monkeypatch, "bench_predict")
    mission = _stamped_mission(tmp_path, 1)
    stale = tmp_path / "stale.parquet"
    stale.write_text("made by another run")  # no record of what made it
    with pytest.raises(SystemExit, match=r"stale\.parquet: made with unrecorded"):
        bench_stream.make_file(mission, tmp_path / "cache", stale, 1000)
    part = bench_stream.make_file(mission, tmp_path / "cache", tmp_path / "rows.parquet", 1000)
    assert bench_stream.make_file(mission, tmp_path / "cache", part, 1000) == part  # reused
    with pytest.raises(SystemExit, match=r"rows\.parquet: made with .*'rows': 1000"):
        bench_stream.make_file(mission, tmp_path / "cache", part, 2000)
    det = bench_stream.zscore_detector(part, tmp_path / "det")
    assert bench_stream.zscore_detector(part, det) == det
    other = bench_stream.make_file(mission, tmp_path / "cache", tmp_path / "other.parquet", 1500)
    with pytest.raises(SystemExit, match="det: made with"):
        bench_stream.zscore_detector(other, det)  # fitted on another file
    kaggle = bench_predict.write_kaggle_test(mission, tmp_path / "kg", 1000, tmp_path / "cache")
    assert (kaggle / "test.parquet").is_file()
    assert bench_predict.write_kaggle_test(mission, kaggle, 1000, tmp_path / "cache") == kaggle
    (tmp_path / "mission.params.json").write_text(json.dumps({"days": 2}))  # made otherwise
    with pytest.raises(SystemExit, match="kg: made with"):
        bench_predict.write_kaggle_test(mission, kaggle, 1000, tmp_path / "cache")
    with pytest.raises(SystemExit, match=r"rows\.parquet: made with"):
        bench_stream.make_file(mission, tmp_path / "cache", part, 1000)


def test_bench_data_reuses_its_mission_and_kaggle_copy_only_as_made(tmp_path, monkeypatch):
    """bench_data.py reused ``m{channels}x{days}d`` when it held a mission.json, whatever its
    --groups, --period or generator code, and its kaggle/test.parquet likewise."""
    bench_data = _bench(monkeypatch, "bench_data")
    root, seconds = bench_data.mission_folder(tmp_path, 3, 1, 1, "30s")
    assert seconds is not None and (root / "mission.json").is_file()
    assert bench_data.mission_folder(tmp_path, 3, 1, 1, "30s") == (root, None)  # reused
    with pytest.raises(SystemExit, match="1d: made with .*'groups': 2"):
        bench_data.mission_folder(tmp_path, 3, 2, 1, "30s")
    with pytest.raises(SystemExit, match="1d: made with .*'period': '60s'"):
        bench_data.mission_folder(tmp_path, 3, 1, 1, "60s")
    kaggle = bench_data.kaggle_copy(root)
    assert (kaggle / "test.parquet").is_file()
    assert bench_data.kaggle_copy(root) == kaggle
    stamp = tmp_path / f"{root.name}.params.json"
    stamp.write_text(stamp.read_text().replace('"groups": 1', '"groups": 5'))
    with pytest.raises(SystemExit, match="kaggle: made with"):
        bench_data.kaggle_copy(root)  # its mission's record changed
