"""The ``frozen`` rule inside a trained channel ensemble (its default since round F3): fitted
after the heads and the peaks, its alarms added to the model's and named on the stuck target
channel, equal in chunks, kept by the artifact and the state_dict, reached by config; without it
nothing changes."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from esa_lightning.artifact import Detector, mission_schema
from esa_lightning.errors import ESAInputError
from esa_lightning.models.channel_ensemble.model import LitChannelEnsemble
from tests.conftest import compose_config
from tests.helpers import (
    StuckEnsembleCase,
    frozen_alarms_whole_chunked_and_loaded,
    tiny_datamodule,
    trainer,
)

pytestmark = pytest.mark.usefixtures("one_thread")

POST = {
    "meta_heads": {"kind": "meta_heads"},
    "event_head": {"kind": "event_head"},
    "alarm": {"kind": "peaks", "height": 0.5, "buffer": 100},
}
CASE = StuckEnsembleCase()  # a limit of 450 rows, longer than the ensemble's own context
FROZEN, LIMIT, STUCK, TARGET, OTHER = CASE.rule, CASE.limit, CASE.stuck, CASE.target, CASE.other


@pytest.fixture(scope="module")
def trained():
    """The ensemble trained with the rule on the tiny mission, and that mission with a target
    and a non-target channel held on ``STUCK`` rows of its test range."""
    m = CASE.mission()
    dm = tiny_datamodule(m)
    model = LitChannelEnsemble(**dm.dims, hidden=8, lr=2e-2, novelty=True,
                               post_processing={**POST, "frozen": FROZEN})
    trainer(max_epochs=2).fit(model, dm)
    return model, CASE.held(m)


def without_rule(model: LitChannelEnsemble) -> LitChannelEnsemble:
    """The same trained ensemble built without the rule."""
    off = LitChannelEnsemble(**{**model.hparams, "post_processing": POST})
    state = {k: v for k, v in model.state_dict().items() if ".frozen." not in k}
    off.load_state_dict(state)
    return off


def test_the_rule_is_fitted_last_on_the_target_channels(trained):
    model, _ = trained
    assert list(model.post_rules)[-1] == "frozen"
    rule = model.frozen_rule
    assert rule is not None and tuple(rule.limit.shape) == (1, 4)
    limits = rule.limit[0].tolist()
    # noisy sines never repeat: every target channel's limit is factor x min_run; the
    # non-target channel is not watched
    assert limits[OTHER] == 0
    assert all(limits[c] == LIMIT for c in range(4) if c != OTHER)
    assert int(rule.fit_rows[0]) == 10_000  # training + validation rows
    assert model.context_rows == max(without_rule(model).context_rows, LIMIT + 1) == LIMIT + 1


def test_a_stuck_target_channel_alarms_and_is_named(trained):
    model, stuck = trained
    out, off = model.score_rows(stuck), without_rule(model).score_rows(stuck)
    rows = np.arange(len(out.alarm))
    held = (rows > STUCK[0] + LIMIT) & (rows < STUCK[1])
    assert out.alarm[held].all() and out.channel_alarm[held, TARGET].all()
    # the held non-target channel is named only where the model itself names it
    np.testing.assert_array_equal(out.channel_alarm[:, OTHER], off.channel_alarm[:, OTHER])
    # elsewhere the alarms are the model's own; the scores are the model's own everywhere
    np.testing.assert_array_equal(out.alarm[~held], off.alarm[~held])
    np.testing.assert_array_equal(out.channel_alarm[~held], off.channel_alarm[~held])
    np.testing.assert_array_equal(out.score, off.score)
    np.testing.assert_array_equal(out.channel_scores, off.channel_scores)
    assert not off.channel_alarm[held, TARGET].all()  # the rule, not the model, named them


def test_without_the_rule_scores_are_as_before(trained):
    """A model built without the rule has no such rule, the context of the ensemble alone, and
    scores an unstuck mission as the model with the rule does (nothing there is stuck)."""
    model, stuck = trained
    off = without_rule(model)
    assert off.frozen_rule is None and "frozen" not in off.post_rules
    unstuck = CASE.mission()
    on, plain = model.score_rows(unstuck), off.score_rows(unstuck)
    np.testing.assert_array_equal(on.alarm, plain.alarm)
    np.testing.assert_array_equal(on.channel_alarm, plain.channel_alarm)


def test_chunks_the_artifact_and_the_state_dict_give_the_same_alarms(trained, tmp_path):
    model, stuck = trained
    whole, _ = frozen_alarms_whole_chunked_and_loaded(model, "ensemble", stuck, 160,
                                                      tmp_path / "det")
    assert whole.channel_alarm[STUCK[1] - 1, TARGET]
    fresh = LitChannelEnsemble(**model.hparams)
    fresh.load_state_dict(model.state_dict())  # what a checkpoint restores
    np.testing.assert_array_equal(fresh.score_rows(stuck).channel_alarm, whole.channel_alarm)


def test_an_edited_limit_is_refused_at_load(trained, tmp_path):
    model, stuck = trained
    edited = copy.deepcopy(model)
    edited.post_rules["frozen"].limit[0, TARGET] = 3  # below factor x min_run: never fitted
    folder = Detector({"ensemble": edited}, mission_schema(stuck)).save(tmp_path / "det")
    with pytest.raises(ESAInputError, match="limit"):
        Detector.load(folder)


def test_the_rule_is_on_by_default_off_in_esa_full_and_its_settings_reach_it(
    small_mission_dir, tmp_path
):
    """``experiment=channel_ensemble`` has the rule by default (round F3), as the GRU does;
    ``esa_full``'s ensemble component has none (the round measured the ensemble alone);
    ``=null`` removes it and its settings reach it from the command line."""
    from hydra.utils import instantiate

    def rules(*overrides, component=None):
        cfg = compose_config("train", [f"data.root={small_mission_dir}", *overrides],
                             tmp_path / str(len(list(tmp_path.iterdir()))))
        spec = cfg.model if component is None else cfg.components[component].model
        model = instantiate(spec, n_channels=3, n_features=44, group_index=[0, 1, 2],
                            _convert_="all")
        return model.post_rules

    default = rules("experiment=channel_ensemble")["frozen"]
    assert (default.factor, default.min_run, default.max_run, default.watch) == (
        1.5, 10, 10_000, "sending")
    assert "frozen" not in rules("experiment=esa_full", component="channel_ensemble")
    assert "frozen" not in rules("experiment=channel_ensemble", "model.post_processing.frozen=null")
    on = rules("experiment=channel_ensemble",
               "model.post_processing.frozen={kind:frozen,factor:2.0,min_run:10,"
               "max_run:10000,watch:all}")
    rule = on["frozen"]
    assert list(on)[-1] == "frozen" and tuple(rule.limit.shape) == (1, 3)
    assert (rule.factor, rule.min_run, rule.max_run, rule.watch) == (2.0, 10, 10_000, "all")
