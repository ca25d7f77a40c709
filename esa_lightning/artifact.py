"""The fitted Detector: everything predict.py needs, saved and loaded as one folder.

Layout of an artifact folder::

    detector.json               format version, schema (channels, telecommands, grid period),
                                components (class, hyper-parameters), package versions
    config.yaml                 the resolved training config (for people; never executed)
    components/<name>/weights.pt    the module's state_dict: tensors only (buffers hold the
                                    fitted scaler, thresholds, shapelet kernels...)
    components/<name>/lightning.ckpt    the component's last Lightning checkpoint, to resume or
                                    fine-tune with Lightning (``load`` never reads it)
    components/<name>/...       extra files a component writes itself (``save_extra``: sklearn
                                heads and trees via skops)
    combiner/...                the final event classifier of ``esa_full``, when present

Loading never unpickles arbitrary objects: weights load with ``torch.load(weights_only=True)``,
hyper-parameters are JSON, classes are looked up in an allow-list (the detector families of
``models.registry`` and the combiner), sklearn heads load through skops with an explicit list
of trusted types. Artifacts of an earlier format are refused with the command that retrains.
"""

from __future__ import annotations

import importlib
import json
import pickle
import platform
import shutil
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from esa_lightning.data.mission import Mission
from esa_lightning.errors import ESAInputError
from esa_lightning.io import atomic_folder, write_json_atomic, write_text_atomic
from esa_lightning.models.base import DetectorModule, RowScores
from esa_lightning.models.registry import detector_families

# 2: one model contract (post-processing in ``post_processing`` hyper-parameters and post-rule
# buffers; every component a DetectorModule)
FORMAT_VERSION = 2
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


def mission_schema(mission: Mission) -> dict[str, Any]:
    """The parts of a mission a fitted detector depends on."""
    if mission.is_multiseries:
        first = next(iter(mission.series.values()))
        return {
            "multiseries": True,
            "channels": mission.channel_names,
            "telecommands": first.telecommand_names,
            "period": None,
        }
    return {
        "multiseries": False,
        "channels": mission.channel_names,
        "telecommands": list(mission.telecommand_names),
        "period": None if mission.period is None else str(mission.period),
    }


def check_schema(expected: dict[str, Any], mission: Mission, source: str | None = None) -> None:
    """Refuse data whose channels, telecommands or grid differ from what the detector learned."""
    got = mission_schema(mission)
    problems = []
    for key in ("channels", "telecommands"):
        want, have = list(expected[key]), list(got[key])
        missing = [c for c in want if c not in set(have)]
        extra = [c for c in have if c not in set(want)]
        if expected.get("multiseries") and key == "channels":
            extra = []  # independent series: predicting on a subset of channels is fine
            missing = []
        if missing or extra:
            problems.append(f"{key}: missing {missing}, extra {extra}")
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


def _class_path(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def allowed_classes() -> set[str]:
    """The classes an artifact may name: every registered detector family and the combiner."""
    return set(detector_families()) | COMBINER_CLASSES


def _import_allowed(path: str) -> type:
    if path not in allowed_classes():
        raise ESAInputError("the artifact names a class that is not allowed", value=path)
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _plain_hparams(module: Any) -> dict[str, Any]:
    hp = dict(getattr(module, "hparams", {}) or {})
    try:
        json.dumps(hp)
    except TypeError as exc:
        raise TypeError(f"{_class_path(module)} has non-JSON hyper-parameters: {exc}") from None
    return hp


@dataclass
class Detector:
    """Fitted components (LightningModules) and an optional combiner over their outputs."""

    components: dict[str, DetectorModule]
    schema: dict[str, Any]
    combiner: Any | None = None
    config_yaml: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    # Lightning checkpoints to copy into the artifact (to resume or fine-tune with Lightning);
    # never read by ``load``, which needs only the tensors-only weights
    checkpoints: dict[str, Path] = field(default_factory=dict)

    # ---------------------------------------------------------------- scoring
    @property
    def context_rows(self) -> int:
        """Rows of context a chunk needs on each side for exact results."""
        values = [m.context_rows for m in self.components.values()]
        if self.combiner is not None:
            values.append(self.combiner.context_rows)
        return int(max(values))

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
        raises an ``ESAInputError`` naming the path.
        """
        path = Path(path)
        with atomic_folder(path) as tmp:
            self._write(tmp)
        return path

    def _write(self, tmp: Path) -> None:
        entries = {}
        for name, module in self.components.items():
            folder = tmp / "components" / name
            folder.mkdir(parents=True)
            torch.save(_cpu_state(module), folder / "weights.pt")
            ckpt = self.checkpoints.get(name)
            if ckpt is not None and Path(ckpt).is_file():
                shutil.copy2(ckpt, folder / "lightning.ckpt")
            module.save_extra(folder)
            entries[name] = {"class": _class_path(module), "hparams": _plain_hparams(module)}
        combiner = None
        if self.combiner is not None:
            (tmp / "combiner").mkdir()
            self.combiner.save(tmp / "combiner")
            combiner = {"class": _class_path(self.combiner)}
        manifest = {
            "format_version": FORMAT_VERSION,
            "schema": self.schema,
            "components": entries,
            "combiner": combiner,
            "versions": package_versions(),
            "info": self.info,
        }
        write_json_atomic(tmp / "detector.json", manifest)
        write_text_atomic(tmp / "config.yaml", self.config_yaml)

    @classmethod
    def load(cls, path: str | Path, map_location: str | torch.device = "cpu") -> Detector:
        path = Path(path)
        manifest_path = path / "detector.json"
        if not manifest_path.is_file():
            raise ESAInputError("not a detector artifact (no detector.json)", path=path)
        try:
            manifest = json.loads(manifest_path.read_text())
        except json.JSONDecodeError as exc:
            raise ESAInputError(f"corrupt detector.json ({exc})", path=manifest_path) from None
        if not isinstance(manifest, dict) or not isinstance(manifest.get("components"), dict):
            raise ESAInputError("corrupt detector.json (no components table)", path=manifest_path)
        if manifest.get("format_version") != FORMAT_VERSION:
            experiment = (manifest.get("info") or {}).get("experiment") or "NAME"
            raise ESAInputError(
                f"artifact format {manifest.get('format_version')}, this version reads "
                f"{FORMAT_VERSION} (the model contract changed); retrain it with this version: "
                f"python train.py experiment={experiment}",
                path=manifest_path,
            )
        components = {}
        for name, entry in manifest["components"].items():
            try:
                klass = _import_allowed(entry["class"])
                module = klass(**entry["hparams"])
            except (KeyError, TypeError) as exc:
                raise ESAInputError(
                    f"corrupt component entry ({type(exc).__name__}: {exc})",
                    path=manifest_path,
                    column=str(name),
                ) from None
            folder = path / "components" / name
            weights = folder / "weights.pt"
            try:
                # weights_only: tensors and plain containers only, a pickled object is refused
                state = torch.load(weights, map_location=map_location, weights_only=True)
            except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise ESAInputError(f"cannot read weights ({reason})", path=weights) from None
            if not isinstance(state, dict):
                raise ESAInputError("weights are not a state_dict", path=weights)
            _load_state(module, state, weights)
            module.load_extra(folder)
            module.eval()
            components[name] = module
        combiner = None
        if manifest.get("combiner"):
            combiner = _import_allowed(manifest["combiner"]["class"]).load(path / "combiner")
        config = (path / "config.yaml").read_text() if (path / "config.yaml").is_file() else ""
        return cls(components, manifest["schema"], combiner, config, manifest.get("info", {}))


def _cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
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
