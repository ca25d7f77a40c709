"""An ``esa_full`` component refused before its data are read names the override as the user
must type it, from the Python API as from train.py: the API's hint left out the ``+`` of a
component the overrides had added (``give datamodule@components.z.datamodule=rows``, which
Hydra refuses: no such default), as it read only a running Hydra job's overrides. And a
component's model set to a name (``components.channel_ensemble.model=channel_ensemble_gbdt``,
not the documented choice ``model@components.channel_ensemble.model=...``) kept esa_full's
datamodule settings (``batch_rows: 128``, where the model alone gets 512) and stopped with an
``AttributeError`` traceback; it is refused naming the choice to type. With the choice, the
component's model and datamodule are those ``model=channel_ensemble_gbdt`` alone composes."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import yaml

from esa_lightning.errors import ESAInputError
from tests.conftest import REPO

ESA_FULL = ["experiment=esa_full", "logger=none"]
ADDED = ["+model@components.z.model=zscore", "+datamodule@components.z.datamodule=windows"]


def test_the_python_api_names_the_plus_of_a_component_it_added(tmp_path):
    import esa_lightning

    with pytest.raises(ESAInputError) as refused:
        esa_lightning.train([*ESA_FULL, *ADDED], root_dir=tmp_path)
    assert str(refused.value) == (
        "component z: RobustZScore trains on datamodule=rows, not windows; give "
        "+datamodule@components.z.datamodule=rows")
    assert not (tmp_path / "datasets").exists()  # refused before the data were read


def test_the_hint_follows_the_overrides_given():
    """``esa_full``'s own component is chosen again without a ``+``; one the overrides added
    with one (the overrides read where no Hydra job runs)."""
    from esa_lightning.api.training import compose_job
    from esa_lightning.jobs.component_datamodules import refuse_component_datamodules

    own = [*ESA_FULL, "datamodule@components.channel_ensemble.datamodule=windows"]
    for overrides, plus in ((own, ""), ([*ESA_FULL, *ADDED], "+")):
        cfg = compose_job("train", overrides)
        hint = f"; give {plus}datamodule@components.{'z' if plus else 'channel_ensemble'}."
        with pytest.raises(ESAInputError, match=re.escape(hint)):
            refuse_component_datamodules(dict(cfg.components.items()), overrides)


@pytest.mark.parametrize(
    ("override", "choice"),
    [
        ("components.channel_ensemble.model=channel_ensemble_gbdt",
         "model@components.channel_ensemble.model=channel_ensemble_gbdt"),
        ("+components.z.model=zscore", "+model@components.z.model=zscore"),
        ("components.gru_ae.datamodule=rows", "datamodule@components.gru_ae.datamodule=rows"),
    ],
)
def test_a_component_part_set_to_a_name_is_refused_naming_the_choice(override, choice,
                                                                      tmp_path):
    import esa_lightning

    with pytest.raises(ESAInputError) as refused:
        esa_lightning.train([*ESA_FULL, override], root_dir=tmp_path)
    key, _, value = override.lstrip("+").partition("=")
    part = key.rsplit(".", 1)[1]
    assert str(refused.value) == (f"{key}={value} sets the component's {part} to a value, not "
                                  f"to a config: choose it with {choice}")


def test_train_py_swaps_a_component_for_the_gbdt_ensemble_as_it_composes_alone(tmp_path):
    """``--cfg job`` of both command lines: the swapped component's model and datamodule are
    the stand-alone model's (``batch_rows: 512``, not esa_full's 128 for its ensemble)."""
    env = {**os.environ, "ESA_LIGHTNING_ROOT": str(tmp_path), "PYTHONWARNINGS": "ignore"}

    def printed(*overrides: str) -> dict:
        proc = subprocess.run([sys.executable, str(REPO / "train.py"), *overrides, "--cfg",
                               "job"], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return yaml.safe_load(proc.stdout)

    swapped = printed("experiment=esa_full",
                      "model@components.channel_ensemble.model=channel_ensemble_gbdt")
    alone = printed("model=channel_ensemble_gbdt")
    component = swapped["components"]["channel_ensemble"]
    assert component["model"] == alone["model"]
    assert component["datamodule"] == alone["datamodule"]
    assert printed("experiment=esa_full")["components"]["channel_ensemble"]["datamodule"][
        "batch_rows"] != alone["datamodule"]["batch_rows"]  # esa_full's own model keeps its


def test_a_component_without_a_model_is_refused_naming_it(tmp_path):
    """``~model@components.channel_ensemble.model`` stopped with a ``ConfigAttributeError``
    traceback (``Key 'model' is not in struct``) before; now a one-line refusal, before the
    data are read."""
    import esa_lightning

    with pytest.raises(ESAInputError) as refused:
        esa_lightning.train([*ESA_FULL, "~model@components.channel_ensemble.model"],
                            root_dir=tmp_path)
    assert str(refused.value) == (
        "component channel_ensemble has no model (components.channel_ensemble.model is "
        "empty): choose one with model@components.channel_ensemble.model=NAME, or leave it as "
        "the experiment sets it")
    assert not (tmp_path / "datasets").exists()  # refused before the data were read
