"""The readers' cache gives the warnings of the read that built an entry at every read of it."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from esa_lightning.data.array_store import ArrayStore
from esa_lightning.data.frame import InputWarning
from esa_lightning.data.readers.cache import read_through_cache
from esa_lightning.data.readers.esa_adb import read_esa_mission
from esa_lightning.data.readers.esa_csv import read_esa_csv
from esa_lightning.data.readers.kaggle import read_kaggle
from tests.helpers import esa_frame, pickled_zip, write_esa_csv, write_esa_mission, write_kaggle


def esa_csv_with_nan(tmp_path: Path) -> tuple[Callable, list[str]]:
    path = write_esa_csv(tmp_path / "mission.csv")
    frame = pd.read_csv(path)
    frame.loc[4, "channel_1"] = np.nan
    frame.loc[6, "telecommand_1"] = np.nan
    frame.to_csv(path, index=False)
    expected = ["repaired 1 NaN/inf value(s) in 1 channel(s)", "set 1 NaN/inf telecommand value"]
    return lambda **kw: read_esa_csv(path, **kw), expected


def kaggle_with_nan(tmp_path: Path) -> tuple[Callable, list[str]]:
    path = write_kaggle(tmp_path / "train.parquet")
    frame = pd.read_parquet(path)
    frame.loc[[3, 4], "channel_2"] = np.nan
    frame.to_parquet(path, index=False)
    return lambda **kw: read_kaggle(path, **kw), ["repaired 2 NaN/inf value(s)"]


def esa_adb_with_nan(tmp_path: Path) -> tuple[Callable, list[str]]:
    frame = esa_frame("channel_1", n=20)
    frame.iloc[5, 0] = np.nan
    root = write_esa_mission(tmp_path / "raw", {"channel_1": pickled_zip(frame)})
    return (lambda **kw: read_esa_mission(root, n_jobs=1, **kw),
            [f"{{'{root / 'channels' / 'channel_1.zip'}': 1}}"])


def read_warning(read: Callable, **kw) -> tuple[object, list[tuple[type, str]]]:
    """The mission ``read(**kw)`` returns and the warnings (category, message) it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mission = read(**kw)
    return mission, [(w.category, str(w.message)) for w in caught]


@pytest.mark.parametrize("make", [esa_csv_with_nan, kaggle_with_nan, esa_adb_with_nan])
def test_a_cached_read_gives_the_repair_warnings_of_the_first_read(tmp_path, make):
    read, expected = make(tmp_path)
    cache = tmp_path / "cache"
    _, uncached = read_warning(read, use_cache=False)
    _, first = read_warning(read, cache_dir=cache)
    mission, second = read_warning(read, cache_dir=cache)
    assert isinstance(mission.values, np.memmap)  # the second read came from the cache
    for text in expected:
        assert any(text in message for _, message in uncached), (text, uncached)
    assert first == uncached  # building the entry neither hides nor doubles a warning
    assert second == first


def test_the_category_is_kept_and_an_entry_without_the_record_is_built_again(tmp_path):
    entry = tmp_path / "cache" / "key"

    def build(store: ArrayStore) -> tuple[dict, dict]:
        warnings.warn("a note about the input", InputWarning, stacklevel=2)
        warnings.warn("old spelling", DeprecationWarning, stacklevel=2)
        values = store.empty("values", (3,), np.float32)
        values[:] = 1.0
        return {"values": values}, {"n": 3}

    said = [(InputWarning, "a note about the input"), (DeprecationWarning, "old spelling")]
    for _ in range(2):
        _, caught = read_warning(lambda: read_through_cache(entry, True, build))
        assert caught == said
    manifest = entry / "manifest.json"  # an entry of a version that did not record warnings
    spec = json.loads(manifest.read_text())
    del spec["warnings"]
    manifest.write_text(json.dumps(spec))
    _, caught = read_warning(lambda: read_through_cache(entry, True, build))
    assert caught == said
    assert "warnings" in json.loads(manifest.read_text())  # built again, with the record


@pytest.mark.parametrize("record", [["text"], [{"message": 3, "category": "x:Y"}], [{}]])
def test_an_entry_with_a_damaged_warnings_record_is_built_again(tmp_path, record):
    entry = tmp_path / "cache" / "key"

    def build(store: ArrayStore) -> tuple[dict, dict]:
        warnings.warn("a note about the input", InputWarning, stacklevel=2)
        values = store.empty("values", (3,), np.float32)
        values[:] = 1.0
        return {"values": values}, {"n": 3}

    read_warning(lambda: read_through_cache(entry, True, build))
    manifest = entry / "manifest.json"
    spec = json.loads(manifest.read_text())
    spec["warnings"] = record
    manifest.write_text(json.dumps(spec))
    _, caught = read_warning(lambda: read_through_cache(entry, True, build))
    assert caught == [(InputWarning, "a note about the input")]


@pytest.mark.parametrize(
    "make, reader, name",
    [(esa_csv_with_nan, read_esa_csv, "mission.csv"), (kaggle_with_nan, read_kaggle,
                                                       "train.parquet")],
)
def test_a_cached_read_names_the_file_as_this_read_spells_it(
    tmp_path, monkeypatch, make, reader, name
):
    """The recorded warnings named the file as the read that built the entry spelled it: a
    read of the same file through another spelling (relative, absolute, through a symlink)
    was told of the first one. Each read is told of its own."""
    (tmp_path / "data").mkdir()
    make(tmp_path / "data")
    (tmp_path / "link").symlink_to(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    for path in (Path("data") / name, tmp_path / "data" / name, Path("link") / name):
        mission, caught = read_warning(partial(reader, path, cache_dir=tmp_path / "cache"))
        repaired = [message for _, message in caught if "NaN/inf" in message]
        assert repaired, caught
        assert all(message.startswith(f"{path}: ") for message in repaired), (path, repaired)
    assert isinstance(mission.values, np.memmap)  # the later reads came from the cache
    assert len([p for p in (tmp_path / "cache").iterdir() if p.is_dir()]) == 1  # one entry


def with_nan_and_beyond_float32(tmp_path: Path, kind: str) -> Path:
    """A ``kind`` mission (esa_csv, kaggle, nasa) whose channel_1 / A-1 holds a NaN and a
    reading beyond float32's range."""
    from tests.helpers import write_nasa

    if kind == "nasa":
        def values(n: int) -> np.ndarray:
            array = np.column_stack([np.sin(np.arange(n) / 3.0), np.zeros(n)])
            array[[3, 7], 0] = np.nan, 1e300
            return array
        return write_nasa(tmp_path / "nasa", values=values)
    path = (write_esa_csv(tmp_path / "m.csv", n=60) if kind == "esa_csv"
            else write_kaggle(tmp_path / "train.parquet", n=60))
    frame = pd.read_csv(path) if kind == "esa_csv" else pd.read_parquet(path)
    frame.loc[[3, 7], "channel_1"] = np.nan, 1e300
    frame.to_csv(path, index=False) if kind == "esa_csv" else frame.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("through", ["load_mission", "reader"])
@pytest.mark.parametrize(("kind", "cache"), [("esa_csv", False), ("esa_csv", True),
                                             ("kaggle", False), ("kaggle", True),
                                             ("nasa", False)])  # the NASA reader has no cache
def test_the_repair_warnings_both_name_the_line_that_asked_for_the_read(
    tmp_path, kind, cache, through
):
    """The warning counting the rows beyond float32's range and the one counting the NaN/inf
    filled named different lines, both inside the reader (stacklevel 3 and 2), or both the
    reader's caller on a cached read (load_mission's line when called through it). Both name
    the line outside the package that asked for the read, whichever way it came."""
    from esa_lightning.data import load_mission
    from esa_lightning.data.readers.nasa import read_nasa

    root = with_nan_and_beyond_float32(tmp_path, kind)
    options = {} if kind == "nasa" else {"cache_dir": tmp_path / "cache", "use_cache": cache}
    reader = {"esa_csv": read_esa_csv, "kaggle": read_kaggle, "nasa": read_nasa}[kind]
    for _ in range(2 if cache else 1):  # a cached read: the one writing the entry, one of it
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if through == "reader":
                reader(root if kind != "kaggle" else root.parent, **options)
            else:
                load_mission(kind, root if kind != "kaggle" else root.parent, **options)
        said = {key: [w.filename for w in caught if key in str(w.message)]
                for key in ("beyond float32's range", "NaN/inf value(s)")}
        assert said == {key: [__file__] for key in said}, said


def test_a_warning_of_a_reader_built_from_a_config_names_the_line_that_asked_for_it(tmp_path):
    """A reader run by Hydra's ``instantiate`` (as train.py builds its datamodule from the
    config) warned naming hydra/_internal/instantiate/_instantiate2.py, a line of Hydra that
    tells the user nothing: the warning names the line outside the package and the config
    libraries that asked for the read, this one."""
    from hydra.utils import instantiate

    root = with_nan_and_beyond_float32(tmp_path, "esa_csv")
    config = {"_target_": "esa_lightning.data.readers.esa_csv.read_esa_csv", "root": str(root),
              "use_cache": False}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        instantiate(config)  # the line the warnings must name
    named = {w.filename for w in caught if "NaN/inf value(s)" in str(w.message)}
    assert named == {__file__}, named
