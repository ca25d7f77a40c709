"""Small hand-built missions for unit tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

from esa_lightning.data.mission import Mission, default_channel_table, empty_events


def make_mission(
    n_rows: int = 2000,
    n_channels: int = 3,
    *,
    anomalies: tuple[tuple[int, int], ...] = ((1200, 1230), (1700, 1720)),
    val_start: int = 1000,
    test_start: int = 1500,
    seed: int = 0,
) -> Mission:
    """Sine channels with noise on a 30 s grid; each anomaly is a +8 offset on channel 0."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_rows)
    values = np.stack(
        [np.sin(2 * np.pi * t / (50 + 7 * c)) + 0.1 * rng.standard_normal(n_rows)
         for c in range(n_channels)], axis=1
    ).astype(np.float32)
    labels = np.zeros((n_rows, n_channels), dtype=np.uint8)
    stamps = np.datetime64("2000-01-01T00:00:00", "ns") + t * np.timedelta64(30, "s")
    names = [f"channel_{c + 1}" for c in range(n_channels)]
    rows = []
    for k, (a, b) in enumerate(anomalies):
        values[a:b + 1, 0] += 8.0
        labels[a:b + 1, 0] = 1
        rows.append({"ID": f"id_{k}", "Channel": names[0], "StartTime": stamps[a],
                     "EndTime": stamps[b], "Category": "Anomaly"})
    events = pd.DataFrame(rows, columns=["ID", "Channel", "StartTime", "EndTime", "Category"])
    return Mission(
        name="hand-made",
        values=values,
        timestamps=stamps,
        channels=default_channel_table(names),
        labels=labels,
        events=events,
        telecommands=np.zeros((n_rows, 1), dtype=np.float32),
        telecommand_names=["telecommand_1"],
        period=pd.Timedelta("30s"),
        val_start=val_start,
        test_start=test_start,
    )


def toy_mission(
    values: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    val_start: int,
    test_start: int,
    telecommands: np.ndarray | None = None,
    channel_names: list[str] | None = None,
    name: str = "toy",
) -> Mission:
    """A Mission of the given [T, C] ``values`` (and labels, telecommands) on a 30 s grid, no
    events; channels ``channel_<i>`` and telecommands ``telecommand_<i>`` unless named."""
    n_rows, n_channels = values.shape
    labels = np.zeros((n_rows, n_channels), np.uint8) if labels is None else labels
    extra = {}
    if telecommands is not None:
        extra = dict(
            telecommands=telecommands,
            telecommand_names=[f"telecommand_{i}" for i in range(telecommands.shape[1])],
        )
    return Mission(
        name,
        values,
        pd.date_range("2000-01-01", periods=n_rows, freq="30s").to_numpy(),
        default_channel_table(channel_names or [f"channel_{i}" for i in range(n_channels)]),
        labels,
        empty_events(),
        val_start=val_start,
        test_start=test_start,
        **extra,
    )
