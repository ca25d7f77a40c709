"""A channel ensemble artifact's fitted whole numbers (shapelet kernel lengths, the channels'
group indices) edited, every checksum computed again as a hostile user could: one
``ESAInputError`` naming the file and the array at load, never a load that scores with other
kernels or groups than training fitted, nor a torch ``index out of bounds`` while scoring."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch

from esa_lightning.artifact import Detector, mission_schema
from tests.integration import test_artifact_head_features as head_features
from tests.integration.test_artifact_head_features import _refused_at_load, _saved

# a GBDT channel ensemble fitted once on the tiny mission, and that mission
gbdt_ensemble = head_features.gbdt_ensemble

# (the kernel slot edited, its new length, what the refusal says): the tiny datamodule's kernels
# are 10 to 16 samples long in a buffer of 16 (max_kernel_len), two per channel
KERNEL_LENGTHS = [
    ((0, 0), -3, "kernel length -3, outside 0 to 16"),  # dropped: the next kernel took its columns
    ((0, 1), 17, "kernel length 17, outside 0 to 16"),  # cut to the buffer's 16 samples
    ((0, 1), 10**6, "outside 0 to 16"),
    ((0, 0), 0, "empty kernel slot (length 0) before a kernel"),  # the next kernel moved up
]


@pytest.fixture(scope="module")
def surrogate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A network channel ensemble with the tiny datamodule's kernels (no training: loading
    reads what it holds), saved once."""
    from esa_lightning.models.channel_ensemble.model import LitChannelEnsemble
    from tests.helpers import tiny_datamodule
    from tests.integration.test_channel_ensemble import POST

    dm = tiny_datamodule()
    lit = LitChannelEnsemble(**dm.dims, hidden=4, post_processing=POST)
    lit.set_preprocessing(dm)
    folder = tmp_path_factory.mktemp("surrogate") / "detector"
    Detector({"ce": lit}, mission_schema(dm.mission)).save(folder)
    return folder


def _surrogate_copy(surrogate: Path, tmp_path: Path, key: str, index: tuple, value: int) -> Path:
    import shutil

    folder = tmp_path / "detector"
    shutil.copytree(surrogate, folder)
    weights = folder / "components/ce/weights.pt"
    state = torch.load(weights, weights_only=True)
    state[key][index] = value
    torch.save(state, weights)
    return folder


@pytest.mark.parametrize("slot, value, why", KERNEL_LENGTHS)
def test_gbdt_ensemble_kernel_lengths_training_never_writes_are_refused(
    tmp_path, gbdt_ensemble, slot, value, why
):
    """Each loaded, and scored with a kernel dropped, cut short or moved to another kernel's
    feature columns: no error, other features than the trees were fitted on."""
    folder = _saved(gbdt_ensemble, tmp_path / "detector")
    path = folder / "components/gbdt/arrays.npz"
    arrays = dict(np.load(path))
    assert arrays["kernel_len"].shape == (4, 2) and arrays["kernel_len"].min() >= 10
    arrays["kernel_len"][slot] = value
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())
    message = _refused_at_load(folder, path, why)
    assert "the array kernel_len" in message, message


@pytest.mark.parametrize("slot, value, why", KERNEL_LENGTHS)
def test_network_ensemble_kernel_lengths_training_never_writes_are_refused(
    tmp_path, surrogate, slot, value, why
):
    """The same lengths in the network ensemble's ``kernel_len`` buffer loaded and scored
    other features (its scores moved by up to 0.07) without an error."""
    folder = _surrogate_copy(surrogate, tmp_path, "kernel_len", slot, value)
    message = _refused_at_load(folder, folder / "components/ce/weights.pt", why)
    assert "kernel_len" in message, message


@pytest.mark.parametrize("value", [-1, 7, 1])
def test_network_ensemble_group_index_other_than_its_hyper_parameters_is_refused(
    tmp_path, surrogate, value
):
    """The group index buffer holds the hyper-parameters' ``group_index`` (its channels' groups):
    another index loaded, and scoring ended in torch's ``RuntimeError: index 7 is out of bounds
    for dimension 0 with size 2`` (-1 alike), or scored channel 0 in another group."""
    folder = _surrogate_copy(surrogate, tmp_path, "model.group_index", (0,), value)
    _refused_at_load(folder, folder / "components/ce/weights.pt", "model.group_index")


def test_an_unedited_surrogate_loads_and_scores(surrogate):
    """The fixture itself passes the checks (they refuse edits, not what training writes)."""
    from tests.helpers import tiny_datamodule

    component = Detector.load(surrogate).components["ce"]
    assert np.isfinite(component.score_rows(tiny_datamodule().mission).score).all()


@pytest.mark.parametrize("component", ["ce", "gbdt"])
def test_a_negative_group_in_the_hyper_parameters_is_refused(
    tmp_path, surrogate, gbdt_ensemble, component
):
    """A manifest whose ``group_index`` names group -1 (the surrogate's buffer edited to match)
    loaded, and scoring ended in torch's ``RuntimeError: index -1 is out of bounds``."""
    import shutil

    from tests.helpers import manifest_of, write_manifest

    folder = tmp_path / "detector"
    if component == "ce":
        shutil.copytree(surrogate, folder)
        weights = folder / "components/ce/weights.pt"
        state = torch.load(weights, weights_only=True)
        state["model.group_index"][0] = -1
        torch.save(state, weights)
    else:
        _saved(gbdt_ensemble, folder)
    manifest = manifest_of(folder)
    manifest["components"][component]["hparams"]["group_index"][0] = -1
    write_manifest(folder, manifest)
    message = _refused_at_load(folder, folder / "detector.json", "group_index")
    assert "whole number from 0" in message, message
