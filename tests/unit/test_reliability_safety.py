"""Hostile pickles are refused: the payload never runs (ESA channel zips, Detector weights)."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from esa_lightning.artifact import Detector, mission_schema
from esa_lightning.data.readers.digests import DIGESTS_FILE
from esa_lightning.data.readers.esa_adb import read_esa_mission
from esa_lightning.errors import ESAInputError
from esa_lightning.models.zscore.model import RobustZScore
from tests.helpers import esa_frame, make_mission, pickled_zip, write_esa_mission, zip_bytes


class Payload:
    """Unpickling this creates ``marker``: the proof that foreign code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


class FrameWithPayload:
    """A DataFrame-looking pickle whose reduction calls ``builtins.exec``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"import os; os.mkdir({self.marker!r})",))


@pytest.mark.parametrize("kind", [Payload, FrameWithPayload])
def test_esa_reader_refuses_a_malicious_channel_pickle(tmp_path, kind):
    marker = tmp_path / "pwned"
    root = write_esa_mission(
        tmp_path / "mission",
        {
            "channel_1": pickled_zip(esa_frame("channel_1")),
            "channel_2": zip_bytes(pickle.dumps(kind(str(marker)))),
        },
    )
    cache = tmp_path / "cache"
    with pytest.raises(ESAInputError) as info:
        read_esa_mission(root, cache_dir=cache)
    assert "channel_2" in str(info.value)
    assert not marker.exists()
    # no cache entry (the source digests' memo, digests.json, may stay: it caches no data)
    assert not cache.exists() or not [p for p in cache.iterdir() if p.name != DIGESTS_FILE]


def test_esa_reader_refuses_a_payload_nested_inside_a_real_frame(tmp_path):
    marker = tmp_path / "pwned"
    frame = esa_frame("channel_1")
    frame.attrs["x"] = Payload(str(marker))
    root = write_esa_mission(tmp_path / "mission", {"channel_1": pickled_zip(frame)})
    with pytest.raises(ESAInputError, match="channel_1"):
        read_esa_mission(root, cache_dir=tmp_path / "cache")
    assert not marker.exists()


def test_esa_reader_reads_the_honest_mission(tmp_path):
    root = write_esa_mission(
        tmp_path / "mission",
        {
            "channel_1": pickled_zip(esa_frame("channel_1")),
            "channel_2": pickled_zip(esa_frame("channel_2")),
        },
    )
    mission = read_esa_mission(root, cache_dir=tmp_path / "cache")
    assert mission.values.shape == (50, 2)


def saved_detector(path):
    mission = make_mission(n_rows=300, val_start=100, test_start=200, anomalies=())
    model = RobustZScore(n_channels=len(mission.channel_names), quantile=99.0)
    model.threshold.fill_(4.0)
    Detector({"zscore": model}, mission_schema(mission)).save(path)
    return path


def test_detector_refuses_malicious_weights(tmp_path):
    det = saved_detector(tmp_path / "detector")
    marker = tmp_path / "pwned"
    weights = det / "components" / "zscore" / "weights.pt"
    torch.save({"median": Payload(str(marker))}, weights)
    with pytest.raises(ESAInputError) as info:
        Detector.load(det)
    assert str(weights) in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"\x00" * 10, b"PK\x03\x04garbage", b"not a pickle"])
def test_detector_refuses_corrupt_weights(tmp_path, content):
    det = saved_detector(tmp_path / "detector")
    (det / "components" / "zscore" / "weights.pt").write_bytes(content)
    with pytest.raises(ESAInputError, match="weights"):
        Detector.load(det)


@pytest.mark.parametrize(
    "manifest",
    [
        "",
        "[]",
        "{}",
        '{"format_version": 1, "components": {"z": {}}}',
        '{"format_version": 1, "components": {"z": {"class": '
        '"esa_lightning.models.zscore.model.RobustZScore", "hparams": {"bogus": 1}}}}',
    ],
)
def test_detector_refuses_a_corrupt_manifest(tmp_path, manifest):
    det = saved_detector(tmp_path / "detector")
    (det / "detector.json").write_text(manifest)
    with pytest.raises(ESAInputError, match="detector.json"):
        Detector.load(det)


def test_detector_weights_of_the_wrong_shape(tmp_path):
    det = saved_detector(tmp_path / "detector")
    torch.save({"nonsense": torch.from_numpy(np.zeros(3))}, det / "components/zscore/weights.pt")
    with pytest.raises(ESAInputError, match="weights"):
        Detector.load(det)
