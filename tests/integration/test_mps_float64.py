"""Apple's MPS holds no float64 tensor: the families that train or score with float64 (GlobalSTD,
RollingGBDT, the window baselines) train on the CPU when ``trainer.accelerator=auto`` would pick
MPS, and an explicit MPS (``trainer.accelerator=mps``, ``predict.py device=mps``) is refused in
one line naming the component. This machine has no MPS: the fixture makes Lightning and torch
report one, as on a Mac."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from esa_lightning.artifact import Detector, mission_schema
from esa_lightning.errors import ESAInputError
from esa_lightning.jobs.train import component_specs, prepare_component, train
from esa_lightning.models.global_std import GlobalSTD
from esa_lightning.models.rolling_gbdt.model import RollingGBDT
from esa_lightning.models.window_baseline import WindowBaseline
from tests.conftest import compose_config
from tests.helpers import fitted_zscore, make_mission

QUIET = ["logger=none", "trainer.enable_progress_bar=false", "~callbacks.progress_bar",
         "test=false"]


@pytest.fixture
def on_a_mac(monkeypatch):
    """What Lightning's ``accelerator=auto`` and torch consult to find Apple's MPS say it is
    there (the model is never moved to it: a test that would fit on it fails)."""
    from lightning.fabric.accelerators.mps import MPSAccelerator as FabricMPS
    from lightning.pytorch.accelerators import MPSAccelerator

    for cls in (FabricMPS, MPSAccelerator):
        monkeypatch.setattr(cls, "is_available", staticmethod(lambda: True))
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)


def test_the_float64_families_are_the_ones_declared():
    assert GlobalSTD.needs_float64 and RollingGBDT.needs_float64 and WindowBaseline.needs_float64


@pytest.mark.parametrize(("model", "accelerator"), [
    (["model=global_std", "datamodule=rows"], "CPUAccelerator"),
    (["model=gru_ae"], "MPSAccelerator"),
], ids=["global_std", "gru_ae"])
def test_auto_picks_the_cpu_for_a_float64_model_only(model, accelerator, on_a_mac,
                                                      small_mission_dir, tmp_path, caplog):
    """``trainer.accelerator=auto`` on a Mac: GlobalSTD's trainer is the CPU's (with one INFO
    line saying why), the GRU's stays Lightning's choice, MPS. GlobalSTD was put on MPS, where
    its float64 buffers fail the fit with a raw TypeError."""
    from esa_lightning.jobs.common import mission_from_config

    cfg = compose_config("train", [*model, f"data.root={small_mission_dir}", *QUIET], tmp_path)
    assert cfg.trainer.accelerator == "auto"
    mission = mission_from_config(cfg.data)
    ((name, spec),) = component_specs(cfg).items()
    with caplog.at_level("INFO"):
        ready = prepare_component(name, spec, cfg, mission, tmp_path)
    assert type(ready.trainer.accelerator).__name__ == accelerator
    moved = [r.getMessage() for r in caplog.records if "float64" in r.getMessage()]
    if accelerator == "CPUAccelerator":
        assert len(moved) == 1 and "GlobalSTD" in moved[0] and "cpu" in moved[0]
    else:
        assert not moved


def test_auto_trains_a_float64_model_on_a_mac(on_a_mac, small_mission_dir, tmp_path):
    """The whole run (fit, scoring, artifact) with ``accelerator=auto`` on a Mac: on the CPU."""
    cfg = compose_config("train", ["model=global_std", "datamodule=rows",
                                   f"data.root={small_mission_dir}", *QUIET], tmp_path)
    train(cfg)
    assert (tmp_path / "metrics.json").is_file()


@pytest.mark.parametrize("accelerator", ["mps", "gpu"])
def test_an_explicit_mps_is_refused_before_training(accelerator, on_a_mac, small_mission_dir,
                                                     tmp_path):
    """``trainer.accelerator=mps`` (or ``gpu``, which is MPS on a Mac) with GlobalSTD: one line
    naming the component and the setting, with the way out, before any fit."""
    cfg = compose_config("train", ["model=global_std", "datamodule=rows",
                                   f"data.root={small_mission_dir}",
                                   f"trainer.accelerator={accelerator}", *QUIET], tmp_path)
    with pytest.raises(ESAInputError) as caught:
        train(cfg)
    message = str(caught.value)
    assert "\n" not in message
    assert "GlobalSTD" in message and f"trainer.accelerator={accelerator}" in message
    assert "trainer.accelerator=cpu" in message
    assert not (tmp_path / "checkpoints").exists()


def test_a_composite_is_refused_for_its_float64_component(on_a_mac):
    """In a composite, the component that needs float64 is named; one on its own trainer
    setting is named under its key."""
    from esa_lightning.jobs.common import refuse_float64_on_mps

    gru = {"model": {"_target_": "esa_lightning.models.gru_ae.model.LitGRUAttentionAE"}}
    std = {"model": {"_target_": "esa_lightning.models.global_std.model.GlobalSTD"}}
    cfg = OmegaConf.create({"trainer": {"accelerator": "mps"}, "components": {"gru": gru,
                                                                             "std": std}})
    with pytest.raises(ESAInputError, match=r"component std \(GlobalSTD\).*trainer.accelerator"):
        refuse_float64_on_mps(cfg, dict(cfg.components.items()))
    cfg.trainer.accelerator = "auto"
    refuse_float64_on_mps(cfg, dict(cfg.components.items()))  # auto: the CPU, not refused
    cfg.components.std.trainer = {"accelerator": "mps"}
    with pytest.raises(ESAInputError, match=r"components\.std\.trainer\.accelerator=mps"):
        refuse_float64_on_mps(cfg, dict(cfg.components.items()))


def test_predict_on_mps_is_refused_for_a_float64_component(tmp_path, monkeypatch):
    """``predict.py device=mps`` (``Detector.load(map_location="mps")``) with a component
    holding float64 tensors: refused naming it and the setting, before any is moved there."""
    import esa_lightning.artifact.detector as detector_module

    mission = make_mission()
    std = GlobalSTD(n_channels=len(mission.channel_names))
    Detector({"std": std}, mission_schema(mission)).save(tmp_path / "det")
    monkeypatch.setattr(detector_module, "usable_device", lambda where: torch.device("mps"))
    with pytest.raises(ESAInputError) as caught:
        Detector.load(tmp_path / "det", map_location="mps")
    message = str(caught.value)
    assert caught.value.column == "device" and caught.value.value == "mps"
    assert "component std (GlobalSTD)" in message and "device=cpu" in message


def test_a_composite_on_mps_is_refused_for_its_float64_component():
    """Any component holding float64 refuses the whole detector, naming that one; a detector
    without one passes (its components move to MPS)."""
    from esa_lightning.models.devices import refuse_float64_device

    mission = make_mission()
    z, std = fitted_zscore(mission), GlobalSTD(n_channels=len(mission.channel_names))
    with pytest.raises(ESAInputError, match=r"component std \(GlobalSTD\).*\(mean\)"):
        refuse_float64_device(torch.device("mps"), {"z": z, "std": std})
    refuse_float64_device(torch.device("mps"), {"z": z})
    refuse_float64_device(torch.device("cpu"), {"z": z, "std": std})


MPS_PATH = "lightning.pytorch.accelerators.MPSAccelerator"


def mps_forms() -> list:
    """``trainer.accelerator=mps`` in every form Lightning or Hydra takes: the string, a class
    path config (Hydra builds it), the class, an instance, Fabric's class."""
    from lightning.fabric.accelerators.mps import MPSAccelerator as FabricMPS
    from lightning.pytorch.accelerators import MPSAccelerator

    return ["MPS", OmegaConf.create({"_target_": MPS_PATH}), {"_target_": MPS_PATH},
            MPSAccelerator, MPSAccelerator(), FabricMPS]


def test_mps_is_recognised_as_a_string_a_class_path_a_class_or_an_instance(on_a_mac):
    """Each form of MPS is MPS (on a Mac and elsewhere: it is explicit); the CPU's in those
    forms, and a class path that cannot be imported, are not."""
    from lightning.pytorch.accelerators import CPUAccelerator

    from esa_lightning.models.devices import is_mps_accelerator, picks_mps

    for form in mps_forms():
        assert is_mps_accelerator(form) and picks_mps(form), form
    cpu_path = "lightning.pytorch.accelerators.CPUAccelerator"
    for form in ["cpu", {"_target_": cpu_path}, CPUAccelerator, CPUAccelerator(),
                 {"_target_": "no.such.Accelerator"}]:
        assert not is_mps_accelerator(form) and not picks_mps(form), form


def test_an_mps_given_as_a_class_path_or_an_instance_is_refused_for_float64(on_a_mac):
    """``trainer.accelerator={_target_: ...MPSAccelerator}`` (or the class, or an instance):
    refused as ``mps`` is, naming the class; before, only the string was, and the float64
    component went to MPS."""
    from esa_lightning.jobs.common import refuse_float64_on_mps

    std = {"model": {"_target_": "esa_lightning.models.global_std.model.GlobalSTD"}}
    for form in mps_forms()[1:]:
        with pytest.raises(ESAInputError, match=r"component std \(GlobalSTD\).*MPSAccelerator"):
            spec = OmegaConf.create({**std, "trainer": {"accelerator": form}},
                                    flags={"allow_objects": True})  # a class, an instance
            refuse_float64_on_mps(OmegaConf.create({"trainer": {}}), {"std": spec})


def test_train_refuses_an_mps_class_path_for_a_float64_model(on_a_mac, small_mission_dir,
                                                              tmp_path):
    """The override ``trainer.accelerator={_target_:...MPSAccelerator}`` on train: refused
    before any fit, naming the component and the class."""
    cfg = compose_config("train", ["model=global_std", "datamodule=rows",
                                   f"data.root={small_mission_dir}",
                                   f"trainer.accelerator={{_target_:{MPS_PATH}}}", *QUIET],
                         tmp_path)
    with pytest.raises(ESAInputError) as caught:
        train(cfg)
    message = str(caught.value)
    assert "GlobalSTD" in message and f"trainer.accelerator={MPS_PATH}" in message
    assert not (tmp_path / "checkpoints").exists()
