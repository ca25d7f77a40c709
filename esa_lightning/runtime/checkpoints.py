"""Resume checkpoints (``ckpt_path=...``) are checked before Lightning reads them.

Lightning loads a checkpoint with ``torch.load``'s default, which
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` (or torch before 2.6) turns into full unpickling: a
crafted ``evil.ckpt`` would run its payload. ``check_resume_checkpoint`` reads the file itself
with ``weights_only=True`` passed explicitly (the variable cannot override an explicit choice),
allowing only ``checkpoint_globals()``, the few container types Lightning and omegaconf put in
checkpoints; ``fit_from`` then hands it to ``trainer.fit`` with ``weights_only=True`` under the
same allow-list. A truncated or foreign file, one whose tensors do not fit the configured
model (a changed ``model.hidden_size``, another experiment's or mission's checkpoint), or one
without a fitting optimizer state (``save_weights_only``) is one ``ESAInputError`` naming the
file. A post rule only the checkpoint or only the model was built with is no such misfit: every
rule is fitted after training, whatever the checkpoint holds (``log_rule_differences``).
"""

from __future__ import annotations

import inspect
import logging
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, ListConfig, OmegaConf

from esa_lightning.errors import ESAInputError, listed_differences
from esa_lightning.postprocessing.base import (
    rule_differences,
    rule_names,
)
from esa_lightning.postprocessing.fit_rows import is_row_record
from esa_lightning.run_folder import run_dir_setting
from esa_lightning.runtime.checkpoint_advice import unreadable_advice

log = logging.getLogger("esa_lightning")


def checkpoint_globals() -> list[Any]:
    """Types a legitimate checkpoint may hold beyond tensors and plain containers."""
    import numpy as np
    from lightning.fabric.utilities.data import AttributeDict

    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import scalar

    found: list[Any] = [AttributeDict, np.dtype, scalar]
    found += [type(np.dtype(t)) for t in ("float64", "float32", "int64", "int32", "bool")]
    try:
        from omegaconf import DictConfig, ListConfig
        from omegaconf.base import ContainerMetadata, Metadata
        from omegaconf.nodes import AnyNode

        found += [DictConfig, ListConfig, ContainerMetadata, Metadata, AnyNode]
    except ImportError:  # pragma: no cover - omegaconf ships with hydra
        pass
    return found


def _unreadable(exc: Exception) -> str:
    """Why torch could not read a checkpoint, in a user's words: the object a safe load
    refuses, by name, or what the file may be; not torch's message, which can be a bare key
    ("101"), an exception's name or advice to load the file unsafely. The callers add what
    to do (another checkpoint of the run, a new run, retraining a source)."""
    refused = re.search(r"GLOBAL ([\w.]+)", str(exc))
    if refused:
        return f"it holds an object a safe load refuses ({refused[1]})"
    return "the file is damaged, cut short, or not a checkpoint"


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's contents, read without running code (``weights_only=True``)."""
    try:
        with torch.serialization.safe_globals(checkpoint_globals()):
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types on foreign bytes
        raise ESAInputError(
            f"cannot be read as a checkpoint: {_unreadable(exc)}", path=path
        ) from exc  # torch's own words (a bare "101", its advice to load unsafely): --debug
    if not isinstance(data, dict) or not isinstance(data.get("state_dict"), dict):
        raise ESAInputError("not a Lightning checkpoint (no state_dict)", path=path)
    return data


def check_resume_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    datamodule: Any = None,
    settings: str = "model",
    datamodule_key: str = "datamodule",
) -> None:
    """Refuse a checkpoint that cannot be read safely, whose tensors do not fit ``model`` (what
    Lightning's strict load would raise a traceback for: a missing, unexpected or resized
    parameter or buffer), that cannot resume training (no optimizer state), that was trained
    on another mission (``datamodule.mission``: ``check_same_data``) or with other settings
    than the model's (``check_same_settings``; ``settings``: the model's config key,
    ``datamodule_key`` the data module's, which names the settings it hands the model, its
    ``dims``). The tensors of a post rule only one side has are not compared (``added``,
    ``dropped``: the model keeps its own, ``DetectorModule.on_load_checkpoint``): an info line
    names the rule (``log_rule_differences``). Nor are the tensors of a rule both have that the
    checkpoint holds only some of (``incomplete_rules``: a tensor the rule gained in a later
    version; the model keeps its own, all of them), with an info line too; the rule's settings
    are compared as any others. A row record the checkpoint lacks (``train_rows``, written
    since) is no misfit either: the strict load leaves it as the run's ``setup`` recorded it.
    The file is read once.
    The mission is checked first: other channels resize the tensors, and the channels say why.
    A file that cannot be read is refused naming another checkpoint of the run to resume from,
    or a new run (``checkpoint_advice.unreadable_advice``)."""
    try:
        data = read_checkpoint(path)
    except ESAInputError as exc:
        advice = unreadable_advice(path, run_dir_setting(), read_checkpoint)
        raise ESAInputError(f"{exc.reason}; {advice}", path=path) from None
    mission = getattr(datamodule, "mission", None)
    check_same_data(data, mission, path)
    state = data["state_dict"]
    problems = []
    expected = model.state_dict()  # parameters and persistent buffers, as Lightning loads them
    # a rule one side lacks is fitted after training (allowed); a rule that gained a tensor
    # (incomplete) is fitted again too
    added, dropped, incomplete = rule_differences(expected, state)
    for name, have in expected.items():
        stored = state.get(name)
        if rule_names([name]) & added:
            continue
        if stored is None:
            # a row record (``fit_rows.RecordsRows``) an earlier version did not write loads
            # without it, recorded by this run's ``setup`` before Lightning loads the checkpoint
            if not rule_names([name]) & incomplete and not is_row_record(model, name):
                problems.append(f"no {name}")
        elif not isinstance(stored, torch.Tensor) or (
            stored.shape != have.shape and have.numel() > 0  # an empty buffer is sized later
        ):
            shape = tuple(getattr(stored, "shape", ()))
            problems.append(f"{name} is {shape}, the model's {tuple(have.shape)}")
    problems += [f"{name} is not the model's" for name in state
                 if name not in expected and not rule_names([name]) & dropped]
    if problems:
        raise ESAInputError(
            "the checkpoint does not fit the configured model (was it trained with another "
            "experiment, other data or other model settings, e.g. model.hidden_size?): "
            f"{'; '.join(problems[:3])}",
            path=path,
        )
    if problem := _optimizer_problem(data.get("optimizer_states", None), model):
        raise ESAInputError(f"training cannot resume from this checkpoint: {problem}", path=path)
    from_data = set(getattr(datamodule, "dims", None) or {})
    check_same_settings(data, model, path, settings, (datamodule_key, from_data))
    log_rule_differences(data, model, path, settings, (added, dropped))
    if incomplete:
        missing = sorted(n for n in expected if n not in state and rule_names([n]) & incomplete)
        log.info("%s: the checkpoint holds the post-processing rule %s (%s) without its "
                 "tensor(s) %s (added to the rule since the checkpoint was written): fitted at "
                 "the end of this run, as in a new run", path, ", ".join(sorted(incomplete)),
                 ", ".join(f"{settings}.post_processing.{n}" for n in sorted(incomplete)),
                 ", ".join(missing))


def log_rule_differences(data: Mapping[str, Any], model: Any, path: str | Path, key: str,
                         tensors: tuple[set[str], set[str]]) -> None:
    """One info line each for the post rules the model has and the checkpoint (``data``, read
    from ``path``) was trained without, and the other way round: by the checkpoint's
    ``hyper_parameters`` (a rule without tensors: ``meta_heads``, ``rf_gate``) and by its
    tensors (``tensors``: ``whole_rule_differences``). Every rule is fitted after training, on
    the training and validation data, whatever the checkpoint holds: a resumed run fits a rule
    the checkpoint lacks as a new run does, and a rule the model lacks is not fitted."""
    mine = set(getattr(model, "post_rules", {}) or {})
    spec = (data.get("hyper_parameters") or {}).get("post_processing")
    theirs = {n for n, v in spec.items() if v is not None} if isinstance(spec, Mapping) else mine
    added, dropped = sorted((mine - theirs) | tensors[0]), sorted((theirs - mine) | tensors[1])
    if added:
        log.info("%s: the checkpoint was trained without the post-processing rule %s (%s): "
                 "fitted at the end of this run, as in a new run", path, ", ".join(added),
                 ", ".join(f"{key}.post_processing.{n}" for n in added))
    if dropped:
        log.info("%s: the checkpoint was trained with the post-processing rule %s, which this "
                 "run's model leaves out (%s): not fitted, not in its detector", path,
                 ", ".join(dropped), ", ".join(f"{key}.post_processing.{n}" for n in dropped))


def check_same_settings(
    data: dict[str, Any],
    model: Any,
    path: str | Path,
    key: str,
    data_settings: tuple[str, set[str]] | None = None,
) -> None:
    """Refuse to resume with other model settings than the checkpoint's (``data``, read from
    ``path``): the checkpoint's ``hyper_parameters`` that differ from the model's, named as the
    config's ``key.<name>`` (``model.max_windows``). Its tensors may fit, but the detector would
    record settings its weights were not trained with. A name only one side has (a setting added
    since) is not compared, nor one that sets only speed or memory (the model's
    ``runtime_settings()``: a smaller ``score_batch_size`` after running out of memory), which
    the run then uses. A setting the data module hands the model (``data_settings``: its key and
    the names, e.g. ``window``) is named by the data module's key (``datamodule.window``)."""
    stored = data.get("hyper_parameters")
    if not isinstance(stored, Mapping):
        return
    was, now = _flat(stored), _flat(getattr(model, "hparams", {}) or {})
    runtime = model.runtime_settings() if hasattr(model, "runtime_settings") else frozenset()
    differ = [name for name in now
              if name in was and was[name] != now[name] and name not in runtime]
    if differ:
        dm_key, from_data = data_settings or ("", set())

        def named(n: str) -> str:
            return f"{dm_key if n.split('.')[0] in from_data else key}.{n}"

        shown = ", ".join(f"{named(n)}={_plain(was[n])}" for n in differ[:3])
        asked = ", ".join(f"{named(n)}={_plain(now[n])}" for n in differ[:3])
        raise ESAInputError(
            f"the checkpoint was trained with {shown}, this run asks {asked}: resume with the "
            f"checkpoint's settings, or start a new run (another {run_dir_setting()}, no "
            "ckpt_path)",
            path=path,
        )


def _flat(settings: Any, prefix: str = "") -> dict[str, Any]:
    """``settings`` as ``{dotted name: value}``, omegaconf containers as plain ones and lists as
    tuples (a checkpoint may hold any of them for the same setting)."""
    if isinstance(settings, DictConfig | ListConfig):
        settings = OmegaConf.to_container(settings, resolve=True)
    if isinstance(settings, Mapping) and settings:
        out: dict[str, Any] = {}
        for name, value in settings.items():
            out.update(_flat(value, f"{prefix}{name}."))
        return out
    return {prefix[:-1]: _frozen(settings)}


def _frozen(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {name: _frozen(v) for name, v in value.items()}
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value


def _plain(value: Any) -> str:
    return str(list(value)) if isinstance(value, tuple) else str(value)


def check_same_data(data: dict[str, Any], mission: Any, path: str | Path) -> None:
    """Refuse to resume on another mission than the checkpoint's (``data``, read from
    ``path``): its name or channels differ, or its grid's period or training and validation
    rows (``check_same_split``). Its tensors may fit, but training would go on with statistics
    fitted on other rows. Nor with other ``metrics.label_channels``: the provisional validation
    metrics early stopping and the best checkpoint may follow, and the F0.5 threshold fits,
    would score other events than before the resume. Checkpoints without the record (older
    versions) are not checked, nor a part of it they lack."""
    from esa_lightning.data.mission import mission_record

    stored = data.get("esa_lightning_data")
    if mission is None or not isinstance(stored, dict):
        return
    now = mission_record(mission)
    if stored.get("mission") != now["mission"] or stored.get("channels") != now["channels"]:
        def describe(r: dict[str, Any]) -> str:
            channels = r.get("channels") or []
            return f"{r.get('mission')!r} ({len(channels)} channels)"

        was, read = list(stored.get("channels") or []), now["channels"]
        missing, extra = [c for c in was if c not in read], [c for c in read if c not in was]
        differ = (f"; channels {listed_differences(missing, extra, 5)}" if missing or extra
                  else "; the same channels in another order" if was != read else "")
        raise ESAInputError(
            f"the checkpoint was trained on mission {describe(stored)}, this run reads "
            f"{describe(now)}{differ}: resume with the checkpoint's data (and data.channels), "
            f"or start a new run (another {run_dir_setting()}, no ckpt_path)",
            path=path,
        )
    check_same_split(stored, now, path)
    if "label_channels" in stored and stored["label_channels"] != now["label_channels"]:
        raise ESAInputError(
            f"the checkpoint was trained with metrics.label_channels={stored['label_channels']}"
            f", this run asks metrics.label_channels={now['label_channels']}: resume with the "
            f"checkpoint's setting, or start a new run (another {run_dir_setting()}, no "
            "ckpt_path)",
            path=path,
        )


def resume_advice() -> str:
    return ("resume with the checkpoint's data.period, data.val_days (data.val_fraction) and "
            f"data.split_date, or start a new run (another {run_dir_setting()}, no ckpt_path)")


def check_same_split(stored: dict[str, Any], now: dict[str, Any], path: str | Path,
                     advice: str | None = None, reads: str = "this run reads") -> None:
    """Refuse a resume (``merge.py``: ``advice``, ``reads``) whose grid (``period``) or training
    and validation rows (``split``) differ from the checkpoint's record ``stored``; a part
    either record lacks (checkpoints of older versions) is not compared."""
    differ = [part for part in ("period", "split")
              if part in stored and part in now and stored[part] != now[part]]
    if not differ:
        return

    def describe(r: dict[str, Any]) -> str:
        split = r.get("split") or {}
        rows = "; ".join(f"{name + ': ' if name else ''}{t} training and {v} validation rows"
                         for name, (t, v) in list(split.items())[:2])
        return f"period {r.get('period')}, {rows}" if "period" in r else rows

    raise ESAInputError(
        f"the checkpoint was trained on {describe(stored)}, {reads} {describe(now)}: "
        f"{advice or resume_advice()}",
        path=path,
    )


def _optimizer_problem(states: Any, model: torch.nn.Module) -> str | None:
    """Why the optimizer state cannot be restored, or None. A model without an optimizer
    (zscore, the window baselines) has empty entries. The shapes are checked only where one
    parameter group holds every parameter, in the model's order (``Adam(self.parameters())``,
    as this project's models build it); other layouts are left to Lightning."""
    if states is None:  # the key is left out by save_weights_only=true
        return ("it holds no optimizer state (saved with save_weights_only=true?): start a new "
                "run, or load its weights into a detector instead")
    if not isinstance(states, list):
        return "its optimizer_states is not a list"
    params = list(model.parameters())
    for optimizer in states:
        if optimizer == {}:  # a model without an optimizer
            continue
        slots = optimizer.get("state") if isinstance(optimizer, dict) else None
        groups = optimizer.get("param_groups") if isinstance(optimizer, dict) else None
        if not isinstance(slots, dict) or not isinstance(groups, list):
            return "its optimizer state is not a state and param_groups"
        indices = [i for g in groups if isinstance(g, dict) for i in g.get("params", [])]
        if len(groups) != 1 or indices != list(range(len(params))):
            continue
        for index, slot in slots.items():
            if index not in range(len(params)) or not isinstance(slot, dict):
                return f"its optimizer state names parameter {index!r}"
            for key, value in slot.items():
                if isinstance(value, torch.Tensor) and value.ndim and (
                    value.shape != params[index].shape
                ):
                    return (f"its optimizer's {key} of parameter {index} is "
                            f"{tuple(value.shape)}, the parameter {tuple(params[index].shape)}")
    return None


def saved_components(checkpoints: Path) -> list[Path]:
    """The component folders of a run's ``checkpoints/`` that hold a ``last.ckpt``, sorted."""
    return sorted(p.parent for p in Path(checkpoints).glob("*/last.ckpt") if p.is_file())


def component_checkpoint_dir(
    output_dir: Path, name: str, resume_last: bool, single_component: bool
) -> Path:
    """The folder of component ``name``'s checkpoints: ``checkpoints/<name>`` of the run folder.

    A single-component run resumed with ``ckpt_path=last`` in a run folder written before run
    folders were named after the model (``train.yaml`` named every run without an experiment
    ``gru_ae``: a ``model=zscore`` run's checkpoints are in ``checkpoints/gru_ae/``) keeps the
    one component folder holding a ``last.ckpt`` that the run folder has. Where several hold
    one (an ``esa_full`` run's folder), which of them it continues cannot be told: refused,
    naming them, rather than training from scratch."""
    folder = Path(output_dir) / "checkpoints" / name
    if not (resume_last and single_component) or (folder / "last.ckpt").exists():
        return folder
    found = saved_components(folder.parent)
    if len(found) > 1:
        raise ESAInputError(
            f"no {name}/last.ckpt to resume this single-model run from, and {len(found)} "
            f"component folders hold one ({', '.join(p.name for p in found)}): resume with the "
            "experiment or model this run was trained with, or start from one of them in a new "
            f"run (ckpt_path=<its last.ckpt>, another {run_dir_setting()})",
            path=folder.parent,
        )
    return found[0] if found else folder


def resolve_ckpt_path(ckpt_path: str | None, checkpoint_dir: Path) -> str | None:
    """``last`` means ``checkpoint_dir/last.ckpt`` of this run folder; a path must exist.

    With ``last``, a component of several without a checkpoint (not reached before the
    interruption) starts afresh as long as the run folder holds some ``last.ckpt`` (a single
    model's folder: ``component_checkpoint_dir``).
    """
    if not ckpt_path:
        return None
    if ckpt_path == "last":
        last = checkpoint_dir / "last.ckpt"
        if last.is_file():
            return str(last)
        if last.exists() or last.is_symlink():
            raise ESAInputError("not a checkpoint file (a folder or a broken link)", path=last)
        if not saved_components(checkpoint_dir.parent) and not resumed_sweep(checkpoint_dir):
            raise ESAInputError(
                "no checkpoint to resume from; run with hydra.run.dir=<the interrupted run>",
                path=last,
            )
        log.info("no %s: this component starts from scratch", last)
        return None
    if not Path(ckpt_path).is_file():
        raise ESAInputError("checkpoint file not found", path=ckpt_path)
    return str(ckpt_path)


def resumed_sweep(checkpoint_dir: Path) -> bool:
    """Whether ``checkpoint_dir`` (``<job>/checkpoints/<component>``) is a job's of a ``-m``
    sweep resumed with ``ckpt_path=last`` whose other jobs hold checkpoints: a job the
    interrupted sweep never reached then starts afresh (``resolve_ckpt_path``)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return False
    job = checkpoint_dir.parent.parent
    sweep_dir = Path(HydraConfig.get().sweep.dir)
    return any(saved_components(other / "checkpoints") for other in sweep_dir.iterdir()
               if other.is_dir() and other.resolve() != job.resolve())


def checkpoint_dir_of(cfg: DictConfig, output_dir: Path, name: str) -> Path:
    """Component ``name``'s checkpoint folder in this run (``component_checkpoint_dir``)."""
    single = not cfg.get("components")
    return component_checkpoint_dir(output_dir, name, cfg.get("ckpt_path") == "last", single)


def refuse_one_checkpoint_for_several(ckpt_path: str | None, names: list[str]) -> None:
    """A checkpoint file holds one component: with several, only ``last`` can resume."""
    if ckpt_path and ckpt_path != "last" and len(names) > 1:
        raise ESAInputError(
            f"one checkpoint cannot resume the {len(names)} components {', '.join(names)}: "
            "resume with ckpt_path=last hydra.run.dir=<the interrupted run> (each component "
            "restarts from its checkpoints/<component>/last.ckpt)",
            path=ckpt_path,
        )


def fit_from(trainer: Any, model: Any, datamodule: Any, ckpt_path: str | None) -> None:
    """``trainer.fit``, resuming from ``ckpt_path``, which the caller has checked with
    ``check_resume_checkpoint`` (``jobs.train.prepare_component``), under the same safe load.
    Lightning's warnings that say nothing here are dropped: "no optimizer" for a model
    without a trainable parameter (fitted without gradient steps by design), and "Checkpoint
    directory ... exists and is not empty" on a resume (the run's own checkpoints)."""
    with warnings.catch_warnings():
        if not any(p.requires_grad for p in model.parameters()):
            warnings.filterwarnings("ignore", message=r"`LightningModule.configure_optimizers` "
                                    r"returned `None`")
        if ckpt_path is None:
            trainer.fit(model, datamodule=datamodule)
            return
        warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not "
                                r"empty")
        options = {}
        if "weights_only" in inspect.signature(trainer.fit).parameters:
            options["weights_only"] = True
        with torch.serialization.safe_globals(checkpoint_globals()):
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, **options)
