"""An artifact's sklearn head (a skops file) swapped for one of the right type fitted on another
feature count, its checksums computed again as a hostile user could: one ``ESAInputError``
naming the skops file, never scikit-learn's ``X has N features`` traceback after scoring."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from sklearn.ensemble import HistGradientBoostingClassifier

from esa_lightning.artifact import Detector, mission_schema
from esa_lightning.errors import ESAInputError
from tests.helpers import manifest_of, write_manifest
from tests.integration.test_reliability_artifacts import reseal


def _other_model_head() -> HistGradientBoostingClassifier:
    rows = np.random.default_rng(0).random((60, 3))
    return HistGradientBoostingClassifier(max_iter=3).fit(rows, [0, 1] * 30)


@pytest.fixture(scope="module")
def gbdt_ensemble():
    """A GBDT channel ensemble fitted once on the tiny mission, and that mission."""
    from esa_lightning.models.channel_ensemble.gbdt import GBDTChannelEnsemble
    from tests.helpers import tiny_datamodule

    dm = tiny_datamodule()
    model = GBDTChannelEnsemble(
        **dm.dims, max_iter=5, n_threads=1, post_processing={"alarm": {"kind": "peaks"}}
    ).fit(dm)
    return model, dm.mission


def _saved(gbdt_ensemble, folder: Path) -> Path:
    model, mission = gbdt_ensemble
    Detector({"gbdt": model}, mission_schema(mission)).save(folder)
    return folder


def _refused_at_load(folder: Path, head: Path, why: str = "fitted on 3 features") -> str:
    """The artifact resealed (as a hostile user can) is refused in one line naming ``head``."""
    reseal(folder)
    write_manifest(folder, manifest_of(folder))
    with pytest.raises(ESAInputError) as info:
        Detector.load(folder)
    message = str(info.value)
    assert message.startswith(f"{head}: ") and "\n" not in message, message
    assert why in message, message
    return message


def test_a_rolling_gbdt_classifier_of_another_feature_count_is_refused(tmp_path):
    """It loaded, and scoring ended in ``ValueError: X has 144 features, but
    HistGradientBoostingClassifier is expecting 3 features as input``."""
    from tests.unit.test_rolling_gbdt import fitted, labeled_mission

    mission = labeled_mission()
    folder = tmp_path / "detector"
    Detector({"rolling_gbdt": fitted(mission)}, mission_schema(mission)).save(folder)
    head = folder / "components/rolling_gbdt/classifier.skops"
    sio.dump(_other_model_head(), head)
    _refused_at_load(folder, head)


def test_gbdt_ensemble_trees_of_another_feature_count_are_refused(tmp_path, gbdt_ensemble):
    """A tree of the right type fitted on 3 features loaded, and scoring ended in ``ValueError:
    X has 53 features, but HistGradientBoostingClassifier is expecting 3``; trees of a model
    with fewer channels (fewer keys) in a ``KeyError``."""
    folder = _saved(gbdt_ensemble, tmp_path / "detector")
    head = folder / "components/gbdt/trees.skops"
    data = head.read_bytes()
    blob = sio.loads(data, trusted=sio.get_untrusted_types(data=data))
    trees = [_other_model_head() if isinstance(t, HistGradientBoostingClassifier) else t
             for t in blob["trees"]]
    head.write_bytes(sio.dumps({**blob, "trees": trees}))
    _refused_at_load(folder, head)

    head.write_bytes(sio.dumps({"keys": blob["keys"][:-1], "trees": blob["trees"][:-1]}))
    reseal(folder)
    write_manifest(folder, manifest_of(folder))
    with pytest.raises(ESAInputError, match=r"trees\.skops: .*another model") as info:
        Detector.load(folder)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "key", ["meta_w", "meta_b", "cv", "event_w", "event_b", "kernels", "kernel_len", "feat_mean"]
)
def test_gbdt_ensemble_arrays_of_another_shape_are_refused(tmp_path, gbdt_ensemble, key):
    """``arrays.npz`` of another model (its array ``key`` of another shape) loaded, and scoring
    ended in numpy's ``operands could not be broadcast together`` (or an ``IndexError``, a torch
    ``RuntimeError``) once every row was featurised; kernels one sample shorter scored."""
    import io

    folder = _saved(gbdt_ensemble, tmp_path / "detector")
    path = folder / "components/gbdt/arrays.npz"
    arrays = dict(np.load(path))
    value = arrays[key]
    arrays[key] = value[..., :-1] if value.ndim else np.stack([value, value])
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())
    message = _refused_at_load(folder, path, f"the array {key} ")
    assert str(arrays[key].shape) in message, message
