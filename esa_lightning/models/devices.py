"""Apple's MPS holds no float64 tensor: where the families that need float64 may run.

A family that trains or scores with float64 tensors declares ``needs_float64``
(``DetectorModule``). ``trainer.accelerator=auto`` trains such a component on the CPU where
Lightning would pick MPS (``float64_trainer_arguments``); an explicit MPS (``mps``, or ``gpu`` on
a Mac) is refused before any fit (``jobs.common.refuse_float64_on_mps``), and
``predict.py device=mps`` for a detector holding a float64 tensor (``refuse_float64_device``).
On the CPU or CUDA nothing changes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch

from esa_lightning.errors import ESAInputError

log = logging.getLogger(__name__)


def picks_mps(accelerator: Any) -> bool:
    """Whether Lightning's ``trainer.accelerator`` setting means Apple's MPS on this machine:
    ``mps``, or ``auto`` and ``gpu`` where MPS is available (Lightning prefers it there)."""
    from lightning.pytorch.accelerators import MPSAccelerator

    name = str(accelerator).lower()
    return name == "mps" or (name in ("auto", "gpu") and MPSAccelerator.is_available())


def float64_trainer_arguments(model: Any, trainer_config: Mapping[str, Any]) -> dict[str, Any]:
    """``{"accelerator": "cpu"}`` for a ``model`` that needs float64 where
    ``trainer.accelerator=auto`` would pick MPS (logged once), else nothing."""
    accelerator = trainer_config.get("accelerator", "auto")
    if not getattr(model, "needs_float64", False) or accelerator != "auto":
        return {}
    if not picks_mps(accelerator):
        return {}
    log.info("%s needs float64, which Apple's MPS cannot hold: trainer.accelerator=auto trains "
             "it on the cpu", type(model).__name__)
    return {"accelerator": "cpu"}


def refuse_float64_device(device: torch.device, components: Mapping[str, Any]) -> None:
    """Refuse to place on MPS a component holding a float64 tensor (``predict.py device=mps``):
    one line naming the first such component and ``device=cpu``."""
    if device.type != "mps":
        return
    for name, module in components.items():
        for key, tensor in module.state_dict().items():
            if tensor.dtype == torch.float64:
                raise ESAInputError(
                    f"component {name} ({type(module).__name__}) holds float64 tensors "
                    f"({key}), which Apple's MPS cannot hold: use device=cpu",
                    column="device", value=str(device),
                )
