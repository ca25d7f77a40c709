"""Finding and reading an artifact's manifest: the folder a path names, its text parts, and
``detector.json`` with its format, checksum and structure (schema, calibration) checked."""

from __future__ import annotations

import json
import math
import shlex
from pathlib import Path
from typing import Any

import yaml

from esa_lightning.artifact.format import (
    FORMAT_VERSION,
    MANIFEST,
    MAX_TEXT_BYTES,
    READ_FORMATS,
    check_manifest_checksum,
)
from esa_lightning.data.preprocessing import (
    PREPROCESSING_KEY,
    period_problem,
    record_problem,
)
from esa_lightning.errors import ESAInputError, quoted
from esa_lightning.io import (
    SETTINGS_LIMIT,
    not_a_file,
    read_settings_text,
    refuse_large_settings,
)
from esa_lightning.models.registry import detector_families


def artifact_folder(path: str | Path) -> Path:
    """The artifact folder ``path`` names: the folder itself or its ``detector.json``."""
    path = Path(path)
    if path.name == MANIFEST and path.is_file():
        return path.parent
    if path.is_file():
        inside = (path.parent / MANIFEST).is_file()  # e.g. the detector's config.yaml
        run = _training_run_of(path)  # e.g. its checkpoints/<model>/last.ckpt
        raise ESAInputError(
            f"a file, not a detector artifact folder (the folder that holds {MANIFEST})"
            + (f": pass its folder {path.parent}" if inside else "")
            + (f": its run's detector is {run / 'detector'}" if run and not inside else ""),
            path=path,
        )
    if not path.exists():
        raise ESAInputError(f"no such folder (a detector folder holds {MANIFEST})", path=path)
    if (path / "detector" / MANIFEST).is_file():  # a training run's folder
        raise ESAInputError(
            f"a run folder, not a detector artifact: its detector is {path / 'detector'}",
            path=path,
        )
    if not (path / MANIFEST).is_file():
        held = (f"its {MANIFEST} is {not_a_file(path / MANIFEST)}"
                if (path / MANIFEST).exists() else f"no {MANIFEST}")
        raise ESAInputError(f"not a detector artifact ({held}): give the detector folder a "
                            "training run wrote, <run folder>/detector", path=path)
    return path


def _training_run_of(path: Path) -> Path | None:
    """The training run folder holding the file ``path`` (its ``metrics.json``, or a Lightning
    checkpoint ``checkpoints/<model>/*.ckpt``): the nearest of its parents, at most three up,
    with a ``detector/detector.json``; None outside one."""
    for parent in list(path.parents)[:3]:
        if (parent / "detector" / MANIFEST).is_file():
            return parent
    return None


def read_text_part(folder: Path, name: str) -> str:
    """A text file of the artifact: a regular file inside it, at most ``MAX_TEXT_BYTES``."""
    path = folder / name
    try:
        inside = path.resolve().is_relative_to(folder.resolve())
    except (OSError, RuntimeError):
        inside = False
    if not inside or not path.is_file():
        raise ESAInputError("not a regular file inside the artifact; refused", path=path)
    refuse_large_settings(path, SETTINGS_LIMIT if name == MANIFEST else MAX_TEXT_BYTES)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:  # the codec's message counts bytes: name the byte
        raise ESAInputError(
            f"not UTF-8 text (it holds the byte 0x{exc.object[exc.start]:02x}); restore it or "
            "retrain",
            path=path,
        ) from None
    except OSError as exc:  # its strerror, without the errno and the path said again
        raise ESAInputError(f"cannot read ({exc.strerror or 'an I/O error'})", path=path) from None


def _non_finite(value: Any, where: str) -> str | None:
    """The key path of the first NaN or infinity in a JSON value, or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{where} = {value}"
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, item in items:
        found = _non_finite(item, f"{where}.{key}")
        if found:
            return found
    return None


def read_manifest(manifest_path: Path) -> dict[str, Any]:
    """``detector.json``, its format, checksum (format 4) and structure checked: one line
    naming it otherwise."""

    def bad(reason: str) -> ESAInputError:
        return ESAInputError(f"corrupt {MANIFEST} ({reason}); restore it or retrain",
                             path=manifest_path)

    try:
        manifest = json.loads(read_text_part(manifest_path.parent, MANIFEST))
    except ESAInputError:
        raise
    except json.JSONDecodeError as exc:  # where, in words: not "(char 0)"
        raise bad("empty" if not exc.doc.strip() else
                  f"not valid JSON: {exc.msg.removesuffix(' at')} at line {exc.lineno}, "
                  f"column {exc.colno}") from None
    except RecursionError:
        raise bad("nested too deeply to be read") from None
    except (OSError, ValueError) as exc:
        raise bad(" ".join(str(exc).split())) from None
    if not isinstance(manifest, dict):
        raise bad(f"a JSON {type(manifest).__name__}, not an object")
    version = manifest.get("format_version")
    readable = " and ".join(str(v) for v in READ_FORMATS)
    if version not in READ_FORMATS:
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise ESAInputError(
                f"written in artifact format {version} by a newer esa_lightning; this version "
                f"reads formats {readable} only: upgrade esa_lightning",
                path=manifest_path,
            )
        written = ("records no artifact format (format_version)" if version is None
                   else f"written in artifact format {quoted(version)}")
        raise ESAInputError(
            f"{written}; this version reads formats {readable} "
            f"only (they check every part's checksum); retrain it with this version: "
            f"{retrain_command(manifest_path.parent, manifest)}",
            path=manifest_path,
        )
    check_manifest_checksum(manifest, manifest_path)
    components = manifest.get("components")
    if not isinstance(components, dict) or not components:
        raise bad("no components table")
    for name, entry in components.items():
        if not (
            isinstance(entry, dict)
            and isinstance(entry.get("class"), str)
            and isinstance(entry.get("hparams"), dict)
        ):
            raise bad(f"component {quoted(name)} needs a class name and a hparams object")
        if found := _non_finite(entry["hparams"], "hparams"):
            raise bad(f"component {quoted(name)}: {found}, not a finite number")
        if not str(name) or "/" in name or name in (".", ".."):
            raise bad(f"component name {quoted(name)}")
    combiner = manifest.get("combiner")
    if combiner is not None and not (isinstance(combiner, dict) and "class" in combiner):
        raise bad("combiner must be null or an object with a class")
    if len(components) > 1 and not combiner:
        raise bad(f"{len(components)} components and no combiner to join them")
    if problem := schema_structure_problem(manifest.get("schema")):
        raise bad(problem)
    schema = manifest["schema"]
    files = manifest.get("files")
    if not (
        isinstance(files, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in files.items())
    ):
        raise bad("no files table")
    manifest.setdefault("info", {})
    if not isinstance(manifest["info"], dict):
        raise bad("info must be an object")
    if problem := calibration_problem(manifest["info"].get("calibration"), schema["channels"]):
        raise bad(f"info.calibration: {problem}")
    return manifest


def schema_structure_problem(schema: Any) -> str | None:
    """What is wrong with the structure of a detector's ``schema`` (channels, telecommands,
    period and the recorded preprocessing), or None."""
    if not (
        isinstance(schema, dict)
        and _names(schema.get("channels"))
        and _names(schema.get("telecommands"))
        and isinstance(schema.get("period"), str | None)
    ):
        return "schema must be an object with channels, telecommands and period"
    if problem := period_problem(schema["period"]):
        return f"schema.{problem}"
    if problem := record_problem(schema.get(PREPROCESSING_KEY), schema["channels"]):
        return f"schema.{problem}"
    return None


def retrain_command(folder: Path, manifest: dict[str, Any]) -> str:
    """How to train the artifact in ``folder`` again: the overrides its run folder recorded
    (``<run>/.hydra/overrides.yaml``, the run folder's own ``hydra.*`` left out); else its
    experiment (``info.experiment``) where one of that name is shipped, but for ``gru_ae``: before
    run folders were named after the model, every run without an experiment was so named; else
    the model config of its one component (``model=NAME``, which composes the datamodule the
    model trains on)."""
    from esa_lightning.install import command, config_dir

    train = command("train")
    recorded = folder.parent / ".hydra" / "overrides.yaml"
    try:
        overrides = yaml.safe_load(read_settings_text(recorded)) if recorded.is_file() else None
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ESAInputError):  # oversized: none
        overrides = None
    if isinstance(overrides, list) and all(isinstance(o, str) for o in overrides):
        return shlex.join([*train.split(), *[o for o in overrides if not o.startswith("hydra.")]])
    data = "with the data settings of its config.yaml"
    experiment = str((manifest.get("info") or {}).get("experiment"))
    shipped = (config_dir() / "experiment" / f"{experiment}.yaml").is_file()
    if shipped and experiment != "gru_ae":
        return f"{train} experiment={experiment} ({data})"
    components = manifest.get("components")  # an older format's: not checked yet
    entries = components.values() if isinstance(components, dict) else []
    classes = [c.get("class") if isinstance(c, dict) else None for c in entries]
    families = detector_families()
    if len(classes) == 1 and classes[0] in families:  # model=NAME picks its own datamodule
        for model in sorted((config_dir() / "model").glob("*.yaml")):
            if yaml.safe_load(model.read_text()).get("_target_") == classes[0]:
                return f"{train} model={model.stem} ({data})"
    if shipped:
        return f"{train} experiment={experiment} ({data})"
    return f"{train} with the settings of its config.yaml"


def calibration_problem(record: Any, channels: list[str]) -> str | None:
    """What is wrong with the nominal reference ``jobs.train.record_for_api`` stored (an edited
    detector.json), or None: predict.py and ``Detector.predict`` read it without scoring."""
    if record is None:
        return None
    if not isinstance(record, dict):
        return "must be an object"
    if not _numbers(record.get("reference_scores")):
        return "reference_scores must be a list of finite numbers"
    n_rows = record.get("n_rows", 0)
    if isinstance(n_rows, bool) or not isinstance(n_rows, int) or n_rows < 0:
        return "n_rows must be a count"
    if not isinstance(record.get("source", ""), str):
        return "source must be a string"
    for key in ("values", "channel_scores"):
        spread = record.get(key)
        if spread is None:
            continue
        if not (
            isinstance(spread, dict)
            and all(
                _numbers(spread.get(k)) and len(spread[k]) == len(channels)
                for k in ("centre", "spread")
            )
            and isinstance(spread.get("two_sided"), bool)
            and all(v > 0 for v in spread["spread"])
        ):
            return (f"{key} needs centre and spread, {len(channels)} finite numbers each (one "
                    "per channel, spreads > 0), and two_sided true or false")
    return None


def _numbers(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value
    )


def _names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)
