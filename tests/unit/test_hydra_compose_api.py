"""The configs compose with Hydra's own compose API (docs/python_api.md, "Compose the configs
yourself"): ``experiment=esa_full`` stopped with ``Error resolving interpolation
'${esa_component_model:channel_ensemble}'`` unless ``esa_lightning.jobs`` had been imported
first, as the resolvers were registered there alone; importing ``esa_lightning.conf`` (which
Hydra's ``initialize_config_module`` does) registers them now. ``initialize_config_dir`` imports
nothing of the package: it stopped so unless ``esa_lightning.conf`` had been imported; the
search path plugin ``hydra_plugins.esa_lightning_resolvers`` registers them for every compose."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import CONF, REPO

SCRIPT = """
import sys
from hydra import compose, initialize_config_module

with initialize_config_module(config_module="esa_lightning.conf", version_base="1.3"):
    cfg = compose(config_name="train", overrides=["experiment=esa_full"],
                  return_hydra_config=True)
print(sorted(cfg.components), cfg.experiment_name)
print("torch" in sys.modules)
"""


def fresh_python(script: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """``script`` run in a fresh interpreter that sees the clone, from ``cwd``."""
    return subprocess.run([sys.executable, "-c", script, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300,
                          env={"PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore",
                               "PATH": "/usr/bin:/bin", "HOME": str(cwd)})


def test_hydra_compose_composes_esa_full_in_a_fresh_interpreter(tmp_path):
    """A fresh interpreter: nothing of the package imported before Hydra's own calls."""
    proc = fresh_python(SCRIPT, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    components, cheap = proc.stdout.strip().splitlines()
    assert components == "['channel_ensemble', 'gru_ae'] esa_full"
    assert cheap == "False"  # the resolvers' import leaves torch unloaded


BY_FOLDER = """
import sys
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

for experiment in ("experiment=esa_full", "experiment=channel_ensemble"):
    with initialize_config_dir(config_dir=sys.argv[1], version_base="1.3"):
        cfg = compose(config_name="train", overrides=[experiment], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # ${hydra:...}, as a run has it
    job = {key: cfg[key] for key in cfg if key != "hydra"}
    OmegaConf.to_container(OmegaConf.create(job), resolve=True)  # the resolvers' included
    print(cfg.experiment_name, sorted(cfg.get("components") or []), cfg.paths.data_dir)
    print([source["provider"] for source in cfg.hydra.runtime.config_sources])
print("torch" in sys.modules)
"""


def test_hydra_compose_of_a_config_folder_needs_no_import_first(tmp_path):
    """``initialize_config_dir`` of the package's ``conf`` folder, and of a user's copy of it,
    without ``import esa_lightning.conf``: the resolvers are registered by the plugin, which
    leaves Hydra's search path as it was (nothing of the package added to it)."""
    copy = tmp_path / "my_conf"
    shutil.copytree(CONF, copy, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    for folder in (CONF, copy):
        proc = fresh_python(BY_FOLDER, tmp_path, str(folder))
        assert proc.returncode == 0, proc.stderr[-3000:]
        full, full_sources, ensemble, sources, torch = proc.stdout.strip().splitlines()
        assert full == "esa_full ['channel_ensemble', 'gru_ae'] ./datasets"  # ${esa_data_dir:.}
        assert ensemble == "channel_ensemble [] ./datasets"
        assert full_sources == sources == "['hydra', 'main', 'schema']"
        assert torch == "False"  # the plugin's import leaves torch unloaded


SWAPPED = """
from hydra import compose, initialize_config_module

from esa_lightning.errors import ESAInputError
from esa_lightning.jobs.component_config import component_specs
from esa_lightning.jobs.component_datamodules import (
    refuse_component_datamodules,
    with_component_datamodules,
)

swaps = (["model@components.channel_ensemble.model=zscore"], ["+model@components.z.model=zscore"])
for swap in swaps:
    for overrides in (swap, with_component_datamodules(["experiment=esa_full", *swap])[1:]):
        with initialize_config_module(config_module="esa_lightning.conf", version_base="1.3"):
            cfg = compose(config_name="train", overrides=["experiment=esa_full", *overrides])
        try:
            refuse_component_datamodules(component_specs(cfg))
            print("composed", overrides[-1])
        except ESAInputError as exc:
            print("refused", exc)
"""


def test_a_plain_compose_of_a_swapped_component_model_is_refused_naming_the_datamodule(tmp_path):
    """Hydra's compose cannot add a swapped component model's datamodule (no config's defaults
    can name ``components.<name>``, and a search path plugin sees no overrides): the config it
    composes keeps the experiment's datamodule, or none for an added component, and is
    refused before any data are read, naming the override to give; through
    ``with_component_datamodules`` it composes (docs/python_api.md)."""
    proc = fresh_python(SWAPPED, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    swapped, swapped_given, added, added_given = proc.stdout.strip().splitlines()
    assert swapped.startswith("refused component channel_ensemble: ")
    assert swapped.endswith(" trains on datamodule=rows, not segments; give "
                            "datamodule@components.channel_ensemble.datamodule=rows")
    assert swapped_given == "composed datamodule@components.channel_ensemble.datamodule=rows"
    assert added.startswith("refused component z has no datamodule: ")
    assert added.endswith("; add +datamodule@components.z.datamodule=rows")
    assert added_given == "composed +datamodule@components.z.datamodule=rows"
