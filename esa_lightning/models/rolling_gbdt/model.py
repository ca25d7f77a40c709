"""A plain supervised baseline: rolling statistics per channel, one gradient-boosted classifier.

Each channel is scaled with the median / IQR of its nominal training rows (buffers), then
``features.rolling_features`` gives every row its value, first difference and centred rolling
median, standard deviation, range and deviation from the median over ``windows`` rows. One
``HistGradientBoostingClassifier`` learns the mission's ``is_anomaly`` (anomalies and rare
events) from the training range: every anomalous row (at most half of ``max_rows``) and a seeded
uniform subsample of the others. Its probability is the row score; the ``f05_gap`` post rule
(``alarms.GapClosingF05``) picks the alarm threshold and a gap-closing width on the validation
range. A channel's score is how far its features lie from their nominal training values: the
largest, over its features, distance to the feature's median in units of the 99.9th percentile
of that distance on nominal training rows (``scaling.feature_spread``; above 1: beyond 99.9 % of
nominal rows). An alarmed row names its ``top_channels`` highest channels.

Fitted in one Lightning epoch without gradient steps (``trainer_arguments``) from the whole
mission of a ``WholeMissionDataModule`` (``datamodule=mission``). Independent series (NASA) are
scaled per series and featurised per series (no window crosses a series border), with one
classifier over all of them. The classifier is saved with skops and an explicit trusted-type list.
The Lightning checkpoint holds it too (a resumed run scores with it); the artifact leaves that
out (``artifact_checkpoint``), so that it holds the classifier once: with no gradient steps there
is nothing to resume or fine-tune from it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from esa_lightning.data.mission import Mission
from esa_lightning.data.safe_skops import (
    HIST_GRADIENT_BOOSTING_TYPES,
    load_head,
    refuse_other_feature_count,
)
from esa_lightning.errors import ESAInputError
from esa_lightning.io import atomic_path
from esa_lightning.models.base import (
    DetectorModule,
    RowScores,
    series_position,
    top_channel_alarm,
)
from esa_lightning.models.rolling_gbdt.alarms import GapClosingF05
from esa_lightning.models.rolling_gbdt.features import (
    feature_context,
    iter_feature_blocks,
    n_features,
    stat_block,
)
from esa_lightning.models.rolling_gbdt.scaling import (
    feature_spread,
    robust_scaling,
    training_rows,
)
from esa_lightning.postprocessing.base import plain_spec
from esa_lightning.postprocessing.gaps import check_int_list

log = logging.getLogger("esa_lightning")
CLASSIFIER_FILE = "classifier.skops"
CHECKPOINT_KEY = "rolling_gbdt_classifier"  # the classifier's skops bytes in checkpoints


class RollingGBDT(DetectorModule):
    """Rolling-statistics features per channel, one HistGradientBoosting classifier."""

    datamodule_kind = "mission"
    needs_float64 = True  # the float64 scaling buffers and threshold
    supervised = True
    #: OpenMP threads of the classifier (``_threads``)
    RUNTIME_SETTINGS = frozenset({"n_threads"})
    artifact_checkpoint = False  # its classifier, already in classifier.skops, once (docstring)
    POST_RULES = (GapClosingF05,)

    def __init__(
        self,
        n_channels: int,
        series: list[str] | None = None,
        *,
        windows: list[int] | tuple[int, ...] = (5, 25, 100, 400),
        max_rows: int = 200_000,
        max_iter: int = 100,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int = 20,
        l2_regularization: float = 0.0,
        top_channels: int = 3,
        seed: int = 0,
        n_threads: int | None = None,
        post_processing: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        windows = check_int_list(windows, "model.windows", 2)
        for key, value, low in (
            ("max_rows", max_rows, 2),
            ("max_iter", max_iter, 1),
            ("max_leaf_nodes", max_leaf_nodes, 2),
            ("min_samples_leaf", min_samples_leaf, 1),
            ("top_channels", top_channels, 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ESAInputError(
                    f"must be an integer >= {low}", column=f"model.{key}", value=value
                )
        if not float(learning_rate) > 0:
            raise ESAInputError("must be > 0", column="model.learning_rate", value=learning_rate)
        if not 0 <= float(l2_regularization) < math.inf:
            raise ESAInputError("must be a finite number >= 0", column="model.l2_regularization",
                                value=l2_regularization)
        series = [str(s) for s in (series or [])]
        self.save_hyperparameters(
            dict(
                n_channels=int(n_channels),
                series=series,
                windows=windows,
                max_rows=max_rows,
                max_iter=max_iter,
                learning_rate=float(learning_rate),
                max_leaf_nodes=max_leaf_nodes,
                min_samples_leaf=min_samples_leaf,
                l2_regularization=float(l2_regularization),
                top_channels=top_channels,
                seed=int(seed),
                n_threads=n_threads,
                post_processing=plain_spec(post_processing),
            )
        )
        self.post_rules = self.build_post_rules(self.hparams.post_processing)
        rules = list(self.post_rules.values())
        if len(rules) != 1:
            raise ESAInputError(
                f"needs exactly one rule of kind {GapClosingF05.kind}",
                column="model.post_processing",
                value=self.hparams.post_processing,
            )
        self.alarm_rule: GapClosingF05 = rules[0]
        n_series, width = max(1, len(series)), int(n_channels) * n_features(windows)
        self.register_buffer("center", torch.zeros(n_series, int(n_channels), dtype=torch.float64))
        self.register_buffer("scale", torch.ones(n_series, int(n_channels), dtype=torch.float64))
        self.register_buffer("feature_center", torch.zeros(width, dtype=torch.float64))
        self.register_buffer("feature_scale", torch.ones(width, dtype=torch.float64))
        self.classifier: HistGradientBoostingClassifier | None = None

    # ------------------------------------------------------------------------- fitting
    def _threads(self) -> threadpool_limits:
        """OpenMP threads of the classifier (``n_threads``; None: the library default)."""
        return threadpool_limits(limits=self.hparams.n_threads)

    def fit(self, mission: Mission) -> RollingGBDT:
        """Scaling, classifier and feature spread from the training range (labels included);
        reads neither the validation nor the test range."""
        grids = self._grids(mission)
        for s, grid in enumerate(grids):
            center, scale = robust_scaling(grid.train())
            self.center[s].copy_(torch.from_numpy(center))
            self.scale[s].copy_(torch.from_numpy(scale))
        labels = [grid.train().is_anomaly.astype(bool) for grid in grids]
        y_all = np.concatenate(labels) if labels else np.zeros(0, dtype=bool)
        if not y_all.any() or y_all.all():
            raise ESAInputError(
                "the training range needs both anomalous (anomaly or rare event) and other "
                f"rows to fit a supervised classifier; it has {int(y_all.sum())} anomalous "
                f"of {len(y_all)}",
                path=mission.name,
            )
        pick = training_rows(y_all, self.hparams.max_rows, self.hparams.seed)
        x, nominal = self._training_matrix(grids, pick, labels)
        y = y_all[pick]
        log.info(
            "rolling_gbdt: fitting on %d rows (%d anomalous) x %d features",
            len(y),
            int(y.sum()),
            x.shape[1],
        )
        hp = self.hparams
        classifier = HistGradientBoostingClassifier(
            max_iter=hp.max_iter,
            learning_rate=hp.learning_rate,
            max_leaf_nodes=hp.max_leaf_nodes,
            min_samples_leaf=hp.min_samples_leaf,
            l2_regularization=hp.l2_regularization,
            early_stopping=False,
            random_state=hp.seed,
        )
        with self._threads():
            self.classifier = classifier.fit(x, y)
        center, spread = feature_spread(
            x, np.flatnonzero(nominal) if nominal.any() else np.arange(len(x))
        )
        self.feature_center.copy_(torch.from_numpy(center))
        self.feature_scale.copy_(torch.from_numpy(spread))
        return self

    def _training_matrix(
        self, grids: list[Mission], pick: np.ndarray, labels: list[np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """float32 features of the picked training rows (indices into the grids' training
        ranges laid end to end) and whether each is a nominal row."""
        x = np.empty((len(pick), self.feature_scale.numel()), dtype=np.float32)
        nominal = np.empty(len(pick), dtype=bool)
        offset, filled = 0, 0
        for s, (grid, y) in enumerate(zip(grids, labels, strict=True)):
            train = grid.train()
            lo, hi = np.searchsorted(pick, [offset, offset + len(y)])
            rows = pick[lo:hi] - offset
            nominal[lo:hi] = train.row_labels[rows] == 0
            blocks = iter_feature_blocks(train.values, self.windows, *self.scaling(s))
            for start, stop, feats in blocks:
                a, b = np.searchsorted(rows, [start, stop])
                x[filled : filled + b - a] = feats[rows[a:b] - start]
                filled += b - a
            offset += len(y)
        return x, nominal

    # ---------------------------------------------------- the one-epoch Lightning fit
    def trainer_arguments(self, trainer_config: Mapping[str, Any]) -> dict[str, Any]:
        """No gradient steps: one epoch of one (ignored) batch; the fit runs at its start."""
        one_epoch = {"max_epochs": 1, "min_epochs": 1, "limit_train_batches": 1}
        return {**super().trainer_arguments(trainer_config), **one_epoch}

    def configure_optimizers(self) -> None:
        return None

    def on_train_epoch_start(self) -> None:
        self.fit(self.trainer.datamodule.mission)

    def training_step(self, batch: Any, batch_idx: int) -> None:
        return None

    # ------------------------------------------------------------------------ scoring
    @property
    def windows(self) -> list[int]:
        return list(self.hparams.windows)

    def _grids(self, mission: Mission) -> list[Mission]:
        grids = list(mission.grids().values())
        names = list(mission.grids())
        if mission.is_multiseries and [str(n) for n in names] != self.hparams.series:
            raise ESAInputError(
                f"series {names[:5]}... differ from the model's {self.hparams.series[:5]}...",
                path=mission.name,
            )
        for grid in grids:
            self._check_channels(grid)
        return grids

    def _check_channels(self, grid: Mission) -> None:
        if len(grid.channel_names) != self.hparams.n_channels:
            raise ESAInputError(
                f"{len(grid.channel_names)} channels, the model was built for "
                f"{self.hparams.n_channels}",
                path=grid.name,
            )

    def series_index(self, mission: Mission) -> int:
        """Which series' scaling applies to a single-grid ``mission`` (0 without series)."""
        return series_position(self.hparams.series, mission, hint=False)

    def scaling(self, series: int) -> tuple[np.ndarray, np.ndarray]:
        """float64 (median, IQR) per channel of series ``series`` (0 without series)."""
        return tuple(b[series].detach().cpu().numpy() for b in (self.center, self.scale))

    def row_probability(self, mission: Mission) -> np.ndarray:
        """float32 [T] anomaly probability of each row of a single-grid ``mission``."""
        return self._block_scores(mission, channels=False)[0]

    def _block_scores(
        self, mission: Mission, channels: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """(probabilities, float32 [T, C] channel scores when ``channels``), computed in
        bounded row blocks."""
        if self.classifier is None:
            raise ESAInputError("the rolling_gbdt classifier is not fitted", path=mission.name)
        self._check_channels(mission)
        n, c = len(mission.values), self.hparams.n_channels
        prob = np.zeros(n, dtype=np.float32)
        chan = np.zeros((n, c), dtype=np.float32) if channels else None
        center, spread = (
            b.detach().cpu().numpy() for b in (self.feature_center, self.feature_scale)
        )
        blocks = iter_feature_blocks(
            mission.values, self.windows, *self.scaling(self.series_index(mission))
        )
        with self._threads():
            for start, stop, feats in blocks:
                prob[start:stop] = self.classifier.predict_proba(feats)[:, 1]
                if chan is not None:
                    z = np.abs(feats - center) / spread
                    z = np.nan_to_num(z, nan=0.0).reshape(stop - start, c, -1)
                    chan[start:stop] = z.max(axis=2)
        return prob, chan

    @property
    def context_rows(self) -> int:
        """Half the longest window, plus the rows a gap may be closed across."""
        return feature_context(self.windows) + self.alarm_rule.context_rows

    @property
    def alignment_rows(self) -> int:
        """Chunks start on the grid of the rolling standard deviation's prefix sums."""
        return stat_block(self.windows)

    @torch.no_grad()
    def score_rows(self, mission: Mission) -> RowScores:
        """Probability per row, alarms of the fitted threshold and gap closing; never reads
        labels."""
        prob, chan = self._block_scores(mission, channels=True)
        alarm = self.alarm_rule.alarms(prob)
        return RowScores(
            score=prob,
            alarm=alarm,
            channel_scores=chan,
            channel_alarm=top_channel_alarm(alarm, chan, self.hparams.top_channels),
            threshold=np.full(len(prob), float(self.alarm_rule.threshold), dtype=np.float32),
            raised_by=self.alarm_rule.raised_by(prob, alarm),
        )

    # ---------------------------------------------------------------------- persistence
    def save_extra(self, folder: Path) -> None:
        """The classifier as ``classifier.skops`` (no pickle)."""
        import skops.io as sio

        super().save_extra(folder)
        if self.classifier is None:
            return
        with atomic_path(Path(folder) / CLASSIFIER_FILE) as tmp:
            sio.dump(self.classifier, tmp)

    def load_extra(self, folder: Path) -> None:
        super().load_extra(folder)
        path = Path(folder) / CLASSIFIER_FILE
        try:
            data = path.read_bytes()
        except OSError as err:
            raise ESAInputError(
                f"cannot read the rolling_gbdt classifier: {err.strerror or err}", path=path
            ) from None
        try:
            self.classifier = _load_classifier(data, path)
        except ESAInputError as err:
            raise ESAInputError(
                f"cannot read the rolling_gbdt classifier: {err.reason}", path=path
            ) from None
        self._check_classifier(path)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """The classifier as skops bytes, so a resumed run needs no refit."""
        import skops.io as sio

        super().on_save_checkpoint(checkpoint)
        if self.classifier is not None:
            checkpoint[CHECKPOINT_KEY] = sio.dumps(self.classifier)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        if CHECKPOINT_KEY in checkpoint:
            self.classifier = _load_classifier(checkpoint[CHECKPOINT_KEY])
            self._check_classifier("checkpoint")

    def _check_classifier(self, source: str | Path) -> None:
        """Refuse a classifier fitted on another feature count (another model's)."""
        refuse_other_feature_count(
            self.classifier, self.feature_center.numel(), source, "the classifier",
            "this model's feature rows",
        )


def _load_classifier(
    data: bytes, source: str | Path = "checkpoint"
) -> HistGradientBoostingClassifier:
    """The classifier skops ``data`` holds, of exactly the types it is made of."""
    return load_head(data, source, HIST_GRADIENT_BOOSTING_TYPES, HistGradientBoostingClassifier)
