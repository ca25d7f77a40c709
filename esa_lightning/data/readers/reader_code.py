"""Fingerprints of the code each cached reader's arrays are built by, recorded next to the
reader's ``CACHE_VERSION`` in ``reader_code.json``, so that a change to that code without a
version bump fails a unit test (``tests/unit/test_reader_code.py``) instead of silently serving
entries built by the old code. The code is not in the cache key: an edit that leaves the arrays
as they were rebuilds no user's cache.

A fingerprint is a SHA-256 of the syntax tree (``ast``) of each part of ``READER_CODE``, without
docstrings: comments, blank lines, formatting and docstrings leave it as it was, and so does
the Python version (3.10 to 3.13 give the same: empty optional fields are left out). A part names a
module (relative to the ``esa_lightning`` package) and either nothing (the whole module) or the
top-level definitions the reader's ``build`` uses from it, with the module's own definitions
those use in turn (found by name). The lists are made by reading the code: a helper a reader's
``build`` starts to call is added to its list.

After changing such code, raise the reader's ``CACHE_VERSION`` (with a line saying why), then
record the fingerprints::

    python -m esa_lightning.data.readers.reader_code --record

which refuses a reader whose code changed while its ``CACHE_VERSION`` did not; add
``--same-version`` where the change leaves every array and info the same (a message's wording,
a rename): then no user's cache is rebuilt.
"""

from __future__ import annotations

import argparse
import ast
import functools
import hashlib
import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from esa_lightning.io import write_json_atomic

PACKAGE = Path(__file__).resolve().parents[2]  # the esa_lightning package
RECORD = Path(__file__).with_name("reader_code.json")
#: the cached readers' modules (``esa_lightning.data.readers.<name>``, each with a
#: ``CACHE_VERSION``)
READERS = ("esa_adb", "esa_csv", "kaggle")
Part = tuple[str, tuple[str, ...]]  # a module's path in the package; its definitions (): all
#: the entry format every reader's arrays and info are written and read in
_ENTRY: tuple[Part, ...] = (
    ("data/readers/cache.py", ("read_through_cache", "load_array_cache", "Layout")),
    ("data/array_store.py", ()),
)
#: the non-finite repairs of esa_csv and kaggle (values held over, telecommands zeroed)
_REPAIRS: Part = ("data/readers/nonfinite.py", ("repair_values", "zero_nonfinite"))
#: what each reader's cached arrays depend on: the reader and the helpers its ``build`` calls
#: (or whose result it is given, as ESA-ADB's events) that shape the arrays. Left out: what only
#: makes the key (``period_ns``, ``select_channels``, the file lists: another result is another
#: key), ``threads`` (the result does not depend on it), and what a read does with the entry.
READER_CODE: dict[str, tuple[Part, ...]] = {
    "esa_adb": (
        ("data/readers/esa_adb.py", ()),
        ("data/readers/esa_adb_grid.py", ()),
        ("data/readers/esa_adb_tables.py", ("read_events",)),
        ("data/readers/grid_marks.py",
         ("label_mask", "sample_cells", "sent_bits", "sent_mask", "telecommand_pulses")),
        ("data/readers/common.py", ("ns_times", "refuse_complex")),
        ("data/readers/nonfinite.py", ("forward_fill",)),
        ("data/safe_pickle.py", ("read_pickled_frame",)),
        ("data/mission.py", ("CATEGORY_TO_CODE", "mark_rows")),
        ("data/selection.py", ("NS_RANGE",)),
        *_ENTRY,
    ),
    "esa_csv": (
        ("data/readers/esa_csv.py", ()),
        ("data/readers/esa_csv_files.py", ("read_header", "TIMESTAMP", "LABEL_PREFIX")),
        ("data/readers/common.py",
         ("check_codes", "check_increasing_batch", "put_columns", "clean_names", "MAX_CODE")),
        ("data/readers/header_line.py", ("first_data_line", "long_row")),
        ("data/mission.py", ("LABEL_CODES",)),
        ("data/selection.py", ("NS_RANGE",)),
        _REPAIRS,
        *_ENTRY,
    ),
    "kaggle": (
        ("data/readers/kaggle.py", ()),
        ("data/readers/common.py",
         ("check_increasing", "int64_ids", "put_columns", "clean_names")),
        ("data/readers/esa_csv_files.py", ("TELECOMMAND_PREFIX",)),
        _REPAIRS,
        *_ENTRY,
    ),
}


def _canonical(node: Any) -> Any:
    """``node`` as plain lists, without positions, docstrings, None and empty fields (so that
    another Python's optional fields, such as ``type_params``, leave it as it was)."""
    if isinstance(node, ast.AST):
        out: list[Any] = [type(node).__name__]
        for name, value in ast.iter_fields(node):
            if name == "body" and isinstance(value, list):
                value = _without_docstring(node, value)
            if value is None or value == []:
                continue
            out.append([name, _canonical(value)])
        return out
    if isinstance(node, list):
        return [_canonical(x) for x in node]
    return repr(node)  # a constant, an identifier, an operator's name


def _without_docstring(owner: ast.AST, body: list[ast.stmt]) -> list[ast.stmt]:
    """``body`` without its leading docstring (of a module, class or function)."""
    documented = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    if (isinstance(owner, documented) and body and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
        return body[1:]
    return body


def _defined(statement: ast.stmt) -> set[str]:
    """The names a top-level statement defines (a function, a class, an assignment)."""
    if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return {statement.name}
    targets = statement.targets if isinstance(statement, ast.Assign) else (
        [statement.target] if isinstance(statement, ast.AnnAssign) else [])
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}


def _picked(tree: ast.Module, names: tuple[str, ...], path: Path) -> list[ast.stmt]:
    """The top-level statements defining ``names``, and those defining the module's names they
    use, in turn; an unknown name is an error (a renamed helper must be renamed here too)."""
    by_name = {name: s for s in tree.body for name in _defined(s)}
    if unknown := [n for n in names if n not in by_name]:
        raise LookupError(f"{path}: no top-level definition of {unknown} (READER_CODE)")
    wanted, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        wanted.add(name)
        used = {n.id for n in ast.walk(by_name[name]) if isinstance(n, ast.Name)}
        todo += sorted(used & set(by_name) - wanted)
    return [s for s in tree.body if _defined(s) & wanted]


def part_digest(path: str | os.PathLike, names: tuple[str, ...] = ()) -> str:
    """The fingerprint of one part: the whole module at ``path`` (``names`` empty) or the
    definitions ``names`` and those they use."""
    return _text_digest(Path(path).read_text(encoding="utf-8"), tuple(names), str(path))


@functools.lru_cache(maxsize=64)
def _text_digest(text: str, names: tuple[str, ...], path: str) -> str:
    """``part_digest`` of a module's ``text`` (remembered: the readers share parts)."""
    tree = ast.parse(text, filename=path)
    nodes = _picked(tree, names, Path(path)) if names else tree
    blob = json.dumps(_canonical(nodes), separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def reader_code_digest(reader: str, package: str | os.PathLike | None = None) -> str:
    """The fingerprint of the code ``reader``'s cached arrays are built by, in ``package``
    (default: this one), the same in any checkout."""
    root = Path(package) if package is not None else PACKAGE
    parts = [[rel, list(names), part_digest(root / rel, names)]
             for rel, names in READER_CODE[reader]]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:20]


def cache_version(reader: str) -> Any:
    """The reader's ``CACHE_VERSION``."""
    return importlib.import_module(f"esa_lightning.data.readers.{reader}").CACHE_VERSION


def read_record(path: str | os.PathLike = RECORD) -> dict[str, dict[str, Any]]:
    """``reader_code.json``: by reader, the ``cache_version`` and ``code`` recorded."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def stale(record: dict[str, dict[str, Any]]) -> list[str]:
    """What differs from ``record``, one line a reader, telling what to do."""
    lines = []
    for reader in READERS:
        was = record.get(reader, {})
        version, code = cache_version(reader), reader_code_digest(reader)
        if was.get("code") != code:
            lines.append(
                f"{reader}: the code its cached arrays are built by changed (recorded "
                f"{was.get('code')}, now {code}): raise CACHE_VERSION in "
                f"esa_lightning/data/readers/{reader}.py (now {version!r}) with a line saying "
                "why, then run `python -m esa_lightning.data.readers.reader_code --record` "
                "(add --same-version only where every array and info is as before)")
        elif was.get("cache_version") != version:
            lines.append(f"{reader}: CACHE_VERSION is {version!r}, reader_code.json records "
                         f"{was.get('cache_version')!r}: run `python -m "
                         "esa_lightning.data.readers.reader_code --record`")
    return lines


def record(path: str | os.PathLike = RECORD, same_version: bool = False) -> list[str]:
    """Record the current fingerprints and versions in ``path``; the readers whose code changed
    while their ``CACHE_VERSION`` did not are refused (left as recorded) unless
    ``same_version``. Returns the refusals."""
    try:
        old = read_record(path)
    except FileNotFoundError:
        old = {}
    new, refused = dict(old), []
    for reader in READERS:
        was = old.get(reader, {})
        now = {"cache_version": cache_version(reader), "code": reader_code_digest(reader)}
        if (was and was.get("code") != now["code"] and was.get("cache_version") == now[
                "cache_version"] and not same_version):
            refused.append(f"{reader}: its code changed but CACHE_VERSION is still "
                           f"{now['cache_version']!r}: raise it (or give --same-version where "
                           "every array and info is as before)")
            continue
        new[reader] = now
    if new != old:
        write_json_atomic(path, new)
    return refused


def main(argv: list[str] | None = None) -> int:
    """Say which readers' recorded fingerprints are stale, or record them (``--record``)."""
    parser = argparse.ArgumentParser(prog="python -m esa_lightning.data.readers.reader_code",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--record", action="store_true", help="record the fingerprints")
    parser.add_argument("--same-version", action="store_true",
                        help="record a changed fingerprint without a CACHE_VERSION bump")
    args = parser.parse_args(argv)
    if args.record:
        lines = record(same_version=args.same_version)
    else:
        lines = stale(read_record())
    for line in lines:
        print(line, file=sys.stderr)
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
