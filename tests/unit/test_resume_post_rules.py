"""Resuming (``ckpt_path=``) from a checkpoint written with or without a post-processing rule the
run's model leaves out or has: the refusal names the rule and the setting that resumes (it named
only the missing tensors and suggested ``model.hidden_size``: a ``channel_ensemble`` checkpoint
trained before its stuck-channel rule became the default met that)."""

from __future__ import annotations

import pytest
import torch

from esa_lightning.errors import ESAInputError
from esa_lightning.models.channel_ensemble.model import LitChannelEnsemble
from esa_lightning.runtime.checkpoints import check_resume_checkpoint

POST = {
    "meta_heads": {"kind": "meta_heads"},
    "event_head": {"kind": "event_head"},
    "alarm": {"kind": "peaks", "height": 0.5, "buffer": 100},
}
FROZEN = {"kind": "frozen", "factor": 1.5, "min_run": 10, "max_run": 10_000, "watch": "sending"}


def ensemble(frozen: dict | None, hidden: int = 8) -> LitChannelEnsemble:
    return LitChannelEnsemble(n_channels=3, n_features=44, group_index=[0, 1, 2], hidden=hidden,
                              post_processing={**POST, "frozen": frozen})


def checkpoint(model: LitChannelEnsemble, path, drop_key: bool = False):
    hparams = dict(model.hparams)
    if drop_key:  # written before the rule existed: no frozen key at all
        hparams["post_processing"] = dict(POST)
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": hparams}, path)
    return path


@pytest.mark.parametrize("drop_key", [False, True])
def test_a_checkpoint_without_the_rule_names_it_and_the_override(tmp_path, drop_key):
    path = checkpoint(ensemble(None), tmp_path / "last.ckpt", drop_key)
    with pytest.raises(ESAInputError) as caught:
        check_resume_checkpoint(path, ensemble(FROZEN))
    message = str(caught.value)
    assert "post-processing rule frozen" in message
    assert "model.post_processing.frozen=null" in message
    assert "hidden_size" not in message and str(path) in message


def test_a_checkpoint_with_the_rule_the_run_leaves_out_names_it(tmp_path):
    path = checkpoint(ensemble(FROZEN), tmp_path / "last.ckpt")
    with pytest.raises(ESAInputError) as caught:
        check_resume_checkpoint(path, ensemble(None), settings="components.ce.model")
    message = str(caught.value)
    assert "trained with the post-processing rule frozen" in message
    assert "components.ce.model.post_processing.frozen" in message


def test_other_tensors_that_differ_too_keep_the_general_refusal(tmp_path):
    """A rule missing beside a resized network: the general message, not the rule's alone."""
    path = checkpoint(ensemble(None, hidden=8), tmp_path / "last.ckpt")
    with pytest.raises(ESAInputError, match="does not fit the configured model") as caught:
        check_resume_checkpoint(path, ensemble(FROZEN, hidden=16))
    assert "post-processing rule" not in str(caught.value)
