"""Reading an artifact's parts safely: the manifest, every part's checksum, the weights and
each component built first on the ``meta`` device (see the package docstring)."""

from __future__ import annotations

import hashlib
import json
import math
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import yaml

from esa_lightning.artifact.fitted import check_fitted_state
from esa_lightning.artifact.format import (
    FORMAT_VERSION,
    MANIFEST,
    MAX_TEXT_BYTES,
    PART_FOLDERS,
    READ_FORMATS,
    SLACK_BYTES,
    check_manifest_checksum,
    import_allowed,
    plain_hparams,
)
from esa_lightning.data.preprocessing import (
    PREPROCESSING_KEY,
    period_problem,
    record_problem,
)
from esa_lightning.data.safe_pickle import refuse_zip_bomb
from esa_lightning.errors import ESAInputError, quoted
from esa_lightning.io import SETTINGS_LIMIT, not_a_file, read_settings_text, refuse_large_settings
from esa_lightning.models.base import DetectorModule
from esa_lightning.models.registry import detector_families


def artifact_folder(path: str | Path) -> Path:
    """The artifact folder ``path`` names: the folder itself or its ``detector.json``."""
    path = Path(path)
    if path.name == MANIFEST and path.is_file():
        return path.parent
    if path.is_file():
        inside = (path.parent / MANIFEST).is_file()  # e.g. the detector's config.yaml
        raise ESAInputError(
            f"a file, not a detector artifact folder (the folder that holds {MANIFEST})"
            + (f": pass its folder {path.parent}" if inside else ""),
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
        raise ESAInputError(f"not a detector artifact (no {MANIFEST})", path=path)
    return path


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
    except (OSError, UnicodeDecodeError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise ESAInputError(f"cannot read ({reason})", path=path) from None


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
        return ESAInputError(f"corrupt {MANIFEST} ({reason})", path=manifest_path)

    try:
        manifest = json.loads(read_text_part(manifest_path.parent, MANIFEST))
    except ESAInputError:
        raise
    except (OSError, ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, depth
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
        raise ESAInputError(
            f"written in artifact format {quoted(version)}; this version reads formats {readable} "
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


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(2**20):
            digest.update(block)
    return digest.hexdigest()


def part_checksums(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under the artifact's ``PART_FOLDERS`` (what
    ``load`` reads; ``config.yaml`` is for people and may be edited)."""
    return {
        p.relative_to(folder).as_posix(): sha256_of(p)
        for top in PART_FOLDERS
        for p in sorted((folder / top).rglob("*"))
        if p.is_file()
    }


def verify_parts(folder: Path, files: dict[str, str]) -> None:
    """Every listed file present, a regular file inside ``folder`` (a link may not lead out of
    it) and unchanged; no unlisted file among the parts ``load`` reads."""
    root = folder.resolve()
    for relative, digest in files.items():
        part = folder / relative
        if Path(relative).is_absolute() or ".." in Path(relative).parts:
            raise ESAInputError(
                "lists a file outside the artifact", path=folder / MANIFEST, value=relative
            )
        try:
            inside = part.resolve().is_relative_to(root)
        except (OSError, RuntimeError):  # a loop of links
            inside = False
        if not inside:
            raise ESAInputError("a link that leads outside the artifact; refused", path=part)
        if not part.is_file():
            raise ESAInputError(f"{not_a_file(part)} (listed in {MANIFEST})", path=part)
        if sha256_of(part) != digest:
            raise ESAInputError(
                "changed since the artifact was written (sha256 differs from "
                f"{MANIFEST}'s); restore it or retrain",
                path=part,
            )
    for top in PART_FOLDERS:
        for part in sorted((folder / top).rglob("*")):
            relative = part.relative_to(folder).as_posix()
            if (part.is_file() or part.is_symlink()) and relative not in files:
                raise ESAInputError(
                    f"not part of the artifact ({MANIFEST} does not list it)", path=part
                )


def load_component(
    entry: dict[str, Any], folder: Path, manifest_path: Path, name: str, schema: dict[str, Any],
) -> DetectorModule:
    """One component on the CPU: its weights read, its hyper-parameters checked against them on
    the ``meta`` device, then built and filled, its extra files read, its sizes checked against
    ``schema`` and its fitted numbers (``check_fitted_state``: a detector that can alarm)."""
    klass = import_allowed(entry["class"], manifest_path, f"component {name!r}")
    weights = folder / "weights.pt"
    state = _read_weights(weights)
    with torch.device("meta"), _tensor_budget(4 * len(state) + 256, weights):
        probe = _build(klass, entry["hparams"], name, manifest_path)
    _check_fits(probe, state, weights)
    module = _build(klass, entry["hparams"], name, manifest_path)
    _load_state(module, state, weights)
    module.load_extra(folder)
    module.eval()
    check_sizes(module, name, schema, manifest_path)
    check_fitted_state(module, name, weights)
    _check_rows(module, name, manifest_path)
    return module


def check_component(
    module: DetectorModule, name: str, schema: dict[str, Any], source: str | Path
) -> None:
    """The checks ``load_component`` and ``Detector.load`` make of a component read from an
    artifact, made of one built in memory (``Detector.check``): its tensors at the shapes its
    hyper-parameters build, valid context and alignment rows, and sizes that fit the channels
    and telecommands of ``schema``. A refusal is one ``ESAInputError`` naming ``source`` and
    the component."""
    with torch.device("meta"):
        probe = _build(type(module), plain_hparams(module), name, source)
    _check_fits(probe, module.state_dict(), source, f"component {name!r}: ")
    _check_rows(module, name, source)
    check_sizes(module, name, schema, source)


def check_sizes(
    module: DetectorModule, name: str, schema: dict[str, Any], source: str | Path
) -> None:
    """Refuse a component sized for other channels or telecommands than ``schema`` records
    (``DetectorModule.schema_problem``)."""
    if problem := module.schema_problem(schema):
        raise ESAInputError(f"component {name!r}: {problem}", path=source)


def _build(klass: type, hparams: dict[str, Any], name: str, source: str | Path) -> Any:
    """``klass(**hparams)``; a constructor's refusal is one ``ESAInputError`` naming
    ``source`` and the component."""
    try:
        return klass(**hparams)
    except ESAInputError as exc:
        raise ESAInputError(f"component {name!r}: {exc}", path=source) from None
    except _TooBig:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a constructor makes of bad values
        raise ESAInputError(
            f"component {name!r} cannot be built from its hyper-parameters "
            f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]})",
            path=source,
        ) from None


def _check_rows(module: DetectorModule, name: str, source: str | Path) -> None:
    for what in ("context_rows", "alignment_rows"):
        value = getattr(module, what)
        if value < (1 if what == "alignment_rows" else 0):
            raise ESAInputError(
                f"component {name!r} has {what} = {value}: its hyper-parameters are invalid",
                path=source,
            )


@contextmanager
def _tensor_budget(limit: int, source: Path) -> Iterator[None]:
    """Stop a constructor that registers more than ``limit`` parameters and buffers (``members``
    or ``num_layers`` of a million would build a million modules, even on the meta device)."""
    from torch.nn.modules import module as nn_module

    count = 0

    def count_one(*_: Any) -> None:
        nonlocal count
        count += 1
        if count > limit:
            raise _TooBig()

    hooks = [
        nn_module.register_module_parameter_registration_hook(count_one),
        nn_module.register_module_buffer_registration_hook(count_one),
    ]
    try:
        yield
    except _TooBig:
        raise ESAInputError(
            f"the hyper-parameters build more than {limit} tensors, its weights hold "
            f"{(limit - 256) // 4}: they do not belong together",
            path=source,
        ) from None
    finally:
        for hook in hooks:
            hook.remove()


class _TooBig(Exception):
    pass


def _read_weights(weights: Path) -> dict[str, torch.Tensor]:
    refuse_zip_bomb(weights, weights)  # torch decompresses a deflated member whole
    try:  # weights_only: tensors and plain containers only, a pickled object is refused
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types on foreign bytes
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise ESAInputError(f"cannot read weights ({reason})", path=weights) from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ESAInputError("weights are not a state_dict of tensors", path=weights)
    return state


def _nbytes(tensors: Any) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _check_fits(
    probe: torch.nn.Module, state: dict[str, torch.Tensor], source: str | Path, prefix: str = ""
) -> None:
    """Refuse hyper-parameters that make a model bigger than its weights, or weights of other
    shapes than they build (checked on a ``meta``-device build, which allocates nothing)."""
    own = probe.state_dict()
    built = _nbytes(own.values())
    stored = _nbytes(state.values())
    if built > 2 * stored + SLACK_BYTES:
        raise ESAInputError(
            f"{prefix}the hyper-parameters make a model of {built} bytes, its weights hold "
            f"{stored}: they do not belong together",
            path=source,
        )
    buffers = {k for k, _ in probe.named_buffers()}
    for key, tensor in own.items():
        if key not in state:
            continue
        stored, built = tuple(state[key].shape), tuple(tensor.shape)
        if stored != built and not (key in buffers and _fitted_rows(probe, key, stored, built)):
            raise ESAInputError(
                f"{prefix}weights do not fit the model ({key}: {stored}, the hyper-parameters "
                f"make {built})",
                path=source,
            )


def _fitted_rows(probe: torch.nn.Module, key: str, stored: tuple, built: tuple) -> bool:
    """Whether buffer ``key`` may be stored at another shape than the hyper-parameters build:
    only where its module names it in ``FITTED_ROWS`` (reference windows, principal components:
    a count fitting sets), and only in its first dimension. A scaler, threshold or anything
    else sized by the channels must have the built shape."""
    owner, _, name = key.rpartition(".")
    fitted = getattr(probe.get_submodule(owner), "FITTED_ROWS", ())
    return name in fitted and len(stored) == len(built) and stored[1:] == built[1:]


def cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in module.state_dict().items()}


def _load_state(module: torch.nn.Module, state: dict[str, torch.Tensor], source: Path) -> None:
    """Load a state_dict, resizing buffers whose shape is only known after fitting."""
    own = module.state_dict()
    for key, value in state.items():
        if key in own and own[key].shape != value.shape and key in dict(module.named_buffers()):
            _set_buffer(module, key, torch.empty_like(value))
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise ESAInputError(f"weights do not fit the model ({exc})", path=source) from None


def _set_buffer(module: torch.nn.Module, key: str, value: torch.Tensor) -> None:
    *parents, name = key.split(".")
    owner = module
    for p in parents:
        owner = getattr(owner, p)
    owner.register_buffer(name, value)
