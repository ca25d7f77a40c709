"""The final event classifier of ``esa_full``: one decision per row from every component.

Per row and per component it takes the component's score, summaries of its per-channel scores
(max, mean, spread) and the score's maximum over a centred neighbourhood (so a detection a few
rows early or late still counts). A standardised logistic regression turns those into an
anomaly probability. It is fitted on the labeled rows that no component's learners read the
labels of: the channel ensemble's held-out final fold and the validation range (the
intersection of the components' ``MissionDataModule.label_free_ranges``), so it never learns to
trust a supervised component's in-sample scores. The alarm threshold is chosen on its log-odds
(probabilities round to 1.0 in float32 long before log-odds stop growing, and a threshold of
1.0 alarms nowhere) where it is stable: the candidate with the best mean corrected event-wise
F0.5 over contiguous folds (``stable_f05_threshold``), not on the validation range's few events
alone. The folds are those of the label-free rows when they hold at least ``threshold_min_events``
labeled events (None, the default here and in esa_full's config: one per weight; a combiner.json
written without the key was fitted with 3 and loads so): a supervised component scores the
nominal rows it trained on lower than any other, so a threshold chosen over its training rows sits
below its nominal scores everywhere else and alarms the validation and test ranges throughout.
With fewer events there, the weights cannot be learned either (a logistic regression fitted on
one event's rows learns that event): each component's own fitted decision then stands. By default
(``few_events="label_free_alarm"``) a row alarms where a component whose training read no label
alarms (the GRU: its threshold was chosen on labeled rows it never trained on; a supervised
component's alarms cannot be checked on rows it did not train on when they hold so few events,
and its alarm height was fitted on them), every component when none is label-free; its score is
the highest of those components' scores ranked against their training and validation range.
``few_events="any_alarm"`` reads every component's alarm. With ``few_events="weights"`` the
weights are fitted there all the same and the threshold is chosen over four contiguous folds of
the whole training and validation range (every labeled event there is, not the validation
range's few). With enough events the weights decide (``many_events="weights"``, this class's
default; esa_full's config sets ``"label_free_alarm"``: its weights lost to the GRU's own alarms on
long development missions, benchmarks/RESULTS.md round C6;
``"any_alarm"`` the components' own alarms, ``"label_free_alarm"`` those of the components
whose training read no label, as with few events). Opt-in, ``many_events="cross_fit"`` lets the two
rules compete on held-out folds: each fold of the threshold's in turn is scored by weights and
a threshold fitted on the other folds, and by the components' own alarms; the weights stand
unless the alarms score a higher mean corrected event-wise F0.5. The comparison leans towards
the alarms, whose thresholds were fitted on those very rows: on two of the quality suite's MSL
missions it chose them and their test ranges fell from 0.54 to 0.18 and 0.00
(benchmarks/RESULTS.md, look u). Nothing is fitted on the test range. Fitted numbers are stored
as JSON (no pickle). On an alarmed row, the channels involved are the ``top_channels`` with the
highest per-channel rank across components. Two opt-in options of the weights (off by default:
neither met its bar on long development missions, benchmarks/RESULTS.md): ``gap_close`` closes
gaps between their alarms, the widest width whose mean fold F0.5 is within a tolerance of the
best (``postprocessing.gaps.fold_width``); ``alarm_feature`` adds each component's own alarm
as a feature.

Cost is bounded at any mission length: the training range is cut into blocks of
``block_rows``; when it has more than ``max_rows`` rows, the fit scores only some blocks (every
block holding labeled anomalies first, up to half the budget, then random blocks), each with
its components' context so the features equal whole-range ones. Ranges are scored block by
block, so no step holds per-channel scores of more than one block.
Under DDP ``train()`` fits it once, on global rank 0, after every component has finished: it
needs no collective.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from esa_lightning.data.mission import Mission
from esa_lightning.errors import ESAInputError
from esa_lightning.models.base import RowScores, iter_pieces, piece_bounds
from esa_lightning.models.raised_by import rule_flags
from esa_lightning.postprocessing.f05_search import event_f05, stable_f05_threshold
from esa_lightning.postprocessing.gaps import close_gaps, fold_width
from esa_lightning.runtime.combiner_events import label_free_events
from esa_lightning.runtime.combiner_file import load_combiner, save_combiner
from esa_lightning.runtime.combiner_parts import (
    FEATURES_PER_COMPONENT,
    RANK_QUANTILES,
    alarm_fed,
    any_of,
    any_raised_by,
    any_stuck,
    as_saved,
    check_flag,
    check_gap_close,
    combined_row_scores,
    component_features,
    contiguous_folds,
    label_free_names,
    log_odds,
    logistic_weights,
    rank_average,
    scored_events,
    weights_raised_by,
)
from esa_lightning.settings import check_setting

log = logging.getLogger("esa_lightning")

# what the combiner does when the rows no component trained on hold too few labeled events:
# alarm where any component alarms, where any component whose training read no label alarms,
# or fit the weights all the same
FEW_EVENT_RULES = ("any_alarm", "label_free_alarm", "weights")
# ... and when they hold enough: one rule always, or the rule with the better held-out score
# over the threshold's folds ("cross_fit", opt-in: see the module docstring)
MANY_EVENT_RULES = ("weights", "cross_fit", "any_alarm", "label_free_alarm")


class HybridCombiner:
    """Combines component RowScores into one calibrated alarm."""

    def __init__(self, neighbourhood: int = 10, c: float = 1.0, max_rows: int = 500_000,
                 seed: int = 0, top_channels: int = 3, block_rows: int = 20_000,
                 threshold_min_events: int | None = None, few_events: str = "label_free_alarm",
                 many_events: str = "weights", gap_close: Mapping[str, Any] | None = None,
                 alarm_feature: bool = False) -> None:
        for key, value, allowed in (("few_events", few_events, FEW_EVENT_RULES),
                                    ("many_events", many_events, MANY_EVENT_RULES)):
            if value not in allowed:
                raise ESAInputError(f"must be one of {', '.join(allowed)}",
                                    column=f"combiner.{key}", value=value)
        if not (isinstance(c, int | float) and math.isfinite(c) and c > 0):  # sklearn's C
            raise ESAInputError("must be a finite number > 0", column="combiner.c", value=c)
        check_setting("combiner.threshold_min_events", threshold_min_events)  # None: see below
        # gaps shorter than the fitted width closed between the weights' alarms (None: never)
        self.gap_close = check_gap_close(gap_close)
        # each component's own alarm is a feature of the weights too
        self.alarm_feature = check_flag(alarm_feature, "combiner.alarm_feature")
        self.gap_width = 0
        self.neighbourhood = int(neighbourhood)
        self.threshold_min_events = threshold_min_events
        self.few_events = few_events
        self.many_events = many_events
        # mean held-out EW_F_0.50 of each rule over the threshold's folds (``cross_fit``)
        self.held_out: dict[str, float] | None = None
        # "weights": the logistic regression and its log-odds threshold decide; "any_alarm": the
        # components' own alarms (too few label-free events to learn weights on)
        self.rule = "weights"
        # [components, RANK_QUANTILES] of their fit-range scores (``any_alarm``)
        self.quantiles: np.ndarray | None = None
        # the components whose own alarms and ranked scores the ``any_alarm`` rule reads (empty:
        # all of them; with ``few_events="label_free_alarm"`` those whose training read no label)
        self.alarm_names: list[str] = []
        self.top_channels = int(top_channels)
        self.c = float(c)
        self.max_rows = int(max_rows)
        self.block_rows = max(1, int(block_rows))
        self.seed = int(seed)
        self.names: list[str] = []
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self.coef: np.ndarray | None = None
        self.intercept = 0.0
        self.threshold = 0.0  # on the log-odds (0: probability 0.5)

    @property
    def context_rows(self) -> int:
        """Rows of component scores a row's decision reads on each side: its features'
        neighbourhood, and the alarms a gap is closed from."""
        return self.neighbourhood + self.gap_width

    @property
    def features_per_component(self) -> int:
        """The feature columns (and weights) of each component: 5, 6 with its own alarm."""
        return FEATURES_PER_COMPONENT + int(self.alarm_feature)

    def events_needed(self, n_components: int) -> int:
        """The labeled events the rows no component trained on must hold for weights to be
        learned: ``threshold_min_events``, else one per weight (5 or 6 per component)."""
        given = self.threshold_min_events
        return self.features_per_component * n_components if given is None else given

    @property
    def alarming(self) -> list[str]:
        """The components whose alarms and ranked scores ``any_alarm`` reads: ``alarm_names``,
        or every component when it was never set."""
        return self.alarm_names or self.names

    def features(self, components: dict[str, Any], mission: Mission) -> np.ndarray:
        """float32 [T, 5 * components] for every row of ``mission``, block by block."""
        return self._block_features(components, mission, piece_bounds(len(mission.values),
                                                                       self.block_rows))

    def _block_features(
        self, components: dict[str, Any], mission: Mission, blocks: list[tuple[int, int]]
    ) -> np.ndarray:
        """Features of the rows of ``blocks`` (in order), each scored with its context."""
        return self._block_outputs(components, mission, blocks)[0]

    def _block_outputs(
        self, components: dict[str, Any], mission: Mission, blocks: list[tuple[int, int]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(features, bool alarm of any component) of the rows of ``blocks`` (in order), each
        scored with its context."""
        per_component = []
        any_alarm = np.zeros(sum(b - a for a, b in blocks), dtype=bool)
        for n in self.names:
            # a block's features need ``neighbourhood`` rows of scores beyond it on each side
            wide = [(max(0, a - self.neighbourhood), min(len(mission.values),
                                                         b + self.neighbourhood))
                    for a, b in blocks]
            pieces = iter_pieces(components[n], mission, wide,
                                 description=f"combiner: scoring {n}'s blocks")
            feats, alarms = [], []
            for (a, b), (lo, _, rs) in zip(blocks, pieces, strict=True):
                feats.append(component_features(rs, self.neighbourhood, self.alarm_feature)
                             [a - lo : b - lo])
                alarms.append(rs.alarm[a - lo : b - lo] != 0)
            per_component.append(np.concatenate(feats) if feats
                                 else np.zeros((0, self.features_per_component), np.float32))
            if alarms:
                any_alarm |= np.concatenate(alarms)
        return np.hstack(per_component), any_alarm

    def fit_blocks(self, part: Mission) -> list[tuple[int, int]]:
        """The training blocks the fit scores: all of them when they fit in ``max_rows``."""
        blocks = piece_bounds(len(part.values), self.block_rows)
        if len(part.values) <= self.max_rows:
            return blocks
        y = part.is_anomaly
        rng = np.random.default_rng(self.seed)
        labeled = [i for i, (a, b) in enumerate(blocks) if y[a:b].any()]
        rest = sorted(set(range(len(blocks))) - set(labeled))
        budget = max(1, self.max_rows // self.block_rows)
        chosen = list(rng.permutation(labeled)[: max(1, budget // 2)]) if labeled else []
        chosen += list(rng.permutation(rest)[: max(0, budget - len(chosen))])
        return [blocks[i] for i in sorted(chosen)]

    def describe(self) -> str:
        """How it decides, for reports: fitted weights, or any component's own alarm."""
        how = "fitted weights"
        if self.rule == "any_alarm":
            how = "alarms where any component alarms"
            if self.alarming != self.names:
                how = f"alarms where {any_of(self.alarming)} alarms"
        if self.held_out is not None:
            how += (f" (held-out EW_F_0.50: fitted weights {self.held_out['weights']:.3f}, "
                    f"any component's alarm {self.held_out['any_alarm']:.3f})")
        return f"{type(self).__name__}: {how}"

    def _logit(self, x: np.ndarray) -> np.ndarray:
        """float64 log-odds of anomaly of feature rows ``x``."""
        return log_odds(x, self.mean, self.std, self.coef, self.intercept)

    def fit(
        self,
        components: dict[str, Any],
        fit_range: Mission,
        ranges: list[tuple[int, int]] | None = None,
        label_free_components: list[str] | None = None,
    ) -> HybridCombiner:
        """Fit the weights on the labeled rows of ``fit_range`` (training + validation) that no
        component's learners read the labels of: ``ranges`` ([first, stop) rows, the
        intersection of the components' ``label_free_ranges``; None: the whole fit range). A
        supervised component's scores on its own training rows are far better than anywhere
        else, and a classifier stacked on them learns to trust it blindly. Back to the whole fit
        range, logged, when those rows hold one class only. The threshold, with the weights
        fixed (``choose_threshold``), over folds of those rows when they hold
        ``events_needed`` labeled events, else over four contiguous folds of the whole fit
        range: a stable choice needs events, and the supervised components' training rows the
        least. ``label_free_components``: the components whose training read no label
        (``few_events="label_free_alarm"`` alarms with theirs alone)."""
        self.names = list(components)
        self.alarm_names = list(self.names)
        needed = self.events_needed(len(self.names))
        n = len(fit_range.values)
        ranges = [(0, n)] if ranges is None else [(a, b) for a, b in ranges if b > a]
        events = label_free_events(fit_range, ranges, needed)  # logged
        rule = self.few_events if events < needed else self.many_events
        if rule in ("any_alarm", "label_free_alarm"):
            why = (f"{events} labeled event(s) in the rows no component trained on, fewer than "
                   f"threshold_min_events={needed}: no weights learned "
                   f"(combiner.few_events={rule})" if events < needed
                   else f"combiner.many_events={rule}")
            if rule == "label_free_alarm":
                self.alarm_names = label_free_names(self.names, label_free_components)
            return self._fit_any_alarm(components, fit_range, why)
        self.rule = "weights"
        y = np.concatenate([fit_range.is_anomaly[a:b] for a, b in ranges] or [np.zeros(0)])
        where = "rows " + ", ".join(f"{a}-{b - 1}" for a, b in ranges)
        if len(np.unique(y)) < 2:
            log.warning("combiner: the %d rows no component trained on hold one class; fitting "
                        "on the whole training and validation range", len(y))
            ranges, where = [(0, n)], "the whole fit range"
            events = scored_events(fit_range)
        whole = ranges == [(0, n)]
        # each range's blocks are scored with the rows before them as context, as prediction
        # scores them: a component with a long memory (the GRU's detrend) scores a range
        # alone very differently from the same rows after their history
        blocks = [(a + lo, a + hi) for a, b in ranges
                  for lo, hi in self.fit_blocks(fit_range.slice(a, b))]
        x, any_alarm = self._block_outputs(components, fit_range, blocks)
        y = np.concatenate([fit_range.is_anomaly[a:b] for a, b in blocks]).astype(int)
        n_blocks = len(blocks)
        log.info("combiner: fitting on %d rows of %s (%d blocks)", len(x), where, n_blocks)
        if len(np.unique(y)) < 2:
            log.warning("combiner: its rows hold one class only; using the mean of "
                        "standardised component scores")
        self.mean, self.std, self.coef, self.intercept = logistic_weights(x, y, self.c)
        label_free = not whole and events >= needed
        if not label_free:  # too few events where no component trained: every one there is
            blocks = self.fit_blocks(fit_range)
            if not whole:
                x, any_alarm = self._block_outputs(components, fit_range, blocks)
                y = np.concatenate([fit_range.is_anomaly[a:b] for a, b in blocks]).astype(int)
        log.info("combiner: threshold chosen on %s (%d labeled events in %s)",
                 where if label_free else "the whole fit range", events, where)
        fold_rows = contiguous_folds(blocks, n_folds=4)
        folds = [(fit_range.slice(a, b), self._logit(x[i:j])) for (a, b), (i, j) in fold_rows]
        self.threshold = self.choose_threshold(folds)
        # the widest gap width the folds do not say costs (the GRU's gap_close rule)
        self.gap_width = 0 if self.gap_close is None else fold_width(
            **self.gap_close, folds=[(part, logit > self.threshold) for part, logit in folds],
            who="combiner")
        if events < needed or self.many_events != "cross_fit":
            return self
        self.held_out = self._held_out_f05(fit_range, x, y, any_alarm, fold_rows)
        if self.held_out is None or self.held_out["any_alarm"] <= self.held_out["weights"]:
            return self
        return self._fit_any_alarm(
            components, fit_range,
            f"any component's own alarm held out better than fitted weights over the folds "
            f"(mean EW_F_0.50 {self.held_out['any_alarm']:.3f} against "
            f"{self.held_out['weights']:.3f}; combiner.many_events=cross_fit)",
            # the fit range's blocks are already scored unless the folds were label-free rows
            features=None if label_free else x)

    def _held_out_f05(
        self,
        fit_range: Mission,
        x: np.ndarray,
        y: np.ndarray,
        any_alarm: np.ndarray,
        fold_rows: list[tuple[tuple[int, int], tuple[int, int]]],
    ) -> dict[str, float] | None:
        """Mean corrected event-wise F0.5 of each rule on the folds holding an event, each fold
        held out: ``weights`` fitted (and its threshold chosen) on the other folds' rows,
        ``any_alarm`` the components' own alarms (their thresholds are fitted on the training
        and validation range, as the weights are not). None when no fold holds an event."""
        scores: dict[str, list[float]] = {"weights": [], "any_alarm": []}
        for k, ((a, b), (i, j)) in enumerate(fold_rows):
            part = fit_range.slice(a, b)
            f_any = event_f05(any_alarm[i:j], part)
            if f_any is None:
                continue
            rest = [fold for m, fold in enumerate(fold_rows) if m != k]
            rows = np.concatenate([np.arange(p, q) for _, (p, q) in rest])
            weights = logistic_weights(x[rows], y[rows], self.c)
            t = self.choose_threshold(
                [(fit_range.slice(c, d), log_odds(x[p:q], *weights)) for (c, d), (p, q) in rest],
                quiet=True)
            scores["weights"].append(event_f05(log_odds(x[i:j], *weights) > t, part) or 0.0)
            scores["any_alarm"].append(f_any)
        if not scores["weights"]:
            return None
        held_out = {rule: float(np.mean(f)) for rule, f in scores.items()}
        log.info("combiner: held-out EW_F_0.50 over %d folds: fitted weights %.3f, any "
                 "component's alarm %.3f", len(scores["weights"]), held_out["weights"],
                 held_out["any_alarm"])
        return held_out

    def _fit_any_alarm(
        self, components: dict[str, Any], fit_range: Mission, why: str,
        features: np.ndarray | None = None,
    ) -> HybridCombiner:
        """Each component's own fitted decision stands, and a row alarms where any component's
        does (too few label-free events to learn weights on, or the weights held out worse).
        Its score (reported, not thresholded) is the highest of the components' scores ranked
        against their scores on the training and validation range (``RANK_QUANTILES``
        quantiles each). ``features``: those of ``fit_blocks(fit_range)`` when already scored."""
        log.warning("combiner: alarming where %s alarms: %s", any_of(self.alarming), why)
        self.rule = "any_alarm"
        self.gap_width = 0  # each component closes its own gaps (the GRU's gap_close)
        x = features
        if x is None:
            x = self._block_features(components, fit_range, self.fit_blocks(fit_range))
        scores = x[:, 0::self.features_per_component].astype(np.float64)  # each one's score
        self.quantiles = np.quantile(scores, np.linspace(0.0, 1.0, RANK_QUANTILES), axis=0).T
        # weights that read the components' scores alike, kept so the file has one shape
        self.mean, self.std = as_saved(x.mean(0)), as_saved(x.std(0) + 1e-6)
        self.coef, self.intercept, self.threshold = np.zeros(x.shape[1]), 0.0, 0.0
        return self

    def _ranked_score(self, outputs: dict[str, RowScores]) -> np.ndarray:
        """float32 [T]: the highest of the alarming components' scores as fractions of their fit
        range's scores below them (``any_alarm``)."""
        assert self.quantiles is not None
        ranks = [
            np.searchsorted(q, np.nan_to_num(outputs[n].score.astype(np.float64), posinf=1e6),
                            side="right") / len(q)
            for n, q in zip(self.names, self.quantiles, strict=True)
            if n in self.alarming
        ]
        return np.max(ranks, axis=0).astype(np.float32)

    def choose_threshold(
        self, folds: list[tuple[Mission, np.ndarray]], quiet: bool = False
    ) -> float:
        """The log-odds threshold with the best mean corrected event-wise F0.5 over ``folds``
        ((range, its log-odds) pairs; ranges without a labeled event are left out), over 60
        quantiles (0.5 to 0.9999) of their pooled log-odds; the 99th percentile of them when
        no fold holds an event."""
        pooled = np.concatenate([logit for _, logit in folds]) if folds else np.zeros(1)
        candidates = np.unique(np.quantile(pooled, np.linspace(0.5, 0.9999, 60)))
        found = stable_f05_threshold(
            candidates, [(part, lambda t, z=logit: z > t) for part, logit in folds]
        )
        if found is None:
            if not quiet:
                log.warning("combiner: no labeled event to choose the threshold on; 99th "
                            "percentile")
            return float(np.quantile(pooled, 0.99))
        best, mean_f, n_folds = found
        if not quiet:
            log.info("combiner threshold %.4f (log-odds; mean EW_F_0.50 %.4f over %d folds)",
                     best, mean_f, n_folds)
        return best

    def score_rows(self, components: dict[str, Any], mission: Mission) -> RowScores:
        outputs = {n: components[n].score_rows(mission) for n in self.names}
        channel = [o.channel_scores for o in outputs.values() if o.channel_scores is not None]
        channel_scores = rank_average(channel) if channel else None
        threshold = None
        if self.rule == "any_alarm":
            score = self._ranked_score(outputs)
            alarm = np.any([outputs[n].alarm != 0 for n in self.alarming], axis=0).astype(np.uint8)
            raised = any_raised_by([outputs[n] for n in self.alarming])
            read = self.alarming  # the components whose rules its rows name
        else:
            x = np.hstack([component_features(outputs[n], self.neighbourhood, self.alarm_feature)
                           for n in self.names])
            logit = self._logit(x)
            score = (1.0 / (1.0 + np.exp(-np.clip(logit, -50, 50)))).astype(np.float32)
            decided = logit > self.threshold
            # the components whose alarms can raise a row (a positive weight on them)
            read = alarm_fed(self.names, self.coef) if self.alarm_feature else []
            alarm = close_gaps(decided, self.gap_width).astype(np.uint8)
            raised = rule_flags(decided, alarm)
            if self.alarm_feature:  # a row the components' alarms alone raised names their rules
                raised = np.where(decided, weights_raised_by(
                    decided, x, [outputs[n] for n in self.names],
                    (self.mean, self.std, self.coef, self.intercept), self.threshold), raised)
            # the log-odds threshold as a probability, the score's units
            threshold = np.full(len(score), 1.0 / (1.0 + np.exp(-self.threshold)), np.float32)
        return combined_row_scores(score, alarm, channel_scores, self.top_channels, threshold,
                                   raised, any_stuck([outputs[n] for n in read]))

    # ------------------------------------------------------------ persistence
    def save(self, folder: Path) -> None:
        """Write ``combiner.json`` (``combiner_file.save_combiner``)."""
        save_combiner(self, folder)

    @classmethod
    def load(cls, folder: Path) -> HybridCombiner:
        """Read ``combiner.json``; anything missing, malformed or of the wrong length is one
        ``ESAInputError`` naming the file (``combiner_file.load_combiner``)."""
        return load_combiner(cls, folder)
