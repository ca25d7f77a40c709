"""The GRU-attention autoencoder: network shapes, training, buffers, row scores."""

from __future__ import annotations

import json
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch

from esa_lightning.data.mission import Mission, default_channel_table, empty_events
from esa_lightning.data.transforms.windows import window_to_sample_scores
from esa_lightning.data.windows import WindowDataModule
from esa_lightning.errors import ESAInputError
from esa_lightning.models.base import RowScores
from esa_lightning.models.gru_ae.model import GRUAttentionAE, LitGRUAttentionAE
from esa_lightning.postprocessing.telemanom import dynamic_threshold
from tests.helpers import sine_mission, trainer, two_series_mission

pytestmark = pytest.mark.usefixtures("one_thread")

#: the old ThresholdCalibration() default: the 99th percentile of nominal validation windows
PERCENTILE = {"threshold": {"kind": "percentile", "q": 99}}


def gru_model(**kw):
    """``LitGRUAttentionAE`` with a percentile threshold unless ``post_processing`` is given."""
    return LitGRUAttentionAE(**{"post_processing": PERCENTILE, **kw})


def fit_rules(model, mission):
    """Fit the model's post rules on ``mission``, as its ``on_train_end`` does."""
    model.fit_post_processing(SimpleNamespace(mission=mission))


def fit_small(mission, callbacks=(), **trainer_kw):
    dm = WindowDataModule(mission, window=8, batch_size=64)
    dm.setup("fit")
    model = gru_model(**dm.dims, hidden_size=12, latent_dim=6, lr=3e-3)
    trainer(callbacks=list(callbacks), **trainer_kw).fit(model, dm)
    return model, dm


def test_network_shapes_and_attention():
    net = GRUAttentionAE(
        n_inputs=7, n_outputs=5, hidden_size=16, latent_dim=4, num_layers=2, dropout=0.1
    )
    x = torch.randn(3, 10, 7)
    out = net(x)
    assert out.reconstruction.shape == (3, 10, 5)
    assert out.latent.shape == (3, 4)
    assert out.attention.shape == (3, 10)
    torch.testing.assert_close(out.attention.sum(1), torch.ones(3))
    err = net.errors(x, x[..., :5])
    assert err.total.shape == (3,) and err.per_channel.shape == (3, 5)
    torch.testing.assert_close(err.total, err.per_channel.mean(1))


def test_tiny_model_overfits_tiny_series():
    torch.manual_seed(0)
    t = torch.arange(40, dtype=torch.float32)
    series = torch.stack([torch.sin(t / 3), torch.cos(t / 5)], 1)
    x = series.unfold(0, 8, 1).permute(0, 2, 1)  # [33, 8, 2]
    net = GRUAttentionAE(2, 2, hidden_size=16, latent_dim=8)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    first = None
    for _ in range(150):
        loss = torch.nn.functional.mse_loss(net(x).reconstruction, x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert loss.item() < 0.2 * first


def test_hparams_are_plain_numbers():
    model = gru_model(n_inputs=4, n_outputs=3, series=["a", "b"])
    for k, v in model.hparams.items():
        if k == "post_processing":  # a plain JSON mapping {name: {kind, **settings}}
            assert v == PERCENTILE and json.loads(json.dumps(v)) == v
        else:
            assert isinstance(v, int | float | str | list) or v is None
    assert model.net.embedding.num_embeddings == 2


def test_fit_gives_row_scores_of_the_right_shapes():
    m = sine_mission()
    model, _ = fit_small(m)
    assert torch.isfinite(model.threshold_rule.threshold).all()
    assert model.post_rules["threshold"] is model.threshold_rule and model.gate is None
    assert float(model.scaler_iqr[0, 0]) != 1.0  # the datamodule's scaler was copied in
    test = m.test()
    rs = model.score_rows(test)
    assert isinstance(rs, RowScores)
    assert rs.score.shape == (len(test.values),) and rs.score.dtype == np.float32
    assert rs.alarm.shape == (len(test.values),) and rs.alarm.dtype == np.uint8
    assert rs.channel_scores.shape == (len(test.values), 3)
    assert np.isfinite(rs.score).all()
    assert set(np.unique(rs.alarm)) <= {0, 1}
    # the planted test anomaly (rows 40..47 of the test range) scores above the quiet start
    assert rs.score[40:48].max() > rs.score[:20].max()
    # alarm is exactly "score above the threshold" without a forest head
    thr = float(model.threshold_rule.threshold[0])
    np.testing.assert_array_equal(rs.alarm, (rs.score > thr).astype(np.uint8))
    # a range shorter than one window still gets a score per row
    short = model.score_rows(test.slice(0, 3))
    assert short.score.shape == (3,) and np.isfinite(short.score).all()


def test_scoring_before_calibration_is_refused():
    m = sine_mission()
    model = gru_model(n_inputs=5, n_outputs=3, window=8)
    assert not model.is_calibrated
    with pytest.raises(RuntimeError, match="threshold not fitted"):
        model.score_rows(m)
    # scores for monitoring during training: no alarm from the unfitted threshold
    provisional = model.provisional_scores(m)
    assert provisional.score.shape == (len(m.values),) and not provisional.alarm.any()


def test_a_model_needs_exactly_one_threshold_rule_fitted_before_its_gate():
    with pytest.raises(ESAInputError, match="exactly one threshold rule"):
        LitGRUAttentionAE(n_inputs=2, n_outputs=1)  # no post_processing: no threshold
    gate = {"kind": "random_forest"}
    # the order of the mapping does not matter (JSON files do not keep it): threshold first
    model = gru_model(n_inputs=2, n_outputs=1, post_processing={"gate": gate, **PERCENTILE})
    assert list(model.post_rules) == ["threshold", "gate"]
    assert model.configure_callbacks() == [model.threshold_rule, model.post_rules["gate"]]
    with pytest.raises(ESAInputError, match="exactly one threshold rule"):
        gru_model(n_inputs=2, n_outputs=1,
                  post_processing={**PERCENTILE, "other": {"kind": "f05"}})


def test_a_gate_behind_telemanom_is_refused_before_training():
    """The gate is fitted on the windows above a fitted window threshold, which ``telemanom``
    (the stream's own threshold) has not: the fit at training's end was an AttributeError
    traceback after the whole training; the model is refused when built, naming the key."""
    rules = {"threshold": {"kind": "telemanom"}, "rf_gate": {"kind": "random_forest"}}
    with pytest.raises(ESAInputError, match=r"model\.post_processing\.rf_gate=null"):
        gru_model(n_inputs=2, n_outputs=1, post_processing=rules)
    gru_model(n_inputs=2, n_outputs=1, post_processing={"threshold": rules["threshold"]})


def test_buffers_survive_state_dict_and_checkpoint(tmp_path):
    m = sine_mission()
    dm = WindowDataModule(m, window=8, batch_size=64)
    dm.setup("fit")
    dynamic = {"threshold": {"kind": "dynamic", "smoothing": 5}}
    model = gru_model(**dm.dims, hidden_size=12, latent_dim=6, post_processing=dynamic)
    tr = trainer(max_epochs=1)
    tr.fit(model, dm)
    thr = model.threshold_rule.threshold.clone()
    assert torch.isfinite(thr).all() and float(model.threshold_rule.score_span) == 5

    fresh = gru_model(**dm.dims, hidden_size=12, latent_dim=6, post_processing=dynamic)
    assert fresh.threshold_rule.threshold.isnan().all()
    fresh.load_state_dict(model.state_dict())
    torch.testing.assert_close(fresh.threshold_rule.threshold, thr)
    assert float(fresh.threshold_rule.score_span) == 5
    torch.testing.assert_close(fresh.scaler_median, model.scaler_median)

    ckpt = tmp_path / "model.ckpt"
    tr.save_checkpoint(ckpt)
    loaded = LitGRUAttentionAE.load_from_checkpoint(ckpt, weights_only=True)
    torch.testing.assert_close(loaded.threshold_rule.threshold, thr)
    torch.testing.assert_close(loaded.scaler_iqr, model.scaler_iqr)
    assert float(loaded.threshold_rule.score_span) == 5
    np.testing.assert_array_equal(
        loaded.score_rows(m.test()).score, model.score_rows(m.test()).score
    )


def test_nasa_style_multiseries():
    a = sine_mission(T=300, C=1, K=3, val_start=160, test_start=200, seed=1, name="A-1")
    b = sine_mission(T=260, C=1, K=3, val_start=140, test_start=180, seed=2, name="B-2")
    b.values *= 50.0
    for s in (a, b):
        s.labels[: s.test_start] = 0  # telemanom training stretches carry no labels
    multi = Mission(
        "nasa",
        {"A-1": a.values, "B-2": b.values},
        None,
        default_channel_table(["A-1", "B-2"]),
        None,
        empty_events(),
        series={"A-1": a, "B-2": b},
    )
    model, dm = fit_small(multi)
    thr = model.threshold_rule.threshold
    assert thr.shape == (2,) and torch.isfinite(thr).all()
    rs = model.score_rows(multi.series["B-2"].test())
    assert rs.score.shape == (80,) and rs.channel_scores.shape == (80, 1)
    per = model.score_series(multi)
    assert list(per) == ["A-1", "B-2"]
    np.testing.assert_array_equal(per["B-2"].score, model.score_rows(b, series="B-2").score)
    assert per["A-1"].score.shape == (300,)


def test_error_is_the_value_channels_only():
    """Telecommands are inputs, never reconstruction targets (Telemanom scores channel 0)."""
    m = sine_mission(C=1, K=4)
    dm = WindowDataModule(m, window=8, inputs="values+telecommands")
    assert dm.dims["n_inputs"] == 5 and dm.dims["n_outputs"] == 1
    model = gru_model(**dm.dims, hidden_size=8, latent_dim=4)
    x = torch.randn(6, 8, 5)
    out = model.net(x)
    assert out.reconstruction.shape == (6, 8, 1)
    err = model.net.errors(x, x[..., :1])
    expected = (out.reconstruction[..., 0] - x[..., 0]).pow(2).mean(1)
    torch.testing.assert_close(err.total, expected)


def test_unknown_post_processing_kind_is_refused():
    with pytest.raises(ESAInputError, match="applies no post-processing rule of this kind"):
        gru_model(n_inputs=2, n_outputs=1, post_processing={"threshold": {"kind": "magic"}})


def telemanom(**settings):
    return {"threshold": {"kind": "telemanom", **settings}}


def test_telemanom_rule_thresholds_the_scored_stream_without_calibration():
    m = sine_mission()
    dm = WindowDataModule(m, window=8)
    dm.setup("fit")
    model = gru_model(**dm.dims, hidden_size=12, latent_dim=6,
                      post_processing=telemanom(smoothing=3, z_range=[1.0, 6.0]))
    model.set_scaler(*dm.scaler)
    assert model.is_online and model.is_calibrated  # nothing to fit
    rs = model.score_rows(m)  # no calibrated threshold needed, no labels read
    total = model.window_outputs(m).total
    dyn = dynamic_threshold(total, smoothing=3, z_range=(1.0, 6.0), min_percent_decrease=0.13)
    want = window_to_sample_scores(dyn.alarm.astype(np.float32), len(m.values), 8) > 0
    np.testing.assert_array_equal(rs.alarm.astype(bool), want)
    np.testing.assert_allclose(rs.score, window_to_sample_scores(dyn.smoothed, len(m.values), 8))
    # the mode travels with the hyper-parameters (what the artifact re-instantiates from)
    again = gru_model(**model.hparams)
    again.load_state_dict(model.state_dict())
    assert again.is_online
    np.testing.assert_array_equal(again.score_rows(m).alarm, rs.alarm)
    # one chunk at least as long as the stream is the same as no chunking
    spec = model.hparams.post_processing
    chunked = gru_model(**{**model.hparams, "post_processing": telemanom(
        **{**spec["threshold"], "window": len(total)})})
    chunked.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(chunked.score_rows(m).alarm, rs.alarm)


def test_error_scale_check_uses_the_forecast_values_and_needs_one_output():
    with pytest.raises(ESAInputError, match="one output"):
        gru_model(n_inputs=4, n_outputs=2, post_processing=telemanom(error_scale=0.05))
    m = sine_mission(C=1)
    dm = WindowDataModule(m, window=8)
    dm.setup("fit")
    kw = dict(hidden_size=12, latent_dim=6, objective="forecast")
    online = dict(smoothing=3, z_range=[1.0, 6.0])
    model = gru_model(**dm.dims, **kw,
                      post_processing=telemanom(**online, error_scale=0.05, min_error=0.05))
    assert model.threshold_rule.checks_error_scale
    model.set_scaler(*dm.scaler)
    wo = model.window_outputs(m)
    median, iqr = dm.scaler
    want = (m.values[7:, 0] - median[0, 0]) / iqr[0, 0]  # the row each window forecasts
    np.testing.assert_allclose(wo.targets, want, rtol=1e-5, atol=1e-6)
    # errors far below the least error that counts (in the values' units) raise no alarm
    strict = gru_model(**{**model.hparams, "post_processing": telemanom(
        **online, error_scale=0.05, min_error=1e6)})
    strict.load_state_dict(model.state_dict())
    loose = gru_model(**{**model.hparams, "post_processing": telemanom(
        **online, error_scale=0.0, min_error=0.0)})
    loose.load_state_dict(model.state_dict())
    assert not loose.threshold_rule.checks_error_scale
    assert loose.window_outputs(m).targets is None
    assert loose.score_rows(m).alarm.any() and not strict.score_rows(m).alarm.any()


def test_restore_best_weights_runs_first_and_brings_back_the_best_epoch(tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    from esa_lightning.callbacks import RestoreBestWeights

    m = sine_mission()
    dm = WindowDataModule(m, window=8, batch_size=64)
    model = gru_model(**dm.dims, hidden_size=12, latent_dim=6, lr=3e-3)
    # mode max on a falling loss: the best checkpoint is an early epoch's, not the last one's
    ckpt = ModelCheckpoint(dirpath=tmp_path, monitor="val/loss", mode="max", save_last=True)
    restore, threshold = RestoreBestWeights(), model.post_rules["threshold"]
    tr = trainer(max_epochs=3, enable_checkpointing=True, callbacks=[ckpt, restore])
    tr.fit(model, dm)
    # the model's own rules join the trainer's callbacks after them: restored, then fitted
    assert tr.callbacks.index(restore) < tr.callbacks.index(threshold)
    best = torch.load(ckpt.best_model_path, weights_only=True)["state_dict"]
    last = torch.load(ckpt.last_model_path, weights_only=True)["state_dict"]
    assert any(not torch.equal(best[k], last[k]) for k in best)
    state = model.state_dict()
    for k in best:
        if not k.startswith("post_rules."):  # fitted after the restore, on the restored weights
            torch.testing.assert_close(state[k], best[k])
    again = gru_model(**model.hparams)
    again.load_state_dict(best)
    fit_rules(again, m)
    torch.testing.assert_close(again.threshold_rule.threshold, model.threshold_rule.threshold)


@pytest.mark.parametrize("window", [4, 12])
def test_forecast_mae_forecasts_every_validation_row_in_the_data_units(window):
    m = sine_mission()
    dm = WindowDataModule(m, window=window)
    dm.setup("fit")
    model = gru_model(**dm.dims, hidden_size=8, latent_dim=4, objective="forecast")
    model.set_scaler(*dm.scaler)
    median, iqr = (np.asarray(a)[0] for a in dm.scaler)
    x = torch.from_numpy(((model_inputs_of(m) - median) / iqr).astype(np.float32))
    rows = np.arange(m.val_start, m.test_start)  # each forecast from the `window - 1` before it
    xb = torch.stack([x[r - window + 1 : r + 1] for r in rows])
    with torch.no_grad():
        forecast = model.net(xb).reconstruction[:, 0].numpy()
    want = np.abs(forecast - xb[:, -1, :3].numpy()) * iqr[:3]
    assert model.forecast_mae(m) == pytest.approx(float(want.mean()), rel=1e-5)
    assert model.label_free_metrics(m) == {"forecast_MAE": model.forecast_mae(m)}
    reconstructing = gru_model(**dm.dims, hidden_size=8, latent_dim=4)
    assert reconstructing.forecast_mae(m) is None
    assert reconstructing.label_free_metrics(m) == {}


def model_inputs_of(m):
    return np.concatenate([m.values, m.telecommands], axis=1)


def whole_series_forecast_mae(model, mission):
    """Mean absolute raw forecast error of every validation row, each grid's inputs detrended
    and scaled over its whole series (the history scoring gives a row) before it is forecast."""
    from esa_lightning.data.transforms.windows import model_inputs, scale

    hp, errors = model.hparams, []
    for name, g in mission.grids().items():
        s = model.series_index(g, name)
        median, iqr = model.scaler_median[s].numpy(), model.scaler_iqr[s].numpy()
        x = model_inputs(g, hp.inputs, hp.n_inputs - hp.n_outputs, hp.detrend)
        x = torch.from_numpy(scale(x, median, iqr))
        rows = np.arange(g.val_start, g.test_start)
        xb = torch.stack([x[r - hp.window + 1 : r + 1] for r in rows])
        with torch.no_grad():
            err = model.net.errors(xb, series=torch.full((len(rows),), s)).per_channel
        errors.append(err.numpy() * iqr[: hp.n_outputs])
    return float(np.concatenate(errors).mean())


def validation_slice_forecast_mae(model, mission):
    """forecast_MAE as it was computed on each grid's validation rows and the ``window - 1``
    rows before them alone (same arithmetic)."""
    w, total, count = model.hparams.window, 0.0, 0
    for name, g in mission.grids().items():
        part = g.slice(g.val_start - (w - 1), g.test_start)
        err = model.window_outputs(part, series=name, raw=True).per_channel
        err = err * model.scaler_iqr[model.series_index(part, name), : err.shape[1]].numpy()
        total, count = total + float(err.sum(dtype=np.float64)), count + err.size
    return total / count


@pytest.mark.parametrize(
    ("make", "detrend"), [("one", 200), ("one", 5000), ("two", 100)], ids=["one", "clip", "two"]
)
def test_forecast_mae_detrends_validation_rows_with_the_history_scoring_gives(make, detrend):
    m = drifting_mission() if make == "one" else two_series_mission()
    for span in (detrend, None):
        dm = WindowDataModule(m, window=8, detrend=span)
        dm.setup("fit")
        torch.manual_seed(0)
        model = gru_model(**dm.dims, hidden_size=8, latent_dim=4, objective="forecast").eval()
        model.set_scaler(*dm.scaler)
        if span is None:  # nothing to detrend: the validation rows' own slice, as before
            assert model.forecast_mae(m) == validation_slice_forecast_mae(model, m)
        want = whole_series_forecast_mae(model, m)
        assert model.forecast_mae(m) == pytest.approx(want, rel=1e-5)


# ------------------------------------------------------------------------------ detrending
def drifting_mission():
    m = sine_mission(T=700, val_start=400, test_start=520)
    m.values[:, :2] += np.linspace(0, 30, len(m.values))[:, None].astype(np.float32)
    return m


def fit_detrended(mission):
    dm = WindowDataModule(mission, window=8, batch_size=64, detrend=40)
    dm.setup("fit")
    model = gru_model(**dm.dims, hidden_size=12, latent_dim=6, lr=3e-3)
    assert model.hparams.detrend == 40  # travels from the datamodule into the artifact
    trainer().fit(model, dm)
    return model.eval(), dm


def test_datamodule_and_scoring_apply_the_same_detrend(tmp_path):
    from esa_lightning.artifact import Detector, mission_schema

    m = drifting_mission()
    model, dm = fit_detrended(m)
    # the scoring path's errors equal the errors of every window the datamodule's inputs give
    from torch.utils.data import DataLoader

    from esa_lightning.data.transforms.windows import n_windows, scale
    from esa_lightning.data.windows import WindowDataset

    dm_fit = WindowDataModule(m, window=8, batch_size=64, detrend=40)
    dm_fit.setup()
    st = dm_fit.stats[0]
    x = scale(dm_fit._inputs(m.fit_range()), st.median, st.iqr)
    ds = WindowDataset(torch.from_numpy(x), np.arange(n_windows(len(x), 8)), 8, [0])
    loader = DataLoader(ds, batch_size=64, collate_fn=lambda b: b)
    with torch.no_grad():
        from_dm = torch.cat([model.net.errors(xb, series=sb).total for xb, sb in loader]).numpy()
    np.testing.assert_allclose(model.window_outputs(m.fit_range()).total, from_dm, rtol=1e-5)
    # and the saved artifact scores exactly like the trained module
    det = Detector(components={"gru": model}, schema=mission_schema(m))
    loaded = Detector.load(det.save(tmp_path / "detector"))
    assert loaded.components["gru"].hparams.detrend == 40
    a, b = det.score_rows(m.test()), loaded.score_rows(m.test())
    np.testing.assert_array_equal(a.score, b.score)
    np.testing.assert_array_equal(a.alarm, b.alarm)


def test_chunked_scoring_equals_whole_series_with_detrend():
    from esa_lightning.artifact import Detector, mission_schema
    from esa_lightning.runtime.chunks import score_in_chunks

    m = drifting_mission()
    model, _ = fit_detrended(m)
    assert model.context_rows >= 40 + 8
    det = Detector(components={"gru": model}, schema=mission_schema(m))
    whole = det.score_rows(m)
    chunked = score_in_chunks(det, m, chunk_rows=97)
    np.testing.assert_allclose(chunked.score, whole.score, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(chunked.alarm, whole.alarm)
    # without enough context the first rows of a chunk would see another trailing mean
    short = score_in_chunks(det, m, chunk_rows=97, context=8)
    assert not np.allclose(short.score, whole.score, rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------------- forecasting objective
def test_forecast_network_predicts_the_last_row_from_the_rows_before():
    net = GRUAttentionAE(n_inputs=4, n_outputs=2, hidden_size=8, latent_dim=3, forecast=True)
    x = torch.randn(5, 10, 4)
    out = net(x)
    assert out.reconstruction.shape == (5, 1, 2)
    assert out.attention.shape == (5, 9)  # the history only
    changed = x.clone()
    changed[:, -1] += 100.0  # the row being forecast is not an input
    torch.testing.assert_close(net(changed).reconstruction, out.reconstruction)
    err = net.errors(x)
    want = (out.reconstruction[:, 0] - x[:, -1, :2]).abs()
    torch.testing.assert_close(err.per_channel, want)
    torch.testing.assert_close(err.total, want.mean(1))


def test_tiny_forecaster_learns_a_sine():
    torch.manual_seed(0)
    t = torch.arange(80, dtype=torch.float32)
    x = torch.sin(t / 3)[:, None].unfold(0, 8, 1).permute(0, 2, 1)  # [73, 8, 1]
    net = GRUAttentionAE(1, 1, hidden_size=16, latent_dim=4, forecast=True)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    first = None
    for _ in range(150):
        loss = net.errors(x).total.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert float(loss) < 0.2 * first


def test_forecast_errors_land_on_the_row_they_forecast():
    model = gru_model(n_inputs=3, n_outputs=3, window=8, objective="forecast")
    rows = model.window_to_rows(np.arange(1, 94, dtype=np.float32), 100)
    assert rows.shape == (100,) and not rows[:7].any()
    np.testing.assert_array_equal(rows[7:], np.arange(1, 94))
    per_channel = model.window_to_rows(np.ones((93, 3), dtype=np.float32), 100)
    assert per_channel.shape == (100, 3) and per_channel[7:].all()
    with pytest.raises(ESAInputError, match="objective"):
        gru_model(n_inputs=3, n_outputs=3, objective="predict")


def test_multi_step_forecaster_reads_the_history_and_scores_its_first_forecast():
    torch.manual_seed(0)
    net = GRUAttentionAE(n_inputs=4, n_outputs=2, hidden_size=8, latent_dim=3, forecast=True,
                         history=6, horizon=3)
    train = torch.randn(5, 8, 4)  # 6 rows of history and 2 of the 3 rows forecast
    out = net(train)
    assert out.reconstruction.shape == (5, 3, 2) and out.attention.shape == (5, 6)
    changed = train.clone()
    changed[:, 6:] += 100.0  # the rows forecast are no inputs
    torch.testing.assert_close(net(changed).reconstruction, out.reconstruction)
    prediction, target = net.prediction_pairs(out, train)  # only the 2 rows the window holds
    torch.testing.assert_close(prediction, out.reconstruction[:, :2])
    torch.testing.assert_close(target, train[:, 6:8, :2])
    score = train[:, :7]  # a scoring window: the history and the one row after it
    err = net.errors(score)
    want = (net(score).reconstruction[:, 0] - score[:, 6, :2]).abs()
    torch.testing.assert_close(err.per_channel, want)
    with pytest.raises(ESAInputError, match="horizon"):
        GRUAttentionAE(4, 2, horizon=3)  # a reconstruction has no horizon


def test_multi_step_training_loss_covers_every_row_ahead_and_scoring_the_first():
    m = sine_mission()
    dm = WindowDataModule(m, window=8, batch_size=64, horizon=4)
    dm.setup("fit")
    assert dm.dims["window"] == 8 and dm.dims["horizon"] == 4
    model = gru_model(**dm.dims, hidden_size=12, latent_dim=6, objective="forecast")
    assert model.net.history == 7 and model.net.horizon == 4
    x, series = next(iter(dm.train_dataloader()))
    assert x.shape[1] == 11  # 7 rows of history, 4 ahead
    out = model.net(x, series)
    want = torch.nn.functional.smooth_l1_loss(out.reconstruction, x[:, 7:, :3])
    torch.testing.assert_close(model._loss((x, series)), want)
    trainer().fit(model, dm)
    test = m.test()
    rs = model.score_rows(test)
    assert rs.score.shape == (len(test.values),) and not rs.score[:7].any()
    wo = model.window_outputs(test)
    from esa_lightning.data.transforms.windows import scale

    st = dm.stats[0]  # the test range scaled as the datamodule scales its inputs
    x_test = torch.from_numpy(scale(dm._inputs(test), st.median, st.iqr))
    first = model.net(x_test[None, :8], torch.zeros(1, dtype=torch.long)).reconstruction[0, 0]
    np.testing.assert_allclose(wo.per_channel[0], (first - x_test[7, :3]).abs().detach(),
                               rtol=1e-4, atol=1e-6)


def test_lstm_cell_reconstructs_and_forecasts():
    for forecast in (False, True):
        net = GRUAttentionAE(3, 2, hidden_size=8, latent_dim=3, num_layers=2, cell="lstm",
                             forecast=forecast)
        assert isinstance(net.encoder, torch.nn.LSTM) and isinstance(net.decoder, torch.nn.LSTM)
        x = torch.randn(4, 9, 3)
        out = net(x)
        assert out.reconstruction.shape == ((4, 1, 2) if forecast else (4, 9, 2))
        net.errors(x).total.sum().backward()
        assert net.encoder.weight_hh_l0.grad is not None
    model = gru_model(n_inputs=3, n_outputs=1, window=6, series=["a", "b"],
                              objective="forecast", per_series=True, cell="lstm")
    assert all(isinstance(n.encoder, torch.nn.LSTM) for n in model.net.nets)
    with pytest.raises(ESAInputError, match="cell"):
        GRUAttentionAE(3, 2, cell="rnn")


def test_forecaster_fits_scores_and_survives_the_artifact(tmp_path):
    from esa_lightning.artifact import Detector, mission_schema

    m = sine_mission()
    dm = WindowDataModule(m, window=8, batch_size=64)
    dm.setup("fit")
    model = gru_model(**dm.dims, hidden_size=12, latent_dim=6, lr=3e-3,
                              objective="forecast")
    trainer().fit(model, dm)
    rs = model.score_rows(m.test())
    assert rs.score.shape == (len(m.test().values),) and np.isfinite(rs.score).all()
    assert not rs.score[:7].any()  # no history: no forecast
    assert rs.score[40:48].max() > rs.score[7:20].max()  # the planted anomaly forecasts worst
    Detector({"gru": model}, mission_schema(m)).save(tmp_path / "det")
    again = Detector.load(tmp_path / "det").components["gru"]
    assert again.hparams.objective == "forecast" and again.net.next_step is not None
    np.testing.assert_array_equal(again.score_rows(m.test()).score, rs.score)


# ------------------------------------------------------------------- one network per series
def test_per_series_networks_send_each_window_through_its_own_network():
    from esa_lightning.models.gru_ae.model import SeriesNetworks

    torch.manual_seed(0)
    model = gru_model(n_inputs=3, n_outputs=1, window=6, series=["a", "b", "c"],
                              hidden_size=8, latent_dim=4, objective="forecast", per_series=True)
    ddp = {"strategy": "ddp"}
    unused = {"strategy": "ddp_find_unused_parameters_true"}
    assert isinstance(model.net, SeriesNetworks) and model.trainer_arguments(ddp) == unused
    assert model.net.nets[0].embedding is None  # no series embedding: the network is the series'
    x, series = torch.randn(7, 6, 3), torch.tensor([2, 0, 0, 1, 2, 0, 1])
    mixed = model.net(x, series)
    for s in range(3):
        rows = series == s
        alone = model.net.nets[s](x[rows])
        for got, want in zip(mixed, alone, strict=True):
            torch.testing.assert_close(got[rows], want)
    # a batch of one series trains only that series' network
    model.net(x[:3], torch.zeros(3, dtype=torch.long)).reconstruction.sum().backward()
    touched = [any(p.grad is not None for p in net.parameters()) for net in model.net.nets]
    assert touched == [True, False, False]
    shared = gru_model(n_inputs=3, n_outputs=1, series=["a", "b"], per_series=False)
    assert isinstance(shared.net, GRUAttentionAE) and shared.trainer_arguments(ddp) == {}
    # a shared forecaster never uses its reconstruction decoder: DDP must be told too
    shared = gru_model(n_inputs=3, n_outputs=1, objective="forecast")
    assert shared.trainer_arguments(ddp) == unused
    assert model.trainer_arguments({"strategy": "auto"}) == {}  # only DDP must be told


def test_several_devices_with_the_default_strategy_are_told_about_unused_parameters():
    """``trainer.devices=2`` alone (strategy ``auto``) is DDP too: a forecaster's second step
    failed with "parameters that were not used in producing the loss"."""
    unused = {"strategy": "ddp_find_unused_parameters_true"}
    forecaster = gru_model(n_inputs=3, n_outputs=1, objective="forecast")
    assert forecaster.trainer_arguments({"strategy": "auto", "devices": 2}) == unused
    assert forecaster.trainer_arguments({"devices": 1, "num_nodes": 2}) == unused
    assert forecaster.trainer_arguments({"strategy": "auto", "devices": 1}) == {}


def test_validation_loss_per_series_is_the_mean_window_loss_of_each_series():
    multi = two_series_mission()
    dm = WindowDataModule(multi, window=8, batch_size=64, eval_batch_size=50)
    dm.setup("fit")
    model = gru_model(**dm.dims, hidden_size=12, latent_dim=6, objective="forecast",
                              per_series=True)
    logged = trainer(max_epochs=1, limit_train_batches=0).validate(model, dm, verbose=False)[0]
    per = {0: [], 1: []}
    with torch.no_grad():
        for x, series in dm.val_dataloader():
            out = model.net(x, series)
            loss = torch.nn.functional.smooth_l1_loss(
                out.reconstruction, model.net.targets(x), reduction="none").flatten(1).mean(1)
            for s in (0, 1):
                per[s] += loss[series == s].tolist()
    np.testing.assert_allclose(model.series_val_loss, [np.mean(per[0]), np.mean(per[1])],
                               rtol=1e-5)
    assert logged["val/loss"] == pytest.approx(np.mean(per[0] + per[1]), rel=1e-5)
    assert logged["val/series_loss/B-2"] == pytest.approx(np.mean(per[1]), rel=1e-5)


def test_series_best_weights_stops_when_every_series_stalls_and_restores_each_best():
    from types import SimpleNamespace

    from esa_lightning.callbacks import SeriesBestWeights

    model = gru_model(n_inputs=2, n_outputs=1, window=5, series=["a", "b", "c"],
                              hidden_size=4, latent_dim=2, objective="forecast", per_series=True)
    cb = SeriesBestWeights(patience=2, min_delta=0.01)
    fake = SimpleNamespace(sanity_checking=False, current_epoch=0, should_stop=False)
    cb.on_fit_start(fake, model)
    # series a is best at epoch 1; b at epoch 2 (epoch 3's 0.395 is within min_delta of 0.4);
    # c has no validation window (nan): it neither holds training up nor gets weights restored
    nan = float("nan")
    history = [(1.0, 1.0, nan), (0.5, 0.9, nan), (0.6, 0.4, nan), (0.7, 0.395, nan),
               (0.8, 0.5, nan)]
    for epoch, losses in enumerate(history):
        with torch.no_grad():
            for p in model.net.parameters():
                p.fill_(float(epoch))  # each epoch's weights are recognisable
        fake.current_epoch, model.series_val_loss = epoch, np.array(losses)
        cb.on_validation_end(fake, model)
        assert fake.should_stop == (epoch == 4)  # a stalled since 1 (patience 2); b from 4 on
    assert cb.best_epoch.tolist() == [1, 2, -1]
    resumed = SeriesBestWeights(patience=2, min_delta=0.01)
    resumed.load_state_dict(cb.state_dict())  # the state survives a checkpoint
    resumed.on_train_end(fake, model)
    for s, epoch in enumerate([1, 2, 4]):  # c keeps the last epoch's weights
        for p in model.net.nets[s].parameters():
            assert torch.all(p == float(epoch))
    # one shared network: early stopping and restore on the mean validation loss
    shared = gru_model(n_inputs=2, n_outputs=1, window=5, series=["a", "b"],
                               hidden_size=4, latent_dim=2, objective="forecast")
    cb, fake.should_stop = SeriesBestWeights(patience=1), False
    cb.on_fit_start(fake, shared)
    for epoch, loss in enumerate([1.0, 0.5, 0.7]):
        with torch.no_grad():
            for p in shared.net.parameters():
                p.fill_(float(epoch))
        fake.current_epoch, shared.val_loss = epoch, loss
        cb.on_validation_end(fake, shared)
        assert fake.should_stop == (epoch == 2)
    assert cb.best_epoch.tolist() == [1]
    cb.on_train_end(fake, shared)
    assert all(torch.all(p == 1.0) for p in shared.net.parameters())
    with pytest.raises(ESAInputError, match="not a DetectorModule"):
        SeriesBestWeights().on_fit_start(fake, L.LightningModule())
    from esa_lightning.models.zscore.model import RobustZScore

    with pytest.raises(ESAInputError, match="no per-network validation losses"):
        SeriesBestWeights().on_fit_start(fake, RobustZScore(n_channels=2))


def test_per_series_forecaster_fits_with_series_batches_and_scores_every_series():
    from esa_lightning.callbacks import SeriesBestWeights

    multi = two_series_mission()
    dm = WindowDataModule(multi, window=8, batch_size=32, series_batches=True)
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert sum(len(torch.unique(s)) > 1 for _, s in batches) <= 1  # at most the border batch
    model = gru_model(**dm.dims, hidden_size=12, latent_dim=6, lr=3e-3,
                              objective="forecast", per_series=True)
    best, threshold = SeriesBestWeights(patience=5), model.post_rules["threshold"]
    tr = trainer(max_epochs=3, callbacks=[best])
    tr.fit(model, dm)
    assert tr.callbacks.index(best) < tr.callbacks.index(threshold)
    assert (best.best_epoch >= 0).all() and torch.isfinite(threshold.threshold).all()
    per = model.score_series(multi)
    assert [rs.score.shape for rs in per.values()] == [(300,), (260,)]
    again = gru_model(**model.hparams)
    again.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(again.score_series(multi)["B-2"].score, per["B-2"].score)


def test_validation_windows_are_scored_with_their_history_when_fitting_a_threshold():
    # a level shift 10 rows before the validation range: scored alone, the detrend's trailing
    # mean starts afresh there and forgets it; prediction scores the validation rows after
    # their history, so the threshold must be fitted on those scores
    from esa_lightning.data.transforms.windows import labeled_window_mask, nominal_rows

    m = drifting_mission()
    m.values[m.val_start - 10 :, :2] += 20.0
    model, _ = fit_detrended(m)
    whole = model.window_outputs(m.fit_range()).total[m.val_start :]
    clean = ~labeled_window_mask(~nominal_rows(m.val()), 8)
    want = np.percentile(whole[clean].astype(np.float64), 99)
    assert float(model.threshold_rule.threshold[0]) == pytest.approx(want, rel=1e-5)


def test_series_with_fewer_commands_are_scored_through_the_detector():
    """Series of other command counts train (inputs zero-padded to the widest series), but the
    schema held the first series' commands only: the run could not score a wider series (a
    NASA folder mixing them trained to the end, then failed)."""
    from esa_lightning.artifact import Detector, check_schema, mission_schema

    a = sine_mission(T=300, C=1, K=1, val_start=160, test_start=200, seed=1, name="A-1")
    b = sine_mission(T=260, C=1, K=3, val_start=140, test_start=180, seed=2, name="B-2")
    multi = Mission("nasa", {"A-1": a.values, "B-2": b.values}, None,
                    default_channel_table(["A-1", "B-2"]), None, empty_events(),
                    series={"A-1": a, "B-2": b})
    model, _ = fit_small(multi, max_epochs=1)
    detector = Detector({"gru": model}, mission_schema(multi))
    for name, n_test in (("A-1", 100), ("B-2", 80)):
        rs = detector.score_rows(multi.series[name].test())
        assert rs.score.shape == (n_test,) and np.isfinite(rs.score).all()
    wider = sine_mission(T=260, C=1, K=4, val_start=140, test_start=180, seed=3, name="B-2")
    with pytest.raises(ESAInputError, match=r"telecommands: extra "
                       r"\['telecommand_3'\]"):
        check_schema(detector.schema, wider.test())
