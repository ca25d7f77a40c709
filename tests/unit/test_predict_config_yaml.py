"""A detector's ``config.yaml`` (not covered by its checksums: "for people, may be edited") is
read by predict.py for the data the detector was trained on (``predict_data.trained_data``).
A hostile one must read as unknown (``{}``), never crash or run away."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from esa_lightning.jobs.predict_data import trained_data, trained_data_hint


def test_an_honest_config_yaml_gives_its_data():
    text = "data:\n  _target_: esa_lightning.data.readers.kaggle.read_kaggle\n  root: /x\n"
    assert trained_data(text)["root"] == "/x"


def test_a_deeply_nested_config_yaml_reads_as_unknown():
    """It raised RecursionError: a traceback from predict.py, its run folder left behind."""
    assert trained_data("data: " + "[" * 20000) == {}


def test_a_config_yaml_of_nested_aliases_reads_as_unknown():
    """9 levels of 9 aliases: a 'root' that a message formats as 9**9 items."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    text = "\n".join(lines) + "\ndata: {_target_: other.reader, root: *a9}\n"
    assert trained_data(text) == {}
    data_cfg = OmegaConf.create({"_target_": "esa_lightning.data.readers.kaggle.read_kaggle"})
    assert trained_data_hint(text, data_cfg) == ""


@pytest.mark.parametrize("filler", ["#", "k"])
def test_a_config_yaml_far_larger_than_any_run_writes_reads_as_unknown(filler):
    """A run writes a few KB; 5 MB of keys took a minute to parse, 256 MiB (the bound on the
    artifact's text) most of an hour."""
    body = "".join(f"  {filler}{i}: {i}\n" for i in range(120_000))
    assert len(body) > 2**20
    assert trained_data("data:\n  root: /x\n" + body) == {}
