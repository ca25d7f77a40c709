"""ChannelEnsemble surrogate: shapes, the §4.7 aggregation, stacking gradients, a short fit."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from esa_lightning.models.channel_ensemble.model import LitChannelEnsemble
from esa_lightning.models.channel_ensemble.network import (
    ChannelEnsemble,
    group_aggregate,
    soft_event_f05,
    weighted_bce,
)
from esa_lightning.postprocessing.peaks import PeakAlarm
from tests.helpers import make_tiny_mission, tiny_datamodule, trainer

# the reference heads refitted after training, then peak alarms (the model's own callbacks)
POST = {
    "meta_heads": {"kind": "meta_heads"},
    "event_head": {"kind": "event_head"},
    "alarm": {"kind": "peaks", "height": 0.5, "buffer": 100},
}
ALARM_ONLY = {"alarm": {"kind": "peaks", "height": 0.5, "buffer": 100}}

C, F, R = 5, 7, 11
GROUPS = [0, 2, 0, 1, 2]


def make_model(**kw) -> ChannelEnsemble:
    return ChannelEnsemble(C, F, GROUPS, n_external=3, n_internal=4, hidden=6, **kw)


def reference_groups(prob, groups, cv, alpha=1.5, gamma=1.5, beta=0.3, delta=0.05):
    """§4.7 written plainly with loops over groups and rows."""
    prob, groups = np.asarray(prob, dtype=np.float64), np.asarray(groups)
    out = np.zeros((max(groups) + 1, prob.shape[1]))
    for g in range(out.shape[0]):
        members = np.flatnonzero(groups == g)
        w = (cv[members] + 1e-6) ** alpha
        for r in range(prob.shape[1]):
            p = prob[members, r]
            p_adj = np.minimum(p + delta * (p > 0.5), 1.0)
            contrib = w * p_adj**gamma
            out[g, r] = np.clip(contrib.max() + beta * (contrib.sum() - contrib.max()), 1e-6, 1)
    return out


def test_forward_shapes():
    out = make_model()(torch.randn(C, R, F))
    assert out.internal_logits.shape == (C, 3, 4, R)
    assert out.meta_logits.shape == (C, 3, R)
    assert out.channel_prob.shape == (C, R)
    assert out.group_scores.shape == (3, R)
    assert out.event_logit.shape == (R,) and out.event_prob.shape == (R,)
    assert ((out.channel_prob > 0) & (out.channel_prob < 1)).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hard_aggregation_equals_reference_formula(seed):
    rng = np.random.default_rng(seed)
    prob = rng.random((C, 40))
    prob[0, :5] = 0.5  # on the indicator's edge: P > 0.5 is false
    cv = rng.random(C) + 0.2
    params = [torch.tensor(v, dtype=torch.float64) for v in (1.5, 1.5, 0.3, 0.05)]
    got = group_aggregate(
        torch.as_tensor(prob), torch.as_tensor(GROUPS), 3, torch.as_tensor(cv), *params, hard=True
    )
    np.testing.assert_allclose(got.numpy(), reference_groups(prob, GROUPS, cv), rtol=1e-12)


def test_smooth_aggregation_tends_to_the_hard_one():
    rng = np.random.default_rng(3)
    prob = rng.random((C, 40))
    prob = np.where(np.abs(prob - 0.5) < 0.05, prob + 0.1, prob)  # away from the step
    cv = np.ones(C)
    params = [torch.tensor(v, dtype=torch.float64) for v in (1.5, 1.5, 0.3, 0.05)]
    args = (torch.as_tensor(prob), torch.as_tensor(GROUPS), 3, torch.as_tensor(cv), *params)
    hard = group_aggregate(*args, hard=True)
    loose = group_aggregate(*args, sharpness=10.0, temperature=0.1)
    tight = group_aggregate(*args, sharpness=1e4, temperature=1e-4)
    assert (tight - hard).abs().max() < 1e-3 < (loose - hard).abs().max()


def test_model_hard_flag_uses_reference_formula():
    model = make_model(hard=True)
    with torch.no_grad():
        model.cv.copy_(torch.linspace(0.3, 1.0, C))
    prob = torch.rand(C, R)
    np.testing.assert_allclose(
        model.group_scores(prob).detach().numpy(),
        reference_groups(prob.numpy(), GROUPS, model.cv.numpy()),
        rtol=1e-5,
    )


def test_internal_learner_gradient_comes_only_from_its_rows():
    """Flipping targets of rows outside a learner's mask leaves that learner's gradient
    unchanged; the meta / event losses give internal learners no gradient at all."""
    torch.manual_seed(0)
    lit = LitChannelEnsemble(C, F, GROUPS, n_external=3, n_internal=4, hidden=6,
                             post_processing=ALARM_ONLY)
    x = torch.randn(C, R, F)
    y = (torch.rand(C, R) > 0.5).float()
    train_w = (torch.rand(C, 3, 4, R) > 0.5).float()
    batch = dict(
        x=x,
        y=y,
        y_event=(torch.rand(R) > 0.5).float(),
        train_w=train_w,
        eval2_w=torch.ones(C, 3, R),
        event_w=torch.ones(R),
        event_id=torch.arange(R),
    )

    def internal_grads(b):
        lit.zero_grad()
        lit.losses(b)["internal"].backward()
        return lit.model.w1.grad.clone()

    base = internal_grads(batch)
    c, e, i = 1, 2, 3
    outside = train_w[c, e, i] == 0
    flipped = dict(batch, y=y.clone())
    flipped["y"][c, outside] = 1 - y[c, outside]
    changed = internal_grads(flipped)
    torch.testing.assert_close(changed[c, e, i], base[c, e, i])
    assert not torch.allclose(changed[c], base[c])  # other learners of c do see those rows

    lit.zero_grad()
    parts = lit.losses(batch)
    (parts["meta"] + parts["event"] + (1 - parts["soft_f05"])).backward()
    assert lit.model.w1.grad is None or not lit.model.w1.grad.any()
    assert lit.model.meta_w.grad.abs().sum() > 0 and lit.model.event_w.grad.abs().sum() > 0


def test_internal_learner_ignores_features_outside_its_subset():
    model = make_model(feature_fraction=0.5)
    x = torch.randn(C, R, F)
    noise = torch.randn(C, R, F)
    c, e, i = 2, 1, 0
    unseen = model.feature_mask[c, e, i] == 0
    assert unseen.any() and not unseen.all()
    x2 = x.clone()
    x2[c][:, unseen] += noise[c][:, unseen]
    torch.testing.assert_close(
        model.internal_logits(x2)[c, e, i], model.internal_logits(x)[c, e, i]
    )


def test_soft_event_f05_hand_cases():
    target = torch.tensor([0, 1, 1, 0, 0, 1, 0.0])
    event_id = torch.tensor([-1, 0, 0, -1, -1, 1, -1])
    w = torch.ones(7)
    perfect = soft_event_f05(target * 0.999999, target, event_id, w)
    silent = soft_event_f05(torch.full((7,), 1e-6), target, event_id, w)
    everything = soft_event_f05(torch.full((7,), 0.999999), target, event_id, w)
    assert perfect > 0.99 and silent < 1e-3
    # 2 events detected, 4 nominal rows firing: F0.5 = 1.25·2 / (1.25·2 + 4)
    assert everything == pytest.approx(2.5 / 6.5, rel=1e-3)
    half = soft_event_f05(torch.tensor([0, 0.5, 0, 0, 0, 0, 0.0]), target, event_id, w)
    assert 0 < half < perfect
    masked = soft_event_f05(torch.full((7,), 0.999999), target, event_id, (event_id >= 0).float())
    assert masked > 0.99  # nominal rows weighted out cannot be false positives


def test_short_fit_scores_rows_and_loss_falls(tmp_path, one_thread):
    mission = make_tiny_mission()
    dm = tiny_datamodule(mission)
    # novelty: conf/model/channel_ensemble.yaml's default
    lit = LitChannelEnsemble(**dm.dims, hidden=8, lr=2e-2, novelty=True, post_processing=POST)

    losses: list[float] = []

    class Record(L.Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            losses.append(float(trainer.callback_metrics["train/loss"]))

    trainer(
        max_epochs=8,
        callbacks=[Record()],  # the heads come from the model (configure_callbacks)
        default_root_dir=tmp_path,
    ).fit(lit, dm)
    assert losses[-1] < losses[0]

    # kernels and scaler stats were stored as buffers
    kernels, lengths = dm.kernel_buffers()
    np.testing.assert_array_equal(lit.kernels.numpy(), kernels)
    np.testing.assert_array_equal(lit.feat_std.numpy(), dm.feat_std)
    fitted = {"kernels", "kernel_len", "feat_mean", "feat_std", "model.cv", "model.novelty_w"}
    assert fitted <= set(lit.state_dict())

    scores = lit.score_rows(mission)
    t = len(mission.values)
    assert scores.score.shape == (t,) and scores.alarm.shape == (t,)
    assert scores.alarm.dtype == np.uint8 and scores.channel_scores.shape == (t, 4)
    assert np.isfinite(scores.score).all() and (scores.score <= 1).all()
    # anomalous samples score higher than nominal ones on average
    flagged = mission.is_anomaly.astype(bool)
    assert scores.score[flagged].mean() > scores.score[~flagged].mean()

    # a fresh module restored from the state_dict scores identically, from buffers alone
    fresh = LitChannelEnsemble(**dm.dims, hidden=8, novelty=True, post_processing=POST)
    fresh.load_state_dict(lit.state_dict())
    np.testing.assert_allclose(fresh.score_rows(mission).score, scores.score, atol=1e-6)

    # the alarm height fitted on the fit range in pieces (with their context) is the one fitted
    # on the whole range at once
    heights = []
    for chunk_rows in (0, 97):
        rule = PeakAlarm(height=0.5, buffer=5, fit=True, chunk_rows=chunk_rows)
        rule.fit(lit, dm)
        heights.append(rule.current_height)
    assert np.isfinite(heights[0]) and heights[0] == heights[1]


def test_shared_learners_carry_one_channels_labels_to_a_channel_without_any():
    """With share_learners, the anomalies labeled on channel 0 alone teach the learners that
    score channel 1 too; per-channel learners leave channel 1 with nothing to learn from."""
    gen = torch.Generator().manual_seed(0)
    n_ch, n_feat = 2, 6

    def rows(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(n_ch, n, n_feat, generator=gen)
        anomalous = torch.arange(n) % 10 == 0
        x[:, anomalous, 0] += 4.0  # the same signature on both channels
        return x, anomalous

    x, anomalous = rows(400)
    y = torch.zeros(n_ch, 400)
    y[0, anomalous] = 1.0  # only channel 0's anomalies are labeled
    x_new, anomalous_new = rows(200)

    def channel_1_auc(share: bool) -> float:
        torch.manual_seed(0)
        net = ChannelEnsemble(n_ch, n_feat, [0, 0], n_external=1, n_internal=2, hidden=8,
                              feature_fraction=1.0, share_learners=share)
        opt = torch.optim.Adam(net.parameters(), lr=0.05)
        for _ in range(60):
            logits = net.internal_logits(x)
            loss = weighted_bce(logits, y[:, None, None, :].expand_as(logits),
                                torch.ones_like(logits))
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            prob = torch.sigmoid(net.internal_logits(x_new))[1].mean(dim=(0, 1))
        return roc_auc_score(anomalous_new.numpy(), prob.numpy())

    assert channel_1_auc(share=True) > 0.95
    assert channel_1_auc(share=False) < 0.8


def test_share_learners_and_hard_options_reach_the_trained_detector(small_mission_dir, tmp_path):
    """``model.share_learners=true`` and ``model.hard=true`` on the command line change what
    train.py trains and saves: one set of learners for every channel, and the reference's hard
    group aggregation (a config key silently dropped on the way would leave the defaults)."""
    from esa_lightning.artifact import Detector
    from esa_lightning.jobs.train import train
    from tests.conftest import compose_config

    cfg = compose_config("train", [
        "experiment=channel_ensemble", f"data.root={small_mission_dir}", "logger=none",
        "model.share_learners=true", "model.hard=true", "trainer.max_epochs=1",
        "+trainer.limit_train_batches=2", "trainer.enable_progress_bar=false",
        "~callbacks.progress_bar", "test=false",
    ], tmp_path)
    train(cfg)
    (component,) = Detector.load(tmp_path / "detector").components.values()
    net = component.model
    assert net.share_learners and net.w1.shape[0] == net.meta_w.shape[0] == 1
    assert net.n_channels > 1
    prob = torch.rand(net.n_channels, 64, generator=torch.Generator().manual_seed(0))
    args = (prob, net.group_index, net.n_groups, net.cv)
    params = net.aggregation_params()
    with torch.no_grad():
        torch.testing.assert_close(net.group_scores(prob), group_aggregate(*args, **params,
                                                                           hard=True))
        assert not torch.allclose(net.group_scores(prob), group_aggregate(*args, **params))


def test_live_metrics_score_a_validation_range_shorter_than_a_pooled_row(tmp_path, one_thread):
    """The per-epoch validation metrics (callbacks.ESAValidationMetrics) scored the validation
    range alone: one shorter than a pooled row (a 4-day synthetic mission) stopped training
    after its first epoch with "column 'values': the series has 1920 samples; one pooled row
    needs 2040". They score it with the rows before it as context, as val/ is scored."""
    from dataclasses import replace

    from esa_lightning.callbacks import ESAValidationMetrics
    from esa_lightning.data.transforms.segments import min_samples

    mission = replace(make_tiny_mission(), val_start=9900)  # 100 validation rows
    dm = tiny_datamodule(mission)
    assert mission.test_start - mission.val_start < min_samples(dm.window, dm.step, dm.pool)
    lit = LitChannelEnsemble(**dm.dims, hidden=8, lr=2e-2, post_processing=ALARM_ONLY)
    logged: list[dict] = []

    class Record(L.Callback):  # after the module's epoch end, which logs val/loss
        def on_validation_end(self, trainer, pl_module):
            logged.append(dict(trainer.callback_metrics))

    trainer(max_epochs=1, callbacks=[ESAValidationMetrics(), Record()],
            default_root_dir=tmp_path).fit(lit, dm)
    assert logged and "val/loss" in logged[-1]
