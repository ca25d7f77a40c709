"""The run-folder lock without ``flock`` (the portable fallback), its re-entrancy, and the removal
of a folder a refused run made."""

from __future__ import annotations

import os

import pytest

from esa_lightning import io, run_folder
from esa_lightning.errors import ESAInputError
from esa_lightning.run_folder import (
    LOCK_NAME,
    lock_run_folder,
    make_run_folder,
    removed_if_refused,
)
from tests.helpers import dead_pid


@pytest.fixture(params=["flock", "exclusive file"])
def mechanism(request, monkeypatch):
    if request.param == "exclusive file":
        monkeypatch.setattr(run_folder, "fcntl", None)
    return request.param


def test_the_lock_is_reentrant_and_gone_afterwards(tmp_path, mechanism):
    with lock_run_folder(tmp_path), lock_run_folder(tmp_path / "."):
        assert (tmp_path / LOCK_NAME).read_text() == io.owner_tag()
    assert not (tmp_path / LOCK_NAME).exists()
    with pytest.raises(RuntimeError), lock_run_folder(tmp_path):
        raise RuntimeError
    assert not (tmp_path / LOCK_NAME).exists()


def test_the_fallback_refuses_a_live_owner_and_takes_over_an_ended_one(tmp_path, monkeypatch):
    monkeypatch.setattr(run_folder, "fcntl", None)
    lock = tmp_path / LOCK_NAME
    lock.write_text(f"{io.OWNER_MARK}.{io._host()}.{os.getppid()}")  # pytest's parent: alive
    with pytest.raises(ESAInputError, match=f"pid {os.getppid()} on"):
        with lock_run_folder(tmp_path):
            pass
    assert lock.is_file()
    lock.write_text(f"{io.OWNER_MARK}.{io._host()}.{dead_pid()}")
    with lock_run_folder(tmp_path):
        assert lock.read_text() == io.owner_tag()
    lock.write_text("some other program's lock")
    with pytest.raises(ESAInputError, match="another run is writing into this folder"):
        with lock_run_folder(tmp_path):
            pass


def refuse(folder) -> None:
    with pytest.raises(ESAInputError), removed_if_refused(folder), lock_run_folder(folder):
        (folder / "train.log").write_text("read the data\n")
        raise ESAInputError("bad column")


def test_a_refused_run_removes_the_folders_it_made_and_nothing_else(tmp_path):
    run = tmp_path / "outputs" / "gru_ae" / "run"
    make_run_folder(run)
    (tmp_path / "outputs" / "other").mkdir()  # another run's, made meanwhile
    refuse(run)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["other", "outputs"]


def test_a_folder_that_was_there_or_that_a_run_wrote_into_stays(tmp_path):
    """Forgetting the folder once the block passed: a later run refused in the same process
    (a notebook training twice into one output_dir) removed the first run's detector."""
    there = tmp_path / "there"
    there.mkdir()
    make_run_folder(there)
    refuse(there)
    assert (there / "train.log").is_file()
    run = tmp_path / "run"
    make_run_folder(run)
    with removed_if_refused(run):
        (run / "detector").mkdir()
    make_run_folder(run)
    refuse(run)
    assert (run / "detector").is_dir()


def test_a_folder_under_a_file_says_a_file_is_in_the_way_naming_it(tmp_path):
    """It read 'cannot write (File exists)' (or 'Not a directory'): errno text, not a reason."""
    in_the_way = tmp_path / "notes.txt"
    in_the_way.write_text("mine")
    for target in (in_the_way / "synthetic_default", in_the_way / "a" / "b"):
        with pytest.raises(ESAInputError) as refused:
            io.make_temporary_folder(target)
        message = str(refused.value)
        assert f"cannot write (a file is in the way: {in_the_way})" in message, message
        assert "File exists" not in message and "Not a directory" not in message
    assert in_the_way.read_text() == "mine"


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (PermissionError(13, "Permission denied"), "permission denied"),
        (PermissionError(1, "Operation not permitted"), "permission denied"),
        (OSError(30, "Read-only file system"), "read-only file system"),
        (OSError(28, "No space left on device"), "No space left on device"),
    ],
)
def test_a_folder_that_cannot_be_made_says_why_plainly(tmp_path, monkeypatch, error, reason):
    def refuse(*args, **kwargs):
        raise error

    monkeypatch.setattr(io.tempfile, "mkdtemp", refuse)
    with pytest.raises(ESAInputError, match=rf": cannot write \({reason}\)$"):
        io.make_temporary_folder(tmp_path / "data")


def test_a_folder_in_the_way_of_a_file_is_named_so(tmp_path):
    folder = tmp_path / "metrics.json"
    folder.mkdir()
    error = io.write_error(folder, IsADirectoryError(21, "Is a directory", str(folder)))
    assert str(error).endswith("cannot write (a folder is in the way)")


def test_a_held_folder_is_refused_with_the_setting_of_either_entry(tmp_path, monkeypatch):
    """The refusal told a Python API caller (``esa_lightning.predict``) to give its run another
    ``hydra.run.dir``, a setting the API does not have: it names ``output_dir=`` too."""
    monkeypatch.setattr(run_folder, "fcntl", None)
    (tmp_path / LOCK_NAME).write_text(f"{io.OWNER_MARK}.{io._host()}.{os.getppid()}")
    with pytest.raises(ESAInputError, match=r"hydra\.run\.dir=.*output_dir="):
        with lock_run_folder(tmp_path):
            pass
