import json

import numpy as np
import pytest

from esa_lightning.artifact import Detector, mission_schema
from esa_lightning.errors import ESAInputError
from esa_lightning.runtime.chunks import score_in_chunks
from tests.conftest import CONF, compose_config
from tests.helpers import fitted_zscore, make_mission, manifest_of, write_manifest


def test_save_load_gives_identical_scores(tmp_path):
    mission = make_mission()
    det = Detector({"zscore": fitted_zscore(mission)}, mission_schema(mission))
    before = det.score_rows(mission.test())
    det.save(tmp_path / "detector")
    loaded = Detector.load(tmp_path / "detector")
    after = loaded.score_rows(mission.test())
    np.testing.assert_array_equal(before.score, after.score)
    np.testing.assert_array_equal(before.alarm, after.alarm)
    assert after.alarm.sum() > 0  # the planted anomaly in the test range is found


def test_schema_mismatch_names_the_channels(tmp_path):
    mission = make_mission(n_channels=3)
    det = Detector({"zscore": fitted_zscore(mission)}, mission_schema(mission))
    det.save(tmp_path / "detector")
    other = make_mission(n_channels=2)
    with pytest.raises(ESAInputError, match="channel_3"):
        Detector.load(tmp_path / "detector").score_rows(other)


def test_artifact_refuses_classes_outside_the_allow_list(tmp_path):
    mission = make_mission()
    Detector({"z": fitted_zscore(mission)}, mission_schema(mission)).save(tmp_path / "d")
    manifest = manifest_of(tmp_path / "d")
    manifest["components"]["z"]["class"] = "os.system"
    write_manifest(tmp_path / "d", manifest)
    with pytest.raises(ESAInputError, match="not allowed") as refused:
        Detector.load(tmp_path / "d")
    # it named the class only, not the file that names it
    assert str(refused.value).startswith(f"{tmp_path / 'd' / 'detector.json'}: ")
    assert "component 'z'" in str(refused.value) and "'os.system'" in str(refused.value)


def test_artifacts_of_an_earlier_format_are_refused_with_the_command_that_retrains(tmp_path):
    from esa_lightning.artifact import FORMAT_VERSION, allowed_classes

    assert FORMAT_VERSION == 4
    assert "esa_lightning.models.zscore.model.RobustZScore" in allowed_classes()
    mission = make_mission()
    Detector({"z": fitted_zscore(mission)}, mission_schema(mission),
             info={"experiment": "smoke"}).save(tmp_path / "d")
    manifest = json.loads((tmp_path / "d" / "detector.json").read_text())
    manifest["format_version"] = 2
    (tmp_path / "d" / "detector.json").write_text(json.dumps(manifest))
    with pytest.raises(ESAInputError, match=r"format 2;.*formats 3 and 4 only.*retrain.*"
                       r"python train.py experiment=smoke"):
        Detector.load(tmp_path / "d")


def old_format_artifact(folder, experiment: str) -> None:
    """A zscore artifact in ``folder`` as format 2 wrote it, named ``experiment``."""
    mission = make_mission()
    Detector({"z": fitted_zscore(mission)}, mission_schema(mission),
             info={"experiment": experiment}).save(folder)
    manifest = json.loads((folder / "detector.json").read_text())
    manifest["format_version"] = 2
    (folder / "detector.json").write_text(json.dumps(manifest))


def retrain_hint(folder) -> str:
    with pytest.raises(ESAInputError, match="retrain it with this version") as caught:
        Detector.load(folder)
    return str(caught.value).split("retrain it with this version: ")[1]


def test_the_retrain_command_of_an_old_artifact_trains_the_same_model(tmp_path):
    """Before run folders were named after the model every run without an experiment was named
    gru_ae: the hint said ``experiment=gru_ae`` for a ``model=zscore`` detector (another model),
    and ``experiment=<name>`` for a name no experiment config has (``experiment_name=mine``)."""
    # in its run folder: the command the run recorded, without its run folder
    run = tmp_path / "run"
    old_format_artifact(run / "detector", "gru_ae")
    (run / ".hydra").mkdir()
    (run / ".hydra" / "overrides.yaml").write_text(
        "- model=zscore\n- datamodule=rows\n- data.root=/data/my mission\n"
        "- hydra.run.dir=outputs/old\n"
    )
    assert retrain_hint(run / "detector") == (
        "python train.py model=zscore datamodule=rows 'data.root=/data/my mission'"
    )
    # moved out of its run folder: the model its one component is, whatever its name
    for name in ("gru_ae", "mine"):
        old_format_artifact(tmp_path / name, name)
        hint = retrain_hint(tmp_path / name)
        assert hint == "python train.py model=zscore (with the data settings of its config.yaml)"


@pytest.mark.parametrize("config", sorted(p.stem for p in (CONF / "model").glob("*.yaml")))
def test_the_retrain_command_of_each_family_composes_its_model_and_datamodule(config, tmp_path):
    """The hint of a detector outside its run folder named ``model=NAME datamodule=KIND``, a
    datamodule the model's config now chooses itself (``model=NAME`` alone trains): it names
    the model only, and that command composes the family and the datamodule it trains on."""
    import shlex

    from hydra.utils import get_class
    from omegaconf import OmegaConf

    from esa_lightning.artifact.parts import retrain_command

    target = OmegaConf.load(CONF / "model" / f"{config}.yaml")._target_
    hint = retrain_command(tmp_path, {"components": {"x": {"class": target}},
                                      "info": {"experiment": "mine"}})
    words = shlex.split(hint.partition(" (")[0])
    assert words[:2] == ["python", "train.py"] and words[2:] == [f"model={config}"], hint
    cfg = compose_config("train", words[2:], tmp_path)
    assert cfg.model._target_ == target
    trains_on = get_class(target).datamodule_kind
    assert get_class(cfg.datamodule._target_).DATAMODULE_KIND == trains_on


def test_save_replaces_an_old_artifact_completely(tmp_path):
    mission = make_mission()
    det = Detector({"z": fitted_zscore(mission)}, mission_schema(mission))
    det.save(tmp_path / "d")
    (tmp_path / "d" / "stale.txt").write_text("old")
    det.save(tmp_path / "d")
    assert not (tmp_path / "d" / "stale.txt").exists()
    assert not any(p.name.startswith((".tmp-", ".old-")) for p in tmp_path.iterdir())


def test_chunked_scoring_equals_whole_series():
    mission = make_mission(n_rows=3000, test_start=1000)
    det = Detector({"z": fitted_zscore(mission)}, mission_schema(mission))
    whole = det.score_rows(mission.test())
    chunked = score_in_chunks(det, mission.test(), chunk_rows=333, context=10)
    np.testing.assert_array_equal(whole.score, chunked.score)
    np.testing.assert_array_equal(whole.channel_alarm, chunked.channel_alarm)


def test_top_channel_alarm_marks_the_strongest_channels_of_alarmed_rows_only():
    from esa_lightning.models.base import top_channel_alarm

    scores = np.array([[0.1, 0.9, 0.5], [0.7, 0.2, 0.3], [0.9, 0.8, 0.7]], dtype=np.float32)
    alarm = np.array([1, 1, 0], dtype=np.uint8)
    out = top_channel_alarm(alarm, scores, k=2)
    np.testing.assert_array_equal(out, [[0, 1, 1], [1, 0, 1], [0, 0, 0]])
    # only the ``scored`` channels are candidates: channel 1 is never named, a NaN one is last
    scores[0, 2] = np.nan
    scored = np.array([True, False, True])
    out = top_channel_alarm(alarm, scores, k=2, scored=scored)
    np.testing.assert_array_equal(out, [[1, 0, 1], [1, 0, 1], [0, 0, 0]])
    out = top_channel_alarm(alarm, scores, k=1, scored=scored)
    np.testing.assert_array_equal(out, [[1, 0, 0], [1, 0, 0], [0, 0, 0]])


@pytest.mark.parametrize("value", [0, -1, 2.5, True])
@pytest.mark.parametrize("family", ["gru_ae", "channel_ensemble", "channel_ensemble_gbdt"])
def test_top_channels_below_one_or_not_an_integer_is_refused_naming_the_key(family, value):
    from esa_lightning.models.channel_ensemble.gbdt import GBDTChannelEnsemble
    from esa_lightning.models.channel_ensemble.model import LitChannelEnsemble
    from esa_lightning.models.gru_ae.model import LitGRUAttentionAE

    build = {
        "gru_ae": lambda: LitGRUAttentionAE(n_inputs=2, n_outputs=2, top_channels=value),
        "channel_ensemble": lambda: LitChannelEnsemble(
            n_channels=2, n_features=4, group_index=[0, 0], top_channels=value,
            post_processing={"alarm": {"kind": "peaks"}},
        ),
        "channel_ensemble_gbdt": lambda: GBDTChannelEnsemble(
            n_channels=2, n_features=4, group_index=[0, 0], top_channels=value,
            post_processing={"alarm": {"kind": "peaks"}},
        ),
    }[family]
    with pytest.raises(ESAInputError, match="model.top_channels"):
        build()


def test_combiner_loads_artifacts_written_before_top_channels(tmp_path):
    """Detectors saved before ``top_channels`` existed failed with a KeyError."""
    from esa_lightning.runtime.combiner import HybridCombiner

    comb = HybridCombiner(top_channels=5)
    comb.names = ["a"]
    comb.mean, comb.std, comb.coef = np.zeros(5), np.ones(5), np.ones(5)
    comb.save(tmp_path)
    old = json.loads((tmp_path / "combiner.json").read_text())
    del old["top_channels"]
    (tmp_path / "combiner.json").write_text(json.dumps(old))
    assert HybridCombiner.load(tmp_path).top_channels == 3
