"""Resuming (``ckpt_path=last``) on other data than the checkpoint was trained on."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.conftest import TrainedRun, compose_config


@pytest.fixture(scope="module")
def two_missions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two missions of the same channels and shapes, under different names."""
    from esa_lightning.data.readers.synthetic import generate_mission

    root = tmp_path_factory.mktemp("missions")
    a, b = root / "mission_a", root / "mission_b"
    generate_mission(a, channels=4, groups=2, days=8, seed=3)
    generate_mission(b, channels=4, groups=2, days=8, seed=4)
    return a, b


def overrides(mission: Path) -> list[str]:
    return ["experiment=smoke", f"data.root={mission}", "data.val_days=2", "test=false",
            "trainer.enable_progress_bar=false"]


def ensemble_run(mission: Path) -> list[str]:
    return ["experiment=channel_ensemble", f"data.root={mission}", "data.val_days=2",
            "test=false", "trainer.enable_progress_bar=false", "logger=none",
            "trainer.max_epochs=1"]


def trained_once(tmp_path_factory: pytest.TempPathFactory, run: list[str]) -> TrainedRun:
    """``run`` trained once for the module; each test resumes from a fresh copy of it."""
    from esa_lightning.jobs.train import train

    folder = tmp_path_factory.mktemp("trained") / "run"
    train(compose_config("train", run, folder))
    return TrainedRun(folder).keep()


@pytest.fixture(scope="module")
def smoke_on_a(two_missions, tmp_path_factory) -> TrainedRun:
    """``overrides(mission_a)`` trained: the first run of the smoke resumes below."""
    return trained_once(tmp_path_factory, overrides(two_missions[0]))


@pytest.fixture(scope="module")
def ensemble_on_a(two_missions, tmp_path_factory) -> TrainedRun:
    """``ensemble_run(mission_a)`` trained with the default rules."""
    return trained_once(tmp_path_factory, ensemble_run(two_missions[0]))


@pytest.fixture(scope="module")
def ensemble_on_a_without_frozen(two_missions, tmp_path_factory) -> TrainedRun:
    """``ensemble_run(mission_a)`` trained with ``model.post_processing.frozen=null``."""
    return trained_once(tmp_path_factory,
                        [*ensemble_run(two_missions[0]), "model.post_processing.frozen=null"])


def test_resuming_on_another_mission_is_refused_naming_both(two_missions, smoke_on_a):
    """The tensors of a mission of the same channel count fit, so training went on, silently,
    with the first mission's fitted statistics on the second mission's rows."""
    from esa_lightning.errors import ESAInputError
    from esa_lightning.jobs.train import train

    a, b = two_missions
    tmp_path = smoke_on_a.fresh()  # overrides(a) trained there
    last = tmp_path / "checkpoints" / "smoke" / "last.ckpt"
    assert last.is_file()
    with pytest.raises(ESAInputError, match="mission_a.*mission_b") as caught:
        train(compose_config("train", [*overrides(b), "ckpt_path=last"], tmp_path))
    assert str(last) in str(caught.value)
    # the same mission resumes
    assert train(compose_config("train", [*overrides(a), "ckpt_path=last"], tmp_path)) is not None


def test_resuming_with_fewer_channels_names_them_not_the_tensor_shapes(two_missions, smoke_on_a):
    """``data.channels=`` a subset on resume was refused by the tensor shapes ("the checkpoint
    does not fit the configured model (... e.g. model.hidden_size?): median is (1, 4), the
    model's (1, 2)"), not by the channels the checkpoint records."""
    from esa_lightning.errors import ESAInputError
    from esa_lightning.jobs.train import train

    a, _ = two_missions
    tmp_path = smoke_on_a.fresh()  # overrides(a) trained there
    fewer = [*overrides(a), "data.channels=[channel_1,channel_2]", "ckpt_path=last"]
    with pytest.raises(ESAInputError, match="data.channels") as caught:
        train(compose_config("train", fewer, tmp_path))
    assert "channels missing ['channel_3', 'channel_4']" in str(caught.value)


def test_a_checkpoint_path_for_several_components_is_refused_before_any_training(
    two_missions, tmp_path
):
    """esa_full with ``ckpt_path=<a file>``: the first component resumed from it, trained, then
    the second was handed the same file and failed with "does not fit the configured model"."""
    from esa_lightning.errors import ESAInputError
    from esa_lightning.jobs.train import train

    a, _ = two_missions
    ckpt = tmp_path / "gru_ae.ckpt"
    ckpt.write_bytes(b"not read: refused before any component is fitted")
    cfg = compose_config("train", ["experiment=esa_full", f"data.root={a}", "data.val_days=2",
                                   f"ckpt_path={ckpt}"], tmp_path / "run")
    with pytest.raises(ESAInputError, match="ckpt_path=last") as caught:
        train(cfg)
    assert "gru_ae" in str(caught.value) and "channel_ensemble" in str(caught.value)
    assert not (tmp_path / "run" / "checkpoints").exists()  # nothing was trained


@pytest.mark.parametrize(
    ("channels", "match"),
    [
        (["B-1", "A-1", "C-1"], r"'nasa' \(3 channels\).*'nasa' \(3 channels\); the same "
                                r"channels in another order: .*data\.channels"),
        (["A-1", "B-1", "D-1"], r"channels missing \['C-1'\], extra \['D-1'\]"),
    ],
)
def test_resuming_on_other_channels_of_the_mission_says_how_they_differ(channels, match):
    """A NASA run resumed with data.channels reordered or swapped was refused as 'trained on
    mission 'nasa' (3 channels), this run reads 'nasa' (3 channels)': no difference named."""
    from types import SimpleNamespace

    from esa_lightning.errors import ESAInputError
    from esa_lightning.runtime.checkpoints import check_same_data

    stored = {"esa_lightning_data": {"mission": "nasa", "channels": ["A-1", "B-1", "C-1"]}}
    with pytest.raises(ESAInputError, match=match):
        check_same_data(stored, SimpleNamespace(name="nasa", channel_names=channels), "last.ckpt")
    check_same_data(stored, SimpleNamespace(name="nasa", channel_names=["A-1", "B-1", "C-1"]),
                    "last.ckpt")


@pytest.mark.parametrize("changed", ["data.val_days=3", "data.period=60s"])
def test_resuming_on_another_split_or_grid_of_the_mission_is_refused(two_missions, smoke_on_a,
                                                                     changed):
    """``ckpt_path=last`` with another ``data.val_days`` or ``data.period`` resumed silently:
    the checkpoint recorded only the mission's name and channels, so training went on with
    other training rows (or on another grid) and the detector recorded settings its first
    epochs never saw."""
    from esa_lightning.errors import ESAInputError
    from esa_lightning.jobs.train import train

    a, _ = two_missions
    tmp_path = smoke_on_a.fresh()  # overrides(a) trained there
    with pytest.raises(ESAInputError, match="data.val_days") as caught:
        train(compose_config("train", [*overrides(a), changed, "ckpt_path=last"], tmp_path))
    assert str(tmp_path / "checkpoints" / "smoke" / "last.ckpt") in str(caught.value)
    # a setting that leaves the training and validation rows alone resumes
    assert train(compose_config("train", [*overrides(a), "chunk_rows=1000", "ckpt_path=last"],
                                tmp_path)) is not None


@pytest.mark.parametrize("epochs", [1, 2])
def test_a_channel_ensemble_resumed_with_a_rule_it_was_trained_without_fits_it(
    two_missions, ensemble_on_a_without_frozen, caplog, epochs
):
    """A channel_ensemble run trained with ``model.post_processing.frozen=null`` (or before the
    stuck-channel rule became its default) resumed with today's default was refused, naming
    ``model.post_processing.frozen=null``. The rule is fitted after training, as in a new run:
    where the resumed run trains on (``epochs=2``) and where it had finished (``epochs=1``:
    Lightning skips training, the best epoch is restored from the checkpoint written without
    the rule, then the rules are fitted)."""
    from esa_lightning.artifact import Detector
    from esa_lightning.jobs.train import train

    a, _ = two_missions
    run = ensemble_run(a)
    tmp_path = ensemble_on_a_without_frozen.fresh()  # run, frozen=null, trained there
    before = Detector.load(tmp_path / "detector").components["channel_ensemble"]
    assert "frozen" not in before.post_rules
    with caplog.at_level(logging.INFO, logger="esa_lightning"):
        resume = [*run, f"trainer.max_epochs={epochs}", "ckpt_path=last"]
        assert train(compose_config("train", resume, tmp_path)) is not None
    assert "trained without the post-processing rule frozen" in caplog.text
    after = Detector.load(tmp_path / "detector").components["channel_ensemble"]
    assert after.post_rules["frozen"].is_fitted


def test_a_channel_ensemble_resumed_from_an_earlier_version_of_a_rule_fits_it(
    two_missions, ensemble_on_a, caplog
):
    """The checkpoints written by a stuck-channel rule without today's ``fit_rows`` tensor
    (in the state_dict and in Lightning's callback copy of the rule, which checkpoints held
    then): refused ("no post_rules.frozen.fit_rows"). Lightning's own resume now goes through,
    the rule is fitted at the end as in a new run, with one info line."""
    import torch

    from esa_lightning.artifact import Detector
    from esa_lightning.jobs.train import train

    a, _ = two_missions
    run = ensemble_run(a)
    tmp_path = ensemble_on_a.fresh()  # run trained there
    paths = list((tmp_path / "checkpoints" / "channel_ensemble").glob("*.ckpt"))
    for path in paths:
        data = torch.load(path, weights_only=False)
        del data["state_dict"]["post_rules.frozen.fit_rows"]
        prefix = "post_rules.frozen."
        copy = {k[len(prefix):]: v for k, v in data["state_dict"].items() if k.startswith(prefix)}
        assert "FrozenValues" not in data["callbacks"]  # the rule's tensors held once
        data["callbacks"]["FrozenValues"] = copy  # the old shape: Lightning's copy, without it
        torch.save(data, path)
    assert paths
    with caplog.at_level(logging.INFO, logger="esa_lightning"):
        resume = [*run, "trainer.max_epochs=2", "ckpt_path=last"]
        assert train(compose_config("train", resume, tmp_path)) is not None
    lines = [r.getMessage() for r in caplog.records if "post_rules.frozen.fit_rows" in
             r.getMessage()]
    assert len(lines) == 1 and "fitted at the end of this run" in lines[0], lines
    after = Detector.load(tmp_path / "detector").components["channel_ensemble"]
    assert after.post_rules["frozen"].is_fitted and int(after.post_rules["frozen"].fit_rows[0]) > 0


def test_a_channel_ensemble_resumed_from_a_checkpoint_without_its_row_records(
    two_missions, ensemble_on_a
):
    """Checkpoints written before the model's row records (``train_rows``, ``feature_rows``):
    refused ("no train_rows; no feature_rows"), though Lightning's load takes them. Now resumed,
    and the detector records the rows of this run's data (its ``setup``)."""
    import torch

    from esa_lightning.artifact import Detector
    from esa_lightning.jobs.train import train

    a, _ = two_missions
    run = ensemble_run(a)
    tmp_path = ensemble_on_a.fresh()  # run trained there
    recorded = Detector.load(tmp_path / "detector").components["channel_ensemble"]
    for path in (tmp_path / "checkpoints" / "channel_ensemble").glob("*.ckpt"):
        data = torch.load(path, weights_only=False)
        del data["state_dict"]["train_rows"], data["state_dict"]["feature_rows"]
        torch.save(data, path)
    resume = [*run, "trainer.max_epochs=2", "ckpt_path=last"]
    assert train(compose_config("train", resume, tmp_path)) is not None
    after = Detector.load(tmp_path / "detector").components["channel_ensemble"]
    assert int(after.train_rows.max()) > 0
    assert torch.equal(after.train_rows, recorded.train_rows)
    assert torch.equal(after.feature_rows, recorded.feature_rows)
