"""Resuming (``ckpt_path=``) from a checkpoint written without a post-processing rule the run's
model has, or with one it leaves out. Every rule is fitted after training (``on_train_end``, or
``fit_post_processing`` when a resumed run skips training), on the training and validation data,
and no rule's tensors take part in training: a rule the checkpoint lacks is fitted at the end
of the resumed run as a new run fits it, one the model lacks is not fitted. Both resume, with an
info line naming the rule; it was refused, naming ``model.post_processing.<rule>=null`` (a
``channel_ensemble`` checkpoint trained before its stuck-channel rule became the default met
that). Any other difference (a resized network, a rule's changed setting) is still refused."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf

from esa_lightning.callbacks import RestoreBestWeights
from esa_lightning.errors import ESAInputError
from esa_lightning.models.channel_ensemble.model import LitChannelEnsemble
from esa_lightning.models.gru_ae.model import LitGRUAttentionAE
from esa_lightning.runtime.checkpoints import check_resume_checkpoint
from tests.conftest import compose_config

POST = {
    "meta_heads": {"kind": "meta_heads"},
    "event_head": {"kind": "event_head"},
    "alarm": {"kind": "peaks", "height": 0.5, "buffer": 100},
}
FROZEN = {"kind": "frozen", "factor": 1.5, "min_run": 10, "max_run": 10_000, "watch": "sending"}


def ensemble(frozen: dict | None, hidden: int = 8, trained: bool = False) -> LitChannelEnsemble:
    """``trained``: its event head moved from where a new model's starts."""
    model = LitChannelEnsemble(n_channels=3, n_features=44, group_index=[0, 1, 2], hidden=hidden,
                               post_processing={**POST, "frozen": frozen})
    if trained:
        with torch.no_grad():
            model.model.event_w.add_(0.25)
    return model


def checkpoint(model: torch.nn.Module, path, drop_key: str | None = None):
    """``model`` as Lightning checkpoints it during training (its rules' tensors unfitted), with
    an optimizer state; ``drop_key``: a rule written before it existed (no key at all)."""
    hparams = dict(model.hparams)
    if drop_key:
        hparams["post_processing"] = {k: v for k, v in hparams["post_processing"].items()
                                      if k != drop_key}
    optimizer = torch.optim.Adam(model.parameters())
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": hparams,
                "optimizer_states": [optimizer.state_dict()]}, path)
    return path


def resumed(path, model: torch.nn.Module) -> dict:
    """What Lightning does with the checkpoint on resume: the model's hook, then a strict load
    (it raised "Missing key(s) in state_dict: post_rules.frozen.limit ..." without the hook)."""
    data = torch.load(path, weights_only=True)
    model.on_load_checkpoint(data)
    model.load_state_dict(data["state_dict"])
    return data


@pytest.mark.parametrize("drop_key", [None, "frozen"])
def test_a_checkpoint_without_the_rule_resumes_and_the_rule_is_fitted_later(
    tmp_path, caplog, drop_key
):
    trained = ensemble(None, trained=True)
    path = checkpoint(trained, tmp_path / "last.ckpt", drop_key)
    model = ensemble(FROZEN)
    with caplog.at_level(logging.INFO, logger="esa_lightning"):
        check_resume_checkpoint(path, model)
    lines = [r.getMessage() for r in caplog.records if "post-processing rule" in r.getMessage()]
    assert len(lines) == 1, lines
    assert str(path) in lines[0] and "trained without the post-processing rule frozen" in lines[0]
    assert "model.post_processing.frozen" in lines[0] and "fitted at the end" in lines[0]
    resumed(path, model)
    assert not model.post_rules["frozen"].is_fitted  # left to the end of training
    assert torch.equal(model.model.event_w, trained.model.event_w)  # the rest is the checkpoint's


def test_a_checkpoint_with_a_rule_the_run_leaves_out_resumes_without_it(tmp_path, caplog):
    path = checkpoint(ensemble(FROZEN), tmp_path / "last.ckpt")
    model = ensemble(None)
    with caplog.at_level(logging.INFO, logger="esa_lightning"):
        check_resume_checkpoint(path, model, settings="components.ce.model")
    message = " ".join(r.getMessage() for r in caplog.records)
    assert "trained with the post-processing rule frozen" in message
    assert "components.ce.model.post_processing.frozen" in message
    resumed(path, model)
    assert "frozen" not in model.post_rules


def test_other_tensors_that_differ_too_keep_the_general_refusal(tmp_path):
    """A rule missing beside a resized network: refused, naming the network's tensor."""
    path = checkpoint(ensemble(None, hidden=8), tmp_path / "last.ckpt")
    with pytest.raises(ESAInputError, match="does not fit the configured model") as caught:
        check_resume_checkpoint(path, ensemble(FROZEN, hidden=16))
    assert "post_rules" not in str(caught.value) and "model." in str(caught.value)


def test_a_rule_setting_changed_on_resume_is_still_refused(tmp_path):
    path = checkpoint(ensemble(FROZEN), tmp_path / "last.ckpt")
    with pytest.raises(ESAInputError, match="post_processing.frozen.factor=1.5"):
        check_resume_checkpoint(path, ensemble({**FROZEN, "factor": 3.0}))


def gru(post_processing: dict) -> LitGRUAttentionAE:
    return LitGRUAttentionAE(n_inputs=2, n_outputs=2, window=5, hidden_size=8, latent_dim=4,
                             post_processing=post_processing)


@pytest.fixture(scope="module")
def gru_rules(tmp_path_factory) -> dict:
    """gru_ae's post-processing rules as today's config composes them."""
    cfg = compose_config("train", ["model=gru_ae", "datamodule=windows"],
                         tmp_path_factory.mktemp("cfg"))
    return OmegaConf.to_container(cfg.model.post_processing, resolve=True)


@pytest.mark.parametrize("rule", ["channel_norm", "rf_gate", "frozen", "gap_close"])
def test_each_gru_rule_missing_from_the_checkpoint_resumes(tmp_path, caplog, gru_rules, rule):
    """Every optional rule of gru_ae's default (those with tensors and those without: the
    forest travels as bytes, in ``post_rules_extra``), in both directions."""
    without = {**gru_rules, rule: None}
    path = checkpoint(gru(without), tmp_path / "without.ckpt")
    model = gru(gru_rules)
    with caplog.at_level(logging.INFO, logger="esa_lightning"):
        check_resume_checkpoint(path, model)
    assert f"trained without the post-processing rule {rule} " in caplog.text
    resumed(path, model)
    back = checkpoint(gru(gru_rules), tmp_path / "with.ckpt")
    model = gru(without)
    check_resume_checkpoint(back, model)
    resumed(back, model)
    assert rule not in model.post_rules


def test_another_threshold_kind_is_still_refused(tmp_path, gru_rules):
    """The one threshold rule of another kind: a changed setting, not a rule left out."""
    path = checkpoint(gru(gru_rules), tmp_path / "last.ckpt")
    other = {**gru_rules, "threshold": {"kind": "percentile", "q": 99}}
    with pytest.raises(ESAInputError, match="post_processing.threshold.kind=f05"):
        check_resume_checkpoint(path, gru(other))


def restored_best(path):  # noqa: ANN001, ANN201
    """A channel ensemble with the stuck-channel rule after ``RestoreBestWeights`` restored the
    best epoch from ``path`` at the end of a run that took steps."""
    model = ensemble(FROZEN)
    best = SimpleNamespace(best_model_path=str(path), monitor="val/loss", best_model_score=0.1)
    trainer = SimpleNamespace(checkpoint_callback=best, global_step=1)  # it took steps
    RestoreBestWeights().on_train_end(trainer, model)
    return model


def test_the_best_epoch_restored_from_a_checkpoint_without_the_rule(tmp_path):
    """A run resumed with the rule restores its best epoch from a checkpoint written before the
    resume, without the rule: its weights restored, the rule left to be fitted (was refused:
    "the best epoch's checkpoint does not fit the model")."""
    trained = ensemble(None, trained=True)
    model = restored_best(checkpoint(trained, tmp_path / "epoch=0.ckpt"))
    assert torch.equal(model.model.event_w, trained.model.event_w)
    assert not model.post_rules["frozen"].is_fitted


def test_a_rule_renamed_on_resume_does_not_take_the_old_rules_callback_state(tmp_path):
    """A rule is a Lightning callback too: Lightning keeps a copy of its tensors under its class
    and gives it back to the run's callback of that class. The checkpoint's ``stuck`` rule
    (``watch: all``) resumed as ``frozen`` (``watch: sending``, one tensor more) is a rule left
    out and a rule added, each fitted as such; the old rule's copy raised "Missing key(s) in
    state_dict: quiet" when Lightning handed it to the new one."""
    from lightning.pytorch.trainer.call import _call_callbacks_load_state_dict

    old = LitChannelEnsemble(n_channels=3, n_features=44, group_index=[0, 1, 2], hidden=8,
                             post_processing={**POST, "stuck": {**FROZEN, "watch": "all"}})
    path = checkpoint(old, tmp_path / "last.ckpt")
    data = torch.load(path, weights_only=True)
    data["callbacks"] = {rule.state_key: rule.state_dict() for rule in old.post_rules.values()}
    assert data["callbacks"]["FrozenValues"]
    model = ensemble(FROZEN)
    check_resume_checkpoint(path, model)
    model.on_load_checkpoint(data)
    model.load_state_dict(data["state_dict"])
    rules = list(model.post_rules.values())
    _call_callbacks_load_state_dict(SimpleNamespace(callbacks=rules), data)
    assert not model.post_rules["frozen"].is_fitted


# ----------------------------------------------------- a rule that gained a tensor since
def fitted_frozen(watch: str = "sending") -> LitChannelEnsemble:
    """A trained ensemble whose stuck-channel rule is fitted (limit 0: no channel watched)."""
    model = ensemble({**FROZEN, "watch": watch}, trained=True)
    with torch.no_grad():
        model.post_rules["frozen"].limit.fill_(0)
    assert model.post_rules["frozen"].is_fitted
    return model


def older_checkpoint(model: LitChannelEnsemble, path, tensor: str):
    """``model``'s checkpoint as an earlier version of its stuck-channel rule wrote it: without
    ``post_rules.frozen.<tensor>``, in its state_dict and in Lightning's callback copy."""
    checkpoint(model, path)
    data = torch.load(path, weights_only=True)
    del data["state_dict"][f"post_rules.frozen.{tensor}"]
    rule = model.post_rules["frozen"]
    data["callbacks"] = {rule.state_key: {k: v for k, v in rule.state_dict().items()
                                          if k != tensor}}
    torch.save(data, path)
    return path


@pytest.mark.parametrize("tensor", ["quiet", "fit_rows"])
def test_a_rule_that_gained_a_tensor_since_the_checkpoint_resumes_and_is_fitted_later(
    tmp_path, caplog, tensor
):
    """The checkpoint's rule lacks one of today's rule's tensors: refused ("no
    post_rules.frozen.quiet"), though every rule is fitted at the end of the resumed run. Now one
    info line names it, and the whole rule is the model's (unfitted, not a mix of the
    checkpoint's fitted tensors and the model's new one) until it is fitted."""
    from lightning.pytorch.trainer.call import _call_callbacks_load_state_dict

    trained = fitted_frozen()
    path = older_checkpoint(trained, tmp_path / "last.ckpt", tensor)
    model = ensemble(FROZEN)
    with caplog.at_level(logging.INFO, logger="esa_lightning"):
        check_resume_checkpoint(path, model, settings="components.ce.model")
    lines = [r.getMessage() for r in caplog.records if "post-processing rule" in r.getMessage()]
    assert len(lines) == 1, lines
    assert str(path) in lines[0] and f"post_rules.frozen.{tensor}" in lines[0]
    assert "components.ce.model.post_processing.frozen" in lines[0]
    assert "fitted at the end of this run" in lines[0]
    data = resumed(path, model)
    _call_callbacks_load_state_dict(SimpleNamespace(callbacks=list(model.post_rules.values())),
                                    data)
    assert not model.post_rules["frozen"].is_fitted  # the checkpoint's limit 0 not taken
    assert torch.equal(model.model.event_w, trained.model.event_w)  # the rest is the checkpoint's


def test_a_rule_missing_a_tensor_with_a_changed_setting_is_still_refused(tmp_path):
    """``watch: all`` builds the rule without ``quiet``: resumed with ``watch: sending`` the
    checkpoint's rule lacks a tensor, but its setting changed: refused, naming the setting."""
    path = checkpoint(fitted_frozen(watch="all"), tmp_path / "last.ckpt")
    with pytest.raises(ESAInputError, match="post_processing.frozen.watch=all"):
        check_resume_checkpoint(path, ensemble(FROZEN))


def test_the_best_epoch_restored_from_a_checkpoint_whose_rule_lacks_a_tensor(tmp_path):
    """The best epoch's checkpoint, written before the resume by the earlier rule: its weights
    restored at the end of training, the rule left to be fitted (was refused: "the best epoch's
    checkpoint does not fit the model")."""
    trained = fitted_frozen()
    model = restored_best(older_checkpoint(trained, tmp_path / "epoch=0.ckpt", "quiet"))
    assert torch.equal(model.model.event_w, trained.model.event_w)
    assert not model.post_rules["frozen"].is_fitted


def test_a_detector_whose_rule_lacks_a_tensor_loads_only_as_its_load_checks_say(tmp_path):
    """Not resume: a trained artifact is used as it is, never refitted. Without the rule's
    ``quiet`` it stays refused; without its ``fit_rows`` (a row record, absent from artifacts
    written before it) it loads with the record at 0, as before."""
    import numpy as np

    from esa_lightning.artifact import Detector, mission_schema
    from tests.helpers import toy_mission
    from tests.integration.test_reliability_artifacts import reseal

    mission = toy_mission(np.zeros((100, 3), np.float32), np.zeros((100, 3), np.uint8),
                          val_start=60, test_start=80)
    for tensor, refused in (("quiet", True), ("fit_rows", False)):
        folder = tmp_path / tensor
        Detector({"ce": fitted_frozen()}, mission_schema(mission)).save(folder)
        weights = folder / "components/ce/weights.pt"
        state = torch.load(weights, weights_only=True)
        del state[f"post_rules.frozen.{tensor}"]
        torch.save(state, weights)
        reseal(folder)
        if refused:
            with pytest.raises(ESAInputError, match="(?s)do not fit the model.*frozen.quiet"):
                Detector.load(folder)
        else:
            rule = Detector.load(folder).components["ce"].post_rules["frozen"]
            assert rule.is_fitted and int(rule.fit_rows.sum()) == 0
