"""A generated synthetic mission reused on a later run: made by other generator code or with
other settings than this run's, it is said (a WARNING naming the folder), never regenerated
over nor removed."""

from __future__ import annotations

import inspect
import json
import logging
import shutil
import warnings
from pathlib import Path

import pytest

from esa_lightning.data.readers import synthetic_signals
from esa_lightning.data.readers.synthetic import load_synthetic
from esa_lightning.data.readers.synthetic_record import generator_code_digest

GEN = {"channels": 2, "groups": 1, "days": 1, "n_telecommands": 0}


def _files(root: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def _other_code_said(caplog, root: Path) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and str(root) in r.getMessage()
            and "generator" in r.getMessage()]


@pytest.mark.parametrize("recorded", ["another digest", None])
def test_a_mission_made_by_other_generator_code_is_warned_about(tmp_path, caplog, recorded):
    """The default mission was reused because its folder existed: after a change of the
    generator's code (or from a version that recorded no code digest), runs read the old
    mission without a word."""
    root = tmp_path / "synthetic_default"
    load_synthetic(root, generate=GEN, use_cache=False)
    info = json.loads((root / "mission.json").read_text())
    assert isinstance(info.get("generator_code"), str)  # what the generator's code was
    with caplog.at_level(logging.WARNING, logger="esa_lightning"):
        load_synthetic(root, generate=GEN, use_cache=False)  # the same code: nothing said
    assert not _other_code_said(caplog, root)
    if recorded is None:
        del info["generator_code"]
    else:
        info["generator_code"] = recorded
    (root / "mission.json").write_text(json.dumps(info))
    before = _files(root)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="esa_lightning"):
        load_synthetic(root, generate=GEN, use_cache=False)
    said = _other_code_said(caplog, root)
    assert len(said) == 1 and "delete" in said[0] and "data.root" in said[0], caplog.text
    assert _files(root) == before  # read as it is: nothing regenerated or removed


def test_a_first_use_mission_read_with_the_default_settings_is_warned_about(tmp_path):
    """train.py data.generate.seed=1 on the default data.root generated that mission there;
    a later plain train.py (data.generate.seed=0, the generator's default) read it without a
    word, so the default run scored another mission."""
    root = tmp_path / "synthetic_default"
    load_synthetic(root, generate={**GEN, "groups": None, "seed": 1}, use_cache=False)
    with pytest.warns(UserWarning, match=r"seed.*1.*0|seed.*0.*1") as caught:
        load_synthetic(root, generate={**GEN, "groups": None, "seed": 0}, use_cache=False)
    assert str(root) in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # as made (groups null, as the config gives it, resolved as the generator did): silent
        load_synthetic(root, generate={**GEN, "groups": None, "seed": 1}, use_cache=False)


def _readers_copy(tmp_path: Path) -> Path:
    """A copy of the readers' modules, to edit without touching the package."""
    where = tmp_path / "readers"
    where.mkdir()
    for module in Path(synthetic_signals.__file__).parent.glob("*.py"):
        shutil.copyfile(module, where / module.name)
    return where


def test_a_change_to_the_readers_grid_code_leaves_the_generator_digest_as_it_was(tmp_path):
    """The digest covered all of esa_adb_grid.py, the ESA-ADB reader's grid code, of which the
    generator uses only the period parser: a change to the reader marked every generated
    mission as made by another version of the generator."""
    where = _readers_copy(tmp_path)
    before = generator_code_digest(where)
    assert before == generator_code_digest()  # the copy is this code
    with (where / "esa_adb_grid.py").open("a") as f:
        f.write("\n\ndef a_reader_change() -> None:\n    pass\n")
    assert generator_code_digest(where) == before


@pytest.mark.parametrize("module", [synthetic_signals, synthetic_signals.period_ns])
def test_a_change_to_the_generating_code_changes_the_generator_digest(tmp_path, module):
    """The generator's signals and the grid period they are laid on are what it generates
    with: a change there is another version of the generator."""
    where = _readers_copy(tmp_path)
    before = generator_code_digest(where)
    name = Path(inspect.getsourcefile(module)).name
    with (where / name).open("a") as f:
        f.write("\n# another version\n")
    assert generator_code_digest(where) != before
