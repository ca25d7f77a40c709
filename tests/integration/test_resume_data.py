"""Resuming (``ckpt_path=last``) on other data than the checkpoint was trained on."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import compose_config


@pytest.fixture(scope="module")
def two_missions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two missions of the same channels and shapes, under different names."""
    from esa_lightning.data.readers.synthetic import generate_mission

    root = tmp_path_factory.mktemp("missions")
    a, b = root / "mission_a", root / "mission_b"
    generate_mission(a, channels=4, groups=2, days=8, seed=3)
    generate_mission(b, channels=4, groups=2, days=8, seed=4)
    return a, b


def overrides(mission: Path) -> list[str]:
    return ["experiment=smoke", f"data.root={mission}", "data.val_days=2", "test=false",
            "trainer.enable_progress_bar=false"]


def test_resuming_on_another_mission_is_refused_naming_both(two_missions, tmp_path):
    """The tensors of a mission of the same channel count fit, so training went on, silently,
    with the first mission's fitted statistics on the second mission's rows."""
    from esa_lightning.errors import ESAInputError
    from esa_lightning.jobs.train import train

    a, b = two_missions
    train(compose_config("train", overrides(a), tmp_path))
    last = tmp_path / "checkpoints" / "smoke" / "last.ckpt"
    assert last.is_file()
    with pytest.raises(ESAInputError, match="mission_a.*mission_b") as caught:
        train(compose_config("train", [*overrides(b), "ckpt_path=last"], tmp_path))
    assert str(last) in str(caught.value)
    # the same mission resumes
    assert train(compose_config("train", [*overrides(a), "ckpt_path=last"], tmp_path)) is not None
