"""The raw ESA-ADB reader with several threads (``n_jobs``) and the grouped, blocked output."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from esa_lightning.data.readers import esa_adb_grid
from esa_lightning.data.readers.esa_adb import read_esa_mission
from esa_lightning.errors import ESAInputError

T0 = pd.Timestamp("2000-01-01")
N_CHANNELS = 13  # groups of 3 channels, the last one shorter
TC_SECONDS = [100, 2000, 7000]


def _make(root: Path, seed: int = 0) -> dict[str, pd.Series]:
    """Channels with different time ranges (the grid grows), NaNs and a telecommand."""
    rng = np.random.default_rng(seed)
    (root / "channels").mkdir(parents=True)
    (root / "telecommands").mkdir()
    frames = {}
    for i in range(1, N_CHANNELS + 1):
        name = f"channel_{i}"
        lo = int(rng.integers(0, 4000))
        hi = lo + int(rng.integers(500, 9000))
        t = np.sort(rng.choice(np.arange(lo, hi), int(rng.integers(2, 400)), replace=False))
        v = rng.normal(size=len(t)).cumsum()
        if i == 4:
            v[1::7] = np.nan
        s = pd.Series(v, index=pd.DatetimeIndex(T0 + pd.to_timedelta(t, unit="s")))
        s.to_frame(name).to_pickle(root / "channels" / f"{name}.zip")
        frames[name] = s
    tc = pd.DatetimeIndex(T0 + pd.to_timedelta(TC_SECONDS, unit="s"))
    pd.DataFrame({"telecommand_1": [1, 1, 1]}, index=tc).to_pickle(
        root / "telecommands" / "telecommand_1.zip"
    )
    pd.DataFrame({"Telecommand": ["telecommand_1"], "Priority": [3]}).to_csv(
        root / "telecommands.csv", index=False
    )
    pd.DataFrame(
        {
            "Channel": list(frames),
            "Subsystem": "subsystem_1",
            "Group": "group_1",
            "Target": "YES",
            "Categorical": "NO",
        }
    ).to_csv(root / "channels.csv", index=False)
    return frames


@pytest.fixture
def small_blocks(monkeypatch):
    """Tiny output blocks, so every channel is written across many block boundaries."""
    monkeypatch.setattr(esa_adb_grid, "_BLOCK", 7)


def _read(root: Path, **kw):
    with pytest.warns(UserWarning, match="repaired"):
        return read_esa_mission(root, use_cache=False, counters=["channel_2"], **kw)


@pytest.mark.parametrize(
    "start,end",
    [
        (None, None),
        ("2000-01-01 00:20:00", None),
        (None, "2000-01-01 02:00:07"),
        ("1999-12-31 23:50", "2000-01-01 01:00"),
    ],
)
def test_threads_give_identical_arrays(tmp_path, small_blocks, start, end):
    root = tmp_path / "M"
    _make(root)
    one = _read(root, period="37s", start=start, end=end, n_jobs=1)
    for jobs in (2, 3, None):
        other = _read(root, period="37s", start=start, end=end, n_jobs=jobs)
        np.testing.assert_array_equal(other.values, one.values)
        np.testing.assert_array_equal(other.labels, one.labels)
        np.testing.assert_array_equal(other.telecommands, one.telecommands)
        np.testing.assert_array_equal(other.timestamps, one.timestamps)


def test_grouped_output_matches_pandas(tmp_path, small_blocks):
    """Every column equals a pandas zero-order hold, whatever group/block it was written in."""
    root = tmp_path / "M"
    frames = _make(root, seed=1)
    m = _read(root, period="30s", n_jobs=2)
    first = min(s.index[0] for s in frames.values())
    last = max(s.index[-1] for s in frames.values())
    grid = pd.date_range(first.floor("30s"), last.floor("30s"), freq="30s")
    np.testing.assert_array_equal(m.timestamps, grid.to_numpy())
    for col, (name, s) in enumerate(frames.items()):
        s = s.ffill().bfill()
        held = s.reindex(grid, method="ffill").fillna(s.iloc[0])
        if name == "channel_2":
            held = held.diff().fillna(0.0)
        np.testing.assert_array_equal(m.values[:, col], held.to_numpy(np.float32), err_msg=name)
    # a pulse at the first grid point at or after each execution inside the grid
    pulses = np.zeros(len(grid), dtype=np.float32)
    for t in T0 + pd.to_timedelta(TC_SECONDS, unit="s"):
        row = grid.searchsorted(t, side="left")
        if row < len(grid) and t > grid[0] - pd.Timedelta("30s"):
            pulses[row] = 1.0
    np.testing.assert_array_equal(m.telecommands[:, 0], pulses)


@pytest.mark.parametrize("bad", [0, -2, 1.5, "2", True])
def test_bad_n_jobs(tmp_path, bad):
    root = tmp_path / "M"
    _make(root)
    with pytest.raises(ESAInputError, match="n_jobs"):
        read_esa_mission(root, use_cache=False, n_jobs=bad)


def test_first_broken_channel_is_reported_with_threads(tmp_path):
    root = tmp_path / "M"
    _make(root)
    for i in (5, 9):
        with zipfile.ZipFile(root / "channels" / f"channel_{i}.zip", "w") as zf:
            zf.writestr("a.pkl", b"not a pickle")
    with pytest.raises(ESAInputError, match="channel_5.zip"):
        read_esa_mission(root, use_cache=False, n_jobs=2)
