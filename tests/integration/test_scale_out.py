"""Scale-out: DDP on CPU (gloo) with Lightning's launcher, TensorBoard content, parallel
features. Models without gradient steps under DDP and torchrun, sweeps and resume:
``test_scale_out_runs.py`` (helpers shared: ``scale_out_common.py``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pytest
from torch.utils.data import DataLoader, Subset

from esa_lightning.io import TMP_PREFIX
from tests.conftest import MSL, REPO, compose_config
from tests.helpers import make_mission
from tests.integration.scale_out_common import (
    DDP,
    FULL_FAST,
    GRU_FAST,
    assert_ok,
    make_tiny_mission,
    run_train,
)


@pytest.fixture(scope="module")
def tiny_mission(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 channels, 8 days: with ``data.val_days=2`` about 3 training, 2 validation, 3 test days."""
    return make_tiny_mission(tmp_path_factory)


# --------------------------------------------------------------------------------- DDP
# esa_full's two components and a third without gradient steps (a z-score, trained after the
# DDP ones); the GRU's validation windows (1019, an odd count) in batches of 509, so that the
# two ranks hold different numbers of batches
ESA_FULL_RUN = [
    *FULL_FAST,
    "components.gru_ae.datamodule.window=14",
    "components.gru_ae.datamodule.eval_batch_size=509",
    "+model@components.zscore.model=zscore",
    "+datamodule@components.zscore.datamodule=rows",
]


@pytest.fixture(scope="module")
def esa_full_runs(tiny_mission, tmp_path_factory):
    """The same esa_full run (``ESA_FULL_RUN``) on one process ("single") and on two DDP
    processes ("ddp", gloo), one 2-process training for the DDP behaviour of all three
    components. Each run when first asked for: an xdist worker given only the TensorBoard test
    runs no DDP."""
    root = tmp_path_factory.mktemp("ddp")
    runs = {}

    def run(name: str) -> tuple[Path, str]:
        if name not in runs:
            run_dir = root / name
            extra = DDP if name == "ddp" else []
            args = [*ESA_FULL_RUN, *extra, f"data.root={tiny_mission}", f"hydra.run.dir={run_dir}"]
            proc = run_train(args, root)
            assert_ok(proc)
            runs[name] = (run_dir, proc.stdout + proc.stderr)
        return runs[name]

    return run


def unsynced(log: str) -> set[str]:
    """The metrics Lightning warned were logged without ``sync_dist=True`` under DDP: none may
    be, neither a monitored loss (``val/loss``) nor the z-score's ``val/threshold`` (the same
    on every rank: each fits on all the rows; Lightning warned of it on every DDP run)."""
    return set(re.findall(r"self\.log\('([^']+)', \.\.\., sync_dist=True\)", log))


@pytest.mark.slow
def test_ddp_two_processes_match_one_and_write_once(esa_full_runs):
    single_dir, _ = esa_full_runs("single")
    ddp_dir, log = esa_full_runs("ddp")
    # Lightning started a second process into the same run folder; it logs to its own file
    assert (ddp_dir / "train_ddp_process_1.log").is_file()
    # every rank fits the same threshold from the same full mission; the console shows rank 0's
    pattern = r"(?:percentile|f05 \(\w+\)) threshold (\S+) on"
    shown = re.findall(pattern, log)
    rank_1 = re.findall(pattern, (ddp_dir / "train_ddp_process_1.log").read_text())
    assert len(shown) == 1 and shown == rank_1, (shown, rank_1)
    # one artifact, one metrics.json, one printed summary, no temporaries left
    assert [p.parent for p in ddp_dir.rglob("detector.json")] == [ddp_dir / "detector"]
    assert list(ddp_dir.rglob("metrics.json")) == [ddp_dir / "metrics.json"]
    assert log.count("results:") == 1
    assert not unsynced(log)  # Lightning's warning of a metric logged unsynced
    assert "sync_dist" not in log
    assert not [p for p in ddp_dir.rglob(f"{TMP_PREFIX}*")]
    one = json.loads((single_dir / "metrics.json").read_text())
    two = json.loads((ddp_dir / "metrics.json").read_text())
    assert one.keys() == two.keys()
    for key in ("val/AUC_PR", "test/AUC_PR", "val/AFF_F_0.50"):
        assert abs(one[key] - two[key]) <= 0.15, (key, one[key], two[key])

    from esa_lightning.artifact import Detector

    detector = Detector.load(ddp_dir / "detector")
    assert set(detector.components) == {"gru_ae", "channel_ensemble", "zscore"}
    assert np.isfinite(float(detector.components["gru_ae"].threshold_rule.threshold[0]))


@pytest.mark.slow
def test_a_later_component_without_gradient_steps_trains_in_the_ddp_processes(esa_full_runs):
    """A component without a trainable parameter trained after a DDP component (esa_full's
    components train one after another) kept DDP, the process group being up: both ranks failed
    with "DistributedDataParallel is not needed". It trains in the same processes, unwrapped,
    every rank on all the rows: its numbers are those of a one-process run."""
    from esa_lightning.artifact import Detector

    single_dir, _ = esa_full_runs("single")
    ddp_dir, log = esa_full_runs("ddp")
    assert "RobustZScore has no gradient steps: fitted on every rank" in log
    rank_1 = (ddp_dir / "train_ddp_process_1.log").read_text()
    assert "fitting zscore (RobustZScore)" in rank_1  # the second process trained it too
    ddp = Detector.load(ddp_dir / "detector").components["zscore"]
    one = Detector.load(single_dir / "detector").components["zscore"]
    for buffer in ("median", "scale", "threshold"):
        assert getattr(ddp, buffer).equal(getattr(one, buffer)), buffer


@pytest.mark.slow
def test_ddp_monitors_the_validation_loss_of_every_window(esa_full_runs, tiny_mission, tmp_path):
    """``val/loss`` (what checkpoints and early stopping monitor) of a 2-process run is the mean
    over all validation windows, as one device computes it, not rank 0's half of them;
    Lightning warned on every DDP run that it was logged without ``sync_dist=True``. 1019
    windows: each is validated once (Lightning's sampler validated window 0 twice: 0.387365
    against one device's 0.387434), rank 0 in two batches of 509 and 1 window, rank 1 in one
    batch of 509 (the ranks' batch counts may differ)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from esa_lightning.artifact import Detector
    from esa_lightning.jobs.common import mission_from_config
    from esa_lightning.jobs.train import component_specs, make_datamodule

    run_dir, log = esa_full_runs("ddp")
    assert "val/loss" not in unsynced(log)  # no warning
    acc = EventAccumulator(str(run_dir / "tensorboard" / "gru_ae"))
    acc.Reload()
    [logged] = [e.value for e in acc.Scalars("val/loss")]

    # one device, the weights that were validated (one epoch: the detector's), every window
    cfg = compose_config("train", [*ESA_FULL_RUN, f"data.root={tiny_mission}"], tmp_path)
    datamodule = make_datamodule(component_specs(cfg)["gru_ae"], mission_from_config(cfg.data))
    datamodule.setup("fit")
    loader = datamodule.val_dataloader()
    windows = loader.dataset
    assert len(windows) == 1019
    model = Detector.load(run_dir / "detector").components["gru_ae"]
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False)
    [every] = trainer.validate(model, datamodule=datamodule, verbose=False)
    assert logged == pytest.approx(every["val/loss"], rel=1e-5)
    # ... which tells it from the mean over rank 0's windows (every other one)
    every_other = Subset(windows, range(0, len(windows), 2))
    half = DataLoader(every_other, batch_size=4096, collate_fn=loader.collate_fn)
    [rank0] = trainer.validate(model, dataloaders=half, verbose=False)
    assert rank0["val/loss"] != pytest.approx(every["val/loss"], rel=1e-4)


@pytest.mark.slow
@pytest.mark.skipif(not MSL.is_dir(), reason="shared MSL data not present")
@pytest.mark.parametrize("per_series", ["true", "false"])
def test_ddp_trains_forecasters_whose_steps_leave_parameters_unused(tmp_path, per_series):
    """Each rank's batches hold one series, so the other series' networks get no gradient, and
    a forecaster never uses its reconstruction decoder: DDP must be told
    (find_unused_parameters) or its second step fails."""
    run_dir = tmp_path / "run"
    args = [
        "experiment=gru_ae_nasa", f"data.root={MSL}", "data.channels=[T-13,C-1]",
        f"model.per_series={per_series}", f"datamodule.series_batches={per_series}",
        "datamodule.window=30",
        "callbacks=[default,series_best_weights]", "trainer.max_epochs=2",
        "trainer.limit_train_batches=4", "logger=none", "~callbacks.lr_monitor", "test=false", *DDP,
        f"hydra.run.dir={run_dir}",
    ]
    proc = run_train(args, tmp_path)
    assert_ok(proc)
    log = proc.stdout + proc.stderr
    if per_series == "true":
        restored = "restored each network's best weights"
        assert log.count(restored) == 1  # rank 0's: rank 1's INFO lines go to its log file
        assert sum(p.read_text().count(restored) for p in run_dir.glob("*.log")) == 2  # alike
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["val/forecast_MAE"] > 0


@pytest.mark.slow
def test_tensorboard_holds_losses_lr_esa_metrics_histogram_and_figure(esa_full_runs):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, _ = esa_full_runs("single")

    def tags(run: str) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {"scalars": set(), "histograms": set(), "images": set()}
        for events in (run_dir / "tensorboard" / run).glob("events.out.tfevents*"):
            acc = EventAccumulator(
                str(events), size_guidance={"scalars": 0, "histograms": 0, "images": 0}
            )
            acc.Reload()
            for kind, names in found.items():
                names |= set(acc.Tags()[kind])
        return found

    for component in ("gru_ae", "channel_ensemble"):
        found = tags(component)
        scalars = found["scalars"]
        assert {"train/loss", "val/loss", "val_provisional/EW_F_0.50"} <= scalars, scalars
        assert "val_provisional/AFF_F_0.50" in scalars
        assert any(t.startswith("lr-") for t in scalars), scalars
        assert "val_provisional/score" in found["histograms"]
        assert "val_provisional/intervals" in found["images"]
        # the combined detector's numbers are not appended to a component's curves
        assert not any(t.startswith(("val/EW", "test/")) for t in scalars), scalars
    # ... but in a run of their own, under the experiment's name, at the step the components
    # took together (docs/metrics_output.md)
    assert {"val/EW_F_0.50", "test/EW_F_0.50"} <= tags("esa_full")["scalars"]
    acc = EventAccumulator(str(run_dir / "tensorboard" / "esa_full"), size_guidance={"scalars": 0})
    acc.Reload()
    steps_taken = 0
    # the z-score, fitted without gradient steps, counts its batches (callbacks.logging_step):
    # its val/threshold is at its last one, as a component's val/loss at its last step
    for component, curve_tag in (("gru_ae", "train/loss"), ("channel_ensemble", "train/loss"),
                                 ("zscore", "val/threshold")):
        curve = EventAccumulator(str(run_dir / "tensorboard" / component))
        curve.Reload()
        steps_taken += max(e.step for e in curve.Scalars(curve_tag)) + 1
    assert [e.step for e in acc.Scalars("test/EW_F_0.50")] == [steps_taken]


def test_the_training_loss_is_a_curve_of_every_step_with_the_default_settings(
    tiny_mission, tmp_path
):
    """docs/metrics_output.md: ``train/loss`` every step. With the default
    ``trainer.log_every_n_steps=20`` the default run (19 batches an epoch, 5 epochs) wrote 4
    points, the channel ensemble (one batch an epoch) one in 20 epochs, and these 6 steps none."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from esa_lightning.jobs.train import train

    args = [*GRU_FAST, "trainer.max_epochs=2", "test=false", f"data.root={tiny_mission}"]
    train(compose_config("train", args, tmp_path))
    steps = []
    for events in (tmp_path / "tensorboard" / "gru_ae").glob("events.out.tfevents*"):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        if "train/loss" in acc.Tags()["scalars"]:
            steps += [e.step for e in acc.Scalars("train/loss")]
    assert sorted(steps) == list(range(2 * 3))  # 2 epochs of 3 batches


# ------------------------------------------------------------------- data scale-out
SEGMENTS = dict(
    window=20,
    step=5,
    pool=20,
    pool_stride=5,
    n_kernels=2,
    min_kernel_len=10,
    max_kernel_len=15,
    shapelet_options={"max_candidates": 30},
    batch_rows=8,
)


def _segment_mission():
    return make_mission(
        4000, 3, anomalies=((600, 660), (1500, 1540), (3300, 3330)), val_start=2500, test_start=3200
    )


def test_segment_features_identical_with_two_jobs():
    from esa_lightning.data.segment_datamodule import SegmentDataModule

    mission = _segment_mission()
    one = SegmentDataModule(mission, n_jobs=1, **SEGMENTS)
    two = SegmentDataModule(mission, n_jobs=2, **SEGMENTS)
    one.setup("fit")
    two.setup("fit")
    assert one.X.shape[1] > 0
    np.testing.assert_array_equal(one.X.numpy(), two.X.numpy())
    for a, b in zip(one.kernels, two.kernels, strict=True):
        assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    np.testing.assert_array_equal(
        one.featurise(mission.test())[0], two.featurise(mission.test())[0]
    )


def test_training_batches_are_sharded_by_the_distributed_sampler():
    """The loaders use default samplers, so Lightning can swap in a DistributedSampler."""
    from lightning.pytorch.utilities.data import _update_dataloader
    from torch.utils.data import DistributedSampler

    from esa_lightning.data.segment_datamodule import SegmentDataModule
    from esa_lightning.data.transforms.segments import SPLIT_TRAIN
    from esa_lightning.data.windows import WindowDataModule

    mission = _segment_mission()
    segments = SegmentDataModule(mission, **SEGMENTS)
    segments.setup("fit")
    windows = WindowDataModule(mission, window=10, batch_size=64)
    windows.setup("fit")
    for dm in (segments, windows):
        loader = dm.train_dataloader()
        shards = []
        for rank in (0, 1):
            sampler = DistributedSampler(
                loader.dataset, num_replicas=2, rank=rank, shuffle=True, seed=0
            )
            shards.append(_update_dataloader(loader, sampler))
        n = len(loader.dataset)
        assert [len(s.sampler) for s in shards] == [(n + 1) // 2] * 2
        if dm is segments:
            rows = [np.concatenate([b["rows"].numpy() for b in s]) for s in shards]
            assert set(rows[0]) | set(rows[1]) == set(np.flatnonzero(dm.split == SPLIT_TRAIN))
            assert len(set(rows[0]) & set(rows[1])) <= n % 2  # only the sampler's padding


def progress_lines(caplog, clock_step_s: float) -> list[str]:
    """What ``progress`` logs (not a terminal) over 30 items, each taking ``clock_step_s``."""
    import itertools
    import logging

    from esa_lightning import progress as module

    ticks = (i * clock_step_s for i in itertools.count())
    with caplog.at_level(logging.INFO, logger="esa_lightning"):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(module.time, "monotonic", lambda: next(ticks))
            items = list(module.progress(iter(range(30)), "feature extraction", total=30))
    assert items == list(range(30))
    return [r.getMessage() for r in caplog.records if "feature extraction" in r.getMessage()]


def test_progress_is_silent_for_quick_loops_when_not_a_terminal(caplog):
    assert progress_lines(caplog, clock_step_s=0.01) == []


def test_progress_logs_a_slow_loop_every_interval_and_its_end_when_not_a_terminal(caplog):
    lines = progress_lines(caplog, clock_step_s=7.0)  # a line every 30 s: every 5th item
    assert lines[0] == "feature extraction: 5/30"
    assert len(lines) == 6 and lines[-1] == "feature extraction: 30/30"


@pytest.mark.slow
def test_channel_ensemble_val_loss_is_the_loss_over_every_rank_s_rows(tmp_path):
    """The channel ensemble's ``val/loss`` over two ranks holding different numbers of rows is
    the loss over all validation rows, as one device computes it. It was Lightning's batch-size
    weighted mean of the batches' means, exact on one device, but across ranks Lightning
    averages the summed batch sizes as an integer (95 rows on two ranks: 47, not 47.5), so the
    loss came out 1.3965 against 1.3818. (Lightning's own sampler gives every rank as many rows,
    padding with repeated ones, so that the average stays exact.)"""
    out = tmp_path / "validated.json"
    script = Path(__file__).with_name("uneven_ranks_validate.py")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, str(script), str(out)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert_ok(proc)
    result = json.loads(out.read_text())
    assert result["rows"] % 2 == 1  # an odd count: the rows per rank average to x.5
    for key, value in result["one"].items():
        assert result["uneven"][key] == pytest.approx(value, rel=1e-5), key
