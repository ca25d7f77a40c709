"""The tree-based original of the channel ensemble, as a ``DetectorModule`` fitted without
gradient steps (as the robust z-score model is): one ``HistGradientBoostingClassifier`` per
(channel, external, internal) on the same rows, masks and features as the surrogate, logistic
metas and event head (``heads.fit_logistic``), the hard group aggregation of §4.7.

Lightning runs one epoch (``trainer_arguments``): the trees are fitted at its start on the
datamodule's tensors; training steps do nothing; validation logs the same ``val/loss`` as the
surrogate. Trees are saved with skops and load as exactly their own types (``safe_skops``),
arrays with ``np.savez`` (``save_extra``). The Lightning checkpoint holds them too (a resumed
run scores with them); the artifact leaves it out (``artifact_checkpoint``), so that it holds
the trees once: with no gradient steps there is nothing to resume or fine-tune from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import threadpool_limits

from esa_lightning.data.safe_pickle import refuse_zip_bomb
from esa_lightning.data.safe_skops import (
    HIST_GRADIENT_BOOSTING_TYPES,
    load_head,
    refuse_other_feature_count,
)
from esa_lightning.data.segment_datamodule import SegmentDataModule
from esa_lightning.data.transforms.segments import SPLIT_TRAIN, kernel_len_problem
from esa_lightning.errors import ESAInputError
from esa_lightning.io import atomic_path
from esa_lightning.models.base import DetectorModule, RowScores, top_channels_setting
from esa_lightning.models.channel_ensemble.feature_rows import FeatureRows
from esa_lightning.models.channel_ensemble.heads import (
    channel_cv_scores,
    cv_rows,
    event_rows,
    fit_logistic,
    meta_rows,
)
from esa_lightning.models.channel_ensemble.model import (
    featurise_mission,
    log_validation_bce,
    peak_rule,
    rows_to_scores,
    validation_bce_sums,
    with_stuck_channels,
)
from esa_lightning.models.channel_ensemble.network import (
    feature_subset_masks,
    group_aggregate,
    group_index_setting,
)
from esa_lightning.postprocessing.base import fitted_rule, plain_spec
from esa_lightning.postprocessing.frozen import FrozenValues
from esa_lightning.postprocessing.peaks import PeakAlarm

#: the checkpoint entry holding the fitted trees and arrays
CHECKPOINT_KEY = "gbdt_channel_ensemble"


class GBDTChannelEnsemble(FeatureRows, DetectorModule):
    """The reference's tree-based channel ensemble on a ``SegmentDataModule``'s rows and masks.

    Internal learners are ``HistGradientBoostingClassifier`` per (channel, external, internal),
    fitted on the learner's own rows and feature subset (``feature_subset_masks`` with the same
    fraction / seed as the surrogate); metas and the event head are logistic regressions
    (``fit_logistic``); groups use the hard §4.7 formula with alpha = gamma = 1.5, beta = 0.3,
    delta = 0.05.
    """

    datamodule_kind = "segments"
    supervised = True  # its trees learn the training rows' labels, as the surrogate's learners
    #: OpenMP threads of its trees (``_threads``)
    RUNTIME_SETTINGS = frozenset({"n_threads"})
    artifact_checkpoint = False  # its trees, already in trees.skops, once (module docstring)
    #: its metas and event head are fitted with its trees: the surrogate's head rules refit a
    #: network it does not have; the surrogate's stuck-channel rule applies alike (opt-in here)
    POST_RULES = (PeakAlarm, FrozenValues)

    def __init__(
        self,
        n_channels: int,
        n_features: int,
        group_index: list[int],
        *,
        channel_names: list[str] | None = None,
        n_external: int = 3,
        n_internal: int = 5,
        feature_fraction: float = 0.6,
        max_iter: int = 100,
        learning_rate: float = 0.1,
        window: int = 50,
        step: int = 10,
        pool: int = 200,
        pool_stride: int = 20,
        n_kernels: int = 10,
        max_kernel_len: int = 40,
        seed: int = 0,
        n_threads: int | None = None,
        top_channels: int = 3,
        post_processing: Mapping[str, Any] | None = None,
        **_ignored: Any,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        # window, step, pool, pool_stride checked (else an error naming no file once scoring
        # began); train_rows, feature_rows (in weights.pt): FeatureRows
        self.register_feature_rows(dict(window=window, step=step, pool=pool,
                                        pool_stride=pool_stride))
        self.config = dict(
            n_channels=n_channels,
            n_features=n_features,
            group_index=group_index_setting(group_index, n_channels),
            channel_names=None if channel_names is None else list(channel_names),
            n_external=n_external,
            n_internal=n_internal,
            feature_fraction=feature_fraction,
            max_iter=max_iter,
            learning_rate=learning_rate,
            window=window,
            step=step,
            pool=pool,
            pool_stride=pool_stride,
            n_kernels=n_kernels,
            max_kernel_len=max_kernel_len,
            seed=seed,
            n_threads=n_threads,
            top_channels=top_channels_setting(top_channels),
            post_processing=plain_spec(post_processing),
        )
        self.save_hyperparameters(self.config)
        # one grid: one series; the stuck-channel rule's value columns are the channels
        self.post_rules = self.build_post_rules(self.config["post_processing"], n_series=1,
                                                n_outputs=int(n_channels))
        self.alarm_rule = peak_rule(self.post_rules)
        self.feature_mask = feature_subset_masks(
            n_channels, n_external, n_internal, n_features, feature_fraction, seed
        )
        self.trees: dict[tuple[int, int, int], HistGradientBoostingClassifier | float] = {}
        c, e = n_channels, n_external
        self.meta_w = np.full((c, e, n_internal), 4.0 / n_internal, dtype=np.float32)
        self.meta_b = np.full((c, e), -2.0, dtype=np.float32)
        self.cv = np.ones(c, dtype=np.float32)
        self.event_w = np.ones(int(max(group_index)) + 1, dtype=np.float32)
        self.event_b = np.float32(-1.0)

    # ------------------------------------------------------------------------- fitting
    def _threads(self) -> threadpool_limits:
        """OpenMP threads of the trees (``n_threads``; None = the library default). Many small
        fits on a busy machine run far faster with 1 thread than with spinning OpenMP teams."""
        return threadpool_limits(limits=self.config["n_threads"])

    def fit(self, dm: SegmentDataModule) -> GBDTChannelEnsemble:
        """Fit trees, metas, CV scores and the event head; reads no test-range row."""
        with self._threads():
            return self._fit(dm)

    # ---------------------------------------------------- the one-epoch Lightning fit
    def trainer_arguments(self, trainer_config: Mapping[str, Any]) -> dict[str, Any]:
        """No gradient steps: one epoch of one (ignored) batch; the trees fit at its start."""
        one_epoch = {"max_epochs": 1, "min_epochs": 1, "limit_train_batches": 1}
        return {**super().trainer_arguments(trainer_config), **one_epoch}

    def configure_optimizers(self) -> None:
        return None

    def on_train_epoch_start(self) -> None:
        self.fit(self.trainer.datamodule)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        return None

    def on_validation_epoch_start(self) -> None:
        self._val_sums = torch.zeros(2, 2, device=self.device)  # validation_bce_sums

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """The surrogate's validation sums (event and channel BCE), so monitors work alike."""
        if not self.trees:
            return
        x = batch["x"].cpu().numpy()
        prob = self.channel_prob(self.internal_prob(x))
        groups = self.group_scores(prob)
        logit = groups.T @ self.event_w + self.event_b
        to_t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.float32)  # noqa: E731
        channel_logit = to_t(np.log(prob.clip(1e-6, 1 - 1e-6) / (1 - prob.clip(1e-6, 1 - 1e-6))))
        y_event, y = batch["y_event"].float().cpu(), batch["y"].float().cpu()
        sums = validation_bce_sums(to_t(logit), y_event, channel_logit, y)
        self._val_sums += sums.to(self._val_sums.device)

    def on_validation_epoch_end(self) -> None:
        """The surrogate's ``val/loss`` and its parts over every process's rows; nothing before
        the trees are fitted (Lightning's sanity check), on every process alike."""
        if self.trees:
            log_validation_bce(self, self._val_sums)

    def _fit(self, dm: SegmentDataModule) -> GBDTChannelEnsemble:
        dm.setup("fit")
        cfg = self.config
        x, y = dm.X.numpy(), dm.y.numpy()
        train = dm.train_mask.numpy() & (dm.split == SPLIT_TRAIN)
        kernels, lengths = dm.kernel_buffers()
        self.kernels, self.kernel_len = kernels, lengths
        self.feat_mean, self.feat_std = dm.feat_mean.copy(), dm.feat_std.copy()
        self.record_feature_rows(dm.mission)
        for c, e, i in np.ndindex(*self.feature_mask.shape[:3]):
            rows = train[c, e, i]
            yc = y[c, rows] > 0.5
            if yc.all() or not yc.any():
                self.trees[c, e, i] = float(yc.mean()) if len(yc) else 0.0
                continue
            tree = HistGradientBoostingClassifier(
                max_iter=cfg["max_iter"],
                learning_rate=cfg["learning_rate"],
                random_state=cfg["seed"],
            )
            self.trees[c, e, i] = tree.fit(x[c][rows][:, self.feature_mask[c, e, i]], yc)

        internal = self.internal_prob(x)
        rows = meta_rows(dm)
        for c, e in np.ndindex(*rows.shape[:2]):
            res = fit_logistic(internal[c, e][:, rows[c, e]].T, y[c, rows[c, e]])
            if res is not None:
                self.meta_w[c, e], self.meta_b[c, e] = res
        self.cv = channel_cv_scores(self.channel_prob(internal), y, cv_rows(dm))
        groups = self.group_scores(self.channel_prob(internal))
        ev = event_rows(dm)
        res = fit_logistic(groups[:, ev].T, dm.y_event.numpy()[ev])
        if res is not None:
            self.event_w, self.event_b = res[0], np.float32(res[1])
        return self

    def fitted_state_problem(self) -> str | None:
        """A pooled row or its stride longer than the rows training featurised
        (``feature_rows_problem``; ``artifact.fitted``), or None."""
        return self.feature_rows_problem(self.config)

    # ------------------------------------------------------------------------ inference
    def internal_prob(self, x: np.ndarray) -> np.ndarray:
        """x [C, R, F] → internal probabilities [C, E, I, R]."""
        with self._threads():
            return self._internal_prob(x)

    def _internal_prob(self, x: np.ndarray) -> np.ndarray:
        c_n, e_n, i_n, _ = self.feature_mask.shape
        out = np.zeros((c_n, e_n, i_n, x.shape[1]), dtype=np.float32)
        for c, e, i in np.ndindex(c_n, e_n, i_n):
            tree = self.trees[c, e, i]
            if isinstance(tree, float):
                out[c, e, i] = tree
            else:
                out[c, e, i] = tree.predict_proba(x[c][:, self.feature_mask[c, e, i]])[:, 1]
        return out

    def channel_prob(self, internal: np.ndarray) -> np.ndarray:
        meta = np.einsum("ceir,cei->cer", internal, self.meta_w) + self.meta_b[..., None]
        return (1.0 / (1.0 + np.exp(-meta))).mean(axis=1)

    def group_scores(self, channel_prob: np.ndarray) -> np.ndarray:
        gi = torch.as_tensor(self.config["group_index"])
        return group_aggregate(
            torch.as_tensor(channel_prob, dtype=torch.float64),
            gi,
            int(gi.max()) + 1,
            torch.as_tensor(self.cv, dtype=torch.float64),
            *(torch.tensor(v, dtype=torch.float64) for v in (1.5, 1.5, 0.3, 0.05)),
            hard=True,
        ).numpy()

    @property
    def alignment_rows(self) -> int:
        """Chunks must start on this multiple of rows so their pooled rows match the whole's."""
        return int(self.config["step"] * self.config["pool_stride"])

    @property
    def context_rows(self) -> int:
        """Rows on each side that influence a row: two pooled spans plus the alarm buffer, or
        the fitted stuck-channel rule's, if longer (as the surrogate's)."""
        cfg = self.config
        span = (cfg["pool"] - 1) * cfg["step"] + cfg["window"]
        frozen = 0 if self.frozen_rule is None else self.frozen_rule.context_rows
        return int(max(2 * span + self.alarm_rule.context_rows + self.alignment_rows, frozen))

    @property
    def frozen_rule(self) -> FrozenValues | None:
        """The fitted stuck-channel rule (``post_processing.frozen``, opt-in), if any."""
        return fitted_rule(self.post_rules.values(), FrozenValues)

    def series_index(self, mission, series: str | None = None) -> int:  # noqa: ANN001
        """0: one shared grid (the series of its post rules' buffers)."""
        return 0

    def score_rows(self, mission) -> RowScores:  # noqa: ANN001
        """Same contract as ``LitChannelEnsemble.score_rows``; never reads labels."""
        cfg = self.config
        x, spans = featurise_mission(
            mission, cfg, self.kernels, self.kernel_len, self.feat_mean, self.feat_std
        )
        internal = self.internal_prob(x)
        prob = self.channel_prob(internal)
        groups = self.group_scores(prob)
        event = 1.0 / (1.0 + np.exp(-(groups.T @ self.event_w + self.event_b)))
        scores = rows_to_scores(
            event, prob, spans, len(mission.values), self.alarm_rule, cfg["top_channels"]
        )
        return with_stuck_channels(scores, self.frozen_rule, mission)

    # ---------------------------------------------------------------------- persistence
    def _blobs(self) -> tuple[bytes, bytes]:
        """(trees as skops bytes, the fitted arrays as ``np.savez`` bytes): no pickle."""
        import io

        import skops.io as sio

        keys = sorted(self.trees)
        trees = sio.dumps({"keys": [list(k) for k in keys], "trees": [self.trees[k] for k in keys]})
        buf = io.BytesIO()
        np.savez(
            buf,
            meta_w=self.meta_w,
            meta_b=self.meta_b,
            cv=self.cv,
            event_w=self.event_w,
            event_b=np.asarray(self.event_b),
            kernels=self.kernels,
            kernel_len=self.kernel_len,
            feat_mean=self.feat_mean,
            feat_std=self.feat_std,
        )
        return trees, buf.getvalue()

    def _restore(self, trees_data: bytes, arrays_data: bytes, source: Path | str) -> None:
        """Take the fitted state ``_blobs`` wrote (read from ``source``: the artifact folder or
        the checkpoint), or refuse it."""
        import io

        head = source / "trees.skops" if isinstance(source, Path) else source
        npz = source / "arrays.npz" if isinstance(source, Path) else source
        try:
            refuse_zip_bomb(arrays_data, npz)  # numpy decompresses an array whole
            arrays = np.load(io.BytesIO(arrays_data), allow_pickle=False)
            blob = load_head(trees_data, head, HIST_GRADIENT_BOOSTING_TYPES, dict)
            trees = dict(zip(map(tuple, blob["keys"]), blob["trees"], strict=True))
            kinds = (HistGradientBoostingClassifier, float)
            if not all(isinstance(t, kinds) for t in trees.values()):
                raise ESAInputError("holds other objects than trees", path=head)
            self._check_trees(trees, head)
            self._check_arrays(arrays, npz)
            for name in ("meta_w", "meta_b", "cv", "event_w", "kernels", "kernel_len"):
                setattr(self, name, arrays[name])
            self.event_b = np.float32(arrays["event_b"])
            self.feat_mean, self.feat_std = arrays["feat_mean"], arrays["feat_std"]
        except ESAInputError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ESAInputError(
                f"cannot read the GBDT channel ensemble: {err}", path=source
            ) from None
        self.trees = trees

    def _check_trees(self, trees: dict, source: Path | str) -> None:
        """Refuse trees of another model: other learners than this model's, or a learner fitted
        on another feature count than its feature subset."""
        learners = set(np.ndindex(*self.feature_mask.shape[:3]))
        if set(trees) != learners:
            raise ESAInputError(
                f"holds {len(trees)} learners, this model has {len(learners)} (channel, "
                "external, internal): it belongs to another model; restore it or retrain",
                path=source,
            )
        for key, tree in trees.items():
            refuse_other_feature_count(
                tree, int(self.feature_mask[key].sum()), source, f"the tree {key}",
                "its feature subset's columns",
            )

    def _check_arrays(self, arrays: Mapping[str, np.ndarray], source: Path | str) -> None:
        """Refuse fitted arrays of another model: an array of another shape than this model's
        settings give it (it would end in a numpy broadcast error while scoring), or kernel
        lengths training never writes (``kernel_len_problem``: it would score other kernels)."""
        cfg = self.config
        c, e, i = self.feature_mask.shape[:3]
        k, f = (cfg["n_kernels"], cfg["max_kernel_len"]), (c, cfg["n_features"])
        shapes = dict(
            meta_w=(c, e, i), meta_b=(c, e), cv=(c,), event_w=(max(cfg["group_index"]) + 1,),
            event_b=(), kernels=(c, *k), kernel_len=(c, k[0]), feat_mean=f, feat_std=f,
        )
        for name, shape in shapes.items():
            got = arrays[name]
            if got.shape != shape or not np.issubdtype(got.dtype, np.number):
                raise ESAInputError(
                    f"the array {name} is {got.dtype} of shape {got.shape}, this model's is "
                    f"numbers of shape {shape}: it belongs to another model; restore it or "
                    "retrain",
                    path=source,
                )
        width = min(cfg["max_kernel_len"], cfg["window"])
        if problem := kernel_len_problem(arrays["kernel_len"], width):
            raise ESAInputError(
                f"the array kernel_len {problem}; restore it or retrain", path=source
            )

    def save_extra(self, folder: Path) -> None:
        """trees.skops + arrays.npz in ``folder`` (no pickle)."""
        super().save_extra(folder)
        folder = Path(folder)
        trees, arrays = self._blobs()
        for name, data in (("trees.skops", trees), ("arrays.npz", arrays)):
            with atomic_path(folder / name) as tmp:
                Path(tmp).write_bytes(data)

    def load_extra(self, folder: Path) -> None:
        super().load_extra(folder)
        folder = Path(folder)
        try:
            trees = (folder / "trees.skops").read_bytes()
            arrays = (folder / "arrays.npz").read_bytes()
        except OSError as err:
            raise ESAInputError(
                f"cannot read the GBDT channel ensemble: {err.strerror or err}", path=folder
            ) from None
        self._restore(trees, arrays, folder)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """The trees and fitted arrays (as bytes) too: a run resumed after its one epoch skips
        the fit and scores with what the checkpoint holds."""
        super().on_save_checkpoint(checkpoint)
        if self.trees:
            trees, arrays = self._blobs()
            checkpoint[CHECKPOINT_KEY] = {"trees": trees, "arrays": arrays}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        state = checkpoint.get(CHECKPOINT_KEY)
        if state is not None:
            self._restore(state["trees"], state["arrays"], "checkpoint")
