"""Data too short for one pooled row of the channel ensemble: refused naming the data scored and
the rows it needs, not the internal array it featurises."""

from __future__ import annotations

import pandas as pd
import pytest

import esa_lightning
from esa_lightning.data.readers.layout_writers import write_esa_csv
from esa_lightning.data.transforms.segments import min_samples
from esa_lightning.errors import ESAInputError
from tests.helpers import make_tiny_mission, tiny_datamodule, trainer


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory):
    """A channel ensemble trained one short epoch on the tiny mission, saved; and the mission."""
    from esa_lightning.api import Detector
    from esa_lightning.artifact import mission_schema
    from esa_lightning.jobs.train import record_for_api
    from esa_lightning.models.channel_ensemble.model import LitChannelEnsemble

    folder = tmp_path_factory.mktemp("ensemble")
    mission = make_tiny_mission()
    dm = tiny_datamodule(mission)
    lit = LitChannelEnsemble(**dm.dims, hidden=8, lr=2e-2,
                             post_processing={"alarm": {"kind": "peaks", "height": 0.5}})
    trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=0,
            default_root_dir=folder).fit(lit, dm)
    det = Detector({"ensemble": lit}, mission_schema(mission))
    record_for_api(det, mission, 100_000)
    det.save(folder / "detector")
    return folder / "detector", mission, min_samples(dm.window, dm.step, dm.pool)


def test_a_file_shorter_than_a_pooled_row_is_refused_naming_it(ensemble, tmp_path, one_thread):
    """It read ``column 'values': the series has 5 samples; one pooled row needs 115 ...``:
    no file, and a column the data do not have."""
    detector, mission, need = ensemble
    short = write_esa_csv(mission.slice(10000, 10005), tmp_path / "new.csv")
    with pytest.raises(ESAInputError) as info:
        esa_lightning.predict(detector, ["data=esa_csv", f"data.root={short}", "range=all"],
                              output_dir=tmp_path / "out", root_dir=tmp_path)
    text = str(info.value)
    assert text.startswith(f"{short}: 5 rows read"), text
    assert f"needs at least {need}" in text and "'values'" not in text
    assert not (tmp_path / "out").exists()


def test_a_frame_shorter_than_a_pooled_row_is_refused_naming_the_frame(ensemble, one_thread):
    from esa_lightning.api import Detector

    detector, mission, need = ensemble
    part = mission.slice(10000, 10005)
    frame = pd.DataFrame(part.values, columns=part.channel_names,
                         index=pd.RangeIndex(10000, 10005, name="id"))
    with pytest.raises(ESAInputError, match=rf"^DataFrame: 5 rows read.*needs at least {need}"):
        Detector.load(detector).predict(frame)


def test_a_split_date_after_the_last_row_is_named_with_that_row(tmp_path):
    """``data.split_date`` after the data's last row read ``no rows to score: the data has no
    test range (no test file or folder, or data.split_date unset or after its last row ...)``:
    every cause but the one given. It names the date given and the last row's time."""
    from esa_lightning.data.readers.esa_csv import read_esa_csv
    from tests.helpers import write_esa_csv as write_small_csv
    from tests.integration.test_python_api import zscore_detector

    path = write_small_csv(tmp_path / "new.csv", n=300)  # 30 s rows from 2000-01-01 00:00
    zscore_detector(read_esa_csv(path, cache_dir=tmp_path / "c"), tmp_path / "det", 4.0)
    with pytest.raises(ESAInputError) as info:
        esa_lightning.predict(tmp_path / "det", ["data=esa_csv", f"data.root={path}",
                                                 "data.split_date=2000-01-05"],
                              output_dir=tmp_path / "out", root_dir=tmp_path)
    assert str(info.value) == (
        f"{path}: no rows to score: the data has no test range (data.split_date=2000-01-05 is "
        "after its last row, 2000-01-01 02:29:30); range=all scores every row")
    assert not (tmp_path / "out").exists()
