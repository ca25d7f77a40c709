"""The same batches twice from a shuffled loader: the z-score's two passes (``streaming.py``).

The z-score's fit counts the training batches its steps read (pass 1), then reads the loader's
first batches again (pass 2). A shuffled loader draws a new order for every pass over it, so
with ``trainer.limit_train_batches`` the second pass read other rows and the fit was refused.
A torch random sampler (``RandomSampler``, ``SubsetRandomSampler``, ``WeightedRandomSampler``)
draws its order from its ``generator``, when a pass starts reading: ``SameOrder`` gives it a
generator of the fit's own for the epoch, seeded by one draw from its own generator (torch's
global one where it has none, as the sampler seeds the generator it makes for each pass, so the
run's ``seed`` still decides the order), and puts that generator back to its first state for
pass 2, so both passes draw the same order; after the fit the sampler holds its own generator
again. The fit's generator is the sampler's alone: the loader's draws from its own (a worker
seed at every pass) move no order. That needs the order drawn after ``on_train_epoch_start``:
so it is in a loader without workers (``num_workers=0``), whose sampler draws as the first batch
is read, but a loader with workers draws it as Lightning starts the first epoch's pass (its
workers are handed indices ahead), before any hook of the epoch: that order is not replayed, nor
is any other (a sampler of its own, a changing dataset). The fit checks that both passes read
the same rows (``TwoPassStatistics``) and refuses them otherwise, saying what to do.
"""

from __future__ import annotations

from typing import Any

import torch


def _random_samplers(loader: Any) -> list[Any]:
    """The loader's samplers that draw their order from a torch ``generator`` attribute."""
    found: list[Any] = []
    for sampler in (getattr(loader, "sampler", None),
                    getattr(getattr(loader, "batch_sampler", None), "sampler", None)):
        if sampler is not None and hasattr(sampler, "generator") and not any(
            sampler is s for s in found
        ):
            found.append(sampler)
    return found


class SameOrder:
    """Taken before a pass over ``loader`` draws its order (``on_train_epoch_start``):
    ``rewind`` before the second pass gives the same order again, ``release`` after it gives
    each sampler its own generator back."""

    def __init__(self, loader: Any) -> None:
        self.held: list[tuple[Any, torch.Generator | None, torch.Generator, torch.Tensor]] = []
        for sampler in _random_samplers(loader):
            own = sampler.generator
            seed = int(torch.empty((), dtype=torch.int64).random_(generator=own).item())
            epoch = torch.Generator().manual_seed(seed)
            sampler.generator = epoch
            self.held.append((sampler, own, epoch, epoch.get_state()))

    def rewind(self) -> None:
        """Before pass 2: each sampler's generator back to its state before pass 1."""
        for _, _, epoch, state in self.held:
            epoch.set_state(state)

    def release(self) -> None:
        """After pass 2 (or instead of it): each sampler holds its own generator again."""
        for sampler, own, _, _ in self.held:
            sampler.generator = own
        self.held = []
