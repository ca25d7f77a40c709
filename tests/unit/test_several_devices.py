"""Which trainer settings may start more than one process (``jobs.sweep.asks_for_several_devices``,
behind the refusal of multi-device multirun and of a second multi-device ``train()``)."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from esa_lightning.jobs.sweep import asks_for_several_devices


@pytest.mark.parametrize(
    ("devices", "num_nodes", "several"),
    [
        (1, 1, False),
        (2, 1, True),
        (-1, 1, True),
        ("auto", 1, True),
        ([0], 1, False),
        ([0, 1], 1, True),
        (1, 2, True),
        # Lightning reads a string as a count or a list of GPU indices: "2" and "0,1" are two
        # devices, "-1" every one; they were taken for one device
        ("2", 1, True),
        ("0,1", 1, True),
        ("-1", 1, True),
        ("1", 1, False),
        ("0,", 1, False),
    ],
)
def test_devices_that_start_several_processes(devices, num_nodes, several):
    trainer = OmegaConf.create({"devices": devices, "num_nodes": num_nodes})
    assert asks_for_several_devices(trainer) is several
