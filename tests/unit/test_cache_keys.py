"""The readers' cache never serves stale or damaged data, and a crafted file in the cache folder
is built again, never a traceback (round: cache keys)."""

from __future__ import annotations

import json
import os
import time
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from esa_lightning.data.readers import digests
from esa_lightning.data.readers.cache import read_through_cache
from esa_lightning.data.readers.esa_adb import read_esa_mission
from esa_lightning.data.readers.esa_csv import read_esa_csv
from esa_lightning.data.readers.kaggle import read_kaggle
from tests.helpers import esa_frame, pickled_zip, write_esa_csv, write_esa_mission, write_kaggle


@pytest.fixture
def fresh_memo(monkeypatch):
    """As a new process: no digest remembered in memory."""
    monkeypatch.setattr(digests, "_digests", {})


@pytest.fixture
def settled(monkeypatch):
    """As if the sources were read some seconds after they were written: digests remembered."""
    monkeypatch.setattr(digests, "_now_ns", lambda: time.time_ns() + digests.SETTLED_NS)


def read(source: Path, cache: Path) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.array(read_esa_csv(source, cache_dir=cache).values)


@pytest.mark.parametrize("content", [
    "[" * 100_000,  # nested beyond the parser's depth
    b"\xff\xfe not UTF-8",
    '{"stamp": 1}',
    "[1, 2]",
    "folder",
    "pipe",
])
def test_a_crafted_digest_memo_is_ignored_and_written_again(
    tmp_path, fresh_memo, settled, content
):
    source = write_esa_csv(tmp_path / "m.csv")
    cache = tmp_path / "cache"
    expected = read(source, tmp_path / "other")
    cache.mkdir()
    memo = cache / digests.DIGESTS_FILE
    if content == "folder":
        memo.mkdir()
    elif content == "pipe":
        os.mkfifo(memo)  # opened, it would wait for a writer for ever
    elif isinstance(content, bytes):
        memo.write_bytes(content)
    else:
        memo.write_text(content)
    np.testing.assert_array_equal(read(source, cache), expected)
    if content not in ("folder", "pipe"):  # a file in the way of the memo stays: it is not ours
        assert str(source.resolve()) in memo.read_text()


def test_a_remembered_digest_that_is_no_sha256_is_not_used(tmp_path, fresh_memo, settled):
    """A memo entry must be a SHA-256 digest: anything else in its place is hashed again."""
    source = write_esa_csv(tmp_path / "m.csv")
    cache = tmp_path / "cache"
    read(source, cache)
    memo = cache / digests.DIGESTS_FILE
    stamps = json.loads(memo.read_text())
    memo.write_text(json.dumps({k: "not a digest" for k in stamps}))
    digests._digests.clear()
    ident = digests.source_identity([source], cache)
    assert ident == [[str(source.resolve()), digests.content_digest(source)]]


def test_a_writer_finishing_second_keeps_the_complete_entry_of_the_first(tmp_path):
    """Two processes building one entry: the one that finishes second finds the other's
    complete entry in place and keeps it (its own is dropped) instead of moving it away, which
    left, for a moment, no entry for the readers of it (``cache entry unreadable right after
    writing it``) or failed the rename (``could not write the cache``, a second build)."""
    entry = tmp_path / "cache" / "key"
    builds = []

    def build(store, inner: bool = False):
        builds.append(inner)
        if not inner:  # another writer completes the entry while this one builds
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                read_through_cache(entry, True, partial(build, inner=True))
        values = store.empty("values", (4,), np.float32)
        values[:] = 2.0 if inner else 1.0
        return {"values": values}, {"n": 4}

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "could not write the cache"
        arrays, info = read_through_cache(entry, True, build)
    first = np.array(arrays["values"])
    assert builds == [False, True]
    np.testing.assert_array_equal(first, [2.0] * 4)  # the entry the first writer published
    assert sorted(p.name for p in entry.parent.iterdir()) == ["key"]  # the other one dropped


def test_a_damaged_entry_is_replaced_by_the_writer(tmp_path):
    entry = tmp_path / "cache" / "key"
    entry.mkdir(parents=True)
    (entry / "manifest.json").write_text("{")

    def build(store):
        values = store.empty("values", (4,), np.float32)
        values[:] = 1.0
        return {"values": values}, {"n": 4}

    arrays, info = read_through_cache(entry, True, build)
    np.testing.assert_array_equal(arrays["values"], [1.0] * 4)
    assert info == {"n": 4}
    assert sorted(p.name for p in entry.parent.iterdir()) == ["key"]


# ------------------------------------------------------------------ damaged and crafted entries
def esa_csv_reader(tmp_path: Path):
    source = write_esa_csv(tmp_path / "m.csv")
    return lambda cache: read_esa_csv(source, cache_dir=cache)


def kaggle_reader(tmp_path: Path):
    source = write_kaggle(tmp_path / "train.parquet")
    return lambda cache: read_kaggle(source, cache_dir=cache)


def esa_reader(tmp_path: Path):
    frame = esa_frame("channel_1", n=20)
    root = write_esa_mission(tmp_path / "raw", {"channel_1": pickled_zip(frame)})
    return lambda cache: read_esa_mission(root, cache_dir=cache, n_jobs=1)


def _values(entry: Path, change) -> None:  # noqa: ANN001
    values = np.load(entry / "values.npy")
    (entry / "values.npy").unlink()
    np.save(entry / "values.npy", change(values), allow_pickle=True)


def _array(entry: Path, name: str, change) -> None:  # noqa: ANN001
    if not (entry / f"{name}.npy").exists():
        pytest.skip(f"this reader's entry holds no {name}")
    array = np.load(entry / f"{name}.npy")
    (entry / f"{name}.npy").unlink()
    np.save(entry / f"{name}.npy", change(array))


def _manifest(entry: Path, change) -> None:  # noqa: ANN001
    manifest = json.loads((entry / "manifest.json").read_text())
    change(manifest)
    (entry / "manifest.json").write_text(json.dumps(manifest))


def _first_int(info: dict) -> str:
    return sorted(k for k, v in info.items() if type(v) is int)[0]


DAMAGE = {
    "info a list": lambda e: _manifest(e, lambda m: m.update(info=[])),
    "info a string": lambda e: _manifest(e, lambda m: m.update(info="x")),
    "info without its keys": lambda e: _manifest(e, lambda m: m.update(info={})),
    "an info number as text": lambda e: _manifest(
        e, lambda m: m["info"].update({_first_int(m["info"]): "many"})),
    "an info number out of range": lambda e: _manifest(
        e, lambda m: m["info"].update({k: 10**6 for k in m["info"] if type(m["info"][k]) is int})),
    "arrays a string": lambda e: _manifest(e, lambda m: m.update(arrays="values")),
    "an array named out of the entry": lambda e: _manifest(
        e, lambda m: m.update(arrays=[*m["arrays"], "../../victim"])),
    "an array left out": lambda e: _manifest(
        e, lambda m: m.update(arrays=[a for a in m["arrays"] if a != "values"])),
    "values of fewer rows": lambda e: _values(e, lambda v: v[:3]),
    "values of one column": lambda e: _values(e, lambda v: v[:, :1]),
    "values of two columns more": lambda e: _values(e, lambda v: np.hstack([v, v, v])[:, :3]),
    "values as float64": lambda e: _values(e, lambda v: v.astype(np.float64)),
    "values as objects": lambda e: _values(e, lambda v: v.astype(object)),
    "values truncated": lambda e: (e / "values.npy").write_bytes(
        (e / "values.npy").read_bytes()[:-5]),
    "values a named pipe": lambda e: ((e / "values.npy").unlink(), os.mkfifo(e / "values.npy")),
    "values a folder": lambda e: ((e / "values.npy").unlink(), (e / "values.npy").mkdir()),
    "finite_rows cut short": lambda e: _array(e, "finite_rows", lambda v: v[:, :1]),
    "a cell beyond the rows": lambda e: _array(
        e, "unrepresentable_cells", lambda v: np.array([[10**6, 0]], dtype=np.int64)),
    "a cell beyond the channels": lambda e: _array(
        e, "unrepresentable_cells", lambda v: np.array([[0, 99]], dtype=np.int64)),
    "a negative cell": lambda e: _array(
        e, "unrepresentable_cells", lambda v: np.array([[-1, 0]], dtype=np.int64)),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("reader", [esa_csv_reader, kaggle_reader, esa_reader])
def test_a_damaged_or_crafted_entry_is_built_again(tmp_path, reader, damage):
    read = reader(tmp_path)
    cache = tmp_path / "cache"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fresh = read(None)
        read(cache)
        (entry,) = [p for p in cache.iterdir() if p.is_dir()]
        if damage == "values of two columns more" and fresh.values.shape[1] >= 3:
            pytest.skip("the mission has three channels already")
        DAMAGE[damage](entry)
        again = read(cache)
    np.testing.assert_array_equal(np.asarray(again.values), np.asarray(fresh.values))
    np.testing.assert_array_equal(np.asarray(again.labels), np.asarray(fresh.labels))
    assert (again.val_start, again.test_start) == (fresh.val_start, fresh.test_start)
    assert again.values.dtype == fresh.values.dtype
    np.testing.assert_array_equal(np.asarray(again.unrepresentable_cells),
                                  np.asarray(fresh.unrepresentable_cells))
    assert isinstance(again.values, np.memmap)  # the entry built again, read from the cache


@pytest.mark.parametrize("reader", [esa_csv_reader, kaggle_reader, esa_reader])
def test_an_entry_as_written_is_read_not_built_again(tmp_path, reader):
    read = reader(tmp_path)
    cache = tmp_path / "cache"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        read(cache)
        (entry,) = [p for p in cache.iterdir() if p.is_dir()]
        before = (entry.stat().st_ino, (entry / "manifest.json").stat().st_mtime_ns)
        read(cache)
    assert (entry.stat().st_ino, (entry / "manifest.json").stat().st_mtime_ns) == before


# ------------------------------------------------------------- a source written during the read
def test_a_source_rewritten_while_it_is_read_is_not_cached_under_its_old_digest(
    tmp_path, monkeypatch
):
    """The key holds the digest of the file as hashed before the read; a file rewritten in
    place while the reader parses it (a copy over it, same size, mtime put back) must not leave
    an entry of the new rows under the old content's key: a later read of the old content (the
    file restored) would be served the other rows."""
    import esa_lightning.data.readers.esa_csv as esa_csv

    source = write_esa_csv(tmp_path / "m.csv")
    original = source.read_bytes()
    cache = tmp_path / "cache"
    other = original.replace(b"0.", b"7.", 1)
    assert len(other) == len(original) and other != original
    real = esa_csv._read_files

    def rewritten_first(*args, **kwargs):  # noqa: ANN002, ANN003
        st = source.stat()
        source.write_bytes(other)
        os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns))
        return real(*args, **kwargs)

    monkeypatch.setattr(esa_csv, "_read_files", rewritten_first)
    with pytest.warns(UserWarning, match="changed while"):
        read_esa_csv(source, cache_dir=cache)
    monkeypatch.setattr(esa_csv, "_read_files", real)
    assert not [p for p in cache.iterdir() if p.is_dir()]  # nothing cached
    source.write_bytes(original)  # the old content back
    np.testing.assert_array_equal(read(source, cache), read(source, None))


# ------------------------------------------------------------------ coarse file-system clocks
def test_a_digest_taken_in_the_tick_of_the_last_write_is_not_remembered(
    tmp_path, fresh_memo, monkeypatch
):
    """Before Linux 6.13 (and on file systems without fine-grained timestamps), ctime is read
    from a clock that moves every 1 to 10 ms: a file rewritten in the tick it was written and
    hashed in, same size, mtime put back, keeps its whole change stamp. A digest is therefore
    remembered only for a file last written at least ``digests.SETTLED_NS`` before it was hashed.
    Simulated: the stamp of a clock too coarse to see the rewrite."""
    source = tmp_path / "m.csv"
    source.write_bytes(b"a,b\n1,2\n")

    def coarse_stamp(path: Path) -> str:  # the rewrite lands in the same tick
        st = path.stat()
        return f"{path}|{st.st_dev}|{st.st_ino}|{st.st_size}|0|0"

    monkeypatch.setattr(digests, "_change_stamp", coarse_stamp)
    before = digests.source_identity([source], tmp_path / "cache")
    st = source.stat()
    with open(source, "r+b") as f:
        f.write(b"a,b\n9,9\n")
    os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = digests.source_identity([source], tmp_path / "cache")
    assert after != before
    assert after == [[str(source.resolve()), digests.content_digest(source)]]


def test_a_settled_file_is_hashed_once(tmp_path, fresh_memo, monkeypatch):
    source = tmp_path / "m.csv"
    source.write_bytes(b"a,b\n1,2\n")
    hashed = []
    real = digests.content_digest
    monkeypatch.setattr(digests, "content_digest", lambda p: hashed.append(p) or real(p))
    digests.source_identity([source], tmp_path / "cache")
    digests.source_identity([source], tmp_path / "cache")
    assert len(hashed) == 2  # written just now: not remembered
    monkeypatch.setattr(digests, "_now_ns", lambda: source.stat().st_ctime_ns + digests.SETTLED_NS)
    digests.source_identity([source], tmp_path / "cache")
    digests._digests.clear()  # a new process: the memo file
    digests.source_identity([source], tmp_path / "cache")
    assert len(hashed) == 3


# ------------------------------------------------------------------ a cache folder we cannot list
def _permissions_enforced(tmp_path: Path) -> bool:
    probe = tmp_path / "probe"
    probe.mkdir()
    probe.chmod(0)
    try:
        os.listdir(probe)
        return False  # root with CAP_DAC_OVERRIDE: chmod does not stop it
    except PermissionError:
        return True
    finally:
        probe.chmod(0o700)


@pytest.mark.parametrize("mode", [0o000, 0o111, 0o333])
def test_a_cache_folder_that_cannot_be_listed_is_read_without_the_cache(tmp_path, mode):
    """``chmod 000`` (or execute only, or no read) on the cache folder: the read goes on, with
    the entry when the folder can still be searched, else without the cache, and says why."""
    if not _permissions_enforced(tmp_path):
        pytest.skip("permissions are not enforced for this user (root)")
    source = write_esa_csv(tmp_path / "m.csv")
    cache = tmp_path / "cache"
    expected = read(source, cache)
    cache.chmod(mode)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            got = np.array(read_esa_csv(source, cache_dir=cache).values)
    finally:
        cache.chmod(0o700)
    np.testing.assert_array_equal(got, expected)
    if mode == 0o000:
        assert any("could not" in str(w.message) and str(cache) in str(w.message)
                   for w in caught), [str(w.message) for w in caught]


@pytest.mark.parametrize("created", [False, True])
def test_a_table_rewritten_between_its_read_and_its_hashing_is_not_cached(
    tmp_path, monkeypatch, created
):
    """The ESA reader reads ``labels.csv`` (the events its label rows come from) before it
    hashes the sources: a label file saved (or first created) in that window left an entry of
    the old label rows under the new file's key, served to every later read of the new file."""
    import esa_lightning.data.readers.esa_adb as esa_adb

    read_mission = esa_reader(tmp_path)
    root = tmp_path / "raw"
    (root / "anomaly_types.csv").write_text("ID,Category\nid_1,Anomaly\n")
    labels = root / "labels.csv"
    if not created:
        labels.write_text("ID,Channel,StartTime,EndTime\n"
                          "id_1,channel_1,2000-01-01 00:02:00,2000-01-01 00:03:00\n")
    moved = ("ID,Channel,StartTime,EndTime\n"
             "id_1,channel_1,2000-01-01 00:05:00,2000-01-01 00:06:00\n")
    real = digests.source_identity

    def saved_meanwhile(paths, memo=None):  # noqa: ANN001, ANN202
        if not labels.exists() or labels.read_text() != moved:
            labels.write_text(moved)
        return real(paths, memo)

    monkeypatch.setattr(esa_adb.digests, "source_identity", saved_meanwhile)
    with pytest.warns(UserWarning, match="changed while"):
        read_mission(tmp_path / "cache")
    monkeypatch.setattr(esa_adb.digests, "source_identity", real)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cached, fresh = read_mission(tmp_path / "cache"), read_mission(None)
    np.testing.assert_array_equal(np.asarray(cached.labels), np.asarray(fresh.labels))


def test_a_csv_rewritten_between_its_header_read_and_its_hashing_is_not_cached(
    tmp_path, monkeypatch
):
    import esa_lightning.data.readers.esa_csv as esa_csv

    source = write_esa_csv(tmp_path / "m.csv")
    other = source.read_bytes().replace(b"0.", b"7.", 1)
    real = esa_csv.source_identity

    def saved_meanwhile(paths, memo=None):  # noqa: ANN001, ANN202
        source.write_bytes(other)
        return real(paths, memo)

    monkeypatch.setattr(esa_csv, "source_identity", saved_meanwhile)
    with pytest.warns(UserWarning, match="changed while"):
        read_esa_csv(source, cache_dir=tmp_path / "cache")
