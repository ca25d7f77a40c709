"""GlobalSTD: mean/std of nominal training rows, alarm beyond n_std, labels never read."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from esa_lightning.models.global_std import GlobalSTD
from tests.helpers import toy_mission


def fitted_model(train_values: np.ndarray, n_std: float = 3.0) -> GlobalSTD:
    model = GlobalSTD(n_channels=train_values.shape[1], n_std=n_std)
    model.on_train_epoch_start()
    for part in np.array_split(train_values, 4):
        model.training_step([torch.as_tensor(part)], 0)
    count = torch.tensor(float(model._count), dtype=torch.float64)
    model.set_statistics(count, model._sum, model._sum_sq)
    return model


def spiky_mission():
    rng = np.random.default_rng(0)
    values = rng.standard_normal((3000, 3)).astype(np.float32)
    values[:, 1] = values[:, 1] * 5 + 100
    values[2500:2505, 1] += 60.0  # 12 std on channel 1
    labels = np.zeros_like(values, dtype=np.uint8)
    labels[2500:2505, 1] = 1
    return toy_mission(values, labels, val_start=2000, test_start=2400)


def test_fitted_statistics_and_a_spike_is_alarmed_on_its_channel():
    mission = spiky_mission()
    train_values = np.asarray(mission.values[:2000], dtype=np.float32)
    model = fitted_model(train_values)
    exact = train_values.astype(np.float64)
    np.testing.assert_allclose(model.mean.numpy(), exact.mean(0), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(model.std.numpy(), exact.std(0), rtol=1e-6)

    out = model.score_rows(mission)
    assert out.alarm[2500:2505].all()
    assert out.channel_alarm[2500:2505, 1].all() and not out.channel_alarm[2500:2505, [0, 2]].any()
    others = np.ones(len(out.alarm), bool)
    others[2500:2505] = False
    # a 3-std rule on 3 Gaussian channels: ~0.8 % of rows, far from the spike's 100 %
    assert out.alarm[others].mean() < 0.02
    np.testing.assert_array_equal(out.score, out.channel_scores.max(axis=1))
    assert out.score[2500:2505].min() > 10


def test_scoring_ignores_labels():
    mission = spiky_mission()
    model = fitted_model(np.asarray(mission.values[:2000], dtype=np.float32))
    relabeled = dataclasses.replace(mission, labels=np.ones_like(mission.labels))
    a, b = model.score_rows(mission), model.score_rows(relabeled)
    np.testing.assert_array_equal(a.score, b.score)
    np.testing.assert_array_equal(a.alarm, b.alarm)
    np.testing.assert_array_equal(a.channel_alarm, b.channel_alarm)


def test_rows_datamodule_refuses_independent_series_by_name():
    """A NASA mission crashed here with a TypeError (its values are a dict of series)."""
    from esa_lightning.data.rows import RowDataModule
    from esa_lightning.errors import ESAInputError
    from tests.helpers import two_series_mission

    with pytest.raises(ESAInputError, match="independent series"):
        RowDataModule(two_series_mission())


@pytest.mark.parametrize(
    ("key", "value"),
    [("n_std", float("nan")), ("n_std", -1.0), ("n_std", 0.0), ("std", float("nan")),
     ("std", 0.0), ("mean", float("inf"))],
)
def test_fitted_numbers_training_never_writes_are_refused_at_load(tmp_path, key, value):
    """An artifact whose ``weights.pt`` was edited (checksums computed again) loaded: a NaN
    ``n_std`` or ``std`` never alarmed (0 of 3000 samples, 26 before the edit); ``n_std`` 0 or -1,
    ``std`` 0 or an inf ``mean`` alarmed on every sample. Now one ``ESAInputError`` naming the
    file and the buffer."""
    from esa_lightning.artifact import Detector, mission_schema
    from esa_lightning.errors import ESAInputError
    from tests.helpers import manifest_of, write_manifest
    from tests.integration.test_reliability_artifacts import reseal

    mission = spiky_mission()
    model = fitted_model(np.asarray(mission.values[:2000], dtype=np.float32))
    folder = tmp_path / "detector"
    Detector({"std": model}, mission_schema(mission)).save(folder)
    weights = folder / "components/std/weights.pt"
    state = torch.load(weights, weights_only=True)
    state[key] = torch.full_like(state[key], value)
    torch.save(state, weights)
    reseal(folder)
    write_manifest(folder, manifest_of(folder))
    with pytest.raises(ESAInputError) as info:
        Detector.load(folder)
    message = str(info.value)
    assert message.startswith(f"{weights}: component 'std': the fitted {key} "), message
