"""The stuck-channel rule (``frozen``) in the tree-based channel ensemble
(``model=channel_ensemble_gbdt``), opt-in there: taken from the config, fitted after the peak
height on the target channels, its alarms added to the trees' and named on the stuck channel,
equal in chunks and after a save and a load; without it the model scores as before."""

from __future__ import annotations

import numpy as np
import pytest

from esa_lightning.models.channel_ensemble.gbdt import GBDTChannelEnsemble
from tests.conftest import compose_config
from tests.helpers import StuckEnsembleCase, frozen_alarms_whole_chunked_and_loaded, tiny_datamodule

pytestmark = pytest.mark.usefixtures("one_thread")

ALARM = {"alarm": {"kind": "peaks", "height": 0.5, "buffer": 100}}
CASE = StuckEnsembleCase()
FROZEN, LIMIT, STUCK, TARGET, OTHER = CASE.rule, CASE.limit, CASE.stuck, CASE.target, CASE.other


@pytest.fixture(scope="module")
def trained():
    """The trees fitted with the rule on the tiny mission, their rules fitted as training's end
    fits them, the same trees without the rule, and the mission with a target and a non-target
    channel held on ``STUCK`` rows of its test range."""
    m = CASE.mission()
    dm = tiny_datamodule(m)
    model = GBDTChannelEnsemble(**dm.dims, max_iter=5, n_threads=1,
                                post_processing={**ALARM, "frozen": FROZEN}).fit(dm)
    model.fit_post_processing(dm)
    off = GBDTChannelEnsemble(**dm.dims, max_iter=5, n_threads=1, post_processing=ALARM).fit(dm)
    off.fit_post_processing(dm)
    return model, off, CASE.held(m)


def test_the_rule_is_fitted_last_on_the_target_channels(trained):
    model, off, _ = trained
    assert list(model.post_rules) == ["alarm", "frozen"]
    limits = model.frozen_rule.limit[0].tolist()
    assert limits[OTHER] == 0
    assert all(limits[c] == LIMIT for c in range(4) if c != OTHER)
    assert off.frozen_rule is None
    assert model.context_rows == max(off.context_rows, LIMIT + 1) == LIMIT + 1


def test_a_stuck_target_channel_alarms_and_the_rest_is_the_trees_own(trained):
    model, off, stuck = trained
    on, plain = model.score_rows(stuck), off.score_rows(stuck)
    rows = np.arange(len(on.alarm))
    held = (rows > STUCK[0] + LIMIT) & (rows < STUCK[1])
    assert on.alarm[held].all() and on.channel_alarm[held, TARGET].all()
    assert not plain.channel_alarm[held, TARGET].all()  # the rule, not the trees, named them
    np.testing.assert_array_equal(on.channel_alarm[:, OTHER], plain.channel_alarm[:, OTHER])
    np.testing.assert_array_equal(on.alarm[~held], plain.alarm[~held])
    np.testing.assert_array_equal(on.score, plain.score)
    np.testing.assert_array_equal(on.channel_scores, plain.channel_scores)


def test_chunks_and_the_artifact_give_the_same_alarms(trained, tmp_path):
    model, _, stuck = trained
    whole, _ = frozen_alarms_whole_chunked_and_loaded(model, "gbdt", stuck, 160, tmp_path / "d")
    assert whole.channel_alarm[STUCK[1] - 1, TARGET]


def test_the_config_adds_it_to_the_gbdt_model(small_mission_dir, tmp_path):
    """Off by default (no round chose it for the trees); one override adds it."""
    from hydra.utils import instantiate

    def rules(*overrides):
        cfg = compose_config("train", [f"data.root={small_mission_dir}",
                                       "model=channel_ensemble_gbdt", *overrides],
                             tmp_path / str(len(list(tmp_path.iterdir()))))
        return instantiate(cfg.model, n_channels=3, n_features=44, group_index=[0, 1, 2],
                           _convert_="all").post_rules

    assert "frozen" not in rules()
    rule = rules("+model.post_processing.frozen={kind:frozen,watch:sending}")["frozen"]
    assert tuple(rule.limit.shape) == (1, 3) and rule.watch == "sending"
