"""What ``ckpt=`` (``Detector.load``) says about a path that is not a detector folder."""

from __future__ import annotations

import re

import pytest

from esa_lightning.artifact import Detector
from esa_lightning.errors import ESAInputError


def test_a_training_runs_folder_is_refused_naming_its_detector_folder(tmp_path):
    run = tmp_path / "outputs" / "gru_ae" / "run"
    (run / "detector").mkdir(parents=True)
    (run / "detector" / "detector.json").write_text("{}")
    with pytest.raises(ESAInputError, match=re.escape(str(run / "detector"))):
        Detector.load(run)


def test_a_path_that_does_not_exist_is_called_missing(tmp_path):
    with pytest.raises(ESAInputError, match="no such folder") as caught:
        Detector.load(tmp_path / "nope")
    assert str(tmp_path / "nope") in str(caught.value)


def test_a_file_inside_a_detector_folder_names_that_folder(tmp_path):
    """ckpt=<run>/detector/config.yaml said only "a file, not a detector artifact folder"."""
    detector = tmp_path / "detector"
    detector.mkdir()
    (detector / "detector.json").write_text("{}")
    (detector / "config.yaml").write_text("model: {}\n")
    with pytest.raises(ESAInputError, match="a file, not a detector artifact folder") as caught:
        Detector.load(detector / "config.yaml")
    assert f"pass its folder {detector}" in str(caught.value)


def test_a_training_runs_lightning_checkpoint_names_the_runs_detector_folder(tmp_path):
    """ckpt=<run>/checkpoints/<model>/last.ckpt said only "a file, not a detector artifact
    folder", naming no folder: predict.py reads the run's detector/, never a checkpoint."""
    run = tmp_path / "run"
    (run / "detector").mkdir(parents=True)
    (run / "detector" / "detector.json").write_text("{}")
    (run / "checkpoints" / "gru_ae").mkdir(parents=True)
    for checkpoint in (run / "checkpoints" / "gru_ae" / "last.ckpt", run / "metrics.json"):
        checkpoint.write_bytes(b"not read")
        with pytest.raises(ESAInputError, match="a file, not a detector artifact folder") as caught:
            Detector.load(checkpoint)
        assert f"its run's detector is {run / 'detector'}" in str(caught.value)
        assert checkpoint.read_bytes() == b"not read"


def test_a_file_outside_any_run_names_no_folder(tmp_path):
    (tmp_path / "model.ckpt").write_bytes(b"x")
    with pytest.raises(ESAInputError, match="a file, not a detector artifact folder") as caught:
        Detector.load(tmp_path / "model.ckpt")
    assert "its run's detector" not in str(caught.value)
