"""Per-channel error normalisation (postprocessing.channel_norm) and the f05 threshold's
``fit_on`` range: what turned the default detector's chance-level ranking into a useful one."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from esa_lightning.data.mission import Mission, default_channel_table, empty_events
from esa_lightning.errors import ESAInputError
from esa_lightning.models.gru_ae.model import LitGRUAttentionAE
from esa_lightning.postprocessing.channel_norm import ChannelNorm, moving_windows
from tests.unit.test_thresholds import planted_mission


def noisy_housekeeping_mission(T: int = 600, spike: int = 500) -> Mission:
    """Channel 'noisy' (not a target) is white noise 30x larger than the smooth target channel
    'quiet', which carries a spike of 1.5 noise-widths of 'noisy' at row ``spike``."""
    rng = np.random.default_rng(0)
    t = np.arange(T)
    quiet = np.sin(2 * np.pi * t / 40) + 0.02 * rng.standard_normal(T)
    noisy = 3.0 * rng.standard_normal(T)
    quiet[spike] += 4.5
    values = np.stack([quiet, noisy], axis=1).astype(np.float32)
    table = default_channel_table(["quiet", "noisy"])
    table["Target"] = [True, False]
    return Mission(
        "housekeeping",
        values,
        pd.date_range("2000-01-01", periods=T, freq="30s").to_numpy(),
        table,
        np.zeros((T, 2), np.uint8),
        empty_events(),
        val_start=300,
        test_start=450,
    )


def model(**norm) -> LitGRUAttentionAE:
    torch.manual_seed(0)
    rules = {"threshold": {"kind": "percentile", "q": 99}}
    if norm is not None:
        rules["channel_norm"] = {"kind": "channel_norm", **norm}
    return LitGRUAttentionAE(
        n_inputs=2, n_outputs=2, window=5, hidden_size=8, latent_dim=4, post_processing=rules
    )


def spike_rank(m: LitGRUAttentionAE, mission: Mission) -> int:
    """Rank (0 = highest) of the spike's row among the test range's row scores."""
    test = mission.test()
    score = m.provisional_scores(test).score
    return int((score > score[500 - mission.test_start]).sum())


def test_normalised_target_errors_rank_a_target_spike_first():
    mission = noisy_housekeeping_mission()
    raw = model()
    raw.post_rules.pop("channel_norm")
    assert spike_rank(raw, mission) > 3  # raw errors: the noisy housekeeping channel wins

    normed = model(channels="target", aggregate="mean")
    normed.fit_post_processing(SimpleNamespace(mission=mission))
    rule = normed.channel_norm
    assert rule is not None and rule.weight.tolist() == [1.0, 0.0]
    assert spike_rank(normed, mission) == 0
    # per-channel scores are the normalised errors: the spike names the quiet channel
    channels = normed.score_rows(mission.test()).channel_scores
    assert channels[500 - mission.test_start].argmax() == 0


def test_alarms_name_only_the_channels_the_row_score_is_made_of(monkeypatch):
    """With ``channels: target`` the row score is the target channels' alone; an alarmed row
    must not name the non-target channel, even where its normalised error is the largest.
    Its per-channel score is still reported, and every row-level output is unchanged."""
    import esa_lightning.models.gru_ae.alarms as gru

    mission = noisy_housekeeping_mission()
    mission.values[495:505, 1] += 300.0  # the non-target channel jumps where the target spikes
    m = model(channels="target", aggregate="max")
    m.fit_post_processing(SimpleNamespace(mission=mission))
    test = mission.test()
    rows = m.score_rows(test)
    alarmed = rows.alarm.astype(bool)
    spike = 500 - mission.test_start
    assert alarmed[spike]
    assert rows.channel_scores[spike, 1] > rows.channel_scores[spike, 0]  # noisy: the largest
    assert rows.channel_alarm[alarmed, 0].all() and not rows.channel_alarm[:, 1].any()
    assert not rows.channel_alarm[~alarmed].any()

    # choosing among every output channel (as before): the same row-level results
    def among_all(alarm, channel_scores, k, scored=None):
        return top_channel_alarm(alarm, channel_scores, k)

    top_channel_alarm = gru.top_channel_alarm
    monkeypatch.setattr(gru, "top_channel_alarm", among_all)
    before = m.score_rows(test)
    assert before.channel_alarm[spike, 1] == 1  # the non-target channel was named
    np.testing.assert_array_equal(before.score, rows.score)
    np.testing.assert_array_equal(before.alarm, rows.alarm)
    np.testing.assert_array_equal(before.channel_scores, rows.channel_scores)
    np.testing.assert_array_equal(before.threshold, rows.threshold)


def test_norm_is_fitted_on_training_rows_only():
    mission = noisy_housekeeping_mission()
    m = model(channels="all", aggregate="max")
    values = mission.values.copy()
    mission.values[mission.val_start :] *= 1000.0  # later rows must not move the fit
    m.fit_post_processing(SimpleNamespace(mission=mission))
    centre, scale = m.channel_norm.centre.clone(), m.channel_norm.scale.clone()
    mission.values[:] = values
    m2 = model(channels="all", aggregate="max")
    m2.fit_post_processing(SimpleNamespace(mission=mission))
    torch.testing.assert_close(m2.channel_norm.centre, centre)
    torch.testing.assert_close(m2.channel_norm.scale, scale)
    assert m2.channel_norm.weight.tolist() == [1.0, 1.0]


def test_raw_errors_stay_available_and_forecast_mae_uses_them():
    mission = noisy_housekeeping_mission()
    m = model(channels="target")
    m.fit_post_processing(SimpleNamespace(mission=mission))
    raw = m.window_outputs(mission.val(), raw=True).per_channel
    normed = m.window_outputs(mission.val()).per_channel
    rule = m.channel_norm
    expected = (raw - rule.centre[0].numpy()) / rule.scale[0].numpy()
    np.testing.assert_allclose(normed, expected, rtol=1e-5, atol=1e-5)


def flat_channel_mission(T: int = 600, spike: int = 500, wakes: int = 460) -> Mission:
    """Target 'quiet' (a sine with a spike at ``spike``) and target 'flat', constant through
    training and validation, that wakes up at row ``wakes`` with noise a twentieth of the
    spike's size: a channel that held its value while the network learnt."""
    mission = noisy_housekeeping_mission(T, spike)
    rng = np.random.default_rng(1)
    values = mission.values.copy()
    values[:, 1] = 1.0
    values[wakes:, 1] += 0.2 * rng.standard_normal(T - wakes).astype(np.float32)
    mission.values[:] = values
    mission.channels["Target"] = [True, True]
    return mission


def test_a_channel_constant_in_training_cannot_outshout_the_others():
    """Its error spread on training windows is next to nothing, so any later wobble is a
    normalised error in the thousands and the max over channels is its alone; ``min_scale``
    keeps every channel's scale at least that share of the median channel's, and the spike on
    the channel that varies ranks first again."""
    mission = flat_channel_mission()
    ranks, scales = {}, {}
    for min_scale in (1e-3, 0.3):
        m = model(channels="target", aggregate="max", min_scale=min_scale)
        m.fit_post_processing(SimpleNamespace(mission=mission))
        scales[min_scale] = m.channel_norm.scale[0].numpy()
        ranks[min_scale] = spike_rank(m, mission)
    assert scales[1e-3][1] < 0.1 * scales[1e-3][0]  # the flat channel's spread: small
    raw = scales[1e-3]  # the old floor binds on neither channel: these are the spreads
    assert scales[0.3][1] == pytest.approx(0.3 * np.median(raw))
    assert scales[0.3][0] == pytest.approx(raw[0])  # a channel above the floor keeps its own
    assert ranks[1e-3] > 3 and ranks[0.3] == 0


def test_moving_windows_mark_the_windows_where_a_channel_changes():
    held = np.array([1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 3.0])
    # windows of 3 rows start at rows 0..5; a change between rows 2-3 and 6-7
    assert moving_windows(held, 3).tolist() == [False, True, True, False, False, True]
    assert moving_windows(held, 1).all() and len(moving_windows(held, 1)) == 8
    assert len(moving_windows(held, 9)) == 0


def part_time_channel_mission(T: int = 600, spike: int = 500) -> Mission:
    """Target 'quiet' (a sine with a spike at ``spike``) and target 'part_time', held at one
    value except in rows 60-89 of training and from row 460 on, where it carries the same
    noise both times: a channel live in one stretch of the training range (a zero-order-held
    channel between its samples, a channel of a sequential recording)."""
    mission = noisy_housekeeping_mission(T, spike)
    rng = np.random.default_rng(2)
    values = mission.values.copy()
    values[:, 1] = 1.0
    for start, stop in ((60, 90), (460, T)):
        values[start:stop, 1] += 0.5 * rng.standard_normal(stop - start).astype(np.float32)
    mission.values[:] = values
    mission.channels["Target"] = [True, True]
    return mission


def test_a_channel_live_in_one_stretch_is_scaled_by_its_spread_while_it_moves():
    """Over all training windows its error spread is mostly that of its held windows, next to
    nothing, so its ordinary noise in the test range outranks the spike on the other channel;
    measured where it moves, the spread is its noise's and the spike ranks first."""
    mission = part_time_channel_mission()
    ranks, scales = {}, {}
    for spread_on in ("all", "moving"):
        m = model(channels="target", aggregate="max", spread_on=spread_on)
        m.fit_post_processing(SimpleNamespace(mission=mission))
        scales[spread_on] = m.channel_norm.scale[0].numpy()
        ranks[spread_on] = spike_rank(m, mission)
    assert scales["moving"][1] > 2 * scales["all"][1]
    # the sine moves in every window: its spread is the same either way
    assert scales["moving"][0] == pytest.approx(scales["all"][0], rel=1e-6)
    assert ranks["all"] > 3 and ranks["moving"] == 0


def test_a_channel_held_through_training_keeps_the_spread_of_all_its_windows():
    mission = flat_channel_mission()
    scales = {}
    for spread_on in ("all", "moving"):
        m = model(channels="target", aggregate="max", spread_on=spread_on, min_scale=1e-3)
        m.fit_post_processing(SimpleNamespace(mission=mission))
        scales[spread_on] = m.channel_norm.scale[0].numpy()
    np.testing.assert_allclose(scales["moving"], scales["all"], rtol=1e-6)


@pytest.mark.parametrize(
    "bad",
    [
        {"channels": "some"},
        {"aggregate": "sum"},
        {"min_scale": 0.0},
        {"min_scale": 2.0},
        {"spread_on": "live"},
    ],
)
def test_bad_settings_are_refused_by_name(bad):
    with pytest.raises(ESAInputError, match="channels|aggregate|min_scale|spread_on"):
        ChannelNorm(**bad)


def events_in_training_only() -> Mission:
    """A planted labeled spike in the training range, none in the validation range."""
    return planted_mission(at=120)


@pytest.mark.parametrize("fit_on, method", [("validation", "percentile"), ("fit_range", "f05")])
def test_f05_fit_on_chooses_the_labeled_range(fit_on, method, caplog):
    mission = events_in_training_only()
    torch.manual_seed(0)
    m = LitGRUAttentionAE(
        n_inputs=2,
        n_outputs=2,
        window=4,
        hidden_size=8,
        latent_dim=4,
        post_processing={"threshold": {"kind": "f05", "q": 50, "fit_on": fit_on}},
    )
    with caplog.at_level("INFO"):
        m.fit_post_processing(SimpleNamespace(mission=mission))
    thr = float(m.threshold_rule.threshold[0])
    total = m.window_outputs(mission.val()).total
    if method == "f05":
        assert "f05 (fit_range)" in caplog.text
        assert thr > total.max()  # set between nominal windows and the training spike
    else:
        assert "falls back" in caplog.text
        assert thr == pytest.approx(np.percentile(total, 50), rel=1e-5)


def test_f05_fit_on_is_checked():
    with pytest.raises(ESAInputError, match="fit_on"):
        LitGRUAttentionAE(
            n_inputs=2,
            n_outputs=2,
            window=4,
            post_processing={"threshold": {"kind": "f05", "fit_on": "test"}},
        )
