"""Logistic heads and the GBDT original of the channel ensemble, and the §4.8 post-processing."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from esa_lightning.artifact import Detector, mission_schema
from esa_lightning.data.transforms.segments import SPLIT_TEST, SPLIT_TRAIN, SPLIT_VAL
from esa_lightning.errors import ESAInputError
from esa_lightning.models.channel_ensemble import heads
from esa_lightning.models.channel_ensemble.gbdt import CHECKPOINT_KEY, GBDTChannelEnsemble
from esa_lightning.models.channel_ensemble.network import ChannelEnsemble, row_novelty
from esa_lightning.postprocessing.peaks import peaks_to_alarm, spread_rows_to_samples
from tests.helpers import check_fit_held_once, make_tiny_mission, tiny_datamodule


# ----------------------------------------------------------------------------- postprocess
def test_spread_averages_covering_rows():
    spans = np.array([[0, 3], [2, 5], [4, 7]])
    prob = np.array([0.2, 0.6, 1.0])
    got = spread_rows_to_samples(prob, spans, 10, fill=-1.0)
    expect = [0.2, 0.2, 0.4, 0.4, 0.8, 0.8, 1.0, 1.0, -1.0, -1.0]
    np.testing.assert_allclose(got, expect, atol=1e-6)
    two = spread_rows_to_samples(np.stack([prob, 1 - prob], 1), spans, 10)
    np.testing.assert_allclose(two[:8, 1], 1 - np.array(expect[:8]), atol=1e-6)


def test_spread_matches_a_loop_on_random_spans():
    rng = np.random.default_rng(0)
    first = np.sort(rng.integers(0, 90, 30))
    spans = np.stack([first, first + rng.integers(0, 20, 30)], 1)
    prob = rng.random(30)
    got = spread_rows_to_samples(prob, spans, 100)
    for t in range(100):
        cover = (spans[:, 0] <= t) & (spans[:, 1] >= t)
        assert got[t] == pytest.approx(prob[cover].mean() if cover.any() else 0.0, abs=1e-6)


def test_peaks_mark_regions_above_height_with_buffer():
    prob = np.zeros(40)
    prob[10:14] = [0.6, 0.9, 0.7, 0.55]  # one region with a peak
    prob[30:32] = [0.4, 0.45]  # below the height: nothing
    prob[38:] = [0.7, 0.8]  # rising to the end of the series still counts
    alarm = peaks_to_alarm(prob, height=0.5, buffer=2)
    expect = np.zeros(40, dtype=np.uint8)
    expect[8:16] = 1
    expect[36:] = 1
    np.testing.assert_array_equal(alarm, expect)
    assert alarm.dtype == np.uint8
    assert not peaks_to_alarm(np.full(10, 0.3)).any()
    flat = peaks_to_alarm(np.full(10, 0.9), buffer=0)  # a plateau is one region
    assert flat.all()


def test_peak_filters_drop_regions():
    prob = np.full(30, 0.4)  # the small bump's prominence is 0.15 (its saddle to the big one)
    prob[5:8] = [0.52, 0.55, 0.52]
    prob[20:23] = [0.6, 0.95, 0.6]
    alarm = peaks_to_alarm(prob, height=0.5, buffer=0, prominence=0.3)
    assert not alarm[5:8].any() and alarm[20:23].all()


# ------------------------------------------------------------------------------------ heads
ALARM = {"alarm": {"kind": "peaks"}}


@pytest.fixture(scope="module")
def dm():
    return tiny_datamodule()


def test_head_rows_exclude_the_test_range(dm):
    assert (dm.split[heads.meta_rows(dm).any(axis=(0, 1))] == SPLIT_TRAIN).all()
    assert (dm.split[heads.cv_rows(dm).any(axis=0)] == SPLIT_TRAIN).all()
    ev = heads.event_rows(dm)
    assert np.isin(dm.split[ev], (SPLIT_TRAIN, SPLIT_VAL)).all() and ev[dm.split == SPLIT_VAL].all()


def _corrupt_test_range(dm):
    """A copy of ``dm`` whose test-range rows hold other features and inverted labels."""
    other = copy.copy(dm)
    test = torch.as_tensor(dm.split == SPLIT_TEST)
    other.X = dm.X.clone()
    other.X[:, test] = torch.randn_like(dm.X[:, test]) * 3
    other.y = dm.y.clone()
    other.y[:, test] = 1 - dm.y[:, test]
    other.y_event = dm.y_event.clone()
    other.y_event[test] = 1 - dm.y_event[test]
    return other


@pytest.mark.parametrize("novelty", [False, True])
def test_heads_never_read_test_range_rows(dm, novelty):
    torch.manual_seed(0)
    dims = {k: dm.dims[k] for k in ("n_channels", "n_features", "group_index")}
    model = ChannelEnsemble(**dims, novelty=novelty)
    fitted = []
    for source in (dm, _corrupt_test_range(dm)):
        m = copy.deepcopy(model)
        assert heads.fit_meta_heads(m, source) > 0
        assert heads.fit_event_head(m, source)
        fitted.append(m.state_dict())
    for key in ("meta_w", "meta_b", "cv", "event_w", "event_b") + ("novelty_w",) * novelty:
        torch.testing.assert_close(fitted[0][key], fitted[1][key])
    assert not torch.equal(fitted[0]["meta_w"], model.state_dict()["meta_w"])
    assert ((fitted[0]["cv"] >= 0) & (fitted[0]["cv"] <= 1)).all()


def test_head_rules_log_through_the_project_logger(dm, caplog, capsys):
    """The head rules printed with Lightning's model.print: bare lines on stdout, without the
    logger's prefix and missing from train.log; they log as the other post rules do."""
    from esa_lightning.models.channel_ensemble.model import LitChannelEnsemble

    lit = LitChannelEnsemble(**dm.dims, post_processing=ALARM)
    one_class = copy.copy(dm)
    one_class.y_event = torch.zeros_like(dm.y_event)
    with caplog.at_level("INFO", logger="esa_lightning"):
        heads.MetaHeads().fit(lit, dm)
        heads.EventHead().fit(lit, one_class)
    assert capsys.readouterr().out == ""
    logged = [(r.name, r.levelname, r.getMessage()) for r in caplog.records]
    n = lit.model.meta_w.shape[0] * lit.model.meta_w.shape[1]
    assert (heads.__name__, "INFO", f"meta heads: {n} logistic regressions fitted") in logged
    assert (heads.__name__, "WARNING",
            "event head: one class only on its rows, kept the trained head") in logged


def test_shared_learners_hold_one_set_of_weights_and_one_meta_per_external(dm):
    dims = {k: dm.dims[k] for k in ("n_channels", "n_features", "group_index")}
    shared = ChannelEnsemble(**dims, share_learners=True)
    own = ChannelEnsemble(**dims)
    assert shared.w1.shape[0] == shared.meta_w.shape[0] == 1
    assert sum(p.numel() for p in shared.parameters()) < sum(p.numel() for p in own.parameters())
    out = shared(dm.X[:, :7])
    assert out.internal_logits.shape == (dims["n_channels"], 3, 5, 7)
    assert out.channel_prob.shape == (dims["n_channels"], 7)
    # the meta of each external is fitted once, on the eval2 rows of every channel
    assert heads.fit_meta_heads(shared, dm) == shared.meta_b.shape[1]


def test_novelty_lets_the_event_head_catch_events_its_learners_miss(dm):
    """Untrained learners give group scores that say little; the refitted event head puts a
    positive weight on the row novelty (events shift every channel of a group) and its test-range
    ranking beats the head without it. Without the option the network has no novelty weight."""
    from sklearn.metrics import roc_auc_score

    dims = {k: dm.dims[k] for k in ("n_channels", "n_features", "group_index")}
    y = dm.y_event.numpy() > 0.5
    train = dm.split == SPLIT_TRAIN
    nov = row_novelty(dm.X).numpy()
    assert nov[train & y].mean() > nov[train & ~y].mean()

    test = dm.split == SPLIT_TEST
    auc = {}
    for novelty in (False, True):
        torch.manual_seed(0)
        model = ChannelEnsemble(**dims, novelty=novelty)
        assert ("novelty_w" in model.state_dict()) is novelty
        assert heads.fit_event_head(model, dm)
        with torch.no_grad():
            out = model(dm.X)
        auc[novelty] = roc_auc_score(y[test], out.event_prob.numpy()[test])
    assert model.novelty_w.item() > 0
    assert auc[True] > auc[False] and auc[True] > 0.8


def test_a_channel_held_constant_adds_no_novelty(dm):
    """After its recording ends a channel holds its last value (the zero-order hold fills the
    grid): its features lie far from its training rows, but with the scaler's flat_z it adds no
    novelty, so the row's novelty is the other channels'."""
    from esa_lightning.models.channel_ensemble.model import LitChannelEnsemble

    mission = dm.mission
    held = mission.values.copy()
    start = mission.test_start
    held[start:, 0] = held[start - 1, 0]  # channel 0's data end at the test range
    lit = LitChannelEnsemble(**dm.dims, novelty=True, post_processing=ALARM)
    lit.set_preprocessing(dm)
    x, spans = lit.featurise(dataclasses.replace(mission, values=held))
    x = torch.from_numpy(x)
    inside = torch.from_numpy(spans[:, 0] >= start)
    others = row_novelty(x[1:])
    unmasked = row_novelty(x)
    masked = row_novelty(x, flat_z=lit.model.flat_z)
    assert (unmasked[inside] > others[inside] + 0.5).all()  # the held channel dominates
    torch.testing.assert_close(masked[inside], others[inside])
    # a channel that varies is never taken for a held one
    torch.testing.assert_close(masked[~inside], unmasked[~inside])


def test_channel_scores_name_the_channel_whose_novelty_raises_the_alarm(dm):
    """An alarm raised by the novelty is the doing of the channel farthest from its training
    rows: the channel scores that name the channels behind an alarm (``score_rows``) carry each
    channel's weighted novelty beside its learners' probability, so a learner whose probability
    merely sits highest does not take the blame. Without the option they are the
    probabilities."""
    from esa_lightning.models.channel_ensemble.model import LitChannelEnsemble

    mission = dm.mission
    start = mission.test_start
    moved = mission.values.copy()
    moved[start:, 2] += 50 * np.nanstd(moved[:start, 2])  # channel 2 leaves its training range
    moved = dataclasses.replace(mission, values=moved)
    for novelty in (False, True):
        lit = LitChannelEnsemble(
            **dm.dims, novelty=novelty, channel_scores="evidence", post_processing=ALARM
        )
        lit.set_preprocessing(dm)
        net = lit.model
        with torch.no_grad():  # learners that ignore their input, channel 0's the most confident
            net.w2.zero_()
            net.b2.copy_(torch.tensor([2.0, 0.0, -1.0, -1.0])[:, None, None].expand_as(net.b2))
            if novelty:
                net.novelty_w.fill_(1.0)
        x, spans = lit.featurise(moved)
        out = lit.predict_rows(x)
        evidence = net.channel_evidence(out).numpy()
        scores = lit.score_rows(moved).channel_scores
        expect = spread_rows_to_samples(evidence.T, spans, len(moved.values))
        np.testing.assert_allclose(scores, expect, rtol=1e-6)
        if not novelty:
            np.testing.assert_array_equal(evidence, out.channel_prob.numpy())
            assert (evidence.argmax(0) == 0).all()  # the learners alone point at channel 0
    nov = out.channel_novelty.numpy()
    others = np.delete(nov, 2, axis=0).max(0)
    farthest = (spans[:, 0] >= start) & (nov[2] > others + 1.0)
    assert farthest.sum() > 20
    assert (evidence[:, farthest].argmax(0) == 2).all()
    # an artifact trained before the option scores probabilities, as its stored reference does
    lit.hparams.pop("channel_scores")
    np.testing.assert_array_equal(
        lit.score_rows(moved).channel_scores,
        spread_rows_to_samples(out.channel_prob.numpy().T, spans, len(moved.values)),
    )
    with pytest.raises(ESAInputError, match="channel_scores"):
        LitChannelEnsemble(**dm.dims, channel_scores="loudest", post_processing=ALARM)


def test_gbdt_never_reads_test_range_rows_and_round_trips(dm, tmp_path):
    mission = dm.mission
    small = dict(**dm.dims, max_iter=15, n_threads=1, post_processing=ALARM)
    a = GBDTChannelEnsemble(**small).fit(dm)
    b = GBDTChannelEnsemble(**small).fit(_corrupt_test_range(dm))
    np.testing.assert_allclose(a.meta_w, b.meta_w)
    np.testing.assert_allclose(a.event_w, b.event_w)

    scores = a.score_rows(mission)
    t = len(mission.values)
    assert scores.score.shape == (t,) and scores.channel_scores.shape == (t, 4)
    assert scores.alarm.dtype == np.uint8
    flagged = mission.is_anomaly.astype(bool)
    assert scores.score[flagged].mean() > scores.score[~flagged].mean()

    Detector({"gbdt": a}, mission_schema(mission)).save(tmp_path / "gbdt")
    loaded = Detector.load(tmp_path / "gbdt").components["gbdt"]
    assert isinstance(loaded, GBDTChannelEnsemble)
    np.testing.assert_array_equal(loaded.score_rows(mission).score, scores.score)
    folder = tmp_path / "gbdt" / "components" / "gbdt"
    assert (folder / "trees.skops").is_file() and (folder / "arrays.npz").is_file()
    assert not list((tmp_path / "gbdt").rglob("*.pkl"))


def test_gbdt_artifact_holds_its_trees_once_and_older_ones_still_load(dm, tmp_path):
    """The trees are in trees.skops only: the Lightning checkpoint of a fit without gradient
    steps (one more copy of them) stays in the run folder. An artifact written with it loads
    and scores the same, and saves again without it."""
    model = GBDTChannelEnsemble(**dm.dims, max_iter=5, n_threads=1, post_processing=ALARM).fit(dm)
    check_fit_held_once(model, CHECKPOINT_KEY, dm.mission, tmp_path)


def test_gbdt_rejects_other_channels(dm):
    model = GBDTChannelEnsemble(**dm.dims, max_iter=5, n_threads=1, post_processing=ALARM).fit(dm)
    other = make_tiny_mission()
    other.channels = other.channels.assign(Channel=[f"x{i}" for i in range(4)])
    with pytest.raises(ESAInputError, match="channels"):
        model.score_rows(other)

