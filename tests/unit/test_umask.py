"""Files and folders the project writes follow the user's umask (the atomic writers' temporary
files were created owner-only by mkstemp/mkdtemp and kept that mode when renamed)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

from esa_lightning.artifact import Detector
from esa_lightning.io import atomic_folder, write_json_atomic
from esa_lightning.models.gru_ae.model import LitGRUAttentionAE


def modes(root: Path) -> dict[str, int]:
    """Permission bits of ``root`` and everything under it, by relative path."""
    return {
        str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]
    }


@pytest.fixture(params=[0o022, 0o077])
def umask(request):
    before = os.umask(request.param)
    yield request.param
    os.umask(before)


def test_atomic_writes_follow_the_umask(tmp_path, umask):
    write_json_atomic(tmp_path / "metrics.json", {"a": 1})
    assert stat.S_IMODE((tmp_path / "metrics.json").stat().st_mode) == 0o666 & ~umask
    with atomic_folder(tmp_path / "cache") as folder:
        (folder / "x.npy").write_bytes(b"x")
    assert stat.S_IMODE((tmp_path / "cache").stat().st_mode) == 0o777 & ~umask


def test_a_saved_detector_follows_the_umask(tmp_path, umask):
    torch.manual_seed(0)
    model = LitGRUAttentionAE(
        n_inputs=2,
        n_outputs=2,
        window=4,
        hidden_size=4,
        latent_dim=2,
        post_processing={"threshold": {"kind": "percentile"}},
    )
    Detector({"gru": model}, {"channels": ["a", "b"]}).save(tmp_path / "detector")
    found = modes(tmp_path / "detector")
    assert len(found) > 3
    for name, mode in found.items():
        is_dir = (tmp_path / "detector" / name).is_dir()
        assert mode == (0o777 if is_dir else 0o666) & ~umask, name
