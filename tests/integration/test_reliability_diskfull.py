"""Disk full, unwritable outputs: an ESAInputError naming the path; earlier outputs kept."""

from __future__ import annotations

import errno
import os
import warnings

import numpy as np
import pytest
import torch

from esa_lightning import io
from esa_lightning.artifact import Detector
from esa_lightning.errors import ESAInputError
from esa_lightning.models.zscore.model import RobustZScore
from esa_lightning.reporting.outputs import write_submission
from tests.conftest import compose_config
from tests.helpers import cache_is_clean, write_esa_csv

ENOSPC = os.strerror(errno.ENOSPC)


def no_space(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, ENOSPC)


def no_temporaries(folder) -> bool:
    return not [p for p in folder.rglob("*") if p.name.startswith((".tmp-", ".old-"))]


def detector(threshold: float) -> Detector:
    model = RobustZScore(n_channels=2, quantile=99.0)
    model.threshold.fill_(threshold)
    return Detector({"z": model}, {"channels": ["a", "b"], "telecommands": [], "period": None})


@pytest.mark.parametrize("target", ["np.save", "os.replace"])
def test_npy_write_on_a_full_disk(tmp_path, monkeypatch, target):
    path = tmp_path / "scores.npy"
    io.save_npy_atomic(path, np.arange(5.0))
    module, name = target.split(".")
    monkeypatch.setattr({"np": np, "os": os}[module], name, no_space)
    with pytest.raises(ESAInputError) as info:
        io.save_npy_atomic(path, np.zeros(5))
    assert str(path) in str(info.value) and ENOSPC in str(info.value)
    monkeypatch.undo()
    np.testing.assert_array_equal(np.load(path), np.arange(5.0))
    assert no_temporaries(tmp_path)


def test_json_and_report_writers_on_a_full_disk(tmp_path, monkeypatch):
    io.write_json_atomic(tmp_path / "metrics.json", {"a": 1})
    write_submission(np.arange(3), np.array([0, 1, 0]), tmp_path / "submission.csv")
    before = (tmp_path / "submission.csv").read_text()
    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(ESAInputError, match="metrics.json"):
        io.write_json_atomic(tmp_path / "metrics.json", {"a": 2})
    with pytest.raises(ESAInputError, match="submission.csv"):
        write_submission(np.arange(3), np.array([1, 1, 1]), tmp_path / "submission.csv")
    monkeypatch.undo()
    assert (tmp_path / "metrics.json").read_text().count('"a": 1') == 1
    assert (tmp_path / "submission.csv").read_text() == before
    assert no_temporaries(tmp_path)


def test_detector_save_on_a_full_disk_keeps_the_old_artifact(tmp_path, monkeypatch):
    path = tmp_path / "detector"
    detector(1.0).save(path)
    monkeypatch.setattr(torch, "save", no_space)
    with pytest.raises(ESAInputError) as info:
        detector(2.0).save(path)
    assert str(path) in str(info.value) and ENOSPC in str(info.value)
    monkeypatch.undo()
    assert float(Detector.load(path).components["z"].threshold) == 1.0
    assert no_temporaries(tmp_path)


def test_detector_swap_failure_restores_the_old_artifact(tmp_path, monkeypatch):
    path = tmp_path / "detector"
    detector(1.0).save(path)
    real_rename = os.rename

    def fail_new_into_place(self, target):
        if self.name.startswith(".tmp-") and ".detector." in self.name:
            raise OSError(errno.ENOSPC, ENOSPC)
        return real_rename(self, target)

    monkeypatch.setattr(type(path), "rename", fail_new_into_place)
    with pytest.raises(ESAInputError, match="detector"):
        detector(2.0).save(path)
    monkeypatch.undo()
    assert float(Detector.load(path).components["z"].threshold) == 1.0
    assert no_temporaries(tmp_path)


def test_reader_cache_on_a_full_disk_only_warns(tmp_path, monkeypatch):
    from esa_lightning.data.readers.esa_csv import read_esa_csv

    # the cache's arrays are allocated as .npy files: creating them is where the disk fills
    monkeypatch.setattr(np.lib.format, "open_memmap", no_space)
    with pytest.warns(UserWarning, match="could not write the cache"):
        mission = read_esa_csv(write_esa_csv(tmp_path / "m.csv"), cache_dir=tmp_path / "cache")
    assert mission.values.shape == (30, 2)
    assert cache_is_clean(tmp_path / "cache", "manifest.json")


def test_a_file_where_the_output_folder_should_be(tmp_path):
    blocker = tmp_path / "outputs"
    blocker.write_text("not a folder")
    with pytest.raises(ESAInputError, match="outputs"):
        io.write_json_atomic(blocker / "metrics.json", {})
    with pytest.raises(ESAInputError, match="outputs"):
        detector(1.0).save(blocker / "detector")
    from esa_lightning.jobs.predict import predict

    cfg = compose_config("predict", [f"ckpt={tmp_path / 'missing'}"], blocker / "run")
    with pytest.raises(ESAInputError, match="outputs"):
        predict(cfg)
    # train() too (before, a bare FileExistsError escaped from its output folder creation)
    from esa_lightning.jobs.train import train

    cfg = compose_config("train", ["experiment=smoke"], blocker / "run")
    with pytest.raises(ESAInputError, match="outputs"):
        train(cfg)
    assert blocker.read_text() == "not a folder"


def test_read_only_output_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    io.write_json_atomic(folder / "metrics.json", {"a": 1})
    folder.chmod(0o555)
    try:
        probe = folder / "probe"
        try:
            probe.write_text("x")
        except PermissionError:
            pass
        else:
            probe.unlink()
            pytest.skip("running as root: chmod does not stop writes (see the file-in-place test)")
        with pytest.raises(ESAInputError, match="ro"):
            io.write_json_atomic(folder / "metrics.json", {"a": 2})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(ESAInputError):
                detector(1.0).save(folder / "detector")
    finally:
        folder.chmod(0o755)
    assert (folder / "metrics.json").read_text().count('"a": 1') == 1
