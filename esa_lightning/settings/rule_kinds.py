"""The kinds of rule ``settings.RULES`` and its sibling tables are built of: (check, what the
value must be) pairs for a number in a range, a whole number, a share, one of a few words, and
the checks of a few Lightning settings (devices, batches, accelerator, strategy), the detrend
and the scoring chunks."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from omegaconf import ListConfig

#: the fewest rows a scoring chunk may hold (0: the whole range at once); smaller chunks spend
#: their time on the context rows around them (``runtime.chunks``)
MIN_CHUNK_ROWS = 1000

Rule = tuple[Callable[[Any], bool], str]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def percentage() -> Rule:
    return (lambda v: _number(v) and 0 <= v <= 100), "must be a percentage in [0, 100]"


def positive_finite() -> Rule:
    return (lambda v: _number(v) and math.isfinite(v) and v > 0), "must be a finite number > 0"


def nonnegative_finite() -> Rule:
    return (lambda v: _number(v) and math.isfinite(v) and v >= 0), "must be a finite number >= 0"


def fraction() -> Rule:
    return (lambda v: _number(v) and 0 <= v < 1), "must lie in [0, 1)"


def share() -> Rule:
    return (lambda v: _number(v) and 0 < v <= 1), "must lie in (0, 1]"


def _devices_ok(value: Any) -> bool:
    if isinstance(value, str):
        return value == "auto" or value.strip() != ""
    if _number(value):
        return value == -1 or value >= 1
    return isinstance(value, list | tuple | ListConfig) and len(value) > 0


def integer(low: int) -> Rule:
    return (
        (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low),
        f"must be a whole number >= {low}",
    )


def _batches_ok(value: Any) -> bool:
    """Lightning's ``limit_*_batches``: a count of batches, or a share of them in [0, 1]."""
    if isinstance(value, bool) or not _number(value):
        return False
    return value >= 0 if isinstance(value, int) else 0.0 <= value <= 1.0


def _accelerator_ok(value: Any) -> bool:
    """A name Lightning knows (``auto``, ``cpu``, ``cuda``, ``gpu``, ``mps``...)."""
    from lightning.pytorch.accelerators import AcceleratorRegistry

    names = {"auto", "gpu", *AcceleratorRegistry.available_accelerators()}
    return isinstance(value, str) and value in names


def _strategy_ok(value: Any) -> bool:
    """Not a strategy that starts its processes by spawn or fork (``ddp_spawn``, ``ddp_fork``,
    ``ddp_notebook``...): the post-training heads are fitted inside those processes, and the
    launching process, which evaluates and writes the artifact, would hold none of them."""
    if not isinstance(value, str):
        return True  # a strategy object (an instantiated config): Lightning checks it
    return not any(word in value for word in ("spawn", "fork", "notebook"))


#: the longest ``detrend`` (rows of a trailing mean): the most rows a mission's grid may span
#: (``data.readers.esa_adb_grid.MAX_GRID_ROWS``, about 47 years at 30 s), so no series holds
#: more; a loaded detector's detrend is bounded by its training rows too (``TrainRows``)
MAX_DETREND_ROWS = 50_000_000


def _detrend_ok(value: Any) -> bool:
    whole = isinstance(value, int) and not isinstance(value, bool)
    return whole and 1 <= value <= MAX_DETREND_ROWS


CHUNK_ROWS_RULE = f"must be 0 (the whole range) or a whole number >= {MIN_CHUNK_ROWS} rows"


def _chunk_rows_ok(value: Any) -> bool:
    whole = isinstance(value, int) and not isinstance(value, bool)
    return whole and (value == 0 or value >= MIN_CHUNK_ROWS)


def one_of(*choices: str) -> Rule:
    return (lambda v: v in choices), f"must be one of {', '.join(choices)}"
