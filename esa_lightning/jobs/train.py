"""``train(cfg)``: compose → instantiate → fit → evaluate → save; returns the optimised metric.

Several devices (``trainer.devices=2 trainer.strategy=ddp``, ``trainer.num_nodes``): Lightning
re-runs this script once per extra process, into the same run folder. The gradient steps see
their shard of the training windows (the DistributedSampler); everything else runs on the FULL
mission in every process: the post-training heads (threshold, random forest, meta / event
heads) are deterministic fits on identical weights and identical data, so every rank fits the
same numbers with no collective (nothing to gather, no rank can skip a collective). The combiner,
the metrics over the whole series, the artifact, ``metrics.json`` and the report are computed and
written once, on global rank 0; the other ranks return ``None``.

Resume: ``ckpt_path=last hydra.run.dir=<the run>`` restarts every component from its
``checkpoints/<component>/last.ckpt`` (a component that had not started yet starts afresh); the
checkpoint is read without running code and checked against the model first
(``runtime.checkpoints``). A checkpoint taken after the last epoch makes Lightning skip ``fit``
entirely, ``on_train_end`` included: the best weights are then restored and the model's post
rules fitted here, by the same code (``WeightRestorer.on_train_end``,
``DetectorModule.fit_post_processing``).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, NamedTuple

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from esa_lightning.callbacks import CompactModelSummary, WeightRestorer
from esa_lightning.data.datamodule import intersect_ranges
from esa_lightning.data.mission import Mission
from esa_lightning.data.selection import require_training_rows
from esa_lightning.errors import ESAInputError
from esa_lightning.install import command, search_command
from esa_lightning.io import remove_stale_temporaries, write_json_atomic
from esa_lightning.jobs.common import (
    detector_class,
    instantiate_checked,
    instantiate_group,
    keyed_refusals,
    mission_from_config,
    print_config,
    refuse_unknown_options,
    refuse_unusable_components,
    scored_mission,
    silence_uninformative_output,
    unscored_reason,
    warn_about_optimized_metric,
)
from esa_lightning.jobs.component_config import (
    component_callbacks,
    component_key,
    component_specs,
    component_trainer_config,
    warn_about_labels,
)
from esa_lightning.jobs.resolved_settings import check_interpolated_settings
from esa_lightning.jobs.run_guard import earlier_outputs, refuse_earlier_run
from esa_lightning.jobs.run_logs import log_final_metrics, print_summary, run_loggers
from esa_lightning.jobs.sweep import hydra_task_overrides, refuse_multidevice_multirun
from esa_lightning.models.base import DetectorModule, check_datamodule
from esa_lightning.run_folder import (
    is_launching_process,
    lock_run_folder,
    make_run_folder,
    removed_if_refused,
)
from esa_lightning.runtime.calibration import validation_scores
from esa_lightning.runtime.checkpoints import (
    check_resume_checkpoint,
    checkpoint_dir_of,
    fit_from,
    refuse_one_checkpoint_for_several,
    resolve_ckpt_path,
)
from esa_lightning.runtime.evaluation import ScoredRange, report_for, score_range
from esa_lightning.runtime.random_state import RandomState, random_state, set_random_state
from esa_lightning.settings import refuse_shadowed_trainer_keys

log = logging.getLogger("esa_lightning")


def is_global_zero() -> bool:
    """Global rank 0 (set by Lightning at the first fit; read from the environment before)."""
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


class _TrainEndSeen(L.Callback):
    """Records whether Lightning ran ``on_train_end`` (it does not when resuming a finished fit)."""

    def __init__(self) -> None:
        self.seen = False

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seen = True


def evaluate(
    model: Any, mission: Any, parts: dict[str, Any], chunk_rows: int = 262_144,
    scored: dict[str, ScoredRange | None] | None = None,
) -> dict[str, float]:
    """Full ESA metric suite of ``model`` on each named range (``val``, ``test``...).

    Single-grid ranges are scored ``chunk_rows`` rows at a time without keeping per-channel
    scores (the metrics read the per-channel alarms only): memory stays bounded by the chunk.
    ``scored``: ranges already scored so (``calibration.validation_scores``; None: not yet).
    """
    metrics: dict[str, float] = {}
    for prefix, part in parts.items():
        reason = unscored_reason(part)
        if reason:
            log.debug("%s: not scored (%s)", prefix, reason)  # the summary says it
            continue
        done = (scored or {}).get(prefix)
        if done is None:
            done = score_range(model, part, chunk_rows, keep_channel_scores="none", within=mission)
        metrics.update(report_for(done, prefix))
    return metrics


def label_free_metrics(components: dict[str, DetectorModule], mission: Any) -> dict[str, float]:
    """``val/<name>`` (``val/<component>/<name>`` with several components) of the components'
    label-free validation figures, e.g. a forecaster's ``forecast_MAE``."""
    out = {}
    for component, model in components.items():
        for name, value in model.label_free_metrics(mission).items():
            out[f"val/{name}" if len(components) == 1 else f"val/{component}/{name}"] = value
    return out


def make_trainer(
    trainer_cfg: DictConfig, callbacks: list[Any], loggers: list[Any], key: str = "trainer"
) -> L.Trainer:
    """The Lightning Trainer of ``trainer_cfg``; settings Lightning refuses (a GPU where none is
    visible, more devices than there are, an unknown strategy) are one ``ESAInputError`` naming
    them under ``key`` (``trainer``, or ``components.<name>.trainer``)."""
    from hydra.errors import InstantiationException
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    try:
        return instantiate(trainer_cfg, callbacks=callbacks, logger=loggers or False)
    except InstantiationException as exc:
        cause = exc.__cause__
        if not isinstance(cause, MisconfigurationException | ValueError):
            raise
        shown = " ".join(
            f"{key}.{k}={trainer_cfg.get(k)}"
            for k in ("accelerator", "devices", "num_nodes", "strategy")
            if k in trainer_cfg
        )
        raise ESAInputError(f"{shown}: refused by Lightning: {cause}") from None


def make_datamodule(spec: DictConfig, mission: Any) -> Any:
    """The component's datamodule on ``mission`` (a Mission cannot pass through OmegaConf: it
    is bound after instantiation, so an option it does not take is refused first)."""
    refuse_unknown_options(spec.datamodule, {"mission"})
    with keyed_refusals(spec.datamodule):  # under its key (components.<name>.datamodule)
        build = instantiate_checked(spec.datamodule, _partial_=True, _convert_="all")
        return build(mission=mission)


def make_callbacks(cfg: DictConfig, spec: DictConfig, name: str) -> list[Any]:
    """Component ``name``'s callbacks (``component_callbacks``); a setting one refuses is an
    ``ESAInputError`` naming its key (``callbacks.<entry>``, ``components.<name>.callbacks.<entry>``
    for a component's own)."""
    own = spec.get("callbacks") or {}  # a component's own entries (esa_full's early stopping)
    return instantiate_group(
        component_callbacks(cfg, spec),
        lambda entry: component_key(cfg, name, "callbacks") if entry in own else "callbacks",
    )


def check_later_component(cfg: DictConfig, spec: DictConfig, name: str, datamodule: Any) -> None:
    """Refuse a later component's model, callback or trainer settings (a value its model
    refuses, an early stopping ``mode``, a GPU where there is none) before any component trains
    (they are built after the earlier fits). The trial objects are dropped, the random state
    the model drew from put back, the trainer's "GPU available" lines not printed."""
    state = random_state()
    try:
        make_model(spec, datamodule)
    finally:
        set_random_state(state)
    make_callbacks(cfg, spec, name)
    quiet = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    level = quiet.level
    quiet.setLevel(logging.WARNING)
    try:
        key = component_key(cfg, name, "trainer")
        make_trainer(component_trainer_config(cfg, spec), [], [], key)
    finally:
        quiet.setLevel(level)


def make_model(spec: DictConfig, datamodule: Any) -> DetectorModule:
    """The component's model for ``datamodule``: a setting it refuses (a datamodule of another
    kind, a value out of its range) is an ``ESAInputError`` naming its key (``keyed_refusals``)."""
    with keyed_refusals(spec.model):
        model_class = detector_class(spec.model)
        check_datamodule(model_class, datamodule)  # before instantiating it with wrong dims
        return instantiate_checked(spec.model, **datamodule.dims, _convert_="all")


class Prepared(NamedTuple):
    """A component ready to fit (``prepare_component``)."""

    model: DetectorModule
    trainer: L.Trainer
    datamodule: Any
    ckpt_path: str | None  # the checkpoint it resumes from
    train_end: _TrainEndSeen


def prepare_component(
    name: str, spec: DictConfig, cfg: DictConfig, mission: Any, output_dir: Path,
    datamodule: Any = None,
) -> Prepared:
    """Instantiate one component's model, callbacks, loggers and trainer (its own checkpoints
    and log folder) and find and check the checkpoint it resumes from: a setting any of them
    refuses, or a checkpoint it cannot resume from, is refused before it fits. ``datamodule``:
    the component's, already built (``_read_and_check``), else built here."""
    from lightning.pytorch.callbacks import (
        LearningRateMonitor,
        ModelCheckpoint,
        ModelSummary,
        ProgressBar,
    )
    if datamodule is None:
        datamodule = make_datamodule(spec, mission)
    model = make_model(spec, datamodule)
    callbacks = make_callbacks(cfg, spec, name)
    checkpoint_dir = checkpoint_dir_of(cfg, output_dir, name)
    for cb in callbacks:
        if isinstance(cb, ModelCheckpoint):
            cb.dirpath = str(checkpoint_dir)
    loggers = run_loggers(cfg, name)
    trainer_cfg = component_trainer_config(cfg, spec)
    if not trainer_cfg.get("enable_progress_bar", True):  # Lightning refuses a bar it may not show
        callbacks = [cb for cb in callbacks if not isinstance(cb, ProgressBar)]
    if not loggers:  # a learning-rate monitor without a logger is refused by Lightning
        callbacks = [cb for cb in callbacks if not isinstance(cb, LearningRateMonitor)]
    trainer_cfg = OmegaConf.merge(trainer_cfg, model.trainer_arguments(trainer_cfg))
    if trainer_cfg.get("enable_model_summary", True) and not any(
        isinstance(cb, ModelSummary) for cb in callbacks
    ):  # one line instead of Lightning's table (Lightning then adds none of its own)
        callbacks.append(CompactModelSummary())
        trainer_cfg.enable_model_summary = False
    train_end = _TrainEndSeen()
    key = component_key(cfg, name, "trainer")
    # the random state travels in its checkpoints: a resumed run trains as the uninterrupted one
    trainer = make_trainer(trainer_cfg, [*callbacks, train_end, RandomState()], loggers, key)
    ckpt_path = resolve_ckpt_path(cfg.ckpt_path, checkpoint_dir)
    if ckpt_path is not None:  # read without running code, checked against the model
        check_resume_checkpoint(ckpt_path, model, datamodule, component_key(cfg, name, "model"),
                                component_key(cfg, name, "datamodule"))
    return Prepared(model, trainer, datamodule, ckpt_path, train_end)


def fit_component(name: str, ready: Prepared) -> tuple[DetectorModule, L.Trainer]:
    """Fit one prepared component; the model's post-processing is fitted at the end of
    training (its ``configure_callbacks``)."""
    model, trainer = ready.model, ready.trainer
    log.info("fitting %s (%s)", name, type(model).__name__)
    # its checkpoint was checked by prepare_component (against the model's settings too)
    fit_from(trainer, model, ready.datamodule, ready.ckpt_path)
    if not ready.train_end.seen:  # resumed after its last epoch: Lightning skipped on_train_end
        log.info("%s: training had finished; restoring weights, fitting post-processing", name)
        for cb in trainer.callbacks:
            if isinstance(cb, WeightRestorer):
                cb.on_train_end(trainer, model)
        model.fit_post_processing(trainer.datamodule)
    return model, trainer


def train(cfg: DictConfig) -> float | None:
    """Train the configured detector; return ``cfg.optimized_metric`` (for sweeps).

    The launching process holds the run folder (``lock_run_folder``): a second run into it stops
    with one line. The DDP processes Lightning starts share the folder and take no lock."""
    output_dir = make_run_folder(cfg.paths.output_dir)
    # the values interpolations resolve to (``+x=-1 trainer.max_epochs=${x}``, ``seed=${x}``,
    # ``ckpt_path=${nope}``) are checked as literal ones are, before anything reads them
    with removed_if_refused(output_dir, keep=bool(cfg.get("debug_errors", False)),
                            settles=False):
        check_interpolated_settings(cfg)
    silence_uninformative_output()
    if cfg.get("optuna") is not None:  # sweep.py removes it from its trials
        log.warning("hparams_search only defines a search space for %s (docs/sweeps.md); %s "
                    "runs one job with the base settings", search_command(), command("train"))
    launching = is_launching_process()
    with lock_run_folder(output_dir) if launching else contextlib.nullcontext():
        if launching:  # checked before Hydra wrote here too (run_guard.RefuseEarlierRun)
            refuse_earlier_run(output_dir, cfg.get("ckpt_path"))
        return _train(cfg, output_dir)


def _train(cfg: DictConfig, output_dir: Path) -> float | None:
    if is_global_zero():  # DDP processes started by Lightning share this folder
        remove_stale_temporaries(output_dir)
        if cfg.get("print_config", False):
            print_config(cfg)
    L.seed_everything(cfg.seed, workers=True)
    components: dict[str, DetectorModule] = {}
    trainers = []
    # refused before a component wrote a checkpoint (a mission or column it cannot read, a
    # setting, a checkpoint it cannot resume from, a datamodule's setup in the first fit), a run
    # leaves no folder it made (its log, TensorBoard's first file); each component is prepared
    # after the earlier fits (their models drawing from the seeded generator in the same order)
    debug = bool(cfg.get("debug_errors", False))
    with removed_if_refused(output_dir, keep=debug,
                            kept_if=lambda folder: "checkpoints/" in earlier_outputs(folder)):
        mission, combiner, built = _read_and_check(cfg)
        for name, spec in component_specs(cfg).items():
            ready = prepare_component(name, spec, cfg, mission, output_dir, built.get(name))
            components[name], trainer = fit_component(name, ready)
            trainers.append(trainer)
    datamodules = [trainer.datamodule for trainer in trainers]
    features = {n: list(dm.feature_names) for n, dm in zip(components, datamodules, strict=True)}

    metrics: dict[str, float] = {}
    if trainers and is_global_zero():  # once, on the whole series (module docstring)
        for model in components.values():
            model.eval()
        if combiner is not None:
            fit_range = mission.fit_range()
            # the rows whose labels no component's training read
            label_free = [dm.label_free_ranges() for dm in datamodules]
            ranges = intersect_ranges(label_free, len(fit_range.values))
            # the components whose training read no label at all
            unsupervised = [n for n, dm in zip(components, datamodules, strict=True)
                            if dm.label_fit_end() == 0]
            combiner.fit(components, fit_range, ranges=ranges, label_free_components=unsupervised)
        refuse_detector_that_cannot_alarm(components, mission.val())
        detector = _build_detector(components, combiner, mission, cfg)
        detector.schema["features"] = features
        detector.checkpoints = {
            name: checkpoint_dir_of(cfg, output_dir, name) / "last.ckpt" for name in components
        }
        chunk_rows = int(cfg.get("chunk_rows", 262_144))
        # scored once, for the metrics and the nominal reference (None: each scores its own)
        val = validation_scores(detector, mission, chunk_rows)
        record_for_api(detector, mission, chunk_rows, val)
        parts = {"val": mission.val()}
        if cfg.test:
            parts["test"] = mission.test()
        metrics = evaluate(detector, mission, parts, chunk_rows, {"val": val})
        metrics.update(label_free_metrics(components, mission))
        log_final_metrics(cfg, trainers, metrics)
        write_json_atomic(output_dir / "metrics.json", metrics)
        detector.save(output_dir / "detector")
        unscored = {p: r for p, part in parts.items() if (r := unscored_reason(part))}
        print_summary(metrics, unscored, output_dir, components)
    warn_about_optimized_metric(cfg, metrics)
    return metrics.get(cfg.optimized_metric)


def _read_and_check(cfg: DictConfig) -> tuple[Mission, Any, dict[str, Any]]:
    """The mission, the combiner (None without one) and the components' datamodules (built to
    check them: empty for a single model), once everything that can be checked before any
    training is: the data, the training rows and the components' options."""
    refuse_multidevice_multirun(cfg.trainer)
    refuse_shadowed_trainer_keys(cfg, hydra_task_overrides())  # Hydra's flags skip it before
    refuse_one_checkpoint_for_several(cfg.ckpt_path, list(component_specs(cfg)))
    refuse_unusable_components(cfg, component_specs(cfg))  # before the data
    mission = scored_mission(mission_from_config(cfg.data), cfg)  # metrics.label_channels
    log.info("mission: %s", mission.summary())
    require_training_rows(mission, cfg.data)
    warn_about_labels(cfg, mission)
    # built before any training: a bad combiner option is refused now, not after every fit
    combiner = instantiate_checked(cfg.combiner, _convert_="all") if cfg.get("combiner") else None
    datamodules = {}
    if cfg.get("components"):  # a component that cannot train is refused before any fit
        for k, (name, spec) in enumerate(component_specs(cfg).items()):
            datamodules[name] = datamodule = make_datamodule(spec, mission)
            if hasattr(datamodule, "check_training_rows"):
                datamodule.check_training_rows(f"components.{name}.datamodule")
            refuse_unknown_options(spec.model, set(datamodule.dims))  # a misspelled key
            if k:  # the first component's own model and trainer are built next (``_train``)
                check_later_component(cfg, spec, name, datamodule)
    return mission, combiner, datamodules


def refuse_detector_that_cannot_alarm(
    components: dict[str, DetectorModule], val: Mission | None = None
) -> None:
    """A fitted threshold that is NaN or inf (fitted on no rows) alarms never: refuse to write
    such a detector, naming the component, the buffer and, given the validation range ``val``,
    why it had no rows: an empty range, or one labeled anomalous throughout (no nominal row)."""
    import torch

    for name, model in components.items():
        for key, value in model.state_dict().items():
            if key.rsplit(".", 1)[-1] != "threshold" or not value.is_floating_point():
                continue
            if not bool(torch.isfinite(value).all()):
                raise ESAInputError(
                    f"component {name}: the fitted {key} is {value.flatten()[:4].tolist()}: "
                    f"this detector could never alarm ({_why_no_rows(val)}); no detector or "
                    "metrics.json was written (the run folder keeps the fit's checkpoints)",
                )


def _why_no_rows(val: Mission | None) -> str:
    """Why a threshold fitted on the validation range ``val`` may have had no rows."""
    if val is None or val.is_multiseries:
        return "was its validation range empty, or labeled anomalous throughout?"
    if len(val.values) == 0:
        return "the validation range is empty"
    if val.is_anomaly.all():
        return (f"all {len(val.values)} rows of the validation range are labeled anomalous: "
                "no nominal row to fit it on")
    return "it was fitted on no usable rows"


def _build_detector(
    components: dict[str, Any], combiner: Any, mission: Any, cfg: DictConfig
) -> Any:
    from esa_lightning.artifact import Detector, mission_info, mission_schema

    return Detector(
        components=components,
        schema=mission_schema(mission),
        combiner=combiner,
        config_yaml=OmegaConf.to_yaml(cfg, resolve=True),
        info={"experiment": cfg.get("experiment_name"), **mission_info(mission)},
    )


def record_for_api(
    detector: Any, mission: Any, chunk_rows: int, val: ScoredRange | None = None
) -> None:
    """What ``Detector.predict(df)`` needs beyond the model: the reader's preprocessing (with
    the channel table and ranges) and the nominal reference scores of the confidence
    (read from ``val``, the validation range already scored, when given)."""
    from esa_lightning.data.preprocessing import PREPROCESSING_KEY, record_input
    from esa_lightning.postprocessing.confidence import CALIBRATION_KEY
    from esa_lightning.runtime.calibration import calibration_record

    detector.schema[PREPROCESSING_KEY] = record_input(mission)
    detector.info[CALIBRATION_KEY] = calibration_record(
        detector, mission, chunk_rows, val_scores=None if val is None else val.scores
    )
