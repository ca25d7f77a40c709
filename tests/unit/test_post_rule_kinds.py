"""Which post-processing kinds a model takes is the model's own list, whatever was imported."""

from __future__ import annotations

import subprocess
import sys

import pytest

from esa_lightning.errors import ESAInputError
from esa_lightning.models.channel_ensemble import GBDTChannelEnsemble, LitChannelEnsemble
from tests.conftest import REPO

#: builds a GBDT channel ensemble with a forest gate, after importing `argv[1]` first
BUILD = """
import importlib, sys
importlib.import_module(sys.argv[1])
from esa_lightning.models.channel_ensemble.gbdt import GBDTChannelEnsemble
spec = {"alarm": {"kind": "peaks"}, "rf_gate": {"kind": "random_forest"}}
try:
    GBDTChannelEnsemble(2, 3, [0, 0], post_processing=spec)
    print("built")
except Exception as error:
    print(type(error).__name__, error)
"""


def build_after(module: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", BUILD, module], cwd=REPO, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_a_config_is_taken_or_refused_alike_whatever_was_imported_before():
    # the forest gate's kind was known only once the GRU model's module had been imported
    alone = build_after("esa_lightning.models.channel_ensemble.gbdt")
    assert alone == build_after("esa_lightning.models.gru_ae")


def ensemble(family: type, post_processing: dict) -> object:
    return family(2, 3, [0, 0], post_processing={"alarm": {"kind": "peaks"}, **post_processing})


@pytest.mark.parametrize(
    ("family", "kind"),
    [
        (GBDTChannelEnsemble, "random_forest"),  # needs threshold_rule and window_outputs
        (GBDTChannelEnsemble, "meta_heads"),  # refits a LitChannelEnsemble's network
        (LitChannelEnsemble, "random_forest"),
        (LitChannelEnsemble, "percentile"),
    ],
)
def test_a_rule_the_model_cannot_apply_is_refused_when_it_is_built(family, kind):
    with pytest.raises(ESAInputError) as caught:
        ensemble(family, {"extra": {"kind": kind}})
    assert caught.value.column == "model.post_processing.extra.kind"
    assert caught.value.value == kind
    assert family.__name__ in caught.value.reason and "'peaks'" in caught.value.reason


def test_the_kinds_the_model_applies_are_taken():
    heads = {"meta_heads": {"kind": "meta_heads"}, "event_head": {"kind": "event_head"}}
    assert set(ensemble(LitChannelEnsemble, heads).post_rules) == {"alarm", *heads}
    assert set(ensemble(GBDTChannelEnsemble, {}).post_rules) == {"alarm"}


@pytest.mark.parametrize(
    ("family", "kind"),
    [
        (LitChannelEnsemble, "meta_heads"),  # taken twice before, each refitting the same
        (LitChannelEnsemble, "event_head"),  # layers, their callback state under one key
        (LitChannelEnsemble, "frozen"),
        (GBDTChannelEnsemble, "frozen"),
    ],
)
def test_a_second_rule_of_a_kind_is_refused_naming_both_keys(family, kind):
    """A rule is a Lightning callback, whose checkpoint state Lightning keys by its class's
    name: two rules of one class under two keys (two meta_heads) were built and fitted, each
    refitting what the other had."""
    with pytest.raises(ESAInputError) as caught:
        ensemble(family, {"first": {"kind": kind}, "second": {"kind": kind}})
    message = str(caught.value)
    assert "model.post_processing.first" in message and f"a second {kind} rule" in message
    assert caught.value.column == "model.post_processing.second" and "\n" not in message


def test_every_family_refuses_a_second_rule_of_each_kind_it_takes():
    """Whatever the family, no config builds two rules of one class (one state key)."""
    from esa_lightning.models.registry import detector_families
    from esa_lightning.postprocessing.base import check_kinds

    checked = 0
    for family in detector_families().values():
        for rule in family.POST_RULES:
            spec = {"a": {"kind": rule.kind}, "b": {"kind": rule.kind}}
            with pytest.raises(ESAInputError, match="a second .* rule after"):
                check_kinds(spec, takes=family.POST_RULES, model=family.__name__)
            checked += 1
    assert checked >= 10
