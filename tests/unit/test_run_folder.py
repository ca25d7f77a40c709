"""The run-folder lock without ``flock`` (the portable fallback), and its re-entrancy."""

from __future__ import annotations

import os

import pytest

from esa_lightning import io, run_folder
from esa_lightning.errors import ESAInputError
from esa_lightning.run_folder import LOCK_NAME, lock_run_folder
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
