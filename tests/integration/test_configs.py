"""Every config under conf/ composes, and every experiment instantiates what ``train()`` builds.

The lightning-hydra-template pattern, driven by what is in conf/: the options are found by glob and
the expected classes are read from the configs' ``_target_``, so a new experiment or option is
tested without editing this file. Nothing is fitted: the data options read tiny generated
missions (the real NASA MSL release for ``nasa_msl``, restricted to two channels).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import get_object, instantiate
from lightning.pytorch.callbacks import ProgressBar
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict

from esa_lightning.data import READERS
from esa_lightning.jobs.common import mission_from_config
from esa_lightning.jobs.train import component_specs, instantiate_group
from esa_lightning.models.base import DetectorModule
from esa_lightning.postprocessing.base import PostRule
from esa_lightning.settings import check_settings
from tests.conftest import CONF, REPO, compose_config
from tests.helpers import write_nasa

GROUPS = ["model", "data", "datamodule", "trainer", "callbacks", "logger", "hparams_search"]
# two real MSL channels keep the nasa_msl read fast
MSL_CHANNELS = ["T-13", "C-1"]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def compose_train(overrides: list[str], out: Path) -> DictConfig:
    """``conf/train.yaml`` with ``overrides``, paths under ``out`` (the repo root for data paths
    relative to it), and the option Hydra chose per group in ``cfg.choices``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"paths.root_dir={REPO}", *overrides],
                      return_hydra_config=True)
    GlobalHydra.instance().clear()
    choices = OmegaConf.to_container(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        cfg.experiment_name = cfg.experiment_name  # while the choices are there (compose_config)
        del cfg["hydra"]
        cfg.choices = choices
        cfg.paths.output_dir = str(out / "run")
        cfg.paths.data_dir = str(out / "datasets")
        cfg.paths.cache_dir = str(out / "cache")
    return cfg


def targets(node: Any) -> list[str]:
    """Every ``_target_`` under ``node``."""
    if isinstance(node, DictConfig):
        own = [node["_target_"]] if "_target_" in node else []
        keys = [k for k in node if k != "_target_" and not OmegaConf.is_missing(node, k)]
        return own + [t for k in keys for t in targets(node[k])]
    if isinstance(node, ListConfig):
        return [t for v in node for t in targets(v)]
    return []


def expected_class(node: DictConfig) -> type | None:
    target = get_object(node["_target_"])
    return target if isinstance(target, type) else None


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny mission in the raw ESA layout with its Kaggle (kaggle/) and CSV (csv/) copies."""
    from esa_lightning.data.readers.synthetic import generate_mission

    out = tmp_path_factory.mktemp("configs") / "mission"
    return generate_mission(out, channels=4, groups=2, days=6, seed=3, kaggle=True, csv=True)


def tiny_roots(generated: Path, tmp: Path) -> dict[str, Path]:
    """The folder of a tiny mission of each reader kind's layout (a new kind's sample goes
    here): ``generated``, its copies, or a sample of the kind's own."""
    return {
        "synthetic": generated,
        "esa": generated,
        "esa_mission1": generated,
        "kaggle": generated / "kaggle",
        "esa_csv": generated / "csv",
        "nasa": write_nasa(tmp / "nasa"),
    }


def point_data_at_tiny_mission(cfg: DictConfig, generated: Path, tmp: Path) -> None:
    """Set ``cfg.data`` (the ``data=`` option ``cfg.choices.data``) to read a tiny folder of its
    layout (``tiny_roots``); skip where the project has no generator for it and its own root is
    absent. Only the generated mission's folders take its split, counters and lightweight."""
    name = cfg.choices["data"]
    record = json.loads((generated / "mission.json").read_text())
    roots = tiny_roots(generated, tmp)
    with open_dict(cfg):
        if name in roots:
            cfg.data.root = str(roots[name])
            if not roots[name].is_relative_to(generated):  # a sample of its own: as it is
                return
            for key in ("counters", "split_date", "lightweight"):  # the generator's, not Mission1's
                if key in cfg.data:
                    cfg.data[key] = record[key]
            if "generate" in cfg.data:
                cfg.data.generate = record["generator"]
            if "val_days" in cfg.data:  # a 6-day mission
                cfg.data.val_days = 1
        elif name in READERS:  # a reader kind is always read: its sample belongs in roots
            pytest.fail(
                f"data={name}: no tiny mission of its layout; add one to tiny_roots "
                "(docs/architecture.md, Adding a data source)"
            )
        else:  # a preset of real data (nasa_msl): read where present
            if OmegaConf.is_missing(cfg.data, "root") or not Path(cfg.data.root).is_dir():
                pytest.skip(f"data={name}: {cfg.data.get('root', '???')} is not present")
            if name == "nasa_msl" and "channels" in cfg.data:
                cfg.data.channels = MSL_CHANNELS


# ------------------------------------------------------------------------------ composing
@pytest.mark.parametrize("experiment", options("experiment"))
def test_experiment_composes(experiment, tmp_path):
    cfg = compose_train([f"experiment={experiment}"], tmp_path)
    assert cfg.choices["experiment"] == experiment
    assert component_specs(cfg)
    for target in targets(cfg):
        assert get_object(target) is not None


@pytest.mark.parametrize(("group", "option"), [(g, o) for g in GROUPS for o in options(g)])
def test_group_option_composes(group, option, tmp_path):
    cfg = compose_train([f"{group}={option}"], tmp_path)
    assert cfg.choices[group] == option
    for target in targets(cfg):  # every class or function a config names can be imported
        assert get_object(target) is not None
    assert_resolves(cfg)


def assert_resolves(node: Any) -> None:
    """Every interpolation under ``node`` resolves (mandatory ``???`` values may stay unset)."""
    for key in node.keys() if isinstance(node, DictConfig) else range(len(node)):
        if OmegaConf.is_missing(node, key):
            continue
        value = node[key]
        if isinstance(value, (DictConfig, ListConfig)):
            assert_resolves(value)


@pytest.mark.parametrize("option", options("model/threshold"))
def test_threshold_option_composes_into_the_gru_model(option, tmp_path):
    """``model/threshold@model.post_processing.threshold=NAME`` swaps the whole rule node."""
    override = f"model/threshold@model.post_processing.threshold={option}"
    # the random-forest gate reads a fitted window threshold, which telemanom's rule is not
    gate = ["model.post_processing.rf_gate=null"] if option == "telemanom" else []
    cfg = compose_train(["model=gru_ae", override, *gate], tmp_path)
    model = instantiate(cfg.model, n_inputs=2, n_outputs=1, _convert_="all")
    assert type(model.threshold_rule).kind == cfg.model.post_processing.threshold.kind == option
    # the threshold comes first among the rules judging alarms (after the score normalisation)
    assert list(model.post_rules)[:2] == ["channel_norm", "threshold"]


# -------------------------------------------------------------------------- instantiating
@pytest.mark.parametrize("option", options("data"))
def test_data_option_reads_a_mission(option, generated, tmp_path):
    cfg = compose_train([f"data={option}"], tmp_path)
    point_data_at_tiny_mission(cfg, generated, tmp_path)
    mission = mission_from_config(cfg.data)
    assert mission.n_rows > 0 and len(mission.channel_names) > 0
    assert mission.train().n_rows > 0


def test_a_reader_kind_without_a_tiny_mission_fails_saying_so(generated, tmp_path, monkeypatch):
    """A new data source (docs/architecture.md: a reader in ``data.READERS`` and its
    ``conf/data`` file, ``root: ???``) was not read here: ``Path(cfg.data.root)`` raised
    omegaconf's MissingMandatoryValue (or, with a default root, the test was skipped). Its
    test now fails, naming what to add."""
    cfg = compose_train(["data=nasa"], tmp_path)  # root: ???, as a new source's would be
    with open_dict(cfg):
        cfg.choices["data"] = "new_source"
    monkeypatch.setitem(READERS, "new_source", cfg.data["_target_"])
    with pytest.raises(pytest.fail.Exception, match="data=new_source: no tiny mission"):
        point_data_at_tiny_mission(cfg, generated, tmp_path)


def test_a_sample_of_its_own_keeps_its_data_options(generated, tmp_path, monkeypatch):
    """A new reader kind's sample added to ``tiny_roots`` was given the generated mission's
    split_date, lightweight and val_days (an empty training range for its own data); only the
    generated mission's folders take them now."""
    cfg = compose_train(["data=esa_csv"], tmp_path)  # split_date, lightweight and val_days
    sample = tmp_path / "sample.csv"
    with open_dict(cfg):
        cfg.choices["data"] = "new_source"
        cfg.data.split_date = "2000-01-03"
    own = OmegaConf.to_container(cfg.data, resolve=True)
    roots = tiny_roots
    monkeypatch.setitem(globals(), "tiny_roots", lambda g, t: {**roots(g, t), "new_source": sample})
    point_data_at_tiny_mission(cfg, generated, tmp_path)
    assert OmegaConf.to_container(cfg.data, resolve=True) == {**own, "root": str(sample)}


@pytest.mark.parametrize("group", ["callbacks", "logger"])
def test_callbacks_and_logger_options_instantiate(group, tmp_path):
    for option in options(group):
        cfg = compose_train([f"{group}={option}"], tmp_path)
        objects = instantiate_group(cfg.get(group))
        nodes = [c for c in (cfg.get(group) or {}).values() if c and "_target_" in c]
        assert len(objects) == len(nodes)
        for obj, node in zip(objects, nodes, strict=True):
            cls = expected_class(node)
            assert cls is None or isinstance(obj, cls)


@pytest.mark.parametrize("option", options("trainer"))
def test_trainer_option_instantiates(option, tmp_path):
    cfg = compose_train([f"trainer={option}"], tmp_path)
    accelerator = str(cfg.trainer.get("accelerator", "auto"))
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        pytest.skip(f"trainer={option} needs a GPU")
    trainer = instantiate(cfg.trainer, logger=False)
    assert isinstance(trainer, L.Trainer)


@pytest.mark.parametrize("experiment", options("experiment"))
def test_experiment_instantiates_what_train_builds(experiment, generated, tmp_path):
    """Mission, then per component its datamodule, model, callbacks, logger and trainer, as
    ``esa_lightning.jobs.train.fit_component`` builds them, and the combiner as ``train()``
    does, without fitting."""
    cfg = compose_train([f"experiment={experiment}"], tmp_path)
    point_data_at_tiny_mission(cfg, generated, tmp_path)
    mission = mission_from_config(cfg.data)
    loggers = instantiate_group(cfg.get("logger"))
    for name, spec in component_specs(cfg).items():
        datamodule = instantiate(spec.datamodule, _partial_=True, _convert_="all")(mission=mission)
        assert isinstance(datamodule, L.LightningDataModule), name
        assert isinstance(datamodule, expected_class(spec.datamodule) or object), name
        model = instantiate(spec.model, **datamodule.dims, _convert_="all")
        assert isinstance(model, expected_class(spec.model) or object), name
        # a detector family whose post-processing is what its config lists, as its callbacks
        assert isinstance(model, DetectorModule), name
        configured = {k for k, v in (spec.model.get("post_processing") or {}).items() if v}
        assert set(model.post_rules) == configured, name
        assert all(isinstance(cb, PostRule) for cb in model.configure_callbacks()), name
        callbacks = instantiate_group(cfg.get("callbacks"))
        trainer_cfg = OmegaConf.merge(
            OmegaConf.to_container(cfg.trainer, resolve=True),
            OmegaConf.to_container(spec.get("trainer") or OmegaConf.create(), resolve=True),
        )
        if not trainer_cfg.get("enable_progress_bar", True):
            callbacks = [cb for cb in callbacks if not isinstance(cb, ProgressBar)]
        trainer = instantiate(trainer_cfg, callbacks=callbacks, logger=loggers or False)
        assert isinstance(trainer, L.Trainer), name
    if cfg.get("combiner"):
        combiner = instantiate(cfg.combiner, _convert_="all")
        assert isinstance(combiner, expected_class(cfg.combiner) or object)


def test_esa_full_learns_combiner_weights_only_from_one_label_free_event_per_weight(tmp_path):
    """With fewer labeled events in the rows no component trained on than the combiner has
    weights, it learns none (a 10-weight regression on 5 events lost to the GRU's own alarms)."""
    import numpy as np

    from esa_lightning.models.base import RowScores
    from esa_lightning.runtime.combiner_parts import component_features

    cfg = compose_config("train", ["experiment=esa_full"], tmp_path)
    row = RowScores(score=np.zeros(4, np.float32), alarm=np.zeros(4, np.uint8))
    weights = component_features(row, 1).shape[1] * len(cfg.components)
    assert weights == 10
    assert instantiate(cfg.combiner).events_needed(len(cfg.components)) == weights
    assert cfg.combiner.few_events == "label_free_alarm"
    # a third component: 15 weights, 15 events needed without setting it; a set value wins
    pca = ["+model@components.pca.model=window_pca",
           "+datamodule@components.pca.datamodule=windows"]
    for extra, needed in (([], 15), (["combiner.threshold_min_events=10"], 10)):
        cfg = compose_config("train", ["experiment=esa_full", *pca, *extra], tmp_path)
        check_settings(cfg)
        assert instantiate(cfg.combiner).events_needed(len(cfg.components)) == needed


@pytest.mark.parametrize("option", ["kaggle", "esa_csv"])
def test_the_lightweight_subset_its_error_names_can_be_given(option, generated, tmp_path):
    """`data=kaggle data.channels=lightweight` was refused with "give the list
    (data.lightweight=[...])", an override `data=kaggle` then refused: it had no such key."""
    cfg = compose_train([f"data={option}", "data.channels=lightweight",
                         "data.lightweight=[channel_2]"], tmp_path)
    assert list(cfg.data.lightweight) == ["channel_2"]
    point_data_at_tiny_mission(cfg, generated, tmp_path)  # sets the tiny mission's list
    cfg.data.lightweight = ["channel_2"]
    assert mission_from_config(cfg.data).channel_names == ["channel_2"]
