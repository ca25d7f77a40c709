"""Training says up front when a supervised detector has too few labels to learn from."""

import logging

import numpy as np
from omegaconf import OmegaConf

from esa_lightning.data.label_facts import label_facts, supervision_warnings
from esa_lightning.jobs.train import warn_about_labels
from tests.helpers import make_mission, write_kaggle


def test_facts_count_events_runs_and_anomalous_shares():
    # training rows 0-999: events at 100-119 and 300-309 on channel 0; validation 1000-1499:
    # one event of 100 rows; the test event at 1700 is never counted
    m = make_mission(
        anomalies=((100, 119), (300, 309), (1200, 1299), (1700, 1720)), n_channels=2
    )
    facts = label_facts(m)
    assert facts.train_events == 2 and facts.val_events == 1
    assert facts.channel_events == 1.0  # two runs on channel 0, none on channel 1
    assert np.isclose(facts.train_anomalous, 30 / 1000)
    assert np.isclose(facts.val_anomalous, 100 / 500)
    assert "2 training events" in facts.summary()


def test_warnings_name_the_thin_labels_and_a_mostly_anomalous_validation_range():
    many = tuple((a, a + 5) for a in range(50, 950, 60))  # 15 runs on channel 0 of 1
    rich = label_facts(make_mission(anomalies=many, n_channels=1))
    assert rich.channel_events == 15 and supervision_warnings(rich) == []
    thin = label_facts(make_mission(anomalies=((100, 119), (1000, 1400)), n_channels=4))
    messages = supervision_warnings(thin)
    assert len(messages) == 2
    assert "0.2 labeled training runs per channel" in messages[0]
    assert "80% of the validation rows are anomalous" in messages[1]


def test_training_warns_only_for_supervised_families(caplog):
    thin = make_mission(anomalies=((100, 119),), n_channels=4)
    supervised = OmegaConf.create(
        {"datamodule": {}, "model": {"_target_": "esa_lightning.models.rolling_gbdt.model."
                                                "RollingGBDT"}, "experiment_name": "gbdt"}
    )
    unsupervised = OmegaConf.create(
        {"datamodule": {}, "model": {"_target_": "esa_lightning.models.window_pca.model."
                                                "WindowPCADetector"}, "experiment_name": "pca"}
    )
    with caplog.at_level(logging.INFO, logger="esa_lightning"):
        warn_about_labels(unsupervised, thin)
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert any("training events" in r.getMessage() for r in caplog.records)
        warn_about_labels(supervised, thin)
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    # the family is named too: a single model's component is called after experiment_name,
    # which stays gru_ae under train.py model=rolling_gbdt
    assert len(warned) == 1
    assert warned[0].startswith("gbdt (RollingGBDT): 0.2 labeled training runs")


def test_every_family_whose_training_reads_labels_warns_about_thin_labels(caplog):
    """model=channel_ensemble_gbdt (trees fitted on the training labels) warned of nothing: with
    no labeled training run it trained silently into a detector that scored 0.0."""
    thin = make_mission(anomalies=((100, 119),), n_channels=4)
    for target in ("esa_lightning.models.channel_ensemble.model.LitChannelEnsemble",
                   "esa_lightning.models.channel_ensemble.gbdt.GBDTChannelEnsemble",
                   "esa_lightning.models.rolling_gbdt.model.RollingGBDT"):
        caplog.clear()
        cfg = OmegaConf.create({"datamodule": {}, "model": {"_target_": target},
                                "experiment_name": "run"})
        with caplog.at_level(logging.WARNING, logger="esa_lightning"):
            warn_about_labels(cfg, thin)
        warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert any("labeled training runs per channel" in m for m in warned), target


def test_facts_of_training_data_without_a_label_column_say_the_labels_are_unknown(tmp_path):
    """A train.parquet without is_anomaly was summed up as '0 training events ... anomalous
    rows: train 0%', which reads as labeled and nominal; its zeros are unknowns."""
    from esa_lightning.data.readers.kaggle import read_kaggle

    (tmp_path / "kg").mkdir()
    write_kaggle(tmp_path / "kg" / "train.parquet", n=60, labels=False)
    facts = label_facts(read_kaggle(tmp_path / "kg", val_fraction=0.25, cache_dir=None))
    assert "unknown" in facts.summary() and "0 training events" not in facts.summary()
    (message,) = supervision_warnings(facts)
    assert "labels are unknown" in message and "runs per channel" not in message
    write_kaggle(tmp_path / "kg" / "train.parquet", n=60, labels=True)
    labeled = label_facts(read_kaggle(tmp_path / "kg", val_fraction=0.25, cache_dir=None))
    assert "unknown" not in labeled.summary() and labeled.train_events > 0


def test_unknown_labels_name_the_files_of_every_layout():
    """An ESA folder without labels.csv was told its data had 'no label column'."""
    m = make_mission(anomalies=(), n_channels=2)
    m.meta["train_labeled"] = False
    facts = label_facts(m)
    assert not facts.known
    assert "no labels.csv or is_anomaly column" in facts.summary()
    assert "labels.csv" in supervision_warnings(facts)[0]
