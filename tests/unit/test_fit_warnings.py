"""Lightning warnings a run of this project always triggered, which told a user that something
was wrong where nothing was: the baselines fitted without gradient steps (``experiment=smoke``,
``model=window_pca``...) printed "``configure_optimizers`` returned ``None``, this fit will run
with no optimizer", and every resume with ``ckpt_path=last`` (docs/scaling.md) printed
"Checkpoint directory ... exists and is not empty", the folder it was told to resume from."""

from __future__ import annotations

import warnings
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from esa_lightning.data.rows import RowDataModule
from esa_lightning.models.zscore.model import RobustZScore
from esa_lightning.runtime.checkpoints import fit_from
from tests.helpers import make_mission


def data() -> RowDataModule:
    return RowDataModule(make_mission(), batch_size=500)


def trainer(checkpoints: Path, epochs: int = 1) -> pl.Trainer:
    saving = ModelCheckpoint(dirpath=checkpoints, filename="epoch_{epoch:03d}", save_last=True,
                             save_top_k=-1, auto_insert_metric_name=False)
    return pl.Trainer(max_epochs=epochs, logger=False, callbacks=[saving], accelerator="cpu",
                      enable_progress_bar=False, enable_model_summary=False,
                      num_sanity_val_steps=0, default_root_dir=checkpoints.parent)


def messages(run) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run()
    return [str(w.message) for w in caught]


def test_a_model_without_gradient_steps_fits_without_the_no_optimizer_warning(tmp_path):
    said = messages(lambda: fit_from(trainer(tmp_path / "ck"), RobustZScore(n_channels=3),
                                     data(), None))

    assert (tmp_path / "ck" / "last.ckpt").is_file()
    assert not [m for m in said if "configure_optimizers" in m], said


def test_resuming_from_the_runs_own_checkpoints_does_not_warn_that_their_folder_exists(tmp_path):
    fit_from(trainer(tmp_path / "ck"), RobustZScore(n_channels=3), data(), None)

    said = messages(lambda: fit_from(trainer(tmp_path / "ck", epochs=2), RobustZScore(n_channels=3),
                                     data(), str(tmp_path / "ck" / "last.ckpt")))

    assert torch.load(tmp_path / "ck" / "last.ckpt", weights_only=False)["epoch"] == 2  # trained on
    assert not [m for m in said if "exists and is not empty" in m], said


def test_a_new_fit_into_a_folder_holding_checkpoints_still_warns(tmp_path):
    """Only the resume is quiet: a fit from scratch into a non-empty folder is worth the
    warning (the run-folder checks refuse that in train.py; a script may not)."""
    fit_from(trainer(tmp_path / "ck"), RobustZScore(n_channels=3), data(), None)

    said = messages(lambda: fit_from(trainer(tmp_path / "ck"), RobustZScore(n_channels=3),
                                     data(), None))

    assert [m for m in said if "exists and is not empty" in m]
