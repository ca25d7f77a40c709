"""``paths.data_dir``'s default: datasets/ under the root, except for an installed package run
from a folder without one (the user data folder)."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import open_dict

from esa_lightning import install
from esa_lightning.jobs import paths
from tests.conftest import compose_config


@pytest.fixture
def installed(monkeypatch, tmp_path):
    """The package as an installed wheel sees it (no clone around it), run from ``work/``."""
    monkeypatch.setattr(install, "running_from_source", lambda: False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user_data"))
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path / "user_data" / "esa_lightning" / "datasets"


def test_a_clone_keeps_datasets_under_the_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert install.running_from_source()
    assert paths.default_data_dir(".") == "./datasets"


def test_installed_from_a_folder_without_datasets_uses_the_user_data_folder(installed):
    assert Path(paths.default_data_dir(".")) == installed


def test_installed_from_a_folder_with_datasets_uses_it(installed):
    Path("datasets").mkdir()
    assert paths.default_data_dir(".") == "./datasets"


def test_installed_with_an_explicit_root_keeps_datasets_under_it(installed, tmp_path):
    assert paths.default_data_dir(str(tmp_path / "root")) == f"{tmp_path}/root/datasets"


def test_the_configs_resolve_the_data_and_cache_folders_through_it(installed, tmp_path):
    cfg = compose_config("train", [], tmp_path / "run")
    with open_dict(cfg):
        cfg.paths.root_dir = paths.DEFAULT_ROOT  # compose_config sets a root of its own
    assert Path(cfg.data.root) == installed / "synthetic_default"
    assert Path(cfg.paths.cache_dir) == installed / "cache"


@pytest.mark.parametrize("given", ["env", "override"])
def test_a_root_given_as_the_current_folder_holds_its_own_datasets(installed, tmp_path,
                                                                   monkeypatch, given):
    """ESA_LIGHTNING_ROOT=. or paths.root_dir=. is a root given: its datasets/ (a string
    comparison with "." took it for the default and used the user data folder)."""
    cfg = compose_config("train", [], tmp_path / "run")
    with open_dict(cfg):
        cfg.paths.root_dir = paths.DEFAULT_ROOT if given == "env" else "."
    if given == "env":
        monkeypatch.setenv(paths.ROOT_ENV, ".")
    assert cfg.paths.data_dir == "./datasets" and cfg.paths.log_dir == "./outputs"


def test_an_empty_root_variable_is_no_root(installed, tmp_path, monkeypatch):
    """ESA_LIGHTNING_ROOT= (set, empty) made the root '' and wrote /outputs and /datasets."""
    monkeypatch.setenv(paths.ROOT_ENV, "")
    cfg = compose_config("train", [], tmp_path / "run")
    with open_dict(cfg):
        cfg.paths.root_dir = paths.DEFAULT_ROOT
    assert cfg.paths.root_dir == "." and cfg.paths.log_dir == "./outputs"
    assert Path(cfg.paths.data_dir) == installed
