"""The ``frozen`` rule inside a trained GRU: fitted after training, its alarms added to the
model's, named on the stuck channel, equal in chunks, kept by the artifact, reached by config."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from esa_lightning.artifact import Detector, mission_schema
from esa_lightning.models.gru_ae.model import LitGRUAttentionAE
from esa_lightning.runtime.chunks import score_in_chunks
from tests.conftest import compose_config
from tests.helpers import (
    frozen_alarms_whole_chunked_and_loaded,
    sine_mission,
    small_gru,
    trainer,
    with_events,
)

pytestmark = pytest.mark.usefixtures("one_thread")

RULES = {"threshold": {"kind": "percentile", "q": 99},
         "frozen": {"kind": "frozen", "factor": 1.5, "min_run": 10}}
STUCK = (530, 580)  # channel 1 held in the test range


@pytest.fixture(scope="module")
def trained():
    """A small GRU with the rule trained on ``sine_mission``, and the mission with channel 1
    stuck on rows 530-579 of its test range."""
    m = with_events(sine_mission())
    model, dm = small_gru(m, RULES)
    trainer().fit(model, dm)
    values = m.values.copy()
    values[STUCK[0] : STUCK[1], 1] = values[STUCK[0], 1]
    return model, dataclasses.replace(m, values=values), m


def test_a_stuck_channel_alarms_past_its_limit_and_is_named(trained):
    model, stuck, _ = trained
    rule = model.frozen_rule
    assert rule is not None and int(rule.limit[0, 1]) == 15  # noisy sines never repeat: min_run
    watching_none = copy.deepcopy(model)
    watching_none.post_rules["frozen"].limit.fill_(0)
    out, before = model.score_rows(stuck), watching_none.score_rows(stuck)
    rows = np.arange(len(out.alarm))
    held = (rows >= STUCK[0] + 16) & (rows < STUCK[1])
    assert out.alarm[held].all() and out.channel_alarm[held, 1].all()
    # elsewhere the alarms are the model's own
    np.testing.assert_array_equal(out.alarm[~held], before.alarm[~held])
    np.testing.assert_array_equal(out.score, before.score)
    without = LitGRUAttentionAE(**{**model.hparams, "post_processing": {
        "threshold": RULES["threshold"]}})
    assert model.context_rows == max(without.context_rows, 16)


def test_chunks_and_the_artifact_give_the_same_alarms(trained, tmp_path):
    model, stuck, _ = trained
    frozen_alarms_whole_chunked_and_loaded(model, "gru", stuck, 23, tmp_path / "det")


def test_the_rule_watches_sending_channels_by_default_and_its_settings_reach_it(
    small_mission_dir, tmp_path
):
    from hydra.utils import instantiate

    def config(*overrides):
        return compose_config("train", [f"data.root={small_mission_dir}", *overrides],
                              tmp_path / str(len(list(tmp_path.iterdir()))))

    def rules(*overrides):
        model = instantiate(config(*overrides).model, n_inputs=3, n_outputs=2, _convert_="all")
        return model.post_rules

    default = rules()["frozen"]
    assert (default.watch, default.factor, default.min_run, default.max_run) == (
        "sending", 1.5, 10, 10_000)
    assert "frozen" not in rules("model.post_processing.frozen=null")
    nasa = compose_config("train", ["experiment=gru_ae_nasa"], tmp_path / "nasa")
    assert nasa.model.post_processing.frozen is None  # NASA data records no samples
    on = rules("model.post_processing.frozen={kind:frozen,factor:2.0}")
    assert on["frozen"].factor == 2.0 and list(on)[-1] == "frozen"


def test_watching_sending_channels_in_chunks_and_in_the_artifact(tmp_path):
    """``watch: sending`` in a trained GRU: the stuck channel that still sends alarms, the one
    whose samples stop (held to the end) does not; chunks and the loaded artifact agree."""
    m = with_events(sine_mission())
    n = len(m.values)
    bits = np.zeros((n, 8), dtype=bool)
    bits[::2, :3] = True  # every channel sends on every other row
    values = m.values.copy()
    values[STUCK[0] : STUCK[1], 1] = values[STUCK[0], 1]
    values[560:, 2] = values[560, 2]
    bits[561:, 2] = False  # channel 2's recording ends at row 560
    trained_on = dataclasses.replace(m, sent=np.packbits(bits, axis=1))
    rules = {**RULES, "frozen": {**RULES["frozen"], "watch": "sending"}}
    model, dm = small_gru(trained_on, rules)
    trainer().fit(model, dm)
    rule = model.frozen_rule
    assert int(rule.limit[0, 1]) == 15 and int(rule.quiet[0, 1]) == 3  # spacing 2, times 1.5
    stuck = dataclasses.replace(trained_on, values=values)
    det = Detector({"gru": model}, mission_schema(stuck))
    whole = det.score_rows(stuck)
    assert whole.channel_alarm[STUCK[0] + 16 : STUCK[1], 1].all()
    unwatched = copy.deepcopy(model)
    unwatched.post_rules["frozen"].limit[0, 2] = 0
    # channel 2's alarms are the model's own: its held end adds none
    np.testing.assert_array_equal(whole.channel_alarm[:, 2],
                                  unwatched.score_rows(stuck).channel_alarm[:, 2])
    everything = copy.deepcopy(model)
    everything.post_rules["frozen"].watch = "all"  # as before the setting: held rows alarm
    assert everything.score_rows(stuck).channel_alarm[-10:, 2].all()
    assert not whole.channel_alarm[-10:, 2].any()
    chunked = score_in_chunks(det, stuck, chunk_rows=23)
    np.testing.assert_array_equal(chunked.alarm, whole.alarm)
    np.testing.assert_array_equal(chunked.channel_alarm, whole.channel_alarm)
    loaded = Detector.load(det.save(tmp_path / "det")).components["gru"]
    assert torch.equal(loaded.post_rules["frozen"].quiet, rule.quiet)
    np.testing.assert_array_equal(loaded.score_rows(stuck).alarm, whole.alarm)
