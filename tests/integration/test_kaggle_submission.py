"""The Kaggle submission of a detector trained on the Kaggle layout: the inference container."""

import shutil

import numpy as np
import pandas as pd
import pytest

from esa_lightning.errors import ESAInputError
from esa_lightning.jobs.container import main as container_main
from esa_lightning.jobs.train import train
from tests.conftest import compose_config

# the submission is what these tests compare; predict.py's default 100 alarm figures of the
# small mission took 11 s of each
ONE_FIGURE = ["max_figures=1"]


@pytest.fixture(scope="module")
def target_detector(small_mission_dir, tmp_path_factory):
    """A smoke detector trained on the target channels of the mission's Kaggle layout."""
    out = tmp_path_factory.mktemp("kaggle_target")
    cfg = compose_config("train", ["experiment=smoke", "data=kaggle",
                                   f"data.root={small_mission_dir / 'kaggle'}",
                                   "data.channels=target", "logger=none",
                                   "trainer.enable_progress_bar=false",
                                   "~callbacks.progress_bar"], out)
    train(cfg)
    return out / "detector"


def test_container_scores_a_target_channel_detector_on_the_full_test_file(
    target_detector, small_mission_dir, tmp_path
):
    kaggle = small_mission_dir / "kaggle"
    test = pd.read_parquet(kaggle / "test.parquet")
    targets = pd.read_csv(kaggle / "target_channels.csv").iloc[:, 0].tolist()
    channels = [c for c in test.columns if c.startswith("channel_")]
    assert 0 < len(targets) < len(channels)  # the file holds channels it never trained on
    data = tmp_path / "data"
    data.mkdir()
    test.to_parquet(data / "test.parquet", index=False)
    assert container_main(["--data", str(data), "--artifacts", str(target_detector)]) == 0
    sub = pd.read_csv(data / "submission.csv")
    assert list(sub.columns) == ["id", "is_anomaly"]
    np.testing.assert_array_equal(sub["id"].to_numpy(), test["id"].to_numpy())
    assert set(sub["is_anomaly"].unique()) <= {0, 1}


def test_predict_reads_the_trained_channels_by_name_as_the_container_does(
    target_detector, small_mission_dir, tmp_path
):
    """A test.parquet with its channel columns in another order than in training: the
    container read them by name, predict.py refused ('same names in a different order')."""
    from esa_lightning.jobs.predict import predict

    test = pd.read_parquet(small_mission_dir / "kaggle" / "test.parquet")
    channels = [c for c in test.columns if c.startswith("channel_")]
    others = [c for c in test.columns if c not in channels]
    data = tmp_path / "data"
    data.mkdir()
    test[[*channels[::-1], *others]].to_parquet(data / "test.parquet", index=False)
    assert container_main(["--data", str(data), "--artifacts", str(target_detector)]) == 0
    predict(compose_config("predict", [f"ckpt={target_detector}", "data=kaggle",
                                       f"data.root={data}", *ONE_FIGURE], tmp_path / "predict"))
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "predict" / "submission.csv"),
                                  pd.read_csv(data / "submission.csv"))
    # a trained channel the file lacks is named
    lost = pd.read_csv(small_mission_dir / "kaggle" / "target_channels.csv").iloc[0, 0]
    test.drop(columns=lost).to_parquet(data / "test.parquet", index=False)
    with pytest.raises(ESAInputError, match=f"{lost}\\b"):
        predict(compose_config("predict", [f"ckpt={target_detector}", "data=kaggle",
                                           f"data.root={data}"], tmp_path / "again"))


def test_telecommands_in_another_order_are_read_by_name(
    target_detector, small_mission_dir, tmp_path
):
    """A test.parquet with its telecommand columns in another order than in training: the
    container and predict.py refused it ('telecommands: same names in a different order')
    while they read the channels by name; now the telecommands are put in the trained order."""
    from esa_lightning.artifact import Detector, in_trained_order
    from esa_lightning.data.readers.kaggle import read_kaggle
    from esa_lightning.jobs.predict import predict

    test = pd.read_parquet(small_mission_dir / "kaggle" / "test.parquet")
    commands = [c for c in test.columns if c.startswith("telecommand_")]
    assert len(commands) > 1 and test[commands].to_numpy().any()
    trained = Detector.load(target_detector).schema["telecommands"]
    assert trained == commands
    data = tmp_path / "data"
    data.mkdir()
    test[[c for c in test.columns if c not in commands] + commands[::-1]].to_parquet(
        data / "test.parquet", index=False
    )
    assert container_main(["--data", str(data), "--artifacts", str(target_detector)]) == 0
    predict(compose_config("predict", [f"ckpt={target_detector}", "data=kaggle",
                                       f"data.root={data}", *ONE_FIGURE], tmp_path / "predict"))
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "predict" / "submission.csv"),
                                  pd.read_csv(data / "submission.csv"))
    # each column moves with its name
    read = read_kaggle(data / "test.parquet", use_cache=False)
    assert read.telecommand_names == commands[::-1]
    ordered = in_trained_order({"telecommands": trained}, read)
    assert ordered.telecommand_names == trained
    np.testing.assert_array_equal(ordered.telecommands, test[commands].to_numpy(np.float32))


def test_a_trained_channel_the_data_lack_is_named_as_such(
    target_detector, small_mission_dir, tmp_path, capsys
):
    """A test file without a channel the detector was trained on: the one-line error said
    "column 'channels': unknown channel(s) [...]" (a data.channels the user never set); it
    names the missing channel, the file, and that the detector was trained on it."""
    from esa_lightning.jobs.predict import predict

    kaggle = small_mission_dir / "kaggle"
    lost = pd.read_csv(kaggle / "target_channels.csv").iloc[0, 0]
    data = tmp_path / "data"
    data.mkdir()
    pd.read_parquet(kaggle / "test.parquet").drop(columns=lost).to_parquet(
        data / "test.parquet", index=False
    )
    expected = f"{data / 'test.parquet'}: missing channel(s) ['{lost}'] the detector was trained on"
    assert container_main(["--data", str(data), "--artifacts", str(target_detector)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {expected}"
    with pytest.raises(ESAInputError) as refused:
        predict(compose_config("predict", [f"ckpt={target_detector}", "data=kaggle",
                                           f"data.root={data}"], tmp_path / "predict"))
    assert str(refused.value) == expected
    # a data.channels the user gave is still the reader's error about that option
    with pytest.raises(ESAInputError, match=r"column 'channels': unknown channel\(s\)"):
        predict(compose_config("predict", [f"ckpt={target_detector}", "data=kaggle",
                                           f"data.root={data}", f"data.channels=[{lost}]"],
                               tmp_path / "again"))


@pytest.mark.parametrize("rows", ["10", "-1"])
def test_the_container_refuses_a_chunk_size_predict_py_refuses(
    rows, target_detector, small_mission_dir, tmp_path, capsys
):
    """``--chunk-rows 10`` was taken (predict.py refuses ``chunk_rows=10``: pieces that small
    cost more in context than they score), and -1 reached the chunking; now the same rule."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(small_mission_dir / "kaggle" / "test.parquet", data / "test.parquet")
    args = ["--data", str(data), "--artifacts", str(target_detector), "--chunk-rows", rows]
    assert container_main(args) == 2
    assert capsys.readouterr().err.strip().startswith(f"error: --chunk-rows {rows}: must be 0")
    assert not (data / "submission.csv").exists()
