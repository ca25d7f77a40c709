"""The warnings of a DataFrame read (``data.frame``) whose readings float32 cannot hold: one
``InputWarning`` per column, named by the frame code, and not the grid builder's plain
``UserWarning`` about the same repair (``build_arrays(..., warn=False)``)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from esa_lightning.data.frame import InputWarning, frame_to_mission
from esa_lightning.data.mission import Mission, empty_events
from esa_lightning.data.readers.esa_adb_grid import SeriesInMemory, build_arrays
from esa_lightning.data.readers.grid_period import period_ns

NAMES = ["channel_1", "channel_2"]
HOLD = {
    "channels": NAMES,
    "telecommands": [],
    "preprocessing": {"index": "time", "resample": "hold", "period": "30s"},
}


def caught(call):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        result = call()
    return result, [(w.category, str(w.message)) for w in seen]


def test_a_hold_read_warns_once_per_column_beyond_float32():
    stamps = pd.date_range("2021-01-01", periods=120, freq="30s")
    frame = pd.DataFrame({"timestamp": stamps, "channel_1": np.sin(np.arange(120.0)),
                          "channel_2": np.cos(np.arange(120.0))})
    frame.loc[[10, 11, 50], "channel_1"] = np.inf
    frame.loc[70, "channel_2"] = 1e39
    (mission, messages), seen = caught(lambda: frame_to_mission(frame, HOLD))
    assert [category for category, _ in seen] == [InputWarning, InputWarning]
    assert [text for _, text in seen] == messages
    first, second = messages
    assert "'channel_1'" in first and "3 reading(s) beyond float32's range" in first
    assert "'channel_2'" in second and "1 reading(s) beyond float32's range" in second
    assert np.isfinite(mission.values).all()
    assert mission.unrepresentable_cells[:, 0].tolist() == [10, 11, 50, 70]


@pytest.mark.parametrize("options", [{}, {"warn": False}])
def test_the_grid_builder_warns_of_its_repairs_unless_told_not_to(options):
    p_ns = period_ns("30s")
    ts = np.arange(20, dtype=np.int64) * p_ns
    values = np.arange(20.0)
    values[[3, 4]] = np.inf
    series = [SeriesInMemory(ts, values, "column 'channel_1'")]
    (arrays, _), seen = caught(
        lambda: build_arrays(["channel_1"], series, [], empty_events(), p_ns, set(), ts[0],
                             ts[-1], **options)
    )
    assert np.isfinite(arrays["values"]).all()  # repaired either way
    expected = [(UserWarning, "repaired non-finite values (forward fill) per channel: "
                 "{'channel_1': 2}"),
                (UserWarning, "2 row(s) hold a reading beyond float32's range (inf or |x| > "
                 "3.4e+38) in channel(s) ['channel_1']: they are replaced for the model and "
                 "always alarm")]
    assert seen == (expected if options.get("warn", True) else [])


def test_the_grid_builder_records_each_channels_samples_one_bit_per_channel():
    """Ten channels (two bytes a row): channel k sends on every (k + 1)-th row."""
    p_ns = period_ns("30s")
    names = [f"channel_{k}" for k in range(10)]
    series = [SeriesInMemory(np.arange(0, 60, k + 1, dtype=np.int64) * p_ns,
                             np.arange(0, 60, k + 1, dtype=float), name) for k, name in
              enumerate(names)]
    arrays, info = build_arrays(names, series, [], empty_events(), p_ns, set(), None, None)
    assert arrays["sent"].shape == (info["n_rows"], 2) and info["n_rows"] == 60
    frame = pd.DataFrame({"timestamp": pd.date_range("2021-01-01", periods=4, freq="30s"),
                          "channel_1": [1.0, np.nan, 2.0, np.nan],
                          "channel_2": [3.0, 4.0, 5.0, 6.0]})
    (mission, _), seen = caught(lambda: frame_to_mission(frame, HOLD))
    assert [category for category, _ in seen] == [InputWarning]  # the held NaN cells
    assert mission.sent_rows(0).tolist() == [1, 0, 1, 0]  # an empty cell is no reading
    assert mission.sent_rows(1).tolist() == [1, 1, 1, 1]
    held = Mission(name="m", values=arrays["values"], timestamps=None,
                   channels=pd.DataFrame({"Channel": names}), labels=None,
                   events=empty_events(), sent=arrays["sent"])
    for k in range(10):
        assert np.flatnonzero(held.sent_rows(k)).tolist() == list(range(0, 60, k + 1))
