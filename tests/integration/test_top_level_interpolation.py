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
