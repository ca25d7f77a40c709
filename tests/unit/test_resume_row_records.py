"""Resuming from a checkpoint written before a model's row records (``train_rows``,
``feature_rows``: ``postprocessing.fit_rows``). Lightning's strict load takes such a checkpoint
(``RecordsRows``), and the resumed run's ``setup`` records the rows before the checkpoint is
loaded; ``check_resume_checkpoint`` refused it ("no train_rows")."""

from __future__ import annotations

import pytest
import torch

from esa_lightning.errors import ESAInputError
from esa_lightning.runtime.checkpoints import check_resume_checkpoint
from tests.unit.test_resume_post_rules import FROZEN, checkpoint, ensemble


def without(path, *names: str):
    data = torch.load(path, weights_only=True)
    for name in names:
        del data["state_dict"][name]
    torch.save(data, path)
    return path


def test_a_checkpoint_without_the_row_records_resumes_and_keeps_the_runs_record(tmp_path):
    path = without(checkpoint(ensemble(FROZEN), tmp_path / "last.ckpt"),
                   "train_rows", "feature_rows")
    model = ensemble(FROZEN)
    with torch.no_grad():  # what the run's setup recorded before Lightning loads
        model.train_rows.fill_(5000)
        model.feature_rows.fill_(4000)
    check_resume_checkpoint(path, model)
    data = torch.load(path, weights_only=True)
    model.on_load_checkpoint(data)
    model.load_state_dict(data["state_dict"])
    assert int(model.train_rows.max()) == 5000 and int(model.feature_rows.max()) == 4000


def test_any_other_missing_buffer_is_still_refused(tmp_path):
    path = without(checkpoint(ensemble(FROZEN), tmp_path / "last.ckpt"), "feat_mean")
    with pytest.raises(ESAInputError, match="no feat_mean"):
        check_resume_checkpoint(path, ensemble(FROZEN))
