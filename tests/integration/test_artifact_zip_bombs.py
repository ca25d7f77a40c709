"""An artifact's zip parts (weights.pt, a GBDT ensemble's arrays.npz, a skops head) rewritten
with deflated members that expand far beyond the file, every checksum computed again as a
hostile user could: refused from the zip's directory, before anything is decompressed.

Found with the real sizes: a 13 MB weights.pt (a 3 GB tensor of zeros) took 3.4 GB of memory
before ``Unexpected key(s)`` refused it; a 13 MB arrays.npz (meta_w of 3 GB) 3.4 GB and 25 s
before its shape was refused; a 10 MB trees.skops of ten 240 MB arrays (each under the
per-member floor of 256 MB) 5.1 GB and 30 s. The tests lower the floor
(``MIN_EXPANSION_BYTES``) to 1 MB so that a few MB of zeros show the same."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from esa_lightning.artifact import Detector, mission_schema
from esa_lightning.data import safe_pickle
from esa_lightning.errors import ESAInputError
from tests.integration import test_artifact_head_features as head_features
from tests.integration.test_artifact_head_features import _refused_at_load, _saved

gbdt_ensemble = head_features.gbdt_ensemble
MB = 2**20


@pytest.fixture(autouse=True)
def small_floor(monkeypatch):
    monkeypatch.setattr(safe_pickle, "MIN_EXPANSION_BYTES", MB)


def _deflated(data: bytes) -> bytes:
    """The zip ``data`` with every member deflated (artifacts store them uncompressed)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as zi, zipfile.ZipFile(
        out, "w", zipfile.ZIP_DEFLATED
    ) as zo:
        for info in zi.infolist():
            zo.writestr(info.filename, zi.read(info))
    return out.getvalue()


def test_a_deflated_weights_member_that_expands_far_beyond_the_file_is_refused(tmp_path):
    from tests.helpers import fitted_zscore, make_tiny_mission

    m = make_tiny_mission()
    folder = Detector({"z": fitted_zscore(m)}, mission_schema(m)).save(tmp_path / "detector")
    weights = folder / "components/z/weights.pt"
    state = torch.load(weights, weights_only=True)
    buf = io.BytesIO()
    torch.save({**state, "junk": torch.zeros(4 * MB, dtype=torch.uint8)}, buf)
    weights.write_bytes(_deflated(buf.getvalue()))
    assert weights.stat().st_size < 100 * 1024
    _refused_at_load(folder, weights, "a zip bomb?")


def test_a_deflated_npz_array_that_expands_far_beyond_the_file_is_refused(
    tmp_path, gbdt_ensemble
):
    folder = _saved(gbdt_ensemble, tmp_path / "detector")
    path = folder / "components/gbdt/arrays.npz"
    arrays = dict(np.load(path))
    buf = io.BytesIO()
    np.savez(buf, **{**arrays, "meta_w": np.zeros(MB)})  # 8 MB
    path.write_bytes(_deflated(buf.getvalue()))
    _refused_at_load(folder, path, "a zip bomb?")


def test_skops_members_each_under_the_floor_are_refused_together():
    """Each member passed the per-member limit; together they expand a 10 kB file to 9 MB."""
    import skops.io as sio

    from esa_lightning.data.safe_skops import load_head

    data = _deflated(sio.dumps({f"a{i}": np.zeros(MB // 8 - 100) for i in range(9)}))
    assert len(data) < 100 * 1024
    with pytest.raises(ESAInputError, match=r"^h\.skops: .*a zip bomb\?"):
        load_head(data, Path("h.skops"), [], dict)
