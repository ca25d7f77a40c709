"""An ``esa_full`` component's model chosen on the command line picks the datamodule it trains
on, as ``model=NAME`` alone does (``jobs.component_datamodules``): ``+model@components.z.model=
zscore`` needed ``+datamodule@components.z.datamodule=rows`` too (without it: a
``ConfigAttributeError`` traceback, "Key 'datamodule' is not in struct"), and a component model
of another datamodule than its component's was refused only once the data were read, without
the override to type."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hydra.utils import get_class

from esa_lightning.errors import ESAInputError
from esa_lightning.jobs.paths import compose_config as compose_as_hydra
from tests.conftest import CONF, REPO

ESA_FULL = ["experiment=esa_full"]


def kinds(cfg) -> dict[str, tuple[str, str]]:  # noqa: ANN001
    """{component: (the datamodule kind its model trains on, the kind its datamodule is)}."""
    return {name: (get_class(spec.model._target_).datamodule_kind,
                   get_class(spec.datamodule._target_).DATAMODULE_KIND)
            for name, spec in cfg.components.items()}


@pytest.mark.parametrize(
    ("overrides", "component", "kind"),
    [
        (["+model@components.z.model=zscore"], "z", "rows"),
        (["+model@components.z.model=global_std"], "z", "rows"),
        (["+model@components.pca.model=window_pca"], "pca", "windows"),
        (["+model@components.r.model=rolling_gbdt"], "r", "mission"),
        (["model@components.channel_ensemble.model=zscore"], "channel_ensemble", "rows"),
        (["model@components.gru_ae.model=channel_ensemble_gbdt"], "gru_ae", "segments"),
    ],
)
def test_a_components_model_alone_picks_its_datamodule(overrides, component, kind):
    from esa_lightning.api.training import compose_job

    cfg = compose_job("train", [*ESA_FULL, *overrides])
    trains_on, given = kinds(cfg)[component]
    assert trains_on == given == kind
    # the other components keep their own
    for name, (trains_on, given) in kinds(cfg).items():
        assert trains_on == given, name


def test_the_datamodule_named_on_the_command_line_wins_and_is_refused_by_its_override():
    from esa_lightning.api.training import compose_job
    from esa_lightning.jobs.common import refuse_unusable_components
    from esa_lightning.jobs.train import component_specs

    cfg = compose_job("train", [*ESA_FULL, "+model@components.z.model=zscore",
                                "+datamodule@components.z.datamodule=windows"])
    assert kinds(cfg)["z"] == ("rows", "windows")
    with pytest.raises(ESAInputError) as refused:  # before the data are read
        refuse_unusable_components(cfg, component_specs(cfg))
    assert str(refused.value) == (
        "component z: RobustZScore trains on datamodule=rows, not windows; give "
        "datamodule@components.z.datamodule=rows")


def test_a_component_without_a_datamodule_is_refused_naming_the_override_to_type():
    """Composed as Hydra does, without the datamodule the command line would add."""
    from esa_lightning.jobs.common import refuse_unusable_components
    from esa_lightning.jobs.train import component_specs

    cfg = compose_as_hydra("train", [*ESA_FULL, "+model@components.z.model=zscore"], CONF)
    assert "datamodule" not in cfg.components.z
    with pytest.raises(ESAInputError, match=r"^component z has no datamodule: its model "
                       r"RobustZScore trains on datamodule=rows; add "
                       r"\+datamodule@components\.z\.datamodule=rows$"):
        refuse_unusable_components(cfg, component_specs(cfg))


def test_a_sweep_of_component_models_gets_their_shared_datamodule_or_is_refused():
    from esa_lightning.jobs.component_datamodules import with_component_datamodules

    same = with_component_datamodules(["-m", *ESA_FULL, "+model@components.z.model=zscore,"
                                       "global_std", "--cfg", "job"])
    assert same == ["-m", *ESA_FULL, "+model@components.z.model=zscore,global_std",
                    "+datamodule@components.z.datamodule=rows", "--cfg", "job"]
    with pytest.raises(ESAInputError) as refused:
        with_component_datamodules([*ESA_FULL, "+model@components.z.model=zscore,window_pca"])
    assert "+datamodule@components.z.datamodule=rows for zscore" in str(refused.value)
    assert "+datamodule@components.z.datamodule=windows for window_pca" in str(refused.value)
    # named by the user, or an unknown model (Hydra names it): left as given
    for given in ([*ESA_FULL, "+model@components.z.model=zscore",
                   "+datamodule@components.z.datamodule=windows"],
                  [*ESA_FULL, "+model@components.z.model=nope"]):
        assert with_component_datamodules(given) == given


def test_train_py_composes_a_components_model_with_its_datamodule(tmp_path):
    """The command line itself (``--cfg job`` prints the job's config, nothing is run)."""
    env = {**os.environ, "ESA_LIGHTNING_ROOT": str(tmp_path), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, str(REPO / "train.py"), *ESA_FULL,
                           "+model@components.z.model=zscore", "--cfg", "job"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import yaml

    printed = yaml.safe_load(proc.stdout)
    assert printed["components"]["z"]["datamodule"]["_target_"].endswith(".RowDataModule")


def test_esa_fulls_unused_top_level_datamodule_is_null(tmp_path):
    """Its config (printed, saved in .hydra/config.yaml and the detector's config.yaml) showed a
    top-level ``datamodule`` no component read: ``segments``, the last component model's choice
    (``windows`` before models chose theirs), whatever model a component was given."""
    from tests.conftest import compose_config

    for extra in ([], ["+model@components.z.model=zscore"]):
        cfg = compose_config("train", [*ESA_FULL, *extra], tmp_path)
        assert cfg.datamodule is None
    # a single model keeps the one it trains on
    assert compose_config("train", ["model=zscore"], tmp_path).datamodule is not None


@pytest.mark.parametrize(
    ("override", "instead"),
    [
        ("datamodule.stride=3", "set components.gru_ae.datamodule.stride=3 instead"),
        ("+datamodule.batch_rows=64",
         "set components.channel_ensemble.datamodule.batch_rows=64 instead"),
        ("datamodule=rows", "name a component's own instead: "
         "datamodule@components.gru_ae.datamodule=rows or "
         "datamodule@components.channel_ensemble.datamodule=rows"),
    ],
)
def test_a_top_level_datamodule_override_of_esa_full_names_the_components_keys(override,
                                                                               instead):
    """It was Hydra's "Could not override 'datamodule.stride'" (suggesting a ``+`` that nothing
    reads), or taken into the unused node (``datamodule=rows``, ``+datamodule.batch_rows``)."""
    from esa_lightning.cli.overrides import compose_error

    reason = compose_error("train", [*ESA_FULL, override], check=True)
    assert reason == (f"{override}: experiment esa_full trains each component on its own "
                      f"datamodule, the top-level datamodule is not used: {instead}")


def test_train_py_refuses_a_component_of_another_datamodule_with_the_override_as_typed(tmp_path):
    """A component the command line added (``+model@components.z.model``) is given its
    datamodule with a ``+``: the refusal names the override as it must be typed."""
    env = {**os.environ, "ESA_LIGHTNING_ROOT": str(tmp_path), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, str(REPO / "train.py"), *ESA_FULL, "logger=none",
                           "+model@components.z.model=zscore",
                           "+datamodule@components.z.datamodule=windows"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines()[-1] == (
        "error: component z: RobustZScore trains on datamodule=rows, not windows; give "
        "+datamodule@components.z.datamodule=rows")
