"""esa_full's settings of a component's model (the channel ensemble's ``novelty: false``, its
``frozen: null``, its datamodule's ``batch_rows: 128``, the GRU's ``channel_norm`` floor) apply
only while the component has that model (``conf/experiment/esa_full/<name>/<model>.yaml``,
``jobs.component_choices``): a component given another model
(``model@components.channel_ensemble.model=zscore``) was refused,
``components.channel_ensemble.model.novelty: not an option of RobustZScore``. And esa_full's
unused top-level ``model`` is null, an override of it refused naming the components' keys
(``jobs.unused_top_level``)."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from esa_lightning.jobs.common import refuse_unknown_options

ESA_FULL = ["experiment=esa_full"]


def compose(overrides: list[str]):  # noqa: ANN201
    """The train config as train.py composes it (a component's model picks its datamodule)."""
    from esa_lightning.api.training import compose_job

    return compose_job("train", overrides)


@pytest.mark.parametrize(
    ("component", "model"),
    [
        ("channel_ensemble", "zscore"),
        ("channel_ensemble", "channel_ensemble_gbdt"),
        ("channel_ensemble", "global_std"),
        ("gru_ae", "window_pca"),
        ("gru_ae", "zscore"),
    ],
)
def test_a_swapped_component_model_takes_its_own_defaults(component, model):
    """The swapped component's model and datamodule are those ``model=NAME`` alone composes,
    and every option they hold is one their targets take (what the run checks before
    training); the other component keeps esa_full's settings."""
    cfg = compose([*ESA_FULL, f"model@components.{component}.model={model}"])
    spec = cfg.components[component]
    alone = compose([f"model={model}"])
    assert OmegaConf.to_container(spec.model) == OmegaConf.to_container(alone.model)
    assert OmegaConf.to_container(spec.datamodule) == OmegaConf.to_container(alone.datamodule)
    for name, each in cfg.components.items():
        refuse_unknown_options(each.datamodule, {"mission"})
        refuse_unknown_options(each.model, set())
        if name != component:
            assert each == compose(ESA_FULL).components[name]


def test_esa_fulls_own_settings_apply_to_its_default_models():
    cfg = compose(ESA_FULL)
    ensemble, gru = cfg.components.channel_ensemble, cfg.components.gru_ae
    assert ensemble.model.novelty is False
    assert ensemble.model.post_processing.frozen is None
    assert ensemble.datamodule.batch_rows == 128
    assert gru.model.post_processing.channel_norm.min_scale == 0.001
    assert gru.model.post_processing.channel_norm.spread_on == "all"
    # the model's own defaults differ: these are esa_full's
    alone = compose(["model=channel_ensemble"])
    assert alone.model.novelty is True and alone.model.post_processing.frozen is not None
    assert alone.datamodule.batch_rows != 128
    # named again on the command line, the same model keeps them; a setting given wins
    again = compose([*ESA_FULL, "model@components.channel_ensemble.model=channel_ensemble",
                     "components.channel_ensemble.model.novelty=true"])
    assert again.components.channel_ensemble.model.novelty is True
    assert again.components.channel_ensemble.model.post_processing.frozen is None
    assert again.components.channel_ensemble.datamodule.batch_rows == 128


def test_an_added_component_with_a_default_components_model_takes_that_models_defaults():
    """The settings are esa_full's for its components, not for every component of that model."""
    cfg = compose([*ESA_FULL, "+model@components.ce2.model=channel_ensemble"])
    assert cfg.components.ce2.model.novelty is True
    assert cfg.components.channel_ensemble.model.novelty is False


def test_component_model_reads_the_choice_made_so_far():
    from esa_lightning.jobs.component_choices import NO_MODEL, component_model

    choices = OmegaConf.create({"model@components.z.model": "zscore", "model": "gru_ae"})
    assert component_model("z", choices) == "zscore"
    assert component_model("y", choices) == NO_MODEL
    assert component_model("z", None) == NO_MODEL


def test_esa_fulls_unused_top_level_model_is_null():
    """It showed ``gru_ae`` (train.yaml's model), which no component read, in the printed and
    saved config."""
    assert compose(ESA_FULL).model is None
    assert compose([*ESA_FULL, "+model@components.z.model=zscore"]).model is None
    # a single model keeps the one it trains
    assert compose(["model=zscore"]).model._target_.endswith("RobustZScore")


@pytest.mark.parametrize(
    ("override", "instead"),
    [
        ("model.lr=0.1", "set components.gru_ae.model.lr=0.1 "
                         "components.channel_ensemble.model.lr=0.1 instead"),
        ("model.hidden_size=8", "set components.gru_ae.model.hidden_size=8 instead"),
        # the suggestion keeps the + that adds a key no component's model has (without it,
        # it was Hydra's "Could not override")
        ("+model.bogus=1", "set +components.gru_ae.model.bogus=1 "
                           "+components.channel_ensemble.model.bogus=1 instead"),
        # a key no component's model has, not added: named as such (it suggested setting
        # components.<name>.model.quantile, which composes for neither)
        ("model.quantile=99", "no component's model has quantile (set a key of "
                              "components.gru_ae.model or components.channel_ensemble.model)"),
        ("model=zscore", "name a component's own instead: "
                         "model@components.gru_ae.model=zscore or "
                         "model@components.channel_ensemble.model=zscore"),
        ("model/threshold@model.post_processing.threshold=telemanom",
         "name a component's own instead: model/threshold@components.gru_ae.model."
         "post_processing.threshold=telemanom"),
    ],
)
def test_a_top_level_model_override_of_esa_full_names_the_components_keys(override, instead):
    """``model.lr=0.1`` and ``model=zscore`` were taken into the unused top-level model (a
    search of ``hparams_search=optuna`` with esa_full tuned nothing); with it null,
    ``model.lr`` would be Hydra's "Could not override", and ``model=zscore`` left unread."""
    from esa_lightning.cli.overrides import compose_error

    reason = compose_error("train", [*ESA_FULL, override], check=True)
    assert reason == (f"{override}: experiment esa_full gives each component its own model, "
                      f"the top-level model is not used: {instead}")
    alone = compose_error("train", [override], check=True)  # a single model's own
    assert alone is None or "is not used" not in alone
