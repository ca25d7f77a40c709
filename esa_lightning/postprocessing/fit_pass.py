"""What the random-forest gate's fit hands the ``gap_close`` fit: its scoring of the fit range.

A window model's post rules are fitted one after another on the same fit range with the same
network. The gate's fit (``random_forest``) scores every fit-range window once, keeping the
window scores [N] and the features of the windows above its cut; the ``gap_close`` fit, next,
needs the model's row alarms over that same range, which are made of exactly those: the
threshold's alarms on the window scores, judged by the gate on their features. A ``FitPass``
carries them from the one fit to the other, explicitly: the gate fitted among its model's
rules in order (``PostRule.fit_in_order``: training's end, ``fit_post_processing``) hands it to
the gap rule (``GapClose.hand``), which takes it in its next fit and drops it, read or not; the
ordered fit drops it at its end should that fit not come (an error), and a gate fitted alone
hands nothing. It is keyed by what made it, and the gap rule reads it only when all of it
still holds: the same mission object, the same scoring (``model.scoring_key()``: the network's
weights, the scaler, the fitted channel normalisation, the hyper-parameters), the grid and its
length; otherwise (and where the kept features do not cover a window that alarms) the gap rule
scores the range itself, as it does without a gate. Nothing is kept beyond one fit: no cache
between fits.

The threshold's fit hands the gate's fit the same way what it scored before it: an ``f05``
threshold searched on the fit range (``fit_on: fit_range``) scored every fit-range window, and
a ``FitScores`` carries those window scores [N] and the same smoothed (4 bytes a window each) to
the gate (``RandomForestGate.hand``), which picks its windows above the cut from the smoothed
ones, with no smoothing of its own, and sends through
the network only the scoring batches that hold one of them, for their features
(``WindowPieces.window_batches``), instead of scoring the range again. The network's outputs of
a window depend on the batch it is computed in (float32 summation order), so those batches are
the very batches of scoring the range whole: the features, and every decision made of them,
are those of scoring it whole, bit for bit; a batch whose scores differ from the handed ones
(not the same scoring after all) makes the gate score the range itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class GatedWindows:
    """One fit-range grid as the gate's fit scored it (the range whole, stride-1 windows): the
    gap rule's fit reads its alarms from ``smoothed`` without smoothing ``total`` again."""

    rows: int  # the grid's fit-range rows
    total: np.ndarray  # float32 [N]: every window's score
    smoothed: np.ndarray  # float32 [N]: the same as the threshold smooths them (``smoothed``)
    gate: np.ndarray  # bool [N]: the windows above the gate's cut, whose features are kept
    features: np.ndarray  # float32 [gate.sum(), F]: their features (``window_features``)


@dataclass
class Handed:
    """What one rule's fit scored of a mission's fit range, keyed by what made it."""

    mission: Any  # the datamodule's mission whose fit range was scored
    key: str  # ``model.scoring_key()`` when it was scored

    def holds(self, model: Any, mission: Any) -> bool:
        """Whether the kept scores are still ``model``'s scoring of ``mission``: the same
        mission object and scoring key (checked once a fit: the key digests every weight)."""
        return mission is self.mission and model.scoring_key() == self.key


@dataclass
class FitScores(Handed):
    """The threshold's window scores of a mission's fit range: float32 [N] a grid, every
    stride-1 window of its fit range scored whole (``window_totals``), and the same as it
    smoothed them (``WindowThreshold.smoothed``), which the gate reads instead of smoothing
    them again."""

    totals: dict[str | None, np.ndarray] = field(default_factory=dict)
    smoothed: dict[str | None, np.ndarray] = field(default_factory=dict)


@dataclass
class FitPass(Handed):
    """The gate's scoring of a mission's fit range, keyed by what made it."""

    grids: dict[str | None, GatedWindows] = field(default_factory=dict)

    def alarm(self, model: Any, name: str | None, grid: Any) -> np.ndarray | None:
        """uint8 [T]: the model's row alarms of fit-range ``grid`` (series ``name`` of a
        mission the pass ``holds``) from the kept scores (``model.handed_alarm``), or None
        where they do not serve: a grid not kept or of another length, or kept features that
        do not cover the windows that alarm."""
        scored = self.grids.get(name)
        if scored is None or scored.rows != len(grid.values):
            return None
        return model.handed_alarm(grid, name, scored)


def rule_of_kind(model: Any, kind: str) -> Any | None:
    """The first of ``model``'s post rules of ``kind`` (fitted or not), or None."""
    rules = getattr(model, "post_rules", None) or {}
    return next((rule for rule in rules.values() if rule.kind == kind), None)
