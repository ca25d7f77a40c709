"""GRU-attention AE training: our WindowDataModule + Lightning vs reference pipeline B's loop.

Both sides train the same ``GRUAttentionAE`` on the same synthetic data (T rows x C channels,
window L, stride 1, SmoothL1, Adam) for a fixed number of batches on CPU, each in its own
subprocess so that peak RSS is its own:

- ours: ``WindowDataModule`` (median/IQR scaler on nominal rows, windows sliced from one scaled
  [T, C] array) + ``LitGRUAttentionAE`` under ``lightning.Trainer``;
- reference (how pipeline B trains): sklearn ``RobustScaler`` on the anomaly-free rows, every
  window materialised into one [N, L, C] array, a plain PyTorch loop over shuffled batches.

Throughput counts training windows per second of the training loop (data preparation is timed
separately). Writes the "GRU-attention AE training" section of benchmarks/RESULTS.md.

    python benchmarks/bench_gru.py                 # T = 1,000,000, C = 87, L = 10
    python benchmarks/bench_gru.py --rows 100000   # quicker
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import _checkout  # noqa: F401
import numpy as np
from _common import machine, write_section

SECTION = "## GRU-attention AE training (bench_gru.py)"
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def make_mission(rows: int, channels: int, seed: int = 0):
    import pandas as pd

    from esa_lightning.data.mission import Mission, default_channel_table, empty_events

    rng = np.random.default_rng(seed)
    values = rng.standard_normal((rows, channels), dtype=np.float32)
    labels = np.zeros((rows, channels), np.uint8)
    for s in range(5000, rows, 50_000):  # a labeled 200-row segment every 50k rows
        labels[s : s + 200, s % channels] = 1
    ts = pd.date_range("2000-01-01", periods=rows, freq="30s").to_numpy()
    names = [f"channel_{i}" for i in range(channels)]
    return Mission(
        "bench",
        values,
        ts,
        default_channel_table(names),
        labels,
        empty_events(),
        val_start=rows,
        test_start=rows,
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_ours(a: argparse.Namespace) -> dict:
    import lightning as L

    from esa_lightning.data.windows import WindowDataModule
    from esa_lightning.models.gru_ae.model import LitGRUAttentionAE

    mission = make_mission(a.rows, a.channels)
    t0 = time.perf_counter()
    dm = WindowDataModule(mission, window=a.window, batch_size=a.batch_size, inputs="values")
    dm.setup("fit")
    prep = time.perf_counter() - t0

    class Clock(L.Callback):
        def on_train_start(self, trainer, module):
            self.start = time.perf_counter()

        def on_train_end(self, trainer, module):
            self.seconds = time.perf_counter() - self.start

    clock = Clock()
    # the cheapest threshold rule: it is fitted after the clock stops (on_train_end)
    model = LitGRUAttentionAE(**dm.dims, hidden_size=64, latent_dim=32,
                              post_processing={"threshold": {"kind": "percentile"}})
    trainer = L.Trainer(
        accelerator="cpu",
        max_steps=a.batches,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[clock],
    )
    trainer.fit(model, dm)
    return dict(
        prep_s=prep,
        train_s=clock.seconds,
        windows=a.batches * a.batch_size,
        n_train_windows=len(dm.train_set),
    )


def run_reference(a: argparse.Namespace) -> dict:
    import torch
    from sklearn.preprocessing import RobustScaler

    from esa_lightning.models.gru_ae.model import GRUAttentionAE

    mission = make_mission(a.rows, a.channels)
    t0 = time.perf_counter()
    nominal = ~(mission.labels != 0).any(axis=1)
    scaled = RobustScaler().fit_transform(mission.values[nominal]).astype(np.float32)
    n = len(scaled) - a.window + 1
    windows = np.stack([scaled[i : i + n] for i in range(a.window)], axis=1)  # [N, L, C] copy
    x_all = torch.from_numpy(windows)
    prep = time.perf_counter() - t0

    torch.manual_seed(0)
    net = GRUAttentionAE(a.channels, a.channels, 64, 32)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.SmoothL1Loss()
    perm = torch.randperm(len(x_all))
    t0 = time.perf_counter()
    net.train()
    for b in range(a.batches):
        xb = x_all[perm[b * a.batch_size : (b + 1) * a.batch_size]]
        loss = loss_fn(net(xb).reconstruction, xb)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return dict(
        prep_s=prep,
        train_s=time.perf_counter() - t0,
        windows=a.batches * a.batch_size,
        n_train_windows=len(x_all),
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--channels", type=int, default=87)
    p.add_argument("--window", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--batches", type=int, default=300)
    p.add_argument("--repeats", type=int, default=2, help="runs per side; the fastest counts")
    p.add_argument("--threads", type=int, default=1, help="torch threads, the same for both")
    p.add_argument("--mode", choices=["ours", "reference"], help=argparse.SUPPRESS)
    p.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md alone")
    a = p.parse_args()

    if a.mode:
        import torch

        torch.set_num_threads(a.threads)
        res = run_ours(a) if a.mode == "ours" else run_reference(a)
        res["peak_rss_mb"] = peak_rss_mb()
        print("RESULT " + json.dumps(res))
        return

    results: dict[str, dict] = {}
    for _ in range(a.repeats):  # alternate the sides; keep each side's fastest run
        for mode in ("reference", "ours"):
            cmd = [sys.executable, __file__, "--mode", mode] + sys.argv[1:]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
            if proc.returncode != 0 or not line:
                sys.exit(f"{mode} run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
            res = json.loads(line[0][len("RESULT ") :])
            print(mode, res, flush=True)
            best = results.get(mode)
            if best is None or res["train_s"] < best["train_s"]:
                results[mode] = res

    ours, ref = results["ours"], results["reference"]
    speed = {k: v["windows"] / v["train_s"] for k, v in results.items()}
    args = " ".join(sys.argv[1:])
    rows = [
        ("training throughput (windows/s)", speed["reference"], speed["ours"], ",.0f"),
        ("peak RSS (MB)", ref["peak_rss_mb"], ours["peak_rss_mb"], ",.0f"),
        ("data preparation (s)", ref["prep_s"], ours["prep_s"], ".1f"),
    ]
    table = "\n".join(f"| {n} | {r:{f}} | {o:{f}} | {o / r:.2f}x |" for n, r, o, f in rows)
    text = f"""{SECTION}

Same `GRUAttentionAE` (hidden 64, latent 32), same synthetic data (T = {a.rows:,} rows,
C = {a.channels} channels, L = {a.window}, stride 1), batch {a.batch_size}, {a.batches} batches,
CPU with {a.threads} torch thread(s); each side in its own subprocess, best of {a.repeats}.
Reference = pipeline B's way: RobustScaler, all windows materialised as one [N, L, C]
array, plain PyTorch loop.

| | reference (materialised + loop) | ours (WindowDataModule + Lightning) | ours / reference |
|---|---|---|---|
{table}

Goal: >= 1.0x throughput, <= 0.3x peak memory.
Command: `python benchmarks/bench_gru.py {args}`.
Machine: {machine()}.
"""
    print(text)
    if not a.no_write:
        write_section(text)


if __name__ == "__main__":
    main()
