"""A Lightning checkpoint holds each post rule's tensors once, in its model's ``state_dict``
(``post_rules.<rule>.<tensor>``). A rule is a Lightning callback too, and Lightning kept a second
copy of them as the callback's state (``checkpoint["callbacks"][<rule class>]``), loaded into
the rule again on resume. A checkpoint written with that copy (the old shape) still resumes,
to the same model as one written without it."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch

from esa_lightning.runtime.checkpoints import read_checkpoint
from tests.helpers import sine_mission, small_gru, trainer

pytestmark = pytest.mark.usefixtures("one_thread")

RULES = {"threshold": {"kind": "percentile", "q": 99},
         "frozen": {"kind": "frozen", "factor": 1.5, "min_run": 10}}


def held(data: Any, name: str, tensors: set[str]) -> int:
    """How many mappings in checkpoint ``data`` hold every tensor of the rule ``name`` whose
    ``state_dict`` names are ``tensors``: under ``post_rules.<name>.`` (its model's
    ``state_dict``) or bare (a callback's state)."""
    if not isinstance(data, Mapping):
        return sum(held(v, name, tensors) for v in data) if isinstance(data, list | tuple) else 0
    keys = {str(k) for k in data}
    whole = tensors <= keys or {f"post_rules.{name}.{t}" for t in tensors} <= keys
    return int(whole) + sum(held(v, name, tensors) for v in data.values())


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> tuple[Any, Path]:
    """(a small GRU with ``RULES``, trained one epoch and its rules fitted, the checkpoint
    Lightning wrote of it after training)."""
    model, dm = small_gru(sine_mission(), RULES)
    fit = trainer(max_epochs=1)
    fit.fit(model, dm)
    assert model.is_calibrated
    path = tmp_path_factory.mktemp("ckpt") / "fitted.ckpt"
    fit.save_checkpoint(path)
    return model, path


def old_shape(model: Any, path: Path, to: Path) -> Path:
    """The checkpoint at ``path`` as Lightning wrote it before: each rule's ``state_dict``
    also under its ``state_key`` among the callbacks' states."""
    data = read_checkpoint(path)
    data.setdefault("callbacks", {}).update(
        {rule.state_key: rule.state_dict() for rule in model.post_rules.values()})
    torch.save(data, to)
    return to


def test_each_rules_tensors_appear_once_in_a_checkpoint(fitted):
    """It held them twice (the state_dict and the callback copy): ``held`` was 2."""
    model, path = fitted
    data = read_checkpoint(path)
    for name, rule in model.post_rules.items():
        assert held(data, name, set(rule.state_dict())) == 1, name
        assert rule.state_key not in data["callbacks"]
        for key, value in rule.state_dict().items():
            assert torch.equal(data["state_dict"][f"post_rules.{name}.{key}"], value)


def resume(path: Path, epochs: int) -> Any:
    """A new small GRU resumed from ``path`` to ``epochs`` epochs, seeded alike."""
    model, dm = small_gru(sine_mission(), RULES)
    torch.manual_seed(1)
    trainer(max_epochs=epochs).fit(model, dm, ckpt_path=path)
    return model


@pytest.mark.parametrize("epochs", [1, 2])
def test_a_checkpoint_in_the_old_shape_resumes_as_one_in_the_new(fitted, tmp_path, epochs):
    """One epoch: the fit is done and skipped, the rules are the checkpoint's fitted ones; two:
    training goes on, the rules fitted again at its end. The old shape holds the copy (``held``
    2) and gives the model that the new shape gives, tensor for tensor."""
    model, path = fitted
    old = old_shape(model, path, tmp_path / "old.ckpt")
    assert held(read_checkpoint(old), "frozen", set(model.post_rules["frozen"].state_dict())) == 2
    new_state, old_state = resume(path, epochs).state_dict(), resume(old, epochs).state_dict()
    assert new_state.keys() == old_state.keys()
    for key, value in new_state.items():
        assert torch.equal(old_state[key], value), key
    if epochs == 1:
        for key, value in model.state_dict().items():
            assert torch.equal(new_state[key], value), key


def test_an_old_shape_checkpoint_resumes_without_a_rule_the_model_leaves_out(fitted, tmp_path):
    """The old shape, resumed by a model built without its ``frozen`` rule
    (``model.post_processing.frozen=null``): the rule's callback copy was kept, and Lightning
    warned "Please add the following callbacks: ['FrozenValues']". It is dropped as the copies
    of the model's rules are; another callback's state, even one holding tensors of the same
    names, is kept for Lightning to judge (it warns naming that callback alone). The resumed
    model is the one the new shape gives."""
    model, path = fitted
    old = old_shape(model, path, tmp_path / "old.ckpt")
    data = read_checkpoint(old)
    frozen = model.post_rules["frozen"]
    assert frozen.state_key in data["callbacks"]
    data["callbacks"]["OtherCallback"] = dict(frozen.state_dict())  # not a rule's copy
    torch.save(data, old)
    kept = {"threshold": RULES["threshold"], "frozen": None}

    def resume_without_frozen(at: Path) -> tuple[Any, list[str]]:
        resumed, dm = small_gru(sine_mission(), kept)
        torch.manual_seed(1)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer(max_epochs=1).fit(resumed, dm, ckpt_path=at)
        return resumed, [str(w.message) for w in caught
                         if "Please add the following callbacks" in str(w.message)]

    new_model, new_warned = resume_without_frozen(path)
    assert new_warned == []
    old_model, old_warned = resume_without_frozen(old)
    assert len(old_warned) == 1, old_warned
    assert "OtherCallback" in old_warned[0] and frozen.state_key not in old_warned[0]
    assert "frozen" not in old_model.post_rules
    new_state, old_state = new_model.state_dict(), old_model.state_dict()
    assert new_state.keys() == old_state.keys()
    for key, value in new_state.items():
        assert torch.equal(old_state[key], value), key
