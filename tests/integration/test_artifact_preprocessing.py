"""The preprocessing an artifact records for ``Detector.predict(df)`` (``schema.preprocessing``
in detector.json, whose checksum a hostile file can compute again after an edit) is checked
when the artifact is loaded. A channel table that is no list of rows with a ``Channel`` name,
that lists a channel twice or one the detector does not have, or flags that are not
true/false, was met only by ``predict(df)``, as a pandas KeyError or ValueError naming no file
(or silently taken: a channel named 5 was scored as unlisted, a Target of "no" as true)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
import pytest

from esa_lightning.api import Detector
from esa_lightning.data.readers.esa_csv import read_esa_csv
from esa_lightning.errors import ESAInputError
from tests.helpers import manifest_of, write_esa_csv, write_manifest
from tests.integration.test_python_api import zscore_detector


def drop_channel_keys(record: dict) -> None:
    for row in record["channel_table"]:
        row.pop("Channel")


def list_first_twice(record: dict) -> None:
    record["channel_table"].append(dict(record["channel_table"][0]))


def list_another_channel(record: dict) -> None:
    record["channel_table"].append({**record["channel_table"][0], "Channel": "channel_9"})


def set_first(key: str, value: object):
    return lambda record: record["channel_table"][0].__setitem__(key, value)


def set_record(key: str, value: object):
    return lambda record: record.__setitem__(key, value)


# how detector.json is edited, and what the refusal says
CASES = {
    "table not a list": (set_record("channel_table", {"channel_1": {}}),
                         "schema.preprocessing.channel_table must be a list of rows"),
    "rows not objects": (set_record("channel_table", ["channel_1", "channel_2"]),
                         "channel_table[0] is a JSON str, not an object"),
    "rows without Channel": (drop_channel_keys, "channel_table[0] has no Channel"),
    "channel listed twice": (list_first_twice,
                             "channel_table[2]: channel 'channel_1' listed twice"),
    "channel not the detector's": (list_another_channel,
                                   "channel 'channel_9' is not one of the detector's channels"),
    "channel not a name": (set_first("Channel", 5), "channel_table[0]: Channel = 5, not a name"),
    "flag not a boolean": (set_first("Target", "no"), "Target = 'no', must be true or false"),
    "unknown index": (set_record("index", "row"), "index = 'row', not one of ['time', 'id']"),
    "unreadable period": (set_record("period", "soon"), "period = 'soon'"),
    "counters not a list": (set_record("counters", "channel_1"), "counters = 'channel_1'"),
    "range not two numbers": (set_record("ranges", {"channel_1": [1]}), "ranges['channel_1']"),
}


@pytest.fixture(scope="module")
def artifact(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    """A z-score detector saved with the preprocessing training records, and a frame to score."""
    tmp = tmp_path_factory.mktemp("recorded")
    path = write_esa_csv(tmp / "mission.csv", n=60)
    zscore_detector(read_esa_csv(path, cache_dir=tmp / "cache"), tmp / "detector", 1.0)
    frame = pd.read_csv(path, parse_dates=["timestamp"]).set_index("timestamp")
    return tmp / "detector", frame


def edited(folder: Path, edit) -> Path:
    manifest = manifest_of(folder)
    edit(manifest["schema"]["preprocessing"])
    write_manifest(folder, manifest)
    return folder


@pytest.fixture
def copy_of(artifact, tmp_path):
    import shutil

    def copy() -> Path:
        return Path(shutil.copytree(artifact[0], tmp_path / "detector"))

    return copy


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_recorded_preprocessing_is_refused_at_load(copy_of, case):
    edit, needle = CASES[case]
    folder = edited(copy_of(), edit)
    with pytest.raises(ESAInputError) as info:
        Detector.load(folder)
    message = str(info.value)
    assert "\n" not in message
    assert str(folder / "detector.json") in message and needle in message, message


def test_a_table_leaving_a_channel_out_still_predicts(copy_of, artifact):
    """``data.frame`` fills a channel the table leaves out deliberately: not refused."""
    folder = edited(copy_of(), lambda record: record["channel_table"].pop())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = Detector.load(folder).predict(artifact[1])
    assert len(result.rows) == len(artifact[1])
    assert list(result.mission.channels["Channel"]) == ["channel_1", "channel_2"]


def test_a_mission_built_in_python_with_numbered_groups_loads_again(tmp_path, artifact):
    """A Mission built in Python may number its groups and subsystems: the detector trained on
    it saves them as numbers, and its own artifact must load and predict again (the load check
    first refused ``Group = 1``, so such a detector could be saved but never loaded)."""
    path = write_esa_csv(tmp_path / "mission.csv", n=60)
    mission = read_esa_csv(path, cache_dir=tmp_path / "cache")
    mission.channels["Group"] = list(range(1, len(mission.channels) + 1))
    mission.channels["Subsystem"] = 7
    zscore_detector(mission, tmp_path / "detector", 1.0)
    recorded = json.loads((tmp_path / "detector" / "detector.json").read_text())
    assert recorded["schema"]["preprocessing"]["channel_table"][0]["Group"] == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = Detector.load(tmp_path / "detector").predict(artifact[1])
    assert len(result.rows) == len(artifact[1])


# each form of refusal, whole: the key path from schema.preprocessing on, then what is wrong
MESSAGES = {
    "not an object": (lambda record: "hold", "schema.preprocessing must be an object, not a "
                      "JSON str"),
    "unknown index": (lambda record: {**record, "index": "row"},
                      "schema.preprocessing.index = 'row', not one of ['time', 'id']"),
    "unreadable period": (lambda record: {**record, "period": "soon"},
                          "schema.preprocessing.period = 'soon': must be a positive duration"),
    "hold without period": (lambda record: {**record, "resample": "hold", "period": None},
                            "schema.preprocessing.resample = 'hold' needs a period"),
    "counters not a list": (lambda record: {**record, "counters": 3},
                            "schema.preprocessing.counters = 3: must be a list of channel names"),
    "ranges not an object": (lambda record: {**record, "ranges": [1, 2]},
                             "schema.preprocessing.ranges must be an object: channel -> "
                             "[min, max]"),
    "range not two numbers": (lambda record: {**record, "ranges": {"channel_1": [1]}},
                              "schema.preprocessing.ranges['channel_1'] = [1]: must be"),
    "table not a list": (lambda record: {**record, "channel_table": 5},
                         "schema.preprocessing.channel_table must be a list of rows, not a "
                         "JSON int"),
    "row not an object": (lambda record: {**record, "channel_table": ["channel_1"]},
                          "schema.preprocessing.channel_table[0] is a JSON str, not an object"),
}


@pytest.mark.parametrize("case", sorted(MESSAGES))
def test_each_refusal_of_the_recorded_preprocessing_reads_as_a_key_path(copy_of, case):
    """The refusal names the key path from ``schema.preprocessing`` on: the record itself not
    being an object used to read ``schema.preprocessing.must be an object``."""
    replace, expected = MESSAGES[case]
    folder = copy_of()
    manifest = manifest_of(folder)
    schema = manifest["schema"]
    schema["preprocessing"] = replace(schema["preprocessing"])
    write_manifest(folder, manifest)
    with pytest.raises(ESAInputError) as info:
        Detector.load(folder)
    message = str(info.value)
    assert f"corrupt detector.json ({expected}" in message, message
