"""The raw ESA reader's threads: how many (``resolve_jobs``) and the results of its per-file
tasks in order with a bounded look-ahead (``in_order``)."""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from esa_lightning.errors import ESAInputError

_T = TypeVar("_T")


def resolve_jobs(n_jobs: int | None) -> int:
    """``None`` or -1: every usable core; otherwise a positive thread count."""
    if n_jobs is None or n_jobs == -1:
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not Linux
            return max(1, os.cpu_count() or 1)
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise ESAInputError(
            "n_jobs must be a positive integer, -1 or None", column="n_jobs", value=n_jobs
        )
    return n_jobs


def in_order(tasks: list[Callable[[], _T]], n_jobs: int, ahead: int) -> Iterator[_T]:
    """Results of ``tasks`` in order, ``n_jobs`` threads computing at most ``ahead`` in advance.

    Unzipping and the numpy work release the GIL, so threads overlap on several cores; the
    bounded look-ahead keeps the memory bound (at most ``ahead`` finished columns waiting).
    With one job the tasks run here, one after the other.
    """
    if n_jobs <= 1:
        for task in tasks:
            yield task()
        return
    pool = ThreadPoolExecutor(max_workers=n_jobs)
    try:
        queued: deque[Future[_T]] = deque(pool.submit(t) for t in tasks[:ahead])
        following = iter(tasks[ahead:])
        while queued:
            result = queued.popleft().result()
            task = next(following, None)
            if task is not None:
                queued.append(pool.submit(task))
            yield result
            del result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
