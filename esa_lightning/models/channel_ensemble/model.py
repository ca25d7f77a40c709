"""Differentiable surrogate of the hierarchical channel ensemble (reference pipeline A, §4).

``ChannelEnsemble`` runs every level for all C channels at once, on pooled rows x [C, R, F]:

1. internal learners: E_ext × E_int small MLPs per channel, stored as batched weight tensors
   [C, E_ext, E_int, ...] and applied with ``einsum``; each sees a fixed random feature subset
   (a buffer mask, seeded) and is trained only on its own rows (fold masks as loss weights).
2. meta layer per (channel, external): logistic combination of its internals' probabilities
   (the reference's logistic regression on the internal probabilities, §4.6).
3. channel probability: mean over externals of the metas' probabilities.
4. group aggregation of §4.7 with learnable alpha, gamma, beta, delta, via scatter ops (no loop
   over channels or groups); ``hard=True`` gives exactly the reference formula.
5. event head: logistic regression on the group scores → event probability per row.

Stacking semantics: each level reads the *detached* output of the level below, so a level's loss
trains only that level (internal learners get gradient only from their own rows, as the
reference's out-of-fold stacking requires). Forward values are unaffected by the detaching.

``LitChannelEnsemble`` trains it on batches of pooled rows of a ``SegmentDataModule``; fitted
preprocessing (shapelet kernels, scaler statistics) lives in buffers so checkpoints are complete.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from esa_lightning.data.mission import Mission
from esa_lightning.errors import ESAInputError
from esa_lightning.models.base import RowScores
from esa_lightning.postprocessing.peaks import peaks_to_alarm, spread_rows_to_samples


@dataclass
class EnsembleOutput:
    """internal_logits [C, E_ext, E_int, R], meta_logits [C, E_ext, R], channel_prob [C, R],
    group_scores [G, R], event_logit [R], event_prob [R]."""

    internal_logits: torch.Tensor
    meta_logits: torch.Tensor
    channel_prob: torch.Tensor
    group_scores: torch.Tensor
    event_logit: torch.Tensor
    event_prob: torch.Tensor


def feature_subset_masks(
    n_channels: int, n_external: int, n_internal: int, n_features: int, fraction: float, seed: int
) -> np.ndarray:
    """bool [C, E_ext, E_int, F]: the fixed random feature subset of every internal learner."""
    rng = np.random.default_rng(seed)
    k = max(1, min(n_features, round(fraction * n_features)))
    scores = rng.random((n_channels, n_external, n_internal, n_features))
    order = np.argsort(scores, axis=-1)[..., :k]
    mask = np.zeros_like(scores, dtype=bool)
    np.put_along_axis(mask, order, True, axis=-1)
    return mask


def group_aggregate(
    prob: torch.Tensor,
    group_index: torch.Tensor,
    n_groups: int,
    cv: torch.Tensor,
    alpha: torch.Tensor,
    gamma: torch.Tensor,
    beta: torch.Tensor,
    delta: torch.Tensor,
    *,
    hard: bool = False,
    sharpness: float = 50.0,
    temperature: float = 0.02,
) -> torch.Tensor:
    """Group scores [G, R] from channel probabilities prob [C, R] (§4.7).

    w_c = (cv_c + 1e-6)^alpha; P_adj = min(P + delta·ind(P > 0.5), 1) with ind = sigmoid(k(P-0.5))
    (the step function when ``hard``); F = P_adj^gamma; contrib = w·F; group score =
    clip(smax + beta·(Σ contrib − smax), 1e-6, 1), smax = the group's max contrib (``hard``) or
    its smooth max ``temperature · logsumexp(contrib / temperature)``. Groups are reduced with
    scatter ops: no Python loop over channels or groups.
    """
    w = (cv + 1e-6).pow(alpha)  # [C]
    if hard:
        ind = (prob > 0.5).to(prob.dtype)
    else:
        ind = torch.sigmoid(sharpness * (prob - 0.5))
    p_adj = torch.clamp(prob + delta * ind, max=1.0).clamp_min(0.0)
    contrib = w[:, None] * p_adj.pow(gamma)  # [C, R]
    n_rows = prob.shape[1]
    idx = group_index[:, None].expand(-1, n_rows)
    gmax = torch.full((n_groups, n_rows), -torch.inf, dtype=prob.dtype, device=prob.device)
    gmax = gmax.scatter_reduce(0, idx, contrib, reduce="amax", include_self=True)
    total = torch.zeros((n_groups, n_rows), dtype=prob.dtype, device=prob.device)
    total = total.index_add(0, group_index, contrib)
    if hard:
        smax = gmax
    else:
        ref = gmax.detach()
        e = torch.exp((contrib - ref.index_select(0, group_index)) / temperature)
        s = torch.zeros_like(total).index_add(0, group_index, e)
        smax = ref + temperature * torch.log(s)
    empty = torch.isinf(gmax)  # a group with no channel
    score = torch.clamp(smax + beta * (total - smax), 1e-6, 1.0)
    return torch.where(empty, torch.full_like(score, 1e-6), score)


class ChannelEnsemble(nn.Module):
    """All levels of the channel ensemble for C channels; see the module docstring."""

    def __init__(
        self,
        n_channels: int,
        n_features: int,
        group_index: list[int],
        *,
        n_external: int = 3,
        n_internal: int = 5,
        hidden: int = 16,
        feature_fraction: float = 0.6,
        seed: int = 0,
        hard: bool = False,
        sharpness: float = 50.0,
        temperature: float = 0.02,
    ) -> None:
        super().__init__()
        if len(group_index) != n_channels:
            raise ESAInputError(
                f"group_index has {len(group_index)} entries for {n_channels} channels",
                column="group_index",
            )
        c, e, i, f, h = n_channels, n_external, n_internal, n_features, hidden
        self.n_groups = int(max(group_index)) + 1 if len(group_index) else 0
        self.hard, self.sharpness, self.temperature = hard, sharpness, temperature
        gen = torch.Generator().manual_seed(seed)

        def init(*shape: int, fan_in: int) -> nn.Parameter:
            bound = 1.0 / math.sqrt(fan_in)
            return nn.Parameter((torch.rand(*shape, generator=gen) * 2 - 1) * bound)

        mask = feature_subset_masks(c, e, i, f, feature_fraction, seed)
        self.register_buffer("feature_mask", torch.from_numpy(mask).float())
        fan = max(1, int(mask.sum(-1).max()))
        self.w1 = init(c, e, i, f, h, fan_in=fan)
        self.b1 = init(c, e, i, h, fan_in=fan)
        self.w2 = init(c, e, i, h, fan_in=h)
        self.b2 = nn.Parameter(torch.zeros(c, e, i))
        # meta: logistic regression on the internal probabilities, starts as their mean logit
        self.meta_w = nn.Parameter(torch.full((c, e, i), 4.0 / i))
        self.meta_b = nn.Parameter(torch.full((c, e), -2.0))
        self.register_buffer("group_index", torch.as_tensor(group_index, dtype=torch.long))
        self.register_buffer("cv", torch.ones(c))
        self.alpha = nn.Parameter(torch.tensor(1.5))
        self.gamma = nn.Parameter(torch.tensor(1.5))
        self.beta = nn.Parameter(torch.tensor(0.3))
        self.delta = nn.Parameter(torch.tensor(0.05))
        self.event_w = nn.Parameter(torch.ones(self.n_groups))
        self.event_b = nn.Parameter(torch.tensor(-1.0))

    def internal_logits(self, x: torch.Tensor) -> torch.Tensor:
        """x [C, R, F] → logits [C, E_ext, E_int, R] of every internal learner."""
        w1 = self.w1 * self.feature_mask[..., None]
        hid = torch.einsum("crf,ceifh->ceirh", x, w1) + self.b1[:, :, :, None, :]
        return torch.einsum("ceirh,ceih->ceir", F.relu(hid), self.w2) + self.b2[..., None]

    def meta_logits(self, internal_logits: torch.Tensor) -> torch.Tensor:
        """[C, E_ext, E_int, R] → [C, E_ext, R]: logistic combination of internal probabilities."""
        p = torch.sigmoid(internal_logits.detach())
        return torch.einsum("ceir,cei->cer", p, self.meta_w) + self.meta_b[..., None]

    def aggregation_params(self) -> dict[str, torch.Tensor]:
        """alpha, gamma, beta, delta kept in their valid ranges."""
        return dict(
            alpha=self.alpha.clamp(0.0, 10.0),
            gamma=self.gamma.clamp(0.05, 10.0),
            beta=self.beta.clamp(0.0, 1.0),
            delta=self.delta.clamp(0.0, 1.0),
        )

    def group_scores(self, channel_prob: torch.Tensor, hard: bool | None = None) -> torch.Tensor:
        return group_aggregate(
            channel_prob,
            self.group_index,
            self.n_groups,
            self.cv,
            **self.aggregation_params(),
            hard=self.hard if hard is None else hard,
            sharpness=self.sharpness,
            temperature=self.temperature,
        )

    def forward(self, x: torch.Tensor) -> EnsembleOutput:
        internal = self.internal_logits(x)
        meta = self.meta_logits(internal)
        channel_prob = torch.sigmoid(meta).mean(dim=1)  # [C, R]
        groups = self.group_scores(channel_prob.detach())
        event_logit = torch.einsum("gr,g->r", groups, self.event_w) + self.event_b
        return EnsembleOutput(
            internal_logits=internal,
            meta_logits=meta,
            channel_prob=channel_prob,
            group_scores=groups,
            event_logit=event_logit,
            event_prob=torch.sigmoid(event_logit),
        )


# --------------------------------------------------------------------------------------- loss
def weighted_bce(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, pos_weight=None):
    """Mean BCE over the rows with weight > 0 (0 when there are none)."""
    loss = F.binary_cross_entropy_with_logits(
        logits, target, weight=weight, reduction="sum", pos_weight=pos_weight
    )
    return loss / weight.sum().clamp_min(1.0)


def soft_event_f05(
    prob: torch.Tensor,
    target: torch.Tensor,
    event_id: torch.Tensor,
    weight: torch.Tensor,
    beta: float = 0.5,
) -> torch.Tensor:
    """Differentiable event-level F-beta over the weighted rows of a batch.

    Events are the runs of positive rows (``event_id`` >= 0, one id per run over the whole row
    grid). An event is detected with probability ``1 − Π(1 − p_r)`` over its rows (the chance
    that at least one of its rows fires), so soft TP = Σ_events that probability and
    FN = n_events − TP. Every nominal row is its own potential false interval: FP = Σ p_r over
    nominal rows. F_beta = (1 + β²)TP / ((1 + β²)TP + β²FN + FP). Rows with weight 0 are ignored;
    a batch with no event and no nominal row returns 0.
    """
    use = weight > 0
    p = prob.clamp(1e-6, 1 - 1e-6)
    pos = use & (target > 0.5) & (event_id >= 0)
    neg = use & (target <= 0.5)
    fp = (p * neg).sum()
    ids, inv = torch.unique(event_id[pos], return_inverse=True)
    log_miss = torch.zeros(len(ids), dtype=p.dtype, device=p.device)
    log_miss = log_miss.index_add(0, inv, torch.log1p(-p[pos]))
    tp = (1 - torch.exp(log_miss)).sum()
    fn = len(ids) - tp
    b2 = beta * beta
    denom = (1 + b2) * tp + b2 * fn + fp
    return (1 + b2) * tp / denom.clamp_min(1e-6)


# ----------------------------------------------------------------------------- LightningModule
class LitChannelEnsemble(L.LightningModule):
    """Trains ``ChannelEnsemble`` on a ``SegmentDataModule``; scores any mission.

    Construct with ``**datamodule.dims`` plus the options below. Buffers hold the fitted
    preprocessing: ``kernels`` [C, K, max_len] with ``kernel_len`` [C, K], ``feat_mean`` /
    ``feat_std`` [C, F]; they are copied from the datamodule at ``setup`` (or with
    ``load_preprocessing``) and travel in every checkpoint.

    Loss = BCE(internal learners on their own rows) + BCE(metas on their eval2 rows)
    + BCE(event head on the final fold's held-out rows) + ``f05_weight`` · (1 − soft event F0.5
    on the same rows), see ``soft_event_f05``.
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
        hidden: int = 16,
        feature_fraction: float = 0.6,
        lr: float = 1e-2,
        weight_decay: float = 1e-4,
        f05_weight: float = 0.5,
        pos_weight: float = 1.0,
        hard: bool = False,
        window: int = 50,
        step: int = 10,
        pool: int = 200,
        pool_stride: int = 20,
        n_kernels: int = 10,
        max_kernel_len: int = 40,
        alarm_height: float = 0.5,
        alarm_buffer: int = 100,
        score_chunk_rows: int = 4096,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = ChannelEnsemble(
            n_channels,
            n_features,
            list(group_index),
            n_external=n_external,
            n_internal=n_internal,
            hidden=hidden,
            feature_fraction=feature_fraction,
            seed=seed,
            hard=hard,
        )
        self.register_buffer("kernels", torch.zeros(n_channels, n_kernels, max_kernel_len))
        self.register_buffer("kernel_len", torch.zeros(n_channels, n_kernels, dtype=torch.long))
        self.register_buffer("feat_mean", torch.zeros(n_channels, n_features))
        self.register_buffer("feat_std", torch.ones(n_channels, n_features))

    # ------------------------------------------------------------------ preprocessing
    def load_preprocessing(self, datamodule) -> None:
        """Copy the datamodule's fitted kernels and scaler statistics into the buffers."""
        kernels, lengths = datamodule.kernel_buffers()
        self.kernels.copy_(torch.from_numpy(kernels))
        self.kernel_len.copy_(torch.from_numpy(lengths))
        self.feat_mean.copy_(torch.from_numpy(datamodule.feat_mean))
        self.feat_std.copy_(torch.from_numpy(datamodule.feat_std))

    def setup(self, stage: str) -> None:
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if stage == "fit" and dm is not None and hasattr(dm, "kernel_buffers"):
            dm.setup(stage)
            self.load_preprocessing(dm)

    # -------------------------------------------------------------------------- training
    def forward(self, x: torch.Tensor) -> EnsembleOutput:
        return self.model(x)

    def losses(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = self.model(batch["x"])
        y = batch["y"]
        pw = torch.tensor(self.hparams.pos_weight, device=y.device)
        internal = weighted_bce(
            out.internal_logits,
            y[:, None, None, :].expand_as(out.internal_logits),
            batch["train_w"],
            pw,
        )
        meta = weighted_bce(
            out.meta_logits, y[:, None, :].expand_as(out.meta_logits), batch["eval2_w"], pw
        )
        event = weighted_bce(out.event_logit, batch["y_event"], batch["event_w"], pw)
        f05 = soft_event_f05(out.event_prob, batch["y_event"], batch["event_id"], batch["event_w"])
        total = internal + meta + event + self.hparams.f05_weight * (1 - f05)
        return dict(loss=total, internal=internal, meta=meta, event=event, soft_f05=f05)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        parts = self.losses(batch)
        bs = batch["x"].shape[1]
        parts_only = {f"train/{k}": v for k, v in parts.items() if k != "loss"}
        self.log_dict(parts_only, batch_size=bs)
        self.log("train/loss", parts["loss"], prog_bar=True, batch_size=bs)
        return parts["loss"]

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        out = self.model(batch["x"])
        w = torch.ones_like(batch["y_event"])
        bce = weighted_bce(out.event_logit, batch["y_event"], w)
        ch = weighted_bce(
            torch.logit(out.channel_prob.clamp(1e-6, 1 - 1e-6)),
            batch["y"],
            torch.ones_like(batch["y"]),
        )
        bs = batch["x"].shape[1]
        self.log("val/event_bce", bce, batch_size=bs, sync_dist=True)
        self.log("val/channel_bce", ch, batch_size=bs, sync_dist=True)
        # the checkpoint monitor of every experiment
        self.log("val/loss", bce + ch, batch_size=bs, sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.AdamW(
            self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay
        )

    # --------------------------------------------------------------------------- scoring
    @torch.no_grad()
    def predict_rows(self, x: np.ndarray | torch.Tensor) -> EnsembleOutput:
        """Forward over all rows of x [C, R, F] in chunks, in eval mode, on the module's device."""
        was_training = self.training
        self.eval()
        x = torch.as_tensor(x, dtype=torch.float32)
        chunk = self.hparams.score_chunk_rows
        parts = [
            self.model(x[:, s : s + chunk].to(self.device)) for s in range(0, x.shape[1], chunk)
        ]
        self.train(was_training)
        return EnsembleOutput(
            **{
                k: torch.cat([getattr(p, k).cpu() for p in parts], dim=-1)
                for k in EnsembleOutput.__dataclass_fields__
            }
        )

    def featurise(self, mission: Mission) -> tuple[np.ndarray, np.ndarray]:
        """(X [C, R, F], spans [R, 2]) of ``mission`` with the kernels / scaler in the buffers."""
        from esa_lightning.data.transforms.segments import (
            featurise_values,
            pooled_spans,
            unpad_kernels,
        )

        hp = self.hparams
        names = hp.channel_names
        if names is not None and list(mission.channel_names) != list(names):
            raise ESAInputError(
                "the mission's channels differ from the channels the model was trained on",
                column="channels",
                value=[c for c in mission.channel_names if c not in names][:5] or mission.name,
            )
        values = np.asarray(mission.values, dtype=np.float32)
        kernels = unpad_kernels(self.kernels.cpu().numpy(), self.kernel_len.cpu().numpy())
        opts = dict(window=hp.window, step=hp.step, pool=hp.pool, pool_stride=hp.pool_stride)
        x = featurise_values(
            values,
            kernels,
            self.feat_mean.cpu().numpy(),
            self.feat_std.cpu().numpy(),
            n_kernels=hp.n_kernels,
            **opts,
        )
        spans = pooled_spans(
            len(values), window=hp.window, step=hp.step, pool=hp.pool, stride=hp.pool_stride
        )
        return x, spans

    @property
    def alignment_rows(self) -> int:
        """Chunks must start on this multiple of rows so their pooled rows match the whole's."""
        return int(self.hparams.step * self.hparams.pool_stride)

    @property
    def context_rows(self) -> int:
        """Rows on each side that influence a row: two pooled spans plus the alarm buffer."""
        hp = self.hparams
        span = (hp.pool - 1) * hp.step + hp.window
        return int(2 * span + hp.alarm_buffer + self.alignment_rows)

    def score_rows(self, mission: Mission) -> RowScores:
        """Per-sample event probability (pooled rows spread over their spans), its alarms and the
        per-channel probabilities spread likewise. Never reads the mission's labels."""
        x, spans = self.featurise(mission)
        out = self.predict_rows(x)
        return rows_to_scores(
            out.event_prob.numpy(),
            out.channel_prob.numpy(),
            spans,
            len(mission.values),
            height=self.hparams.alarm_height,
            buffer=self.hparams.alarm_buffer,
        )


def rows_to_scores(
    event_prob: np.ndarray,
    channel_prob: np.ndarray,
    spans: np.ndarray,
    n_samples: int,
    *,
    height: float = 0.5,
    buffer: int = 100,
) -> RowScores:
    """Pooled-row outputs (event [R], channels [C, R]) → ``RowScores`` on the mission's samples."""
    score = spread_rows_to_samples(event_prob, spans, n_samples)
    channel_scores = spread_rows_to_samples(np.asarray(channel_prob).T, spans, n_samples)
    return RowScores(
        score=score.astype(np.float32),
        alarm=peaks_to_alarm(score, height=height, buffer=buffer),
        channel_scores=channel_scores.astype(np.float32),
    )
