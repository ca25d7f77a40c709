"""What ``predict.py`` and the inference container hand the user when the detector or the
data leave something out: an artifact without its ``config.yaml``, Kaggle ids with gaps."""

from __future__ import annotations

import esa_lightning
from tests.integration.test_predict_input_checks import refused, scored


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
        assert f"{detector / 'config.yaml'}" in error, error
        assert "no data= given" in error and "data=synthetic to score" in error, error
    scored(detector, ["data=kaggle", f"data.root={small / 'kaggle'}"], tmp_path)
