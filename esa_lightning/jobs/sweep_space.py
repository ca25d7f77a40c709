"""The search space of an Optuna sweep: Hydra sweeper expressions (``choice``, ``range``,
``interval``, ``tag(log, ...)``) read as the dimensions Optuna draws from, and a trial's draws
written back as override values."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, Transformer
from hydra.errors import HydraException

from esa_lightning.errors import ESAInputError
from esa_lightning.install import composition_reason


def parse_overrides(lines: list[str], what: str) -> list[Override]:
    """Hydra's parse of the override ``lines``; one it refuses is an error naming ``what``."""
    try:
        return OverridesParser.create().parse_overrides(lines)
    except HydraException as exc:
        reason = composition_reason(exc)  # Hydra's message of several lines, on one
        raise ESAInputError(f"not a Hydra override ({reason})", column=what) from None


@dataclass(frozen=True)
class Dimension:
    """One searched key as Optuna draws it: ``kind`` names the ``trial.suggest_<kind>`` call
    and ``args`` its arguments (``choices``, or ``low``, ``high`` and ``step``/``log``)."""

    kind: str
    args: dict[str, Any]

    def first(self) -> Any:
        """The first value the dimension can draw."""
        return self.args["choices"][0] if self.kind == "categorical" else self.args["low"]


def dimension(key: str, override: Override) -> Dimension:
    """The search dimension of a sweep expression, as the Hydra sweeper reads it (``range``
    keeps Hydra's meaning: the stop value is excluded; a descending one draws the same values,
    ``shuffle`` is dropped: Optuna chooses). An expression that can draw no value (an empty
    range, a step of 0, an interval whose low is above its high, a log interval from 0) or is
    not a sweep is refused, naming the key."""
    value = override.value()
    if override.is_interval_sweep():
        log_scale = "log" in value.tags
        if value.start > value.end or (log_scale and value.start <= 0):
            raise ESAInputError(
                "an interval needs low <= high (and low > 0 on a log scale)",
                column=key,
                value=override.input_line,
            )
        whole = isinstance(value.start, int) and isinstance(value.end, int)
        args = {"low": value.start, "high": value.end, "log": log_scale}
        return Dimension("int" if whole else "float", args)
    if not (override.is_choice_sweep() or override.is_range_sweep()):
        raise ESAInputError(
            "not a choice, range or interval", column=key, value=override.input_line
        )
    if override.is_range_sweep() and value.step == 0:
        raise ESAInputError("a range's step must not be 0", column=key, value=override.input_line)
    if getattr(value, "shuffle", False):  # one order for every trial: Optuna refuses another
        override = dataclasses.replace(override, _value=dataclasses.replace(value, shuffle=False))
    choices = list(override.sweep_iterator(transformer=Transformer.encode))
    if not choices:
        raise ESAInputError("the range holds no value", column=key, value=override.input_line)
    if override.is_choice_sweep() or value.shuffle:
        return Dimension("categorical", {"choices": choices})
    # Hydra's values, lowest to highest (range(5,1,-1): 5, 4, 3, 2 drawn as 2 to 5 by 1)
    low, high, step = min(choices[0], choices[-1]), max(choices[0], choices[-1]), abs(value.step)
    whole = all(isinstance(v, int) for v in (low, high, step))
    return Dimension("int" if whole else "float", {"low": low, "high": high, "step": step})


def suggest(trial: Any, key: str, override: Override) -> Any:
    """The trial's value of ``key`` for its sweep expression (see ``dimension``)."""
    dim = dimension(key, override)
    return getattr(trial, f"suggest_{dim.kind}")(key, **dim.args)


def override_value(value: Any) -> str:
    """``value`` as an override writes it (``true``, ``null``)."""
    if isinstance(value, bool):
        return str(value).lower()
    return "null" if value is None else str(value)
