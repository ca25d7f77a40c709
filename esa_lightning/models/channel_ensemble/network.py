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
5. event head: logistic regression on the group scores → event probability per row; with
   ``novelty=True`` also on the row's novelty (``row_novelty``: how far its channels' features
   lie from the training rows, no labels read), so the head can lean on an unsupervised score
   where the learners, trained on few labeled runs, do not carry out of sample.

Stacking semantics: each level reads the *detached* output of the level below, so a level's loss
trains only that level (internal learners get gradient only from their own rows, as the
reference's out-of-fold stacking requires). Forward values are unaffected by the detaching.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from esa_lightning.data.transforms.segments import FEATURE_NAMES
from esa_lightning.errors import ESAInputError


@dataclass
class EnsembleOutput:
    """internal_logits [C, E_ext, E_int, R], meta_logits [C, E_ext, R], channel_prob [C, R],
    group_scores [G, R], event_logit [R], event_prob [R], novelty [R] and channel_novelty
    [C, R] (zeros without ``novelty``)."""

    internal_logits: torch.Tensor
    meta_logits: torch.Tensor
    channel_prob: torch.Tensor
    group_scores: torch.Tensor
    event_logit: torch.Tensor
    event_prob: torch.Tensor
    novelty: torch.Tensor
    channel_novelty: torch.Tensor


NOVELTY_CLIP = 10.0


# the pooled column of the largest window standard deviation (pool_features puts every
# feature's maximum first, in FEATURE_NAMES order)
STD_MAX_COLUMN = FEATURE_NAMES.index("std")


def channel_novelty(
    x: torch.Tensor, clip: float = NOVELTY_CLIP, flat_z: torch.Tensor | None = None
) -> torch.Tensor:
    """x [C, R, F] standardised on the training rows → [C, R]: each channel's mean absolute
    z-score of a row's features (each clipped at ``clip`` so one feature cannot carry a
    channel). Label-free: it measures how unlike the training rows a channel's row is.

    ``flat_z`` [C]: each channel's standardised ``std_max`` of a constant row. A channel whose
    row is constant throughout (no new sample: the zero-order hold fills a gap, or the channel
    has no data yet or any more) says nothing of its behaviour there and adds no novelty."""
    per_channel = x.abs().clamp(max=clip).mean(dim=-1)  # [C, R]
    if flat_z is not None:
        flat = (x[..., STD_MAX_COLUMN] - flat_z[:, None]).abs() < 1e-3
        per_channel = per_channel.masked_fill(flat, 0.0)
    return per_channel


def row_novelty(
    x: torch.Tensor, clip: float = NOVELTY_CLIP, flat_z: torch.Tensor | None = None
) -> torch.Tensor:
    """x [C, R, F] → [R]: the largest ``channel_novelty`` of each row over its channels."""
    return channel_novelty(x, clip, flat_z).amax(dim=0)


def weighted_sum(values: torch.Tensor, weights: torch.Tensor, dim: int) -> torch.Tensor:
    """Sum of ``values * weights`` over ``dim``, one term at a time: every row gets the same
    rounding whatever the number of rows (a matrix product or a vectorised reduction blocks
    and fuses differently for another chunk length, and chunked scoring would differ in the last
    bit from scoring the whole)."""
    w = weights.expand_as(values)
    total = values.select(dim, 0) * w.select(dim, 0)
    for k in range(1, values.shape[dim]):
        total = total + values.select(dim, k) * w.select(dim, k)
    return total


def group_index_setting(group_index: list[int], n_channels: int) -> list[int]:
    """``group_index`` (each channel's group, from 0) as whole numbers, or an ``ESAInputError``:
    another count than the channels, or a negative group (an artifact's hyper-parameters that
    loaded and ended in torch's ``index -1 is out of bounds`` while scoring)."""
    if len(group_index) != n_channels:
        raise ESAInputError(
            f"group_index has {len(group_index)} entries for {n_channels} channels",
            column="group_index",
        )
    if not all(isinstance(g, int | np.integer) and g >= 0 for g in group_index):
        raise ESAInputError(
            "each channel's group must be a whole number from 0",
            column="group_index",
            value=list(group_index)[:8],
        )
    return [int(g) for g in group_index]


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
        share_learners: bool = False,
        novelty: bool = False,
    ) -> None:
        super().__init__()
        group_index = group_index_setting(group_index, n_channels)
        e, i, f, h = n_external, n_internal, n_features, hidden
        # shared learners: one set of internal learners and metas for every channel (leading
        # dimension 1, expanded at use), trained on the pooled rows of all channels
        self.share_learners = bool(share_learners)
        c = 1 if self.share_learners else n_channels
        self.n_channels = n_channels
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
        self.register_buffer("cv", torch.ones(n_channels))
        self.alpha = nn.Parameter(torch.tensor(1.5))
        self.gamma = nn.Parameter(torch.tensor(1.5))
        self.beta = nn.Parameter(torch.tensor(0.3))
        self.delta = nn.Parameter(torch.tensor(0.05))
        self.event_w = nn.Parameter(torch.ones(self.n_groups))
        self.event_b = nn.Parameter(torch.tensor(-1.0))
        # the event head's weight on row_novelty; absent without it (older checkpoints load)
        self.novelty = bool(novelty)
        if self.novelty:
            self.novelty_w = nn.Parameter(torch.tensor(0.0))
            # standardised std_max of a constant row per channel (NaN: none is flat), set from
            # the feature scaler by the LightningModule
            self.register_buffer("flat_z", torch.full((n_channels,), float("nan")))

    def per_channel(self, param: torch.Tensor) -> torch.Tensor:
        """A learner parameter with one leading entry per channel (shared ones expanded)."""
        return param.expand(self.n_channels, *param.shape[1:]) if self.share_learners else param

    def internal_logits(self, x: torch.Tensor) -> torch.Tensor:
        """x [C, R, F] → logits [C, E_ext, E_int, R] of every internal learner."""
        w1 = self.per_channel(self.w1 * self.feature_mask[..., None])
        b1, w2, b2 = (self.per_channel(p) for p in (self.b1, self.w2, self.b2))
        hid = torch.einsum("crf,ceifh->ceirh", x, w1) + b1[:, :, :, None, :]
        return torch.einsum("ceirh,ceih->ceir", F.relu(hid), w2) + b2[..., None]

    def meta_logits(self, internal_logits: torch.Tensor) -> torch.Tensor:
        """[C, E_ext, E_int, R] → [C, E_ext, R]: logistic combination of internal probabilities."""
        p = torch.sigmoid(internal_logits.detach())
        meta_w, meta_b = self.per_channel(self.meta_w), self.per_channel(self.meta_b)
        return weighted_sum(p, meta_w[..., None], dim=2) + meta_b[..., None]

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
        event_logit = weighted_sum(groups, self.event_w[:, None], dim=0) + self.event_b
        if self.novelty:
            per_channel = channel_novelty(x, flat_z=self.flat_z)
            novelty = per_channel.amax(dim=0)
            event_logit = event_logit + self.novelty_w * novelty
        else:
            per_channel = torch.zeros_like(channel_prob)
            novelty = torch.zeros_like(event_logit)
        return EnsembleOutput(
            internal_logits=internal,
            meta_logits=meta,
            channel_prob=channel_prob,
            group_scores=groups,
            event_logit=event_logit,
            event_prob=torch.sigmoid(event_logit),
            novelty=novelty,
            channel_novelty=per_channel,
        )

    @torch.no_grad()
    def channel_evidence(self, out: EnsembleOutput) -> torch.Tensor:
        """[C, R]: what each channel adds to a row's event logit, the score that names the
        channels behind an alarm. Its learners' probability under its group's weight in the
        event head, plus, with ``novelty``, its novelty under the novelty weight (the head reads
        the largest over channels: a row that alarms on novelty alone is the doing of the
        channel that lies farthest from the training rows, not of a learner whose probability
        barely moved). Negative weights add nothing. Without ``novelty``: the probabilities."""
        if not self.novelty:
            return out.channel_prob
        device = out.channel_prob.device  # predict_rows hands outputs back on the CPU
        group_w = self.event_w.clamp_min(0.0).index_select(0, self.group_index).to(device)
        novelty_w = self.novelty_w.clamp_min(0.0).to(device)
        return group_w[:, None] * out.channel_prob + novelty_w * out.channel_novelty


# --------------------------------------------------------------------------------------- loss
def bce_sums(
    logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, pos_weight=None
) -> torch.Tensor:
    """[weighted BCE summed over the rows, the sum of the weights]: sums add up over batches and
    ranks; ``weighted_bce`` is their ratio."""
    loss = F.binary_cross_entropy_with_logits(
        logits, target, weight=weight, reduction="sum", pos_weight=pos_weight
    )
    return torch.stack([loss, weight.sum()])


def weighted_bce(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor, pos_weight=None):
    """Mean BCE over the rows with weight > 0 (0 when there are none)."""
    loss, total = bce_sums(logits, target, weight, pos_weight)
    return loss / total.clamp_min(1.0)


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
