"""``RestoreBestWeights`` (channel_ensemble, esa_full) reads the checkpoint ``ModelCheckpoint``
recorded as best, a file of the run folder a resumed run takes from its ``last.ckpt``: missing,
truncated or of another model, it is one ``ESAInputError`` naming that file, not a
``FileNotFoundError`` / unpickling / ``RuntimeError`` traceback once training has ended."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from esa_lightning.callbacks import RestoreBestWeights
from esa_lightning.errors import ESAInputError


def _end_training(best_path: str, module: torch.nn.Module) -> None:
    ckpt = SimpleNamespace(best_model_path=best_path, monitor="val/loss", best_model_score=0.5)
    module.device = torch.device("cpu")  # a LightningModule's attribute
    RestoreBestWeights().on_train_end(SimpleNamespace(checkpoint_callback=ckpt), module)


def _saved(path, state: dict) -> str:
    torch.save({"state_dict": state, "epoch": 3}, path)
    return str(path)


def test_the_best_checkpoint_still_restores(tmp_path):
    module = torch.nn.Linear(3, 2)
    best = {k: torch.full_like(v, 0.25) for k, v in module.state_dict().items()}
    _end_training(_saved(tmp_path / "epoch_003.ckpt", best), module)
    assert all(torch.equal(v, best[k]) for k, v in module.state_dict().items())


@pytest.mark.parametrize("damage", ["missing", "truncated", "another model", "a pickled object"])
def test_a_damaged_best_checkpoint_is_one_line_naming_it(tmp_path, damage):
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
    message = str(info.value)
    assert str(path) in message and "\n" not in message, message
