"""Error messages on broken input files: each names the file and says what to do, in plain
words, without the library's internals (an exception's class name, a bare key, an errno, the
repr of an empty list)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from esa_lightning.errors import ESAInputError
from tests.unit.test_esa_adb import make_mission, read


@pytest.fixture
def mission_dir(tmp_path: Path) -> Path:
    return make_mission(tmp_path / "M")


def _member(path: Path) -> bytes:
    with zipfile.ZipFile(path) as zf:
        return zf.read(zf.namelist()[0])


def _rezip(path: Path, payload: bytes) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{path.stem}.pkl", payload)


def _damaged(path: Path) -> None:  # its second half overwritten: it once said ": 110"
    payload = bytearray(_member(path))
    payload[len(payload) // 2:] = b"n" * (len(payload) - len(payload) // 2)
    _rezip(path, bytes(payload))


def _cut_short(path: Path) -> None:
    payload = _member(path)
    _rezip(path, payload[: len(payload) // 2])


def _empty(path: Path) -> None:  # it once said ": EOFError"
    path.write_bytes(b"")


def _text(path: Path) -> None:
    path.write_text("not a pickle")


@pytest.mark.parametrize("breaks", [_damaged, _cut_short, _empty, _text])
def test_an_unreadable_channel_pickle_says_to_write_it_again(mission_dir, breaks):
    path = mission_dir / "channels/channel_1.zip"
    breaks(path)
    with pytest.raises(ESAInputError) as err:
        read(mission_dir)
    assert err.value.path == str(path)
    assert str(err.value) == (
        f"{path}: not a readable pickled DataFrame (the file is damaged, cut short, or holds "
        "something else): write it again with frame[['channel_1']].to_pickle('channel_1.zip')"
    )


def test_a_channel_zip_whose_compressed_data_is_damaged_says_to_write_it_again(mission_dir):
    path = mission_dir / "channels/channel_1.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("channel_1.pkl", _member(mission_dir / "channels/channel_2.zip") * 50)
    raw = bytearray(path.read_bytes())
    start = 30 + len("channel_1.pkl")  # the local header, then the deflate stream
    raw[start + 10: start + 40] = b"\xff" * 30
    path.write_bytes(bytes(raw))
    with pytest.raises(ESAInputError) as err:
        read(mission_dir)
    message = str(err.value)
    assert message.startswith(f"{path}: a damaged or encrypted zip, its member cannot be read: ")
    assert message.endswith("write it again with frame[['channel_1']].to_pickle('channel_1.zip')")
    assert "Error -3" not in message and "zlib" not in message


def test_a_channel_zip_of_two_files_names_them(mission_dir):
    path = mission_dir / "channels/channel_1.zip"
    payload = _member(path)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("channel_1.pkl", payload)
        zf.writestr("notes.txt", "x")
    with pytest.raises(ESAInputError) as err:
        read(mission_dir)
    assert str(err.value) == (
        f"{path}: the zip holds 2 files ('channel_1.pkl', 'notes.txt'); it must hold exactly "
        "one pickled DataFrame: write it again with "
        "frame[['channel_1']].to_pickle('channel_1.zip')"
    )


@pytest.mark.parametrize("members", [[], ["sub/"]])
def test_a_channel_zip_without_a_file_says_so(mission_dir, members):
    path = mission_dir / "channels/channel_1.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name in members:
            zf.writestr(name, b"")
    with pytest.raises(ESAInputError) as err:
        read(mission_dir)
    assert str(err.value) == (
        f"{path}: the zip holds no file (only folders, or nothing); it must hold exactly one "
        "pickled DataFrame: write it again with frame[['channel_1']].to_pickle('channel_1.zip')"
    )


def test_listed_differences_leaves_out_an_empty_side_and_counts_a_long_one():
    from esa_lightning.errors import listed_differences

    assert listed_differences([], ["B-1", "C-1"]) == "extra ['B-1', 'C-1']"
    assert listed_differences(["A-1"], []) == "missing ['A-1']"
    assert listed_differences(["A-1"], ["B-1"]) == "missing ['A-1'], extra ['B-1']"
    names = [f"c{i}" for i in range(12)]
    assert listed_differences(names, [], limit=3) == "missing ['c0', 'c1', 'c2', ... (12 in all)]"


def test_a_schema_mismatch_names_only_the_side_that_differs(mission_dir):
    from esa_lightning.artifact import check_schema, mission_schema

    schema = mission_schema(read(mission_dir, channels=["channel_1"]))
    with pytest.raises(ESAInputError) as err:
        check_schema(schema, read(mission_dir))
    assert "channels: extra ['channel_2']" in str(err.value)
    assert "[]" not in str(err.value)


def test_a_table_that_is_not_utf8_names_the_byte_not_the_codec(mission_dir):
    path = mission_dir / "channels.csv"
    path.write_bytes(b"Channel,Subsystem\n\xffchannel_1,s\n")
    with pytest.raises(ESAInputError) as err:
        read(mission_dir)
    assert str(err.value) == (
        f"{path}: not UTF-8 text (it holds the byte 0xff): save it as a UTF-8 CSV"
    )


def test_a_table_with_an_unclosed_quote_says_what_to_fix(mission_dir):
    path = mission_dir / "labels.csv"
    path.write_text('ID,Channel,StartTime,EndTime\nid_1,"channel_1,2000-01-01,2000-01-01\n')
    with pytest.raises(ESAInputError) as err:
        read(mission_dir)
    message = str(err.value)
    assert message.startswith(f"{path}: not a readable CSV (")
    assert message.endswith("): fix that line or write the table again")
    assert "C error" not in message


def test_a_channel_table_of_a_header_line_alone_says_it_lists_no_channel(mission_dir):
    path = mission_dir / "channels.csv"
    path.write_text("Channel,Subsystem,Physical Unit,Group,Target,Categorical\n")
    with pytest.raises(ESAInputError) as err:
        read(mission_dir)
    assert err.value.path == str(path)
    assert err.value.reason == (
        "no channel to read: the file lists none (add a row for each channel)"
    )


def test_no_target_channel_says_how_to_choose_channels(mission_dir):
    path = mission_dir / "channels.csv"
    path.write_text(path.read_text().replace("YES", "NO"))
    with pytest.raises(ESAInputError) as err:
        read(mission_dir, channels="target")
    assert err.value.reason == (
        "no channel is marked as a target (Target YES): mark some, or choose the channels "
        "with data.channels=[NAME,...]"
    )


def test_a_label_of_an_unknown_channel_names_its_row_and_what_to_do(mission_dir):
    path = mission_dir / "labels.csv"
    path.write_text(path.read_text().replace("id_3,channel_2", "id_3,channel_99"))
    with pytest.raises(ESAInputError) as err:
        read(mission_dir)
    assert str(err.value) == (
        f"{path}: column 'Channel': value 'channel_99': row 3 after the header names a channel "
        "that neither channels.csv nor telecommands.csv lists: correct the label's Channel, "
        "or add the channel"
    )


class _Foreign:  # an object of no library: a checkpoint holding one is refused by a safe load
    pass


@pytest.mark.parametrize("content", [b"", b"hello world\n", "foreign"])
def test_a_file_that_is_no_checkpoint_is_said_in_plain_words(tmp_path, content):
    import torch

    from esa_lightning.runtime.checkpoints import read_checkpoint

    path = tmp_path / "last.ckpt"
    if content == "foreign":
        torch.save({"state_dict": {}, "extra": _Foreign()}, path)
        said = f"it holds an object a safe load refuses ({__name__}._Foreign)"
    else:
        path.write_bytes(content)
        said = "the file is damaged, cut short, or not a checkpoint"
    with pytest.raises(ESAInputError) as err:
        read_checkpoint(path)
    assert str(err.value) == f"{path}: cannot be read as a checkpoint: {said}"


@pytest.fixture(scope="module")
def saved_detector(tmp_path_factory) -> Path:
    from esa_lightning.artifact import Detector, mission_schema
    from tests.helpers import fitted_zscore
    from tests.helpers import make_mission as small_mission

    mission = small_mission()
    folder = tmp_path_factory.mktemp("detector") / "zscore"
    Detector({"zscore": fitted_zscore(mission)}, mission_schema(mission)).save(folder)
    return folder


def _load_refusal(saved: Path, tmp_path: Path, breaks) -> tuple[Path, str]:
    import shutil

    from esa_lightning.artifact import Detector

    folder = Path(shutil.copytree(saved, tmp_path / "zscore"))
    breaks(folder)
    with pytest.raises(ESAInputError) as err:
        Detector.load(folder)
    return folder, str(err.value)


@pytest.mark.parametrize("text, said", [
    ("", "corrupt detector.json (empty); restore it or retrain"),
    ('{\n "a": 1,\n "b', "corrupt detector.json (not valid JSON: Unterminated string starting "
                         "at line 3, column 2); restore it or retrain"),
    (b"\xff\xfe{}", "not UTF-8 text (it holds the byte 0xff); restore it or retrain"),
])
def test_a_detector_json_that_does_not_parse_says_where_and_what_to_do(
        saved_detector, tmp_path, text, said):
    def breaks(folder: Path) -> None:
        path = folder / "detector.json"
        path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)

    folder, message = _load_refusal(saved_detector, tmp_path, breaks)
    assert message == f"{folder / 'detector.json'}: {said}"


def test_a_detector_json_without_its_format_does_not_say_none(saved_detector, tmp_path):
    import json

    def breaks(folder: Path) -> None:
        path = folder / "detector.json"
        manifest = json.loads(path.read_text())
        del manifest["format_version"]
        path.write_text(json.dumps(manifest))

    folder, message = _load_refusal(saved_detector, tmp_path, breaks)
    assert message.startswith(f"{folder / 'detector.json'}: records no artifact format "
                              "(format_version); this version reads formats ")
    assert "None" not in message


def test_a_missing_part_says_what_to_do(saved_detector, tmp_path):
    def breaks(folder: Path) -> None:
        (folder / "components/zscore/weights.pt").unlink()

    folder, message = _load_refusal(saved_detector, tmp_path, breaks)
    assert message == (f"{folder / 'components/zscore/weights.pt'}: missing (listed in "
                       "detector.json); restore it or retrain")


@pytest.fixture
def kaggle_dir(tmp_path: Path) -> Path:
    from tests.unit.test_kaggle import make_parts, write_layout

    return write_layout(tmp_path / "kg", make_parts()[0], 60)


def _kaggle_refusal(root: Path) -> ESAInputError:
    from tests.unit.test_kaggle import read as read_kaggle

    with pytest.raises(ESAInputError) as err:
        read_kaggle(root)
    return err.value


@pytest.mark.parametrize("cut", [0, 0.5, -10])
def test_a_parquet_file_cut_short_says_to_write_it_again(kaggle_dir, cut):
    path = kaggle_dir / "train.parquet"
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * cut) if isinstance(cut, float) else cut])
    assert str(_kaggle_refusal(kaggle_dir)) == (
        f"{path}: not a readable parquet file (damaged, cut short, or another format): write it "
        "again with DataFrame.to_parquet"
    )


@pytest.mark.parametrize("column, cells, said", [
    ("channel_1", "text", "column 'channel_1': column is not numeric (it holds text): write it "
                          "as numbers"),
    ("channel_1", "times", "column 'channel_1': column is not numeric (it holds dates or times): "
                           "write it as numbers"),
    ("id", "text", "column 'id': ids must be integers, not text"),
])
def test_a_parquet_column_of_the_wrong_type_is_said_in_words(kaggle_dir, column, cells, said):
    import pandas as pd

    path = kaggle_dir / "train.parquet"
    frame = pd.read_parquet(path)
    frame[column] = (frame[column].astype(str) if cells == "text"
                     else pd.Timestamp("2000-01-01"))
    frame.to_parquet(path, index=False)
    assert str(_kaggle_refusal(kaggle_dir)) == f"{path}: {said}"


@pytest.mark.parametrize("content, said", [
    (b"", "empty file: list the target channels, one a line"),
    (b"\xff\xfechannel_1\n", "cannot read the target channels: not UTF-8 text (it holds the byte "
                             "0xff): save it as UTF-8"),
])
def test_an_unreadable_target_channel_list_says_what_to_do(kaggle_dir, content, said):
    path = kaggle_dir / "target_channels.csv"
    path.write_bytes(content)
    assert str(_kaggle_refusal(kaggle_dir)) == f"{path}: {said}"


def test_an_esa_csv_file_that_is_not_utf8_names_the_byte(tmp_path):
    from tests.unit.test_esa_csv import make_frame, write_csv
    from tests.unit.test_esa_csv import read as read_csv_mission

    frame, _, _, _, labels, names, _ = make_frame()
    path = write_csv(tmp_path / "m.csv", frame, labels, names)
    path.write_bytes(b"\xff" + path.read_bytes())
    with pytest.raises(ESAInputError) as err:
        read_csv_mission(path)
    assert str(err.value) == (
        f"{path}: cannot read the header: not UTF-8 text (it holds the byte 0xff): save it as UTF-8"
    )


@pytest.mark.parametrize("exc, said", [
    (OSError(13, "Permission denied", "/x/y"), "Permission denied"),
    (UnicodeDecodeError("utf-8", b"ab\xfe", 2, 3, "bad"),
     "not UTF-8 text (it holds the byte 0xfe): save it as UTF-8"),
    (ValueError("Error tokenizing data. C error: Expected 2 fields in line 3, saw 4\n"),
     "Expected 2 fields in line 3, saw 4"),
    (KeyError(), "unreadable"),
])
def test_one_line_leaves_out_the_library_s_internals(exc, said):
    import pandas as pd

    from esa_lightning.data.readers.common import one_line

    assert one_line(exc) == said
    assert one_line(pd.errors.EmptyDataError("No columns to parse from file")) == "empty file"


def test_a_label_time_that_is_no_time_shows_how_to_write_one(mission_dir):
    path = mission_dir / "labels.csv"
    path.write_text(path.read_text().replace("2000-01-01 00:00:41", "yesterday"))
    with pytest.raises(ESAInputError) as err:
        read(mission_dir)
    assert str(err.value) == (
        f"{path}: column 'StartTime': value 'yesterday': not a time in row 1 after the header: "
        "write it as 2000-01-01 00:00:41 (a time zone, +01:00 or Z, may follow)"
    )


@pytest.mark.parametrize("breaks", ["cut", "empty", "text", "objects"])
def test_an_unreadable_npy_channel_says_to_write_it_again(tmp_path, breaks):
    import numpy as np

    from esa_lightning.data.readers.nasa import read_nasa
    from tests.helpers import write_nasa

    root = write_nasa(tmp_path / "smap", rows=[(c, "SMAP", "[]", "[]", 30) for c in ("A-1",)])
    path = next(root.rglob("A-1.npy"))
    if breaks == "objects":
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    else:
        path.write_bytes({"cut": path.read_bytes()[:100], "empty": b"", "text": b"hello"}[breaks])
    with pytest.raises(ESAInputError) as err:
        read_nasa(root)
    assert str(err.value) == (
        f"{path}: column 'A-1': not a readable .npy array of numbers (damaged, cut short, holding "
        "Python objects, or another format): write it again with numpy.save, a 2-D array of "
        "numbers"
    )


def test_a_folder_where_a_channel_file_belongs_is_named_as_a_folder(mission_dir):
    path = mission_dir / "channels/channel_1.zip"
    path.unlink()
    path.mkdir()
    with pytest.raises(ESAInputError) as err:
        read(mission_dir)
    assert str(err.value) == (
        f"{path}: a folder, not a regular file: 'channel_1' is read from one file, "
        "channels/channel_1.zip (or .pkl)"
    )


def test_a_missing_channel_file_says_where_it_is_read_from(mission_dir):
    path = mission_dir / "channels/channel_1.zip"
    path.unlink()
    with pytest.raises(ESAInputError) as err:
        read(mission_dir)
    assert str(err.value) == (
        f"{path}: no file for 'channel_1': it is read from channels/channel_1.zip (or .pkl)"
    )


@pytest.mark.parametrize("inside, said", [
    (None, "no detector.json"),
    ("folder", "its detector.json is a folder, not a regular file"),
])
def test_a_folder_without_a_detector_says_which_folder_to_give(tmp_path, inside, said):
    from esa_lightning.artifact import Detector

    folder = tmp_path / "somewhere"
    folder.mkdir()
    if inside == "folder":
        (folder / "detector.json").mkdir()
    with pytest.raises(ESAInputError) as err:
        Detector.load(folder)
    assert str(err.value) == (
        f"{folder}: not a detector artifact ({said}): give the detector folder a training run "
        "wrote, <run folder>/detector"
    )
