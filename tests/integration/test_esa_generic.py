"""data=esa is generic: any ESA-layout folder trains with only data.root and data.split_date."""

import logging

import numpy as np
import pandas as pd
import pytest

from esa_lightning.data.readers.synthetic import _write_series, generate_mission
from esa_lightning.data.selection import split_points_by_time, val_days_fit
from esa_lightning.errors import ESAInputError
from esa_lightning.jobs.common import mission_from_config
from esa_lightning.jobs.train import train
from tests.conftest import compose_config

RENAME = {"channel_1": "temp_bus", "channel_2": "volt_main", "channel_3": "gyro_x"}


@pytest.fixture(scope="module")
def other_mission(tmp_path_factory):
    """A 20-day, 3-channel ESA-layout mission whose channels are not Mission1's and that has no
    mission.json (as a real ESA-ADB folder): the generator's output with channels renamed."""
    out = tmp_path_factory.mktemp("esa_generic") / "mission"
    generate_mission(out, channels=3, groups=1, days=20, seed=5)
    (out / "mission.json").unlink()
    for old, new in RENAME.items():
        frame = pd.read_pickle(out / "channels" / f"{old}.zip", compression="zip")
        _write_series(out / "channels" / f"{new}.zip", new, frame.index.asi8, frame[old])
        (out / "channels" / f"{old}.zip").unlink()
    for name in ("channels.csv", "labels.csv"):
        table = pd.read_csv(out / name)
        table["Channel"] = table["Channel"].replace(RENAME)
        table.to_csv(out / name, index=False)
    return out


def test_train_with_root_and_split_only(other_mission, tmp_path, caplog):
    out = tmp_path / "run"
    cfg = compose_config(
        "train",
        ["experiment=smoke", "data=esa", f"data.root={other_mission}",
         "data.split_date=2000-01-13",  # a 12-day training range: 90 validation days do not fit
         "trainer.enable_progress_bar=false", "~callbacks.progress_bar"],
        out,
    )
    with caplog.at_level(logging.INFO, logger="esa_lightning.data.selection"):
        value = train(cfg)
    assert np.isfinite(value)
    assert (out / "metrics.json").is_file()
    lines = [r.getMessage() for r in caplog.records if "does not fit" in r.getMessage()]
    assert lines and "val_days=90" in lines[0] and "val_fraction=0.2" in lines[0]


def test_lightweight_without_a_list_is_a_clear_error(other_mission, tmp_path):
    cfg = compose_config(
        "train", ["data=esa", f"data.root={other_mission}", "data.channels=lightweight"], tmp_path
    )
    with pytest.raises(ESAInputError, match="no lightweight channel subset"):
        mission_from_config(cfg.data)


def test_mission1_preset_keeps_mission1_settings(tmp_path):
    data = compose_config("train", ["data=esa_mission1"], tmp_path).data
    assert data.counters == [f"channel_{i}" for i in range(4, 12)]
    assert data.split_date == "2007-01-01" and data.val_days == 90 and data.val_fraction is None
    assert data.lightweight == [f"channel_{i}" for i in range(41, 47)]
    generic = compose_config("train", ["data=esa"], tmp_path).data
    assert generic.counters is None and generic.lightweight is None
    assert generic.split_date is None and generic.val_fraction == 0.2


def test_validation_fallback_rule(caplog):
    ts = np.datetime64("2000-01-01", "ns") + np.arange(1000) * np.timedelta64(1, "h")
    split = str(ts[800])  # 800 training rows spanning 799 h (~33.3 days)
    # fits (under half the span): the last val_days as before, fraction not used, nothing logged
    with caplog.at_level(logging.INFO, logger="esa_lightning.data.selection"):
        assert split_points_by_time(ts, split, 10, 0.2) == (800 - 240, 800)
    assert not caplog.records
    assert val_days_fit(ts[:800], 16.6) and not val_days_fit(ts[:800], 16.7)
    # at least half the span: the last val_fraction of the training rows, logged with both numbers
    with caplog.at_level(logging.INFO, logger="esa_lightning.data.selection"):
        assert split_points_by_time(ts, split, 17, 0.25) == (600, 800)
    assert "val_days=17" in caplog.text and "val_fraction=0.25" in caplog.text
    # val_fraction None keeps val_days (the old behaviour); no val_days uses val_fraction
    assert split_points_by_time(ts, split, 17, None) == (800 - 408, 800)
    assert split_points_by_time(ts, split, None, 0.25) == (600, 800)
    assert split_points_by_time(ts, split, 90, None) == (0, 800)


def test_counters_and_lightweight_from_mission_json(tmp_path):
    from esa_lightning.data.readers.esa_adb import read_esa_mission, read_mission_record

    root = generate_mission(tmp_path / "m", channels=4, groups=2, days=3, seed=1)
    record = read_mission_record(root)
    m = read_esa_mission(root, counters=None, lightweight=None, channels="lightweight",
                         use_cache=False)
    assert m.meta["lightweight"] == record["lightweight"] == list(m.channels["Channel"])
    assert m.meta["counters"] == sorted(set(record["counters"]) & set(record["lightweight"]))
