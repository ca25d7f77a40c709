"""The contract every detector family implements, and what it hands back.

A detector family is a ``DetectorModule``: a LightningModule trained by ``train.py`` on the
datamodule it names, which then scores any mission row by row. Everything the runtime (training
job, chunked scoring, artifact, monitoring callbacks) reads from a model is declared here; a
family overrides what differs from the defaults. Its fitted post-processing (thresholds, gates,
heads) is a list of ``PostRule`` submodules, fitted after training and returned by
``configure_callbacks``, so a model can never be trained with another model's heads.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar, Protocol

import lightning as L
import numpy as np
import torch
from torch import nn

from esa_lightning.data.array_store import release_pages
from esa_lightning.data.datamodule import MissionDataModule
from esa_lightning.data.mission import Mission, mission_record
from esa_lightning.errors import ESAInputError
from esa_lightning.models.channel_alarms import (  # noqa: F401 - where they were imported from
    top_channel_alarm,
    top_channels_setting,
)
from esa_lightning.models.devices import float64_trainer_arguments
from esa_lightning.models.processes import (
    UnwrappedDDPStrategy,
    several_processes,
    started_by_another_launcher,
)
from esa_lightning.models.raised_by import SCORE
from esa_lightning.postprocessing.base import PostRule, build_rules, fit_rules
from esa_lightning.progress import progress

log = logging.getLogger("esa_lightning")


@dataclass
class RowScores:
    """Scores aligned with the rows of the mission they were computed on.

    score: float32 [T] anomaly score per row (higher is more anomalous).
    alarm: uint8 [T] 0/1 decision per row after the fitted threshold / heads.
    channel_scores: float32 [T, C] per-channel scores (channel order of the mission) or None.
    channel_alarm: uint8 [T, C] per-channel decisions or None.
    threshold: float32 [T] the threshold each row's ``score`` is held against (in the score's
        units), or None when the detector's decision is not one threshold on ``score``.
    gate_probability: float32 [T] the random-forest gate's probability that the threshold
        crossings covering a row are a true anomaly (the gate keeps an alarm above 0.5); NaN
        where nothing crossed the threshold; None without a fitted gate.
    raised_by: uint8 [T] the rules that alarmed each row (bits of ``models.raised_by``: the
        score's own rule, gap closing, a stuck channel, a forced alarm), or None.
    stuck_channels: bool [T, C] the channels the stuck-channel rule (``frozen``) found stuck on
        each row (the rule alarms those rows and names these channels there), or None without
        the rule; esa_full's combiner names them (``combiner_parts.combined_row_scores``).
        ``runtime.chunks.score_in_chunks`` keeps them on every row with
        ``keep_channel_scores="all"``, else on the stuck rows only (an ``AlarmedRows``).
    """

    score: np.ndarray
    alarm: np.ndarray
    channel_scores: np.ndarray | None = None
    channel_alarm: np.ndarray | None = None
    threshold: np.ndarray | None = None
    gate_probability: np.ndarray | None = None
    raised_by: np.ndarray | None = None
    stuck_channels: np.ndarray | None = None

    def rows(self, keep: slice) -> RowScores:
        """The same outputs for the rows ``keep`` only."""

        def cut(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[keep]

        return RowScores(*(cut(getattr(self, f.name)) for f in fields(self)))


class Scorer(Protocol):
    """What scores rows: a ``DetectorModule`` or the fitted artifact (``artifact.Detector``)."""

    def score_rows(self, mission: Mission) -> RowScores: ...

    @property
    def context_rows(self) -> int: ...

    @property
    def alignment_rows(self) -> int: ...


def score_piece(
    scorer: Scorer,
    mission: Mission,
    start: int,
    stop: int,
    context: int,
    alignment: int = 1,
    score: Callable[[Mission], RowScores] | None = None,
) -> RowScores:
    """``score`` (``scorer.score_rows`` unless given) of rows [start, stop) of ``mission``,
    computed with context."""
    lo, hi = context_start(start, context, alignment), min(len(mission.values), stop + context)
    rs = (score or scorer.score_rows)(mission.slice(lo, hi))
    return rs.rows(slice(start - lo, stop - lo))


def context_start(start: int, context: int, alignment: int = 1) -> int:
    """The first row ``score_piece`` reads for rows from ``start`` on: ``context`` rows before
    it, aligned down to a multiple of ``alignment``."""
    lo = max(0, start - context)
    return lo - lo % alignment


def piece_bounds(n_rows: int, chunk_rows: int) -> list[tuple[int, int]]:
    """[start, stop) pieces of at most ``chunk_rows`` rows covering ``n_rows`` (one if <= 0)."""
    if chunk_rows <= 0 or n_rows <= chunk_rows:
        return [(0, n_rows)]
    return [(s, min(n_rows, s + chunk_rows)) for s in range(0, n_rows, chunk_rows)]


def iter_pieces(
    scorer: Scorer,
    mission: Mission,
    bounds: list[tuple[int, int]],
    context: int | None = None,
    description: str = "scoring chunks",
    score: Callable[[Mission], RowScores] | None = None,
) -> Iterator[tuple[int, int, RowScores]]:
    """``(start, stop, scores)`` of each piece in ``bounds`` of a single-grid ``mission``, each
    scored with its ``context`` rows (``scorer.context_rows`` unless given) by ``score``
    (``scorer.score_rows`` unless given): the scores of scoring it whole (``runtime.chunks``).
    A progress bar when several."""
    context = int(scorer.context_rows) if context is None else int(context)
    alignment = int(scorer.alignment_rows)
    if len(bounds) == 1 and bounds[0] == (0, len(mission.values)):
        yield 0, len(mission.values), (score or scorer.score_rows)(mission)
        return
    n = len(mission.values)
    for start, stop in progress(bounds, description=description, total=len(bounds)):
        yield start, stop, score_piece(scorer, mission, start, stop, context, alignment, score)
        # a memory-mapped input's pages of this piece leave the resident set (array_store)
        rows = slice(max(0, start - context - alignment), min(n, stop + context))
        release_pages(mission.values[rows])
        release_pages(mission.telecommands[rows])


class DetectorModule(L.LightningModule, ABC):
    """A detector family: trains on ``datamodule_kind`` windows/segments/rows, scores rows.

    ``post_rules`` holds the fitted post-processing in the order it is fitted and applied; each
    rule is a submodule (its fitted numbers travel in ``state_dict``) and a Lightning callback
    (fitted in ``on_train_end`` on every rank, re-fitted by ``fit_post_processing`` when a
    resumed run skips training).
    """

    #: the ``conf/datamodule`` option (``DATAMODULE_KIND`` of a datamodule) this family trains on
    datamodule_kind: ClassVar[str]
    #: True when training reads the labels (a supervised family): training then says up front
    #: when the mission's labels are too few to learn from (``data.label_facts``)
    supervised: ClassVar[bool] = False
    #: hyper-parameters that set only speed or memory (a scoring batch, chunk rows, threads),
    #: never the fitted weights or the scores beyond floating point summation order: a resume
    #: may change them (``runtime.checkpoints.check_same_settings``). Names as ``hparams``
    #: holds them; the post rules declare their own (``runtime_settings``)
    RUNTIME_SETTINGS: ClassVar[frozenset[str]] = frozenset()
    #: whether the artifact keeps the component's last Lightning checkpoint (to resume or
    #: fine-tune with Lightning); False where it holds nothing more than ``weights.pt`` and
    #: ``save_extra`` already write and a fit without gradient steps has nothing to resume
    artifact_checkpoint: ClassVar[bool] = True
    #: the post rule classes the family applies: ``model.post_processing`` may name their kinds
    #: and no other (``postprocessing.base.build_rules``), whatever a process imported before
    POST_RULES: ClassVar[tuple[type[PostRule], ...]] = ()
    #: True when it trains or scores with float64 tensors, which Apple's MPS cannot hold
    needs_float64: ClassVar[bool] = False  # (models.devices: auto trains it on the CPU there)

    def __init__(self) -> None:
        super().__init__()
        self.post_rules = nn.ModuleDict()

    def build_post_rules(
        self, spec: Mapping[str, Mapping[str, Any] | None] | None, **context: Any
    ) -> nn.ModuleDict:
        """The rules of ``model.post_processing`` ``spec`` (``build_rules``): kinds of the
        family's ``POST_RULES`` only, a refusal naming the family; ``context``: what the
        rules need to know (``n_series``...)."""
        return build_rules(spec, takes=self.POST_RULES, model=type(self).__name__, **context)

    def runtime_settings(self) -> frozenset[str]:
        """The model's ``RUNTIME_SETTINGS`` and its post rules' (each as
        ``post_processing.<rule>.<setting>``), dotted as ``hparams`` nests them."""
        rules = {f"post_processing.{name}.{setting}"
                 for name, rule in self.post_rules.items() for setting in rule.RUNTIME_SETTINGS}
        return self.RUNTIME_SETTINGS | rules

    # -------------------------------------------------------------------- scoring
    @abstractmethod
    def score_rows(self, mission: Mission) -> RowScores:
        """Score every row of a single-grid ``mission`` (after fitting); never reads labels."""

    def provisional_scores(self, mission: Mission) -> RowScores:
        """``score_rows`` before the post-processing is fitted (monitoring during training)."""
        return self.score_rows(mission)

    def provisional_pieces(self, mission: Mission, chunk_rows: int = 0) -> Iterator[RowScores]:
        """``provisional_scores`` grid after grid (independent series in ``mission.series``
        order), each scored ``chunk_rows`` rows at a time with its context rows (``iter_pieces``;
        0: whole): the scores of scoring each grid whole. A fit that keeps only what it reads of
        each piece (its row alarms, its score) holds one piece's per-channel [T, C] outputs at a
        time over a multi-year range."""
        for grid in mission.grids().values():
            bounds = piece_bounds(len(grid.values), chunk_rows)
            pieces = iter_pieces(self, grid, bounds, description="provisional scores",
                                 score=self.provisional_scores)
            yield from (rs for _, _, rs in pieces)

    def provisional_alarm(self, mission: Mission, chunk_rows: int = 0) -> np.ndarray:
        """uint8 [T]: the row alarms of ``provisional_pieces``, nothing else of a piece kept."""
        alarms = [np.array(rs.alarm, dtype=np.uint8)
                  for rs in self.provisional_pieces(mission, chunk_rows)]
        return np.concatenate([np.zeros(0, dtype=np.uint8), *alarms])

    @property
    @abstractmethod
    def context_rows(self) -> int:
        """Rows on each side of a row that influence its result (chunked scoring adds them)."""

    @property
    def alignment_rows(self) -> int:
        """Chunk starts must be multiples of this for chunked results to equal whole ones."""
        return 1

    @property
    def is_calibrated(self) -> bool:
        """Whether the post-processing has been fitted (alarms are final)."""
        return all(rule.is_fitted for rule in self.post_rules.values())

    def label_free_metrics(self, mission: Mission) -> dict[str, float]:
        """Validation figures that need no labels (e.g. ``forecast_MAE``), unprefixed."""
        return {}

    def validation_units(self) -> tuple[list[nn.Module], np.ndarray | None]:
        """The networks early-stopped apart (``callbacks.SeriesBestWeights``) and their losses
        of the last validation epoch; a family without them refuses that callback."""
        raise ESAInputError(
            f"{type(self).__name__} has no per-network validation losses: use "
            "callbacks early_stopping + restore_best_weights, not series_best_weights",
            column="callbacks",
        )

    # ------------------------------------------------------------------- training
    def trainer_arguments(self, trainer_config: Mapping[str, Any]) -> dict[str, Any]:
        """Trainer settings this model needs on top of ``trainer_config`` (anomalib's
        ``trainer_arguments``), e.g. one epoch for a model fitted without gradient steps.

        A model with no trainable parameter is fitted in one process when several are asked
        for: DDP cannot wrap it, and its fit is one pass over the data with nothing to shard.
        Where their process group is already up (a component trained after a DDP one in
        ``esa_full``), or started by another launcher (torchrun, srun: each process runs the
        script and keeps its rank, rank 0 alone writing checkpoints), every process fits it on
        all the data (no distributed sampler), unwrapped (``UnwrappedDDPStrategy``), as one
        process would.
        """
        device = float64_trainer_arguments(self, trainer_config)  # the CPU, not MPS, for float64
        trainable = any(p.requires_grad for p in self.parameters())
        if trainable or not several_processes(trainer_config):
            return device
        name = type(self).__name__
        if torch.distributed.is_initialized() or started_by_another_launcher():
            log.info("%s has no gradient steps: fitted on every rank on all the data", name)
            strategy = {"_target_": f"{UnwrappedDDPStrategy.__module__}.UnwrappedDDPStrategy"}
            return {**device, "strategy": strategy, "use_distributed_sampler": False}
        log.info("%s has no gradient steps: fitted in one process", name)
        return {**device, "devices": 1, "num_nodes": 1, "strategy": "auto"}

    def set_preprocessing(self, datamodule: MissionDataModule) -> None:
        """Copy the datamodule's fitted preprocessing (scaler, kernels) into buffers."""

    def setup(self, stage: str) -> None:
        """Before fitting: check the datamodule is the one this family trains on and take its
        fitted preprocessing, so that scoring needs no datamodule afterwards."""
        dm = self.trainer.datamodule if self._trainer is not None else None
        if stage != "fit" or dm is None:
            return
        check_datamodule(type(self), dm)
        dm.setup(stage)
        self.set_preprocessing(dm)

    def configure_callbacks(self) -> list[L.Callback]:
        """The model's own post-processing, fitted at the end of training."""
        return list(self.post_rules.values())

    def fit_post_processing(self, datamodule: Any) -> None:
        """Fit every post rule on ``datamodule``'s training/validation data, in order."""
        fit_rules(self, self.post_rules.values(), datamodule)

    # ---------------------------------------------------------------- persistence
    def schema_problem(self, schema: Mapping[str, Any]) -> str | None:
        """What in the model's sizes disagrees with the ``schema`` an artifact records for it
        (its channels and telecommands), or None: an artifact is refused at load rather than
        scoring columns that are not there. The default reads the sizes the datamodules set
        (``dims``): ``n_channels`` of row and segment models, ``n_inputs`` and ``n_outputs``
        of window models (the value channels, then the telecommands unless ``inputs=values``);
        independent series hold some of the channels each. A family sized otherwise overrides
        it."""
        hp = self.hparams
        channels, commands = len(schema["channels"]), len(schema["telecommands"])
        multiseries = bool(schema.get("multiseries"))
        recorded = f"the schema records {channels} channel(s) and {commands} telecommand(s)"
        if "n_inputs" in hp and "n_outputs" in hp:
            values = hp.n_outputs
            wanted = values + (commands if hp.get("inputs") != "values" else 0)
            if values != channels and not (multiseries and 1 <= values <= channels):
                return f"n_outputs = {values}, but {recorded}"
            if hp.n_inputs != wanted:
                return f"n_inputs = {hp.n_inputs}, but {recorded}: {wanted} inputs"
        elif "n_channels" in hp:
            n = hp.n_channels
            if n != channels and not (multiseries and 1 <= n <= channels):
                return f"n_channels = {n}, but {recorded}"
        return None

    def save_extra(self, folder: Path) -> None:
        """Write fitted state that is not a tensor (sklearn heads) into the artifact folder."""
        for name, rule in self.post_rules.items():
            rule.save_extra(Path(folder), name)

    def load_extra(self, folder: Path) -> None:
        for name, rule in self.post_rules.items():
            rule.load_extra(Path(folder), name)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Post rules' non-tensor state (a fitted forest, as skops bytes) in checkpoints."""
        extra = {n: r.checkpoint_extra() for n, r in self.post_rules.items()}
        extra = {n: data for n, data in extra.items() if data is not None}
        if extra:
            checkpoint["post_rules_extra"] = extra
        mission = getattr(self.trainer.datamodule if self._trainer is not None else None,
                          "mission", None)
        if mission is not None:  # what a resume checks it continues on (runtime.checkpoints)
            checkpoint["esa_lightning_data"] = mission_record(mission)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """A post rule one side was built without: the model's (``align_rule_checkpoint``)."""
        from esa_lightning.postprocessing.base import align_rule_checkpoint
        align_rule_checkpoint(checkpoint, self)
        for name, data in checkpoint.get("post_rules_extra", {}).items():
            if name in self.post_rules:
                self.post_rules[name].restore_checkpoint_extra(data)


def check_datamodule(family: type[DetectorModule], datamodule: Any) -> None:
    """Refuse a datamodule other than the one ``family`` trains on, naming both."""
    kind = datamodule.DATAMODULE_KIND if isinstance(datamodule, MissionDataModule) else None
    if kind != family.datamodule_kind:
        raise ESAInputError(
            f"{family.__name__} trains on datamodule={family.datamodule_kind}, not {kind}",
            column="datamodule",
            value=kind,
        )


def series_position(
    names: list[str], mission: Mission, series: str | None = None, *, hint: bool = True
) -> int:
    """Which of a model's trained independent series ``names`` a single-grid ``mission`` is:
    ``series`` when given, else the series the mission records, its name or its one channel's
    name; 0 for a model trained without series. ``hint``: the error suggests ``series=NAME``
    (for models whose scoring takes it)."""
    if not names:
        return 0
    candidates = [series] if series is not None else []
    candidates += [mission.meta.get("series"), mission.name]
    if len(mission.channel_names) == 1:
        candidates.append(mission.channel_names[0])
    for c in candidates:
        if c is not None and str(c) in names:
            return names.index(str(c))
    raise ESAInputError(
        f"cannot tell which of the trained series {names[:5]}... this mission is"
        + ("; pass series=NAME" if hint else ""),
        path=mission.name,
    )


def concat_row_scores(parts: list[RowScores]) -> RowScores:
    """The ``RowScores`` of several grids one after another (a field missing from any part
    is missing from the whole)."""
    if len(parts) == 1:
        return parts[0]

    def cat(field: str) -> np.ndarray | None:
        values = [getattr(p, field) for p in parts]
        return None if any(v is None for v in values) else np.concatenate(values)

    return RowScores(*(cat(f.name) for f in fields(RowScores)))


class GridScoring:
    """``score_rows`` / ``provisional_scores`` of a window family calibrated by a fitted
    threshold (the GRU autoencoder, the window baselines): each grid of the mission is scored
    alone by the family's ``_score_grid(grid, series)``, and a multi-series mission gives its
    series' rows one after another, in ``mission.series`` order."""

    def score_rows(self, mission: Mission, series: str | None = None) -> RowScores:
        """Per-row score, 0/1 alarm and per-channel scores of ``mission`` (labels unused)."""
        if not self.is_calibrated:
            raise RuntimeError(
                "threshold not fitted: train the model (its post rules are fitted at the end of "
                "training) or call model.fit_post_processing(datamodule)"
            )
        return self._score(mission, series)

    def provisional_scores(self, mission: Mission) -> RowScores:
        """Scores before the threshold is fitted (no alarm from an unfitted threshold)."""
        return self._score(mission, None)

    def _score(self, mission: Mission, series: str | None) -> RowScores:
        grids = mission.grids().items()
        return concat_row_scores([self._score_grid(m, name or series) for name, m in grids])


def per_channel_row_scores(z: torch.Tensor, threshold: torch.Tensor | float) -> RowScores:
    """``RowScores`` of per-channel scores ``z`` [T, C] held against one threshold: a row's
    score is its largest channel score and alarms above the threshold; each channel alarms above
    it on its own (the per-channel baselines). A NaN in ``z`` (a NaN cell of data that did not
    go through the readers' repair) is no reading: its channel scores 0, as the window models
    read a NaN input as the median, so the row's score is its largest channel score among the
    channels that sent one (0 for a row of none); inf stays (a reading beyond float32)."""
    z = torch.where(torch.isnan(z), torch.zeros((), dtype=z.dtype, device=z.device), z)
    score = z.max(dim=1).values if z.shape[1] else z.new_zeros(len(z))
    alarm = (score > threshold).cpu().numpy().astype(np.uint8)
    return RowScores(
        score=score.cpu().numpy(),
        alarm=alarm,
        channel_scores=z.cpu().numpy(),
        channel_alarm=(z > threshold).cpu().numpy().astype(np.uint8),
        threshold=np.full(len(z), float(threshold), dtype=np.float32),
        raised_by=alarm * np.uint8(SCORE),
    )

