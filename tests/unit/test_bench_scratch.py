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
