"""Every detector family honours the contract (``models/base.py``), end to end.

Parametrised over ``conf/model/*.yaml``, so a new family (one package + one YAML) is tested
with no edit here: a tiny fit through ``train()``, its post-processing fitted by the model's own
callbacks, scoring, the artifact saved and loaded, chunked scoring equal to whole-range
scoring, and a resume of the finished run (``ckpt_path=last``) giving the same detector.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import yaml

from esa_lightning.artifact import Detector, allowed_classes
from esa_lightning.jobs.common import mission_from_config
from esa_lightning.jobs.train import train
from esa_lightning.models.base import DetectorModule
from esa_lightning.models.registry import detector_families
from esa_lightning.postprocessing.peaks import PeakAlarm
from esa_lightning.runtime.chunks import score_in_chunks
from tests.conftest import CONF, compose_config

MODEL_CONFIGS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
TINY = [
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=3",
    "+trainer.limit_val_batches=2",
    "trainer.enable_progress_bar=false",
    "~callbacks.progress_bar",
    "logger=none",
    "callbacks.lr_monitor=null",
    "callbacks.esa_metrics=null",
]
# a family's own knobs that make its tiny fit tiny too: the GBDT ensemble's 100 boosting
# iterations per learner took 32 s of the suite; the contract is the same with 10. The GRU's
# 64 hidden units: its post rules score every training window, 16 do so in half the time
TINY_FAMILY = {"channel_ensemble_gbdt": ["model.max_iter=10"], "gru_ae": ["model.hidden_size=16"]}


def family_of(config_name: str) -> type[DetectorModule]:
    target = yaml.safe_load((CONF / "model" / f"{config_name}.yaml").read_text())["_target_"]
    families = detector_families()
    assert target in families, f"conf/model/{config_name}.yaml: {target} is not a registered family"
    return families[target]


def test_every_registered_family_has_a_model_config_and_may_be_loaded():
    configured = {family_of(name) for name in MODEL_CONFIGS}
    assert set(detector_families().values()) == configured
    assert set(detector_families()) <= allowed_classes()


@pytest.fixture(scope="module")
def fitted(small_mission_dir, tmp_path_factory):
    runs = {}

    def run(config_name: str):
        if config_name not in runs:
            out = tmp_path_factory.mktemp(f"contract_{config_name}")
            kind = family_of(config_name).datamodule_kind
            overrides = [
                f"model={config_name}",
                f"datamodule={kind}",
                *TINY,
                *TINY_FAMILY.get(config_name, []),
            ]
            cfg = compose_config("train", [*overrides, f"data.root={small_mission_dir}"], out)
            train(cfg)
            runs[config_name] = (cfg, out)
        return runs[config_name]

    return run


@pytest.mark.parametrize("config_name", MODEL_CONFIGS)
def test_fit_post_process_score_save_load_and_chunked_scoring(config_name, fitted):
    cfg, out = fitted(config_name)
    assert (out / "metrics.json").is_file()
    detector = Detector.load(out / "detector")
    (model,) = detector.components.values()
    assert isinstance(model, family_of(config_name))
    assert model.is_calibrated  # its post rules were fitted by its own callbacks
    assert isinstance(model.context_rows, int) and model.context_rows >= 0
    assert isinstance(model.alignment_rows, int) and model.alignment_rows >= 1

    part = mission_from_config(cfg.data).test()
    whole = detector.score_rows(part)
    assert whole.score.shape == (len(part.values),)
    assert whole.alarm.dtype == np.uint8 and set(np.unique(whole.alarm)) <= {0, 1}
    chunk = max(model.alignment_rows, len(part.values) // 3)
    chunked = score_in_chunks(detector, part, chunk_rows=chunk)
    np.testing.assert_array_equal(whole.score, chunked.score)
    np.testing.assert_array_equal(whole.alarm, chunked.alarm)
    np.testing.assert_array_equal(whole.channel_alarm, chunked.channel_alarm)


@pytest.mark.parametrize("config_name", MODEL_CONFIGS)
def test_every_family_alarms_per_channel_on_its_highest_channels(config_name, fitted):
    """An alarmed row alarms channels, and none scoring below a channel left quiet on that row
    (among the channels its score is made of: a GRU's ``channel_norm`` targets); a quiet row
    alarms none; so the run has the channel-aware metrics (the synthetic mission's
    labels name channels). A family with ``top_channels`` alarms exactly that many."""
    cfg, out = fitted(config_name)
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["test/channel_F_0.50"] <= 1.0
    assert 0.0 <= metrics["test/subsystem_F_0.50"] <= 1.0
    detector = Detector.load(out / "detector")
    (model,) = detector.components.values()
    part = mission_from_config(cfg.data).test()
    rs = detector.score_rows(part)
    rule = getattr(model, "alarm_rule", None)
    if not rs.alarm.any() and isinstance(rule, PeakAlarm) and rule.fit_height:
        # the tiny GBDT ensemble (10 boosting iterations) alarms no row: its fitted peak height
        # is its highest score; half of it gives alarms to check
        rule.fitted_height.fill_(float(rs.score.max()) / 2)
        rs = detector.score_rows(part)
    assert rs.channel_alarm is not None and rs.channel_scores is not None
    assert rs.channel_alarm.shape == rs.channel_scores.shape == part.values.shape
    alarmed = rs.alarm.astype(bool)
    assert not rs.channel_alarm[~alarmed].any()
    assert alarmed.any(), "the tiny fit alarms no test row: nothing to check"
    # the candidates: the channels the row score is made of (a GRU's channel_norm on targets)
    norm = getattr(model, "channel_norm", None)
    scored = np.ones(part.values.shape[1], bool) if norm is None else norm.scored_mask()
    assert not rs.channel_alarm[:, ~scored].any()
    on = rs.channel_alarm[alarmed][:, scored].astype(bool)
    scores = np.nan_to_num(rs.channel_scores[alarmed][:, scored], nan=-np.inf)
    assert on.any(axis=1).all()
    lowest_on = np.where(on, scores, np.inf).min(axis=1)
    highest_off = np.where(on, -np.inf, scores).max(axis=1)
    assert (lowest_on >= highest_off).all()
    k = model.hparams.get("top_channels")
    if k is not None:
        expected = min(k, int(scored.sum()))
        np.testing.assert_array_equal(rs.channel_alarm[alarmed].sum(axis=1), expected)


@pytest.mark.parametrize("config_name", MODEL_CONFIGS)
def test_a_model_refuses_a_datamodule_it_does_not_train_on(
    config_name, small_mission_dir, tmp_path
):
    from esa_lightning.errors import ESAInputError

    kind = family_of(config_name).datamodule_kind
    other = next(k for k in ("windows", "segments", "rows") if k != kind)
    cfg = compose_config(
        "train",
        [f"model={config_name}", f"datamodule={other}", *TINY, f"data.root={small_mission_dir}"],
        tmp_path,
    )
    with pytest.raises(ESAInputError, match=f"trains on datamodule={kind}"):
        train(cfg)


@pytest.mark.parametrize("config_name", MODEL_CONFIGS)
def test_resuming_a_finished_fit_gives_the_same_detector(config_name, fitted, tmp_path):
    """``ckpt_path=last`` after the fit finished: Lightning restores the checkpoint and skips
    training, the post rules are fitted again. A family whose fitted state is not all tensors
    (a sklearn estimator) must carry it in its checkpoints too (``on_save_checkpoint``), not
    only in the artifact (``save_extra``): without, the resumed run fitted its threshold on a
    model that had lost that state and wrote a detector that could not be loaded."""
    cfg, out = fitted(config_name)
    run = tmp_path / "run"
    shutil.copytree(out, run)
    shutil.rmtree(run / "detector")
    (run / "metrics.json").unlink()
    overrides = [
        f"model={config_name}",
        f"datamodule={family_of(config_name).datamodule_kind}",
        *TINY,
        *TINY_FAMILY.get(config_name, []),
        f"data.root={cfg.data.root}",
        "test=false",
        "ckpt_path=last",
    ]
    train(compose_config("train", overrides, run))
    part = mission_from_config(cfg.data).test()
    before = Detector.load(out / "detector").score_rows(part)
    after = Detector.load(run / "detector").score_rows(part)
    np.testing.assert_array_equal(before.score, after.score)
    np.testing.assert_array_equal(before.alarm, after.alarm)
    np.testing.assert_array_equal(before.channel_alarm, after.channel_alarm)
