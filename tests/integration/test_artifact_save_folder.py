"""``Detector.save(path)`` replaced whatever folder ``path`` named: saved into a folder of the
user's (a run folder, a notes folder) it removed every file there. It writes into a new or empty
folder, or replaces an earlier detector artifact (a folder holding detector.json); any other
existing folder, or a file, is refused naming it, and left as it was."""

from __future__ import annotations

import pytest

from esa_lightning.artifact import Detector, mission_schema
from esa_lightning.errors import ESAInputError
from tests.helpers import fitted_zscore, make_mission


@pytest.fixture(scope="module")
def detector() -> Detector:
    mission = make_mission()
    return Detector({"smoke": fitted_zscore(mission)}, mission_schema(mission))


def test_a_folder_of_other_files_is_refused_and_kept(detector, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep me\n")
    with pytest.raises(ESAInputError, match="notes.txt") as refused:
        detector.save(folder)
    assert refused.value.path == str(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    assert (folder / "notes.txt").read_text() == "keep me\n"


def test_a_file_is_refused_and_kept(detector, tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(ESAInputError, match="not a folder"):
        detector.save(path)
    assert path.read_text() == "x"


def test_a_new_or_empty_folder_or_an_earlier_artifact_is_written(detector, tmp_path):
    (tmp_path / "empty").mkdir()
    for name in ("new", "empty", "new"):  # the last replaces the artifact saved first
        saved = detector.save(tmp_path / name)
        assert (saved / "detector.json").is_file()
        assert Detector.load(saved).schema == detector.schema
