"""The global random state (torch, numpy, Python's ``random``) carried in each checkpoint.

Lightning's checkpoints hold the weights, the optimizer and the loops' counters, not the random
state. A shuffled ``DataLoader`` draws the seed of each epoch's order from torch's global
generator, so a run resumed from its epoch-1 checkpoint started from the state ``seed`` left after
building the model: its second epoch took the first epoch's batch order (and a model drawing at
random in training would repeat its first draws), and its weights differed from the same run
trained without the interruption. ``RandomState`` stores the state when a checkpoint is written
and puts it back when training resumes, so resuming from a checkpoint written at the end of an
epoch trains as the uninterrupted run did (``docs/experiments.md``, Reproducibility).

It is put back when the checkpoint is read, before Lightning builds the first epoch's training
loader (which draws its seed then, before ``on_train_start``); the validation sanity check between
the two leaves the state as it found it (Lightning's ``isolate_rng``). A fit that had finished
trains no more, and what follows (a later component's model and batch order) draws from the state
the fit ended with. A checkpoint written before this callback existed holds no state: nothing is
put back.
"""

from __future__ import annotations

import random
import warnings
from typing import Any

import lightning as L
import numpy as np
import torch


def random_state() -> dict[str, Any]:
    """The global random state of this process, as tensors and numbers (``weights_only`` loads
    it)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(state: dict[str, Any]) -> None:
    """Put back what ``random_state`` returned."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


class RandomState(L.Callback):
    """Writes the global random state into every checkpoint; puts it back on resume."""

    def state_dict(self) -> dict[str, Any]:
        return random_state()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Put the checkpoint's state back; one that cannot be (a damaged or foreign
        checkpoint) is said in a warning, and the state is left as it was."""
        before = random_state()
        try:
            set_random_state(state_dict)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as exc:
            set_random_state(before)
            warnings.warn(
                f"the checkpoint's random state cannot be put back ({type(exc).__name__}: "
                f"{exc}): the resumed run draws from the state the seed left, so it may not "
                "train as the uninterrupted run did",
                stacklevel=2,
            )
