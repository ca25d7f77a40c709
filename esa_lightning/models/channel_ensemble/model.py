"""The channel ensemble's ``DetectorModule``: trains ``ChannelEnsemble`` (``network.py``) on
batches of pooled rows of a ``SegmentDataModule`` and scores any mission.

Fitted preprocessing (shapelet kernels, scaler statistics) lives in buffers so checkpoints are
complete. Post-processing (``post_processing``): the exact logistic ``meta_heads`` and
``event_head`` (``heads.py``) refitted after training, then ``peaks`` alarms, and the
stuck-channel rule (``frozen``, ``postprocessing.frozen``: fitted last, its alarms added to the
peaks' and its stuck channels to the channels an alarm names: a row only the rule alarmed names
its stuck channel(s) alone, as the GRU's does (``gru_ae.alarms.named_channels``); the default
since round F3, none in ``esa_full``'s component). The ensemble
scores one shared grid (its datamodule refuses independent series): one series, index 0.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from esa_lightning.data.datamodule import reduce_validation_sums
from esa_lightning.data.mission import Mission
from esa_lightning.errors import ESAInputError, quoted
from esa_lightning.models.base import (
    DetectorModule,
    RowScores,
    top_channel_alarm,
    top_channels_setting,
)
from esa_lightning.models.channel_ensemble.feature_rows import FeatureRows
from esa_lightning.models.channel_ensemble.heads import EventHead, MetaHeads
from esa_lightning.models.channel_ensemble.network import (
    STD_MAX_COLUMN,
    ChannelEnsemble,
    EnsembleOutput,
    bce_sums,
    feature_subset_masks,
    soft_event_f05,
    weighted_bce,
)
from esa_lightning.models.raised_by import FROZEN, rule_flags
from esa_lightning.postprocessing.base import fitted_rule, plain_spec
from esa_lightning.postprocessing.frozen import FrozenValues
from esa_lightning.postprocessing.peaks import PeakAlarm, spread_rows_to_samples
from esa_lightning.settings import check_setting

#: what ``score_rows`` reports per channel (the scores that name the channels behind an alarm):
#: the learners' probabilities, or each channel's share of the event logit
#: (``ChannelEnsemble.channel_evidence``). The default keeps artifacts trained before the option
#: as they were: their stored nominal reference measures probabilities.
CHANNEL_SCORES = ("probability", "evidence")


class LitChannelEnsemble(FeatureRows, DetectorModule):
    """Trains ``ChannelEnsemble`` on a ``SegmentDataModule``; scores any mission.

    Construct with ``**datamodule.dims`` plus the options below. Buffers hold the fitted
    preprocessing: ``kernels`` [C, K, max_len] with ``kernel_len`` [C, K], ``feat_mean`` /
    ``feat_std`` [C, F], and the rows they were built on (``train_rows``, ``feature_rows``:
    ``FeatureRows``); they are copied from the datamodule at ``setup`` (or with
    ``load_preprocessing``) and travel in every checkpoint.

    Loss = BCE(internal learners on their own rows) + BCE(metas on their eval2 rows)
    + BCE(event head on the final fold's held-out rows) + ``f05_weight`` · (1 − soft event F0.5
    on the same rows), see ``soft_event_f05``.
    """

    datamodule_kind = "segments"
    supervised = True
    #: rows per scoring forward pass (the network reads each row on its own: ``weighted_sum``)
    RUNTIME_SETTINGS = frozenset({"score_chunk_rows"})
    POST_RULES = (MetaHeads, EventHead, PeakAlarm, FrozenValues)

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
        share_learners: bool = False,
        novelty: bool = False,
        channel_scores: str = "probability",
        top_channels: int = 3,
        window: int = 50,
        step: int = 10,
        pool: int = 200,
        pool_stride: int = 20,
        n_kernels: int = 10,
        max_kernel_len: int = 40,
        score_chunk_rows: int = 4096,
        seed: int = 0,
        post_processing: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if channel_scores not in CHANNEL_SCORES:
            raise ESAInputError(
                f"channel_scores={quoted(channel_scores)}: expected one of "
                f"{', '.join(CHANNEL_SCORES)}",
                column="channel_scores",
            )
        top_channels_setting(top_channels)
        check_setting("model.score_chunk_rows", score_chunk_rows)  # else a traceback
        # window, step, pool, pool_stride checked; train_rows, feature_rows: FeatureRows
        self.register_feature_rows(dict(window=window, step=step, pool=pool,
                                        pool_stride=pool_stride))
        self.save_hyperparameters(ignore=["post_processing"])
        self.hparams["post_processing"] = plain_spec(post_processing)
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
            share_learners=share_learners,
            novelty=novelty,
        )
        self.register_buffer("kernels", torch.zeros(n_channels, n_kernels, max_kernel_len))
        self.register_buffer("kernel_len", torch.zeros(n_channels, n_kernels, dtype=torch.long))
        self.register_buffer("feat_mean", torch.zeros(n_channels, n_features))
        self.register_buffer("feat_std", torch.ones(n_channels, n_features))
        # one grid: one series; the stuck-channel rule's value columns are the channels
        self.post_rules = self.build_post_rules(self.hparams.post_processing, n_series=1,
                                                n_outputs=int(n_channels))
        self.alarm_rule = peak_rule(self.post_rules)

    # ------------------------------------------------------------------ preprocessing
    def set_preprocessing(self, datamodule: Any) -> None:
        """Copy the datamodule's fitted kernels and scaler statistics into the buffers."""
        kernels, lengths = datamodule.kernel_buffers()
        self.kernels.copy_(torch.from_numpy(kernels))
        self.kernel_len.copy_(torch.from_numpy(lengths))
        self.feat_mean.copy_(torch.from_numpy(datamodule.feat_mean))
        self.feat_std.copy_(torch.from_numpy(datamodule.feat_std))
        self.record_feature_rows(datamodule.mission)
        if self.model.novelty:
            col = STD_MAX_COLUMN  # a constant row's standardised std_max, per channel
            self.model.flat_z.copy_(-self.feat_mean[:, col] / self.feat_std[:, col])

    def fitted_state_problem(self) -> str | None:
        """What in the loaded buffers training never writes (``artifact.fitted``), or None:
        kernel lengths ``pad_kernels`` never writes (``kernel_len_problem``: scoring would cut,
        drop or move a kernel), or a group index other than ``group_index`` (scoring would put
        a channel in another group, or end in an index error), or a feature mask other than the
        seed builds (the learners would read other features than they were fitted on), or a
        pooled row or its stride longer than the rows training featurised
        (``feature_rows_problem``)."""
        from esa_lightning.data.transforms.segments import kernel_len_problem

        width = min(self.kernels.shape[-1], self.hparams.window)
        if problem := kernel_len_problem(self.kernel_len.cpu().numpy(), width):
            return f"the fitted kernel_len {problem}"
        groups = self.model.group_index.cpu().tolist()
        if groups != list(self.hparams.group_index):
            return (f"the fitted model.group_index {groups[:8]} differs from the "
                    f"hyper-parameters' group_index {list(self.hparams.group_index)[:8]}")
        return self.feature_mask_problem() or self.feature_rows_problem(self.hparams)

    def feature_mask_problem(self) -> str | None:
        """The network's ``feature_mask`` (each learner's feature subset, set by ``seed``)
        unlike the one its hyper-parameters build, or None."""
        hp = self.hparams
        mask = feature_subset_masks(1 if hp.share_learners else hp.n_channels, hp.n_external,
                                    hp.n_internal, hp.n_features, hp.feature_fraction, hp.seed)
        loaded = self.model.feature_mask.cpu()
        if loaded.shape == mask.shape and torch.equal(loaded, torch.from_numpy(mask).float()):
            return None
        return (f"the fitted model.feature_mask differs from the one seed={hp.seed} and "
                f"feature_fraction={hp.feature_fraction} build (holding {loaded.sum():g} ones, "
                f"{int(mask.sum())} expected)")

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

    def on_validation_epoch_start(self) -> None:
        self._val_sums = torch.zeros(2, 2, device=self.device)  # validation_bce_sums

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        """Sums the event and channel BCE of the rows: the epoch logs their mean over all rows."""
        out = self.model(batch["x"])
        channel_logit = torch.logit(out.channel_prob.clamp(1e-6, 1 - 1e-6))
        self._val_sums += validation_bce_sums(out.event_logit, batch["y_event"],
                                              channel_logit, batch["y"])

    def on_validation_epoch_end(self) -> None:
        log_validation_bce(self, self._val_sums)

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
        chunk = self.hparams.score_chunk_rows or max(1, x.shape[1])  # 0: the whole range
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
        return featurise_mission(
            mission,
            self.hparams,
            self.kernels.cpu().numpy(),
            self.kernel_len.cpu().numpy(),
            self.feat_mean.cpu().numpy(),
            self.feat_std.cpu().numpy(),
        )

    @property
    def alignment_rows(self) -> int:
        """Chunks must start on this multiple of rows so their pooled rows match the whole's."""
        return int(self.hparams.step * self.hparams.pool_stride)

    @property
    def context_rows(self) -> int:
        """Rows on each side that influence a row: two pooled spans plus the alarm buffer, or
        the fitted stuck-channel rule's (its longest limit and quiet rows), if longer."""
        hp = self.hparams
        span = (hp.pool - 1) * hp.step + hp.window
        frozen = 0 if self.frozen_rule is None else self.frozen_rule.context_rows
        return int(max(2 * span + self.alarm_rule.context_rows + self.alignment_rows, frozen))

    @property
    def frozen_rule(self) -> FrozenValues | None:
        """The fitted rule alarming on stuck channels (``postprocessing.frozen``), if any."""
        return fitted_rule(self.post_rules.values(), FrozenValues)

    def series_index(self, mission: Mission, series: str | None = None) -> int:
        """0: the ensemble scores one shared grid (the series of its post rules' buffers)."""
        return 0

    def score_rows(self, mission: Mission) -> RowScores:
        """Per-sample event probability (pooled rows spread over their spans), its alarms and the
        per-channel scores spread likewise: the learners' probabilities, or with
        ``channel_scores="evidence"`` what each channel adds to the event logit
        (``ChannelEnsemble.channel_evidence``: with ``novelty``, its novelty too); an alarmed
        sample alarms its ``top_channels`` highest channels. Never reads the mission's labels."""
        x, spans = self.featurise(mission)
        out = self.predict_rows(x)
        per_channel = (
            self.model.channel_evidence(out)
            if self.hparams.get("channel_scores") == "evidence"
            else out.channel_prob
        )
        scores = rows_to_scores(
            out.event_prob.numpy(),
            per_channel.numpy(),
            spans,
            len(mission.values),
            self.alarm_rule,
            self.hparams.top_channels,
        )
        return with_stuck_channels(scores, self.frozen_rule, mission)


def with_stuck_channels(
    scores: RowScores, rule: FrozenValues | None, mission: Mission
) -> RowScores:
    """``scores`` with the fitted stuck-channel ``rule``'s alarms on ``mission`` (one grid,
    series 0) added: a row alarms where a channel is stuck, names it and is flagged ``frozen``
    (``RowScores.raised_by``); as they are without a rule."""
    if rule is None:
        return scores
    stuck = rule.alarms(mission, 0)
    any_stuck = stuck.any(axis=1).astype(np.uint8)
    alarm = scores.alarm | any_stuck
    named = scores.channel_alarm | stuck.astype(np.uint8)
    raised = scores.raised_by
    if raised is not None:
        raised = raised | any_stuck * np.uint8(FROZEN)
    return dataclasses.replace(scores, alarm=alarm, channel_alarm=named, raised_by=raised,
                               stuck_channels=stuck)


def validation_bce_sums(
    event_logit: torch.Tensor, y_event: torch.Tensor, channel_logit: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """[event, channel] x ``bce_sums`` (BCE summed over the rows, their count) of a validation
    batch: they add up over the batches and processes (``log_validation_bce``)."""
    return torch.stack([
        bce_sums(event_logit, y_event, torch.ones_like(y_event)),
        bce_sums(channel_logit, y, torch.ones_like(y)),
    ])


def log_validation_bce(module: DetectorModule, sums: torch.Tensor) -> None:
    """Logs ``val/event_bce``, ``val/channel_bce`` and their sum ``val/loss`` (the checkpoint
    monitor of every experiment) from a validation epoch's ``validation_bce_sums`` of this
    process, added over the processes: the means over every validation row of every process."""
    loss, weight = reduce_validation_sums(module, sums).T
    bce, ch = loss / weight.clamp_min(1.0)
    # every rank holds the sums of all ranks: equal values, which sync_dist averages exactly
    # (and Lightning stops warning that a monitored value may be one rank's)
    module.log("val/event_bce", bce, sync_dist=True)
    module.log("val/channel_bce", ch, sync_dist=True)
    module.log("val/loss", bce + ch, sync_dist=True)


def peak_rule(rules: Any) -> PeakAlarm:
    """The ``peaks`` rule among a channel ensemble's post rules (it turns scores into alarms)."""
    found = [r for r in rules.values() if isinstance(r, PeakAlarm)]
    if len(found) != 1:
        raise ESAInputError(
            "post_processing: a channel ensemble needs exactly one peaks rule",
            column="post_processing",
            value=[type(r).kind for r in rules.values()],
        )
    return found[0]


def featurise_mission(
    mission: Mission,
    hp: Mapping[str, Any],
    kernels: np.ndarray,
    kernel_len: np.ndarray,
    feat_mean: np.ndarray,
    feat_std: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(X [C, R, F], spans [R, 2]) of new data with fitted kernels and feature scaler: the one
    featurisation of a trained channel ensemble (surrogate and tree-based alike)."""
    from esa_lightning.data.transforms.segments import featurise_values, pooled_spans, unpad_kernels

    names = hp.get("channel_names")
    if names is not None and list(mission.channel_names) != list(names):
        raise ESAInputError(
            "the mission's channels differ from the channels the model was trained on",
            column="channels",
            value=[c for c in mission.channel_names if c not in names][:5] or mission.name,
        )
    values = np.asarray(mission.values, dtype=np.float32)
    opts = dict(
        window=hp["window"], step=hp["step"], pool=hp["pool"], pool_stride=hp["pool_stride"]
    )
    x = featurise_values(
        values,
        unpad_kernels(kernels, kernel_len),
        feat_mean,
        feat_std,
        n_kernels=hp["n_kernels"],
        **opts,
    )
    spans = pooled_spans(
        len(values), window=hp["window"], step=hp["step"], pool=hp["pool"], stride=hp["pool_stride"]
    )
    return x, spans


def rows_to_scores(
    event_prob: np.ndarray,
    channel_prob: np.ndarray,
    spans: np.ndarray,
    n_samples: int,
    alarm_rule: PeakAlarm,
    top_channels: int,
) -> RowScores:
    """Pooled-row outputs (event [R], per-channel scores [C, R]) → ``RowScores`` on the
    mission's samples; an alarmed sample names its ``top_channels`` highest channels. Its
    ``threshold`` is the peaks' height (NaN before it is fitted): the level a peak passes to
    alarm, the rows around it alarming with it (``buffer``); its alarms are flagged ``score``."""
    score = spread_rows_to_samples(event_prob, spans, n_samples)
    channel_scores = spread_rows_to_samples(np.asarray(channel_prob).T, spans, n_samples)
    channel_scores = channel_scores.astype(np.float32)
    alarm = alarm_rule.alarm(score)
    return RowScores(
        score=score.astype(np.float32),
        alarm=alarm,
        channel_scores=channel_scores,
        channel_alarm=top_channel_alarm(alarm, channel_scores, top_channels),
        threshold=np.full(n_samples, alarm_rule.current_height, dtype=np.float32),
        raised_by=rule_flags(alarm),
    )
