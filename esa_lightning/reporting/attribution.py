"""Which channels an alarm names, in terms an operator can act on.

A channel's CONTRIBUTION to an alarm interval is its largest deviation inside the interval,
measured against its own nominal spread (``reference.ChannelSpread``): the detector's
per-channel score when it reports one (a reconstruction or forecast error, a z-score), else the
raw value's distance from its nominal median. 1.0 reads "as far out as the channel's nominal
99th percentile"; a channel that stays as usual scores 1 or less, whatever its units or noise.
A channel holding a reading float32 cannot represent inside the interval contributes float32's
largest value (its row's forced score, ``runtime.chunks.force_unrepresentable_alarms``).

The channels an interval NAMES (``channels`` and ``top_channels`` of intervals.csv) are the ones
the detector alarmed inside it: the union of its per-channel alarms over the interval's rows,
which the channel- and subsystem-aware metrics score (``rank_alarmed``), ranked by
contribution. A detector without per-channel alarms names the attribution's drivers instead.

The ATTRIBUTION over all channels (``attribute``; intervals.csv ``deviating_channels``) ranks
every channel, whether alarmed or not, in this order of preference: TARGET channels (the ones
the mission's channel table marks as monitored) that are neither counters nor categorical; a
counter, a categorical or a non-target channel (SECONDARY) only when its contribution exceeds
the strongest target channel's and its own nominal 99th percentile (``SECONDARY_MIN``): it then
truly drives the alarm. A secondary channel's
contribution is the smaller of its score's and its raw value's (``outputs.interval_contributions``):
a flat mode flag whose reconstruction error soars with everyone else's does not drive an alarm.
A channel whose contribution is 0 or less did not push the alarm's score up (its per-channel
score stayed at or below its nominal median, or its value at its median): it is not ranked.
Of those, ranked by contribution:

- ``top_channels``: the first ``TOP_K`` with their contribution, ``name=4.2;other=1.3``;
- ``drivers``: the ranked channels whose contribution is at least ``DRIVER_SHARE`` of the first
  one's (at most ``MAX_DRIVERS``; none where no channel's contribution is above 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from esa_lightning.data.mission import Mission
from esa_lightning.reporting.reference import ChannelSpread

TOP_K = 5
MAX_DRIVERS = 3
DRIVER_SHARE = 0.5
#: a secondary channel must also be beyond its own nominal 99th percentile
SECONDARY_MIN = 1.0


@dataclass
class Attribution:
    """Ranked channels of one interval: (name, contribution) best first, and the drivers."""

    ranked: list[tuple[str, float]]
    drivers: list[str]

    @property
    def top_channels(self) -> str:
        return ranked_text(self.ranked)

    @property
    def channels(self) -> str:
        return ";".join(self.drivers)


def secondary_channels(mission: Mission) -> set[str]:
    """Counters, categorical and non-target channels: named only when they outweigh targets.

    A mission whose table marks no target treats every channel as one (counters and
    categorical channels stay secondary)."""
    table = mission.channels
    names = list(table["Channel"])
    secondary = set(mission.meta.get("counters") or [])
    if "Categorical" in table.columns:
        secondary |= set(table.loc[table["Categorical"].astype(bool), "Channel"])
    if "Target" in table.columns and table["Target"].astype(bool).any():
        secondary |= set(table.loc[~table["Target"].astype(bool), "Channel"])
    if secondary >= set(names):  # nothing left to prefer: rank them all alike
        return set()
    return secondary


def contributions(block: np.ndarray, spread: ChannelSpread) -> np.ndarray:
    """float64 [C]: each channel's largest normalised deviation over the rows of ``block``
    [n, C] (per-channel scores or raw values of one interval); -inf for a channel without any
    finite value there."""
    z = spread.normalise(np.asarray(block))
    z = np.where(np.isfinite(z), z, -np.inf)
    return z.max(axis=0) if len(z) else np.full(z.shape[1], -np.inf)


def attribute(
    contribution: np.ndarray, channel_names: list[str], secondary: set[str]
) -> Attribution:
    """Rank and choose the channels of one interval (module docstring) from their
    ``contribution`` [C] (column i belongs to ``channel_names[i]``)."""
    names = channel_names[: len(contribution)]
    # only the channels that pushed the score up, with a finite contribution above 0
    pushed = [
        (n, float(c)) for n, c in zip(names, contribution, strict=True) if np.isfinite(c) and c > 0
    ]
    primary = [p for p in pushed if p[0] not in secondary]
    best_primary = max((c for _, c in primary), default=-np.inf)
    bar = max(best_primary, SECONDARY_MIN)
    eligible = primary + [p for p in pushed if p[0] in secondary and p[1] > bar]
    ranked = sorted(eligible, key=lambda p: -p[1])
    if not ranked:
        return Attribution([], [])
    top = ranked[0][1]
    drivers = [n for n, c in ranked[:MAX_DRIVERS] if c >= DRIVER_SHARE * top]
    return Attribution(ranked, drivers)


def ranked_text(ranked: list[tuple[str, float]]) -> str:
    """The first ``TOP_K`` of ``ranked`` with their contribution: ``name=4.2;other=1.3``."""
    return ";".join(f"{name}={value:.3g}" for name, value in ranked[:TOP_K])


def rank_alarmed(
    contribution: np.ndarray, channel_names: list[str], alarmed: np.ndarray
) -> list[tuple[str, float]]:
    """(name, contribution) of the ``alarmed`` channels (bool [C]: alarmed on some row of the
    interval), highest contribution first; one without a finite contribution last. Every
    alarmed channel is kept, whatever its contribution: the detector named it."""
    found = [
        (name, float(c))
        for name, c, on in zip(channel_names, contribution, alarmed, strict=False)
        if on
    ]
    return sorted(found, key=lambda p: -p[1] if np.isfinite(p[1]) else np.inf)
