"""Every setting the settings rules cover, reached through an interpolation (``+x=-1
trainer.max_epochs=${x}``, ``data.channels=${x}``, ``combiner.*``, ``callbacks.*``, the jobs' own
top-level keys, a list's items), is checked by the rules as a literal one is, before the data
are read, on train.py's and predict.py's routes alike; an interpolation of no key is one line
naming the setting. The model's, datamodule's and components' interpolations:
test_top_level_interpolation.py."""

from __future__ import annotations

import pytest

import esa_lightning
from esa_lightning.errors import ESAInputError

SMOKE = ["experiment=smoke", "logger=none", "data.generate.days=3"]


def _refused_by_train(overrides: list[str], tmp_path) -> str:  # noqa: ANN001
    with pytest.raises(ESAInputError) as err:
        esa_lightning.train(overrides, output_dir=tmp_path / "run", root_dir=tmp_path)
    assert not (tmp_path / "run").exists()
    assert not (tmp_path / "datasets").exists()  # the default mission was not generated
    return str(err.value)


@pytest.mark.parametrize(
    ("overrides", "shown"),
    [
        (["+x=1.5", "trainer.max_epochs=${x}"],
         "trainer.max_epochs=1.5: must be a whole number >= -1"),
        (["+x=0", "trainer.check_val_every_n_epoch=${x}"],
         "trainer.check_val_every_n_epoch=0: must be a whole number >= 1"),
        (["+x=5", "data.channels=${x}"], "data.channels=5: must be all, target"),
        (["+x=-1", "data.val_days=${x}"], "data.val_days=-1: must be a finite number >= 0"),
        (["+x=-30s", "data.period=${x}"], "data.period='-30s': must be a positive time"),
        # a node's rule (a callback known by its _target_)
        (["+x=0", "callbacks.esa_metrics.every_n_epochs=${x}"],
         "callbacks.esa_metrics.every_n_epochs=0: must be a whole number >= 1"),
        (["+x=val/los", "callbacks.model_checkpoint.monitor=${x}"],
         "callbacks.model_checkpoint.monitor='val/los': must be a value the run logs"),
        # the job's own top-level settings
        (["+x=abc", "seed=${x}"], "seed='abc': must be a whole number >= 0"),
        (["+x=val/EW_F_05", "optimized_metric=${x}"],
         "optimized_metric='val/EW_F_05': must be a metric the run writes"),
        (["+x=maybe", "test=${x}"], "test='maybe': must be true or false"),
        (["+x=-5", "chunk_rows=${x}"], "chunk_rows=-5: must be 0 (the whole range)"),
        (["+x=targt", "metrics.label_channels=${x}"],
         "metrics.label_channels='targt': must be one of all, target"),
        # a list-valued setting, checked as a whole
        (["+x=[]", "data.channels=${x}"], "data.channels=[]: must be all, target"),
    ],
)
def test_a_setting_an_interpolation_sets_is_checked_before_the_data(overrides, shown, tmp_path):
    assert _refused_by_train([*SMOKE, *overrides], tmp_path).startswith(shown)


def test_an_interpolation_in_a_list_of_settings_is_checked(tmp_path):
    """``data.channels`` is checked as a whole: one of its items set by an interpolation that
    resolves to nothing is named before the data are read."""
    shown = _refused_by_train([*SMOKE, "data.channels=[channel_1,${nope}]"], tmp_path)
    assert shown.startswith("data.channels[1]: cannot resolve its interpolation")
    assert "'nope'" in shown


@pytest.mark.parametrize(
    ("overrides", "shown"),
    [
        (["trainer.max_epochs=${nope}"], "trainer.max_epochs: cannot resolve its interpolation"),
        (["seed=${nope}"], "seed: cannot resolve its interpolation"),
        (["ckpt_path=${nope}"], "ckpt_path: cannot resolve its interpolation"),
    ],
)
def test_an_interpolation_of_no_key_is_one_line_naming_the_setting(overrides, shown, tmp_path):
    assert _refused_by_train([*SMOKE, *overrides], tmp_path).startswith(shown)


def test_a_combiners_interpolated_setting_is_checked(tmp_path):
    shown = _refused_by_train(["experiment=esa_full", "logger=none", "+x=-1",
                               "combiner.neighbourhood=${x}"], tmp_path)
    assert shown.startswith("combiner.neighbourhood=-1: must be a whole number >= 0")


def test_a_valid_interpolated_value_trains_with_it(tmp_path):
    run = esa_lightning.train([*SMOKE, "test=false",
                               "+epochs=1", "trainer.max_epochs=${epochs}",
                               "+my_channels=all", "data.channels=${my_channels}"],
                              output_dir=tmp_path / "run", root_dir=tmp_path)
    assert (run.output_dir / "detector").is_dir()


@pytest.mark.parametrize(
    ("overrides", "shown"),
    [
        (["+x=-1", "max_figures=${x}"], "max_figures=-1: must be a whole number >= 0"),
        (["+x=0", "report_block=${x}"], "report_block=0: must be a whole number >= 1"),
        (["+x=cdua", "device=${x}"], "device='cdua': must be a device torch knows"),
        (["+x=5", "data.channels=${x}"], "data.channels=5: must be all, target"),
        (["+x=12", "chunk_rows=${x}"], "chunk_rows=12: must be 0 (the whole range)"),
        (["device=${nope}"], "device: cannot resolve its interpolation"),
        (["+x=null", "report_block=${x}"], "report_block=null: needs a value"),
    ],
)
def test_predicts_interpolated_settings_are_checked_before_the_detector(overrides, shown,
                                                                       tmp_path):
    with pytest.raises(ESAInputError) as err:
        esa_lightning.predict(tmp_path / "no_detector", overrides,
                              output_dir=tmp_path / "predict", root_dir=tmp_path)
    assert str(err.value).startswith(shown)
    assert not (tmp_path / "predict").exists()
