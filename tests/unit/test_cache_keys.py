"""The readers' cache never serves stale or damaged data, and a crafted file in the cache folder
is built again, never a traceback (round: cache keys)."""

from __future__ import annotations

import os
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from esa_lightning import io
from esa_lightning.data.readers.cache import read_through_cache
from esa_lightning.data.readers.esa_csv import read_esa_csv
from tests.helpers import write_esa_csv


@pytest.fixture
def fresh_memo(monkeypatch):
    """As a new process: no digest remembered in memory."""
    monkeypatch.setattr(io, "_digests", {})


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
def test_a_crafted_digest_memo_is_ignored_and_written_again(tmp_path, fresh_memo, content):
    source = write_esa_csv(tmp_path / "m.csv")
    cache = tmp_path / "cache"
    expected = read(source, tmp_path / "other")
    cache.mkdir()
    memo = cache / io.DIGESTS_FILE
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


def test_a_remembered_digest_that_is_no_sha256_is_not_used(tmp_path, fresh_memo):
    """A memo entry must be a SHA-256 digest: anything else in its place is hashed again."""
    source = write_esa_csv(tmp_path / "m.csv")
    cache = tmp_path / "cache"
    read(source, cache)
    memo = cache / io.DIGESTS_FILE
    stamps = io.json.loads(memo.read_text())
    memo.write_text(io.json.dumps({k: "not a digest" for k in stamps}))
    io._digests.clear()
    ident = io.source_identity([source], cache)
    assert ident == [[str(source.resolve()), io.content_digest(source)]]


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
