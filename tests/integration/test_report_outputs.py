"""predict.py leaves the operator's report for NASA's independent series too."""

from html.parser import HTMLParser

import pandas as pd
import pytest

from esa_lightning.jobs.predict import predict
from esa_lightning.jobs.train import train
from esa_lightning.reporting.outputs import INTERVAL_COLUMNS
from tests.conftest import MSL, compose_config


class Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs).get("src", ""))


@pytest.mark.skipif(not MSL.is_dir(), reason="shared MSL data not present")
def test_nasa_predict_writes_intervals_report_and_index(tmp_path):
    data = ["data=nasa_msl", f"data.root={MSL}", "data.channels=[T-13,C-1]"]
    cfg = compose_config(
        "train",
        [
            "model=window_pca",
            "datamodule=windows",
            *data,
            "test=false",
            "logger=none",
            "trainer.enable_progress_bar=false",
            "~callbacks.progress_bar",
            "~callbacks.lr_monitor",
        ],
        tmp_path / "train",
    )
    train(cfg)
    out = tmp_path / "predict"
    metrics = predict(
        compose_config(
            "predict", [f"ckpt={tmp_path / 'train' / 'detector'}", *data, "max_figures=3"], out
        )
    )
    intervals = pd.read_csv(out / "intervals.csv", keep_default_na=False)
    assert list(intervals.columns) == INTERVAL_COLUMNS
    assert len(intervals) and set(intervals["series"]) <= {"T-13", "C-1"}
    assert (intervals["channels"] == intervals["series"]).all()  # a series is its one channel
    assert pd.to_numeric(intervals["threshold"]).gt(0).all()
    report = pd.read_csv(out / "report.csv")
    assert list(report.columns) == ["channel", "range", "status", "indices"]
    assert len(list((out / "alarms").glob("alarm_*.png"))) == min(3, len(intervals))
    page = Images()
    page.feed((out / "index.html").read_text())
    assert len(page.sources) == 1 + min(3, len(intervals))  # timeline + figures, inline
    assert all(s.startswith("data:image/png;base64,") for s in page.sources)
    assert "test/EWraw_F_0.50" in metrics
    events = pd.read_csv(out / "events.csv", keep_default_na=False, dtype={"alarms": str})
    assert len(events) and set(events["series"]) <= {"T-13", "C-1"}
    for row in events[events["caught"] == 1].itertuples():
        named = [int(k) for k in row.alarms.split(";")]
        assert (intervals["series"].iloc[named] == row.series).all()  # its own series' alarms
    assert events["caught"].mean() == pytest.approx(metrics["test/EW_recall"])


def test_nasa_predict_of_an_empty_range_is_refused_as_for_one_grid(tmp_path):
    """range=val on NASA series without a validation range (data.val_fraction=null) wrote an
    empty submission, report and page, 'not scored (no labels)'; one grid is refused."""
    from esa_lightning.errors import ESAInputError
    from tests.helpers import write_nasa

    rows = [(c, "SMAP", "[[5, 9]]", "[point]", 30) for c in ("A-1", "B-1")]
    root = write_nasa(tmp_path / "smap", n_train=120, rows=rows)
    data = ["data=nasa", f"data.root={root}"]
    train(compose_config("train", ["model=window_pca", "datamodule=windows", *data,
                                   "test=false", "logger=none", "trainer.enable_progress_bar=false",
                                   "~callbacks.progress_bar", "~callbacks.lr_monitor"],
                         tmp_path / "train"))
    out = tmp_path / "predict"
    cfg = compose_config("predict", [f"ckpt={tmp_path / 'train' / 'detector'}", *data,
                                     "data.val_fraction=null", "range=val"], out)
    with pytest.raises(ESAInputError, match=r"no rows to score: the data has no val range"):
        predict(cfg)
    assert not (out / "submission.csv").exists()


def test_a_file_without_a_test_range_names_the_way_to_score_it(tmp_path, small_mission_dir):
    """A single file or folder the reader finds no test part in (an ESA CSV file, which is
    split at data.split_date, unset by default) said only 'is the test range empty?'."""
    from esa_lightning.errors import ESAInputError

    quiet = ["logger=none", "trainer.enable_progress_bar=false", "~callbacks.progress_bar"]
    train(compose_config("train", ["experiment=smoke", f"data.root={small_mission_dir}",
                                   *quiet], tmp_path / "train"))
    out = tmp_path / "predict"
    cfg = compose_config("predict", [f"ckpt={tmp_path / 'train' / 'detector'}",
                                     f"data.root={small_mission_dir}",
                                     "data.split_date=2100-01-01"], out)
    with pytest.raises(ESAInputError, match=r"no test range .*data\.split_date.*range=all"):
        predict(cfg)
    assert not (out / "submission.csv").exists()
