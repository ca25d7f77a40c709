"""How much a mission's training labels can teach a supervised detector, said before training.

A supervised family (the channel ensemble, ``rolling_gbdt``) learns each channel from its labeled
training events and fits its heads and alarm heights on the held-out and validation rows. With
about one labeled event per channel, or a validation range that is mostly anomalous, what it fits
does not carry to new data: on the MSL missions converted side by side (36 events over 27
channels, validation 40-70 % anomalous rows) both supervised families raise no correct test
alarm, while the unsupervised ones do (``benchmarks/RESULTS.md``). Training says so up front
instead of leaving the user to find out from a test score.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from esa_lightning.data.mission import Mission
from esa_lightning.metrics.report import SELECTIONS

ANOMALOUS_CATEGORIES = SELECTIONS[""]  # the events the reported EW_F_0.50 counts
# below this many labeled training events per channel, per-channel learners rarely generalise
MIN_EVENTS_PER_CHANNEL = 3.0
# above this share of anomalous validation rows, event-wise heights fitted there mean little
MAX_VAL_ANOMALOUS = 0.3
# a raw ESA folder without labels.csv, a CSV file without is_anomaly_ columns, a Kaggle
# train.parquet without is_anomaly
UNKNOWN = "the training data carry no labels: no labels.csv or is_anomaly column"


@dataclass(frozen=True)
class LabelFacts:
    """Labeled events and anomalous-row shares of a mission's training and validation ranges."""

    n_channels: int
    train_events: int
    channel_events: float  # mean over channels of the labeled runs on each in training
    val_events: int
    train_anomalous: float  # share of training rows inside an anomaly or rare event
    val_anomalous: float
    # False when the training data has no label column (a Kaggle train.parquet without
    # is_anomaly): its zeros are unknowns, and the counts above say nothing
    known: bool = True

    def summary(self) -> str:
        if not self.known:
            return f"labels: unknown ({UNKNOWN}, {self.n_channels} channels)"
        return (
            f"labels: {self.train_events} training events, {self.channel_events:.1f} labeled "
            f"runs per channel ({self.n_channels} channels), {self.val_events} validation "
            "events; "
            f"anomalous rows: train {self.train_anomalous:.0%}, "
            f"validation {self.val_anomalous:.0%}"
        )


def _count_events(part: Mission) -> int:
    events = part.events
    if len(events) == 0:
        return 0
    if "Category" in events.columns:
        events = events[events["Category"].isin(ANOMALOUS_CATEGORIES)]
    return int(events["ID"].nunique()) if "ID" in events.columns else len(events)


def _runs_per_channel(part: Mission) -> float:
    """Mean over channels of the contiguous anomalous runs in each channel's own labels."""
    labels = part.labels
    if labels is None or labels.size == 0:
        return 0.0
    if labels.strides[1] == 0:  # one label broadcast to every channel (Kaggle)
        labels = labels[:, :1]
    runs = []
    for c in range(labels.shape[1]):
        anomalous = np.isin(labels[:, c], (1, 2)).astype(np.int8)
        runs.append(int(np.count_nonzero(np.diff(anomalous, prepend=0) == 1)))
    return float(np.mean(runs))


def _anomalous_share(part: Mission) -> float:
    return float(np.mean(part.is_anomaly)) if len(part.values) else 0.0


def label_facts(mission: Mission) -> LabelFacts | None:
    """The facts of a single-grid labeled ``mission``; None for independent series or a
    mission without labels (nothing supervised can train on either). Training data without a
    label column (``meta["train_labeled"]`` False) gives facts whose labels are unknown."""
    if mission.is_multiseries or mission.labels is None:
        return None
    train, val = mission.train(), mission.val()
    return LabelFacts(
        n_channels=len(mission.channel_names),
        train_events=_count_events(train),
        channel_events=_runs_per_channel(train),
        val_events=_count_events(val),
        train_anomalous=_anomalous_share(train),
        val_anomalous=_anomalous_share(val),
        known=bool(mission.meta.get("train_labeled", True)),
    )


def supervision_warnings(facts: LabelFacts) -> list[str]:
    """Why a supervised detector trained on these labels is unlikely to carry to new data."""
    if not facts.known:
        return [
            f"the training labels are unknown ({UNKNOWN}): a supervised detector has no "
            "labeled event to learn from; an unsupervised detector (experiment=gru_ae, "
            "model=window_pca) is the choice"
        ]
    out = []
    if facts.channel_events < MIN_EVENTS_PER_CHANNEL:
        out.append(
            f"{facts.channel_events:.1f} labeled training runs per channel (fewer than "
            f"{MIN_EVENTS_PER_CHANNEL:g}): per-channel learners see too few anomalies to "
            "generalise; an unsupervised detector (experiment=gru_ae, model=window_pca) is the "
            "safer choice"
        )
    if facts.val_anomalous > MAX_VAL_ANOMALOUS:
        out.append(
            f"{facts.val_anomalous:.0%} of the validation rows are anomalous (more than "
            f"{MAX_VAL_ANOMALOUS:.0%}): heads and alarm heights fitted there will not match "
            "a range with rare anomalies; move data.split_date / data.val_days so that "
            "validation looks like operations"
        )
    return out
