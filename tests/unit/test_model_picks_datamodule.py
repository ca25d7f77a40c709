"""``model=NAME`` alone composes the datamodule the model trains on (``conf/model/<name>.yaml``
overrides ``datamodule``): ``python train.py model=zscore`` was refused with "RobustZScore
trains on datamodule=rows, not windows" (the default). A ``datamodule=`` on the command line,
or an experiment's override, still wins."""

from __future__ import annotations

import pytest
from hydra.utils import get_class

from esa_lightning.errors import ESAInputError
from tests.conftest import CONF, compose_config

MODEL_CONFIGS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))


def _kinds(node) -> tuple[str, str]:  # noqa: ANN001
    """(the datamodule kind ``node.model`` trains on, the kind ``node.datamodule`` is)."""
    trains_on = get_class(node.model._target_).datamodule_kind
    return trains_on, get_class(node.datamodule._target_).DATAMODULE_KIND


@pytest.mark.parametrize("name", MODEL_CONFIGS)
def test_a_model_alone_composes_the_datamodule_it_trains_on(name, tmp_path):
    cfg = compose_config("train", [f"model={name}"], tmp_path)
    trains_on, given = _kinds(cfg)
    assert given == trains_on
    assert "defaults" not in cfg.model


@pytest.mark.parametrize("name", MODEL_CONFIGS)
def test_the_command_lines_datamodule_wins(name, tmp_path):
    for kind in ("windows", "rows", "segments", "mission"):
        cfg = compose_config("train", [f"model={name}", f"datamodule={kind}"], tmp_path)
        assert get_class(cfg.datamodule._target_).DATAMODULE_KIND == kind


@pytest.mark.parametrize(
    ("overrides", "datamodule"),
    [
        (["experiment=smoke"], "rows"),
        (["experiment=smoke", "model=global_std"], "rows"),
        (["experiment=channel_ensemble"], "segments"),
        (["experiment=channel_ensemble", "model=channel_ensemble_gbdt"], "segments"),
        (["experiment=rolling_gbdt"], "mission"),
        # an experiment's own choice stands over its model's (refused by name when they differ)
        (["experiment=smoke", "model=gru_ae"], "rows"),
    ],
)
def test_an_experiments_datamodule_stands(overrides, datamodule, tmp_path):
    cfg = compose_config("train", overrides, tmp_path)
    assert get_class(cfg.datamodule._target_).DATAMODULE_KIND == datamodule


def test_esa_fulls_components_keep_their_own_datamodules(tmp_path):
    cfg = compose_config("train", ["experiment=esa_full"], tmp_path)
    for spec in cfg.components.values():
        trains_on, given = _kinds(spec)
        assert given == trains_on


def test_another_datamodule_given_is_still_refused_by_name(tmp_path):
    from esa_lightning.jobs.train import train

    cfg = compose_config("train", ["experiment=smoke", "logger=none", "datamodule=windows"],
                         tmp_path)
    with pytest.raises(ESAInputError, match="RobustZScore trains on datamodule=rows, not windows"):
        train(cfg)
