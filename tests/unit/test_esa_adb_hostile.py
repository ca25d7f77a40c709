"""The raw ESA-ADB reader on hostile inputs: dates beyond the nanosecond range, channels far
apart in time, tables whose rows hold more cells than their header."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from esa_lightning.data.safe_pickle import read_pickled_frame
from esa_lightning.errors import ESAInputError
from tests.unit.test_esa_adb import make_mission, read


@pytest.fixture
def mission_dir(tmp_path: Path) -> Path:
    return make_mission(tmp_path / "M")


@pytest.mark.parametrize("option", ["start", "end", "split_date"])
@pytest.mark.parametrize("when", ["3000-01-01", "1500-01-01"])
def test_a_date_option_beyond_the_nanosecond_range_is_named(mission_dir, option, when):
    # pandas holds such dates in seconds or microseconds: cast to ns they used to raise
    # OutOfBoundsDatetime (start, end) or wrap around silently (split_date 3000 -> 1830: every
    # row became test data)
    with pytest.raises(ESAInputError) as err:
        read(mission_dir, **{option: when})
    assert err.value.column == option and err.value.value == when


@pytest.mark.parametrize("unit", ["s", "us"])
def test_a_channel_timestamp_beyond_the_nanosecond_range_is_named(mission_dir, unit):
    idx = pd.DatetimeIndex(["2000-01-01 00:00:30", "3000-01-01"]).as_unit(unit)
    pd.DataFrame({"channel_1": [1.0, 2.0]}, index=idx).to_pickle(
        mission_dir / "channels/channel_1.zip"
    )
    with pytest.raises(ESAInputError) as err:
        read(mission_dir)
    assert err.value.path == str(mission_dir / "channels/channel_1.zip")
    assert "3000-01-01" in str(err.value)


def test_a_label_time_beyond_the_nanosecond_range_does_not_wrap_into_the_data(mission_dir):
    # 2**64 ns after 2000-01-01 00:00: cast to ns it used to wrap onto the mission's first rows
    path = mission_dir / "labels.csv"
    table = pd.read_csv(path)
    table.loc[2, ["StartTime", "EndTime"]] = ["2584-07-20 23:34:33.709551",
                                              "2584-07-20 23:35:33.709551"]
    table.to_csv(path, index=False)
    with pytest.raises(ESAInputError) as err:
        read(mission_dir)
    assert err.value.path == str(path) and err.value.column == "StartTime"
    assert err.value.value == "2584-07-20 23:34:33.709551"


def test_the_grid_spanned_by_all_channels_is_bounded_by_max_rows(mission_dir):
    # each channel spans a few rows, but a second channel a day later stretches the grid over
    # 2882 rows at 30 s: more than max_rows must be refused as a single channel's span is
    idx = pd.DatetimeIndex(["2000-01-02", "2000-01-02 00:00:30"])
    pd.DataFrame({"channel_2": [1.0, 2.0]}, index=idx).to_pickle(
        mission_dir / "channels/channel_2.zip"
    )
    assert len(read(mission_dir, max_rows=5000).timestamps) == 2882
    with pytest.raises(ESAInputError) as err:
        read(mission_dir, max_rows=1000)
    assert "max_rows=1000" in str(err.value) and err.value.column in ("channel_1", "channel_2")


def test_a_cached_read_is_bounded_by_the_max_rows_of_the_call(mission_dir, tmp_path):
    # the cache key does not hold max_rows (the rows read do not depend on it): a read cached
    # with a large max_rows used to come back from a later call with a smaller one
    idx = pd.DatetimeIndex(["2000-01-02", "2000-01-02 00:00:30"])
    pd.DataFrame({"channel_2": [1.0, 2.0]}, index=idx).to_pickle(
        mission_dir / "channels/channel_2.zip"
    )
    cache = tmp_path / "cache"
    assert len(read(mission_dir, max_rows=5000, use_cache=True, cache_dir=cache).timestamps) == 2882
    with pytest.raises(ESAInputError) as err:
        read(mission_dir, max_rows=1000, use_cache=True, cache_dir=cache)
    assert "max_rows=1000" in str(err.value) and "2882" in str(err.value)
    assert err.value.path == str(mission_dir)


@pytest.mark.parametrize(
    ("table", "row"),
    [
        ("channels.csv", "channel_1,subsystem_1,V,group_1,YES,NO,extra"),
        ("telecommands.csv", "telecommand_1,3,"),
        ("labels.csv", "id_1,channel_1,2000-01-01 00:00:41,2000-01-01 00:00:45,"),
        ("anomaly_types.csv", "id_1,a,x,Anomaly,Univariate,Local,Subsequence,"),
    ],
)
def test_a_row_with_more_cells_than_the_header_is_named(mission_dir, table, row):
    # pandas took the extra leading cell as an index and shifted every column: the error
    # named another column and value (a "duplicate channel" 'subsystem_1', ...)
    path = mission_dir / table
    lines = path.read_text().splitlines()
    lines[1] = row
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ESAInputError, match="more cells than the header") as err:
        read(mission_dir)
    assert err.value.path == str(path)


def test_a_start_end_range_is_bounded_by_max_rows(mission_dir):
    # with both start and end the grid is allocated from them before any channel is read: a
    # range of 500 years made GBs; it is refused as a channel spanning too many rows is
    asked = {"start": "2000-01-01", "end": "2000-01-02"}
    assert len(read(mission_dir, max_rows=5000, **asked).timestamps) == 2881
    with pytest.raises(ESAInputError) as err:
        read(mission_dir, max_rows=100, **asked)
    text = str(err.value)
    assert "max_rows=100" in text and "2881 grid rows" in text
    assert "start=2000-01-01" in text and "end=2000-01-02" in text


@pytest.mark.parametrize("protocol", [2, 5])
@pytest.mark.parametrize(
    ("dtype", "cells", "held"),
    [
        ("Int64", [1, None, 3], [1, 1, 1, 3, 3]),
        ("UInt8", [1, None, 3], [1, 1, 1, 3, 3]),
        ("Float64", [1.5, None, 3.0], [1.5, 1.5, 1.5, 3.0, 3.0]),
        ("boolean", [True, None, False], [1, 1, 1, 0, 0]),
    ],
)
def test_a_channel_of_pandas_nullable_values_is_read(mission_dir, protocol, dtype, cells, held):
    # pandas' nullable arrays (plain data: a values array and a mask) were refused with
    # 'refused to unpickle pandas.arrays.IntegerArray', read like a security refusal; <NA> is a
    # missing reading, repaired by forward fill like NaN
    idx = pd.DatetimeIndex(["2000-01-01 00:00:10", "2000-01-01 00:00:40", "2000-01-01 00:01:30"])
    frame = pd.DataFrame({"channel_1": pd.array(cells, dtype=dtype)}, index=idx)
    path = mission_dir / "channels/channel_1.zip"
    frame.to_pickle(path, protocol=protocol)
    pd.testing.assert_frame_equal(read_pickled_frame(path), frame)
    with pytest.warns(UserWarning, match="channel_1"):
        mission = read(mission_dir)
    assert mission.values[:, 0].tolist() == held


def test_a_nullable_column_whose_mask_does_not_match_its_values_is_refused(mission_dir):
    # the values and the mask are set straight from the pickle: a mask of another length
    # marked the wrong cells missing without a word
    idx = pd.DatetimeIndex(["2000-01-01 00:00:10", "2000-01-01 00:00:40", "2000-01-01 00:01:30"])
    cells = pd.array([1, None, 3], dtype="Int64")
    cells._mask = cells._mask[:1]
    path = mission_dir / "channels/channel_1.zip"
    pd.DataFrame({"channel_1": cells}, index=idx).to_pickle(path)
    with pytest.raises(ESAInputError, match="values and mask do not match") as err:
        read(mission_dir)
    assert err.value.path == str(path) and err.value.column == "channel_1"


def test_a_mission_record_nested_beyond_the_parser_s_depth_is_named(mission_dir):
    # json.loads raises RecursionError (no ValueError): it escaped as a traceback
    (mission_dir / "mission.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ESAInputError, match="not valid JSON") as err:
        read(mission_dir)
    assert err.value.path == str(mission_dir / "mission.json")


@pytest.mark.parametrize("dtype", ["complex128", "object"])
@pytest.mark.parametrize("folder", ["channels", "telecommands"])
def test_a_series_of_complex_values_is_refused_naming_its_file(mission_dir, dtype, folder):
    """A channel (or telecommand) file of complex values was read with its imaginary parts
    dropped (a numpy ComplexWarning naming no file); the NASA reader refuses such arrays."""
    name = "channel_1" if folder == "channels" else "telecommand_1"
    path = mission_dir / folder / f"{name}.zip"
    frame = read_pickled_frame(path)
    frame[name] = (frame[name].to_numpy() + 1j).astype(dtype)
    frame.to_pickle(path)
    with pytest.raises(ESAInputError, match="complex") as err:
        read(mission_dir)
    assert err.value.path == str(path) and err.value.column == name


@pytest.mark.parametrize(
    ("record", "key"),
    [
        ({"counters": 5}, "counters"),  # TypeError: 'int' object is not iterable
        ({"counters": "channel_1"}, "counters"),  # read as the counters 'c', 'h', 'a', ...
        ({"counters": {"channel_1": 1}}, "counters"),  # its keys taken as the list
        ({"counters": [["channel_1"]]}, "counters"),
        ({"lightweight": 3}, "lightweight"),
        ({"split_date": 12345}, "split_date"),  # named the option, not mission.json
        ({"split_date": "banana"}, "split_date"),
    ],
)
def test_a_mission_record_of_the_wrong_types_is_named(mission_dir, record, key):
    """mission.json lists the counters and the lightweight channels and records the split date;
    a value of another type raised a bare TypeError, was read character by character, or was
    refused without naming the file it came from."""
    import json

    (mission_dir / "mission.json").write_text(json.dumps(record))
    with pytest.raises(ESAInputError) as err:
        read(mission_dir, counters=None, lightweight=None)
    assert err.value.path == str(mission_dir / "mission.json") and err.value.column == key


def test_a_mission_record_of_null_lists_is_read_as_listing_none(mission_dir):
    import json

    (mission_dir / "mission.json").write_text(json.dumps({"counters": None, "split_date": None}))
    m = read(mission_dir, counters=None, lightweight=None)
    assert m.meta["counters"] == [] and m.test_start == len(m.timestamps)


@pytest.mark.parametrize("table,column,folder", [
    ("channels.csv", "Channel", "channels"),
    ("telecommands.csv", "Telecommand", "telecommands"),
])
@pytest.mark.parametrize("name", ["../../outside", "sub/extra"])
def test_a_name_holding_a_path_separator_is_refused_naming_its_row(
    mission_dir, table, column, folder, name
):
    # a name is read as <folder>/<name>.zip: '../../outside' read a file beside the mission
    # folder, outside it; the name is refused before any file is opened
    src = mission_dir / folder / f"{folder[:-1]}_2.zip"
    target = mission_dir / folder / f"{name}.zip"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(src.read_bytes())
    path = mission_dir / table
    listing = pd.read_csv(path, dtype=str)
    pd.concat([listing, listing.iloc[[1]].assign(**{column: name})]).to_csv(path, index=False)
    with pytest.raises(ESAInputError, match="path separator.*row 3 after the header") as err:
        read(mission_dir, telecommand_priority=0)
    assert err.value.path == str(path) and err.value.column == column
    assert err.value.value == name


@pytest.mark.parametrize("cell, said", [("", "empty cell in row 3 after the header"),
                                        ("soon", "not a time in row 3 after the header")])
def test_a_label_time_that_is_no_time_names_its_row(mission_dir, cell, said):
    # an empty StartTime was named as "value nan: missing or invalid time", no row: the file
    # read as text says nan for an empty cell, and a labels.csv holds many rows
    path = mission_dir / "labels.csv"
    table = pd.read_csv(path, dtype=str)
    table.loc[2, "StartTime"] = cell
    table.to_csv(path, index=False)
    with pytest.raises(ESAInputError, match=said) as err:
        read(mission_dir)
    assert err.value.path == str(path) and err.value.column == "StartTime"
    assert "nan" not in str(err.value)


@pytest.mark.parametrize("found", ["value", "channel_2", 0])
def test_a_channel_file_whose_value_column_is_named_otherwise_is_refused(mission_dir, found):
    """ESA-ADB names a channel file's one value column after the channel, and the benchmark's
    reference preprocessing reads it by that name: a file whose column is named otherwise (a
    copy of another channel's file, a frame saved with a generic name) was read as that channel
    without a word. It is refused, naming the file, the column found and the one expected."""
    path = mission_dir / "channels/channel_1.zip"
    idx = pd.DatetimeIndex(["2000-01-01 00:00:10", "2000-01-01 00:00:40"])
    pd.DataFrame({found: [1.0, 2.0]}, index=idx).to_pickle(path)
    with pytest.raises(ESAInputError) as err:
        read(mission_dir)
    assert err.value.path == str(path) and err.value.column == str(found)
    assert "'channel_1'" in str(err.value)


@pytest.mark.parametrize("found", ["value", "telecommand_2", 0])
def test_a_telecommand_file_whose_value_column_is_named_otherwise_is_refused(mission_dir, found):
    """A telecommand file is checked as a channel file is: its one value column is named after
    the telecommand (ESA-ADB's are). Only its times were read, so a copy of another
    telecommand's file, or a frame saved with a generic name, became that telecommand's pulses
    without a word. It is refused, naming the file, the column found and the one expected."""
    path = mission_dir / "telecommands/telecommand_1.zip"
    idx = pd.DatetimeIndex(["2000-01-01 00:00:10", "2000-01-01 00:00:40"])
    pd.DataFrame({found: [1, 1]}, index=idx).to_pickle(path)
    with pytest.raises(ESAInputError, match="named after the telecommand") as err:
        read(mission_dir)
    assert err.value.path == str(path) and err.value.column == str(found)
    assert "'telecommand_1'" in str(err.value)


def test_a_telecommand_file_with_its_own_column_among_others_is_read_by_that_name(mission_dir):
    # as for a channel file: several columns are fine where one is named after the telecommand
    path = mission_dir / "telecommands/telecommand_1.zip"
    idx = pd.DatetimeIndex(["2000-01-01 00:00:30", "2000-01-01 00:01:00"])
    pd.DataFrame({"other": [1, 1], "telecommand_1": [1, 1]}, index=idx).to_pickle(path)
    m = read(mission_dir, telecommand_priority=3)
    assert m.telecommand_names == ["telecommand_1"]
    assert m.telecommands[:, 0].tolist() == [0, 1, 1, 0, 0]


def test_a_cache_built_before_the_column_check_is_not_served(mission_dir, tmp_path, monkeypatch):
    """The column check of channel and telecommand files came after their reads were cached
    (cache version esa_adb-8): a mission read then, a file named otherwise among it, must be read
    again and refused, not served from the old entry (the version moved to esa_adb-9)."""
    from esa_lightning.data.readers import esa_adb, esa_adb_grid

    path = mission_dir / "telecommands/telecommand_1.zip"
    idx = pd.DatetimeIndex(["2000-01-01 00:00:10", "2000-01-01 00:00:40"])
    pd.DataFrame({"value": [1, 1]}, index=idx).to_pickle(path)
    unchecked = esa_adb_grid.read_raw_series
    with monkeypatch.context() as before:  # the code of esa_adb-8: no column check
        before.setattr(esa_adb, "CACHE_VERSION", "esa_adb-8")
        before.setattr(esa_adb_grid, "read_raw_series",
                       lambda source, name=None, kind="channel": unchecked(source, None, kind))
        read(mission_dir, use_cache=True, cache_dir=tmp_path / "cache")
    with pytest.raises(ESAInputError, match="named after the telecommand"):
        read(mission_dir, use_cache=True, cache_dir=tmp_path / "cache")


def test_a_channel_file_holding_a_series_names_the_frame_to_write(mission_dir):
    """``frame["channel_1"].to_pickle(...)`` (a Series, not ESA-ADB's one-column DataFrame)
    read ``refused to unpickle pandas.Series``, as a security refusal reads."""
    path = mission_dir / "channels" / "channel_1.zip"
    read_pickled_frame(path)["channel_1"].to_pickle(path)
    with pytest.raises(ESAInputError, match=r"expected a pickled DataFrame, got a Series: .*"
                       r"frame\[\['channel_1'\]\]") as err:
        read(mission_dir)
    assert err.value.path == str(path)
