"""Exact-reference heads of the channel ensemble (§4.6, §4.8), as post rules of the model.

- ``MetaHeads`` (``meta_heads``): per channel and external repetition, an sklearn
  ``LogisticRegression`` on the internal learners' probabilities of that external's eval2 rows
  (§4.6); its coef / intercept overwrite the surrogate's meta layer. It then sets each channel's
  CV score (ROC AUC of the channel probability on the final fold's held-out rows) into ``cv``.
- ``EventHead`` (``event_head``): the event-wise ``LogisticRegression`` on the group scores of
  the held-out training rows plus the validation rows (§4.8), and on the row novelty when the
  model has it; overwrites the event head.

Both store what they fit as the network's own tensors (a logistic regression is its coef and
intercept), so the fitted heads travel in ``state_dict`` and checkpoints with no pickle. Order
matters: the event head reads the refitted metas. They fit on rows taken from the datamodule's
full tensors, never on test-range rows; every DDP rank holds the full datamodule and fits the
same deterministic (lbfgs) regressions, so no collective is needed.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from esa_lightning.data.folds import both_classes
from esa_lightning.data.segment_datamodule import SegmentDataModule
from esa_lightning.data.transforms.segments import SPLIT_TRAIN, SPLIT_VAL
from esa_lightning.models.channel_ensemble.network import ChannelEnsemble
from esa_lightning.postprocessing.base import PostRule

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- shared fitting
def fit_logistic(x: np.ndarray, y: np.ndarray, c: float = 1.0) -> tuple[np.ndarray, float] | None:
    """(coef [n_inputs], intercept) of a logistic regression, or None with a single class."""
    y = np.asarray(y) > 0.5
    if not both_classes(y):
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
        for k in ("internal_logits", "channel_prob", "group_scores", "novelty")
    }


def fit_meta_heads(model: ChannelEnsemble, dm: SegmentDataModule, *, set_cv: bool = True) -> int:
    """Refit every (channel, external) meta layer by logistic regression on its eval2 rows;
    returns how many were fitted (the others, with one class only, keep their weights)."""
    dm.setup("fit")
    internal = torch.sigmoid(_forward_all(model, dm.X)["internal_logits"]).numpy()
    rows, y = meta_rows(dm), dm.y.numpy()
    fitted = 0
    with torch.no_grad():
        for c, e in np.ndindex(*model.meta_b.shape):
            # shared learners: one meta per external, fitted on the eval2 rows of every channel
            chans = range(internal.shape[0]) if model.share_learners else [c]
            x_meta = np.concatenate([internal[k, e][:, rows[k, e]].T for k in chans])
            y_meta = np.concatenate([y[k, rows[k, e]] for k in chans])
            res = fit_logistic(x_meta, y_meta)
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
    """Refit the event head on the group scores (and the row novelty, when the model has it) of
    ``event_rows``; False with one class only."""
    dm.setup("fit")
    out = _forward_all(model, dm.X)
    inputs = out["group_scores"].numpy()
    if model.novelty:
        inputs = np.concatenate([inputs, out["novelty"].numpy()[None, :]])
    rows = event_rows(dm)
    res = fit_logistic(inputs[:, rows].T, dm.y_event.numpy()[rows])
    if res is None:
        return False
    coef = res[0]
    with torch.no_grad():
        model.event_w.copy_(torch.as_tensor(coef[: model.n_groups], device=model.event_w.device))
        if model.novelty:
            model.novelty_w.fill_(float(coef[-1]))
        model.event_b.fill_(res[1])
    return True


def _ensemble_of(model: Any) -> ChannelEnsemble:
    net = getattr(model, "model", model)
    if not isinstance(net, ChannelEnsemble):
        raise TypeError("the ensemble head rules need a LitChannelEnsemble")
    return net


class MetaHeads(PostRule):
    """Refit the meta layers (and channel CV scores) by logistic regression after training."""

    kind = "meta_heads"
    single = "each refits the ensemble's same meta layers: the second would overwrite the first"

    def __init__(self, set_cv: bool = True) -> None:
        super().__init__()
        self.set_cv = bool(set_cv)

    def fit(self, model: Any, datamodule: Any) -> None:
        n = fit_meta_heads(_ensemble_of(model), datamodule, set_cv=self.set_cv)
        log.info("meta heads: %d logistic regressions fitted", n)


class EventHead(PostRule):
    """Refit the event head by logistic regression on group scores after training."""

    kind = "event_head"
    single = "each refits the ensemble's same event head: the second would overwrite the first"
    stage = 1

    def fit(self, model: Any, datamodule: Any) -> None:
        if not fit_event_head(_ensemble_of(model), datamodule):
            log.warning("event head: one class only on its rows, kept the trained head")
