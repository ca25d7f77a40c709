"""Fitted whole numbers of post rules and models that no range check covered, edited in an
artifact with every checksum computed again (as a hostile user could): the gap width of
``gap_close`` and of rolling_gbdt's alarm rule, the ``frozen`` rule's ``limit`` and ``quiet``,
a window baseline's ``n_fit_windows`` and the channel ensemble network's ``feature_mask``. Each
is refused at load in one line naming ``weights.pt`` and the value, never loaded to score with
other alarms, a context of a million rows, or a ``RuntimeError`` while scoring."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from esa_lightning.artifact import Detector, mission_schema
from tests.helpers import sine_mission, small_gru, trainer, with_events
from tests.integration.test_artifact_head_features import _refused_at_load

pytestmark = pytest.mark.usefixtures("one_thread")

RULES = {"threshold": {"kind": "percentile", "q": 99},
         "gap_close": {"kind": "gap_close", "widths": [0, 5, 25]},
         "frozen": {"kind": "frozen", "factor": 1.5, "min_run": 10, "max_run": 100,
                    "watch": "sending"}}


def _saved(model, mission, name: str, folder: Path) -> Path:
    return Detector({name: model}, mission_schema(mission)).save(folder)


def _edited(saved: Path, tmp_path: Path, name: str, key: str, edit) -> tuple[Path, Path]:
    folder = tmp_path / "detector"
    shutil.copytree(saved, folder)
    weights = folder / f"components/{name}/weights.pt"
    state = torch.load(weights, weights_only=True)
    edit(state[key])
    torch.save(state, weights)
    return folder, weights


@pytest.fixture(scope="module")
def gru(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small GRU with ``gap_close`` and ``frozen`` (watching sending channels: every channel
    sends on every other row) trained once, saved."""
    m = with_events(sine_mission())
    bits = np.zeros((len(m.values), 8), dtype=bool)
    bits[::2, :3] = True
    m = dataclasses.replace(m, sent=np.packbits(bits, axis=1))
    model, dm = small_gru(m, RULES)
    trainer().fit(model, dm)
    frozen = model.post_rules["frozen"]
    assert int(frozen.limit[0, 1]) == 15 and int(frozen.quiet[0, 1]) == 3  # spacing 2 · 1.5
    assert int(model.post_rules["gap_close"].width) in (0, 5, 25)
    return _saved(model, m, "gru", tmp_path_factory.mktemp("gru") / "detector")


# (buffer, the edit, what the refusal says); found loaded: width 10**6 alarmed 560 of 600 rows
# (147 before) with a context of 1000008 rows, width 7 (none of the widths) 105, width -5 ended
# in "RuntimeError: threshold not fitted" when scoring; limit 10**9 and quiet 10**9 asked a
# context of 10**9 rows, limit -3 the same RuntimeError, quiet -2 watched the channel nowhere
GRU_EDITS = [
    ("post_rules.gap_close.width", lambda t: t.fill_(10**6), "width 1000000"),
    ("post_rules.gap_close.width", lambda t: t.fill_(7), "width 7"),
    ("post_rules.gap_close.width", lambda t: t.fill_(-5), "width -5"),
    ("post_rules.frozen.limit", lambda t: t.fill_(10**9), "limit 1000000000"),
    ("post_rules.frozen.limit", lambda t: t.fill_(-3), "limit -3"),
    ("post_rules.frozen.limit", lambda t: t.fill_(1), "limit 1"),
    ("post_rules.frozen.quiet", lambda t: t.fill_(-2), "quiet -2"),
    ("post_rules.frozen.quiet", lambda t: t.fill_(1), "quiet 1"),
    # loaded, asking a context of 10**9 rows: no spacing of a sample exceeds the fit range
    ("post_rules.frozen.quiet", lambda t: t.fill_(10**9), "quiet 1000000000"),
]


@pytest.mark.parametrize("key, edit, why", GRU_EDITS)
def test_gru_rule_numbers_training_never_writes_are_refused(tmp_path, gru, key, edit, why):
    folder, weights = _edited(gru, tmp_path, "gru", key, edit)
    message = _refused_at_load(folder, weights, why)
    assert key.rsplit(".", 1)[0] in message, message


def test_the_unedited_gru_loads(gru):
    assert Detector.load(gru).components["gru"].is_calibrated


def test_a_quiet_where_the_rule_watches_nothing_is_refused(tmp_path, gru):
    """A channel not watched (limit 0) adds no context: training writes quiet 0 there."""

    def edit(quiet: torch.Tensor) -> None:
        quiet[0, 2] = 4

    folder, weights = _edited(gru, tmp_path, "gru", "post_rules.frozen.quiet", edit)
    state = torch.load(weights, weights_only=True)
    state["post_rules.frozen.limit"][0, 2] = 0
    torch.save(state, weights)
    _refused_at_load(folder, weights, "quiet 4")


@pytest.mark.parametrize("value", [0, -4, 10**9])
def test_window_baseline_fit_window_counts_training_never_writes_are_refused(tmp_path, value):
    """0 or -4 loaded and scoring ended in ``RuntimeError: WindowPCADetector is not fitted``;
    10**9 (more than ``max_windows``) loaded silently."""
    from tests.unit.test_window_baselines import fitted, spiky_mission

    m = spiky_mission()
    saved = _saved(fitted("pca", m), m, "pca", tmp_path / "saved")
    folder, weights = _edited(saved, tmp_path, "pca", "n_fit_windows",
                              lambda t: t.fill_(value))
    _refused_at_load(folder, weights, f"n_fit_windows {value}")


@pytest.mark.parametrize("value, why", [(10**6, "width 1000000"), (7, "width 7"),
                                        (-1, "width -1")])
def test_rolling_gbdt_gap_widths_training_never_writes_are_refused(tmp_path, value, why):
    """10**6 loaded and alarmed 7580 rows (585 before) with a context of 1000200 rows; -1 loaded
    and alarmed none."""
    from tests.unit.test_rolling_gbdt import fitted, labeled_mission

    m = labeled_mission()
    saved = _saved(fitted(m), m, "rolling_gbdt", tmp_path / "saved")
    folder, weights = _edited(saved, tmp_path, "rolling_gbdt", "post_rules.alarm.width",
                              lambda t: t.fill_(value))
    _refused_at_load(folder, weights, why)


@pytest.mark.parametrize("edit", [lambda t: t.fill_(1.0), lambda t: t.copy_(t.flip(-1)),
                                  lambda t: t.mul_(5.0)])
def test_network_ensemble_feature_mask_other_than_its_seed_builds_is_refused(tmp_path, edit):
    """Each loaded and scored other feature subsets than training fitted (the score sum moved
    from 6060.97 to 6062.99, 6067.38, 6106.08) without an error."""
    from tests.integration.test_artifact_fitted_indices import surrogate

    saved = surrogate.__wrapped__(_Factory(tmp_path))
    folder, weights = _edited(saved, tmp_path, "ce", "model.feature_mask", edit)
    _refused_at_load(folder, weights, "model.feature_mask")


class _Factory:
    """``tmp_path_factory.mktemp`` for calling a module fixture's function directly."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def mktemp(self, name: str) -> Path:
        path = self.root / name
        path.mkdir()
        return path


@pytest.mark.parametrize("record", ["post_rules.frozen.fit_rows", "train_rows"])
def test_an_artifact_written_before_the_row_records_still_loads(tmp_path, gru, record):
    """Artifacts of this format written before the frozen rule's ``fit_rows`` and the GRU's
    ``train_rows`` hold neither: they load and score as before, bounded by nothing there."""
    folder, weights = _edited(gru, tmp_path, "gru", record, lambda t: t.zero_())
    state = torch.load(weights, weights_only=True)
    del state[record]
    torch.save(state, weights)
    from tests.integration.test_artifact_head_features import reseal

    reseal(folder)
    m = with_events(sine_mission())
    before = Detector.load(gru).components["gru"].score_rows(m).alarm
    model = Detector.load(folder).components["gru"]
    assert int(model.get_buffer(record).sum()) == 0
    np.testing.assert_array_equal(model.score_rows(m).alarm, before)
