"""``Detector``: fitted components and an optional combiner, scored, saved and loaded as one
folder (the layout is in the package docstring)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from esa_lightning.artifact.format import (
    FORMAT_VERSION,
    MANIFEST,
    check_schema,
    class_path,
    import_allowed,
    package_versions,
    plain_hparams,
    stamped,
)
from esa_lightning.artifact.manifest import (
    artifact_folder,
    calibration_problem,
    read_manifest,
    read_text_part,
    schema_structure_problem,
)
from esa_lightning.artifact.parts import (
    check_component,
    cpu_state,
    load_component,
    part_checksums,
    verify_parts,
)
from esa_lightning.data.mission import Mission
from esa_lightning.errors import ESAInputError
from esa_lightning.io import atomic_folder, write_json_atomic, write_text_atomic
from esa_lightning.models.base import DetectorModule, RowScores
from esa_lightning.models.devices import refuse_float64_device


@dataclass
class Detector:
    """Fitted components (LightningModules) and an optional combiner over their outputs."""

    components: dict[str, DetectorModule]
    schema: dict[str, Any]
    combiner: Any | None = None
    config_yaml: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    # Lightning checkpoints to copy into the artifact (to resume or fine-tune with Lightning;
    # not for a component whose ``artifact_checkpoint`` is False); never read by ``load``, which
    # needs only the tensors-only weights (it names an artifact's own here, so that saving what
    # it loaded keeps them)
    checkpoints: dict[str, Path] = field(default_factory=dict)

    # ---------------------------------------------------------------- scoring
    @property
    def context_rows(self) -> int:
        """Rows of context a chunk needs on each side for exact results: the components'
        largest, plus the component scores the combiner reads around a row (each of those rows
        needs its components' context in turn)."""
        rows = max(m.context_rows for m in self.components.values())
        return int(rows + (0 if self.combiner is None else self.combiner.context_rows))

    @property
    def alignment_rows(self) -> int:
        """Chunk starts must be multiples of this (window grids of pooled models line up)."""
        return int(np.lcm.reduce([m.alignment_rows for m in self.components.values()]))

    @torch.no_grad()
    def score_rows(self, mission: Mission) -> RowScores:
        """Scores of every row of a single-grid ``mission`` (the schema is checked first)."""
        check_schema(self.schema, mission)
        for module in self.components.values():
            module.eval()
        if self.combiner is not None:
            return self.combiner.score_rows(self.components, mission)
        (module,) = self.components.values()
        return module.score_rows(mission)

    # ----------------------------------------------------------- persistence
    def save(self, path: str | Path) -> Path:
        """Write the artifact folder atomically (a temporary folder renamed into place).

        A failed write (full disk, read-only folder) leaves the previous artifact as it was and
        raises an ``ESAInputError`` naming the path. ``path`` is a new or empty folder, or an
        earlier artifact (it holds detector.json), which is replaced; a file or a folder of
        other files is refused, left as it was (replacing it removed every file there).
        """
        path = Path(path)
        _refuse_other_folder(path)
        with atomic_folder(path) as tmp:
            self._write(tmp)
        return path

    def _write(self, tmp: Path) -> None:
        entries = {}
        for name, module in self.components.items():
            folder = tmp / "components" / name
            folder.mkdir(parents=True)
            torch.save(cpu_state(module), folder / "weights.pt")
            ckpt = self.checkpoints.get(name) if module.artifact_checkpoint else None
            if ckpt is not None and Path(ckpt).is_file():
                shutil.copyfile(ckpt, folder / "lightning.ckpt")  # mode: the umask's
            module.save_extra(folder)
            entries[name] = {"class": class_path(module), "hparams": plain_hparams(module)}
        combiner = None
        if self.combiner is not None:
            (tmp / "combiner").mkdir()
            self.combiner.save(tmp / "combiner")
            combiner = {"class": class_path(self.combiner)}
        write_text_atomic(tmp / "config.yaml", self.config_yaml)
        manifest = {
            "format_version": FORMAT_VERSION,
            "schema": self.schema,
            "components": entries,
            "combiner": combiner,
            "versions": package_versions(),
            "info": self.info,
            "files": part_checksums(tmp),
        }
        write_json_atomic(tmp / MANIFEST, stamped(manifest))

    @classmethod
    def load(cls, path: str | Path, map_location: str | torch.device = "cpu") -> Detector:
        """Read an artifact folder (or its ``detector.json``) after checking every part, onto
        the device ``map_location`` (``predict.py device=``): each component is read and checked
        on the CPU, then moved there. Its Lightning checkpoints are kept in ``checkpoints``
        (never read): ``save`` copies them, so that ``Detector.load(old).save(new)`` writes a
        format-3 artifact in this format whole."""
        device = usable_device(map_location)
        path = artifact_folder(path)
        manifest_path = path / MANIFEST
        manifest = read_manifest(manifest_path)
        verify_parts(path, manifest["files"])
        components = {}
        for name, entry in manifest["components"].items():
            folder = path / "components" / name
            module = load_component(entry, folder, manifest_path, name, manifest["schema"])
            components[name] = module
        refuse_float64_device(device, components)  # Apple's MPS holds no float64
        components = {name: module.to(device) for name, module in components.items()}
        combiner = None
        if manifest["combiner"]:
            klass = import_allowed(manifest["combiner"]["class"], manifest_path, "the combiner")
            combiner = klass.load(path / "combiner")
            _check_combined(combiner, components, path / "combiner")
        config = read_text_part(path, "config.yaml") if (path / "config.yaml").exists() else ""
        checkpoints = {
            name: path / "components" / name / "lightning.ckpt"
            for name in components
            if f"components/{name}/lightning.ckpt" in manifest["files"]
        }
        return cls(components, manifest["schema"], combiner, config, manifest["info"],
                   checkpoints)

    def check(self, source: str) -> None:
        """Refuse a detector built or changed in memory whose parts disagree, with the checks
        ``load`` makes of an artifact (``merge_detectors`` makes them of its sources): the
        schema's structure, each component's tensors at the shapes its hyper-parameters build
        and its sizes against the schema's channels and telecommands, the combiner's
        components and the recorded calibration. A refusal is one ``ESAInputError`` naming
        ``source`` (where the detector comes from) and what differs."""
        if problem := schema_structure_problem(self.schema):
            raise ESAInputError(problem, path=source)
        for name, module in self.components.items():
            check_component(module, name, self.schema, source)
        if self.combiner is not None:
            _check_combined(self.combiner, self.components, source)
        if problem := calibration_problem(self.info.get("calibration"), self.schema["channels"]):
            raise ESAInputError(f"info.calibration: {problem}", path=source)


def _refuse_other_folder(path: Path) -> None:
    """Refuse to save onto ``path`` where that would replace what is no detector artifact."""
    if path.exists() and not path.is_dir():
        raise ESAInputError("not a folder: save the detector into a new folder", path=path)
    if not path.is_dir() or (path / MANIFEST).is_file():
        return
    entries = sorted(p.name for p in path.iterdir())
    if entries:
        raise ESAInputError(
            f"holds {len(entries)} entr{'y' if len(entries) == 1 else 'ies'} of no detector "
            f"artifact (e.g. {entries[0]!r}; no {MANIFEST}), which saving would replace: save "
            "the detector into a new or empty folder",
            path=path,
        )


def usable_device(where: str | torch.device) -> torch.device:
    """``where`` as a device this process can place tensors on, else an error naming it (the
    ``device`` setting of ``predict.py``): ``cuda`` on a machine without one, a misspelling."""
    try:
        device = torch.device(where)
        torch.empty(0, device=device)
    except Exception as exc:  # noqa: BLE001 - torch raises several types for a missing device
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ESAInputError(f"cannot place the detector there ({reason})", column="device",
                            value=where) from None
    return device


def _check_combined(combiner: Any, components: dict[str, Any], source: str | Path) -> None:
    if set(combiner.names) != set(components):
        raise ESAInputError(
            f"the combiner combines {combiner.names}, the artifact holds {sorted(components)}",
            path=source,
        )
