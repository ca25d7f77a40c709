"""merge.py copies its first source's ``config.yaml`` (no checksum covers it) into the merged
detector with ``model.members`` set (``merge.merged_config``). A hostile one is one
``ESAInputError`` naming the file, never a traceback or a parse that runs for minutes."""

from __future__ import annotations

import pytest

from esa_lightning.errors import ESAInputError
from esa_lightning.jobs.merge import merged_config


def test_an_honest_config_yaml_gets_its_members():
    text = "model:\n  _target_: x.Y\n  members: 1\ndata:\n  root: /x\n"
    assert "members: 3" in merged_config(text, 3, "runs/a/detector")


def test_a_deeply_nested_config_yaml_is_refused_naming_it():
    """It raised RecursionError: a traceback from merge.py."""
    with pytest.raises(ESAInputError, match=r"runs/a/detector/config\.yaml.*too deep"):
        merged_config("model: " + "[" * 20000, 2, "runs/a/detector")


def test_a_config_yaml_with_aliases_is_refused_naming_it():
    """A run never writes an alias; nested ones make a value of billions of items."""
    text = "a0: &a0 [x, x]\nmodel: {_target_: x.Y, members: 1, extra: *a0}\n"
    with pytest.raises(ESAInputError, match=r"config\.yaml.*alias"):
        merged_config(text, 2, "runs/a/detector")


def test_a_config_yaml_far_larger_than_any_run_writes_is_refused_naming_it():
    """A run writes a few KB; 5 MB of keys took a minute to parse."""
    body = "".join(f"  k{i}: {i}\n" for i in range(120_000))
    with pytest.raises(ESAInputError, match=r"config\.yaml.*larger than"):
        merged_config("model:\n  members: 1\nextra:\n" + body, 2, "runs/a/detector")
