"""Per-component callbacks: in esa_full the channel ensemble early-stops on its validation loss
and gets its best epoch's weights back before its heads are fitted; the GRU keeps the run's."""

from __future__ import annotations

from lightning.pytorch.callbacks import EarlyStopping

from esa_lightning.callbacks import RestoreBestWeights
from esa_lightning.jobs.train import component_callbacks, component_specs, instantiate_group
from tests.conftest import compose_config


def kinds(callbacks) -> set[type]:
    return {type(cb) for cb in callbacks}


def test_esa_full_channel_ensemble_early_stops_and_restores(tmp_path):
    cfg = compose_config("train", ["experiment=esa_full"], tmp_path)
    specs = component_specs(cfg)
    ensemble = instantiate_group(component_callbacks(cfg, specs["channel_ensemble"]))
    gru = instantiate_group(component_callbacks(cfg, specs["gru_ae"]))
    assert {EarlyStopping, RestoreBestWeights} <= kinds(ensemble)
    assert not {EarlyStopping, RestoreBestWeights} & kinds(gru)
    stop = next(cb for cb in ensemble if isinstance(cb, EarlyStopping))
    assert stop.monitor == "val/loss" and stop.patience == 10
    # the run's own callbacks are kept for both
    assert kinds(instantiate_group(cfg.callbacks)) <= kinds(ensemble) & kinds(gru)


def test_channel_ensemble_experiment_early_stops_and_restores(tmp_path):
    cfg = compose_config("train", ["experiment=channel_ensemble"], tmp_path)
    (spec,) = component_specs(cfg).values()
    assert {EarlyStopping, RestoreBestWeights} <= kinds(
        instantiate_group(component_callbacks(cfg, spec))
    )
