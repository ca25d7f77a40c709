"""Reading an artifact's parts safely: every part's checksum, the weights and each component
built first on the ``meta`` device (see the package docstring); the manifest is read in
``manifest.py``."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from esa_lightning.artifact.fitted import check_fitted_state
from esa_lightning.artifact.format import (
    MANIFEST,
    PART_FOLDERS,
    SLACK_BYTES,
    import_allowed,
    plain_hparams,
)
from esa_lightning.artifact.manifest import (  # noqa: F401 - where they were imported from
    artifact_folder,
    calibration_problem,
    read_manifest,
    read_text_part,
    retrain_command,
    schema_structure_problem,
)
from esa_lightning.data.safe_pickle import refuse_zip_bomb
from esa_lightning.errors import ESAInputError
from esa_lightning.io import not_a_file
from esa_lightning.models.base import DetectorModule


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
            raise ESAInputError(
                f"{not_a_file(part)} (listed in {MANIFEST}); restore it or retrain", path=part
            )
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
