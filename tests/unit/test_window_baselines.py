"""Window baselines (PCA reconstruction error, k-nearest-neighbour distance): fit without
gradient steps, score, detect a spike on its channel, survive save/load, score in chunks."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from esa_lightning.artifact import Detector, mission_schema
from esa_lightning.data.windows import WindowDataModule
from esa_lightning.errors import ESAInputError
from esa_lightning.models.window_baseline import WindowSample
from esa_lightning.models.window_knn import WindowKNNDetector
from esa_lightning.models.window_knn.network import NearestWindows
from esa_lightning.models.window_pca import WindowPCADetector
from esa_lightning.models.window_pca.network import PCAReconstructor
from esa_lightning.runtime.chunks import score_in_chunks
from tests.helpers import toy_mission, two_series_mission

FAMILIES = {"pca": WindowPCADetector, "knn": WindowKNNDetector}
SPIKE = 2700  # a test-range row


def spiky_mission():
    """Three noisy sines of one period (the joint pattern repeats, so training windows cover
    it) and one telecommand; a spike of 10 IQRs on channel 1 at row ``SPIKE``, labeled."""
    rng = np.random.default_rng(0)
    t = np.arange(3000)[:, None]
    values = np.sin(2 * np.pi * t / 40 + np.arange(3)) + 0.05 * rng.standard_normal((3000, 3))
    values = values.astype(np.float32)
    values[:, 1] = values[:, 1] * 5 + 100
    values[SPIKE, 1] += 70.0
    labels = np.zeros_like(values, dtype=np.uint8)
    labels[SPIKE, 1] = 1
    tc = (rng.random((3000, 1)) < 0.02).astype(np.float32)
    return toy_mission(values, labels, val_start=2000, test_start=2400, telecommands=tc)


def fitted(family: str, mission=None, **settings):
    """A model fitted as ``train.py`` fits it: its training steps over the datamodule's
    training windows, the fit when they are all seen, then its threshold rule."""
    mission = spiky_mission() if mission is None else mission
    dm = WindowDataModule(mission, window=8, stride=1, batch_size=256, shuffle=False)
    dm.setup("fit")
    threshold = {"threshold": {"kind": "percentile", "q": 99.9}}
    model = FAMILIES[family](**dm.dims, post_processing=threshold, **settings)
    model.set_preprocessing(dm)
    model.on_train_epoch_start()
    for i, batch in enumerate(dm.train_dataloader()):
        model.training_step(batch, i)
    model.finish_fit()
    model.fit_post_processing(dm)
    return model.eval()


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def model(request):
    torch.set_num_threads(1)
    return fitted(request.param)


def test_a_spike_scores_highest_and_alarms_on_its_channel(model):
    part = spiky_mission().test()
    spike, window = SPIKE - 2400, model.hparams.window
    out = model.score_rows(part)
    assert out.score.shape == (len(part.values),) and out.channel_scores.shape == (600, 3)
    assert out.score[spike] == out.score.max()
    assert out.alarm[spike] == 1
    far = np.ones(len(out.alarm), bool)
    far[spike - window : spike + window] = False
    # the threshold is about the largest of ~400 validation windows; a row alarms when any of
    # the 8 windows covering it does: a few nominal rows may, far from all of them
    assert out.alarm[far].mean() < 0.05
    assert out.score[spike] > 10 * np.percentile(out.score[far], 99)
    assert np.argmax(out.channel_scores[spike]) == 1
    assert out.channel_alarm[spike, 1] == 1
    assert not out.channel_alarm[~out.alarm.astype(bool)].any()


def test_scoring_ignores_labels(model):
    part = spiky_mission().test()
    relabeled = dataclasses.replace(part, labels=np.ones_like(part.labels))
    np.testing.assert_array_equal(model.score_rows(part).score, model.score_rows(relabeled).score)


def test_saved_and_loaded_artifact_scores_identically_whole_and_in_chunks(model, tmp_path):
    mission = spiky_mission()
    part = mission.test()
    Detector({"m": model}, mission_schema(mission)).save(tmp_path / "detector")
    loaded = Detector.load(tmp_path / "detector")
    (again,) = loaded.components.values()
    assert type(again) is type(model)
    for name, value in model.state_dict().items():
        assert torch.equal(again.state_dict()[name], value), name
    whole, reloaded = model.score_rows(part), loaded.score_rows(part)
    chunked = score_in_chunks(loaded, part, chunk_rows=70)
    for out in (reloaded, chunked):
        np.testing.assert_array_equal(whole.score, out.score)
        np.testing.assert_array_equal(whole.alarm, out.alarm)
        np.testing.assert_array_equal(whole.channel_scores, out.channel_scores)
        np.testing.assert_array_equal(whole.channel_alarm, out.channel_alarm)


def test_a_fresh_model_loads_a_fitted_state_dict(model):
    """Fitted buffers have shapes known only after fitting (Lightning checkpoints load them
    with ``load_state_dict``, not through the artifact)."""
    fresh = type(model)(**model.hparams)
    assert not fresh.is_fitted
    fresh.load_state_dict(model.state_dict())
    part = spiky_mission().test()
    np.testing.assert_array_equal(fresh.eval().score_rows(part).score, model.score_rows(part).score)


def test_a_short_range_is_scored_too(model):
    part = spiky_mission().test().slice(0, 3)
    out = model.score_rows(part)
    assert out.score.shape == (3,) and np.isfinite(out.score).all()


def test_the_fit_sees_at_most_max_windows():
    knn = fitted("knn", max_windows=500)
    assert knn.scorer.reference.shape == (500, 8 * 4)
    assert int(knn.n_fit_windows) == 500
    pca = fitted("pca", max_windows=500, n_components=5)
    assert pca.scorer.components.shape == (5, 8 * 4)


def test_window_sample_is_uniform_bounded_and_seeded():
    seen = torch.arange(10_000, dtype=torch.float32)[:, None]
    picks = []
    for seed in (0, 0, 1):
        sample = WindowSample(1000, seed)
        for part in seen.split(300):
            sample.add(part)
        picks.append(sample.windows()[:, 0])
    assert len(picks[0]) == 1000 and len(picks[0].unique()) == 1000
    assert torch.equal(picks[0], picks[1]) and not torch.equal(picks[0], picks[2])
    assert torch.all(picks[0][1:] > picks[0][:-1])  # arrival order
    assert 4000 < float(picks[0].mean()) < 6000  # spread over everything seen
    small = WindowSample(1000, 0)
    small.add(seen[:10])
    assert torch.equal(small.windows(), seen[:10])


def test_pca_finds_the_subspace_of_its_training_windows():
    rng = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(12, 3, generator=rng)).Q.T  # 3 orthonormal rows
    x = torch.randn(500, 3, generator=rng) * torch.tensor([5.0, 2.0, 1.0]) @ basis + 7.0
    pca = PCAReconstructor(12, n_components=0.999)
    pca.fit(x)
    assert pca.components.shape == (3, 12)
    assert float(pca(x).abs().max()) < 1e-3
    off = x[:1] + 2.0 * torch.linalg.svd(basis, full_matrices=True).Vh[-1]  # orthogonal move
    assert float(pca(off).norm()) == pytest.approx(2.0, rel=1e-3)
    reference = torch.linalg.svdvals(x.double() - x.double().mean(0)) ** 2 / 499
    np.testing.assert_allclose(pca.explained_variance.numpy(), reference[:3].numpy(), rtol=1e-4)
    two = PCAReconstructor(12, n_components=2)
    two.fit(x)
    assert two.components.shape == (2, 12)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_knn_residual_is_the_difference_to_the_kth_nearest(k):
    rng = torch.Generator().manual_seed(1)
    reference, query = torch.randn(300, 6, generator=rng), torch.randn(1100, 6, generator=rng)
    knn = NearestWindows(6, k=k)
    knn.fit(reference)
    order = torch.cdist(query.double(), reference.double()).argsort(dim=1)
    expected = query - reference[order[:, k - 1]]
    torch.testing.assert_close(knn(query), expected, rtol=0, atol=0)
    if k == 1:
        assert float(knn(reference).abs().max()) < 1e-6  # a reference window is its own neighbour


def test_two_independent_series_get_their_own_scaler_and_threshold():
    mission = two_series_mission()
    model = fitted("pca", mission=mission)
    thresholds = model.threshold_rule.threshold
    assert thresholds.shape == (2,) and torch.isfinite(thresholds).all()
    a, b = (model.score_rows(mission.series[name].test()) for name in ("A-1", "B-2"))
    assert len(a.score) == 100 and len(b.score) == 80
    both = model.score_rows(mission.test())
    np.testing.assert_array_equal(both.score, np.concatenate([a.score, b.score]))


@pytest.mark.parametrize(
    ("family", "key", "value"),
    [
        ("pca", "n_components", 0),
        ("pca", "n_components", 1.5),
        ("pca", "n_components", True),
        ("knn", "k", 0),
        ("knn", "max_windows", 0),
        ("pca", "top_channels", 0),
        ("knn", "horizon", 3),
    ],
)
def test_bad_settings_are_refused_naming_the_key(family, key, value):
    with pytest.raises(ESAInputError, match=key):
        FAMILIES[family](n_inputs=2, n_outputs=1, **{key: value})


def test_a_threshold_rule_is_required_and_no_other_rule_is_taken():
    for spec in ({}, {"threshold": {"kind": "f05"}, "rf_gate": {"kind": "random_forest"}}):
        with pytest.raises(ESAInputError, match="post_processing"):
            WindowKNNDetector(n_inputs=2, n_outputs=1, post_processing=spec)


def test_knn_needs_k_training_windows():
    with pytest.raises(ESAInputError, match="'k'"):
        NearestWindows(4, k=5).fit(torch.zeros(3, 4))


def test_scoring_before_the_fit_is_refused():
    model = WindowPCADetector(n_inputs=4, n_outputs=3, post_processing={"t": {"kind": "f05"}})
    with pytest.raises(RuntimeError, match="threshold not fitted"):
        model.score_rows(spiky_mission().test())
    with pytest.raises(RuntimeError, match="not fitted"):
        model.provisional_scores(spiky_mission().test())


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_detrend_over_the_settings_rule_is_refused_as_the_grus(family):
    """The window baselines' own ``detrend`` (an edited ``detector.json`` reaches the
    constructor at load) is checked by the settings rule the GRU's is."""
    from esa_lightning.settings import MAX_DETREND_ROWS

    with pytest.raises(ESAInputError, match=rf"^model\.detrend={MAX_DETREND_ROWS + 1}: must be"):
        FAMILIES[family](n_inputs=2, n_outputs=1, detrend=MAX_DETREND_ROWS + 1)
    spec = {"threshold": {"kind": "f05"}}
    model = FAMILIES[family](n_inputs=2, n_outputs=1, detrend=MAX_DETREND_ROWS,
                             post_processing=spec)
    assert model.hparams.detrend == MAX_DETREND_ROWS


@pytest.mark.parametrize("where", ["train", "test"])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_reading_far_beyond_its_channels_spread_fits_and_scores_finite(family, where):
    """A reading of 1e30 on a channel whose IQR is 1e-9: scaled, 1e39 overflowed float32 in
    the scaling's division (numpy's FloatingPointError under ``errstate(all="raise")``; else
    inf): in a training window the PCA fit failed (its total variance beyond float32) and the
    k-NN's references held inf; in a scored window the errors were inf. The scaled reading is
    ``SCALED_LIMIT`` now: fitted and scored, every score finite, the reading's row alarms."""
    mission = spiky_mission()
    values = mission.values.copy()
    values[:, 0] = 1e-9 * np.random.default_rng(1).standard_normal(len(values))
    row = {"train": 500, "test": 2500}[where]
    values[row, 0] = 1e30
    mission = dataclasses.replace(mission, values=values)
    with np.errstate(all="raise"):
        model = fitted(family, mission)
        out = model.score_rows(mission.test())
    assert np.isfinite(out.score).all() and np.isfinite(out.channel_scores).all()
    if where == "test":
        assert out.alarm[row - 2400] == 1 and out.score[row - 2400] == out.score.max()
        assert out.channel_alarm[row - 2400, 0] == 1
