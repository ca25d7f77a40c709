"""full_scale.py's records read back: the before/after table of hand-kept records of past code,
each checked before it is read, and the detector ``--after`` predicts with, refused unless the
saved size that trained it was measured with this run's parameters and this code."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import _checkout  # noqa: F401
from _common import reusable_scratch

#: the stages of ``before_chunks/result_d*.json`` compared with today's result of the size
STAGES = ("combiner", "evaluate", "train.py total", "predict test")


def cell(v: dict) -> str:
    """A stage record (``run_measured``) as a table cell."""
    cpu = f" ({v['cpu_s']:.0f} cpu-s)" if v.get("cpu_s") else ""
    mark = " (sum of phases*)" if v.get("reconstructed") else ""
    return f"{v['wall_s']:.1f} s{cpu}{mark} / {v['peak_rss_mib']:.0f} MiB"


def _number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def read_record(path: Path) -> dict:
    """The JSON object in ``path``; anything else refused naming the file."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"{path}: not a readable JSON record ({exc})") from None
    if not isinstance(record, dict):
        raise SystemExit(f"{path}: holds {type(record).__name__}, not a JSON object of stages")
    return record


def stage(path: Path, record: dict, key: str) -> dict:
    """``record[key]`` as a stage record ``cell`` reads (finite numbers ``wall_s`` and
    ``peak_rss_mib``, optional ``cpu_s`` number and ``reconstructed`` flag); a field missing or
    of another type is refused naming the file and the field."""
    v = record.get(key)
    if not isinstance(v, dict):
        raise SystemExit(f"{path}: field {key!r} is {'missing' if v is None else repr(v)}, "
                         "not a stage record {wall_s, peak_rss_mib[, cpu_s]}")
    for field in ("wall_s", "peak_rss_mib", "cpu_s"):
        if (field in v or field != "cpu_s") and not _number(v.get(field)):
            shown = "missing" if field not in v else f"{v[field]!r}, not a number"
            raise SystemExit(f"{path}: field {key!r}.{field} is {shown}")
    if not isinstance(v.get("reconstructed", False), bool):
        raise SystemExit(f"{path}: field {key!r}.reconstructed is {v['reconstructed']!r}, "
                         "not true or false")
    return v


def _days(path: Path) -> int:
    """The size of ``result_d<days>.json``; another name is refused."""
    found = re.fullmatch(r"result_d(\d+)", path.stem)
    if found is None:
        raise SystemExit(f"{path}: not named result_d<days>.json (a size of 76 channels)")
    return int(found.group(1))


def before_after(work: Path) -> str:
    """Markdown rows: stages before and after this benchmark's two fixes.

    1. shapelet responses in cache-sized blocks (``result_after_d*.json``: standalone feature
       extraction with the old and the new ``shapelets.py`` under the same conditions);
    2. piecewise scoring (``before_chunks/result_d*.json``: the whole pipeline with the code
       before ``chunks.py``, against today's ``result_d*.json`` at the same size).

    Every record read is checked first (``stage``): they are kept by hand.
    """
    out = []
    for f in sorted(work.glob("result_after_d*.json")):
        tag = f.stem.split("_")[-1]
        after = read_record(f)
        if "features_before_same_conditions" in after:
            b = stage(f, after, "features_before_same_conditions")
            out.append(f"| {tag} | shapelets | feature extraction (standalone) | {cell(b)} | "
                       f"{cell(stage(f, after, 'features'))} |")
    for f in sorted(work.glob("before_chunks/result_d*.json"), key=_days):
        now = work / f.name
        if not now.is_file():
            continue
        before, after = read_record(f), read_record(now)
        for key in STAGES:
            if key in before and key in after:
                out.append(f"| d{_days(f)} | piecewise scoring | {key} | "
                           f"{cell(stage(f, before, key))} | {cell(stage(now, after, key))} |")
    if not out:
        return ""
    head = "| size | fix | stage | before | after |\n|---|---|---|---|---|\n"
    return head + "\n".join(out) + "\n"


def refuse_foreign_detector(result: Path, detector: Path, params: dict) -> None:
    """Refuse ``--after``'s ``detector`` unless the saved size ``result`` that trained it is
    stamped with ``params`` (this run's days, channels, bounded training and code digest): a
    detector of other settings or older code would be measured as this code's. Refused, not
    rebuilt: retraining is the size's whole measurement (run it without ``--after``)."""
    try:
        measured = reusable_scratch(result, params)
    except SystemExit as exc:
        raise SystemExit(f"{detector}: not trained by this code and these settings: {exc.code} "
                         "(or measure the size again without --after)") from None
    if not detector.is_dir() or not measured:
        raise SystemExit(f"{detector}: no detector of a measured size ({result.name} missing): "
                         "measure the size without --after first")
