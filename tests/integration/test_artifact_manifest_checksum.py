"""detector.json carries its own checksum (artifact format 4, ``manifest_sha256``): an edit of
its schema, a component's hyper-parameters, the combiner or ``info`` made after the artifact was
written is refused at load, with one line naming detector.json. Such an edit used to load and
score silently with other numbers: the checksums covered only the files under components/ and
combiner/. Format 3 artifacts (written before) still load, with a warning, and
``Detector.load(old).save(new)`` writes them again in format 4."""

from __future__ import annotations

import json
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from esa_lightning.artifact import Detector, mission_schema
from esa_lightning.errors import ESAInputError
from tests.helpers import fitted_zscore, make_mission
from tests.integration.test_artifact_consistency import SCHEMA, gru
from tests.integration.test_reliability_cli import assert_one_line_error, run_entry

CHANGED = "changed since the artifact was written"


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A z-score detector with a nominal reference in ``info`` and a Lightning checkpoint, and
    a small GRU."""
    root = tmp_path_factory.mktemp("checksum")
    mission = make_mission()
    n = len(mission.channel_names)
    spread = {"centre": [0.0] * n, "spread": [1.0] * n, "two_sided": True}
    calibration = {"source": "validation", "n_rows": 10, "reference_scores": [0.1, 0.5, 2.0],
                   "values": spread, "channel_scores": {**spread, "two_sided": False}}
    info = {"experiment": "smoke", "calibration": calibration}
    ckpt = root / "last.ckpt"
    ckpt.write_bytes(b"a Lightning checkpoint, never read by load")
    zscore = Detector({"zscore": fitted_zscore(mission)}, mission_schema(mission), info=info,
                      checkpoints={"zscore": ckpt})
    return {"zscore": zscore.save(root / "zscore"),
            "gru": Detector({"gru": gru()}, SCHEMA).save(root / "gru")}


@pytest.fixture
def copy_of(saved: dict[str, Path], tmp_path: Path) -> Callable[[str], Path]:
    def copy(name: str) -> Path:
        return Path(shutil.copytree(saved[name], tmp_path / name))

    return copy


def read(folder: Path) -> dict:
    return json.loads((folder / "detector.json").read_text())


def rewrite(folder: Path, manifest: dict) -> None:
    """``manifest`` written back as a person editing the file would: its checksum as it was."""
    (folder / "detector.json").write_text(json.dumps(manifest, indent=2))


def loads_silently(folder: Path) -> Detector:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return Detector.load(folder)


def hparams(name: str) -> Callable[[dict], dict]:
    return lambda m: m["components"][name]["hparams"]


EDITS = {
    "channel order reversed": ("zscore", lambda m: m["schema"]["channels"].reverse()),
    "channel renamed": ("zscore", lambda m: m["schema"]["channels"].__setitem__(0, "other")),
    "z-score hyper-parameter": ("zscore", lambda m: hparams("zscore")(m).update(min_scale=0.5)),
    "threshold setting": (
        "gru", lambda m: hparams("gru")(m)["post_processing"]["threshold"].update(q=50.0)
    ),
    "info.experiment": ("zscore", lambda m: m["info"].update(experiment="other")),
    "info.calibration": (
        "zscore", lambda m: m["info"]["calibration"]["reference_scores"].append(9.0)
    ),
    "combiner added": ("zscore", lambda m: m.update(combiner={"class": "x"})),
    "package versions": ("zscore", lambda m: m["versions"].update(torch="0.1")),
}


@pytest.mark.parametrize("case", sorted(EDITS))
def test_an_edited_manifest_is_refused_at_load(copy_of, case):
    name, edit = EDITS[case]
    folder = copy_of(name)
    manifest = read(folder)
    edit(manifest)
    rewrite(folder, manifest)
    with pytest.raises(ESAInputError) as info:
        Detector.load(folder)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{folder / 'detector.json'}: {CHANGED}"), message
    assert "restore it or retrain" in message


@pytest.mark.parametrize("checksum", [None, 5, "0" * 64])
def test_a_format_4_manifest_without_its_checksum_is_refused(copy_of, checksum):
    folder = copy_of("zscore")
    manifest = read(folder)
    assert manifest["format_version"] == 4
    if checksum is None:
        del manifest["manifest_sha256"]
    else:
        manifest["manifest_sha256"] = checksum
    rewrite(folder, manifest)
    with pytest.raises(ESAInputError, match=f"detector.json: {CHANGED}"):
        Detector.load(folder)


def test_an_unedited_artifact_loads_however_its_json_is_laid_out(copy_of):
    """The checksum covers the content, not the layout: re-indented, it still loads."""
    folder = copy_of("zscore")
    assert loads_silently(folder).info["experiment"] == "smoke"
    rewrite(folder, read(folder))
    assert loads_silently(folder).info["calibration"]["n_rows"] == 10


def format_3(folder: Path) -> Path:
    """``folder``'s artifact as format 3 wrote it: no checksum of detector.json."""
    manifest = read(folder)
    del manifest["manifest_sha256"]
    manifest["format_version"] = 3
    rewrite(folder, manifest)
    return folder


def test_a_format_3_artifact_loads_with_a_warning_and_saves_as_format_4(copy_of, tmp_path):
    old = format_3(copy_of("zscore"))
    with pytest.warns(UserWarning) as caught:
        detector = Detector.load(old)
    (warning,) = caught
    text = str(warning.message)
    assert str(old / "detector.json") in text and "format 3" in text
    assert "Detector.load(old).save(new)" in text
    assert detector.info["calibration"]["n_rows"] == 10
    new = detector.save(tmp_path / "upgraded")
    assert read(new)["format_version"] == 4 and isinstance(read(new)["manifest_sha256"], str)
    again = loads_silently(new)
    assert again.schema == detector.schema and again.info == detector.info
    ckpt = "components/zscore/lightning.ckpt"  # kept, to resume or fine-tune with Lightning
    assert (new / ckpt).read_bytes() == (old / ckpt).read_bytes()
    manifest = read(new)
    manifest["schema"]["channels"].reverse()
    rewrite(new, manifest)
    with pytest.raises(ESAInputError, match=CHANGED):
        Detector.load(new)


def test_a_format_4_artifact_relabelled_format_3_with_its_checksum_is_refused(copy_of):
    """Format 3 never wrote a checksum: one there means the format version was edited."""
    folder = copy_of("zscore")
    manifest = read(folder)
    manifest["format_version"] = 3
    rewrite(folder, manifest)
    with pytest.raises(ESAInputError, match=f"detector.json: {CHANGED}"):
        Detector.load(folder)


def test_predict_with_an_edited_manifest_is_one_line_and_exit_2(copy_of, tmp_path):
    """Through the command line, as a user meets it."""
    folder = copy_of("zscore")
    manifest = read(folder)
    manifest["schema"]["channels"].reverse()
    rewrite(folder, manifest)
    last = assert_one_line_error(
        run_entry("predict.py", [f"ckpt={folder}"], tmp_path, timeout=300)
    )
    assert last.startswith(f"error: {folder / 'detector.json'}: {CHANGED}"), last


def test_a_manifest_nested_beyond_the_parser_s_depth_is_named(copy_of):
    # json.loads raises RecursionError (no ValueError) on 100,000 nested lists: it escaped
    # read_manifest as a traceback instead of the one-line corrupt-manifest error
    folder = copy_of("zscore")
    (folder / "detector.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ESAInputError, match="corrupt detector.json") as err:
        Detector.load(folder)
    assert err.value.path == str(folder / "detector.json")
