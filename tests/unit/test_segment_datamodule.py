"""SegmentDataModule: pooled rows per channel, fold masks, scaler and kernels fitted on training
rows only (``make_tiny_mission`` / ``tiny_datamodule`` from tests/helpers.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from esa_lightning.data import folds
from esa_lightning.data.segment_datamodule import SegmentDataModule
from esa_lightning.data.transforms import segments
from esa_lightning.data.transforms.segments import (
    SPLIT_NONE,
    SPLIT_TEST,
    SPLIT_TRAIN,
    SPLIT_VAL,
    n_pooled_features,
    pad_kernels,
    run_ids,
    unpad_kernels,
)
from esa_lightning.errors import ESAInputError
from tests.helpers import TINY, make_tiny_mission, tiny_datamodule


@pytest.fixture(scope="module")
def dm() -> SegmentDataModule:
    return tiny_datamodule()


def test_shapes_and_spans(dm):
    c, t = 4, 12000
    f = n_pooled_features(TINY["n_kernels"])
    spans = segments.pooled_spans(t, 20, 5, 20, 4)
    r = len(spans)
    assert dm.X.shape == (c, r, f) and dm.X.dtype == torch.float32
    assert dm.y.shape == (c, r) and dm.y_event.shape == (r,)
    assert dm.train_mask.shape == (c, 3, 5, r) and dm.eval2_mask.shape == (c, 3, r)
    np.testing.assert_array_equal(dm.spans, spans)
    assert dm.dims["n_features"] == f and dm.dims["group_index"] == [0, 1, 0, 1]
    assert torch.isfinite(dm.X).all()


def test_labels_follow_channels(dm):
    """A pooled row is positive for channel c exactly when a labelled sample of c is in it."""
    labels = dm.mission.labels
    for c in range(4):
        flagged = np.isin(labels[:, c], (1, 2))
        expect = [flagged[a : b + 1].any() for a, b in dm.spans]
        np.testing.assert_array_equal(dm.y[c].numpy() > 0, expect)


def test_row_splits_respect_split_points(dm):
    first, last = dm.spans[:, 0], dm.spans[:, 1]
    assert (last[dm.split == SPLIT_TRAIN] < 8000).all()
    val = dm.split == SPLIT_VAL
    assert (first[val] >= 8000).all() and (last[val] < 10000).all()
    assert (first[dm.split == SPLIT_TEST] >= 10000).all()
    straddle = (first < 8000) & (last >= 8000) | (first < 10000) & (last >= 10000)
    np.testing.assert_array_equal(dm.split == SPLIT_NONE, straddle)


def test_masks_are_the_fold_masks_of_training_rows(dm):
    train = dm.split == SPLIT_TRAIN
    n_train = int(train.sum())
    fm = folds.fold_masks(n_train, n_final=2, n_external=3, n_internal=5, seed=0)
    for c in range(4):
        np.testing.assert_array_equal(dm.eval1_mask[c].numpy()[train], fm.mask1[0])
        assert not dm.eval1_mask[c].numpy()[~train].any()
        for e in range(3):
            np.testing.assert_array_equal(dm.eval2_mask[c, e].numpy()[train], fm.eval2[0][e])
            for i in range(5):
                own = dm.train_mask[c, e, i].numpy()
                np.testing.assert_array_equal(own[train], fm.train(0, e, i))
                assert not own[~train].any()
                assert not (own & dm.eval2_mask[c, e].numpy()).any()
                assert not (own & dm.eval1_mask[c].numpy()).any()


def test_scaler_fitted_on_training_rows(dm):
    train = torch.as_tensor(dm.split == SPLIT_TRAIN)
    x = dm.X[:, train]
    varying = torch.as_tensor(dm.feat_std > 1.0 + 1e-6) | (x.std(dim=1) > 1e-3)
    assert torch.allclose(x.mean(dim=1), torch.zeros(()), atol=1e-3)
    assert torch.allclose(x.std(dim=1, unbiased=False)[varying], torch.ones(()), atol=1e-2)


def test_test_range_never_used_for_fitting(dm):
    """Rewriting the validation and test ranges leaves kernels, scaler and masks unchanged."""
    m = dm.mission
    values = m.values.copy()
    labels = m.labels.copy()
    rng = np.random.default_rng(1)
    values[8000:] = rng.standard_normal(values[8000:].shape) * 5
    labels[8000:] = 1
    other = tiny_datamodule(replace(m, values=values, labels=labels))
    np.testing.assert_array_equal(other.feat_mean, dm.feat_mean)
    np.testing.assert_array_equal(other.feat_std, dm.feat_std)
    for a, b in zip(other.kernels, dm.kernels, strict=True):
        for ka, kb in zip(a, b, strict=True):
            np.testing.assert_array_equal(ka, kb)
    np.testing.assert_array_equal(other.train_mask.numpy(), dm.train_mask.numpy())


def test_featurise_reproduces_training_rows_and_any_range(dm):
    x, spans = dm.featurise(dm.mission)
    np.testing.assert_allclose(x, dm.X.numpy(), rtol=1e-5, atol=1e-5)
    part = dm.mission.slice(10000, 12000)
    xt, spans_t = dm.featurise(part)
    assert xt.shape == (4, len(spans_t), dm.X.shape[2]) and spans_t[-1, 1] < 2000


def test_kernels_round_trip_through_buffers(dm):
    padded, lengths = dm.kernel_buffers()
    assert padded.shape == (4, 2, 16)
    back = unpad_kernels(padded, lengths)
    for a, b in zip(back, dm.kernels, strict=True):
        assert [len(k) for k in a] == [len(k) for k in b]
        for ka, kb in zip(a, b, strict=True):
            np.testing.assert_array_equal(ka, kb)
    with pytest.raises(ValueError):
        pad_kernels([[np.ones(20)]], 2, 16)


def test_loader_batches(dm):
    batch = next(iter(dm.train_dataloader()))
    b = len(batch["rows"])
    assert batch["x"].shape == (4, b, dm.X.shape[2]) and batch["train_w"].shape == (4, 3, 5, b)
    assert (dm.split[batch["rows"].numpy()] == SPLIT_TRAIN).all()
    torch.testing.assert_close(batch["x"], dm.X[:, batch["rows"]])


def test_run_ids():
    np.testing.assert_array_equal(
        run_ids(np.array([0, 1, 1, 0, 1, 0, 0, 1])), [-1, 0, 0, -1, 1, -1, -1, 2]
    )


def test_bad_inputs_name_the_problem():
    m = make_tiny_mission()
    with pytest.raises(ESAInputError, match="pooled row"):
        SegmentDataModule(replace(m, val_start=50, test_start=100), **TINY).setup("fit")
    with pytest.raises(ESAInputError, match="labels"):
        SegmentDataModule(replace(m, labels=None), **TINY)
    with pytest.raises(ESAInputError, match="fold"):
        SegmentDataModule(m, fold=2, **TINY)


@pytest.mark.parametrize(
    ("counts", "needle"),
    [
        ({"n_external": 0}, "n_external=0: must be a whole number >= 1"),
        ({"n_internal": 0}, "n_internal=0: must be a whole number >= 1"),
        ({"n_internal": 2.5}, "n_internal=2.5: must be a whole number >= 1"),
        ({"n_final": 0}, "n_final=0: must be a whole number >= 1"),
        ({"fold": 0.5}, "fold=0.5: must be a whole number >= 0"),
    ],
)
def test_fold_counts_are_checked_when_built(counts, needle):
    """``n_external=0`` or ``n_internal=0`` passed the datamodule and crashed the model's
    constructor (numpy's 'zero-size array to reduction operation maximum'), naming no setting."""
    with pytest.raises(ESAInputError, match=needle):
        SegmentDataModule(make_tiny_mission(), **{**TINY, **counts})


def test_a_pool_longer_than_the_training_range_names_the_settings_to_lower():
    """It had named only the mission's ``val_start``, no setting the user could change."""
    m = make_tiny_mission()
    with pytest.raises(ESAInputError) as err:
        SegmentDataModule(m, **{**TINY, "pool": 100_000}).setup("fit")
    assert "datamodule.pool=100000" in str(err.value) and "datamodule.step" in str(err.value)


@pytest.mark.parametrize(
    ("lengths", "needle"),
    [
        ({"min_kernel_len": 17}, "min_kernel_len=17"),  # TINY's max_kernel_len is 16
        ({"max_kernel_len": 21}, "max_kernel_len=21"),  # TINY's window is 20
        ({"min_kernel_len": 0}, "min_kernel_len=0"),
    ],
)
def test_kernel_lengths_that_cannot_fit_a_window_are_refused_when_built(lengths, needle):
    """They were refused by the shapelet mining and matching inside ``setup``, i.e. once
    training began (in esa_full, after the GRU had trained), naming no setting."""
    m = make_tiny_mission()
    with pytest.raises(ESAInputError, match=needle):
        SegmentDataModule(m, **{**TINY, **lengths})
    SegmentDataModule(m, **{**TINY, **lengths, "n_kernels": 0})  # no kernel: nothing to fit


def test_held_out_rows_hold_both_classes_when_the_last_training_rows_are_all_anomalous():
    """The reference holds out the last training rows for the event head and the alarm height;
    where those are one long anomaly (the converted MSL missions), the heads had one class to
    fit and kept their trained weights. The block moves to the latest rows holding both."""
    mission = make_tiny_mission()
    labels, values = mission.labels.copy(), mission.values.copy()
    labels[6300:8000] = 1  # every channel anomalous over the last training rows
    values[6300:8000] += 3.0
    mission = replace(mission, labels=labels, values=values)
    dm = tiny_datamodule(mission)
    train = dm.split == SPLIT_TRAIN
    held = dm.event_rows.numpy() & train
    y = dm.y_event.numpy() > 0.5
    assert held.any() and y[held].any() and not y[held].all()
    learners = dm.train_mask.numpy()[0].any(axis=(0, 1))  # rows some learner of channel 0 fits
    assert y[learners].any() and not y[learners].all()
    # the label-free rows: the held-out block (it no longer ends the training range) and the
    # validation range after the in-sample rows; no in-sample pooled row covers any of them
    ranges = dm.label_free_ranges()
    assert len(ranges) == 2 and ranges[-1][1] == mission.test_start
    in_sample = train & ~dm.event_rows.numpy()
    for a, b in dm.spans[in_sample]:
        assert all(b < lo or a >= hi for lo, hi in ranges)
    first_held = dm.spans[held][0, 0]
    assert ranges[0][0] <= first_held + dm.step * dm.pool and ranges[0][1] < 6300 + 1000


def test_held_out_rows_stay_the_last_ones_when_they_hold_both_classes(dm):
    n_train = int((dm.split == SPLIT_TRAIN).sum())
    held = np.flatnonzero(dm.event_rows.numpy() & (dm.split == SPLIT_TRAIN))
    assert held[-1] == np.flatnonzero(dm.split == SPLIT_TRAIN)[-1]
    assert len(held) == round(0.2 * n_train)
    assert dm.label_free_ranges() == [(dm.label_fit_end(), dm.mission.test_start)]


def test_the_validation_loss_needs_both_classes(dm):
    """The checkpoint / early-stopping monitor is the validation range's loss; where its pooled
    rows are all anomalous (the converted MSL missions), the untrained epoch 0 won it, so the
    held-out training rows join it."""
    np.testing.assert_array_equal(dm.monitor_rows(), np.flatnonzero(dm.split == SPLIT_VAL))
    mission = make_tiny_mission()
    labels = mission.labels.copy()
    labels[7900:10000] = 1  # the whole validation range anomalous
    one_class = tiny_datamodule(replace(mission, labels=labels))
    rows = one_class.monitor_rows()
    val = np.flatnonzero(one_class.split == SPLIT_VAL)
    held = np.flatnonzero(one_class.event_rows.numpy() & (one_class.split == SPLIT_TRAIN))
    assert set(val) < set(rows) and set(held) <= set(rows) and len(rows) == len(val) + len(held)
    assert len({int(r) for r in next(iter(one_class.val_dataloader()))["rows"]}) > 0


@pytest.mark.parametrize("split", ["val_start", "test_start"])
def test_each_ranges_rows_carry_that_ranges_labels(split):
    """An anomaly on channel_1 lying between the last row before a split point and the first
    after it is the later range's (``Mission.slice``): the reader marks both rows, and the
    range ending there unmarks its last row. The channel ensemble read the mission's own labels,
    so the training (validation) range's last pooled rows were positive for the next range's
    event, and shapelets were mined from it."""
    import pandas as pd

    mission = make_tiny_mission()
    # split points where a pooled row (115 samples, every 20) ends on the row before each
    mission = replace(mission, val_start=8015, test_start=10015)
    at = getattr(mission, split)
    labels = mission.labels.copy()
    labels[at - 200 : at + 200] = 0  # nothing else near the split
    labels[at - 1 : at + 1, 0] = 1  # the reader's marks: start floored, end ceiled
    start = mission.timestamps[at - 1] + np.timedelta64(10, "s")
    events = pd.DataFrame({"ID": ["between"], "Channel": ["channel_1"], "StartTime": [start],
                           "EndTime": [start + np.timedelta64(5, "s")], "Category": ["Anomaly"]})
    mission = replace(mission, labels=labels, events=events)
    ranges = (mission.train(), mission.val(), mission.test())
    assert ranges[0 if split == "val_start" else 1].labels[-1, 0] == 0
    own = np.concatenate([r.labels for r in ranges])
    dm = tiny_datamodule(mission)
    kept = dm.split != SPLIT_NONE
    spans = dm.spans[kept]
    for c in range(4):
        expect = [np.isin(own[a : b + 1, c], (1, 2)).any() for a, b in spans]
        np.testing.assert_array_equal(dm.y[c].numpy()[kept] > 0, expect, err_msg=str(c))
    expect = [np.isin(own[a : b + 1], (1, 2)).any() for a, b in spans]
    np.testing.assert_array_equal(dm.y_event.numpy()[kept] > 0, expect)
    before = kept & (dm.spans[:, 1] == at - 1)  # the pooled row ending on the unmarked row
    assert before.any() and not (dm.y[0].numpy()[before] > 0).any()
