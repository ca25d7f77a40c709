"""A ``-m`` sweep into a folder where an earlier sweep's jobs trained is refused before Hydra
writes there; the check looked only at the folder's own subfolders, so an earlier sweep whose
``hydra.sweep.subdir`` nested its jobs (``seed/${seed}``) was not seen: rerun, each job was
refused in turn, after Hydra had rewritten its ``.hydra/``."""

from __future__ import annotations

import pytest

from esa_lightning.errors import ESAInputError
from esa_lightning.jobs.run_guard import refuse_earlier_sweep


def trained(folder) -> None:
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    (folder / "metrics.json").write_text("{}")


def test_an_earlier_sweeps_nested_job_folder_is_seen(tmp_path):
    trained(tmp_path / "seed" / "1")
    (tmp_path / "seed" / "2" / ".hydra").mkdir(parents=True)  # a job refused before it trained
    with pytest.raises(ESAInputError) as refused:
        refuse_earlier_sweep(tmp_path, None)
    message = str(refused.value)
    assert message.startswith(f"{tmp_path}: holds an earlier sweep's job seed/1 ("), message
    assert "metrics.json" in message and "checkpoints/" in message
    refuse_earlier_sweep(tmp_path, "last")  # a resume goes on


def test_a_folder_of_refused_jobs_only_and_a_runs_own_folders_are_no_earlier_jobs(tmp_path):
    for job in ("0", "seed/1"):
        (tmp_path / job / ".hydra").mkdir(parents=True)
        (tmp_path / job / "train.log").write_text("refused\n")
    refuse_earlier_sweep(tmp_path, None)
