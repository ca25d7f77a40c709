"""Run by ``test_scale_out.py`` as ``python uneven_ranks_validate.py OUT.json``: the channel
ensemble validated on one device, then on two DDP processes (gloo, Lightning's subprocess
launcher, as ``train.py trainer.devices=2`` runs) whose validation rows split unevenly. Rank 0
writes both results to OUT.json.

A script, not an in-process ``ddp_spawn`` run (a path the product never takes: ``settings.py``
refuses spawn strategies), whose spawned rank once aborted in gloo's teardown at exit."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Subset

from esa_lightning.models.channel_ensemble.model import LitChannelEnsemble
from tests.helpers import make_tiny_mission, tiny_datamodule, trainer

KEYS = ("val/loss", "val/event_bce", "val/channel_bce")


class UnevenRanks(L.LightningDataModule):
    """A datamodule's validation rows split unevenly: rank 0 the first ``split``, rank 1 the
    rest, each in batches of ``batch`` rows."""

    def __init__(self, datamodule, split: int, batch: int) -> None:  # noqa: ANN001
        super().__init__()
        self.loader, self.split, self.batch = datamodule.val_dataloader(), split, batch

    def val_dataloader(self) -> DataLoader:
        rows = self.loader.dataset
        ranges = [range(self.split), range(self.split, len(rows))]
        mine = Subset(rows, ranges[self.trainer.global_rank])
        return DataLoader(mine, batch_size=self.batch, collate_fn=self.loader.collate_fn)


def main(out: Path) -> None:
    dm = tiny_datamodule(make_tiny_mission(), batch_rows=40)
    alarm = {"alarm": {"kind": "peaks", "height": 0.5, "buffer": 100}}
    model = LitChannelEnsemble(**dm.dims, hidden=8, post_processing=alarm)
    model.set_preprocessing(dm)
    [one] = trainer().validate(model, datamodule=dm, verbose=False)
    two = trainer(devices=2, strategy="ddp", use_distributed_sampler=False,
                  default_root_dir=out.parent)
    [uneven] = two.validate(model, datamodule=UnevenRanks(dm, split=88, batch=30),
                            verbose=False)
    if two.global_rank == 0:
        result = {
            "rows": len(dm.monitor_rows()),
            "one": {k: float(one[k]) for k in KEYS},
            "uneven": {k: float(uneven[k]) for k in KEYS},
        }
        out.write_text(json.dumps(result))
    # both ranks leave gloo together, before the interpreter's exit: one run in about 40 under
    # load aborted in the teardown at exit (rank 0, "terminate called without an active
    # exception") after writing its results
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
