"""The random state a checkpoint carries (``runtime.random_state.RandomState``)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from esa_lightning.runtime.random_state import RandomState


def draws() -> tuple[float, float, float]:
    return torch.rand(1).item(), float(np.random.rand()), random.random()


def test_the_state_put_back_gives_the_same_draws():
    callback = RandomState()
    saved = callback.state_dict()
    first = draws()
    draws()
    callback.load_state_dict(saved)
    assert draws() == first


@pytest.mark.parametrize(
    "damaged",
    [{}, {"torch": "text"}, {"torch": torch.get_rng_state(), "numpy": {"name": "MT19937"}},
     {"torch": torch.zeros(3, dtype=torch.uint8)}],
)
def test_a_damaged_state_warns_and_changes_nothing(damaged):
    """A checkpoint is a file the user hands over: a state that cannot be put back was a
    traceback from inside Lightning's restore; it now warns and leaves the state alone (a torch
    state put back before the numpy one failed is undone too)."""
    callback = RandomState()
    saved = callback.state_dict()
    expected = draws()
    callback.load_state_dict(saved)
    with pytest.warns(UserWarning, match="random state cannot be put back"):
        callback.load_state_dict(damaged)
    assert draws() == expected
