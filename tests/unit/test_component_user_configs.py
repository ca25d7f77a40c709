"""An ``esa_full`` component's model picks its datamodule from the configs Hydra searches, a
user's ``--config-dir`` and ``hydra.searchpath`` included (``jobs.component_datamodules``):
it was read from the package's configs alone, so a model config of the user's own
(``my_conf/model/my_zscore.yaml``, choosing ``my_conf/datamodule/my_rows.yaml``) left its
component without a datamodule (``component z has no datamodule``) although
``model=my_zscore`` alone composed its datamodule."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import CONF, REPO

ESA_FULL = ["experiment=esa_full"]


def user_configs(folder: Path) -> Path:
    """``folder``/my_conf: a model (zscore's, choosing a datamodule of its own, ``my_rows``), that
    datamodule (rows', ``max_rows: 1234``), and esa_full's settings of its ensemble component
    while that component has the model (``quantile: 99.0``)."""
    conf = folder / "my_conf"
    (conf / "model").mkdir(parents=True)
    (conf / "datamodule").mkdir()
    (conf / "experiment" / "esa_full" / "channel_ensemble").mkdir(parents=True)
    model = (CONF / "model" / "zscore.yaml").read_text()
    assert "datamodule@_global_.datamodule: rows\n" in model
    (conf / "model" / "my_zscore.yaml").write_text(
        model.replace("datamodule@_global_.datamodule: rows\n",
                      "datamodule@_global_.datamodule: my_rows\n"))
    rows = yaml.safe_load((CONF / "datamodule" / "rows.yaml").read_text())
    (conf / "datamodule" / "my_rows.yaml").write_text(yaml.safe_dump({**rows, "max_rows": 1234}))
    (conf / "experiment" / "esa_full" / "channel_ensemble" / "my_zscore.yaml").write_text(
        "model:\n  quantile: 99.0\n")
    return conf


def test_a_component_model_of_the_users_config_dir_picks_its_datamodule(tmp_path):
    from esa_lightning.jobs.component_datamodules import with_component_datamodules

    conf = user_configs(tmp_path)
    added = "+datamodule@components.z.datamodule=my_rows"
    for given in (["--config-dir", str(conf)], [f"-cd={conf}"],
                  [f"hydra.searchpath=[file://{conf}]"]):
        overrides = [*given, *ESA_FULL, "+model@components.z.model=my_zscore"]
        assert with_component_datamodules(overrides) == [*overrides, added]
    # without the folder: an unknown model, left for Hydra to name
    alone = [*ESA_FULL, "+model@components.z.model=my_zscore"]
    assert with_component_datamodules(alone) == alone


def test_the_python_api_composes_a_component_model_of_a_users_search_path(tmp_path):
    from esa_lightning.api.training import compose_job

    conf = user_configs(tmp_path)
    cfg = compose_job("train", [*ESA_FULL, f"hydra.searchpath=[file://{conf}]",
                                "model@components.channel_ensemble.model=my_zscore"])
    ensemble = cfg.components.channel_ensemble
    assert ensemble.datamodule.max_rows == 1234
    assert ensemble.model.quantile == 99.0  # esa_full's settings of it, the user's own


def composed_ensemble(tmp_path: Path, *config_flags: str) -> dict:
    """``components.channel_ensemble`` of the job ``train.py *config_flags`` composes with
    esa_full and ``user_configs``' model as that component (``--cfg job``: nothing is run)."""
    env = {**os.environ, "ESA_LIGHTNING_ROOT": str(tmp_path), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, str(REPO / "train.py"), *config_flags, *ESA_FULL,
                           "model@components.channel_ensemble.model=my_zscore", "--cfg", "job"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return yaml.safe_load(proc.stdout)["components"]["channel_ensemble"]


def test_train_py_composes_a_component_model_of_its_config_dir(tmp_path):
    """The command line itself (``--cfg job`` prints the job's config, nothing is run)."""
    ensemble = composed_ensemble(tmp_path, "--config-dir", str(user_configs(tmp_path)))
    assert ensemble["datamodule"]["max_rows"] == 1234
    assert ensemble["datamodule"]["_target_"].endswith(".RowDataModule")
    assert ensemble["model"]["quantile"] == 99.0


def own_primary_configs(folder: Path) -> Path:
    """``folder``/own: a copy of the package's configs as a user's ``--config-path``, its
    primary config renamed (``--config-name my_train``), with ``user_configs``' model
    ``my_zscore`` and its datamodule ``my_rows`` added."""
    own = folder / "own"
    shutil.copytree(CONF, own, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    (own / "train.yaml").rename(own / "my_train.yaml")
    extra = user_configs(folder)
    for part in ("model/my_zscore.yaml", "datamodule/my_rows.yaml"):
        shutil.copy(extra / part, own / part)
    return own


def test_a_component_model_of_the_users_config_path_and_name_picks_its_datamodule(tmp_path):
    """``--config-path``/``--config-name`` replace the package's configs and ``train``, as
    Hydra reads them: the lookup composed the package's ``train`` instead, where ``my_zscore``
    is unknown, and added no datamodule (the component kept esa_full's ``segments``)."""
    from esa_lightning.jobs.component_datamodules import with_component_datamodules

    own = own_primary_configs(tmp_path)
    added = "datamodule@components.channel_ensemble.datamodule=my_rows"
    swap = [*ESA_FULL, "model@components.channel_ensemble.model=my_zscore"]
    for given in (["--config-path", str(own), "--config-name", "my_train"],
                  [f"-cp={own}", "-cn=my_train"]):
        assert with_component_datamodules([*given, *swap]) == [*given, *swap, added]
    # the package's configs do not know my_zscore: left for Hydra to name
    assert with_component_datamodules(swap) == swap


def test_the_config_name_picks_the_default_datamodule_of_a_model_without_one(tmp_path):
    """A model whose config chooses no datamodule trains on the primary config's default:
    ``--config-name``'s, not the package's ``train.yaml``'s (``windows``)."""
    from esa_lightning.jobs.component_datamodules import with_component_datamodules

    own = own_primary_configs(tmp_path)
    primary = (own / "my_train.yaml").read_text()
    assert "  - datamodule: windows\n" in primary
    (own / "my_train.yaml").write_text(primary.replace("  - datamodule: windows\n",
                                                       "  - datamodule: my_rows\n"))
    assert "datamodule@" not in (CONF / "model" / "window_pca.yaml").read_text()
    swap = [*ESA_FULL, "model@components.channel_ensemble.model=window_pca"]
    given = ["-cp", str(own), "-cn", "my_train"]
    assert with_component_datamodules([*given, *swap])[-1] == (
        "datamodule@components.channel_ensemble.datamodule=my_rows")
    assert with_component_datamodules(swap)[-1] == (
        "datamodule@components.channel_ensemble.datamodule=windows")


def test_train_py_composes_a_component_model_of_its_config_path(tmp_path):
    """``train.py -cp DIR -cn NAME`` (``--cfg job``: nothing is run)."""
    own = own_primary_configs(tmp_path)
    ensemble = composed_ensemble(tmp_path, "--config-path", str(own), "--config-name", "my_train")
    assert ensemble["datamodule"]["max_rows"] == 1234
    assert ensemble["datamodule"]["_target_"].endswith(".RowDataModule")
