"""The development copy of a NASA folder holds only rows a converted mission trains on."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from esa_lightning.data.convert import convert_nasa
from esa_lightning.data.development import development_source, main
from esa_lightning.errors import ESAInputError
from esa_lightning.io import TMP_PREFIX
from tests.helpers import write_msl_channels

# (channel, n_train, n_test, sequences, classes). Side by side with --test-share 0.5 the test
# stretches start at row 80 (the longest training file), the grid has 80 + 60 rows and the
# split lies at 80 + 30: 30 rows of each test recording lie before it. A-1's second sequence
# crosses that cut; C-3's first lies after it; B-2's recording ends before it.
CHANNELS = [
    ("A-1", 50, 40, [[5, 9], [25, 35]], "[point, contextual]"),
    ("B-2", 80, 25, [[0, 0]], "[point]"),
    ("C-3", 30, 60, [[40, 52], [10, 20]], "[contextual, point]"),
]


@pytest.fixture(scope="module")
def nasa(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(3)
    return write_msl_channels(
        tmp_path_factory.mktemp("nasa") / "tiny-nasa", CHANNELS, lambda n: rng.normal(size=(n, 3))
    )


def listing(folder: Path) -> dict[str, tuple[list, str, int]]:
    table = pd.read_csv(folder / "labeled_anomalies.csv")
    return {
        r.chan_id: (json.loads(r.anomaly_sequences), r["class"], int(r.num_values))
        for _, r in table.iterrows()
    }


def test_side_by_side_keeps_each_test_recording_up_to_the_split(nasa, tmp_path):
    mission = convert_nasa(nasa, tmp_path / "mission", layout="esa", test_share=0.5)
    record = json.loads((mission / "mission.json").read_text())
    assert record["split_row"] - record["channels"]["A-1"]["test_rows"][0] == 30

    dev, left_out = development_source(nasa, mission, tmp_path / "dev")
    assert left_out == []
    for chan, _, n_test, _, _ in CHANNELS:
        source_test = np.load(nasa / "test" / f"{chan}.npy")
        kept = np.load(dev / "test" / f"{chan}.npy")
        np.testing.assert_array_equal(kept, source_test[: min(30, n_test)])
        np.testing.assert_array_equal(
            np.load(dev / "train" / f"{chan}.npy"), np.load(nasa / "train" / f"{chan}.npy")
        )
    labels = listing(dev)
    assert labels["A-1"] == ([[5, 9], [25, 29]], "[point, contextual]", 30)
    assert labels["B-2"] == ([[0, 0]], "[point]", 25)
    assert labels["C-3"] == ([[10, 20]], "[point]", 30)

    # the copy converts like any NASA folder, and no value of it comes after the mission's split
    again = convert_nasa(dev, tmp_path / "dev_mission", layout="esa", test_share=0.5)
    assert json.loads((again / "mission.json").read_text())["events"] == 4


def test_test_recordings_keep_their_training_and_validation_stretches(nasa, tmp_path):
    mission = convert_nasa(
        nasa,
        tmp_path / "mission",
        layout="kaggle",
        arrange="sequential",
        recordings="test",
        test_share=0.5,
        val_share=0.2,
    )
    record = json.loads((mission / "mission.json").read_text())
    dev, _ = development_source(nasa, mission, tmp_path / "dev")
    for chan, _, _, _, _ in CHANNELS:
        rows = record["channels"][chan]
        n = sum(b - a + 1 for a, b in filter(None, (rows["train_rows"], rows["val_rows"])))
        assert rows["test_rows"][0] >= record["split_row"] > rows["train_rows"][1]
        kept = np.load(dev / "test" / f"{chan}.npy")
        np.testing.assert_array_equal(kept, np.load(nasa / "test" / f"{chan}.npy")[:n])
        assert listing(dev)[chan][2] == n


def test_refuses_other_sources_and_used_folders_by_name(nasa, tmp_path):
    mission = convert_nasa(nasa, tmp_path / "mission", layout="esa", test_share=0.5)
    other = tmp_path / "other"
    (other / "train").mkdir(parents=True)
    (other / "test").mkdir()
    np.save(other / "train" / "Z-9.npy", np.zeros((5, 1)))
    np.save(other / "test" / "Z-9.npy", np.zeros((5, 1)))
    pd.DataFrame(
        [("Z-9", "MSL", "[]", "[]", 5)],
        columns=["chan_id", "spacecraft", "anomaly_sequences", "class", "num_values"],
    ).to_csv(other / "labeled_anomalies.csv", index=False)
    with pytest.raises(ESAInputError, match="A-1"):
        development_source(other, mission, tmp_path / "dev")
    assert not (tmp_path / "dev").exists()

    used = tmp_path / "used"
    used.mkdir()
    (used / "mine.txt").write_text("keep me")
    with pytest.raises(ESAInputError, match="not empty"):
        development_source(nasa, mission, used)
    assert (used / "mine.txt").read_text() == "keep me"

    with pytest.raises(ESAInputError, match="mission.json"):
        development_source(nasa, tmp_path / "no_mission", tmp_path / "dev")
    record = json.loads((mission / "mission.json").read_text())
    record["source"]["format"] = "esa_adb"
    (tmp_path / "esa").mkdir()
    (tmp_path / "esa" / "mission.json").write_text(json.dumps(record))
    with pytest.raises(ESAInputError, match="source.format"):
        development_source(nasa, tmp_path / "esa", tmp_path / "dev")

    record["source"]["format"] = "nasa_telemanom"
    record["channels"]["../../A-1"] = record["channels"].pop("A-1")
    (tmp_path / "esa" / "mission.json").write_text(json.dumps(record))
    with pytest.raises(ESAInputError, match=r"\.\./\.\./A-1.*not a channel name"):
        development_source(nasa, tmp_path / "esa", tmp_path / "dev")

    shorter = tmp_path / "shorter"
    shutil.copytree(nasa, shorter)
    np.save(shorter / "test" / "C-3.npy", np.load(nasa / "test" / "C-3.npy")[:59])
    with pytest.raises(ESAInputError, match="C-3 recording has 60 rows, this folder's 59"):
        development_source(shorter, mission, tmp_path / "dev")
    assert not (tmp_path / "dev").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TMP_PREFIX)]


def test_command_line(nasa, tmp_path, capsys):
    mission = convert_nasa(nasa, tmp_path / "mission", layout="esa", test_share=0.5)
    args = ["--source", str(nasa), "--mission", str(mission), "--out", str(tmp_path / "dev")]
    assert main(args) == 0
    assert "python -m esa_lightning.data.convert --source" in capsys.readouterr().out
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "not empty" in err and len(err.splitlines()) == 1


def test_files_follow_the_umask(nasa, tmp_path):
    mission = convert_nasa(nasa, tmp_path / "mission", layout="esa", test_share=0.5)
    before = os.umask(0o027)
    try:
        dev, _ = development_source(nasa, mission, tmp_path / "dev")
    finally:
        os.umask(before)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [dev, *dev.rglob("*")]}
    assert modes.pop("dev") == modes.pop("train") == modes.pop("test") == 0o750
    assert set(modes.values()) == {0o640}
