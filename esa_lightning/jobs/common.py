"""Shared plumbing of the Hydra entry points: one-line errors, config printing, loaders."""

from __future__ import annotations

import contextlib
import difflib
import inspect
import logging
import re
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from esa_lightning.data import Mission
from esa_lightning.errors import ESAInputError, one_line_errors  # noqa: F401 - jobs import it
from esa_lightning.jobs.targets import detector_class, target_object
from esa_lightning.models.devices import accelerator_text, picks_mps
from esa_lightning.postprocessing.base import check_kinds
from esa_lightning.runtime.evaluation import (  # noqa: F401 - the jobs import them from here
    has_labeled_events,
    unscored_reason,
)

log = logging.getLogger("esa_lightning")
T = TypeVar("T")


def run_or_exit(fn: Callable[[DictConfig], T], cfg: DictConfig) -> T | None:
    """Run the Hydra job ``fn(cfg)`` inside ``one_line_errors`` (``debug_errors=true``: full
    tracebacks), after checking its settings (``settings.check_settings``); the error line goes
    to the job's log too. In a job of a local ``-m`` sweep an input error is printed as one
    line, the job returns None, and the sweep goes on (``sweep.fail_job``)."""
    from esa_lightning.jobs.sweep import fail_job, in_local_multirun, log_to_files
    from esa_lightning.run_folder import removed_if_refused
    from esa_lightning.settings import check_settings

    debug = cfg.get("debug_errors", False) is True  # another value is refused below
    with one_line_errors(debug):
        try:
            # refused here (Hydra's flags skip the check before it makes the run folder), the
            # run leaves no folder it made
            with removed_if_refused(cfg.paths.output_dir, keep=debug, settles=False):
                check_settings(cfg)
            with warnings_in_log_files():
                return fn(cfg)
        except ESAInputError as exc:
            if debug:
                raise
            if not in_local_multirun():
                log_to_files(f"error: {exc}")  # a run folder that stays says why it stopped
                raise
            fail_job(exc)  # the sweep goes on with its next job
            return None


@contextlib.contextmanager
def warnings_in_log_files() -> Iterator[None]:
    """Each warning the console shows goes to the job's log file too (``<job>.log``, as a
    WARNING line naming its category), so a run folder read later says why, e.g., rows with
    missing ids or repaired readings alarmed. Warnings recorded or ignored by a caller's
    ``warnings.catch_warnings`` are not shown, so not logged."""
    from esa_lightning.jobs.sweep import log_to_files

    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001, ANN202
        shown(message, category, filename, lineno, file, line)
        log_to_files(f"{category.__name__}: {message}", level=logging.WARNING)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown


def mission_from_config(data_cfg: DictConfig) -> Mission:
    """Call the reader a ``data=`` config group names (``_target_``) with its root and options.

    Errors stay one-line ``ESAInputError``s: a missing root or reader, a reader that cannot be
    imported or called, and whatever the reader raises (not wrapped by Hydra).
    """
    options: dict[str, Any] = OmegaConf.to_container(data_cfg, resolve=True)  # type: ignore[assignment]
    target = options.get("_target_")
    if not target:
        raise ESAInputError("the data config names no reader (_target_)", column="data._target_")
    target_object(target, "data._target_", "the data reader")  # importable and callable
    if options.get("root") in (None, "???"):
        raise ESAInputError("set data.root=PATH for this data source", column="data.root")
    refuse_unknown_options(data_cfg, set(), where="data")  # a misspelled key
    try:
        return instantiate(options, _convert_="all")
    except InstantiationException as exc:
        cause = exc.__cause__
        if isinstance(cause, TypeError) and (
            refused := unknown_option(data_cfg, cause, set(), where="data")
        ):  # a reader passing its options on (the synthetic one) is not checked before
            raise refused from None
        if cause is not None:  # the reader's own error, as a direct call raises it
            raise cause from cause.__cause__
        raise


def scored_mission(mission: Mission, cfg: DictConfig) -> Mission:
    """``mission`` with the labels ``cfg``'s ``metrics.label_channels`` scores (``all`` when
    unset): what train.py's validation and test reports and its F0.5 threshold fits, predict.py's
    and evaluate.py's reports read (``data.label_channels.with_label_channels``)."""
    from esa_lightning.data.label_channels import with_label_channels

    return with_label_channels(mission, OmegaConf.select(cfg, "metrics.label_channels"))


def instantiate_checked(config: Any, *args: Any, **kwargs: Any) -> Any:
    """Hydra's ``instantiate``, except that a user-facing error the target raises (a model's or
    a combiner's check of its options) comes out as the ``ESAInputError`` it is, one line, not
    wrapped in Hydra's ``InstantiationException`` (a multi-line message, exit code 1); so does
    an option of ``config`` the target does not take (``+model.bogus=1``: ``unknown_option``)."""
    try:
        return instantiate(config, *args, **kwargs)
    except InstantiationException as exc:
        if isinstance(exc.__cause__, ESAInputError):
            raise exc.__cause__ from None
        if isinstance(exc.__cause__, TypeError) and (
            refused := unknown_option(config, exc.__cause__, set(kwargs))
        ):
            raise refused from None
        raise


def refuse_unimportable_targets(cfg: DictConfig, specs: Iterable[DictConfig]) -> None:
    """Before the data are read: the detector family and the datamodule of each component's
    ``specs`` (``detector_class``; a single model's ``datamodule``), then every ``_target_`` of
    the run's ``callbacks``, ``logger``, ``combiner``, ``trainer`` and ``components`` (a
    component's own callbacks; nested ones too). One that cannot be imported or called is
    refused in one line naming its full key (``datamodule._target_``,
    ``components.<name>.callbacks.early_stopping._target_``: ``target_object``), not in Hydra's
    "Error locating target" or "Expected a callable target" block once the data were read and
    the callbacks built. (``esa_full``'s top-level ``datamodule`` is not used, not checked.)"""
    for spec in specs:
        family = detector_class(spec.model)  # and a post rule of a kind it does not apply
        check_kinds(spec.model.get("post_processing"), takes=family.POST_RULES,
                    model=family.__name__)
        if target := spec.datamodule.get("_target_"):
            key = f"{spec.datamodule._get_full_key(None)}._target_"
            target_object(target, key, "the target")
    nodes = [cfg.get(key) for key in ("callbacks", "logger", "combiner", "trainer", "components")]
    while nodes:  # in the config's order
        node = nodes.pop(0)
        if not isinstance(node, DictConfig | ListConfig) or node._is_none() or node._is_missing():
            continue
        if isinstance(node, DictConfig) and node.get("_target_"):
            key = node._get_full_key(None)
            found = target_object(node._target_, f"{key}._target_", "the target")
            refuse_other_kind(found, key, node._target_)
        keys = node.keys() if isinstance(node, DictConfig) else range(len(node))
        nodes += [node._get_node(key) for key in keys]


def refuse_other_kind(found: Any, key: str, target: str) -> None:
    """Refuse a class of another kind as an entry of a ``callbacks`` or ``logger`` group
    (``callbacks.<name>``, ``components.<name>.callbacks.<name>``, ``logger.<name>``), which
    Lightning would take and fail on at its first hook; a function is left to what it returns."""
    from lightning.pytorch import Callback
    from lightning.pytorch.loggers import Logger

    group = key.rpartition(".")[0].rpartition(".")[2]
    kind = {"callbacks": Callback, "logger": Logger}.get(group)
    if kind is not None and isinstance(found, type) and not issubclass(found, kind):
        raise ESAInputError(f"not a Lightning {kind.__name__}", column=f"{key}._target_",
                            value=target)


@contextlib.contextmanager
def keyed_refusals(config: DictConfig) -> Iterator[None]:
    """Refusals of the block building ``config`` (an ``esa_full`` component's ``model`` or
    ``datamodule``) name the options as the user sets them: ``column 'channel_scores'``,
    ``model.top_channels`` and ``min_kernel_len=60`` (a single model's keys) become
    ``components.<name>.model.channel_scores``, ``components.<name>.model.top_channels`` and
    ``components.<name>.datamodule.min_kernel_len=60``. A single model's stay as they are."""
    try:
        yield
    except ESAInputError as exc:
        key = config._get_full_key(None)  # model, components.gru_ae.model...
        head = key.rpartition(".")[0]
        if not head:
            raise
        options = set(map(str, config)) | (accepted_options(config) or set())

        def full(name: str) -> str:
            root = name.split(".", 1)[0]
            if root in ("model", "datamodule"):  # a single model's key
                return f"{head}.{name}"
            return f"{key}.{name}" if root in options else name

        named = [r"(?:model|datamodule)\.\w[\w.]*", *(rf"{re.escape(o)}(?==)" for o in options)]
        reason = re.sub(rf"(?<![\w.])(?:{'|'.join(named)})", lambda m: full(m[0]), exc.reason)
        column = None if exc.column is None else full(exc.column)
        raise ESAInputError(reason, path=exc.path, column=column, value=exc.value) from None


def instantiate_group(
    group: DictConfig | None, where: Callable[[str], str] | str = ""
) -> list[Any]:
    """Instantiate every ``_target_`` entry of a callbacks/logger group, in order. A setting
    the entry's class refuses (Lightning's ``MisconfigurationException``, a ``ValueError``) is
    one ``ESAInputError`` naming the entry's key: ``where`` (``callbacks``), or a function giving
    it for the entry's name, then ``.<name>``."""
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    built = []
    for name, entry in (group or {}).items():
        if not entry or "_target_" not in entry:
            continue
        try:
            built.append(instantiate_checked(entry, _convert_="all"))
        except InstantiationException as exc:
            if not isinstance(exc.__cause__, MisconfigurationException | ValueError):
                raise
            key = where(name) if callable(where) else where
            raise ESAInputError(f"{key}.{name}: {exc.__cause__}") from None
    return built


def unknown_option(
    config: Any, error: TypeError, given: set[str], where: str | None = None
) -> ESAInputError | None:
    """The one-line error for Python's ``unexpected keyword argument 'NAME'`` when ``NAME`` is
    an option of ``config`` (a misspelled key, not a bug of the target), else None.
    ``given``: the options the caller passes itself (``datamodule.dims``), not the user's."""
    found = re.search(r"unexpected keyword argument '([^']+)'", str(error))
    if not found or not isinstance(config, DictConfig) or found.group(1) not in config:
        return None
    options = accepted_options(config, where)
    return not_an_option(config, found.group(1), options or set(), given, where)


def refuse_unknown_options(
    config: DictConfig, given: set[str], where: str | None = None
) -> None:
    """Refuse an option of ``config`` its target does not take, before instantiating it (an
    ``esa_full`` component is built only once the components before it trained); a target
    that takes any (``**kwargs`` all the way) is left to its own checks. ``where``: the
    config's key (default: its place in the config it belongs to)."""
    options = accepted_options(config, where)
    if options is None:
        return
    for name in config:
        if not (name.startswith("_") and name.endswith("_")) and name not in options:
            raise not_an_option(config, str(name), options, given, where)


def config_key(config: DictConfig, where: str | None = None) -> str:
    """``where``, else ``config``'s place in the config it belongs to (``model``,
    ``components.gru_ae.model``, ``callbacks.x``...)."""
    return config._get_full_key(None) if where is None else where


def not_an_option(
    config: DictConfig, name: str, options: set[str], given: set[str], where: str | None = None
) -> ESAInputError:
    """``model.bogus: not an option of WindowPCADetector; did you mean ...?``: the config key
    and the closest options the target takes, or all of them but those in ``given``."""
    where = config_key(config, where)
    key = f"{where}.{name}" if where else name
    shown = sorted(options - given)
    close = difflib.get_close_matches(name, shown, n=3)
    hint = (f"; did you mean {' or '.join(close)}?" if close
            else f"; its options: {', '.join(shown)}" if shown else "")
    target = str(config.get("_target_", "")).rsplit(".", 1)[-1]
    return ESAInputError(f"{key}: not an option of {target}{hint}")


def accepted_options(config: DictConfig, where: str | None = None) -> set[str] | None:
    """The keyword options the class or function ``config._target_`` names takes: its
    ``__init__``'s and, where that passes ``**kwargs`` on, those of the classes it inherits
    from; None where it takes any option. One that cannot be imported or called is refused
    naming the key (``target_object``): ``where``, else ``config``'s place, then ``._target_``."""
    column = f"{config_key(config, where)}._target_"
    found = target_object(config.get("_target_", ""), column, "the target")
    is_class = isinstance(found, type)
    owners = [c for c in found.__mro__ if "__init__" in vars(c)] if is_class else [found]
    names: set[str] = set()
    for owner in owners:
        params = inspect.signature(vars(owner)["__init__"] if is_class else owner).parameters
        names |= {p.name for p in params.values()
                  if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"}
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return names
    return None


def print_config(cfg: DictConfig) -> None:
    """Log the composed config (``print_config=true``; it is always saved in ``.hydra/``) with
    the values the run uses (``${paths.output_dir}`` as the run's folder); as written where a
    value cannot be resolved (a mandatory ``???`` left unset)."""
    try:
        text = OmegaConf.to_yaml(cfg, resolve=True)
    except OmegaConfBaseException:
        text = OmegaConf.to_yaml(cfg, resolve=False)
    log.info("config:\n%s", text)


def _not_a_tip(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("\N{ELECTRIC LIGHT BULB} Tip")


def _said_by_rank_zero(record: logging.LogRecord) -> bool:
    """False for this project's lines below WARNING: every DDP rank reads the data and fits the
    post-processing alike, so another rank's would repeat rank 0's."""
    return record.levelno >= logging.WARNING or not record.name.startswith("esa_lightning")


def silence_uninformative_output() -> None:
    """Drop, at their source, messages a user of this project cannot act on: Lightning's
    advertisement for its cloud logger, and the deprecation warning that Lightning's own pytree
    code triggers in torch. Each of Lightning's messages is printed once, and logged: where the
    root logger has a handler (Hydra's console and log file), Lightning's own consoles go and
    its messages propagate to the root (``import lightning`` adds a console that printed every
    message a second time, as ``INFO: ...``; ``lightning.pytorch`` and ``lightning.fabric``
    imported before the root had a handler, as the settings' check does, keep theirs and
    propagate nothing: plain lines, missing from the log file). On a DDP rank other than 0,
    the project's INFO lines stay off the root's consoles (its log file keeps them): a 2-process
    run printed each of them twice (``_said_by_rank_zero``)."""
    import lightning  # noqa: F401 - adds the consoles removed below

    from esa_lightning.run_folder import is_launching_process

    logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_not_a_tip)
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    if logging.getLogger().handlers:
        for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
            own = logging.getLogger(name)
            for handler in list(own.handlers):
                if type(handler) is logging.StreamHandler:  # a console, not a file
                    own.removeHandler(handler)
            own.propagate = True
    if not is_launching_process():
        for handler in logging.getLogger().handlers:
            if type(handler) is logging.StreamHandler:  # a console, not a file
                handler.addFilter(_said_by_rank_zero)


def in_multirun() -> bool:
    """Whether this is a job of a ``-m`` sweep, whose ``optimized_metric`` the sweep reads (a
    ``sweep.py`` trial is a plain run: sweep.py reads its ``metrics.json`` and says itself what
    it lacks)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def optimized_metric_advice(metric: str, metrics: dict[str, float]) -> str | None:
    """None when the run's ``metrics`` hold ``metric`` (``optimized_metric``); else what to
    choose instead, read from the run's own keys: a sweep optimises only a validation (``val/``)
    metric, so only those are named, or, without any, that there is nothing to optimise."""
    if metric in metrics:
        return None
    head = (f"optimized_metric {metric} is not among this run's metrics (a range without a "
            "labeled event has none)")
    val = sorted(k for k in metrics if k.startswith("val/"))
    if not val:
        return (f"{head}: this run has no validation (val/) metric, so a sweep (which never "
                "optimises a test/ one) has nothing to optimise on this data")
    usual = [f"val/{name}" for name in ("EW_F_0.50", "AUC_PR", "forecast_MAE")]
    example = next((k for k in usual if k in val), val[0])
    return (f"{head}; choose one it has, e.g. optimized_metric={example} "
            f"(its validation metrics: {', '.join(val)})")


def warn_about_optimized_metric(cfg: DictConfig, metrics: dict[str, float]) -> None:
    """Warn (``optimized_metric_advice``) where a job of a ``-m`` sweep has metrics but not
    ``optimized_metric``; a plain run optimises nothing, and says nothing of it."""
    advice = optimized_metric_advice(str(cfg.optimized_metric), metrics)
    if metrics and advice and in_multirun():
        log.warning(advice)


def refuse_unusable_components(cfg: DictConfig, specs: Mapping[str, DictConfig]) -> None:
    """Before the data are read: the components' (``specs``: name -> spec) and the run's
    targets that cannot be imported (``refuse_unimportable_targets``), then a family that needs
    float64 set to train on Apple's MPS (``refuse_float64_on_mps``). A component without its
    datamodule, or with another kind, is refused first (``refuse_component_datamodules``)."""
    from esa_lightning.jobs.component_datamodules import refuse_component_datamodules

    if cfg.get("components"):
        refuse_component_datamodules(specs)
    refuse_unimportable_targets(cfg, specs.values())
    refuse_unknown_trainer_options(cfg)
    refuse_float64_on_mps(cfg, specs)


def refuse_unknown_trainer_options(cfg: DictConfig) -> None:
    """Before the data are read: an option the Trainer or a callback does not take
    (``+trainer.max_epoch=1``, ``+callbacks.model_checkpoint.monitr=x``, a component's own
    ``components.<name>.trainer.max_epoch``) is one line naming its key and the closest
    options, not Hydra's "unexpected keyword argument" block once the data were read."""
    trainer = cfg.get("trainer")
    if not isinstance(trainer, DictConfig) or not trainer.get("_target_"):
        return
    given = {"callbacks", "logger"}  # passed by make_trainer, not set by users
    refuse_unknown_options(trainer, given, where="trainer")
    options = accepted_options(trainer, "trainer")
    groups = [cfg.get("callbacks")]
    for name, spec in (cfg.get("components") or {}).items():
        own = spec.get("trainer")
        for key in own or ():
            if options is not None and key not in options:
                raise not_an_option(trainer, str(key), options, given,
                                    f"components.{name}.trainer")
        groups.append(spec.get("callbacks"))
    for group in groups:
        for entry in (group or {}).values():
            if isinstance(entry, DictConfig) and entry.get("_target_"):
                refuse_unknown_options(entry, set())


def refuse_float64_on_mps(cfg: DictConfig, specs: Mapping[str, Any]) -> None:
    """Refuse, before the data are read, a component whose family needs float64 (``specs``:
    name -> its ``model`` node and optional own ``trainer``) set to train on MPS: one line
    naming the component, the setting and ``trainer.accelerator=cpu``."""
    for name, spec in specs.items():
        own = (spec.get("trainer") or {}).get("accelerator")
        key = "trainer.accelerator" if own is None else f"components.{name}.trainer.accelerator"
        value = (cfg.get("trainer") or {}).get("accelerator", "auto") if own is None else own
        if str(value).lower() == "auto" or not picks_mps(value):
            continue
        model_class = detector_class(spec.model)
        if getattr(model_class, "needs_float64", False):
            raise ESAInputError(
                f"component {name} ({model_class.__name__}) needs float64, which Apple's MPS "
                f"cannot hold: {key}={accelerator_text(value)} trains it there; use {key}=cpu "
                "(or auto, which picks the cpu for it)"
            )
