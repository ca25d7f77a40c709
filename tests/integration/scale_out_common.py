"""What the two scale-out test files share (``test_scale_out.py``: DDP with Lightning's
launcher, TensorBoard, data scale-out; ``test_scale_out_runs.py``: models without gradient
steps under DDP and torchrun, sweeps, resume). Two files, so that ``--dist loadfile`` can run
them on two workers.

The slow tests run the real command line (``python train.py ...``) on a tiny mission (4 channels,
8 days) with one short epoch, so they stay seconds long.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

GRU_FAST = [
    "data.val_days=2",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=3",
    "+trainer.limit_val_batches=2",
    "model.hidden_size=16",
    "model.post_processing.rf_gate.n_estimators=10",
]
FULL_FAST = [
    "experiment=esa_full",
    "data.val_days=2",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=3",
    "+trainer.limit_val_batches=2",
    "components.gru_ae.trainer.max_epochs=1",
    "components.gru_ae.model.hidden_size=16",
    "components.gru_ae.model.post_processing.rf_gate.n_estimators=10",
    "components.channel_ensemble.trainer.max_epochs=2",
    "components.channel_ensemble.datamodule.n_kernels=2",
    "components.channel_ensemble.datamodule.shapelet_options.max_candidates=50",
    "callbacks.esa_metrics.every_n_epochs=1",
]
DDP = ["trainer.devices=2", "trainer.accelerator=cpu", "trainer.strategy=ddp"]


def make_tiny_mission(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 channels, 8 days: with ``data.val_days=2`` about 3 training, 2 validation, 3 test days."""
    from esa_lightning.data.readers.synthetic import generate_mission

    out = tmp_path_factory.mktemp("tiny") / "mission"
    generate_mission(out, channels=4, groups=2, days=8, seed=3)
    return out


def run_train(args: list[str], root: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python train.py ARGS`` with every output (runs, caches) under ``root``; not a TTY."""
    cmd = [sys.executable, "train.py", *args, f"paths.root_dir={root}"]
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def assert_ok(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
