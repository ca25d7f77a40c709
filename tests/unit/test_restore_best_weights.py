"""``RestoreBestWeights`` (channel_ensemble, esa_full) reads the checkpoint ``ModelCheckpoint``
recorded as best, a file of the run folder a resumed run takes from its ``last.ckpt``: missing,
truncated or of another model, it is one ``ESAInputError`` naming that file, not a
``FileNotFoundError`` / unpickling / ``RuntimeError`` traceback once training has ended. A fit
that took no optimizer step has no best checkpoint and nothing to restore: no warning."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
import torch

from esa_lightning.callbacks import RestoreBestWeights
from esa_lightning.errors import ESAInputError
from tests.helpers import tiny_datamodule

NO_BEST = "no best checkpoint"


def _end_training(best_path: str, module: torch.nn.Module, global_step: int = 30) -> None:
    ckpt = SimpleNamespace(best_model_path=best_path, monitor="val/loss", best_model_score=0.5)
    module.device = torch.device("cpu")  # a LightningModule's attribute
    trainer = SimpleNamespace(checkpoint_callback=ckpt, global_step=global_step)
    RestoreBestWeights().on_train_end(trainer, module)


def _saved(path, state: dict) -> str:
    torch.save({"state_dict": state, "epoch": 3}, path)
    return str(path)


def test_the_best_checkpoint_still_restores(tmp_path):
    module = torch.nn.Linear(3, 2)
    best = {k: torch.full_like(v, 0.25) for k, v in module.state_dict().items()}
    _end_training(_saved(tmp_path / "epoch_003.ckpt", best), module)
    assert all(torch.equal(v, best[k]) for k, v in module.state_dict().items())


def _refusal_of_damaged(tmp_path, damage: str) -> tuple[str, str]:
    """(the best checkpoint's path, the end of training's refusal) with that file damaged."""
    module = torch.nn.Linear(3, 2)
    path = tmp_path / "epoch_003.ckpt"
    _saved(path, {k: v.clone() for k, v in module.state_dict().items()})
    if damage == "missing":
        path.unlink()
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "another model":
        _saved(path, torch.nn.Linear(5, 2).state_dict())
    else:
        torch.save({"state_dict": SimpleNamespace(x=1)}, path)
    with pytest.raises(ESAInputError) as info:
        _end_training(str(path), module)
    return str(path), str(info.value)


@pytest.mark.parametrize("damage", ["missing", "truncated", "another model", "a pickled object"])
def test_a_damaged_best_checkpoint_is_one_line_naming_it(tmp_path, damage):
    path, message = _refusal_of_damaged(tmp_path, damage)
    assert path in message and "\n" not in message, message


@pytest.mark.parametrize("global_step", [0, 30])
def test_without_a_best_checkpoint_only_a_fit_of_optimizer_steps_warns(caplog, global_step):
    """No best checkpoint after optimizer steps: the monitor was unset or never logged (a
    warning); after none, the fit's weights are the only ones (nothing to say)."""
    module = torch.nn.Linear(3, 2)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    with caplog.at_level(logging.WARNING, logger="esa_lightning"):
        _end_training("", module, global_step=global_step)
    assert (NO_BEST in caplog.text) == (global_step > 0), caplog.text
    assert all(torch.equal(v, before[k]) for k, v in module.state_dict().items())


def test_the_gbdt_ensemble_fit_by_lightning_ends_without_a_spurious_warning(tmp_path, caplog):
    """``experiment=channel_ensemble model=channel_ensemble_gbdt`` (its callbacks: the
    checkpoint monitoring val/loss, restore_best_weights): the trees are fitted in one epoch
    without an optimizer step, so ``ModelCheckpoint`` saved no best checkpoint though val/loss
    was logged, and every run ended with "no best checkpoint (monitor unset or never
    validated)"."""
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint

    from esa_lightning.models.channel_ensemble.gbdt import GBDTChannelEnsemble

    dm = tiny_datamodule()
    model = GBDTChannelEnsemble(**dm.dims, max_iter=3, n_threads=1,
                                post_processing={"alarm": {"kind": "peaks", "fit": False}})
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "checkpoints", monitor="val/loss", mode="min",
                                 save_last=True)
    trainer = L.Trainer(
        **model.trainer_arguments({}), accelerator="cpu", devices=1, logger=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
        callbacks=[checkpoint, RestoreBestWeights()],
    )
    with caplog.at_level(logging.WARNING, logger="esa_lightning"):
        trainer.fit(model, datamodule=dm)
    assert "val/loss" in trainer.callback_metrics  # it validated, its monitor logged
    assert trainer.global_step == 0 and model.trees
    assert NO_BEST not in caplog.text, caplog.text


@pytest.mark.parametrize("damage", ["missing", "truncated", "another model"])
def test_a_damaged_best_checkpoint_says_what_to_do(tmp_path, damage):
    """Before, the refusal named the file and torch's reason alone: no next step."""
    path, message = _refusal_of_damaged(tmp_path, damage)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    assert message.endswith("put that file back if you have a copy of it, or start a new run "
                            "(another output_dir=, no ckpt_path)"), message
