"""Exact-reference heads of the channel ensemble, and its tree-based original (§4.5-§4.8).

- ``MetaHeadCallback``: after training, per channel and external repetition, an sklearn
  ``LogisticRegression`` on the internal learners' probabilities of that external's eval2 rows
  (§4.6); its coef / intercept overwrite the surrogate's meta layer. It then sets each channel's
  CV score (ROC AUC of the channel probability on the final fold's held-out rows) into ``cv``.
- ``EventHeadCallback``: the event-wise ``LogisticRegression`` on the group scores of the
  held-out training rows plus the validation rows (§4.8); overwrites the event head.

Both store what they fit as the model's own tensors (a logistic regression is its coef and
intercept), so the fitted heads travel in ``state_dict`` and checkpoints with no pickle. Order
matters: pass ``[MetaHeadCallback(), EventHeadCallback()]`` (the event head reads the refitted
metas). They fit in ``on_train_end`` on rows taken from the datamodule's full tensors, never on
test-range rows; every DDP rank holds the full datamodule and fits the same deterministic
(lbfgs) regressions, so no collective is needed. A ``trainer.test(ckpt_path="best")`` reloads
older weights: save the final model after ``fit`` returns.

``GBDTChannelEnsemble`` is the tree-based original on the same rows, masks and features: one
``HistGradientBoostingClassifier`` per (channel, external, internal), the same meta and event
regressions, the hard group aggregation. It is fitted without gradient training, so it is NOT a
LightningModule: ``train.py`` should branch on it::

    if isinstance(model, GBDTChannelEnsemble):
        datamodule.setup("fit"); model.fit(datamodule); model.save(run_dir / "detector")
    else:
        trainer.fit(model, datamodule)

and ``predict.py`` loads it with ``GBDTChannelEnsemble.load(folder)``. Trees are saved with skops
listing the trusted types explicitly (``TRUSTED_TYPES``), arrays with ``np.savez``.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from esa_lightning.data.segment_datamodule import SegmentDataModule
from esa_lightning.data.transforms.segments import (
    SPLIT_TRAIN,
    SPLIT_VAL,
    featurise_values,
    pooled_spans,
)
from esa_lightning.errors import ESAInputError
from esa_lightning.io import atomic_path, write_json_atomic
from esa_lightning.models.base import RowScores
from esa_lightning.models.channel_ensemble.model import (
    ChannelEnsemble,
    feature_subset_masks,
    group_aggregate,
    rows_to_scores,
)

TRUSTED_TYPES = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]


# --------------------------------------------------------------------------- shared fitting
def fit_logistic(x: np.ndarray, y: np.ndarray, c: float = 1.0) -> tuple[np.ndarray, float] | None:
    """(coef [n_inputs], intercept) of a logistic regression, or None with a single class."""
    y = np.asarray(y) > 0.5
    if len(y) == 0 or y.all() or not y.any():
        return None
    lr = LogisticRegression(C=c, max_iter=1000).fit(np.asarray(x, dtype=np.float64), y)
    return lr.coef_[0].astype(np.float32), float(lr.intercept_[0])


def channel_cv_scores(channel_prob: np.ndarray, y: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """ROC AUC per channel on bool ``rows`` [C, R] (0.5 where a channel has one class only)."""
    out = np.full(len(channel_prob), 0.5, dtype=np.float32)
    for c in range(len(channel_prob)):
        yc = y[c, rows[c]] > 0.5
        if yc.any() and not yc.all():
            out[c] = roc_auc_score(yc, channel_prob[c, rows[c]])
    return out


def meta_rows(dm: SegmentDataModule) -> np.ndarray:
    """bool [C, E, R]: the eval2 rows of each (channel, external), training range only."""
    return dm.eval2_mask.numpy() & (dm.split == SPLIT_TRAIN)[None, None, :]


def cv_rows(dm: SegmentDataModule) -> np.ndarray:
    """bool [C, R]: each channel's held-out rows of the final fold, training range only."""
    return dm.eval1_mask.numpy() & (dm.split == SPLIT_TRAIN)[None, :]


def event_rows(dm: SegmentDataModule) -> np.ndarray:
    """bool [R]: rows where the event head fits: held out by every channel, or validation."""
    held_out = dm.event_rows.numpy() & (dm.split == SPLIT_TRAIN)
    return held_out | (dm.split == SPLIT_VAL)


@torch.no_grad()
def _forward_all(model: ChannelEnsemble, x: torch.Tensor, chunk: int = 4096):
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    parts = [model(x[:, s : s + chunk].to(device)) for s in range(0, x.shape[1], chunk)]
    model.train(was_training)
    return {
        k: torch.cat([getattr(p, k).float().cpu() for p in parts], dim=-1)
        for k in ("internal_logits", "channel_prob", "group_scores")
    }


def fit_meta_heads(model: ChannelEnsemble, dm: SegmentDataModule, *, set_cv: bool = True) -> int:
    """Refit every (channel, external) meta layer by logistic regression on its eval2 rows;
    returns how many were fitted (the others, with one class only, keep their weights)."""
    dm.setup("fit")
    internal = torch.sigmoid(_forward_all(model, dm.X)["internal_logits"]).numpy()
    rows, y = meta_rows(dm), dm.y.numpy()
    fitted = 0
    with torch.no_grad():
        for c in range(internal.shape[0]):
            for e in range(internal.shape[1]):
                res = fit_logistic(internal[c, e][:, rows[c, e]].T, y[c, rows[c, e]])
                if res is None:
                    continue
                model.meta_w[c, e] = torch.as_tensor(res[0], device=model.meta_w.device)
                model.meta_b[c, e] = res[1]
                fitted += 1
        if set_cv:
            prob = _forward_all(model, dm.X)["channel_prob"].numpy()
            cv = channel_cv_scores(prob, y, cv_rows(dm))
            model.cv.copy_(torch.as_tensor(cv, device=model.cv.device))
    return fitted


def fit_event_head(model: ChannelEnsemble, dm: SegmentDataModule) -> bool:
    """Refit the event head on the group scores of ``event_rows``; False with one class only."""
    dm.setup("fit")
    groups = _forward_all(model, dm.X)["group_scores"].numpy()
    rows = event_rows(dm)
    res = fit_logistic(groups[:, rows].T, dm.y_event.numpy()[rows])
    if res is None:
        return False
    with torch.no_grad():
        model.event_w.copy_(torch.as_tensor(res[0], device=model.event_w.device))
        model.event_b.fill_(res[1])
    return True


def _ensemble_of(pl_module: L.LightningModule) -> ChannelEnsemble:
    model = getattr(pl_module, "model", pl_module)
    if not isinstance(model, ChannelEnsemble):
        raise TypeError("the ensemble head callbacks need a LitChannelEnsemble")
    return model


class MetaHeadCallback(L.Callback):
    """Refit the meta layers (and channel CV scores) by logistic regression after training."""

    def __init__(self, set_cv: bool = True) -> None:
        self.set_cv = set_cv

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        n = fit_meta_heads(_ensemble_of(pl_module), trainer.datamodule, set_cv=self.set_cv)
        pl_module.print(f"meta heads: {n} logistic regressions fitted")


class EventHeadCallback(L.Callback):
    """Refit the event head by logistic regression on group scores after training."""

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not fit_event_head(_ensemble_of(pl_module), trainer.datamodule):
            pl_module.print("event head: one class only on its rows, kept the trained head")


# ------------------------------------------------------------------------ tree-based original
class GBDTChannelEnsemble:
    """The reference's tree-based channel ensemble on a ``SegmentDataModule``'s rows and masks.

    Internal learners are ``HistGradientBoostingClassifier`` per (channel, external, internal),
    fitted on the learner's own rows and feature subset (``feature_subset_masks`` with the same
    fraction / seed as the surrogate); metas and the event head are logistic regressions
    (``fit_logistic``); groups use the hard §4.7 formula with alpha = gamma = 1.5, beta = 0.3,
    delta = 0.05.
    """

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
        alarm_height: float = 0.5,
        alarm_buffer: int = 100,
        seed: int = 0,
        n_threads: int | None = None,
        **_ignored,
    ) -> None:
        self.config = dict(
            n_channels=n_channels,
            n_features=n_features,
            group_index=[int(g) for g in group_index],
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
            alarm_height=alarm_height,
            alarm_buffer=alarm_buffer,
            seed=seed,
            n_threads=n_threads,
        )
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

    def _fit(self, dm: SegmentDataModule) -> GBDTChannelEnsemble:
        dm.setup("fit")
        cfg = self.config
        x, y = dm.X.numpy(), dm.y.numpy()
        train = dm.train_mask.numpy() & (dm.split == SPLIT_TRAIN)
        kernels, lengths = dm.kernel_buffers()
        self.kernels, self.kernel_len = kernels, lengths
        self.feat_mean, self.feat_std = dm.feat_mean.copy(), dm.feat_std.copy()
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

    def score_rows(self, mission) -> RowScores:
        """Same contract as ``LitChannelEnsemble.score_rows``; never reads labels."""
        cfg = self.config
        names = cfg["channel_names"]
        if names is not None and list(mission.channel_names) != names:
            raise ESAInputError(
                "the mission's channels differ from the channels the model was trained on",
                column="channels",
                value=mission.name,
            )
        from esa_lightning.data.transforms.segments import unpad_kernels

        values = np.asarray(mission.values, dtype=np.float32)
        opts = {k: cfg[k] for k in ("window", "step", "pool", "pool_stride")}
        x = featurise_values(
            values,
            unpad_kernels(self.kernels, self.kernel_len),
            self.feat_mean,
            self.feat_std,
            n_kernels=cfg["n_kernels"],
            **opts,
        )
        internal = self.internal_prob(x)
        prob = self.channel_prob(internal)
        groups = self.group_scores(prob)
        event = 1.0 / (1.0 + np.exp(-(groups.T @ self.event_w + self.event_b)))
        spans = pooled_spans(
            len(values), cfg["window"], cfg["step"], cfg["pool"], cfg["pool_stride"]
        )
        return rows_to_scores(
            event, prob, spans, len(values), height=cfg["alarm_height"], buffer=cfg["alarm_buffer"]
        )

    # ---------------------------------------------------------------------- persistence
    def save(self, folder: str | Path) -> Path:
        """config.json + arrays.npz + trees.skops in ``folder`` (no pickle)."""
        import skops.io as sio

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        keys = sorted(self.trees)
        trees = [self.trees[k] for k in keys]
        with atomic_path(folder / "trees.skops") as tmp:
            sio.dump({"keys": [list(k) for k in keys], "trees": trees}, tmp)
        arrays = dict(
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
        with atomic_path(folder / "arrays.npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
        write_json_atomic(folder / "config.json", {"kind": "channel_ensemble_gbdt", **self.config})
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> GBDTChannelEnsemble:
        import skops.io as sio

        folder = Path(folder)
        try:
            config = json.loads((folder / "config.json").read_text())
            arrays = np.load(folder / "arrays.npz", allow_pickle=False)
            blob = sio.load(folder / "trees.skops", trusted=TRUSTED_TYPES)
        except (OSError, ValueError, KeyError) as err:
            raise ESAInputError(
                f"cannot read the GBDT channel ensemble: {err}", path=folder
            ) from err
        config.pop("kind", None)
        model = cls(**config)
        for name in ("meta_w", "meta_b", "cv", "event_w", "kernels", "kernel_len"):
            setattr(model, name, arrays[name])
        model.event_b = np.float32(arrays["event_b"])
        model.feat_mean, model.feat_std = arrays["feat_mean"], arrays["feat_std"]
        model.trees = {tuple(k): t for k, t in zip(blob["keys"], blob["trees"], strict=True)}
        return model
