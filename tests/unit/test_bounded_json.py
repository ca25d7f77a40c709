"""JSON and YAML files of run folders, caches and mission records are refused by their size,
naming the file, before they are read: any such folder can be one a user handed (``ckpt=...``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from esa_lightning import io
from esa_lightning.api.training import _metrics
from esa_lightning.data.development import development_source
from esa_lightning.data.readers.esa_adb import read_mission_record
from esa_lightning.errors import ESAInputError
from esa_lightning.jobs.sweep_failures import NoObjective, read_objective
from esa_lightning.run_folder import MANIFEST, recorded_outputs


def oversized(path: Path) -> Path:
    """``path``: a sparse file one byte over ``io.SETTINGS_LIMIT`` (no disk space taken)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(io.SETTINGS_LIMIT + 1)
    return path


def refused_naming(exc: BaseException, path: Path | None) -> None:
    text = str(exc)
    if path is not None:
        assert text.count(str(path)) == 1  # named once, not wrapped in another message
    assert f"{io.SETTINGS_LIMIT + 1:,} bytes" in text
    assert f"{io.SETTINGS_LIMIT >> 20} MiB" in text


def test_the_bounded_reader_refuses_before_reading_and_reads_what_fits(tmp_path):
    small = tmp_path / "small.json"
    small.write_text('{"a": 1}')
    assert io.read_settings_json(small) == {"a": 1}
    big = oversized(tmp_path / "big.json")
    with pytest.raises(ESAInputError) as caught:
        io.read_settings_json(big)
    refused_naming(caught.value, big)
    with pytest.raises(ESAInputError, match="a folder, not a regular file"):
        io.read_settings_json(tmp_path)
    with pytest.raises(FileNotFoundError):
        io.read_settings_json(tmp_path / "missing.json")


def test_a_run_folders_outputs_manifest_over_the_bound_is_refused_naming_it(tmp_path):
    path = oversized(tmp_path / MANIFEST)
    with pytest.raises(ESAInputError) as caught:
        recorded_outputs(tmp_path)
    refused_naming(caught.value, path)


def test_a_run_folders_metrics_over_the_bound_is_refused_naming_it(tmp_path):
    path = oversized(tmp_path / "metrics.json")
    with pytest.raises(ESAInputError) as caught:
        _metrics(tmp_path)
    refused_naming(caught.value, path)


def test_a_trials_metrics_over_the_bound_is_its_reason_for_no_objective(tmp_path):
    path = oversized(tmp_path / "metrics.json")
    with pytest.raises(NoObjective) as caught:
        read_objective(path, "EW_F_0.50")
    refused_naming(caught.value, None)  # the trial's line names its folder
    assert str(caught.value).startswith("its metrics.json is unreadable (")


def test_a_mission_record_over_the_bound_is_refused_naming_it(tmp_path):
    path = oversized(tmp_path / "mission.json")
    with pytest.raises(ESAInputError) as caught:
        read_mission_record(tmp_path)
    refused_naming(caught.value, path)
    with pytest.raises(ESAInputError) as caught:
        development_source(tmp_path / "source", tmp_path, tmp_path / "out")
    refused_naming(caught.value, path)
