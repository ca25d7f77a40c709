"""Every key a user may set in ``esa_lightning/conf/**/*.yaml`` is named in the README or docs/
(the interface documentation): as its dotted path or as its own name inside backquotes
(`model.post_processing.threshold.warmup`, `warmup`, `.warmup=250`). A key added to a config
without a word in the docs fails here, naming its file. The check is on names, not meanings: a
new key spelt like a documented one passes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "esa_lightning" / "conf"
CODE_SPAN = re.compile(r"`([^`\n]+)`")
NAME = re.compile(r"[A-Za-z_][\w.]*")


def documented_names(text: str) -> set[str]:
    """The names inside the backquoted spans of ``text``, each dotted name with every suffix
    of it (`trainer.max_epochs=1` gives trainer.max_epochs and max_epochs)."""
    names = set()
    for span in CODE_SPAN.findall(text):
        for name in NAME.findall(span):
            parts = name.strip(".").split(".")
            names.update(".".join(parts[i:]) for i in range(len(parts)))
    return names


def config_keys(node: Any, prefix: str = "") -> Iterator[str]:
    """The dotted keys of a config's leaves (an empty mapping is a leaf); the Hydra defaults
    list and the keys Hydra or the classes read (``_target_``...) are left out."""
    for key, value in node.items():
        key = str(key)
        if (key == "defaults" and not prefix) or key.startswith("_"):
            continue
        if isinstance(value, dict) and value:
            yield from config_keys(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def undocumented(config: dict[str, Any], names: set[str]) -> list[str]:
    return [key for key in config_keys(config)
            if key not in names and key.rsplit(".", 1)[-1] not in names]


def test_names_come_from_backquoted_spans_only():
    names = documented_names("set `trainer.max_epochs=1` or `+model.seed=2`, not max_iter")
    assert {"trainer.max_epochs", "max_epochs", "model.seed", "seed"} <= names
    assert "max_iter" not in names
    config = {"defaults": ["x"], "_target_": "a.B", "model": {"seed": 0, "max_iter": 5,
                                                               "extra": {}}}
    assert undocumented(config, names) == ["model.max_iter", "model.extra"]


@pytest.fixture(scope="module")
def docs_names() -> set[str]:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return documented_names("\n".join(p.read_text() for p in pages))


@pytest.mark.parametrize("path", sorted(CONF.rglob("*.yaml")),
                         ids=lambda p: str(p.relative_to(CONF)))
def test_every_config_key_is_named_in_the_docs(path: Path, docs_names: set[str]):
    config = yaml.safe_load(path.read_text()) or {}
    assert isinstance(config, dict), path
    missing = undocumented(config, docs_names)
    assert not missing, (f"conf/{path.relative_to(CONF)}: keys no page of README.md or docs/ "
                         f"names (docs/experiments.md, 'Other settings'): {missing}")


def table_columns(text: str, heading: str) -> set[str]:
    """The backquoted names in the first cell of the table rows under ``heading`` (up to the
    next heading) of a markdown page."""
    section = text.split(heading, 1)[1].split("\n#", 1)[0]
    cells = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    return {name for cell in cells for name in CODE_SPAN.findall(cell)}


def test_every_column_of_intervals_and_events_csv_has_a_row_in_report_md():
    from esa_lightning.reporting.caught import EVENT_COLUMNS
    from esa_lightning.reporting.outputs import INTERVAL_COLUMNS

    text = (ROOT / "docs" / "report.md").read_text()
    assert set(INTERVAL_COLUMNS) - table_columns(text, "## `intervals.csv`") == set()
    assert set(EVENT_COLUMNS) - table_columns(text, "## `events.csv`") == set()
