"""A model or datamodule setting interpolating a top-level key the command line adds
(``+my_q=0.5 model.quantile=${my_q}``) trains with the key's value; one interpolating no key is
one line naming the setting, and the value it resolves to is checked as a literal one is."""

from __future__ import annotations

import json

import pytest

import esa_lightning
from esa_lightning.errors import ESAInputError
from esa_lightning.jobs.train import component_specs
from tests.conftest import compose_config


def test_a_single_models_settings_resolve_against_the_whole_config(tmp_path):
    cfg = compose_config("train", ["experiment=smoke", "+my_q=0.5", "model.quantile=${my_q}",
                                   "+my_rows=5", "datamodule.batch_size=${my_rows}"], tmp_path)
    (spec,) = component_specs(cfg).values()
    assert spec.model.quantile == 0.5
    assert spec.datamodule.batch_size == 5


def test_training_reads_a_top_level_key_a_model_setting_interpolates(tmp_path):
    run = esa_lightning.train(["experiment=smoke", "data.generate.days=3", "logger=none",
                               "test=false", "+my_q=97.5", "model.quantile=${my_q}"],
                              output_dir=tmp_path / "run", root_dir=tmp_path)
    detector = json.loads((run.output_dir / "detector" / "detector.json").read_text())
    (component,) = detector["components"].values()
    assert component["hparams"]["quantile"] == 97.5


def test_an_interpolation_of_no_key_is_one_line_naming_the_setting(tmp_path):
    with pytest.raises(ESAInputError, match=r"^model\.quantile: cannot resolve .*'nope'"):
        esa_lightning.train(["experiment=smoke", "logger=none", "model.quantile=${nope}"],
                            output_dir=tmp_path / "run", root_dir=tmp_path)
    assert not (tmp_path / "run").exists()


def test_the_value_an_interpolation_resolves_to_is_checked_by_the_settings_rules(tmp_path):
    with pytest.raises(ESAInputError, match=r"^model\.quantile=500: must be a percentage"):
        esa_lightning.train(["experiment=smoke", "logger=none", "+my_q=500",
                             "model.quantile=${my_q}"],
                            output_dir=tmp_path / "run", root_dir=tmp_path)


# esa_full's components (``components.<name>.*``): their interpolations resolved against the
# whole config already, but the values they resolved to skipped the settings rules
FULL = "experiment=esa_full"


def test_a_components_settings_resolve_against_the_whole_config(tmp_path):
    cfg = compose_config("train", [FULL, "+my_lr=0.01", "components.gru_ae.model.lr=${my_lr}"],
                         tmp_path)
    specs = component_specs(cfg)
    assert specs["gru_ae"].model.lr == 0.01


@pytest.mark.parametrize(
    ("overrides", "shown"),
    [
        (["+my_lr=-1", "components.gru_ae.model.lr=${my_lr}"],
         "components.gru_ae.model.lr=-1: must be a finite number > 0"),
        (["+my_cell=lstn", "components.gru_ae.model.cell=${my_cell}"],
         "components.gru_ae.model.cell='lstn': must be one of gru, lstm"),
        (["+my_epochs=1.5", "components.channel_ensemble.trainer.max_epochs=${my_epochs}"],
         "components.channel_ensemble.trainer.max_epochs=1.5: must be a whole number >= -1"),
        (["+my_rows=0", "components.channel_ensemble.datamodule.batch_rows=${my_rows}"],
         "components.channel_ensemble.datamodule.batch_rows=0: must be a whole number >= 1"),
        # a rule of the node the setting is in (a post rule's kind) and a model's not-null one
        (["+my_floor=2", "components.gru_ae.model.post_processing.channel_norm.min_scale="
          "${my_floor}"],
         "components.gru_ae.model.post_processing.channel_norm.min_scale=2: must lie in (0, 1]"),
        (["+my_seed=null", "components.channel_ensemble.model.seed=${my_seed}"],
         "components.channel_ensemble.model.seed=null: needs a value"),
        # a rule's kind given by an interpolation: its node's rules apply to its other settings
        (["+my_kind=channel_norm", "components.gru_ae.model.post_processing.channel_norm.kind="
          "${my_kind}", "components.gru_ae.model.post_processing.channel_norm.min_scale=2"],
         "components.gru_ae.model.post_processing.channel_norm.min_scale=2: must lie in (0, 1]"),
    ],
)
def test_the_value_a_components_interpolation_resolves_to_is_checked(overrides, shown, tmp_path):
    cfg = compose_config("train", [FULL, *overrides], tmp_path)
    with pytest.raises(ESAInputError) as err:
        component_specs(cfg)
    assert str(err.value).startswith(shown)


def test_a_components_interpolation_of_no_key_is_one_line_naming_the_setting(tmp_path):
    cfg = compose_config("train", [FULL, "components.gru_ae.model.lr=${nope}"], tmp_path)
    with pytest.raises(ESAInputError,
                       match=r"^components\.gru_ae\.model\.lr: cannot resolve .*'nope'"):
        component_specs(cfg)


def test_a_components_bad_interpolated_value_is_refused_before_the_data(tmp_path):
    with pytest.raises(ESAInputError, match=r"^components\.gru_ae\.model\.lr=-1: must be"):
        esa_lightning.train([FULL, "logger=none", "+my_lr=-1",
                             "components.gru_ae.model.lr=${my_lr}"],
                            output_dir=tmp_path / "run", root_dir=tmp_path)
    assert not (tmp_path / "run").exists()
    assert not (tmp_path / "datasets").exists()  # the default mission was not generated
