"""Every relative link of the README and the docs leads to a file or folder of the project."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")


def relative_links(text: str) -> list[str]:
    """The targets of the markdown links of ``text`` that are neither URLs nor anchors."""
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]


def test_relative_links_are_found_and_urls_are_not():
    text = "[a](docs/x.md) [b](https://e.org/y.md) [c](../z.md#part) [d](#here) [e](mailto:q)"
    assert relative_links(text) == ["docs/x.md", "../z.md"]


@pytest.mark.parametrize(
    "page",
    [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")),
     *sorted((ROOT / "benchmarks").glob("*.md"))],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_every_relative_link_leads_to_a_file(page: Path):
    broken = [t for t in relative_links(page.read_text()) if not (page.parent / t).exists()]
    assert not broken, f"{page.relative_to(ROOT)}: broken links {broken}"
