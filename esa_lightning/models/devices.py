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


def _mps_classes() -> tuple[type, ...]:
    """Lightning's MPS accelerator classes (the trainer's and Fabric's)."""
    from lightning.fabric.accelerators.mps import MPSAccelerator as FabricMPS
    from lightning.pytorch.accelerators import MPSAccelerator

    return MPSAccelerator, FabricMPS


def is_mps_accelerator(accelerator: Any) -> bool:
    """Whether ``trainer.accelerator`` names Apple's MPS whatever its form: the string ``mps``,
    a class path config (``{_target_: lightning.pytorch.accelerators.MPSAccelerator}``, which
    Hydra instantiates), the class itself or an instance (a subclass too)."""
    if isinstance(accelerator, str):
        return accelerator.lower() == "mps"
    if isinstance(accelerator, Mapping) and isinstance(accelerator.get("_target_"), str):
        from hydra.utils import get_class

        try:
            accelerator = get_class(accelerator["_target_"])
        except Exception:  # noqa: BLE001 - not importable: Hydra says so when it builds it
            return False
    mps = _mps_classes()
    if isinstance(accelerator, type):
        return issubclass(accelerator, mps)
    return isinstance(accelerator, mps)


def accelerator_text(accelerator: Any) -> str:
    """``trainer.accelerator`` as a message shows it: a string as is, a class path config by
    its ``_target_``, a class or an instance by the class's path."""
    if isinstance(accelerator, str):
        return accelerator
    if isinstance(accelerator, Mapping) and "_target_" in accelerator:
        return str(accelerator["_target_"])
    cls = accelerator if isinstance(accelerator, type) else type(accelerator)
    return f"{cls.__module__}.{cls.__qualname__}"


def picks_mps(accelerator: Any) -> bool:
    """Whether Lightning's ``trainer.accelerator`` setting means Apple's MPS on this machine:
    ``mps`` (as a string, a class path config, the class or an instance,
    ``is_mps_accelerator``), or ``auto`` and ``gpu`` where MPS is available (Lightning prefers
    it there)."""
    from lightning.pytorch.accelerators import MPSAccelerator

    if is_mps_accelerator(accelerator):
        return True
    name = str(accelerator).lower() if isinstance(accelerator, str) else ""
    return name in ("auto", "gpu") and MPSAccelerator.is_available()


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
