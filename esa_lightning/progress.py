"""Progress for long steps: a rich bar on a terminal, a few log lines elsewhere (CI, files)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger("esa_lightning")


def progress(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate ``items`` showing progress of ``description``."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    if sys.stderr.isatty():
        from rich.progress import track

        yield from track(items, description=description, total=total, transient=True)
        return
    step = max(1, (total or 0) // 10)
    for i, item in enumerate(items):
        if total and (i % step == 0 or i == total - 1):
            log.info("%s: %d/%d", description, i + 1, total)
        yield item
