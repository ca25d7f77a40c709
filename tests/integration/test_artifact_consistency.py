"""An artifact whose fitted parts disagree with its own recorded schema (a first layer wider
than the channels and telecommands it records, a scaler or threshold of another length) is
refused when it is loaded, with one ``ESAInputError`` naming the file and the mismatch: not an
IndexError while merge.py reorders its networks, a broadcast error while scoring, or scores of
columns that are not there. Each artifact is written by ``Detector.save``, so it is otherwise
valid (every checksum matches)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from esa_lightning.artifact import Detector, mission_schema
from esa_lightning.errors import ESAInputError
from esa_lightning.models.gru_ae.model import LitGRUAttentionAE
from esa_lightning.models.zscore.model import RobustZScore
from tests.helpers import make_mission
from tests.integration.test_reliability_cli import assert_one_line_error, run_entry

# two channels and one telecommand
SCHEMA = mission_schema(make_mission(n_channels=2))


def gru(seed: int = 1, **changed) -> LitGRUAttentionAE:
    torch.manual_seed(seed)
    hp = dict(n_inputs=3, n_outputs=2, window=6, hidden_size=4, latent_dim=2,
              objective="forecast", post_processing={"threshold": {"kind": "percentile"}})
    model = LitGRUAttentionAE(**{**hp, **changed})
    model.post_rules.threshold.threshold.fill_(1.0)  # fitted: a detector that can alarm
    return model


def with_buffer(model: torch.nn.Module, key: str, value: torch.Tensor) -> torch.nn.Module:
    """``model`` with its buffer ``key`` replaced by ``value`` (of another shape)."""
    owner, _, name = key.rpartition(".")
    model.get_submodule(owner).register_buffer(name, value)
    return model


def tampered(case: str) -> Detector:
    if case == "first layer wider than channels + telecommands":
        return Detector({"gru": gru(n_inputs=4)}, SCHEMA)
    if case == "outputs other than the channels":
        return Detector({"gru": gru(n_inputs=2, n_outputs=1)}, SCHEMA)
    if case == "scaler of five columns":
        model = with_buffer(gru(), "scaler_median", torch.zeros(1, 5))
        return Detector({"gru": with_buffer(model, "scaler_iqr", torch.ones(1, 5))}, SCHEMA)
    if case == "threshold of three series":
        model = with_buffer(gru(), "post_rules.threshold.threshold", torch.ones(3))
        return Detector({"gru": model}, SCHEMA)
    if case == "z-score of three channels":
        return Detector({"zscore": RobustZScore(n_channels=3)}, SCHEMA)
    if case == "z-score threshold per channel":
        model = with_buffer(RobustZScore(n_channels=2), "threshold", torch.ones(3))
        return Detector({"zscore": model}, SCHEMA)
    raise AssertionError(case)


# the case, the file the error names and what it says
CASES = {
    "first layer wider than channels + telecommands": ("detector.json", "n_inputs = 4"),
    "outputs other than the channels": ("detector.json", "n_outputs = 1"),
    "scaler of five columns": ("weights.pt", "scaler_median: (1, 5)"),
    "threshold of three series": ("weights.pt", "post_rules.threshold.threshold: (3,)"),
    "z-score of three channels": ("detector.json", "n_channels = 3"),
    "z-score threshold per channel": ("weights.pt", "threshold: (3,)"),
}


@pytest.fixture
def saved(tmp_path):
    def save(case: str) -> Path:
        return tampered(case).save(tmp_path / "tampered")

    return save


def refused(call, folder: Path, case: str) -> str:
    part, needle = CASES[case]
    with pytest.raises(ESAInputError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    assert str(folder) in message and part in message and needle in message, message
    return message


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_artifact_disagreeing_with_its_schema_is_refused_at_load(saved, case):
    folder = saved(case)
    refused(lambda: Detector.load(folder), folder, case)


@pytest.mark.parametrize("case", [c for c in sorted(CASES) if "z-score" not in c])
def test_merge_refuses_a_source_disagreeing_with_its_schema(saved, tmp_path, case):
    """merge.py loads its sources before reading any data: the refusal names the source.
    The first source lists the channels in another order, so the second one's networks would
    be permuted (``in_first_order``): that raised IndexError or RuntimeError."""
    from omegaconf import OmegaConf

    from esa_lightning.jobs.merge import merge

    reordered = {**SCHEMA, "channels": SCHEMA["channels"][::-1]}
    good = Detector({"gru": gru(seed=2)}, reordered).save(tmp_path / "good")
    folder = saved(case)
    cfg = OmegaConf.create({"detectors": [str(good), str(folder)], "data": {},
                            "paths": {"output_dir": str(tmp_path / "out")}})
    refused(lambda: merge(cfg), folder, case)
    assert not (tmp_path / "out").exists()


def test_honest_artifacts_still_load(tmp_path):
    detector = Detector.load(Detector({"gru": gru()}, SCHEMA).save(tmp_path / "gru"))
    assert detector.components["gru"].scaler_median.shape == (1, 3)
    model = RobustZScore(n_channels=2)
    model.threshold.fill_(4.0)  # fitted: a detector that can alarm
    zscore = Detector({"zscore": model}, SCHEMA).save(tmp_path / "z")
    assert Detector.load(zscore).components["zscore"].median.shape == (2,)


def test_predict_refuses_it_in_one_line(saved, tmp_path):
    """Through the command line, as a user meets it: it used to score the data as if the
    missing input column were zero."""
    folder = saved("first layer wider than channels + telecommands")
    proc = run_entry("predict.py", [f"ckpt={folder}"], tmp_path, timeout=300)
    assert_one_line_error(proc, str(folder / "detector.json"), "n_inputs = 4")


@pytest.mark.parametrize("position", ["first", "second"])
@pytest.mark.parametrize("case", [c for c in sorted(CASES) if "z-score" not in c])
def test_merge_detectors_refuses_an_in_memory_source_disagreeing_with_its_schema(case, position):
    """The Python path: detectors built in memory are checked as ``Detector.load`` checks an
    artifact, and the refusal names the source that disagrees with its own schema. Before, the
    other source was named ('hyper-parameters differ from ...'), an IndexError or RuntimeError
    came out of the reordering, or the merge went on to its threshold."""
    from esa_lightning.jobs.merge import merge_detectors

    reordered = {**SCHEMA, "channels": SCHEMA["channels"][::-1]}
    good = Detector({"gru": gru(seed=2)}, reordered)
    detectors, sources = [good, tampered(case)], ["good-source", "tampered-source"]
    if position == "first":
        detectors, sources = detectors[::-1], sources[::-1]
    with pytest.raises(ESAInputError) as info:
        merge_detectors(detectors, sources)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("tampered-source: component 'gru': "), message
    assert CASES[case][1] in message, message


def test_merge_detectors_refuses_sources_that_disagree_with_their_schema_alike():
    """Two sources sized alike for other data than their schema records agree with each other:
    only checking each against its own schema refuses them (before, the merge was made)."""
    from esa_lightning.jobs.merge import merge_detectors

    sources = [Detector({"gru": gru(seed=s, n_inputs=4)}, SCHEMA) for s in (1, 2)]
    with pytest.raises(ESAInputError, match=r"^a: component 'gru': n_inputs = 4, but the schema"):
        merge_detectors(sources, ["a", "b"])


def test_detector_check_refuses_an_in_memory_detector_as_load_refuses_its_artifact(saved):
    """``Detector.check`` makes load's checks of a detector built in memory, naming the source
    it is given instead of the artifact's file."""
    for case in sorted(CASES):
        with pytest.raises(ESAInputError) as info:
            tampered(case).check("in memory")
        assert str(info.value).startswith("in memory: component ") and CASES[case][1] in str(
            info.value
        ), info.value
    Detector({"gru": gru()}, SCHEMA).check("honest")
    with pytest.raises(ESAInputError, match="honest: schema must be an object with channels"):
        Detector({"gru": gru()}, {"channels": SCHEMA["channels"]}).check("honest")
