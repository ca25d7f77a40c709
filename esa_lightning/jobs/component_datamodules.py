"""A component's model chosen on the command line picks the datamodule it trains on.

``model=zscore`` alone composes ``datamodule=rows`` (``conf/model/zscore.yaml``'s ``defaults``
override the top-level ``datamodule``), but a component's model
(``+model@components.z.model=zscore`` in ``experiment=esa_full``) lives under
``components.z``, which a model config's defaults cannot name: its datamodule had to be named
too (``+datamodule@components.z.datamodule=rows``). ``with_component_datamodules`` adds that
override to a command line that does not name one, the datamodule ``model=NAME`` alone composes,
the model's config found where Hydra finds it (the package's configs, or a user's own
``--config-path``, and their ``--config-name``; then a user's ``--config-dir`` and
``hydra.searchpath``); ``refuse_component_datamodules`` refuses, before
the data are read, a component left without its datamodule or with another kind, or whose
model or datamodule was set to a name (``components.z.model=zscore``) instead of chosen,
naming the override to type.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from omegaconf import DictConfig

from esa_lightning import install
from esa_lightning.errors import ESAInputError

#: ``model@components.<name>.model`` (``+`` adds a component), the override's key
COMPONENT_MODEL = re.compile(r"^(\+?)model@components\.([^.=@/\s]+)\.model$")
#: the entry a model config's defaults choose the top-level datamodule with
DATAMODULE_ENTRY = "override /datamodule@_global_.datamodule"
#: the module whose ``hydra.main`` composes ``train.py``'s command line: a ``--config-path``
#: that is not absolute is read relative to it, as Hydra reads it there (the entry points make
#: a relative one absolute from the current folder first: ``jobs.config_path.config_path_from_cwd``)
MAIN_MODULE = "esa_lightning.cli.train"


def with_component_datamodules(overrides: Sequence[str],
                               config_dir: Path | None = None) -> list[str]:
    """``overrides`` with ``datamodule@components.<name>.datamodule=KIND`` added after (``+`` where
    the model's override adds the component) for each component whose model they choose
    (``[+]model@components.<name>.model=NAME``) and whose datamodule they do not name: KIND is
    the datamodule ``model=NAME`` alone composes (``datamodule_of``), with the configs of
    ``config_dir`` (the package's by default; the command line's ``--config-path`` instead, and
    its ``--config-name``: ``primary_config``) and the folders the command line adds to Hydra's
    search path (``--config-dir``, ``hydra.searchpath=``: ``searched_beside``). A sweep of
    models (``=zscore,global_std``) gets the one datamodule they share; models of different
    datamodules are refused, naming the overrides to run them with, one command each."""
    folder = Path(config_dir or install.config_dir())
    beside = searched_beside(overrides)
    config_path, config_name = primary_config(overrides)
    out = []
    for override in overrides:
        out.append(override)
        key, sep, value = override.partition("=")
        match = COMPONENT_MODEL.match(key.strip())
        if not sep or match is None or _names_datamodule(overrides, match.group(2)):
            continue
        plus, name = match.groups()
        kinds = {model: datamodule_of(model, folder, beside, config_path=config_path,
                                      config_name=config_name) for model in _choices(override)}
        if not kinds or None in kinds.values():  # not parsed, or an unknown model: Hydra's
            continue
        typed = f"{plus}datamodule@components.{name}.datamodule"
        if len(set(kinds.values())) > 1:
            each = ", ".join(f"{typed}={kind} for {model}" for model, kind in kinds.items())
            raise ESAInputError(f"{override.strip()}: these models train on different "
                                f"datamodules; sweep them in one command each, naming it: {each}")
        out.append(f"{typed}={next(iter(kinds.values()))}")  # beside it: flags may follow
    return out


def datamodule_of(model: str, config_dir: Path, beside: Sequence[str] = (), *,
                  config_path: str | None = None, config_name: str = "train") -> str | None:
    """The datamodule ``model=<model>`` alone composes (the one ``model/<model>.yaml``'s
    defaults choose, else the primary config's default), composed as Hydra composes it: with
    the configs of ``config_dir`` (or of ``config_path``, a ``--config-path`` read as
    ``train.py``'s ``hydra.main`` reads it), its ``config_name`` (``--config-name``), and then
    the search path entries ``beside`` them (``file://``, ``pkg://``: a user's ``--config-dir``
    and ``hydra.searchpath``), so that a model or datamodule config of the user's own is
    found. None where it does not compose (no such model config: Hydra names it when the
    command line is composed)."""
    from hydra import compose
    from hydra.core.global_hydra import GlobalHydra

    overrides = [f"model={model}"]
    if beside:
        entries = ",".join("'{}'".format(entry.replace("'", "\\'")) for entry in beside)
        overrides.append(f"hydra.searchpath=[{entries}]")  # quoted: any folder name
    GlobalHydra.instance().clear()  # compose refuses to start over an initialised Hydra
    try:
        with _initialized(config_dir, config_path):
            cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    except Exception:  # noqa: BLE001 - Hydra raises several types; it reports them itself
        return None
    finally:
        GlobalHydra.instance().clear()
    choice = cfg.hydra.runtime.choices.get("datamodule")
    return None if choice is None else str(choice)


@contextlib.contextmanager
def _initialized(config_dir: Path, config_path: str | None) -> Iterator[None]:
    """Hydra initialised for a compose of ``config_dir``'s configs, or, given a
    ``--config-path``, of that path as ``hydra.main`` in ``MAIN_MODULE`` reads it (Hydra's own
    function: an absolute folder, a ``pkg://`` module, or a path relative to that module)."""
    from hydra import initialize_config_dir, version

    if config_path is None:
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            yield
        return
    from hydra._internal.hydra import Hydra  # ImportError: another Hydra's; Hydra reports

    version.setbase("1.3")
    Hydra.create_main_hydra_file_or_module(calling_file=None, calling_module=MAIN_MODULE,
                                           config_path=config_path, job_name="train")
    yield


def primary_config(args: Sequence[str]) -> tuple[str | None, str]:
    """The primary configs a command line (``args``) composes, as Hydra reads its flags: its
    ``--config-path`` (``-cp``; None without one: the package's configs) and its
    ``--config-name`` (``-cn``; ``train`` without one)."""
    flags = _hydra_flags(args)
    config_path = getattr(flags, "config_path", None)
    config_name = getattr(flags, "config_name", None)
    return config_path, config_name or "train"


def _hydra_flags(args: Sequence[str]) -> argparse.Namespace | None:
    """A command line's flags parsed by Hydra's own parser (its abbreviations, ``-cd=DIR``
    read as Hydra reads them); None with another Hydra's internals, or flags it refuses (a bad
    flag: Hydra's to report)."""
    try:
        from hydra._internal.utils import get_args_parser

        # its usage message, and --version's line: Hydra prints them once, when it runs
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            return get_args_parser().parse_known_args(list(args))[0]
    except (ImportError, SystemExit):
        return None


def searched_beside(args: Sequence[str]) -> list[str]:
    """The search path entries a command line (``args``: its flags and overrides) adds to the
    package's configs, in Hydra's order: ``--config-dir DIR`` (``-cd``; ``file://`` and the
    absolute folder, as Hydra adds it), then the entries of ``hydra.searchpath=[...]``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    found: list[str] = []
    config_dir = getattr(_hydra_flags(args), "config_dir", None)
    if config_dir is not None:
        found.append(f"file://{os.path.abspath(config_dir)}")
    for override in args:
        if override.partition("=")[0].strip().lstrip("+") != "hydra.searchpath":
            continue
        try:
            (parsed,) = OverridesParser.create().parse_overrides([override])
        except Exception:  # noqa: BLE001 - Hydra reports an override it cannot parse
            continue
        value = parsed.value()
        if isinstance(value, list):
            found.extend(str(v) for v in value)
    return found


def refuse_component_datamodules(specs: Mapping[str, DictConfig],
                                 overrides: Sequence[str] | None = None) -> None:
    """Before the data are read: a component (``specs``: name -> spec, ``esa_full``'s) without
    a datamodule, or with one of another kind than its model trains on, is refused naming the
    override to type (``+datamodule@components.z.datamodule=rows``), not met as a missing key or
    once its data were read; so is a model or datamodule set to a name
    (``components.z.model=zscore``: a string, which no datamodule follows) instead of chosen.
    ``overrides``: the overrides as typed, which say where the hint needs a ``+`` (the
    component was added); by default the running Hydra job's (none outside Hydra: the Python
    API passes its own)."""
    from esa_lightning.jobs.sweep import hydra_task_overrides
    from esa_lightning.jobs.targets import detector_class, target_object

    given = hydra_task_overrides() if overrides is None else overrides
    typed = [o.partition("=")[0].strip() for o in given]
    for name, spec in specs.items():
        refuse_named_parts(name, spec, typed)
        family = detector_class(spec.model)
        wanted = family.datamodule_kind
        datamodule = spec.get("datamodule")
        if datamodule is None:
            raise ESAInputError(f"component {name} has no datamodule: its model "
                                f"{family.__name__} trains on datamodule={wanted}; add "
                                f"+datamodule@components.{name}.datamodule={wanted}")
        target = datamodule.get("_target_")
        if not target:  # refused by its key later
            continue
        # one that cannot be imported: refused naming its key, as refuse_unimportable_targets
        found = target_object(target, f"components.{name}.datamodule._target_", "the target")
        kind = getattr(found, "DATAMODULE_KIND", None)
        if kind != wanted:  # "+" where the overrides added the component
            plus = "+" * any(k in typed for k in (f"+datamodule@components.{name}.datamodule",
                                                  f"+model@components.{name}.model"))
            raise ESAInputError(f"component {name}: {family.__name__} trains on "
                                f"datamodule={wanted}, not {kind}; give "
                                f"{plus}datamodule@components.{name}.datamodule={wanted}")


def refuse_named_parts(name: str, spec: DictConfig, typed: Sequence[str]) -> None:
    """Component ``name``'s model or datamodule set to a value (``components.z.model=zscore``:
    the word, not zscore's config, and its datamodule left as it was) is refused naming the
    choice to type instead (``model@components.z.model=zscore``; ``+`` where ``typed``, the
    overrides' keys, added it). It was an ``AttributeError`` traceback ('str' object has no
    attribute 'get'). A component left without a model (``~model@components.z.model``) is
    refused too, naming the key (it was a ``ConfigAttributeError`` traceback)."""
    if spec.get("model") is None:
        raise ESAInputError(
            f"component {name} has no model (components.{name}.model is empty): choose one "
            f"with model@components.{name}.model=NAME, or leave it as the experiment sets it")
    for part in ("model", "datamodule"):
        value = spec.get(part)
        if value is None or isinstance(value, DictConfig):
            continue
        plus = "+" * (f"+components.{name}.{part}" in typed)
        raise ESAInputError(
            f"components.{name}.{part}={value} sets the component's {part} to a value, not "
            f"to a config: choose it with {plus}{part}@components.{name}.{part}={value}")


def _names_datamodule(overrides: Sequence[str], name: str) -> bool:
    """Whether ``overrides`` name component ``name``'s datamodule (chosen, added or deleted)."""
    key = f"datamodule@components.{name}.datamodule"
    return any(o.partition("=")[0].strip().lstrip("+~") == key for o in overrides)


def _choices(override: str) -> list[str]:
    """The model names ``override`` chooses (several for a sweep); none where it does not parse
    or its values are not plain names (Hydra reports or expands those)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        (parsed,) = OverridesParser.create().parse_overrides([override])
        values = list(parsed.sweep_string_iterator()) if parsed.is_sweep_override() else [
            parsed.value()]
    except Exception:  # noqa: BLE001 - Hydra raises several types; it reports them itself
        return []
    return [v for v in values if isinstance(v, str)] if all(
        isinstance(v, str) for v in values) else []
