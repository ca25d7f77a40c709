"""The default values README.md and docs/*.md state for config keys are the values the configs
hold (test_doc_config_keys.py checks only that every key is named).

What counts as a statement of a default (`extract`), in a unit of text (a table row, or a
paragraph or list item), a KEY being a dotted name in backquotes and V a number (thousands
separators allowed: 262,144), ``true``, ``false`` or ``null``:

- a row of a ``| key | default | what it does |`` table whose first cell holds keys only (a
  later one may be a ``.suffix`` of the first's parent: ``callbacks.x.patience``, ``.min_delta``)
  and whose second cell holds as many comma-separated scalars (V, or a backquoted word such as
  ``epoch``); a row of any other shape (``2 (`debug=default`)``) is not read;
- in any text: KEY (default V, KEY (V), KEY (V by default, KEY, V by default, the apposition
  KEY, V, (or V; or V) ), KEY [and KEY] default(s) to V, and ``KEY=V``, the default (V may be
  a word there: ``data.channels=all``).

Where the value is read (`resolve`): the configs as the command line composes them
(`compose_sources`: ``train.py`` with no override and with each config of the groups model,
experiment, datamodule, data, callbacks, trainer, debug, hparams_search, logger and of the
threshold; ``predict.py``, ``evaluate.py``, ``merge.py``; the ``hydra`` node of
conf/hydra/default.yaml and conf/hydra/launcher/*.yaml as written). A statement's context is the
nearest ``GROUP=NAME`` the unit names before it (``model=global_std``; one written
``(`experiment=gru_ae_nasa`: 100, ...)`` names an exception, not a context), else in a table row
one that opens a cell, else a table row's first cell when it is an experiment's name. With a
context, that composition's leaves are searched (under ``GROUP.`` for the groups that are
packages); without one, or where it has no such key, the compositions without an experiment,
then (where those have no such key) every composition. The leaves whose dotted path is the key,
else those whose path ends with ``.KEY``, must all hold one value, which the statement is
checked against: a key no config holds (a class attribute), leaves that disagree or a value only
a run's interpolation gives (a path) leave the statement skipped.
`test_docs_state_the_defaults_the_configs_hold` asserts at least `MIN_CHECKED` statements were
checked, so an extractor gone blind fails too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "esa_lightning" / "conf"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MIN_CHECKED = 60

GROUPS = ("model", "experiment", "datamodule", "data", "callbacks", "trainer", "debug",
          "hparams_search", "logger")
PACKAGES = {"model", "datamodule", "data", "callbacks", "trainer", "logger"}
KEY = r"[A-Za-z_][\w.]*"
WORD = r"[A-Za-z_]\w*"
NUM = r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
LIT = rf"(?:{NUM}|true|false|null)(?![\w.]|,\d)"
PROSE = [re.compile(p) for p in (
    rf"`({KEY})`\s*\(default:?\s+({LIT})",
    rf"`({KEY})`\s*\(({LIT})\)",
    rf"`({KEY})`\s*\(({LIT}) by default\b",
    rf"`({KEY})`,\s+({LIT}) by default\b",
    rf"`({KEY})`,\s+({LIT})(?:[;)]|,\s(?!by default|-?\d))",
    rf"`({KEY})`(?: and `({KEY})`)? defaults? to `?({LIT}|{WORD})`?(?![\w.])",
    rf"`({KEY})=({LIT}|{WORD})`(?:,| \() the default\b",
)]
CONTEXT = re.compile(rf"(?<![\w.@/])({'|'.join(GROUPS)})=([A-Za-z_]\w*)")
CELL_VALUE = re.compile(rf"`?({LIT})`?|`([A-Za-z_][\w/.-]*)`")


@dataclass(frozen=True)
class Statement:
    key: str
    value: Any
    context: str | None  # "GROUP=NAME"
    where: str = ""


def parse_value(text: str) -> Any:
    """A stated scalar as Python: ``262,144`` -> 262144, ``0.3`` -> 0.3, ``null`` -> None."""
    words = {"true": True, "false": False, "null": None}
    if text in words:
        return words[text]
    if not re.fullmatch(NUM, text):
        return text  # a word: `data.channels=all`
    number = text.replace(",", "")
    try:
        return int(number)
    except ValueError:
        return float(number)


def units(text: str) -> Iterator[tuple[int, str]]:
    """(first line's number, text) of each table row, list item and paragraph."""
    block: list[str] = []
    start = 0
    for number, line in enumerate([*text.splitlines(), ""], 1):
        starts = line.startswith("|") or re.match(r"\s*([-*]|\d+\.)\s", line) or not line.strip()
        if starts and block:
            yield start, " ".join(block)
            block = []
        if line.startswith("|"):
            yield number, line
        elif line.strip():
            start = start if block else number
            block.append(line.strip())


def contexts(unit: str, configs: dict[str, set[str]]) -> list[tuple[int, str, bool]]:
    """(position, "GROUP=NAME", opens a table cell) of each config choice the unit names,
    exceptions (``(`experiment=gru_ae_nasa`: 100, ...)``) left out."""
    found = []
    for m in CONTEXT.finditer(unit):
        exception = unit[:m.start()].endswith("(`") and unit[m.end():].startswith("`:")
        if m[2] in configs.get(m[1], ()) and not exception:
            opens = re.search(r"\|\s*`?$", unit[:m.start()]) is not None
            found.append((m.start(), f"{m[1]}={m[2]}", opens))
    first = re.match(r"\|\s*`(\w+)`", unit)
    if first and first[1] in configs.get("experiment", ()):
        found.insert(0, (0, f"experiment={first[1]}", True))
    return found


def context_at(position: int, unit: str, found: list[tuple[int, str, bool]]) -> str | None:
    """The nearest choice named before ``position``, else in a table row the first one that
    opens a cell."""
    before = [name for at, name, _ in found if at < position]
    if before:
        return before[-1]
    opening = [name for _, name, opens in found if opens and unit.startswith("|")]
    return opening[0] if opening else None


def table_statements(unit: str) -> list[tuple[int, str, Any]]:
    """(position, key, value) of a ``| key | default | ... |`` row of scalars, [] otherwise."""
    cells = unit.strip().strip("|").split("|")
    if len(cells) < 3:
        return []
    keys = re.findall(r"`([^`]+)`", cells[0])
    if not keys or re.sub(r"`[^`]+`|[,\s]", "", cells[0]):
        return []  # a cell of keys only
    full = []
    for key in keys:
        if key.startswith(".") and full:
            key = full[0].rsplit(".", 1)[0] + key
        if not re.fullmatch(KEY, key):
            return []
        full.append(key)
    values = []
    for part in cells[1].strip().split(", "):
        match = CELL_VALUE.fullmatch(part.strip())
        if not match:
            return []
        values.append(parse_value(match[1]) if match[1] else match[2])
    if len(values) != len(full):
        return []
    return [(0, key, value) for key, value in zip(full, values, strict=True)]


def extract(text: str, configs: dict[str, set[str]], where: str = "") -> list[Statement]:
    """The statements of a default in ``text`` (the module docstring says which);
    ``configs``: the config names of each group (`config_names`)."""
    found: list[Statement] = []
    in_table = False
    for line, unit in units(text):
        if unit.startswith("|"):
            header = [c.strip() for c in unit.strip().strip("|").split("|")]
            if header[:2] == ["key", "default"]:
                in_table = True
                continue
        else:
            in_table = False
        named = contexts(unit, configs)
        hits = table_statements(unit) if in_table else []
        for pattern in PROSE:
            for m in pattern.finditer(unit):
                *keys, value = [g for g in m.groups() if g is not None]
                hits += [(m.start(), key, parse_value(value)) for key in keys]
        for position, key, value in sorted(hits, key=lambda h: h[0]):
            found.append(Statement(key, value, context_at(position, unit, named),
                                   f"{where}:{line}: `{key}` {value!r}"))
    return found


def leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, value) of each scalar of a plain container."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, f"{prefix}{key}.")
    elif not isinstance(node, list):
        yield prefix[:-1], node


def config_names() -> dict[str, set[str]]:
    return {group: {p.stem for p in (CONF / group).glob("*.yaml")} for group in GROUPS}


def compose_sources() -> dict[str, dict[str, Any]]:
    """Each composition's leaves by path, keyed by its ``GROUP=NAME`` (or job name): values
    given by interpolation are resolved where they can be, else left as the ``${...}`` text."""
    from esa_lightning.jobs.paths import compose_config

    jobs = [("train", None), ("predict", None), ("evaluate", None), ("merge", None)]
    jobs += [("train", f"{group}={name}") for group, names in config_names().items()
             for name in sorted(names)]
    jobs += [("train", f"model/threshold@model.post_processing.threshold={p.stem}")
             for p in sorted((CONF / "model" / "threshold").glob("*.yaml"))]
    sources = {}
    for job, choice in jobs:
        cfg = compose_config(job, [choice] if choice else [])
        values = {}
        for path, value in leaves(OmegaConf.to_container(cfg, resolve=False)):
            if isinstance(value, str) and "${" in value:
                try:
                    value = OmegaConf.select(cfg, path)
                except Exception:  # an interpolation only a run resolves
                    pass
            values[path] = value
        sources[choice.split("@")[-1] if choice else job] = values
    hydra = yaml.safe_load((CONF / "hydra" / "default.yaml").read_text())
    sources["hydra"] = dict(leaves({"hydra": hydra}))
    for path in sorted((CONF / "hydra" / "launcher").glob("*.yaml")):
        launcher = yaml.safe_load(path.read_text())
        sources[f"hydra/launcher={path.stem}"] = dict(leaves({"hydra": {"launcher": launcher}}))
    return sources


def matching(values: dict[str, Any], key: str, under: str = "") -> list[Any]:
    """The values at ``key`` itself, else at every path ending with ``.key`` (below ``under``)."""
    exact = [v for p, v in values.items() if p == key and p.startswith(under)]
    return exact or [v for p, v in values.items()
                     if p.endswith("." + key) and p.startswith(under)]


def resolve(statement: Statement, sources: dict[str, dict[str, Any]]) -> tuple[bool, Any]:
    """(found, value): the one value the configs hold for the statement's key, see the
    module docstring; found is False where there is none or they disagree."""
    candidates: list[Any] = []
    if statement.context in sources:
        group = statement.context.split("=")[0]
        under = group + "." if group in PACKAGES else ""
        candidates = matching(sources[statement.context], statement.key, under)
    groups = [{n: s for n, s in sources.items() if not n.startswith("experiment=")}, sources]
    for group in groups if not candidates else []:
        exact = [s[statement.key] for s in group.values() if statement.key in s]
        candidates = exact or [v for s in group.values() for v in matching(s, statement.key)]
        if candidates:
            break
    distinct = {repr(v) for v in candidates}
    if len(distinct) != 1 or (isinstance(candidates[0], str) and "${" in candidates[0]):
        return False, None
    return True, candidates[0]


def same(stated: Any, actual: Any) -> bool:
    if isinstance(stated, bool) or stated is None or isinstance(actual, bool):
        return stated is actual
    if isinstance(stated, (int, float)):
        return isinstance(actual, (int, float)) and float(stated) == float(actual)
    return stated == actual


CONFIGS = {"model": {"global_std", "zscore"},
           "experiment": {"esa_full", "gru_ae_nasa", "smoke"},
           "datamodule": {"segments"}}


def test_prose_forms_and_numbers_with_thousands_separators():
    text = ("`n_std` (default 3) and `window` (50) samples; `chunk_rows`, 262,144 by default;\n"
            "`max_run` (10,000) rows; below `min_scale`, 0.3, of it; `top` (null by default)\n"
            "(`min_events`, 1; more) `a` and `b` default to `null`; `c=all`, the default\n"
            "`flag` (true); not `k`-th (1), `q` (99th), `a` (`b`), `x` (1, 2) nor `y`, 3, 4")
    got = [(s.key, s.value) for s in extract(text, CONFIGS)]
    assert got == [("n_std", 3), ("window", 50), ("chunk_rows", 262144), ("max_run", 10000),
                   ("min_scale", 0.3), ("top", None), ("min_events", 1), ("a", None),
                   ("b", None), ("c", "all"), ("flag", True)]
    assert isinstance(parse_value("0.0"), float) and parse_value("1,000,000") == 1000000


def test_table_rows_of_scalars_only_and_suffix_keys():
    text = ("| key | default | what it does |\n|---|---|---|\n"
            "| `a.b.patience`, `.min_delta` | 10, 0.0003 | `experiment=esa_full` (in x) |\n"
            "| `mode` | `epoch` | when; `experiment=smoke` keeps `mode` (0) |\n"
            "| `task_name` | `train`, `predict` | two values, one key |\n"
            "| `lim` | 2 (`debug=default`) | qualified |\n"
            "| `datamodule=segments` | | `window` (50) |\n\n"
            "| name | default |\n|---|---|\n| `other` | 5 |\n")
    got = [(s.key, s.value, s.context) for s in extract(text, CONFIGS)]
    assert got == [("a.b.patience", 10, "experiment=esa_full"),
                   ("a.b.min_delta", 0.0003, "experiment=esa_full"),
                   ("mode", "epoch", None), ("mode", 0, "experiment=smoke"),
                   ("window", 50, "datamodule=segments")]


def test_context_is_the_nearest_choice_before_and_an_exception_is_not_one():
    text = ("`model=global_std` has `n_std` (default 3); with `model=zscore`, `q` (9).\n\n"
            "`q` (9) in a new paragraph; (`experiment=gru_ae_nasa`: 100) `e` (0)\n\n"
            "`model=zscore`: `q` (9); not `+model=zscore` nor `data.model=zscore`\n\n"
            "| `esa_full` | names `top_channels` (3) |\n")
    got = [(s.key, s.context) for s in extract(text, CONFIGS)]
    assert got == [("n_std", "model=global_std"), ("q", "model=zscore"), ("q", None),
                   ("e", None), ("q", "model=zscore"), ("top_channels", "experiment=esa_full")]


def test_resolve_by_context_by_exact_path_then_by_agreeing_suffixes():
    sources = {"train": {"seed": 42, "model.seed": 0, "model.q": 99, "paths.x": "${a}"},
               "model=zscore": {"seed": 42, "model.seed": 1, "model.q": 99.9}}
    assert resolve(Statement("seed", 1, None), sources) == (True, 42)
    assert resolve(Statement("q", 1, "model=zscore"), sources) == (True, 99.9)
    assert resolve(Statement("q", 1, None), sources) == (False, None)  # they disagree
    assert resolve(Statement("model.seed", 1, "model=zscore"), sources) == (True, 1)
    assert resolve(Statement("none", 1, None), sources) == (False, None)
    assert resolve(Statement("x", 1, None), sources) == (False, None)  # a path
    assert same(3, 3.0) and not same(1, True) and not same(0, None) and same(None, None)


@pytest.fixture(scope="module")
def statements() -> list[Statement]:
    configs = config_names()
    return [s for page in PAGES
            for s in extract(page.read_text(), configs, str(page.relative_to(ROOT)))]


def test_docs_state_the_defaults_the_configs_hold(statements: list[Statement]):
    sources = compose_sources()
    checked, wrong = 0, []
    for statement in statements:
        found, actual = resolve(statement, sources)
        if not found:
            continue
        checked += 1
        if not same(statement.value, actual):
            wrong.append(f"{statement.where} ({statement.context or 'any config'}): "
                         f"the configs hold {actual!r}")
    assert not wrong, "defaults the docs state wrongly:\n" + "\n".join(wrong)
    assert checked >= MIN_CHECKED, (f"{checked} of the {len(statements)} statements of a default "
                                    f"resolved to one config value, fewer than {MIN_CHECKED}")
