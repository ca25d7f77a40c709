"""The torchmetrics wrapper scores the whole series once, whatever the batching."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from esa_lightning.metrics import full_report
from esa_lightning.metrics.torch_metrics import ESAEventMetrics

T = 300


def setup():
    times = np.asarray(
        pd.Timestamp("2007-01-01") + pd.Timedelta("30s") * np.arange(T), dtype="datetime64[ns]"
    )
    ev = pd.DataFrame(
        {
            "ID": ["a", "a", "b", "c"],
            "Channel": ["ch0", "ch1", "ch1", "ch0"],
            "StartTime": times[[20, 25, 120, 200]],
            "EndTime": times[[40, 45, 130, 230]],
            "Category": ["Anomaly", "Anomaly", "Rare Event", "Anomaly"],
        }
    )
    rng = np.random.default_rng(0)
    score = rng.random(T).astype(np.float32)
    alarm = (score > 0.9).astype(np.uint8)
    channel_alarm = (rng.random((T, 2)) > 0.9).astype(np.uint8)
    return times, ev, score, alarm, channel_alarm


def test_shuffled_and_duplicated_updates_match_one_full_report():
    times, ev, score, alarm, ca = setup()
    metric = ESAEventMetrics(ev, times, channel_names=["ch0", "ch1"])
    rng = np.random.default_rng(1)
    rows = np.r_[rng.permutation(T), rng.choice(T, 37)]  # shuffled, with padded duplicates
    for batch in np.array_split(rows, 7):
        b = torch.from_numpy(batch)
        metric.update(
            b,
            torch.from_numpy(score[batch]),
            torch.from_numpy(alarm[batch]),
            torch.from_numpy(ca[batch]),
        )
    got = metric.compute()
    want = full_report(
        ev, times, alarm, score=score, channel_alarm=ca, channel_names=["ch0", "ch1"]
    )
    assert got == pytest.approx(want)
    assert "EW_F_0.50" in got and "AUC_PR" in got
    metric.reset()
    metric.update(
        torch.arange(T), torch.from_numpy(score), torch.from_numpy(alarm), torch.from_numpy(ca)
    )
    assert metric.compute() == pytest.approx(want)
