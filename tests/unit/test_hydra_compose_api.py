"""The configs compose with Hydra's own compose API (docs/python_api.md, "Compose the configs
yourself"): ``experiment=esa_full`` stopped with ``Error resolving interpolation
'${esa_component_model:channel_ensemble}'`` unless ``esa_lightning.jobs`` had been imported
first, as the resolvers were registered there alone; importing ``esa_lightning.conf`` (which
Hydra's ``initialize_config_module`` does) registers them now."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

SCRIPT = """
import sys
from hydra import compose, initialize_config_module

with initialize_config_module(config_module="esa_lightning.conf", version_base="1.3"):
    cfg = compose(config_name="train", overrides=["experiment=esa_full"],
                  return_hydra_config=True)
print(sorted(cfg.components), cfg.experiment_name)
print("torch" in sys.modules)
"""


def test_hydra_compose_composes_esa_full_in_a_fresh_interpreter(tmp_path):
    """A fresh interpreter: nothing of the package imported before Hydra's own calls."""
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300,
                          env={"PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore",
                               "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    components, cheap = proc.stdout.strip().splitlines()
    assert components == "['channel_ensemble', 'gru_ae'] esa_full"
    assert cheap == "False"  # the resolvers' import leaves torch unloaded
