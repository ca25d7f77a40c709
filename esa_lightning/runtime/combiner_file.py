"""``combiner.json``: what ``HybridCombiner.save`` writes and ``HybridCombiner.load`` reads
back (files written by earlier versions included, with the settings they were fitted with),
every number checked (``combiner_parts.check_fitted``). Fitted numbers are JSON, no pickle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from esa_lightning.errors import ESAInputError
from esa_lightning.io import read_settings_json, refuse_large_settings, write_json_atomic
from esa_lightning.runtime.combiner_parts import check_fitted


def save_combiner(combiner: Any, folder: Path) -> None:
    """Write ``combiner``'s settings and fitted numbers to ``folder/combiner.json``."""
    c = combiner
    write_json_atomic(Path(folder) / "combiner.json", {
        "neighbourhood": c.neighbourhood, "c": c.c, "max_rows": c.max_rows,
        "seed": c.seed, "top_channels": c.top_channels, "block_rows": c.block_rows,
        "threshold_min_events": c.events_needed(len(c.names)),  # a number, as before
        "few_events": c.few_events,
        "many_events": c.many_events, "held_out": c.held_out, "rule": c.rule,
        "gap_close": c.gap_close, "gap_width": c.gap_width,
        "alarm_feature": c.alarm_feature,
        "quantiles": None if c.quantiles is None else c.quantiles,
        "names": c.names, "alarm_names": c.alarming,
        "mean": c.mean, "std": c.std,
        "coef": c.coef, "intercept": c.intercept, "threshold_logit": c.threshold,
    })


def load_combiner(cls: type, folder: Path) -> Any:
    """A ``cls`` (``HybridCombiner``) read from ``folder/combiner.json``; anything missing,
    malformed or of the wrong length is one ``ESAInputError`` naming the file."""
    path = Path(folder) / "combiner.json"
    if path.is_file():  # read_settings_json refuses it too, but wrapped below: one message
        refuse_large_settings(path)
    try:
        d = read_settings_json(path)
        # artifacts written before ``top_channels`` existed used 3
        obj = cls(d["neighbourhood"], d["c"], d["max_rows"], d["seed"],
                  d.get("top_channels", 3), d.get("block_rows", 20_000),
                  d.get("threshold_min_events", 3),
                  # written before the rule existed: its weights decided
                  str(d.get("few_events", "weights")),
                  str(d.get("many_events", "weights")),
                  # written before the combiner closed gaps: none closed
                  d.get("gap_close"),
                  # written before components' alarms were features: they were not
                  d.get("alarm_feature", False))
        obj.gap_width = d.get("gap_width", 0)
        if isinstance(obj.gap_width, bool) or not isinstance(obj.gap_width, int):
            raise TypeError(f"gap_width is {obj.gap_width!r}, not an integer")
        obj.rule = str(d.get("rule", "weights"))
        if d.get("held_out") is not None:
            obj.held_out = {str(k): float(v) for k, v in dict(d["held_out"]).items()}
        if d.get("quantiles") is not None:
            obj.quantiles = np.asarray(d["quantiles"], dtype=np.float64)
        obj.names = [str(n) for n in d["names"]]
        # written before the label-free rule existed: every component alarmed
        alarm_names = d.get("alarm_names", obj.names)
        if not isinstance(alarm_names, list):
            raise TypeError(f"alarm_names is a {type(alarm_names).__name__}, not a list")
        obj.alarm_names = [str(n) for n in alarm_names]
        obj.mean, obj.std, obj.coef = (np.asarray(d[k], dtype=np.float64)
                                       for k in ("mean", "std", "coef"))
        obj.intercept = float(d["intercept"])
        if "threshold_logit" in d:
            obj.threshold = float(d["threshold_logit"])
        else:  # written before thresholds moved to log-odds: a probability
            p = min(max(float(d["threshold"]), 1e-12), 1 - 1e-12)
            obj.threshold = float(np.log(p / (1 - p)))
    except (OSError, ValueError, KeyError, TypeError, RecursionError, ESAInputError) as exc:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ESAInputError(
            f"not a readable combiner ({type(exc).__name__}: {reason})", path=path
        ) from None
    check_fitted(obj, path)
    return obj
