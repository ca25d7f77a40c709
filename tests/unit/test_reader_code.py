"""The code a cached reader's arrays are built by is not in the cache key: its fingerprint,
recorded next to the reader's CACHE_VERSION (``readers/reader_code.json``), makes a change to
that code without a version bump fail here instead of serving entries the old code built."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest

from esa_lightning.data.readers import reader_code
from esa_lightning.data.readers.reader_code import (
    PACKAGE,
    READER_CODE,
    READERS,
    part_digest,
    read_record,
    reader_code_digest,
    stale,
)


def test_the_recorded_fingerprints_are_this_codes():
    """Failing here: a module a cached reader's arrays depend on changed. Raise that reader's
    CACHE_VERSION, then run ``python -m esa_lightning.data.readers.reader_code --record``."""
    lines = stale(read_record())
    assert not lines, "\n".join(lines)


def _package_copy(tmp_path: Path) -> Path:
    """A copy of the modules ``READER_CODE`` names, laid out as in the package."""
    where = tmp_path / "esa_lightning"
    for rel in {rel for parts in READER_CODE.values() for rel, _ in parts}:
        (where / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PACKAGE / rel, where / rel)
    return where


def _digests(package: Path) -> dict[str, str]:
    return {reader: reader_code_digest(reader, package) for reader in READERS}


def _add_to_function(path: Path, name: str, line: str) -> None:
    """Add ``line`` as the last statement of the top-level function ``name`` in ``path``."""
    text = path.read_text().splitlines(keepends=True)
    tree = ast.parse("".join(text))
    function = next(s for s in tree.body if isinstance(s, ast.FunctionDef) and s.name == name)
    last = function.body[-1]
    text.insert(last.end_lineno, " " * last.col_offset + line + "\n")
    path.write_text("".join(text))


@pytest.mark.parametrize(
    ("rel", "name", "changed"),
    [
        ("data/readers/esa_adb_grid.py", "build_arrays", {"esa_adb"}),
        ("data/readers/esa_csv.py", "_read_files", {"esa_csv"}),
        ("data/readers/kaggle.py", "_read_parts", {"kaggle"}),
        ("data/readers/common.py", "put_columns", {"esa_csv", "kaggle"}),
        ("data/readers/common.py", "ns_times", {"esa_adb"}),
        # a helper the listed repair_values calls: found by name, not listed
        ("data/readers/nonfinite.py", "_fill_rows", {"esa_csv", "kaggle"}),
        ("data/readers/esa_adb_tables.py", "_parse_times", {"esa_adb"}),
        ("data/mission.py", "mark_rows", {"esa_adb"}),
        ("data/readers/cache.py", "load_array_cache", set(READERS)),
        # not what the arrays are built by: the message a read gives, a key's option
        ("data/readers/common.py", "other_layout_hint", set()),
        ("data/mission.py", "edge_labels", set()),
    ],
)
def test_a_change_to_the_code_changes_the_fingerprint_of_the_readers_it_builds_for(
    tmp_path, rel, name, changed
):
    package = _package_copy(tmp_path)
    before = _digests(package)
    assert before == _digests(PACKAGE)  # the copy is this code
    _add_to_function(package / rel, name, "assert True")
    after = _digests(package)
    assert {r for r in READERS if after[r] != before[r]} == changed


def test_a_change_to_a_comment_or_docstring_leaves_the_fingerprint(tmp_path):
    """Only the syntax tree without docstrings counts: rewording them rebuilds no cache."""
    package = _package_copy(tmp_path)
    before = _digests(package)
    path = package / "data" / "readers" / "common.py"
    text = path.read_text()
    doc = ast.get_docstring(next(s for s in ast.parse(text).body
                                 if isinstance(s, ast.FunctionDef) and s.name == "put_columns"))
    assert doc and doc.splitlines()[0] in text
    text = text.replace(doc.splitlines()[0], "Reworded.", 1)
    path.write_text("# a new comment\n" + text.replace("\n\n\n", "\n\n\n# another\n\n", 1))
    assert _digests(package) == before


def test_a_listed_name_that_is_gone_is_an_error(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("def kept():\n    return 1\n")
    part_digest(path, ("kept",))
    with pytest.raises(LookupError, match="renamed"):
        part_digest(path, ("renamed",))


@pytest.fixture
def record_copy(tmp_path):
    """A record of this code (not the package's file: these tests pass while it is stale)."""
    path = tmp_path / "reader_code.json"
    assert reader_code.record(path) == []
    return path


def _other_code(monkeypatch, reader: str) -> None:
    real = reader_code.reader_code_digest
    monkeypatch.setattr(reader_code, "reader_code_digest",
                        lambda r, package=None: "other" if r == reader else real(r, package))


def test_a_change_without_a_version_bump_is_said_with_what_to_do(monkeypatch, record_copy):
    _other_code(monkeypatch, "esa_csv")
    lines = stale(read_record(record_copy))
    assert len(lines) == 1
    assert lines[0].startswith("esa_csv:")
    assert "raise CACHE_VERSION" in lines[0]
    assert "python -m esa_lightning.data.readers.reader_code --record" in lines[0]


def test_recording_refuses_a_change_without_a_version_bump(monkeypatch, record_copy):
    before = record_copy.read_text()
    _other_code(monkeypatch, "esa_adb")
    refused = reader_code.record(record_copy)
    assert len(refused) == 1 and refused[0].startswith("esa_adb:")
    assert record_copy.read_text() == before
    # said to leave the arrays as they were: recorded, the version kept
    assert reader_code.record(record_copy, same_version=True) == []
    assert read_record(record_copy)["esa_adb"] == {
        "cache_version": json.loads(before)["esa_adb"]["cache_version"], "code": "other"}


def test_recording_after_a_version_bump(monkeypatch, record_copy):
    _other_code(monkeypatch, "kaggle")
    from esa_lightning.data.readers import kaggle

    monkeypatch.setattr(kaggle, "CACHE_VERSION", kaggle.CACHE_VERSION + 1)
    assert reader_code.record(record_copy) == []
    recorded = read_record(record_copy)
    assert recorded["kaggle"] == {"cache_version": kaggle.CACHE_VERSION, "code": "other"}
    assert stale(recorded) == []


def test_the_command_says_nothing_is_stale(capsys):
    assert reader_code.main([]) == 0
    assert capsys.readouterr().err == ""


#: what each reader imports from the package that its cached arrays are not built by: the
#: read around the entry (the Mission, split points, warnings given at every read), what makes
#: the key (channel selection, file lists, the period: another result is another key), the
#: errors. A helper a reader starts to import is put in READER_CODE or here, after reading it.
NOT_BUILDING = {
    "esa_adb": {
        "io", "digests", "Mission", "onto_first_row", "PREPROCESSING_KEY", "Preprocessing",
        "USER_CACHE_DIR", "UserCacheDir", "cache_entry", "cache_folder", "rows_layout",
        "other_layout_hint", "member_file", "read_channel_table", "read_telecommand_table",
        "on_grid", "period_ns", "resolve_jobs", "ChannelSpec", "select_channels",
        "split_points_by_time", "ESAInputError", "user_stacklevel",
        "in_order", "progress",  # esa_adb_grid's: threads in the channels' order, a progress bar
    },
    "esa_csv": {
        "Mission", "PREPROCESSING_KEY", "Preprocessing", "USER_CACHE_DIR", "UserCacheDir",
        "cache_entry", "cache_folder", "rows_layout", "WITHOUT_READING", "OffGridWarning",
        "events_from_labels", "median_period", "off_grid", "one_line", "cache_key",
        "change_stamps", "source_identity", "channel_table", "locate_files", "mission_name",
        "split_header", "ranges_without_reading", "ChannelSpec", "select_channels",
        "split_points_by_time", "ESAInputError", "user_stacklevel",
    },
    "kaggle": {
        "Mission", "default_channel_table", "PREPROCESSING_KEY", "Preprocessing",
        "USER_CACHE_DIR", "UserCacheDir", "cache_entry", "cache_folder", "rows_layout",
        "WITHOUT_READING", "events_from_labels", "one_line", "other_layout_hint", "cache_key",
        "change_stamps", "source_identity", "ranges_without_reading", "ChannelSpec",
        "UnknownChannels", "select_channels", "split_points_by_fraction", "ESAInputError",
        "quoted", "SETTINGS_LIMIT", "CHANNEL_WORDS", "UNREADABLE_PARQUET", "type_words",
    },
}


def _module_path(module: str) -> str:
    return module.removeprefix("esa_lightning.").replace(".", "/") + ".py"


@pytest.mark.parametrize(
    ("reader", "module"),
    [(reader, rel) for reader in READERS for rel, names in READER_CODE[reader] if not names],
)
def test_every_helper_a_reader_imports_is_fingerprinted_or_said_not_to_build(reader, module):
    """A reader (or a module fingerprinted whole, as ``esa_adb_grid``) that starts to import
    another helper fails here until the helper is put in ``READER_CODE`` (the reader's arrays
    are built by it) or in ``NOT_BUILDING`` (they are not)."""
    parts = READER_CODE[reader]
    tree = ast.parse((PACKAGE / module).read_text())
    unsorted = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("esa_lightning"):
            rel = _module_path(node.module)
            for alias in node.names:
                listed = any(r == rel and (not names or alias.name in names) for r, names in parts)
                if not listed and alias.name not in NOT_BUILDING[reader]:
                    unsorted.append(f"{node.module}.{alias.name}")
    assert not unsorted, f"{module} imports {unsorted}: add to READER_CODE or NOT_BUILDING"
