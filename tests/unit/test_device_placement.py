"""CPU and GPU alike: what the code places on a device, checked on a CPU-only machine.

The ``meta`` device stands in for a GPU: it is a device other than the CPU that every build of
torch has, so a tensor left on the CPU (or moved there) where the device asked for is another
shows up without a GPU.
"""

from __future__ import annotations

import pytest
import torch

from esa_lightning.artifact import Detector, mission_schema
from esa_lightning.errors import ESAInputError
from tests.helpers import fitted_zscore, make_mission


def saved_zscore(folder):
    mission = make_mission()
    Detector({"z": fitted_zscore(mission)}, mission_schema(mission)).save(folder)
    return folder


def test_detector_loads_onto_the_device_asked_for(tmp_path):
    """``Detector.load(map_location=D)`` (``predict.py device=D``) leaves every component's
    tensors on D. The weights were read onto D and copied into modules built on the CPU, so
    ``device=cuda`` scored on the CPU (and a ``meta`` load ended in a copy error)."""
    det = Detector.load(saved_zscore(tmp_path / "det"), map_location="meta")
    devices = {t.device.type for m in det.components.values() for t in m.state_dict().values()}
    assert devices == {"meta"}


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_device_this_machine_lacks_is_named_not_the_weights(tmp_path):
    """``device=cuda`` where there is none is refused naming the setting and its value, not as
    weights that cannot be read (it blamed ``weights.pt``)."""
    folder = saved_zscore(tmp_path / "det")
    with pytest.raises(ESAInputError) as caught:
        Detector.load(folder, map_location="cuda")
    assert caught.value.column == "device" and caught.value.value == "cuda"
    assert "weights.pt" not in str(caught.value)
