"""The random-forest gate's cross-fit check: out-of-fold decisions, and the verdict they give."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier

from esa_lightning.postprocessing.random_forest import (
    GatedPart,
    RandomForestGate,
    contiguous_folds,
    fold_bounds,
    out_of_fold_decisions,
)
from tests.helpers import toy_mission, with_events

WINDOW = 5


def forest() -> RandomForestClassifier:
    return RandomForestClassifier(n_estimators=20, random_state=0)


def window_model() -> SimpleNamespace:
    """What the check reads of a model: its window, and its window -> row mapping (a row
    alarms when the window ending on it does, as a forecaster maps them)."""

    def window_to_rows(values: np.ndarray, n_rows: int) -> np.ndarray:
        out = np.zeros(n_rows, dtype=np.float32)
        out[WINDOW - 1 :] = values
        return out

    return SimpleNamespace(hparams=SimpleNamespace(window=WINDOW), window_to_rows=window_to_rows)


def test_contiguous_folds_cut_time_into_ordered_stretches():
    folds = contiguous_folds(10, 3)
    assert list(folds) == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert np.all(np.diff(folds) >= 0)
    assert fold_bounds(10, 3) == [(0, 3), (4, 6), (7, 9)]
    first, last = fold_bounds(2, 3)[2]  # more folds than windows: an empty fold
    assert not (contiguous_folds(2, 3) == 2).any() and last < first


def test_each_fold_is_judged_by_a_forest_that_never_saw_it_or_its_neighbours():
    n = 300
    gate = np.ones(n, dtype=bool)
    x = np.arange(n, dtype=np.float64)[:, None]  # the window's own index
    y = (np.arange(n) // 7) % 2 == 0
    seen = []

    class Spy(RandomForestClassifier):
        def fit(self, features, labels, sample_weight=None):
            seen.append(features[:, 0].astype(int))
            return super().fit(features, labels, sample_weight)

    decided = out_of_fold_decisions(lambda: Spy(n_estimators=5), x, y, [gate], 4, WINDOW)
    assert len(seen) == 4 and decided[0].shape == (n,)
    folds = contiguous_folds(n, 4)
    for k, learned in enumerate(seen):
        inside = np.flatnonzero(folds == k)
        near = (learned >= inside[0] - WINDOW) & (learned <= inside[-1] + WINDOW)
        assert not near.any()
        assert len(learned) >= n - len(inside) - 2 * WINDOW


def test_out_of_fold_decisions_follow_learnable_labels_not_memorised_ones():
    rng = np.random.default_rng(0)
    n = 600
    gate = rng.random(n) < 0.5
    x = rng.standard_normal((int(gate.sum()), 3))
    learnable = x[:, 0] > 0
    decided = out_of_fold_decisions(forest, x, learnable, [gate], 5, WINDOW)[0]
    assert not decided[~gate].any()  # only gated windows are judged
    assert (decided[gate] == learnable).mean() > 0.9
    noise = rng.random(len(x)) < 0.5
    in_sample = forest().fit(x, noise).predict(x)
    assert (in_sample == noise).mean() > 0.95
    out_of_fold = out_of_fold_decisions(forest, x, noise, [gate], 5, WINDOW)[0]
    assert (out_of_fold[gate] == noise).mean() < 0.65


def spiky_part(n: int = 2000, seed: int = 0) -> tuple[GatedPart, np.ndarray, np.ndarray]:
    """A fit range of ``n`` rows with 40 threshold crossings, every other one a labeled event,
    and the crossings' features; label ``y`` of each crossing."""
    rng = np.random.default_rng(seed)
    n_windows = n - WINDOW + 1
    starts = np.sort(rng.choice(np.arange(10, n_windows - 10, 40), size=40, replace=False))
    alarm = np.zeros(n_windows, dtype=bool)
    alarm[starts] = True
    labels = np.zeros((n, 1), np.uint8)
    is_event = np.arange(40) % 2 == 0
    for s in starts[is_event]:
        labels[s + WINDOW - 1, 0] = 1  # the row the crossing window alarms on
    m = with_events(toy_mission(np.zeros((n, 1), np.float32), labels, val_start=n, test_start=n))
    assert isinstance(m.events, pd.DataFrame) and m.events["ID"].nunique() == 20
    return GatedPart(m, alarm.copy(), alarm), rng.standard_normal((40, 4)), is_event


def test_check_ships_a_forest_that_tells_events_apart_out_of_fold():
    part, x, y = spiky_part()
    x[:, 0] = y + 0.1 * x[:, 0]  # one feature tells events from false alarms
    assert RandomForestGate(check="cross_fit", folds=4)._passes_check(window_model(), [part], x, y)


def test_check_drops_a_forest_whose_labels_its_features_cannot_explain(caplog):
    part, x, y = spiky_part()
    gate = RandomForestGate(check="cross_fit", folds=4, n_estimators=20)
    with caplog.at_level(logging.WARNING):
        assert not gate._passes_check(window_model(), [part], x, y)
    assert "not shipped" in caplog.text  # a user sees the gate was dropped, and why
    # fitted in sample, the same forest would have looked perfect
    assert (gate._new_forest().fit(x, y).predict(x) == y).mean() > 0.9


def test_the_check_decides_the_same_on_every_core_as_on_one():
    part, x, y = spiky_part()
    x[:, 0] = y + 0.5 * x[:, 0]

    def decisions(n_jobs: int | None) -> list[np.ndarray]:
        gate = RandomForestGate(check="cross_fit", folds=4, n_estimators=20, n_jobs=n_jobs)
        return out_of_fold_decisions(gate._new_forest, x, y, [part.gate], 4, WINDOW)

    one, every = decisions(None), decisions(-1)
    assert one[0].any() and not one[0].all()  # the forests accept some windows, not all
    np.testing.assert_array_equal(one[0], every[0])
