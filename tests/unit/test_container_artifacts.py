"""The inference container's artifact lookup (``jobs.container.find_detector``)."""

from __future__ import annotations

import pytest

from esa_lightning.errors import ESAInputError
from esa_lightning.io import OLD_PREFIX, temporary_prefix
from esa_lightning.jobs.container import find_detector


def test_run_folder_with_leftovers_of_an_interrupted_save_finds_its_detector(tmp_path):
    """``--artifacts RUN`` (a run folder) holding the temporary or backup folder a killed save
    left beside ``detector`` (``.tmp-...``, ``.old-...``, each with a detector.json) failed with
    "expected one detector artifact, found 3" (or loaded the half-written temporary one when
    ``detector`` was not in place yet): those leftovers are never artifacts."""
    for name in ("detector", f"{temporary_prefix('detector')}x1", f"{OLD_PREFIX}1.detector.x2"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "detector.json").write_text("{}")
    assert find_detector(tmp_path) == tmp_path / "detector"
    (tmp_path / "detector" / "detector.json").unlink()
    with pytest.raises(ESAInputError, match="found 0"):
        find_detector(tmp_path)


@pytest.mark.parametrize("count", [2, 7])
def test_several_detectors_below_artifacts_are_named(tmp_path, count):
    """``--artifacts`` holding several detectors said only "found N": the user could not tell
    which folders to remove. The message names them (the first five, then "...")."""
    names = [f"run_{i}/detector" for i in range(count)]
    for name in names:
        (tmp_path / name).mkdir(parents=True)
        (tmp_path / name / "detector.json").write_text("{}")
    with pytest.raises(ESAInputError, match=f"found {count}") as err:
        find_detector(tmp_path)
    shown = names[:5]
    for name in shown:
        assert name in str(err.value)
    assert all(name not in str(err.value) for name in names[5:])
    assert ("..." in str(err.value)) == (count > 5)
