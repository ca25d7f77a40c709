"""The DataFrame path of Detector.predict (data.frame): id keys beyond int64, timestamp text
with mixed UTC offsets, epoch numbers as timestamps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from esa_lightning.data.frame import frame_to_mission
from esa_lightning.errors import ESAInputError

SCHEMA = {"channels": ["channel_1"], "telecommands": [], "preprocessing": {"index": "id"}}


@pytest.mark.parametrize("where", ["column", "index"])
def test_uint64_ids_beyond_int64_are_refused(where):
    """uint64 ids above 2**63-1 were cast to int64 and wrapped to negative ids: the prediction's
    rows carried ids the frame never held. The error names the id, as the Kaggle reader does."""
    ids = np.uint64(2**63) + np.arange(5, dtype=np.uint64)
    frame = pd.DataFrame({"channel_1": np.arange(5.0)})
    frame = frame.assign(id=ids) if where == "column" else frame.set_index(pd.Index(ids))
    with pytest.raises(ESAInputError, match=r"9223372036854775808: id beyond the int64 range"):
        frame_to_mission(frame, SCHEMA)
    small = pd.DataFrame({"id": np.arange(5, dtype=np.uint64), "channel_1": np.arange(5.0)})
    mission, _ = frame_to_mission(small, SCHEMA)  # uint64 within int64's range: read as is
    np.testing.assert_array_equal(mission.timestamps, np.arange(5))


def test_timestamp_column_with_offsets_across_a_dst_change_is_read_in_utc():
    """A ``timestamp`` column written by a local clock (ISO text whose UTC offset changes from
    +01:00 to +02:00 at a daylight-saving change) raised pandas' raw ValueError "Mixed timezones
    detected" instead of being read: the offsets name every instant exactly."""
    utc = pd.date_range("2021-03-28 00:00", periods=240, freq="30s", tz="UTC")
    text = [t.isoformat() for t in utc.tz_convert("Europe/Berlin")]
    assert text[0].endswith("+01:00") and text[-1].endswith("+02:00")
    frame = pd.DataFrame({"timestamp": text, "channel_1": np.arange(240.0)})
    schema = {"channels": ["channel_1"], "telecommands": [], "preprocessing": {"index": "time"}}
    mission, messages = frame_to_mission(frame, schema)
    np.testing.assert_array_equal(mission.timestamps, utc.tz_localize(None).to_numpy())
    assert messages == []
    frame.loc[5, "timestamp"] = "not a time"  # still named as before
    with pytest.raises(ESAInputError, match="'timestamp'.*NaT"):
        frame_to_mission(frame, schema)


@pytest.mark.parametrize("dtype", ["int64", "float64"])
def test_timestamp_column_of_epoch_numbers_is_refused(dtype):
    """A ``timestamp`` column of Unix epoch seconds (as read from a CSV) was taken as nanoseconds
    after 1970: 240 rows 30 s apart fell within one 30 s grid step and the prediction held a
    single row at 1970-01-01, without a word. It is now an error naming the column."""
    seconds = 1_616_889_600 + 30 * np.arange(240)
    frame = pd.DataFrame({"timestamp": seconds.astype(dtype), "channel_1": np.arange(240.0)})
    schema = {
        "channels": ["channel_1"],
        "telecommands": [],
        "preprocessing": {"index": "time", "resample": "hold", "period": "30s"},
    }
    with pytest.raises(ESAInputError, match=r"'timestamp'.*holds numbers.*unit='s'"):
        frame_to_mission(frame, schema)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="s")  # the documented repair
    mission, _ = frame_to_mission(frame, schema)
    assert len(mission.values) == 240


@pytest.mark.parametrize("where", ["column", "index"])
def test_whole_number_float_ids_are_read_as_integer_ids(where):
    """A frame's ids as floats (61.0, as pandas makes an integer column a NaN touched) are the
    integer ids they are: the prediction's rows carry them as int64. Before, such a frame was
    refused ('give integer ids ... (got float64)'). An id with a fraction is refused naming the
    column, its row and the value."""
    ids = np.arange(60.0, 65.0)
    frame = pd.DataFrame({"channel_1": np.arange(5.0)})
    frame = frame.assign(id=ids) if where == "column" else frame.set_index(pd.Index(ids))
    mission, _ = frame_to_mission(frame, SCHEMA)
    assert mission.timestamps.dtype == np.int64
    np.testing.assert_array_equal(mission.timestamps, np.arange(60, 65))
    ids[3] = 63.5
    frame = pd.DataFrame({"channel_1": np.arange(5.0)})
    frame = frame.assign(id=ids) if where == "column" else frame.set_index(pd.Index(ids))
    column = "id" if where == "column" else "index"
    with pytest.raises(ESAInputError, match=rf"'{column}'.*value 63.5.*at row 3: .*whole number"):
        frame_to_mission(frame, SCHEMA)


@pytest.mark.parametrize("where", ["index", "timestamp"])
def test_a_time_beyond_the_nanosecond_range_is_named(where):
    """pandas keeps times in seconds or microseconds, where 3000-01-01 is a valid time: the cast
    to nanoseconds let pandas' OutOfBoundsDatetime escape. It is refused as the raw reader
    refuses such a channel file: naming the index (or the timestamp column) and the time."""
    times = pd.DatetimeIndex(["2000-01-01", "3000-01-01"]).as_unit("s")
    frame = pd.DataFrame({"channel_1": [1.0, 2.0]}, index=times)
    if where == "timestamp":
        frame = frame.reset_index(names="timestamp")
    schema = {"channels": ["channel_1"], "telecommands": [], "preprocessing": {"index": "time"}}
    with pytest.raises(ESAInputError) as err:
        frame_to_mission(frame, schema)
    assert err.value.column == where and "3000-01-01" in str(err.value.value)
    assert "outside the dates a datetime64[ns]" in str(err.value)


def test_a_frame_spanning_more_grid_rows_than_the_reader_allows_is_named():
    """A frame whose times lie centuries apart (a corrupt timestamp) spans more grid rows than
    the raw reader allows: the refusal named data.start / data.end, options a DataFrame caller
    never sets. It names the frame's index, its first and last time and the rows."""
    times = pd.DatetimeIndex(["2000-01-01", "2000-01-01 00:00:30", "2100-01-01"])
    frame = pd.DataFrame({"channel_1": [1.0, 2.0, 3.0]}, index=times)
    schema = {
        "channels": ["channel_1"],
        "telecommands": [],
        "preprocessing": {"index": "time", "resample": "hold", "period": "30s"},
    }
    with pytest.raises(ESAInputError) as err:
        frame_to_mission(frame, schema)
    message = str(err.value)
    assert "data.start" not in message and err.value.column == "index"
    assert "2100-01-01" in message and "105192001 grid rows" in message


@pytest.mark.parametrize("dtype", [np.complex128, object])
def test_complex_readings_are_refused_naming_the_column(dtype):
    """A column of complex numbers was cast to float64, its imaginary parts dropped behind a
    numpy ComplexWarning that names no column; the NASA reader refuses such arrays."""
    values = np.array([1 + 2j, 2, 3, 4, 5], dtype=np.complex128).astype(dtype)
    frame = pd.DataFrame({"id": np.arange(5), "channel_1": values})
    with pytest.raises(ESAInputError, match="complex") as err:
        frame_to_mission(frame, SCHEMA)
    assert err.value.column == "channel_1"


@pytest.mark.parametrize("row", [0, 7])
@pytest.mark.parametrize("cell", ["2021-03-28 00:00:00" + " " * 10_000,
                                  "2021-03-28T00:00:00+01:00" + " " * 10_000,
                                  "2021-03-28 " + "9" * 10_000])
def test_a_timestamp_cell_longer_than_any_time_is_refused_by_its_length(cell, row):
    """pandas' time parsing slows down with the square of a cell's length (0.5 to 1.8 s for
    one 50 KB first cell, whose format it infers by dateutil): a ``timestamp`` cell of the
    caller's frame over ``KEY_CELL_LIMIT`` characters is refused, as evaluate.py refuses one,
    naming the column, row and its length, never its content (it was parsed, then named a
    missing time; a time with an offset and 10,000 trailing spaces was read)."""
    from esa_lightning.metrics.intervals import KEY_CELL_LIMIT

    text = [str(t) for t in pd.date_range("2021-03-28", periods=20, freq="30s")]
    frame = pd.DataFrame({"timestamp": text, "channel_1": np.arange(20.0)})
    frame.loc[row, "timestamp"] = cell
    schema = {"channels": ["channel_1"], "telecommands": [], "preprocessing": {"index": "time"}}
    with pytest.raises(ESAInputError) as refused:
        frame_to_mission(frame, schema)
    message = str(refused.value)
    for needle in ("column 'timestamp'", f"row {row}:", f"{len(cell)} characters",
                   f"at most {KEY_CELL_LIMIT}"):
        assert needle in message, message
    assert cell.strip()[-50:] not in message and len(message) < 300, message
