"""Downstream random forest that tells true from false alarms of the autoencoder (pipeline B §6).

Features per window: total error, per-channel errors, latent vector, attention max / entropy /
argmax position. Trained after the autoencoder on the windows of the fit range (training +
validation, never test) whose score is above a gate = calibrated threshold × ``gate_factor``;
label = the window holds an anomaly or rare event. At scoring time it only judges windows that
already alarm and can only switch alarms off.

The fit reads the fit range ``chunk_rows`` windows at a time (262,144; a runtime setting; 0:
the whole range at once, ``models.window_pieces``) and keeps the window scores [N] and the
features of the gated windows only, not the per-channel errors, latent vectors and scaled inputs
of the whole range. Which windows are gated it tells piece by piece from the scores so far: the
threshold's smoothing is causal (an EWMA), so they give each piece's smoothed scores as the
whole range's do (each piece smooths the scores before it again: a second or so at Mission1's
28 pieces). The forest and its decisions are those of reading the range whole.

Fitted among its model's rules in order after an ``f05`` threshold searched on the fit range,
it does not score the range again: it takes that search's window scores and the same smoothed
(``hand``, ``fit_pass.FitScores``), tells its gated windows from them (not smoothed again:
nor are the alarms its check judges, nor the gap rule's) and sends through
the network only the scoring batches that hold one (``window_batches``), the very batches of
scoring the range whole: the same features, forest and decisions, bit for bit.

``gate_factor`` defaults to 1.0: the forest is trained on the very population it later judges
(windows above the threshold). Lower it (e.g. 0.5) to give it more, borderline, examples.

``fit_on``: ``fit_range`` (the default, and what artifacts written before the setting did)
fits it on the training and validation rows, so a gated model's validation score is partly
in-sample; ``training`` fits it on the training rows alone, and the validation range then
judges it as it would judge unseen rows.

``check``: ``none`` (the default, and what artifacts written before the setting did) ships
the forest it fitted; ``cross_fit`` first judges it on windows it was not fitted on: the fit
range is cut into ``folds`` contiguous stretches, each stretch's gated windows are judged by a
forest fitted on the others (without the ``window`` windows at each edge, which share rows with
the stretch), and the forest ships only when those out-of-fold decisions score a corrected
event-wise F0.5 over the fit range at least as high as the threshold's alarms without it
(``gate_check``). A forest that memorised the windows it was fitted on then cannot switch off a
model's alarms on the strength of its in-sample score.

Stored without pickle: ``save_forest`` / ``load_forest`` (skops files) and, inside Lightning
checkpoints, as skops bytes; loading accepts exactly the types a ``RandomForestClassifier``
is made of (``safe_skops.RANDOM_FOREST_TYPES``), anything else is one ``ESAInputError``.
Under DDP every rank scores the same unsharded fit range and fits the same seeded forest, so no
collective is needed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import skops.io as sio
from sklearn.ensemble import RandomForestClassifier

from esa_lightning.data.mission import Mission
from esa_lightning.data.safe_skops import (
    RANDOM_FOREST_TYPES,
    load_head,
    refuse_other_feature_count,
)
from esa_lightning.data.transforms.windows import labeled_window_mask, n_windows
from esa_lightning.errors import ESAInputError
from esa_lightning.io import atomic_path
from esa_lightning.postprocessing.base import CHUNK_ROWS, PostRule, check_chunk_rows
from esa_lightning.postprocessing.f05_search import event_f05
from esa_lightning.postprocessing.fit_pass import FitPass, FitScores, GatedWindows

log = logging.getLogger(__name__)

# the rows the forest is fitted on (RandomForestGate's fit_on)
FIT_ON: dict[str, Callable[[Mission], Mission]] = {
    "fit_range": Mission.fit_range,
    "training": Mission.train,
}
CHECKS = ("none", "cross_fit")


def window_features(wo, rows: np.ndarray | None = None) -> np.ndarray:
    """float32 [N, 1 + C + D + 3] features of ``WindowOutputs`` computed with ``features=True``;
    with ``rows`` (a bool mask or indices) only those windows' rows, built without the others
    (the gate keeps a few windows of millions). Always finite: an extreme reading makes
    errors of inf (or NaN) that scikit-learn refuses; they become float32's largest value."""
    parts = [wo.total[:, None], wo.per_channel, wo.latent, wo.attention_stats]
    if rows is not None:
        parts = [part[rows] for part in parts]
    features = np.concatenate(parts, axis=1, dtype=np.float32)
    big = np.finfo(np.float32).max
    return np.nan_to_num(features, copy=False, nan=big, posinf=big, neginf=-big)


def rf_accepts(forest: RandomForestClassifier, wo, selected: np.ndarray) -> np.ndarray:
    """bool [selected.sum()]: whether the forest calls each selected window a true anomaly."""
    return forest.predict(window_features(wo, selected)).astype(bool)


def forest_to_bytes(forest: RandomForestClassifier) -> bytes:
    return sio.dumps(forest)


def forest_from_bytes(
    data: bytes, source: str | os.PathLike = "checkpoint"
) -> RandomForestClassifier:
    """The forest skops ``data`` holds; anything but a RandomForestClassifier is refused."""
    return load_head(data, source, RANDOM_FOREST_TYPES, RandomForestClassifier)


def save_forest(forest: RandomForestClassifier, path: str | os.PathLike) -> None:
    """Write a skops file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(forest_to_bytes(forest))


def load_forest(path: str | os.PathLike) -> RandomForestClassifier:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ESAInputError(f"cannot read ({exc.strerror or exc})", path=path) from None
    return forest_from_bytes(data, path)


class GatedPart(NamedTuple):
    """One fit-range grid as the gate sees it: its rows, its windows above the gate (bool [N])
    and its windows above the threshold (the alarms the forest judges)."""

    mission: Mission
    gate: np.ndarray
    alarm: np.ndarray


def contiguous_folds(n: int, folds: int) -> np.ndarray:
    """int [n]: the fold of each of ``n`` windows in time order, ``folds`` contiguous stretches
    of (nearly) equal length."""
    return (np.arange(n, dtype=np.int64) * folds) // max(n, 1)


def out_of_fold_decisions(
    new_forest: Callable[[], RandomForestClassifier],
    x: np.ndarray,
    y: np.ndarray,
    gates: list[np.ndarray],
    folds: int,
    window: int,
) -> list[np.ndarray]:
    """Per part, bool [N]: whether a forest fitted without the window's fold accepts each gated
    window (False elsewhere). ``x``, ``y``: the gated windows' features and labels, the parts'
    in order. Fold k of every part is judged by one forest fitted on the gated windows of the
    other folds, less those within ``window`` windows of fold k (they share rows with it); a
    fold with no window left to learn from keeps its windows."""
    index = [np.flatnonzero(gate) for gate in gates]  # the gated windows, part by part
    fold = np.concatenate(
        [contiguous_folds(len(g), folds)[i] for g, i in zip(gates, index, strict=True)]
    )
    bounds = [fold_bounds(len(g), folds) for g in gates]
    accepted = np.zeros(len(y), dtype=bool)
    for k in range(folds):
        judged = fold == k
        if not judged.any():
            continue
        learn = ~np.concatenate(
            [_near(i, *b[k], window) for i, b in zip(index, bounds, strict=True)]
        )
        if not learn.any():
            accepted[judged] = True
            continue
        forest = new_forest().fit(x[learn], y[learn].astype(np.int64))
        accepted[judged] = forest.predict(x[judged]).astype(bool)
    parts = np.split(accepted, np.cumsum([len(i) for i in index])[:-1])
    out = [np.zeros(len(g), dtype=bool) for g in gates]
    for part, i, decided in zip(out, index, parts, strict=True):
        part[i] = decided
    return out


def fold_bounds(n: int, folds: int) -> list[tuple[int, int]]:
    """(first, last) window of each of ``contiguous_folds(n, folds)``'s folds; last < first
    for a fold that holds no window (fewer windows than folds)."""
    return [(-(-k * n // folds), -(-(k + 1) * n // folds) - 1) for k in range(folds)]


def _near(index: np.ndarray, first: int, last: int, window: int) -> np.ndarray:
    """bool over windows ``index``: inside the fold ``first``..``last`` or within ``window``
    windows of it (none for an empty fold)."""
    if last < first:
        return np.zeros(len(index), dtype=bool)
    return (index >= first - window) & (index <= last + window)


def gate_check(
    model: Any, gated: list[GatedPart], accepted: list[np.ndarray]
) -> tuple[float | None, float | None]:
    """(F0.5 with the forest's ``accepted`` windows, F0.5 without a forest): the corrected
    event-wise F0.5 of the row alarms over the fit range, the mean over its grids that hold an
    event (None when none does)."""
    with_gate, without = [], []
    for part, keep in zip(gated, accepted, strict=True):
        n = len(part.mission.values)  # at least one window: no padding

        def rows(alarm_w: np.ndarray, n: int = n) -> np.ndarray:
            return model.window_to_rows(alarm_w.astype(np.float32), n) > 0

        f_with = event_f05(rows(part.alarm & keep), part.mission)
        if f_with is not None:
            with_gate.append(f_with)
            without.append(event_f05(rows(part.alarm), part.mission))
    if not with_gate:
        return None, None
    return float(np.mean(with_gate)), float(np.mean(without))


class RandomForestGate(PostRule):
    """Fit the alarm-filtering forest on the fit range after training, behind the model's
    threshold (listed after it in ``post_processing``: the gate is the threshold)."""

    kind = "random_forest"
    stage = 1
    single = "its model reads the first one only: the second would be fitted and never used"
    #: its forests' cores: the trees' random states are drawn before they are fitted in
    #: parallel, so every value fits the same forests and decides alike; the windows its fit
    #: scores at a time (the same scores and features for any value)
    RUNTIME_SETTINGS = frozenset({"n_jobs", "chunk_rows"})

    def __init__(
        self,
        gate_factor: float = 1.0,
        n_estimators: int = 100,
        max_depth: int | None = None,
        random_state: int = 0,
        n_jobs: int | None = None,
        fit_on: str = "fit_range",
        check: str = "none",
        folds: int = 5,
        chunk_rows: int = CHUNK_ROWS,
    ) -> None:
        super().__init__()
        if fit_on not in FIT_ON:
            raise ESAInputError(
                "fit_on must be 'fit_range' or 'training'", column="fit_on", value=fit_on
            )
        if check not in CHECKS:
            raise ESAInputError(f"check must be one of {CHECKS}", column="check", value=check)
        if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
            raise ESAInputError(
                "folds must be an integer of at least 2", column="folds", value=folds
            )
        self.fit_on, self.check, self.folds = fit_on, check, folds
        self.chunk_rows = check_chunk_rows(chunk_rows)
        self.gate_factor = gate_factor
        self.n_estimators, self.max_depth = n_estimators, max_depth
        self.random_state, self.n_jobs = random_state, n_jobs
        self.forest: RandomForestClassifier | None = None
        self.source: Path | None = None  # the skops file the forest was read from
        self.handing = False  # fitted in order, the gap rule's fit next (``fit_in_order``)
        #: the threshold's fit-range window scores, handed over for the next fit only (``hand``)
        self.handed: FitScores | None = None

    def accepts(self, wo: Any, alarm_w: np.ndarray) -> np.ndarray:
        """``alarm_w`` with the windows the forest calls false alarms switched off."""
        return self.judge(wo, alarm_w)[0]

    def judge(self, wo: Any, alarm_w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(``alarm_w`` with the forest's false alarms switched off, float32 [N] the forest's
        probability of a true anomaly for each alarmed window, NaN for the others). The forest
        keeps a window whose probability is above 0.5, which is what ``predict`` decides."""
        judged = self.forest is not None and alarm_w.any()
        return self.judge_features(window_features(wo, alarm_w) if judged else None, alarm_w)

    def judge_features(
        self, features: np.ndarray | None, alarm_w: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``judge`` of window alarms ``alarm_w`` given the features of its alarmed windows
        (``window_features`` of them, in window order; unread without a forest or an alarm)."""
        probability = np.full(len(alarm_w), np.nan, dtype=np.float32)
        if self.forest is None or not alarm_w.any():
            return alarm_w, probability
        refuse_other_feature_count(  # a head of another model (an edited artifact)
            self.forest, features.shape[1], self.source or "the random forest head",
            "the forest head", "this model's windows",
        )
        proba = self.forest.predict_proba(features)
        positive = list(self.forest.classes_).index(1) if 1 in self.forest.classes_ else None
        probability[alarm_w] = 0.0 if positive is None else proba[:, positive]
        kept = alarm_w.copy()
        kept[alarm_w] = self.forest.classes_[proba.argmax(axis=1)].astype(bool)  # = predict
        return kept, probability

    def fit_in_order(self, model: Any, datamodule: Any) -> RandomForestClassifier | None:
        """``fit`` among its model's rules fitted in order: fitted on the fit range, its
        scoring of it (window scores, the gated windows' features) is handed to the model's
        ``gap_close`` rule, fitted next on the alarms they make (``fit_pass``)."""
        self.handing = True
        try:
            return self.fit(model, datamodule)
        finally:
            self.handing = False

    def fit(self, model: Any, datamodule: Any) -> RandomForestClassifier | None:
        """Fit on ``datamodule.mission``'s ``fit_on`` rows. Fitted alone, it hands nothing to
        the gap rule (no gap fit follows to read and drop it); in order: ``fit_in_order``."""
        handed, self.handed = self.handed, None  # for this fit only
        mission = datamodule.mission
        if handed is not None and (self.fit_on != "fit_range" or not handed.holds(model, mission)):
            handed = None  # another mission or scoring: each grid scored again
        grids = mission.grids().items()
        gap_rule = getattr(model, "gap_rule", None)
        handing = self.handing and gap_rule is not None and self.fit_on == "fit_range"
        scored = FitPass(mission, model.scoring_key()) if handing else None
        forest = self.fit_parts(model, {name: FIT_ON[self.fit_on](m) for name, m in grids},
                                None if scored is None else scored.grids, handed)
        if scored is not None:
            gap_rule.hand(scored)
        return forest

    def fit_parts(
        self,
        model: Any,
        parts: dict[str | None, Mission],
        scored: dict[str | None, GatedWindows] | None = None,
        handed: FitScores | None = None,
    ) -> RandomForestClassifier | None:
        """Fit on fit-range missions (``{series name or None: mission.fit_range()}``);
        ``scored``, when given, receives each part's window scores and gated features;
        ``handed``: parts' window scores already computed (``window_totals`` of the part) and
        smoothed (``FitScores``)."""
        window = model.hparams.window
        threshold = model.threshold_rule
        feats, labels, gated = [], [], []
        for name, m in parts.items():
            if len(m.test().values) != 0:
                raise ValueError(f"RandomForestGate got test-range rows of {m.name!r}")
            s = model.series_index(m, name)
            if np.isnan(float(threshold.threshold[s])):
                raise RuntimeError(
                    "RandomForestGate needs a fitted threshold: list a threshold rule before it "
                    "in post_processing"
                )
            if len(m.values) < window:
                continue
            known = None if handed is None else handed.totals.get(name)
            if known is not None:
                known = (known, handed.smoothed.get(name))
            gate, x_m, total, smoothed = self._gated_features(model, m, name, s, known)
            feats.append(x_m)
            if scored is not None:
                scored[name] = GatedWindows(len(m.values), total, smoothed, gate, x_m)
            gated.append(GatedPart(m, gate, threshold.window_alarms(total, s, smoothed)[1]))
            if model.hparams.get("objective") == "forecast":  # a window is its forecast row
                labels.append(m.is_anomaly[window - 1 :].astype(bool)[gate])
            else:
                labels.append(labeled_window_mask(m.is_anomaly, window)[gate])
        y = np.concatenate(labels) if labels else np.zeros(0, dtype=bool)
        if len(np.unique(y)) < 2:
            log.warning(
                "RandomForestGate skipped: the gated fit-range windows hold %s (%d windows); "
                "a forest needs both labeled and unlabeled windows",
                "no class at all" if len(y) == 0 else f"only class {int(y[0])}",
                len(y),
            )
            self.forest = None
            return None
        x = np.concatenate(feats)
        if self.check == "cross_fit" and not self._passes_check(model, gated, x, y):
            self.forest = None
            return None
        forest = self._new_forest().fit(x, y.astype(np.int64))
        log.info("RandomForestGate fitted on %d windows (%d labeled)", len(y), int(y.sum()))
        self.forest = forest
        return forest

    def _gated_features(
        self,
        model: Any,
        m: Mission,
        name: str | None,
        series: int,
        known: tuple[np.ndarray, np.ndarray | None] | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(bool [N] the windows of ``m`` above the gate, their features, float32 [N] every
        window's score, the same smoothed: ``threshold.smoothed``), ``chunk_rows`` windows at
        a time (``model.window_pieces``): a piece's smoothed scores are those of the scores up
        to its end (the smoothing is causal), the last piece's those of the whole range.
        ``known``: the window scores already computed and the same smoothed (None: not), whose
        gated windows' scoring batches alone are scored (``_known_features``)."""
        threshold = model.threshold_rule
        cut = float(threshold.threshold[series]) * self.gate_factor
        found = None if known is None else self._known_features(model, m, name, *known, cut)
        if found is not None:
            return found
        totals, gates, feats = [], [], []
        pieces = model.window_pieces(m, series=name, chunk_rows=self.chunk_rows, features=True)
        for first, wo in pieces:
            totals.append(wo.total)
            smoothed = threshold.smoothed(np.concatenate(totals))  # up to the piece's end
            gates.append(smoothed[first:] > cut)
            feats.append(window_features(wo, gates[-1]))
        return np.concatenate(gates), np.concatenate(feats), np.concatenate(totals), smoothed

    def _known_features(
        self,
        model: Any,
        m: Mission,
        name: str | None,
        total: np.ndarray,
        smoothed: np.ndarray | None,
        cut: float,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """``_gated_features`` from the window scores ``total`` of ``m`` already computed and
        the same smoothed (``smoothed``; None: smoothed here): the gated windows' features from
        the scoring batches holding them (``window_batches``: those of scoring ``m`` whole; the
        first batch where none is gated, for the features' width), or None where ``total`` is
        not ``m``'s scoring: another window count, or a batch scored otherwise (``m`` is then
        scored whole again)."""
        if len(total) != n_windows(len(m.values), model.hparams.window):
            return None
        if smoothed is None or len(smoothed) != len(total):
            smoothed = model.threshold_rule.smoothed(total)
        gate = smoothed > cut
        needed = gate if gate.any() else np.arange(len(gate)) == 0
        feats = []
        batches = model.window_batches(m, needed, series=name, chunk_rows=self.chunk_rows,
                                       features=True)
        for first, wo in batches:
            if wo.total.tobytes() != total[first : first + len(wo.total)].tobytes():
                log.warning("RandomForestGate: the handed window scores of %s are not this "
                            "model's; the fit range is scored again", name or m.name)
                return None
            feats.append(window_features(wo, gate[first : first + len(wo.total)]))
        return gate, np.concatenate(feats), total, smoothed

    def _new_forest(self) -> RandomForestClassifier:
        return RandomForestClassifier(
            n_estimators=self.n_estimators,
            max_depth=self.max_depth,
            class_weight="balanced",
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        )

    def _passes_check(
        self, model: Any, gated: list[GatedPart], x: np.ndarray, y: np.ndarray
    ) -> bool:
        """Whether out-of-fold decisions of the forest score at least the threshold's own
        alarms' F0.5 over the fit range (``gate_check``); logs both, a forest that loses as a
        warning."""
        accepted = out_of_fold_decisions(
            self._new_forest, x, y, [part.gate for part in gated], self.folds, model.hparams.window
        )
        with_gate, without = gate_check(model, gated, accepted)
        loses = with_gate is not None and without is not None and with_gate < without
        (log.warning if loses else log.info)(
            "RandomForestGate cross-fit check over %d folds: EW_F_0.50 %s with the forest out "
            "of fold, %s without it%s",
            self.folds,
            "n/a" if with_gate is None else f"{with_gate:.4f}",
            "n/a" if without is None else f"{without:.4f}",
            ": not shipped, the threshold's alarms stand" if loses else "",
        )
        return not loses

    def save_extra(self, folder: Path, name: str) -> None:
        if self.forest is not None:
            save_forest(self.forest, Path(folder) / f"{name}.skops")

    def load_extra(self, folder: Path, name: str) -> None:
        path = Path(folder) / f"{name}.skops"
        self.forest = load_forest(path) if path.is_file() else None
        self.source = path

    def checkpoint_extra(self) -> bytes | None:
        return None if self.forest is None else forest_to_bytes(self.forest)

    def restore_checkpoint_extra(self, data: bytes) -> None:
        self.forest = forest_from_bytes(data)
