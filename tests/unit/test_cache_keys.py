"""The readers' cache never serves stale or damaged data, and a crafted file in the cache folder
is built again, never a traceback (round: cache keys)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest

from esa_lightning import io
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
