"""Progress for long steps: a rich bar on a terminal; elsewhere (CI, files) a log line only when a
step is slow, at most one every ``interval_s`` seconds, so quick loops print nothing."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger("esa_lightning")


def progress(
    items: Iterable[T], description: str, total: int | None = None, interval_s: float = 30.0
) -> Iterator[T]:
    """Iterate ``items`` showing progress of ``description``."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    if sys.stderr.isatty():
        from rich.progress import track

        yield from track(items, description=description, total=total, transient=True)
        return
    last, logged, count = time.monotonic(), 0, 0
    for count, item in enumerate(items, start=1):
        yield item
        now = time.monotonic()
        if now - last >= interval_s:
            log.info("%s: %d/%s", description, count, total or "?")
            last, logged = now, count
    if 0 < logged < count:  # a slow loop says when it is done
        log.info("%s: %d/%s", description, count, total or "?")
