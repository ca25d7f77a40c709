"""Resuming from a checkpoint that cannot be read says what to do instead.

``error: <file>: cannot be read as a checkpoint: ... (101)`` gave torch's reason alone, often
cryptic, and no way out. The refusal now names another checkpoint of the same run that reads
(``runtime.checkpoint_advice``), or says to start a new run where none does; torch's reason
is said in plain words (its own, an exception's name or a bare key, are left to --debug).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from esa_lightning.errors import ESAInputError
from esa_lightning.runtime.checkpoints import check_resume_checkpoint


def good(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": {}}, path)
    return path


def damaged(path: Path) -> Path:
    good(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def refusal(path: Path) -> str:
    with pytest.raises(ESAInputError) as caught:
        check_resume_checkpoint(path, torch.nn.Linear(1, 1))
    message = str(caught.value)
    assert message.startswith(f"{path}: cannot be read as a checkpoint: ") and "\n" not in message
    return message


def test_a_damaged_last_checkpoint_names_the_runs_best_epoch(tmp_path):
    folder = tmp_path / "run" / "checkpoints" / "gru_ae"
    best = good(folder / "epoch_004.ckpt")
    damaged(folder / "epoch_002.ckpt")  # an older epoch's that does not read is passed over
    damaged_last = damaged(folder / "last.ckpt")
    message = refusal(damaged_last)
    assert f"resume from another checkpoint of this run: ckpt_path={best}" in message
    assert "or start a new run (another output_dir=, no ckpt_path)" in message
    # torch's words (an exception's name, "PytorchStreamReader failed...") are left out
    assert message.startswith(f"{damaged_last}: cannot be read as a checkpoint: the file is "
                              "damaged, cut short, or not a checkpoint; resume from ")


def test_a_damaged_detector_checkpoint_names_the_runs_last(tmp_path):
    run = tmp_path / "run"
    last = good(run / "checkpoints" / "gru_ae" / "last.ckpt")
    good(run / "checkpoints" / "gru_ae" / "epoch_001.ckpt")
    message = refusal(damaged(run / "detector" / "components" / "gru_ae" / "lightning.ckpt"))
    assert f"ckpt_path={last}," in message


def test_a_damaged_last_checkpoint_of_several_components_says_to_put_another_in_place(
        tmp_path):
    run = tmp_path / "run"
    good(run / "checkpoints" / "zscore" / "last.ckpt")
    detector = good(run / "detector" / "components" / "gru_ae" / "lightning.ckpt")
    message = refusal(damaged(run / "checkpoints" / "gru_ae" / "last.ckpt"))
    assert f"put a copy of {detector} in its place" in message
    assert "resume again with ckpt_path=last" in message


def test_without_another_readable_checkpoint_it_says_to_start_a_new_run(tmp_path):
    folder = tmp_path / "checkpoints" / "gru_ae"
    damaged(folder / "epoch_003.ckpt")
    (folder / "notes.txt").write_text("not a checkpoint")
    message = refusal(damaged(folder / "last.ckpt"))
    assert message.endswith("; no other checkpoint of this run reads: start a new run (another "
                            "output_dir=, no ckpt_path)")
