"""Checked settings: a bad value of any job is one ``ESAInputError`` naming key and value, found
before any data is read; the composed default configs all pass."""

from __future__ import annotations

import numpy as np
import pytest

from esa_lightning.errors import ESAInputError
from esa_lightning.settings import check_settings
from tests.conftest import compose_config

EXPERIMENTS = ["smoke", "gru_ae", "channel_ensemble", "esa_full", "rolling_gbdt", "gru_ae_nasa"]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_passes_its_own_checks(experiment, tmp_path):
    check_settings(compose_config("train", [f"experiment={experiment}"], tmp_path))


PERCENTILE = "model/threshold@model.post_processing.threshold=percentile"


@pytest.mark.parametrize(
    ("overrides", "shown"),
    [
        (["experiment=smoke", "model.quantile=abc"], "model.quantile='abc'"),
        (["experiment=smoke", "model.quantile=150"], "model.quantile=150"),
        (["model.post_processing.threshold.q=-1"], "model.post_processing.threshold.q=-1"),
        ([PERCENTILE, "model.post_processing.threshold.q=150"],
         "model.post_processing.threshold.q=150"),
    ],
)
def test_a_percentile_outside_0_to_100_is_named_before_training(overrides, shown, tmp_path):
    """It failed only after the fit, with a traceback from torch or numpy (for the z-score's
    quantile, a TypeError or 'quantile() q must be in the range [0, 1]')."""
    with pytest.raises(ESAInputError) as err:
        check_settings(compose_config("train", overrides, tmp_path))
    assert str(err.value).startswith(shown + ": must be a percentage in [0, 100]")


@pytest.mark.parametrize(
    ("job", "override", "shown"),
    [
        ("train", "model.lr=nan", "model.lr=nan"),
        ("train", "model.lr=-1", "model.lr=-1"),
        ("train", "model.hidden_size=0", "model.hidden_size=0"),
        ("train", "trainer.devices=0", "trainer.devices=0"),
        ("train", "datamodule.batch_size=0", "datamodule.batch_size=0"),
        ("train", "datamodule.stride=0", "datamodule.stride=0"),
        ("train", "data.val_days=-5", "data.val_days=-5"),
        ("train", "data.val_days=inf", "data.val_days=inf"),
        ("train", "chunk_rows=1", "chunk_rows=1"),
        ("train", "seed=abc", "seed='abc'"),
        ("train", "trainer.accelerator=foo", "trainer.accelerator='foo'"),
        ("train", "trainer.max_epochs=abc", "trainer.max_epochs='abc'"),
        ("train", "trainer.strategy=ddp_spawn", "trainer.strategy='ddp_spawn'"),
        ("train", "trainer.strategy=ddp_notebook", "trainer.strategy='ddp_notebook'"),
        ("train", "trainer.max_epochs=1.5", "trainer.max_epochs=1.5"),
        ("train", "++trainer.limit_train_batches=abc", "trainer.limit_train_batches='abc'"),
        ("train", "++trainer.limit_val_batches=1.5", "trainer.limit_val_batches=1.5"),
        ("predict", "report_block=0", "report_block=0"),
        ("predict", "max_figures=-1", "max_figures=-1"),
        ("predict", "chunk_rows=1", "chunk_rows=1"),
        # counts given as fractions were taken and rounded down without a word
        ("predict", "report_block=1.5", "report_block=1.5"),
        ("predict", "max_figures=2.5", "max_figures=2.5"),
        ("predict", "chunk_rows=1500.5", "chunk_rows=1500.5"),
        ("train", "datamodule.batch_size=64.5", "datamodule.batch_size=64.5"),
        ("train", "datamodule.window=10.5", "datamodule.window=10.5"),
        ("train", "model.hidden_size=64.5", "model.hidden_size=64.5"),
        ("train", "datamodule.num_workers=0.5", "datamodule.num_workers=0.5"),
    ],
)
def test_a_bad_setting_is_named_with_its_value(job, override, shown, tmp_path):
    overrides = [override] if job == "train" else [override, "ckpt=somewhere"]
    with pytest.raises(ESAInputError) as err:
        check_settings(compose_config(job, overrides, tmp_path))
    assert str(err.value).startswith(shown + ":")


@pytest.mark.parametrize(
    ("experiment", "override", "shown"),
    [
        ("channel_ensemble", "model.hidden=0", "model.hidden=0"),
        ("channel_ensemble", "model.feature_fraction=0", "model.feature_fraction=0"),
        ("channel_ensemble", "model.feature_fraction=1.5", "model.feature_fraction=1.5"),
        ("channel_ensemble", "model.post_processing.alarm.buffer=-1",
         "model.post_processing.alarm.buffer=-1"),
        ("channel_ensemble", "model.post_processing.alarm.height=1.5",
         "model.post_processing.alarm.height=1.5"),
        ("channel_ensemble", "datamodule.step=0", "datamodule.step=0"),
        # fold counts: 0 had crashed the model's constructor ('zero-size array to reduction')
        ("channel_ensemble", "datamodule.n_external=0", "datamodule.n_external=0"),
        ("channel_ensemble", "datamodule.n_internal=0", "datamodule.n_internal=0"),
        ("channel_ensemble", "datamodule.n_final=0", "datamodule.n_final=0"),
        ("channel_ensemble", "datamodule.n_internal=2.5", "datamodule.n_internal=2.5"),
        ("channel_ensemble", "datamodule.fold=-1", "datamodule.fold=-1"),
        ("esa_full", "components.channel_ensemble.datamodule.n_external=0",
         "components.channel_ensemble.datamodule.n_external=0"),
        ("esa_full", "combiner.neighbourhood=-1", "combiner.neighbourhood=-1"),
        ("esa_full", "combiner.threshold_min_events=-1", "combiner.threshold_min_events=-1"),
        ("esa_full", "combiner.threshold_min_events=2.5", "combiner.threshold_min_events=2.5"),
        ("esa_full", "combiner.threshold_min_events=ten", "combiner.threshold_min_events='ten'"),
        ("esa_full", "components.channel_ensemble.model.post_processing.alarm.height=-0.1",
         "components.channel_ensemble.model.post_processing.alarm.height=-0.1"),
    ],
)
def test_a_bad_channel_ensemble_setting_is_named_with_its_value(
    experiment, override, shown, tmp_path
):
    cfg = compose_config("train", [f"experiment={experiment}", override], tmp_path)
    with pytest.raises(ESAInputError) as err:
        check_settings(cfg)
    assert str(err.value).startswith(shown + ":")


@pytest.mark.parametrize(
    ("overrides", "shown", "requirement"),
    [
        # torch's "ValueError: Invalid weight_decay value: -1.0" traceback once training began
        (["model.weight_decay=-1"], "model.weight_decay=-1", "must be a finite number >= 0"),
        (["experiment=channel_ensemble", "model.weight_decay=-0.5"], "model.weight_decay=-0.5",
         "must be a finite number >= 0"),
        # a run to the end that alarmed on every sample (|x - mean| / std > -1): EW_F 0.0
        (["model=global_std", "datamodule=rows", "model.n_std=-1"], "model.n_std=-1",
         "must be a finite number > 0"),
        (["model=global_std", "datamodule=rows", "model.n_std=0"], "model.n_std=0",
         "must be a finite number > 0"),
        # a channel ensemble trained to the end on a BCE that rewards missing the positives
        (["experiment=channel_ensemble", "model.pos_weight=-1"], "model.pos_weight=-1",
         "must be a finite number > 0"),
        (["experiment=channel_ensemble", "model.f05_weight=-1"], "model.f05_weight=-1",
         "must be a finite number >= 0"),
        # tracebacks once the data were read: torch's "zeros: Dimension size must be
        # non-negative", scikit-learn's InvalidParameterError, numpy's IndexError in the mining
        (["experiment=channel_ensemble", "datamodule.n_kernels=-1"], "datamodule.n_kernels=-1",
         "must be a whole number >= 0"),
        (["experiment=channel_ensemble", "model=channel_ensemble_gbdt", "model.max_iter=0"],
         "model.max_iter=0", "must be a whole number >= 1"),
        (["experiment=channel_ensemble", "datamodule.shapelet_options.max_candidates=0"],
         "datamodule.shapelet_options.max_candidates=0", "must be a whole number >= 1"),
        # ignored on one series, torch's "negative dimension" RuntimeError on several (NASA)
        (["model.series_embedding_dim=-1"], "model.series_embedding_dim=-1",
         "must be a whole number >= 0"),
        # accepted silently: a gate at or below 0 sent every window to the forest
        (["model.post_processing.rf_gate.gate_factor=-1"],
         "model.post_processing.rf_gate.gate_factor=-1", "must be a finite number > 0"),
        (["model.post_processing.rf_gate.gate_factor=0"],
         "model.post_processing.rf_gate.gate_factor=0", "must be a finite number > 0"),
        # Telemanom's threshold: "ZeroDivisionError: float division by zero" after training;
        # at most 0 sequences never alarmed ("AttributeError: 'TelemanomOnline' object has no
        # attribute 'threshold'" at the run's end); a decrease share of 2 pruned every sequence
        (["model/threshold@model.post_processing.threshold=telemanom",
          "model.post_processing.threshold.z_step=0"],
         "model.post_processing.threshold.z_step=0", "must be a finite number > 0"),
        (["model/threshold@model.post_processing.threshold=telemanom",
          "model.post_processing.threshold.max_sequences=0"],
         "model.post_processing.threshold.max_sequences=0", "must be a whole number >= 1"),
        (["model/threshold@model.post_processing.threshold=dynamic",
          "model.post_processing.threshold.min_percent_decrease=2"],
         "model.post_processing.threshold.min_percent_decrease=2", "must lie in [0, 1)"),
        # Telemanom's smoothing, error buffer, warmup and error-scale check below 0 were taken
        # as 0 (off) without a word
        *[(["model/threshold@model.post_processing.threshold=telemanom",
            f"model.post_processing.threshold.{key}=-1"],
           f"model.post_processing.threshold.{key}=-1", requirement)
          for key, requirement in (("smoothing", "must be a finite number >= 0"),
                                   ("error_scale", "must be a finite number >= 0"),
                                   ("min_error", "must be a finite number >= 0"),
                                   ("error_buffer", "must be a whole number >= 0"),
                                   ("warmup", "must be a whole number >= 0"))],
    ],
)
def test_a_nonsensical_model_number_is_named_before_training(
    overrides, shown, requirement, tmp_path
):
    with pytest.raises(ESAInputError) as err:
        check_settings(compose_config("train", overrides, tmp_path))
    assert str(err.value) == f"{shown}: {requirement}"


def test_a_setting_nested_in_a_component_is_named_by_its_full_key(tmp_path):
    cfg = compose_config(
        "train", ["experiment=esa_full", "components.gru_ae.model.hidden_size=0"], tmp_path
    )
    with pytest.raises(ESAInputError, match=r"^components\.gru_ae\.model\.hidden_size=0:"):
        check_settings(cfg)


@pytest.mark.parametrize("search", ["optuna", "optuna_forecast"])
def test_a_search_space_is_not_checked_as_settings(search, tmp_path):
    # train.py given a search space warns that it runs one job (docs/sweeps.md): its
    # expressions, e.g. model.latent_dim='choice(16, 32, 64)', are no settings of the run
    cfg = compose_config("train", [f"hparams_search={search}"], tmp_path)
    assert cfg.optuna.params
    check_settings(cfg)


@pytest.mark.parametrize(
    ("job", "key"),
    [("predict", "report_block"), ("predict", "chunk_rows"), ("predict", "max_figures"),
     ("predict", "ckpt"), ("predict", "range"), ("evaluate", "predictions"),
     ("evaluate", "algorithm"), ("merge", "detectors"), ("train", "chunk_rows")],
)
def test_a_job_setting_set_to_null_is_named(job, key, tmp_path):
    # they raised TypeErrors deep in the jobs (int(None), len(None), Path(None))
    mandatory = {"predict": ["ckpt=x"], "evaluate": ["predictions=x"], "merge": ["detectors=[a,b]"],
                 "train": []}[job]
    cfg = compose_config(job, [*mandatory, f"{key}=null"], tmp_path)
    with pytest.raises(ESAInputError, match=rf"^{key}=null: needs a value"):
        check_settings(cfg)


@pytest.mark.parametrize("key", ["seed", "test", "optimized_metric"])
def test_settings_whose_null_means_something_stay_allowed(key, tmp_path):
    check_settings(compose_config("train", [f"{key}=null"], tmp_path))  # seed=null: PL's own


def test_an_unset_mandatory_value_is_named(tmp_path):
    with pytest.raises(ESAInputError, match="set ckpt="):
        check_settings(compose_config("predict", [], tmp_path))


@pytest.mark.parametrize("devices", ["auto", "-1", "2", "[0,1]"])
def test_valid_device_counts_pass(devices, tmp_path):
    check_settings(compose_config("train", [f"trainer.devices={devices}"], tmp_path))


def test_chunking_can_be_switched_off(tmp_path):
    check_settings(compose_config("train", ["chunk_rows=0"], tmp_path))


def test_validation_days_beyond_the_training_span_do_not_overflow():
    """val_days larger than any timedelta (1e9 days) raised an OverflowError traceback; more
    days than the training range spans make every training row validation, as 900 days do."""
    from esa_lightning.data.selection import split_points_by_time

    ts = np.arange(1000).astype("datetime64[m]")
    assert split_points_by_time(ts, None, 1e9) == (0, 1000)
    assert split_points_by_time(ts, None, 900) == (0, 1000)
    assert split_points_by_time(ts, None, 100 / 1440) == (900, 1000)  # after the last 100 min


@pytest.mark.parametrize("val_days", [-1, -0.5, float("nan"), float("-inf"), "ninety"])
def test_a_reader_refuses_val_days_the_settings_refuse(tmp_path, val_days):
    """From Python (load_mission, the readers) val_days=-1 gave no validation row without a
    word and nan or a word a ValueError traceback; val_fraction was already refused there."""
    from esa_lightning.data import load_mission
    from esa_lightning.data.selection import split_points_by_time
    from tests.helpers import write_esa_csv

    ts = np.arange(1000).astype("datetime64[m]")
    with pytest.raises(ESAInputError, match="val_days.*finite number >= 0"):
        split_points_by_time(ts, None, val_days)
    path = write_esa_csv(tmp_path / "x.csv", n=200)
    with pytest.raises(ESAInputError, match="val_days"):
        load_mission("esa_csv", path, cache_dir=None, val_days=val_days)


def test_a_split_date_given_as_a_number_is_refused_as_not_a_date():
    """data.split_date=2000 (Hydra reads it as an int) was read as 2000 ns after 1970, and the
    error spoke of the first row instead of the setting's type."""
    from esa_lightning.data.selection import split_points_by_time

    ts = np.arange(1000).astype("datetime64[m]")
    with pytest.raises(ESAInputError, match="split_date.*2000.*not a number"):
        split_points_by_time(ts, 2000, None)
    assert split_points_by_time(ts, "1970-01-01T00:10", None) == (10, 10)


@pytest.mark.parametrize(
    ("overrides", "instead"),
    [
        (["trainer.max_epochs=1"], ["components.gru_ae.trainer.max_epochs=1",
                                    "components.channel_ensemble.trainer.max_epochs=1"]),
        (["++trainer.max_epochs=3", "components.gru_ae.trainer.max_epochs=2"],
         ["components.channel_ensemble.trainer.max_epochs=3"]),
    ],
)
def test_a_top_level_trainer_key_each_component_overrides_is_refused_naming_theirs(
    overrides, instead
):
    """esa_full trains each component under its own trainer keys: trainer.max_epochs=1 on the
    command line was ignored without a word (5 and 100 epochs all the same)."""
    from esa_lightning.cli.overrides import compose_error

    reason = compose_error("train", ["experiment=esa_full", *overrides], check=True)
    assert reason is not None and "trainer.max_epochs=" in reason
    for key in instead:
        assert key in reason, reason
    shown_instead = reason.rsplit("set ", 1)[-1]
    assert all(c in instead for c in shown_instead.split(" instead")[0].split())


@pytest.mark.parametrize(
    "overrides",
    [
        # the documented commands: top-level keys no component sets reach every component
        ["trainer.devices=2", "trainer.accelerator=cpu", "trainer.strategy=ddp"],
        ["+trainer.limit_train_batches=3", "trainer.enable_progress_bar=false"],
        # every component's own key given too: nothing is left to the top-level one
        ["trainer.max_epochs=1", "components.gru_ae.trainer.max_epochs=1",
         "components.channel_ensemble.trainer.max_epochs=2"],
        ["trainer=ddp", "~callbacks.progress_bar"],
    ],
)
def test_top_level_trainer_keys_that_reach_the_components_stay_allowed(overrides):
    from esa_lightning.cli.overrides import compose_error

    assert compose_error("train", ["experiment=esa_full", *overrides], check=True) is None


def test_a_single_model_takes_the_top_level_trainer_keys():
    from esa_lightning.cli.overrides import compose_error

    assert compose_error("train", ["experiment=gru_ae", "trainer.max_epochs=1"], check=True) is None


def test_the_api_refuses_a_shadowed_trainer_key_before_training(monkeypatch, tmp_path):
    import esa_lightning.jobs.train as train_job
    from esa_lightning.api import training

    def never(cfg):
        raise AssertionError("trained")

    monkeypatch.setattr(train_job, "train", never)
    with pytest.raises(ESAInputError, match=r"components\.gru_ae\.trainer\.max_epochs=1"):
        training.train(["experiment=esa_full", "trainer.max_epochs=1"], output_dir=tmp_path / "r")


@pytest.mark.parametrize("reader", ["esa_csv", "synthetic"])
def test_an_empty_split_date_is_refused_naming_the_key_and_null_keeps_its_meaning(
    reader, tmp_path
):
    """data.split_date="" (or data.split_date= on the command line) was read as no date at all:
    the whole mission became training and validation rows, no test range, silently."""
    from esa_lightning.data.readers.esa_csv import read_esa_csv
    from esa_lightning.data.readers.synthetic import load_synthetic
    from tests.helpers import write_esa_csv

    if reader == "esa_csv":
        path = write_esa_csv(tmp_path / "m.csv", n=200)

        def read(split):
            return read_esa_csv(path, split_date=split, cache_dir=None)
    else:
        def read(split):
            return load_synthetic(tmp_path / "syn", generate={"days": 3, "channels": 2},
                                  split_date=split, cache_dir=None)
    default = read(None)  # null: no test range (CSV), the generator's recorded split
    if reader == "synthetic":
        assert 0 < default.test_start < default.n_rows
    else:
        assert default.test_start == default.n_rows
    for empty in ("", "NaT"):
        with pytest.raises(ESAInputError, match=r"data\.split_date='(NaT)?': .*null") as caught:
            read(empty)
        assert "not a date" in str(caught.value)


def test_a_bad_range_is_explained_without_naming_one_route():
    """The refusal of ``range`` said "(the rows predict.py scores)" on every route: the
    installed esa-predict and the Python API (``esa_lightning.predict``) have no predict.py. It
    now says what each value scores and names no command."""
    from esa_lightning.settings import check_setting

    with pytest.raises(ESAInputError) as err:
        check_setting("range", "tset")
    line = str(err.value)
    assert line.startswith("range='tset': must be test, val or all")
    assert "test range" in line and "validation range" in line and "every row" in line
    assert ".py" not in line and "esa-" not in line


@pytest.mark.parametrize(
    ("overrides", "shown", "requirement"),
    [
        # each was a TypeError/ValueError traceback from Hydra's instantiation or from deep in
        # the fit (threadpoolctl, torch) instead of one line naming the key
        (["experiment=rolling_gbdt", "model.l2_regularization=abc"],
         "model.l2_regularization='abc'", "must be a finite number >= 0"),
        (["experiment=rolling_gbdt", "model.l2_regularization=-1"],
         "model.l2_regularization=-1", "must be a finite number >= 0"),
        (["experiment=rolling_gbdt", "model.n_threads=abc"],
         "model.n_threads='abc'", "must be a whole number >= 1"),
        (["model=zscore", "datamodule=rows", "+model.min_scale=abc"],
         "model.min_scale='abc'", "must be a finite number > 0"),
        (["model=zscore", "datamodule=rows", "+model.min_scale=0"],
         "model.min_scale=0", "must be a finite number > 0"),
        (["model=global_std", "datamodule=rows", "+model.min_std=-1"],
         "model.min_std=-1", "must be a finite number > 0"),
    ],
)
def test_a_bad_baseline_setting_is_named_before_training(overrides, shown, requirement, tmp_path):
    with pytest.raises(ESAInputError) as err:
        check_settings(compose_config("train", overrides, tmp_path))
    assert str(err.value) == f"{shown}: {requirement}"


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["model=window_pca", "model.seed=null"], "model.seed"),
        (["model=window_knn", "model.k=null"], "model.k"),
        (["model=global_std", "datamodule=rows", "model.n_std=null"], "model.n_std"),
        (["model=zscore", "datamodule=rows", "model.quantile=null"], "model.quantile"),
        (["experiment=rolling_gbdt", "model.learning_rate=null"], "model.learning_rate"),
        (["experiment=rolling_gbdt", "model.windows=null"], "model.windows"),
        (["experiment=esa_full", "components.gru_ae.model.top_channels=null"],
         "components.gru_ae.model.top_channels"),
    ],
)
def test_a_model_setting_set_to_null_is_named(overrides, key, tmp_path):
    # int(None) / float(None): a TypeError traceback from Hydra's instantiation
    with pytest.raises(ESAInputError, match=rf"^{key.replace('.', '[.]')}=null: needs a value"):
        check_settings(compose_config("train", overrides, tmp_path))


@pytest.mark.parametrize(
    "overrides", [["experiment=rolling_gbdt", "model.n_threads=null"],
                  ["model=window_pca", "datamodule.detrend=null"], ["seed=null"]]
)
def test_model_settings_whose_null_means_something_stay_allowed(overrides, tmp_path):
    check_settings(compose_config("train", overrides, tmp_path))


def test_detrend_is_bounded_by_the_rows_a_mission_may_hold():
    """``datamodule.detrend`` (and the GRU's and the datamodule's own) from 1 to
    ``MAX_DETREND_ROWS``, the most rows a mission's grid may span; any value was accepted."""
    from esa_lightning.data.readers.esa_adb_grid import MAX_GRID_ROWS
    from esa_lightning.data.windows import WindowDataModule
    from esa_lightning.models.gru_ae.model import LitGRUAttentionAE
    from esa_lightning.settings import MAX_DETREND_ROWS, check_setting
    from tests.helpers import sine_mission

    assert MAX_DETREND_ROWS == MAX_GRID_ROWS
    check_setting("datamodule.detrend", MAX_DETREND_ROWS)
    check_setting("datamodule.detrend", None)
    for value in (MAX_DETREND_ROWS + 1, 0, 2.5, True):
        with pytest.raises(ESAInputError, match=rf"datamodule\.detrend={value}: must be null"):
            check_setting("datamodule.detrend", value)
    with pytest.raises(ESAInputError, match="datamodule.detrend=50000001"):
        WindowDataModule(sine_mission(), window=8, detrend=MAX_DETREND_ROWS + 1)
    with pytest.raises(ESAInputError, match="model.detrend=50000001"):
        LitGRUAttentionAE(n_inputs=3, n_outputs=3, window=8, detrend=MAX_DETREND_ROWS + 1)


def test_training_warns_of_a_detrend_longer_than_the_training_rows(caplog):
    """380 training rows (the longest series'): detrend 381 trains with a warning naming the
    setting and the rows (no training row's trailing mean spans it), 380 without one. A
    refusal would stop the default day (2880 rows) on every mission shorter than that."""
    import logging

    from esa_lightning.data.windows import WindowDataModule
    from esa_lightning.models.gru_ae.model import LitGRUAttentionAE
    from tests.helpers import sine_mission

    m = sine_mission(val_start=380)
    for detrend, warned in ((381, True), (380, False)):
        dm = WindowDataModule(m, window=8, batch_size=64, detrend=detrend)
        dm.setup("fit")
        model = LitGRUAttentionAE(**dm.dims, hidden_size=4, latent_dim=2,
                                  post_processing={"threshold": {"kind": "percentile"}})
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="esa_lightning"):
            model.set_preprocessing(dm)
        said = [r.getMessage() for r in caplog.records if "datamodule.detrend" in r.getMessage()]
        assert bool(said) is warned, said
        if warned:
            assert "detrend=381 is longer than the 380 training rows" in said[0]
        assert int(model.train_rows) == 380 and model.fitted_state_problem() is None


@pytest.mark.parametrize(
    ("overrides", "shown"),
    [
        (["experiment=rolling_gbdt", "model.windows=[5,nan]"], "model.windows[1]=nan"),
        (["experiment=esa_full", "combiner.gap_close={widths:[0,nan],tolerance:0.005}"],
         "combiner.gap_close.widths[1]=nan"),
    ],
)
def test_a_list_item_is_named_as_everywhere_else(overrides, shown, tmp_path):
    """A list's item was named ``model.windows.1`` by these rules, ``data.channels[1]`` by the
    interpolation check and OmegaConf (and the docs): both are ``key[i]`` now."""
    with pytest.raises(ESAInputError) as err:
        check_settings(compose_config("train", overrides, tmp_path))
    assert str(err.value).startswith(f"{shown}: must be a number, not NaN")
