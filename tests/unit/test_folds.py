"""Nested fold masks: disjoint levels, exact fractions, per-channel, deterministic."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esa_lightning.data.folds import fold_masks, outer_end
from esa_lightning.errors import ESAInputError


def n_runs(mask: np.ndarray) -> int:
    return int(np.count_nonzero(np.diff(np.concatenate([[0], mask.astype(np.int8)])) == 1))


@settings(max_examples=40, deadline=None)
@given(n_rows=st.integers(0, 3000), block=st.one_of(st.none(), st.integers(1, 80)))
def test_levels_disjoint_and_sizes_exact(n_rows: int, block: int | None) -> None:
    masks = fold_masks(n_rows, block=block, seed=1)
    assert masks.shape == (2, 3, 5)
    for f in range(2):
        m1 = masks.mask1[f]
        assert m1.shape == (n_rows,) and m1.sum() == round(0.2 * n_rows)
        for e in range(3):
            m2 = masks.eval2[f][e]
            assert not (m1 & m2).any()
            assert m2.sum() == round(0.2 * n_rows)
            for i in range(5):
                m3 = masks.shapelet[f][e][i]
                assert not (m3 & (m1 | m2)).any()
                assert m3.sum() == round(0.1 * n_rows)
                train = masks.train(f, e, i)
                assert not (train & (m1 | m2 | m3)).any()
                assert train.sum() == n_rows - m1.sum() - m2.sum() - m3.sum()


def test_outer_folds_are_the_last_fifths() -> None:
    masks = fold_masks(1000)
    assert np.flatnonzero(masks.mask1[0]).tolist() == list(range(800, 1000))
    assert np.flatnonzero(masks.mask1[1]).tolist() == list(range(600, 800))


def test_inner_masks_are_few_blocks() -> None:
    masks = fold_masks(5000, block=100, seed=4)
    for f in range(2):
        for e in range(3):
            assert n_runs(masks.eval2[f][e]) <= 10  # 1000 rows in blocks of 100
            for i in range(5):
                assert n_runs(masks.shapelet[f][e][i]) <= 5
    assert masks.block == 100 and fold_masks(5000).block == 100  # default n_rows // 50


def test_masks_vary_by_repetition_and_seed_and_are_deterministic() -> None:
    a, b, c = fold_masks(2000, seed=0), fold_masks(2000, seed=0), fold_masks(2000, seed=1)
    for f in range(2):
        for e in range(3):
            assert np.array_equal(a.eval2[f][e], b.eval2[f][e])
            for i in range(5):
                assert np.array_equal(a.shapelet[f][e][i], b.shapelet[f][e][i])
    assert not np.array_equal(a.eval2[0][0], a.eval2[0][1])
    assert not np.array_equal(a.shapelet[0][0][0], a.shapelet[0][0][1])
    assert not np.array_equal(a.eval2[0][0], c.eval2[0][0])


def test_masks_follow_each_channel_length() -> None:
    short, long = fold_masks(1000), fold_masks(1500)
    assert long.mask1[0].shape == (1500,)
    assert not np.array_equal(long.mask1[0][:1000], short.mask1[0])
    assert long.mask1[0][1499] and long.mask1[0][1200] and not long.mask1[0][1199]


def test_bad_fractions_raise() -> None:
    with pytest.raises(ESAInputError):
        fold_masks(100, outer_frac=0.4, eval2_frac=0.3)
    with pytest.raises(ESAInputError):
        fold_masks(100, n_internal=0)
    with pytest.raises(ESAInputError):
        fold_masks(100, block=0)


def test_outer_block_moves_off_a_one_class_tail():
    labels = np.zeros(100, dtype=bool)
    labels[30:40] = labels[75:] = True  # the last 20 rows: one anomaly; 35 % anomalous in all
    masks = fold_masks(100, n_final=2, labels=labels, seed=0)
    held = masks.mask1[0]
    assert held.sum() == 20 and labels[held].any() and not labels[held].all()
    assert labels[~held].any() and not labels[~held].all()
    # the latest block with 7 anomalous rows of 20 (35 %): rows 62-81
    assert outer_end(labels, 20) == 82 and np.flatnonzero(held)[[0, -1]].tolist() == [62, 81]
    assert not (masks.mask1[1] & held).any()  # folds stay disjoint and consecutive
    # a tail with both classes stays where the reference puts it, and so does one-class data
    labels[85] = False
    assert outer_end(labels, 20) == 100
    assert outer_end(np.ones(100, dtype=bool), 20) == 100
    np.testing.assert_array_equal(
        fold_masks(100, labels=np.zeros(100, dtype=bool)).mask1[0], fold_masks(100).mask1[0]
    )
