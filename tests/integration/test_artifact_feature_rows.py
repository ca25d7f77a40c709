"""A channel ensemble artifact's segment feature sizes (``window``, ``step``, ``pool``,
``pool_stride`` in ``detector.json``) edited, every checksum computed again as a hostile user
could: a pooled row longer than the training rows it was fitted on, or a pooled row stride
longer than the rows training featurised, is refused at load in one line naming the weights
and the value, never loaded to score other numbers. The tiny datamodule's mission has 8000
training rows of 12000 (window 20, step 5, pool 20, pool_stride 4: a pooled row of 115 rows,
one every 20). Nothing here builds a feature of the edited sizes: load refuses them first."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from esa_lightning.artifact import Detector
from tests.helpers import manifest_of, tiny_datamodule, write_manifest
from tests.integration import test_artifact_head_features as head_features
from tests.integration.test_artifact_fitted_indices import surrogate
from tests.integration.test_artifact_head_features import _refused_at_load, _saved
from tests.integration.test_reliability_artifacts import reseal

gbdt_ensemble = head_features.gbdt_ensemble
__all__ = ["gbdt_ensemble", "surrogate"]  # module fixtures reused

RECORDS = ("train_rows", "feature_rows")

# (the edited sizes, what the refusal says); each loaded before: pool_stride 10**9 scored one
# pooled row per range (score sum 58 instead of 6061), 2401 (12005 rows) one in the tiny
# mission; the others ended in an error naming no file once scoring began
TOO_LONG = [
    (dict(pool_stride=10**9), "every 5000000000 rows"),
    (dict(pool_stride=2401), "every 12005 rows"),
    (dict(step=10**9), "needs 19000000020 rows"),
    (dict(window=10**9), "needs 1000000095 rows"),
    (dict(pool=10**9), "needs 5000000015 rows"),
    (dict(window=7906), "needs 8001 rows"),
]


def _folder(name: str, surrogate: Path, gbdt_ensemble, tmp_path: Path) -> Path:
    folder = tmp_path / "detector"
    if name == "ce":
        shutil.copytree(surrogate, folder)
    else:
        _saved(gbdt_ensemble, folder)
    return folder


def _with_sizes(folder: Path, name: str, sizes: dict) -> Path:
    manifest = manifest_of(folder)
    manifest["components"][name]["hparams"].update(sizes)
    write_manifest(folder, manifest)
    return folder


@pytest.mark.parametrize("name", ["ce", "gbdt"])
@pytest.mark.parametrize("sizes, why", TOO_LONG)
def test_feature_sizes_longer_than_the_training_rows_are_refused(
    tmp_path, surrogate, gbdt_ensemble, name, sizes, why
):
    folder = _with_sizes(_folder(name, surrogate, gbdt_ensemble, tmp_path), name, sizes)
    message = _refused_at_load(folder, folder / f"components/{name}/weights.pt", why)
    assert "rows" in message and str(next(iter(sizes.values()))) in message, message


@pytest.mark.parametrize("name", ["ce", "gbdt"])
def test_feature_sizes_within_the_training_rows_load(tmp_path, surrogate, gbdt_ensemble, name):
    """The longest pooled row (8000 rows) and stride (12000 rows) training could use."""
    folder = _folder(name, surrogate, gbdt_ensemble, tmp_path)
    for sizes in (dict(window=7905), dict(pool_stride=2400)):
        _with_sizes(folder, name, sizes)
        reseal(folder)
        write_manifest(folder, manifest_of(folder))
        hparams = Detector.load(folder).components[name].hparams
        assert all(hparams[key] == value for key, value in sizes.items())


@pytest.mark.parametrize("name", ["ce", "gbdt"])
def test_a_negative_step_and_pool_stride_are_refused(tmp_path, surrogate, gbdt_ensemble, name):
    """Both at -1 (a stride of 1 row, alignment rows 1) loaded, and scoring ended in "segmentation
    step must be at least 1 sample", naming no file."""
    folder = _with_sizes(_folder(name, surrogate, gbdt_ensemble, tmp_path), name,
                         dict(step=-1, pool_stride=-1))
    _refused_at_load(folder, folder / "detector.json", "model.step=-1")


@pytest.mark.parametrize("name", ["ce", "gbdt"])
def test_an_artifact_written_before_the_feature_row_records_still_loads(
    tmp_path, surrogate, gbdt_ensemble, name
):
    """Artifacts of this format written before ``train_rows`` and ``feature_rows`` hold
    neither: they load with both at 0 (bounding nothing) and score as before."""
    folder = _folder(name, surrogate, gbdt_ensemble, tmp_path)
    weights = folder / f"components/{name}/weights.pt"
    state = torch.load(weights, weights_only=True)
    assert all(int(state.pop(record)) > 0 for record in RECORDS)
    torch.save(state, weights)
    reseal(folder)
    mission = tiny_datamodule().mission
    before = Detector.load(_folder(name, surrogate, gbdt_ensemble, tmp_path / "b"))
    model = Detector.load(folder).components[name]
    assert [int(model.get_buffer(record)) for record in RECORDS] == [0, 0]
    np.testing.assert_array_equal(model.score_rows(mission).score,
                                  before.components[name].score_rows(mission).score)
