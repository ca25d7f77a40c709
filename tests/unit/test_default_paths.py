"""``paths.data_dir``'s default: datasets/ in a clone, the user data folder when installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from esa_lightning.jobs import paths
from tests.conftest import compose_config


@pytest.fixture
def installed(monkeypatch, tmp_path):
    """The package as an installed wheel sees it: no clone around it."""
    monkeypatch.setattr(paths, "running_from_source", lambda: False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user_data"))


def test_a_clone_keeps_datasets_under_the_root(tmp_path):
    assert paths.running_from_source()
    assert paths.default_data_dir(str(tmp_path)) == f"{tmp_path}/datasets"


def test_installed_without_a_datasets_folder_uses_the_user_data_folder(installed, tmp_path):
    expected = tmp_path / "user_data" / "esa_lightning" / "datasets"
    assert Path(paths.default_data_dir(str(tmp_path / "work"))) == expected


def test_installed_with_a_datasets_folder_uses_it(installed, tmp_path):
    (tmp_path / "work" / "datasets").mkdir(parents=True)
    assert paths.default_data_dir(str(tmp_path / "work")) == f"{tmp_path}/work/datasets"


def test_the_configs_resolve_the_data_and_cache_folders_through_it(installed, tmp_path):
    cfg = compose_config("train", [], tmp_path / "run")
    user = tmp_path / "user_data" / "esa_lightning" / "datasets"
    assert Path(cfg.data.root) == user / "synthetic_default"
    assert Path(cfg.paths.cache_dir) == user / "cache"
