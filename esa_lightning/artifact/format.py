"""The artifact's format: its version and limits, the schema a detector expects, the classes
it may name (an allow-list), and the package versions it records."""

from __future__ import annotations

import hashlib
import importlib
import json
import platform
import warnings
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from esa_lightning.data.mission import Mission
from esa_lightning.data.selection import UnknownChannels
from esa_lightning.errors import ESAInputError, listed_differences
from esa_lightning.io import as_written_json
from esa_lightning.models.registry import detector_families

# 2: one model contract (post-processing in ``post_processing`` hyper-parameters and post-rule
# buffers; every component a DetectorModule)
# 3: ``files``, the sha256 of every part, checked at load
# 4: ``manifest_sha256``, the sha256 of detector.json itself (``manifest_checksum``)
FORMAT_VERSION = 4
# the formats ``load`` reads: format 3 with a warning (an edit of its detector.json goes unseen)
READ_FORMATS = (3, 4)
MANIFEST = "detector.json"
CHECKSUM_KEY = "manifest_sha256"
# the folders whose every file must be listed in ``files`` (the parts ``load`` reads)
PART_FOLDERS = ("components", "combiner")
# a component built from the manifest may hold at most this much more than its weights file
# (buffers sized only at fitting start small; anything bigger is a forged hyper-parameter)
SLACK_BYTES = 64 * 2**20
MAX_TEXT_BYTES = 256 * 2**20  # config.yaml, kept as text (detector.json: io.SETTINGS_LIMIT)
COMBINER_CLASSES = {"esa_lightning.runtime.combiner.HybridCombiner"}
VERSIONED_PACKAGES = (
    "esa_lightning",
    "torch",
    "lightning",
    "numpy",
    "pandas",
    "scikit-learn",
    "skops",
)


def manifest_checksum(manifest: dict[str, Any]) -> str:
    """The sha256 of ``manifest``'s canonical JSON (sorted keys, no spaces, ASCII), of every key
    but ``CHECKSUM_KEY``: what format 4 records under that key. NaN stays allowed (as ``NaN``):
    detector.json may hold one, which ``read_manifest`` then refuses naming its key."""
    body = {key: value for key, value in manifest.items() if key != CHECKSUM_KEY}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def stamped(manifest: dict[str, Any]) -> dict[str, Any]:
    """``manifest`` as detector.json will hold it (read back as ``read_manifest`` reads it:
    numpy values as Python ones, tuples as lists), with its checksum."""
    plain = as_written_json(manifest)
    return {**plain, CHECKSUM_KEY: manifest_checksum(plain)}


def check_manifest_checksum(manifest: dict[str, Any], manifest_path: Path) -> None:
    """Refuse a manifest changed since it was written: in format 4 its checksum missing or
    other than its content's. Warn that a format-3 one (written before detector.json had a
    checksum) could be edited unnoticed, and how to write it again in format 4."""
    recorded = manifest.get(CHECKSUM_KEY)
    if manifest.get("format_version") == 3:
        if recorded is None:
            warnings.warn(
                f"{manifest_path}: written in artifact format 3, before detector.json had a "
                "checksum: an edit of it (channels, hyper-parameters, info) would go "
                "unnoticed; write it again in format 4 into a new folder with "
                "Detector.load(old).save(new)",
                UserWarning,
                stacklevel=4,
            )
            return
        why = f"format 3 records no {CHECKSUM_KEY}, it holds one"
    elif recorded is None:
        why = f"no {CHECKSUM_KEY}, which format {FORMAT_VERSION} records"
    else:
        why = f"its content's sha256 differs from its {CHECKSUM_KEY}"
        if isinstance(recorded, str) and recorded == manifest_checksum(manifest):
            return
    raise ESAInputError(
        f"changed since the artifact was written ({why}); restore it or retrain",
        path=manifest_path,
    )


def mission_schema(mission: Mission) -> dict[str, Any]:
    """The parts of a mission a fitted detector depends on."""
    if mission.is_multiseries:
        # series may have fewer commands than others: their inputs are zero-padded to the widest
        widest = max(mission.series.values(), key=lambda s: len(s.telecommand_names))
        return {
            "multiseries": True,
            "channels": mission.channel_names,
            "telecommands": list(widest.telecommand_names),
            "period": None,
        }
    return {
        "multiseries": False,
        "channels": mission.channel_names,
        "telecommands": list(mission.telecommand_names),
        "period": None if mission.period is None else str(mission.period),
    }


def mission_info(mission: Mission) -> dict[str, Any]:
    """What a detector's ``info`` records of the mission it was trained on: its name and, for a
    generated (synthetic) one, the settings it was generated with, as its ``mission.json``
    records them (``GENERATOR``): ``predict.py`` without ``data=`` compares those, not the
    training config's ``data.generate``, which a folder generated otherwise does not follow."""
    from esa_lightning.data.readers.synthetic import GENERATOR

    generated = mission.meta.get(GENERATOR)
    return {"mission": mission.name, **({GENERATOR: generated} if generated else {})}


def missing_trained_channels(exc: UnknownChannels, hint: str = "") -> ESAInputError:
    """The error for data that lack channels the detector was trained on, from the reader's
    ``UnknownChannels`` where the channels asked for were the detector's: it names them and
    the file that lacks them (and any other file read lacking them too), not ``data.channels``,
    which the user never set; ``hint`` (the data the detector was trained on) follows."""
    return ESAInputError(
        f"missing channel(s) {exc.names} the detector was trained on{exc.too}{hint}",
        path=exc.path,
    )


def in_trained_order(expected: dict[str, Any], mission: Mission) -> Mission:
    """``mission`` with its telecommand columns in the order the detector was trained on, where
    it has the same ones in another order: readers keep a file's column order, and predict.py
    and the inference container read telecommands by name, as they read channels. Anything
    else is returned as read, for ``check_schema`` to name. The reordered columns are a copy
    in memory ([rows, telecommands] float32)."""
    want, have = list(expected["telecommands"]), list(mission.telecommand_names)
    if expected.get("multiseries") or mission.is_multiseries:
        return mission
    if want == have or sorted(want) != sorted(have):
        return mission
    order = [have.index(name) for name in want]
    return replace(
        mission,
        telecommands=np.ascontiguousarray(mission.telecommands[:, order]),
        telecommand_names=want,
    )


def refuse_other_than_one_series(
    trained: list[str], mission: Mission, source: str | None = None
) -> None:
    """A detector of independent series scores a single-grid ``mission`` only as one of its
    trained series: the series the mission records, its name or its one channel's name (as
    ``models.base.series_position`` finds it); anything else is refused before scoring."""
    names = [str(n) for n in (mission.meta.get("series"), mission.name) if n is not None]
    if len(mission.channel_names) == 1:
        names.append(str(mission.channel_names[0]))
    if any(name in set(trained) for name in names):
        return
    grid = f"one grid of {len(mission.channel_names)} channel(s) {list(mission.channel_names)[:5]}"
    raise not_one_series(trained, grid, source)


def not_one_series(
    trained: list[str], data: str, source: str | None, hint: str = ""
) -> ESAInputError:
    """The error for ``data`` (described: one grid of ...) that is none of the ``trained``
    independent series a detector scores, with ``hint`` at its end."""
    shown = ", ".join(list(trained)[:5]) + (", ..." if len(trained) > 5 else "")
    return ESAInputError(
        f"the detector scores independent series (NASA layout: {shown}) one at a "
        f"time, and the data is {data}, not one of those series: read the data in the NASA "
        "layout (data=nasa, data=nasa_msl), or choose one trained series with "
        f"data.channels=[NAME]{hint}",
        path=source,
    )


def check_schema(expected: dict[str, Any], mission: Mission, source: str | None = None) -> None:
    """Refuse data whose channels, telecommands or grid differ from what the detector learned."""
    got = mission_schema(mission)
    if expected.get("multiseries") and not got["multiseries"]:
        refuse_other_than_one_series(expected["channels"], mission, source)
    problems = []
    for key in ("channels", "telecommands"):
        want, have = list(expected[key]), list(got[key])
        missing = [c for c in want if c not in set(have)]
        extra = [c for c in have if c not in set(want)]
        if expected.get("multiseries"):
            missing = []  # independent series: a subset of channels is fine, and a series
            # with fewer commands is padded as in training; a series never trained on has no
            # network, scaler or threshold (one series alone is recognised by the model)
            if key == "channels" and not got["multiseries"]:
                extra = []
        if missing or extra:
            problems.append(f"{key}: {listed_differences(missing, extra)}")
            if expected.get("multiseries") and key == "channels":
                problems[-1] += (" (only the series it was trained on can be scored: choose "
                                 "them with data.channels=[...])")
        elif want != have and not expected.get("multiseries"):
            problems.append(f"{key}: same names in a different order")
    if expected.get("period") and got.get("period") and expected["period"] != got["period"]:
        problems.append(f"grid period {got['period']} (trained on {expected['period']})")
    if problems:
        raise ESAInputError(
            "data does not match the detector's schema: " + "; ".join(problems), path=source
        )


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def class_path(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def allowed_classes() -> set[str]:
    """The classes an artifact may name: every registered detector family and the combiner."""
    return set(detector_families()) | COMBINER_CLASSES


def import_allowed(path: str, source: Path | None = None, part: str = "") -> type:
    """The class ``path`` names, where it is on the allow-list; refused otherwise, naming the
    file that names it (``source``) and its ``part`` (``component 'gru_ae'``)."""
    if path not in allowed_classes():
        raise ESAInputError(
            f"{part + ' ' if part else ''}names a class that is not allowed (allowed: the "
            "registered detector families and the combiner)",
            path=source,
            value=path,
        )
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def plain_hparams(module: Any) -> dict[str, Any]:
    hp = dict(getattr(module, "hparams", {}) or {})
    try:
        json.dumps(hp)
    except TypeError as exc:
        raise TypeError(f"{class_path(module)} has non-JSON hyper-parameters: {exc}") from None
    return hp


