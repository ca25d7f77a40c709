"""What ``predict.py`` and the inference container hand the user when the detector or the
data leave something out: an artifact without its ``config.yaml``, Kaggle ids with gaps."""

from __future__ import annotations

import pandas as pd
import pytest

import esa_lightning
from esa_lightning.data.frame import InputWarning
from esa_lightning.errors import ESAInputError
from tests.helpers import write_kaggle
from tests.integration.test_predict_input_checks import GAP, api_message, refused, scored
from tests.integration.test_python_api import zscore_detector


def test_predict_without_data_refuses_a_detector_whose_config_yaml_is_missing(tmp_path):
    """The check that the default data are those the detector was trained on reads ``data``
    of its ``config.yaml``, a file for people: with it deleted (or without ``data``), a detector
    trained on a Kaggle export scored the default synthetic mission without a word. Without a
    record of its data it is refused now, naming the file, before anything is generated; data
    given with ``data=`` are scored as before."""
    from esa_lightning.data.readers.synthetic import generate_mission

    small = generate_mission(tmp_path / "small", days=3, kaggle=True)
    run = esa_lightning.train(["experiment=smoke", "data=kaggle", f"data.root={small / 'kaggle'}",
                               "logger=none", "test=false"],
                              output_dir=tmp_path / "trained", root_dir=tmp_path)
    detector = run.output_dir / "detector"
    for text in (None, "model: {}\n"):  # deleted; edited down to no data settings
        if text is None:
            (detector / "config.yaml").unlink()
        else:
            (detector / "config.yaml").write_text(text)
        error = str(refused(detector, [], tmp_path))
        assert not (tmp_path / "datasets" / "synthetic_default").exists()  # nor generated
        assert error.startswith(f"{detector / 'config.yaml'}: no data= among the overrides"), error
        assert "is missing" in error if text is None else "records no data settings" in error
        assert "the mission it was trained on: kaggle)" in error, error
        assert '["data=synthetic"] to score the default mission all the same' in error, error
    scored(detector, ["data=kaggle", f"data.root={small / 'kaggle'}"], tmp_path)


def test_the_container_warns_about_missing_ids_as_predict_py_does(tmp_path):
    """A ``test.parquet`` whose ids skip 21 rows: ``predict.py`` (and ``Detector.predict``)
    warn that the rows are scored as given, the inference container said nothing. It gives the
    same warning now, naming the file."""
    from esa_lightning.data.readers.kaggle import read_kaggle
    from esa_lightning.jobs.container import main as container_main

    root = tmp_path / "kaggle"
    root.mkdir()
    write_kaggle(root / "train.parquet", n=300)
    test = pd.read_parquet(write_kaggle(tmp_path / "test.parquet", n=300, labels=False))
    test = test.assign(id=test["id"] + 300).drop(index=GAP)
    data = tmp_path / "data"
    data.mkdir()
    test.to_parquet(data / "test.parquet", index=False)
    det = zscore_detector(read_kaggle(root, cache_dir=tmp_path / "c1"), tmp_path / "det", 4.0)

    with pytest.warns(InputWarning) as caught:
        assert container_main(["--data", str(data), "--artifacts", str(tmp_path / "det")]) == 0
    expected = api_message(det, test)
    assert "21 id(s) missing" in expected
    assert [str(w.message) for w in caught] == [f"{data / 'test.parquet'}: {expected}"]
    submission = pd.read_csv(data / "submission.csv")
    assert submission["id"].tolist() == test["id"].tolist()  # scored as given


def test_predict_without_data_is_refused_in_the_words_of_its_caller(tmp_path):
    """``esa_lightning.predict(detector)`` without ``data=`` in its overrides, for a detector
    trained on Kaggle data: the refusal was worded for the command line ("no data= given:
    python predict.py reads ... give the data to score with data= and data.root="). From the
    API it names ``esa_lightning.predict`` and its overrides, as a list; predict.py keeps its
    own words."""
    from esa_lightning.data.readers.synthetic import generate_mission
    from esa_lightning.install import command
    from esa_lightning.jobs.predict import predict as predict_job
    from tests.conftest import compose_config

    small = generate_mission(tmp_path / "small", days=3, kaggle=True)
    run = esa_lightning.train(["experiment=smoke", "data=kaggle", f"data.root={small / 'kaggle'}",
                               "logger=none", "test=false"],
                              output_dir=tmp_path / "trained", root_dir=tmp_path)
    detector = run.output_dir / "detector"
    error = str(refused(detector, [], tmp_path))
    assert "no data= among the overrides: esa_lightning.predict reads the default data" in error
    assert '(["data=KIND", "data.root=DIR"]; ["data=synthetic"] to score' in error, error
    assert command("predict") not in error and "with data= and data.root=" not in error, error
    cfg = compose_config("predict", [f"ckpt={detector}", "max_figures=0"], tmp_path / "cli")
    with pytest.raises(ESAInputError) as cli:
        predict_job(cfg, [])  # predict.py's own job, given its command line's overrides
    text = str(cli.value)
    assert f"no data= given: {command('predict')} reads the default data" in text, text
    assert "give the data to score with data= and data.root= (data=synthetic to score" in text
